// `kiln predict`: a network's digit for each of a list of image files (see
// digit_image.h for how a file becomes an input).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "compiled.h"

namespace kiln {

struct Prediction {
    std::string file;
    int digit = 0;                     // the class with the highest score (the first of equals)
    std::vector<double> probabilities;  // softmax of the scores, one per class
};

struct Predictions {
    std::vector<Prediction> classified;  // in the order of the files, leaving out those that failed
    int failed = 0;                      // files refused (each reported on `errors`)
};

// Reads and prepares every file, then classifies those that could be read. A file
// that cannot be used gets one line on `errors` naming it ("FILE: error: ...");
// the others are classified all the same.
Predictions predict_files(const CompiledModel &model, const std::vector<float> &params,
                          const std::vector<std::string> &files, std::ostream &errors);

// One line per prediction: "FILE: DIGIT (P%)  0 p0  1 p1 ..." or, with `json`,
// one JSON object per line: {"file": ..., "digit": ..., "probabilities": [...]}.
void print_predictions(const std::vector<Prediction> &predictions, bool json, std::ostream &out);

}  // namespace kiln
