// Initial parameters, by [train] init: weights uniform in [-bound, bound] with
//   he_lecun        He's bound sqrt(6 / fan_in) for layers followed by ReLU and
//                   LeCun's sqrt(3 / fan_in) otherwise (the default)
//   glorot_uniform  Glorot's sqrt(6 / (fan_in + fan_out)), Keras's default; fan_out
//                   is the outputs one input feeds (conv: filters x kernel area)
// and biases zero. Each tensor draws from its own stream of the seed, so the same
// seed gives the same weights.
// Batchnorm starts as PyTorch's: weight 1, bias 0, running_mean 0, running_var 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/network.h"

namespace kiln {

// `init`: "he_lecun" or "glorot_uniform" (else std::invalid_argument).
std::vector<float> initial_params(const model::Network &net, uint64_t seed, const std::string &init);
// With the network's own [train] init.
std::vector<float> initial_params(const model::Network &net, uint64_t seed);

}  // namespace kiln
