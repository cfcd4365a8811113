// Linear probes: how linearly separable the classes are at each hidden layer of a
// trained network. For every probed layer a softmax-regression classifier is
// trained on that layer's activations (read from the kiln_features pipeline) and
// its test accuracy measured. The network's own weights stay fixed.
//
// Dimension letters: N images, D a layer's (possibly pooled) activations per
// image, K classes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compiled.h"
#include "evaluate.h"

namespace kiln {

// A layer to probe: the input pixels (layer_index 0) or a hidden layer's output.
struct ProbeLayer {
    int layer_index = 0;    // 0: the input; i + 1: net.layers[i]
    std::string name;       // "input", "conv1", ...
    std::string kind;       // "input", "conv", "maxpool", ...
    model::Shape shape;     // the activations' shape
    int64_t offset = -1;    // where the layer's output starts in a features vector; -1: the input
    int pool = 1;           // side of the average pooling applied before the probe (1: none)
    int64_t features = 0;   // D: values per image the probe sees
};

// The input and every hidden layer (not dropout, which is the identity in
// inference, nor the classifier). Layers with more than max_features values
// are average-pooled 2x2, repeatedly, until they fit.
std::vector<ProbeLayer> probe_layers(const model::Network &net, int64_t max_features);

struct ProbeSettings {
    int64_t epochs = 3;
    int64_t batch = 256;
    double learning_rate = 1e-3;  // Adam, the defaults beta1 0.9, beta2 0.999, epsilon 1e-8
    uint64_t seed = 1;
    int64_t max_features = 8192;
    int threads = 1;  // probes train in parallel, a layer per thread; same results for any count
};

struct ProbeResult {
    ProbeLayer layer;
    double train_accuracy = 0;  // over the last epoch, while training
    double test_accuracy = 0;
};

// Trains one probe per layer of probe_layers(model.net(), s.max_features) on
// `train_set` and measures it on `test_set`. `progress(done, total)` is called
// after each batch of features is consumed.
std::vector<ProbeResult> run_probes(const CompiledModel &model, const std::vector<float> &params,
                                    const ImageSet &train_set, const ImageSet &test_set, const ProbeSettings &s,
                                    const std::function<void(int64_t, int64_t)> &progress = {});

}  // namespace kiln
