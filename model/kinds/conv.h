// The conv layer's parameters (model/kinds/conv.cpp says what they mean).
#pragma once

#include <cstdint>

namespace kiln::model {

struct ConvSpec {
    int64_t filters = 0, kernel = 0, stride = 1, padding = 0;
};

}  // namespace kiln::model
