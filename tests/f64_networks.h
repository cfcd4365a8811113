// The float64 training steps built for the tests (tests/CMakeLists.txt).
#pragma once

#include <cstdint>
#include <vector>

#include "HalideRuntime.h"

struct F64Network {
    const char *file;  // the network's TOML file name, as in the compiled-network table
    int (*train)(halide_buffer_t *params, halide_buffer_t *images, halide_buffer_t *labels, uint32_t seed,
                 int32_t first_image, halide_buffer_t *loss, halide_buffer_t *scores, halide_buffer_t *grad);
};

extern const std::vector<F64Network> f64_networks;
