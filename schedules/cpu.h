// CPU schedules for the pipelines of generator/pipeline.h.
//
// The default is a hand-written strategy per layer kind: every layer's output is
// computed whole (compute_root), parallel over the images of the batch, and
// vectorized along its innermost contiguous dimension; reductions accumulate in
// small per-row buffers. It is a first, general schedule, not a tuned one.
#pragma once

#include "pipeline.h"

namespace kiln::schedules {

void schedule_inference(pipeline::Graph &g, const model::Network &net, const Halide::Target &target);
void schedule_training(pipeline::Graph &g, const model::Network &net, const Halide::Target &target);

}  // namespace kiln::schedules
