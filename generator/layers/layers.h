// Halide definitions of every layer kind: forward and adjoint side by side, one
// file per kind (llm.c's X_forward / X_backward pairs). Algorithms only; how they
// are scheduled lives in schedules/. Each file registers its kind's builders
// (LayerBuilder, below): the build gathers generator/layers/*.cpp into the table
// builder_for() reads, so a new kind is a new file here.
//
// Dimension letters:
//   x column, y row, c input channel, o output channel or unit, n image in batch,
//   kx/ky kernel column/row. Every activation is a Func a(x, y, c, n); a dense
//   layer's output is a(0, 0, o, n), so all activations have the same rank.
//   d_X is the gradient of the loss with respect to X.
#pragma once

#include "Halide.h"
#include "model/network.h"

namespace kiln::layers {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Type;
using Halide::Var;

// The pure variables every definition uses, by name.
struct Vars {
    Var x{"x"}, y{"y"}, c{"c"}, n{"n"};
};

// A 3x3 stride-1 correlation by Winograd's F(m x m, 3x3) (conv_winograd.cpp); t
// numbers a tile (tx, ty) of m x m outputs as tx + pitch ty, a, b in [0, m + 2).
struct Winograd {
    Func kernel;   // (a, b, c, o) G g G^T of each kernel
    Func tile_rows;  // (t, c, a, row, n) B^T d along x of each patch row; m = 4 only
    Func tiles;    // (t, c, a, b, n) B^T d B of each tile's (m + 2) x (m + 2) input patch
    Func product;  // (t, o, a, b, n) sum over c of kernel tiles
    Func inverse_rows;  // (t, o, i, b, n) A^T product; m = 4 only
    Func inverse;  // (t, o, i, j, n) A^T product A, i, j in [0, m); m = 4 only (m = 2: out computes it)
    Func out;      // (x, y, o, n) A^T product A
    int tile = 2;  // m: outputs per tile along x and y
    int pitch = 0; // tiles per tile row: at m = 2 a power of two, at m = 4 the row's tiles
};

// A 3x3 stride-1 correlation's weight gradient by the adjoint of F(2x2, 3x3)
// (conv_winograd.cpp); (tx, ty) a tile of 2x2 outputs, a, b in [0, 4).
struct WinogradWeightGrad {
    Func tiles;     // (tx, ty, c, a, b, n) B^T d B of each tile's 4x4 input patch
    Func d_tiles;   // (tx, ty, o, a, b, n) A g A^T of each tile's 2x2 output gradient g
    Func product;   // (a, b, c, o) sum over tx, ty, n of tiles d_tiles
    Func d_weight;  // (kx, ky, c, o) G^T product G
};

struct Forward {
    Func weight;     // (a, b, c, o) as read by the forward pass; undefined for pooling
    Func in_padded;  // conv with padding: (x, y, c, n) the input, zero outside it
    Func pre;  // before the activation, (x, y, o, n); undefined for pooling
    Func out;  // the layer's output activation, (x, y, o, n)
    // batchnorm only, each (c): the mean and biased variance it normalizes with (the
    // batch's in training, the running ones in evaluation), 1/sqrt(variance + eps),
    // and scale = weight inv_std: pre = (in - mean) scale + bias.
    Func mean, variance, inv_std, scale;
    Func unbiased_variance;  // batchnorm in training: (c) what running_var follows
    Winograd winograd;  // conv by Winograd: pre = bias + winograd.out; else undefined
};

// A parameter tensor's gradient, d (a, b, c, o) or d (o) with these extents
// (innermost first), for the flat gradient's tensor Network::params[param]:
// element [o, c, b, a] lies at offset + ((o*C + c)*B + b)*A + a.
struct ParamGrad {
    int param = -1;
    Func value;
    std::vector<int> extents;
};

struct Backward {
    Func d_pre;     // (x, y, o, n), dense: (o, n); undefined for pooling
    Func d_in;      // a one-input kind's: (x, y, c, n); undefined when the input needs no gradient
    std::vector<Func> d_inputs;  // a kind with several inputs: one per input, (x, y, c, n) each, or undefined
    Func d_weight;  // (a, b, c, o): a, b the kernel column/row (conv) or input column/row (dense)
    Func d_bias;    // (o)
    // conv only: (kx, ky, c, x, y, n) the input window each output position sees,
    // as the weight gradient reads it (a schedule may store it, im2col style)
    Func patches;
    Func d_pre_padded;  // conv only: (x, y, o, n) d_pre, zero outside the output
    // conv at stride S > 1 by the direct method: d_in's S x S phases, phase px + S py
    // (xh, yh, c, n) = d_in(S xh + px, S yh + py, c, n), each a dense correlation of
    // d_pre with its own taps; undefined for a phase no tap reaches (it is zero)
    std::vector<Func> d_in_phases;
    Winograd winograd;  // conv by Winograd: d_in = winograd.out; else undefined
    WinogradWeightGrad winograd_grad;  // conv by Winograd: d_weight = winograd_grad.d_weight; else undefined
    // What goes into the flat gradient: each parameter tensor's gradient (and
    // batchnorm's batch statistics in its buffers' places).
    std::vector<ParamGrad> param_grads;
};

inline Expr zero(Type t) { return Halide::cast(t, 0); }
inline Expr one(Type t) { return Halide::cast(t, 1); }

// Element i of the flat parameter vector, read from `params` (i).
inline Expr param_at(const Func &params, const model::ParamTensor &t, Expr i) {
    return params(Expr(static_cast<int>(t.offset)) + i);
}

// The loss gradient reaching a layer: from its consumer, or from the loss.
// `batch` is the number of images (the n extent) for reductions over the batch.
struct BackwardArgs {
    Func in;          // the layer's (first) input activation (x, y, c, n)
    Forward fwd;      // the layer's own forward stages
    Func d_out;       // (x, y, o, n)
    Expr batch;       // N
    bool need_d_in;   // false when the input is the images: they need no gradient
    std::vector<Func> inputs;        // every input (x, y, c, n), in order
    std::vector<bool> need_d_inputs;  // for each input
};

// What a training step adds to the forward pass; all undefined in inference.
struct Training {
    Expr batch;         // N: batchnorm normalizes with the batch's statistics
    Expr dropout_seed;  // a new value every step: dropout active (unused by networks without dropout)
    Expr first_image;   // the index of image n = 0 in the whole batch, when a batch is cut into shards
};

// Algorithms the schedule settings choose (conv_algorithm): either way a pipeline
// computes the same function, up to float rounding.
struct Algorithms {
    bool winograd = false;  // 3x3 stride-1 'same' convolutions (uses_winograd) by Winograd
    // The schedule's vector lanes, when Winograd leaves to the direct method the
    // layers whose rows are narrower than a vector and whose channels fill vectors:
    // their direct schedule runs vectors along the channels at about the peak,
    // where Winograd's tiles, numbered by rows of a power-of-two pitch, fill vectors
    // with tiles past the image (14-wide layers: 64 tiles for 49). 0: Winograd on
    // every layer it applies to.
    int direct_narrow_lanes = 0;
    // The flat gradient's copies of weight gradients over one loop (the flat
    // index) rather than four: Halide's autoschedulers reorder a copy's loops,
    // which it refuses for a four-loop copy, unable to prove that no two of its
    // iterations write one element. The hand-written schedule fuses the four.
    bool flat_gradient_copies = false;
    // Outputs per Winograd tile along x and y: F(2x2, 3x3) or F(4x4, 3x3) (the
    // forward pass and input gradient; weight gradients by F(2x2, 3x3)). At 4 the
    // products run in vectors along the channels: narrow layers take it too.
    int winograd_tile = 2;
};

// One layer as the builders see it.
struct LayerCall {
    const model::Network &net;
    const model::Layer &layer;
    int index;  // in net.layers
    const Func &params;
    const Training &training;
    const Algorithms &algorithms;
};

// A kind's forward and adjoint builders, registered by its file under the kind's
// name (model::Kind::name). `forward` gets the layer's inputs (x, y, c, n) in order.
struct LayerBuilder {
    std::string_view kind;
    Forward (*forward)(const LayerCall &call, const std::vector<Func> &in) = nullptr;
    Backward (*backward)(const LayerCall &call, const BackwardArgs &args) = nullptr;
};
using BuilderTable = std::vector<LayerBuilder>;
// The builders of l's kind; an unsupported kind: std::runtime_error naming it.
const LayerBuilder &builder_for(const model::Layer &l);

// activation.cpp (generator/)
Expr activate(model::Activation a, Expr pre);
// d_pre from the activation's output and d_out (every supported activation's
// derivative is a function of its output).
Expr activation_backward(model::Activation a, Expr out, Expr d_out);

// conv.cpp; `winograd`: 0, or the outputs per tile of F(m x m, 3x3) where
// uses_winograd says it applies (winograd_tile), `winograd_grad`: the weight
// gradient by Winograd too (uses_winograd_weight_grad).
Forward conv_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in,
                     int winograd = 0);
