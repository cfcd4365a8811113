// Initial parameters: weights uniform with He's bound sqrt(6 / fan_in) for layers
// followed by ReLU and LeCun's sqrt(3 / fan_in) otherwise; biases zero. Each tensor
// draws from its own stream of the seed, so the same seed gives the same weights.
// Batchnorm starts as PyTorch's: weight 1, bias 0, running_mean 0, running_var 1.
#pragma once

#include <cstdint>
#include <vector>

#include "model/network.h"

namespace kiln {

std::vector<float> initial_params(const model::Network &net, uint64_t seed);

}  // namespace kiln
