// Pipelines built from a network description: the forward pass (inference) and the
// training step (loss and the gradient of every parameter). Definitions only; the
// schedules in schedules/ decide how they run.
//
// Dimension letters: see layers/layers.h. Inputs, as Funcs over the caller's buffers:
//   params (i)          the flat parameter vector, Network::params layout
//   images (x, y, c, n) pixels scaled to [0, 1]
//   labels (n)          int32 class of each image
//
// The training step's `grad` holds, in the places of batchnorm's running
// statistics (buffers, not trained), the batch's mean and unbiased variance.
#pragma once

#include <vector>

#include "layers/layers.h"

namespace kiln::pipeline {

using Halide::Expr;
using Halide::Func;

struct LayerStages {
    const model::Layer *layer = nullptr;
    Func in;                  // (x, y, c, n) the layer's input activation
    layers::Forward fwd;
    layers::Backward bwd;     // training only
};

struct Graph {
    Func input;   // (x, y, c, n) normalized images, zero outside the image
    std::vector<LayerStages> layers;
    Func scores;  // (o, n) the last layer's class scores
    layers::Loss loss;  // training only
    Func grad;    // (i) flat gradient, Network::params layout (batch statistics for buffers); training only
};

// What a training step adds to the forward pass; all undefined in inference.
struct Training {
    Expr batch;         // N: batchnorm normalizes with the batch's statistics
    Expr dropout_seed;  // a new value every step: dropout active (unused by networks without dropout)
    Expr first_image;   // the index of image n = 0 in the whole batch, when a batch is cut into shards
};

Graph build_forward(const model::Network &net, const Func &params, const Func &images, const Training &training);
Graph build_inference(const model::Network &net, const Func &params, const Func &images);
Graph build_training(const model::Network &net, const Func &params, const Func &images, const Func &labels,
                     const Training &training);

}  // namespace kiln::pipeline