Backward conv_backward(const model::Network &net, const model::Layer &l, const Func &params, const BackwardArgs &args,
                       int winograd = 0, bool winograd_grad = false);
// Whether rows `width` wide with `channels` channels fill vectors of `lanes` better
// along the channels than along the rows: rows narrower than a vector, channels a
// whole number of vectors (the direct convolution's channel-vector schedule).
inline bool channel_vectors_fit(int64_t width, int64_t channels, int lanes) {
    return lanes > 0 && width < lanes && channels % lanes == 0;
}

// Whether a conv layer is computed by Winograd when the setting asks: 3x3, stride
// 1, padding 1, and at least 8 input channels (a first layer's one channel gains
// nothing), and, by F(2x2, 3x3), not left to the direct method
// (Algorithms::direct_narrow_lanes; F(4x4, 3x3) takes narrow layers too).
bool uses_winograd(const model::Layer &l, const Algorithms &a);
// Its tile (Algorithms::winograd_tile) where it is, else 0.
int winograd_tile(const model::Layer &l, const Algorithms &a);
// Whether its weight gradient is, when the setting asks: 3x3, stride 1, padding 1,
// at least 8 input channels; whatever the width (narrow rows included: the
// products run along the channels).
bool uses_winograd_weight_grad(const model::Layer &l, const Algorithms &a);

