#include "evaluate.h"

#include <cmath>

#include <fmt/format.h>

namespace kiln {
namespace {

constexpr int kEvalBatch = 256;

// Cross-entropy of one image's scores against its label, in double.
double cross_entropy(const float *scores, int classes, int label) {
    double m = *std::max_element(scores, scores + classes);
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += std::exp(double(scores[k]) - m);
    return m + std::log(sum) - double(scores[label]);
}

}  // namespace

ImageSet to_image_set(const Dataset &data, const model::Network &net, const std::string &source) {
    const model::InputSpec &in = net.input;
    if (in.channels != 1 || data.rows != in.height || data.cols != in.width)
        throw DataError(fmt::format("{}: error: images are {}x{} with 1 channel, but network '{}' takes {}x{} with {}",
                                    source, data.cols, data.rows, net.name, in.width, in.height, in.channels));
    ImageSet set;
    set.count = data.count;
    set.pixels.resize(data.images.size());
    for (size_t i = 0; i < data.images.size(); i++) set.pixels[i] = float(data.images[i]) / 255.0f;
    set.labels.resize(data.labels.size());
    for (size_t i = 0; i < data.labels.size(); i++) {
        if (data.labels[i] >= in.classes)
            throw DataError(fmt::format("{}: error: label {} of image {} is not below the network's {} classes",
                                        source, data.labels[i], i, in.classes));
        set.labels[i] = data.labels[i];
    }
    return set;
}

Evaluation evaluate(const CompiledModel &model, const std::vector<float> &params, const ImageSet &data) {
    const int classes = int(model.net().input.classes);
    const size_t image_size = size_t(model.net().input.shape().size());
    std::vector<float> scores(size_t(kEvalBatch) * classes);
    Evaluation e;
    double loss_sum = 0;
    for (int64_t start = 0; start < data.count; start += kEvalBatch) {
        const int n = int(std::min<int64_t>(kEvalBatch, data.count - start));
        model.forward(params.data(), data.pixels.data() + size_t(start) * image_size, n, scores.data());
        for (int i = 0; i < n; i++) {
            const float *s = scores.data() + size_t(i) * classes;
            const int label = data.labels[size_t(start + i)];
            loss_sum += cross_entropy(s, classes, label);
            e.correct += argmax(s, classes) == label;
        }
    }
    e.count = data.count;
    e.loss = data.count ? loss_sum / double(data.count) : 0;
    e.accuracy = data.count ? double(e.correct) / double(data.count) : 0;
    return e;
}

}  // namespace kiln
