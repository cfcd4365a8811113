// The network model: a TOML file becomes a validated description of a network —
// its layers, every tensor's shape, the parameter layout, parameter and FLOP counts.
// Plain C++ with no Halide in it; the generator and the runtime both read it, and
// neither re-derives what it computes.
//
// Dimension letters (shared with generator/ and runtime/):
//   N images in a batch, C channels, H rows, W columns, O output channels or units,
//   K kernel size. Activations are (C, H, W) per image; a dense layer's output is
//   (O, 1, 1), so every activation has the same rank.
#pragma once

#include <any>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/kind.h"

namespace kiln::model {

// Bad user input: the message is one line, "FILE:LINE:COL: error: ..." (or
// "FILE: error: ..." where there is no position).
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class Activation { none, relu, tanh, sigmoid };
const char *to_string(Activation a);

// One image's activation shape.
struct Shape {
    int64_t channels = 0, height = 0, width = 0;
    int64_t size() const { return channels * height * width; }
    bool operator==(const Shape &o) const {
        return channels == o.channels && height == o.height && width == o.width;
    }
};

// A parameter tensor inside the one flat parameter vector, in PyTorch's layout:
// conv weight [O, C, K, K], dense weight [O, C*H*W], bias [O]; batchnorm weight,
// bias, running_mean and running_var [C]. The running statistics are buffers, not
// trained: the optimizer leaves them alone, and the training step's "gradient"
// holds the batch's statistic in their place (see runtime/training/running_stats.h).
struct ParamTensor {
    std::string name;            // "<layer name>.weight", ".bias", ".running_mean" or ".running_var"
    std::vector<int64_t> shape;  // outermost first, as PyTorch lists it
    int64_t offset = 0;          // first element in the flat vector
    int64_t count = 0;           // product of shape
    int64_t fan_in = 0;          // inputs feeding one output (for initialization)
    bool buffer = false;         // a running statistic, not a trained parameter
};

// One layer of the graph. A layer reads earlier layers only (file order is a
// topological order), and every layer's output but the last is read by a later one.
struct Layer {
    const Kind *kind = nullptr;
    std::string name;  // unique; default: kind + running count (conv1, dense2, ...)
    std::any spec;     // the kind's own parameter struct (model/kinds/<kind>.h); empty if it has none
    std::vector<int> inputs;  // the layers it reads, by index in Network::layers; -1: the network's input
    Shape in;          // its first input's shape (all of them, for kinds that need the same shape)
    Shape out;
    Activation activation = Activation::none;  // applied last; none for kinds without one
    int weight = -1, bias = -1;  // indices into Network::params, -1 if none
    int running_mean = -1, running_var = -1;  // batchnorm's buffers in Network::params
    int64_t flops = 0;           // per image, a multiply-add counted as 2
    int line = 0;                // where the [[layer]] table starts in the file

