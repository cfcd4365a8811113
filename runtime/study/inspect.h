// Looking inside a trained network, for the study's pictures: its first conv
// layer's filters, one test image's activations through every hidden layer, the
// confusion matrix on a test set, and the test images it gets wrong with the
// most confidence.
#pragma once

#include <string>
#include <vector>

#include "compiled.h"
#include "evaluate.h"

namespace kiln {

// One JSON object (the format scripts/study_report.py reads):
//   network, seed, test_index, label, image [H*W*C],
//   class_names [K]                                           the names of labels 0..K-1, for the pictures
//   layers [{name, kind, shape [C, H, W], values (c, y, x)}]   every hidden layer but dropout
//   filters {layer, shape [O, C, K, K], values} or null       the first conv layer's weights
//   confusion [K][K]                                          rows: true class, columns: predicted
//   misclassified [{index, label, predicted, confidence, image}]  the `worst` most confident mistakes
// `class_names` has one name per class of the network (else std::invalid_argument).
std::string inspection_json(const CompiledModel &model, const std::vector<float> &params, const ImageSet &test_set,
                            const std::vector<std::string> &class_names, int64_t seed, int64_t test_index = 0,
                            int worst = 16);

}  // namespace kiln
