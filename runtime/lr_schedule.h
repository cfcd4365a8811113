// The learning rate at each training step, from [train]'s lr_schedule. A pure
// function of the step, so that a resumed run continues the same curve.
//   constant   lr
//   cosine     lr (1 + cos(pi t / T)) / 2, from lr down to 0 at the last step
//   step       lr gamma^floor(epoch / lr_step_epochs)
//   onecycle   PyTorch's OneCycleLR with cosine annealing: from lr/25 up to lr over
//              the first lr_warmup of the run, then down to lr/(25 * 1e4)
// t counts steps from 0, T = steps in the whole run.
#pragma once

#include <cstdint>

#include "model/network.h"

namespace kiln {

double learning_rate_at(const model::TrainSettings &s, int64_t step, int64_t steps_per_epoch);

}  // namespace kiln
