#include "inspect.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using nlohmann::json;

constexpr int kBatch = 256;

std::vector<float> slice(const float *begin, int64_t count) { return std::vector<float>(begin, begin + count); }

struct Mistake {
    int64_t index = 0;
    int label = 0, predicted = 0;
    double confidence = 0;  // softmax probability of the predicted class
};

}  // namespace

std::string inspection_json(const CompiledModel &model, const std::vector<float> &params, const ImageSet &test_set,
                            const std::vector<std::string> &class_names, int64_t seed, int64_t test_index, int worst) {
    const model::Network &net = model.net();
    const int classes = int(net.input.classes);
    if (int64_t(class_names.size()) != net.input.classes)
        throw std::invalid_argument("inspection_json: " + std::to_string(class_names.size()) + " class names for " +
                                    std::to_string(classes) + " classes");
    const int64_t image_size = net.input.shape().size();
    const float *image = test_set.pixels.data() + test_index * image_size;
    json out = {{"network", net.name}, {"seed", seed}, {"test_index", test_index},
                {"label", test_set.labels[size_t(test_index)]}, {"class_names", class_names},
                {"image", slice(image, image_size)}};

    std::vector<float> features(size_t(model::feature_count(net)));  // (f) one image
    model.features(params.data(), image, 1, features.data());
    json layers = json::array();
    for (size_t i = 0; i + 1 < net.layers.size(); i++) {
        const model::Layer &l = net.layers[i];
        if (l.kind->random_in_training) continue;
        layers.push_back({{"name", l.name},
                          {"kind", std::string(l.kind->name)},
                          {"shape", {l.out.channels, l.out.height, l.out.width}},
                          {"values", slice(features.data() + model::feature_offset(net, i), l.out.size())}});
    }
    out["layers"] = layers;

    out["filters"] = nullptr;
    for (const model::Layer &l : net.layers)
        if (l.is("conv")) {
            const model::ParamTensor &w = net.params[size_t(l.weight)];
            out["filters"] = {{"layer", l.name}, {"shape", w.shape}, {"values", slice(params.data() + w.offset, w.count)}};
            break;
        }

    std::vector<std::vector<int64_t>> confusion(static_cast<size_t>(classes), std::vector<int64_t>(static_cast<size_t>(classes)));
    std::vector<Mistake> mistakes;
    std::vector<float> scores(size_t(kBatch * classes));  // (o, n)
    for (int64_t start = 0; start < test_set.count; start += kBatch) {
        const int n = int(std::min<int64_t>(kBatch, test_set.count - start));
        model.forward(params.data(), test_set.pixels.data() + start * image_size, n, scores.data());
        for (int i = 0; i < n; i++) {
            const float *s = scores.data() + int64_t(i) * classes;
            const int predicted = int(std::max_element(s, s + classes) - s);
            const int label = test_set.labels[size_t(start + i)];
            confusion[size_t(label)][size_t(predicted)]++;
            if (predicted == label) continue;
            double sum = 0;
            for (int k = 0; k < classes; k++) sum += std::exp(double(s[k]) - double(s[predicted]));
            mistakes.push_back({start + i, label, predicted, 1 / sum});
        }
    }
    out["confusion"] = confusion;
    std::stable_sort(mistakes.begin(), mistakes.end(),
                     [](const Mistake &a, const Mistake &b) { return a.confidence > b.confidence; });
    json worst_list = json::array();
    for (size_t i = 0; i < mistakes.size() && int(i) < worst; i++) {
        const Mistake &m = mistakes[i];
        worst_list.push_back({{"index", m.index},
                              {"label", m.label},
                              {"predicted", m.predicted},
                              {"confidence", m.confidence},
                              {"image", slice(test_set.pixels.data() + m.index * image_size, image_size)}});
    }
    out["misclassified"] = worst_list;
    return out.dump();
}

}  // namespace kiln
