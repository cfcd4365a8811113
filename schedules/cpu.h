// Hand-written CPU schedules for the pipelines of generator/pipeline.h.
//
// Every layer's output is computed whole (compute_root), images and blocks of
// channels in parallel, rows vectorized; convolution and dense reductions keep a
// tile of accumulators in registers; weight gradients are reduced over parallel
// chunks of the batch (rfactor) and added up in a fixed order, so results do not
// depend on the thread count. Tile sizes come from ScheduleSettings
// (schedules/settings.h): defaults, or a network's own tuned file.
#pragma once

#include "pipeline.h"
#include "schedules/settings.h"

namespace kiln::schedules {

// The lanes of a vector of `type` the schedule uses on `target` (vector_lanes, or
// the target's natural width).
int vector_lanes(const ScheduleSettings &settings, const Halide::Target &target, Halide::Type type);

// The algorithms the settings choose, for building the pipelines: conv_algorithm,
// and a training pipeline an autoscheduler can schedule. Given the schedule's
// vector `lanes`, Winograd leaves narrow layers to the direct method
// (layers::Algorithms::direct_narrow_lanes), as the build does; without, it takes
// every layer it applies to.
inline layers::Algorithms algorithms_for(const ScheduleSettings &settings, int lanes = 0) {
    const bool winograd = settings.conv_algorithm == "winograd" || settings.conv_algorithm == "winograd4";
    return {winograd, lanes, !settings.training_autoscheduler.empty(), settings.conv_algorithm == "winograd4" ? 4 : 2};
}

// `batch`, the number of images in a call where given, lets small layers run
// serially for a single image (lower latency). `layers_read_outside`: the
// pipeline outputs layers' activations besides the scores (then each layer's
// output is computed whole, not image by image).
void schedule_inference(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings = {},
                        Halide::Expr batch = Halide::Expr(), bool layers_read_outside = false);
// The features pipeline: inference with every layer's output copied into
// `features` (f, n), one update per layer.
void schedule_features(pipeline::Graph &g, Halide::Func features, const Halide::Target &target,
                       const ScheduleSettings &settings = {});
void schedule_training(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings = {});

}  // namespace kiln::schedules
