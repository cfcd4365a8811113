// maxpool's and avgpool's parameters: a square window of `size`, moved by
// `stride`; windows never reach past the input.
#pragma once

#include <cstdint>

namespace kiln::model {

struct PoolSpec {
    int64_t size = 0, stride = 0;
};

}  // namespace kiln::model
