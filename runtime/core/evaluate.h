// Images as the pipelines take them, and a network's loss and accuracy on them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "compiled.h"
#include "idx.h"

namespace kiln {

// Images as the pipelines take them: (n, c, y, x) floats in [0, 1].
struct ImageSet {
    int64_t count = 0;
    std::vector<float> pixels;    // count * channels * height * width
    std::vector<int32_t> labels;  // count
};

// Checks that the data fits the network's input (size and classes) and converts it.
// `source` names the data in the error (a DataError).
ImageSet to_image_set(const Dataset &data, const model::Network &net, const std::string &source);

struct Evaluation {
    double loss = 0, accuracy = 0;  // mean cross-entropy; fraction correct
    int64_t correct = 0, count = 0;
};

Evaluation evaluate(const CompiledModel &model, const std::vector<float> &params, const ImageSet &data);

// The class with the highest score (the first of equals).
inline int argmax(const float *scores, int classes) {
    return int(std::max_element(scores, scores + classes) - scores);
}

}  // namespace kiln