// conv_winograd.cpp: out(x, y, o, n) = sum_{c, ky, kx} weight(kx, ky, c, o) src(x + kx - 1, y + ky - 1, c, n)
// for a src (x, y, c, n) of `channels` channels that reads zero outside its
// image, `width` wide. winograd_pitch: its tiles per tile row.
// By F(tile x tile, 3x3), tile 2 or 4.
Winograd winograd_3x3(const std::string &name, const Func &src, const Func &weight, int channels, int width, int tile);
int winograd_pitch(int width, int tile);
// d_weight(kx, ky, c, o) = sum_{n, x, y} d_out(x, y, o, n) src(x + kx - 1, y + ky - 1, c, n)
// over `width` x `height` outputs of `batch` images, d_out reading zero outside
// them, src zero outside its image.
WinogradWeightGrad winograd_3x3_weight_grad(const std::string &name, const Func &src, const Func &d_out, int width,
                                            int height, Expr batch);

// pool.cpp (maxpool and avgpool)
Forward pool_forward(const model::Layer &l, const Func &in);
Backward pool_backward(const model::Layer &l, const BackwardArgs &args);

// dense.cpp
Forward dense_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in);
Backward dense_backward(const model::Network &net, const model::Layer &l, const Func &params, const BackwardArgs &args);

// global_pool.cpp
Forward global_pool_forward(const model::Layer &l, const Func &in);
Backward global_pool_backward(const model::Layer &l, const BackwardArgs &args);

// batchnorm.cpp: `batch` (N) defined: training, with the batch's statistics;
// undefined: evaluation, with the running statistics.
Forward batchnorm_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in,
                          Expr batch);
Backward batchnorm_backward(const model::Network &net, const model::Layer &l, const Func &params,
                            const BackwardArgs &args);

// dropout.cpp: `seed` changes every training step; undefined in inference.
// `first_image`: the index of image n = 0 in the whole batch (masks hash n + first_image).
Expr dropout_keep(const model::Layer &l, int layer_index, Expr seed, Expr x, Expr y, Expr c, Expr n);
Forward dropout_forward(const model::Layer &l, int layer_index, const Func &in, Expr seed, Expr first_image);
Backward dropout_backward(const model::Layer &l, int layer_index, const BackwardArgs &args, Expr seed,
                          Expr first_image);

// loss.cpp (generator/): softmax cross-entropy with label smoothing (0: none), averaged over the batch.
struct Loss {
    Func max_score;  // (n) per-image maximum, for a stable log-sum-exp
    Func log_sum;    // (n) log sum exp of the scores
    Func target;     // (o, n) the smoothed one-hot target
    Func loss;       // () mean over the batch
    Func d_scores;   // (o, n)
};
Loss softmax_cross_entropy(const Func &scores, const Func &labels, int classes, Expr batch, Type t,
                           double label_smoothing);

}  // namespace kiln::layers
