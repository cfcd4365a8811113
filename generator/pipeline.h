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
    Func in;                  // (x, y, c, n) the layer's (first) input activation
    std::vector<Func> inputs; // (x, y, c, n) each input activation, in order
    layers::Forward fwd;
    layers::Backward bwd;     // training only
    Func d_out;               // training: (x, y, o, n) the gradient reaching the output, summed over its readers
};

struct Graph {
    Func input;   // (x, y, c, n) normalized images, zero outside the image
    std::vector<LayerStages> layers;  // in the network's order
    std::vector<std::vector<int>> consumers;  // for each layer, the layers reading its output (model::Network::consumers)
    Func scores;  // (o, n) the last layer's class scores
    layers::Loss loss;  // training only
    Func grad;    // (i) flat gradient, Network::params layout (batch statistics for buffers); training only
};

// What a training step adds to the forward pass; all undefined in inference.
using Training = layers::Training;

// `algorithms`: what the schedule settings choose (layers::Algorithms; algorithms_for).
Graph build_forward(const model::Network &net, const Func &params, const Func &images, const Training &training,
                    const layers::Algorithms &algorithms = {});
Graph build_inference(const model::Network &net, const Func &params, const Func &images,
                      const layers::Algorithms &algorithms = {});
Graph build_training(const model::Network &net, const Func &params, const Func &images, const Func &labels,
                     const Training &training, const layers::Algorithms &algorithms = {});

}  // namespace kiln::pipeline
