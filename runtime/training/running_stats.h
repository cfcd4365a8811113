// Batchnorm's running statistics: buffers in the flat parameter vector that the
// optimizer leaves alone (Optimizer::freeze_buffers). After each training step,
// whose output holds the batch's mean and unbiased variance in their places
// (generator/pipeline.h), each follows PyTorch's rule:
//   running = (1 - momentum) running + momentum batch
// The inference pipeline normalizes with them.
#pragma once

#include <vector>

#include "model/network.h"

namespace kiln {

// `step_output`: the training step's gradient vector (param_count floats).
void update_running_stats(const model::Network &net, std::vector<float> &params, const std::vector<float> &step_output);

// Whether any layer is a batchnorm (its training step depends on the whole batch).
bool has_batchnorm(const model::Network &net);

}  // namespace kiln
