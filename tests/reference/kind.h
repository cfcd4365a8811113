// The reference's layer kinds: one file per kind in tests/reference/, its forward
// and backward side by side, registered under the kind's name (model::Kind::name)
// in the table that the network's passes (tests/reference.cpp) iterate. A new kind
// is a new file here; cmake/KilnKinds.cmake gathers the files.
//
// Dimension letters:
//   N images in the batch, C input channels, H/W input rows/columns,
//   O output channels (conv) or units (dense), OH/OW output rows/columns,
//   K kernel or pool window size, S stride, P zero padding, L classes.
//   Loop variables: n image, c input channel, o output channel, y/x input row/column,
//   oy/ox output row/column, ky/kx offset inside a kernel or window.
// Every activation and every activation gradient is a Tensor [N, C, H, W], row-major;
// a dense layer's output is [N, O, 1, 1]. d_X is the gradient of the loss w.r.t. X.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "model/network.h"

namespace kiln::reference {

struct Tensor {
    int64_t N = 0, C = 0, H = 0, W = 0;
    std::vector<double> v;  // [N, C, H, W]

    Tensor(int64_t n, int64_t c, int64_t h, int64_t w) : N(n), C(c), H(h), W(w), v(size_t(n * c * h * w), 0.0) {}
    double &at(int64_t n, int64_t c, int64_t y, int64_t x) { return v[size_t(((n * C + c) * H + y) * W + x)]; }
    double at(int64_t n, int64_t c, int64_t y, int64_t x) const { return v[size_t(((n * C + c) * H + y) * W + x)]; }

    // Images first .. first + count - 1: [count, C, H, W]
    Tensor images(int64_t first, int64_t count) const {
        Tensor part(count, C, H, W);
        const size_t image = size_t(C * H * W);
        std::copy_n(v.begin() + ptrdiff_t(size_t(first) * image), size_t(count) * image, part.v.begin());
        return part;
    }
    void put_images(int64_t first, const Tensor &part) {
        std::copy(part.v.begin(), part.v.end(), v.begin() + ptrdiff_t(size_t(first) * size_t(C * H * W)));
    }
};

// A batch cut into shards: shard s holds images begin[s] .. begin[s + 1] - 1.
// Batchnorm normalizes each shard with its own statistics in training.
struct Shards {
    std::vector<int64_t> begin;  // [shards + 1]
    int64_t count(size_t s) const { return begin[s + 1] - begin[s]; }
    size_t size() const { return begin.size() - 1; }
};

// What the backward pass needs of one layer's forward pass.
struct Saved {
    Tensor in;   // [N, C, H, W] the first input
    Tensor pre;  // [N, O, OH, OW] before the activation (conv, dense, batchnorm, add; empty for the others)
    std::vector<std::vector<double>> mean, var;  // batchnorm: [shards][C] the statistics it normalized with
};

// The step a layer is part of: the network, its parameters and their gradient.
struct Step {
    const model::Network &net;
    const std::vector<double> &p;  // [param_count], the flat layout of net.params
    bool training;                 // dropout masks drawn, batchnorm with the batch's statistics
    uint32_t dropout_seed;
    const Shards &shards;
    std::vector<double> *grad;  // [param_count]; backward only

    // Parameter tensor `index` (net.params) and its gradient.
    const double *tensor(int index) const { return p.data() + net.params[size_t(index)].offset; }
    double *d_tensor(int index) const { return grad->data() + net.params[size_t(index)].offset; }
};

// One layer of a kind (`index` in net.layers), as its file defines it.
struct KindReference {
    std::string_view kind;
    // The output shape from the kind's definition (checked against the model's).
    model::Shape (*shape)(const model::Network &net, const model::Layer &l) = nullptr;
    // The output from the inputs (in l.inputs order); keeps in `saved` what backward needs.
    Tensor (*forward)(const Step &step, const model::Layer &l, int index, const std::vector<const Tensor *> &in,
                      Saved &saved) = nullptr;
    // Each input's gradient from d_out (in l.inputs order); adds the parameters'
    // gradients into *step.grad.
    std::vector<Tensor> (*backward)(const Step &step, const model::Layer &l, int index, const Saved &saved,
                                    const Tensor &d_out) = nullptr;
};
using KindTable = std::vector<KindReference>;

// The reference of l's kind; none: std::logic_error naming it.
const KindReference &kind_reference(const model::Layer &l);

// Shared by the kinds (tests/reference.cpp): the activation applied element-wise,
// and its adjoint, d_pre = activate'(pre) d_out.
Tensor activation_forward(model::Activation a, const Tensor &pre /* [N, O, OH, OW] */);
Tensor activation_backward(model::Activation a, const Tensor &pre /* [N, O, OH, OW] */, const Tensor &d_out /* same */);

}  // namespace kiln::reference
