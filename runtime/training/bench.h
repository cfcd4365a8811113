// `kiln bench`: the speed of a compiled network's pipelines, medians over repetitions.
#pragma once

#include <string>

#include "compiled.h"

namespace kiln {

struct BenchOptions {
    int batch = 64;          // training step
    int infer_batch = 256;   // inference
    int repeats = 30;        // timed repetitions of each measurement (after warm-up)
    int threads = 0;         // 0: Halide's default (all cores)
};

struct BenchResult {
    double train_images_per_s = 0;  // training step: forward, backward and the SGD update
    double infer_images_per_s = 0;
    double latency_us_batch1 = 0;   // inference of one image
    double train_gflops = 0;        // counting a training step as 3x the forward FLOPs
    double infer_gflops = 0;
    double max_score_difference = 0;  // self-check: forward vs training-step scores on the same batch
};

// Checks first that the forward pass and the training step agree on one batch
// (throws if they do not), then times them.
BenchResult bench(const CompiledModel &model, const BenchOptions &opts);

}  // namespace kiln
