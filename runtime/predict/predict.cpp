// `kiln predict`: image files in, digits and probabilities out.
#include "predict.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "digit_image.h"

namespace kiln {
namespace {

constexpr int kBatch = 256;  // images per forward call

std::vector<double> softmax(const float *scores, int classes) {
    const float top = *std::max_element(scores, scores + classes);
    std::vector<double> p(static_cast<size_t>(classes), 0.0);
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += p[size_t(k)] = std::exp(double(scores[k]) - top);
    for (double &v : p) v /= sum;
    return p;
}

}  // namespace

Predictions predict_files(const CompiledModel &model, const std::vector<float> &params,
                          const std::vector<std::string> &files, std::ostream &errors) {
    const model::InputSpec &in = model.net().input;
    const int classes = int(in.classes);
    Predictions result;
    std::vector<float> inputs;  // the readable files' inputs, back to back
    for (const std::string &file : files) {
        try {
            const std::vector<float> input = mnist_style_input(read_gray_image(file), in, file);
            inputs.insert(inputs.end(), input.begin(), input.end());
            result.classified.push_back({file, 0, {}});
        } catch (const ImageError &e) {
            errors << e.what() << "\n";
            result.failed++;
        }
    }
    const size_t image_size = size_t(in.shape().size()), count = result.classified.size();
    std::vector<float> scores(count * size_t(classes));
    for (size_t start = 0; start < count; start += kBatch) {
        const int n = int(std::min<size_t>(kBatch, count - start));
        model.forward(params.data(), inputs.data() + start * image_size, n, scores.data() + start * classes);
    }
    for (size_t i = 0; i < count; i++) {
        const float *s = scores.data() + i * classes;
        result.classified[i].digit = int(std::max_element(s, s + classes) - s);
        result.classified[i].probabilities = softmax(s, classes);
    }
    return result;
}

void print_predictions(const std::vector<Prediction> &predictions, bool json, std::ostream &out) {
    for (const Prediction &p : predictions) {
        if (json) {
            const nlohmann::ordered_json j = {{"file", p.file}, {"digit", p.digit}, {"probabilities", p.probabilities}};
            out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";  // any file name

            continue;
        }
        std::string line = fmt::format("{}: {} ({:.1f}%) ", p.file, p.digit, 100 * p.probabilities[size_t(p.digit)]);
        for (size_t k = 0; k < p.probabilities.size(); k++) line += fmt::format(" {} {:.4f}", k, p.probabilities[k]);
        out << line << "\n";
    }
}

}  // namespace kiln