    template <class Spec>
    const Spec &spec_as() const { return std::any_cast<const Spec &>(spec); }
    bool is(std::string_view kind_name) const { return kind && kind->name == kind_name; }
};

struct InputSpec {
    int64_t width = 0, height = 0, channels = 0, classes = 0;
    double mean = 0.0, std = 1.0;  // pixels scaled to [0,1], then (x - mean) / std
    Shape shape() const { return {channels, height, width}; }
};

// Random geometric augmentation of training images ([augment]); all zero: none.
// Each image is shifted, rotated and scaled about its centre, sampled bilinearly.
struct AugmentSettings {
    double shift = 0;   // pixels, uniform in [-shift, shift] along each axis
    double rotate = 0;  // degrees, uniform in [-rotate, rotate]
    double scale = 0;   // zoom factor uniform in [1 - scale, 1 + scale]
    bool scale_per_axis = false;  // zoom x and y drawn independently (Keras's ImageDataGenerator)
    bool enabled() const { return shift > 0 || rotate > 0 || scale > 0; }
};

// Defaults for `kiln train`; the command line overrides each.
struct TrainSettings {
    int64_t epochs = 10;
    int64_t batch = 64;
    std::string optimizer = "sgd";  // sgd | adam | adamw | rmsprop (runtime/training/optimizer.h)
    double learning_rate = 0.05;
    // constant | cosine | step | onecycle | plateau (runtime/training/lr_schedule.h)
    std::string lr_schedule = "constant";
    int64_t lr_step_epochs = 0;  // step: epochs between drops
    double lr_gamma = 0.1;       // step and plateau: factor at each drop
    int64_t lr_patience = 10;    // plateau: epochs without improvement tolerated before a drop
    double lr_min = 0;           // plateau: the rate never drops below this (PyTorch's min_lr)
    double lr_warmup = 0.3;      // onecycle: fraction of the run spent warming up
    double momentum = 0.9;      // sgd and rmsprop
    bool nesterov = false;      // sgd
    double beta1 = 0.9, beta2 = 0.999;  // adam, adamw
    double alpha = 0.99;        // rmsprop: smoothing of the squared gradient
    double epsilon = 1e-8;      // adam, adamw, rmsprop
    double weight_decay = 0.0;  // L2 (sgd, adam, rmsprop) or decoupled (adamw)
    int64_t seed = 1;
    int64_t validation = 0;  // training images held out (the last ones) to validate on
    // Each batch is cut into this many shards, each computed whole on one core and
    // their gradients added in shard order (runtime/core/compiled.h). A result depends
    // on it (float rounding; batchnorm's statistics are each shard's), never on
    // the thread count.
    int64_t shards = 2;
    double ema = 0;          // > 0: evaluate and save a moving average of the weights, this decay per step
    // PyTorch's CrossEntropyLoss(label_smoothing): the target is (1 - e) onehot + e / classes.
    // Part of the training pipeline (compiled in), not a runtime setting.
    double label_smoothing = 0;
    // Initial weights (runtime/training/init.h): "he_lecun" (He's uniform bound before a ReLU,
    // LeCun's otherwise) or "glorot_uniform" (Keras's default); biases zero either way.
    std::string init = "he_lecun";
    // What the plateau schedule watches: "val_loss" (PyTorch's mode "min") or
    // "val_accuracy" (mode "max", as Keras's ReduceLROnPlateau(monitor="val_acc")).
    std::string lr_monitor = "val_loss";
    AugmentSettings augment;
};

struct Network {
    std::string name, description;
    std::string source;  // the file name used in error messages
    InputSpec input;
    std::vector<Layer> layers;
    std::vector<ParamTensor> params;  // in layer order: weight, bias, running_mean, running_var
    int64_t param_count = 0;
    int64_t flops = 0;  // per image, forward pass
    TrainSettings train;

    // The resolved architecture (input, layers with every default filled in and
    // their names) as text, and a 64-bit FNV-1a hash of it in 16 hex digits: a
    // checkpoint records the hash, so weights for another network are refused.
    std::string canonical() const;
    std::string hash() const;

    // The shape of layer `index`'s output; -1: the network's input.
    Shape shape_of(int index) const { return index < 0 ? input.shape() : layers[size_t(index)].out; }
    // For each layer, the layers that read its output, in order (a layer reading
    // the same output twice is listed twice).
    std::vector<std::vector<int>> consumers() const;
};

// Parse and validate. `source` names the file in error messages. Throws InputError.
Network parse_network(std::string_view text, const std::string &source);
Network load_network(const std::string &path);  // reads the file, then parse_network

// The kiln_features pipeline's vector per image: every layer's output, layer
// after layer, each in (channel, row, column) order. Layer i's output starts at
// feature_offset(net, i); feature_count(net) is the whole vector's length.
int64_t feature_offset(const Network &net, size_t layer);
int64_t feature_count(const Network &net);

// Whether a training batch's images meet only where their gradients are summed:
// no kind with batch statistics (batchnorm's over the batch; dropout's masks are drawn by an image's
// index in the whole batch). Then a batch trained in shards gives the whole
// batch's step, to float rounding.
bool images_independent_in_training(const Network &net);

// A human-readable layer table: name, type, output shape, parameters, FLOPs, inputs.
std::string layer_table(const Network &net);

// Limits on sizes, so that every shape, index and FLOP count fits comfortably in
// the 32-bit indexing that Halide pipelines use.
struct Limits {
    static constexpr int64_t max_extent = 4096;        // width, height, channels, filters
    static constexpr int64_t max_kernel = 64;          // conv kernel, pool size, stride, padding
    static constexpr int64_t max_units = 65536;        // dense units, classes
    static constexpr int64_t max_layers = 256;
    static constexpr int64_t max_activation = 1 << 24; // elements of one image's activation
    static constexpr int64_t max_params = 1 << 28;     // the whole flat parameter vector
    static constexpr int64_t max_batch = 65536;
    static constexpr int64_t max_shards = 1024;
    static constexpr int64_t max_epochs = 100000;
};

}  // namespace kiln::model
