// The dense layer's parameters: `units` outputs, each a weighted sum of the whole
// input flattened in (channel, row, column) order, plus a bias.
#pragma once

#include <cstdint>

namespace kiln::model {

struct DenseSpec {
    int64_t units = 0;
};

}  // namespace kiln::model
