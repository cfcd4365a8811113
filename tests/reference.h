// An independent reference for a whole network's training step: plain loops in
// double precision, written from the layer definitions (network.h), not from the
// Halide code, so that the compiled pipelines can be checked against it.
#pragma once

#include <cstdint>
#include <vector>

#include "model/network.h"

namespace kiln::reference {

struct ReferenceResult {
    double loss = 0;             // mean over the batch of softmax cross-entropy ([train] label_smoothing)
    std::vector<double> scores;  // n * classes, image-major
    std::vector<double> grad;    // param_count, the flat layout of net.params; batchnorm's buffers:
                                 // the batch's mean and unbiased variance
};

// images: n * C * H * W floats in [0, 1], (n, c, y, x) row-major; labels: n.
// The input is normalized as (x - mean) / std, as the pipelines do; dropout layers
// draw their masks from `dropout_seed`. The batch cut into `shards` shards (images
// s*n/S to (s+1)*n/S, S = min(shards, n)): batchnorm normalizes each shard with
// its own statistics; the statistics reported for the running ones are the whole
// batch's.
ReferenceResult reference_train_step(const model::Network &net, const std::vector<float> &params,
                                     const float *images, const int32_t *labels, int n, uint32_t dropout_seed = 0,
                                     int shards = 1);

// The forward pass as in evaluation (dropout off, batchnorm with its running
// statistics): n * classes scores, image-major.
std::vector<double> reference_forward(const model::Network &net, const std::vector<float> &params, const float *images,
                                      int n);

// Every layer's output in inference (dropout the identity), each [N, C, H, W]
// row-major: what the kiln_features pipeline lays end to end.
std::vector<std::vector<double>> reference_layer_outputs(const model::Network &net, const std::vector<float> &params,
                                                         const float *images, int n);

}  // namespace kiln::reference
