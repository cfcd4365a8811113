// The reference training step: naive loops in double precision, one function per
// layer kind and direction, written from the definitions in model/network.h.
//
// Dimension letters:
//   N images in the batch, C input channels, H/W input rows/columns,
//   O output channels (conv) or units (dense), OH/OW output rows/columns,
//   K kernel or pool window size, S stride, P zero padding, L classes.
//   Loop variables: n image, c input channel, o output channel, y/x input row/column,
//   oy/ox output row/column, ky/kx offset inside a kernel or window.
// Every activation and every activation gradient is a Tensor [N, C, H, W], row-major;
// a dense layer's output is [N, O, 1, 1]. d_X is the gradient of the loss w.r.t. X.
#include "reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "model/kinds/batchnorm.h"
#include "model/kinds/conv.h"
#include "model/kinds/dense.h"
#include "model/kinds/dropout.h"
#include "model/kinds/pool.h"

namespace kiln::reference {
namespace {

using model::Activation;
using model::Layer;

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

Shards cut(int64_t n, int shards) {
    Shards s;
    const int64_t k = std::max<int64_t>(1, std::min<int64_t>(shards, n));
    for (int64_t i = 0; i <= k; i++) s.begin.push_back(i * n / k);
    return s;
}

// ---- activations ----------------------------------------------------------------

double activate(Activation a, double pre) {
    switch (a) {
    case Activation::none: return pre;
    case Activation::relu: return pre > 0 ? pre : 0.0;
    case Activation::tanh: return std::tanh(pre);
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-pre));
    }
    throw std::logic_error("unknown activation");
}

// d activate(pre) / d pre. ReLU's derivative at 0 is taken as 0, as PyTorch does.
double activation_derivative(Activation a, double pre) {
    switch (a) {
    case Activation::none: return 1.0;
    case Activation::relu: return pre > 0 ? 1.0 : 0.0;
    case Activation::tanh: return 1.0 - std::tanh(pre) * std::tanh(pre);
    case Activation::sigmoid: {
        double s = 1.0 / (1.0 + std::exp(-pre));
        return s * (1.0 - s);
    }
    }
    throw std::logic_error("unknown activation");
}

Tensor activation_forward(Activation a, const Tensor &pre /* [N, O, OH, OW] */) {
    Tensor out = pre;  // [N, O, OH, OW]
    for (double &x : out.v) x = activate(a, x);
    return out;
}

Tensor activation_backward(Activation a, const Tensor &pre /* [N, O, OH, OW] */, const Tensor &d_out /* same */) {
    Tensor d_pre = d_out;  // [N, O, OH, OW]
    for (size_t i = 0; i < d_pre.v.size(); i++) d_pre.v[i] *= activation_derivative(a, pre.v[i]);
    return d_pre;
}

// ---- conv: weight [O, C, K, K], bias [O] ---------------------------------------------
//   pre[n, o, oy, ox] = bias[o] + sum_{c, ky, kx} weight[o, c, ky, kx] * in[n, c, oy*S + ky - P, ox*S + kx - P]
// with the input read as zero outside [0, H) x [0, W).

double conv_weight(const double *w, const Layer &l, int64_t o, int64_t c, int64_t ky, int64_t kx) {
    const int64_t C = l.in.channels, K = l.spec_as<model::ConvSpec>().kernel;
    return w[((o * C + c) * K + ky) * K + kx];
}

Tensor conv_forward(const Layer &l, const double *w, const double *b, const Tensor &in /* [N, C, H, W] */) {
    const int64_t K = l.spec_as<model::ConvSpec>().kernel, S = l.spec_as<model::ConvSpec>().stride, P = l.spec_as<model::ConvSpec>().padding;
    Tensor pre(in.N, l.out.channels, l.out.height, l.out.width);  // [N, O, OH, OW]
    for (int64_t n = 0; n < pre.N; n++)
        for (int64_t o = 0; o < pre.C; o++)
            for (int64_t oy = 0; oy < pre.H; oy++)
                for (int64_t ox = 0; ox < pre.W; ox++) {
                    double sum = b[o];
                    for (int64_t c = 0; c < in.C; c++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                const int64_t y = oy * S + ky - P, x = ox * S + kx - P;
                                if (y < 0 || y >= in.H || x < 0 || x >= in.W) continue;  // zero padding
                                sum += conv_weight(w, l, o, c, ky, kx) * in.at(n, c, y, x);
                            }
                    pre.at(n, o, oy, ox) = sum;
                }
    return pre;
}

// Adds into d_w [O, C, K, K] and d_b [O]; returns d_in [N, C, H, W].
Tensor conv_backward(const Layer &l, const double *w, const Tensor &in /* [N, C, H, W] */,
                     const Tensor &d_pre /* [N, O, OH, OW] */, double *d_w, double *d_b) {
    const int64_t C = in.C, K = l.spec_as<model::ConvSpec>().kernel, S = l.spec_as<model::ConvSpec>().stride, P = l.spec_as<model::ConvSpec>().padding;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_pre.N; n++)
        for (int64_t o = 0; o < d_pre.C; o++)
            for (int64_t oy = 0; oy < d_pre.H; oy++)
                for (int64_t ox = 0; ox < d_pre.W; ox++) {
                    const double g = d_pre.at(n, o, oy, ox);
                    d_b[o] += g;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ky = 0; ky < K; ky++)
                            for (int64_t kx = 0; kx < K; kx++) {
                                const int64_t y = oy * S + ky - P, x = ox * S + kx - P;
                                if (y < 0 || y >= in.H || x < 0 || x >= in.W) continue;
                                d_w[((o * C + c) * K + ky) * K + kx] += g * in.at(n, c, y, x);
                                d_in.at(n, c, y, x) += g * conv_weight(w, l, o, c, ky, kx);
                            }
                }
    return d_in;
}

// ---- maxpool and avgpool: K x K windows at stride S, no padding -----------------------
//   max: out[n, c, oy, ox] = max_{ky, kx} in[n, c, oy*S + ky, ox*S + kx]
//   avg: out[n, c, oy, ox] = mean_{ky, kx} in[n, c, oy*S + ky, ox*S + kx]

Tensor maxpool_forward(const Layer &l, const Tensor &in /* [N, C, H, W] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor out(in.N, in.C, l.out.height, l.out.width);  // [N, C, OH, OW]
    for (int64_t n = 0; n < out.N; n++)
        for (int64_t c = 0; c < out.C; c++)
            for (int64_t oy = 0; oy < out.H; oy++)
                for (int64_t ox = 0; ox < out.W; ox++) {
                    double best = in.at(n, c, oy * S, ox * S);
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) best = std::max(best, in.at(n, c, oy * S + ky, ox * S + kx));
                    out.at(n, c, oy, ox) = best;
                }
    return out;
}

// Each window's gradient goes to its FIRST maximum in row-major (ky, kx) order.
Tensor maxpool_backward(const Layer &l, const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, OH, OW] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_out.N; n++)
        for (int64_t c = 0; c < d_out.C; c++)
            for (int64_t oy = 0; oy < d_out.H; oy++)
                for (int64_t ox = 0; ox < d_out.W; ox++) {
                    int64_t best_y = oy * S, best_x = ox * S;
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) {
                            const int64_t y = oy * S + ky, x = ox * S + kx;
                            if (in.at(n, c, y, x) > in.at(n, c, best_y, best_x)) best_y = y, best_x = x;  // strict: first wins
                        }
                    d_in.at(n, c, best_y, best_x) += d_out.at(n, c, oy, ox);
                }
    return d_in;
}

Tensor avgpool_forward(const Layer &l, const Tensor &in /* [N, C, H, W] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor out(in.N, in.C, l.out.height, l.out.width);  // [N, C, OH, OW]
    for (int64_t n = 0; n < out.N; n++)
        for (int64_t c = 0; c < out.C; c++)
            for (int64_t oy = 0; oy < out.H; oy++)
                for (int64_t ox = 0; ox < out.W; ox++) {
                    double sum = 0;
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) sum += in.at(n, c, oy * S + ky, ox * S + kx);
                    out.at(n, c, oy, ox) = sum / double(K * K);
                }
    return out;
}

Tensor avgpool_backward(const Layer &l, const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, OH, OW] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_out.N; n++)
        for (int64_t c = 0; c < d_out.C; c++)
            for (int64_t oy = 0; oy < d_out.H; oy++)
                for (int64_t ox = 0; ox < d_out.W; ox++)
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++)
                            d_in.at(n, c, oy * S + ky, ox * S + kx) += d_out.at(n, c, oy, ox) / double(K * K);
    return d_in;
}

// ---- dense: weight [O, C*H*W] over the input flattened in (c, y, x) order, bias [O] ----
//   pre[n, o, 0, 0] = bias[o] + sum_{c, y, x} weight[o, (c*H + y)*W + x] * in[n, c, y, x]

Tensor dense_forward(const Layer &l, const double *w, const double *b, const Tensor &in /* [N, C, H, W] */) {
    const int64_t D = in.C * in.H * in.W;  // flattened input size
    Tensor pre(in.N, l.out.channels, 1, 1);  // [N, O, 1, 1]
    for (int64_t n = 0; n < pre.N; n++)
        for (int64_t o = 0; o < pre.C; o++) {
            double sum = b[o];
            for (int64_t c = 0; c < in.C; c++)
                for (int64_t y = 0; y < in.H; y++)
                    for (int64_t x = 0; x < in.W; x++) sum += w[o * D + (c * in.H + y) * in.W + x] * in.at(n, c, y, x);
            pre.at(n, o, 0, 0) = sum;
        }
    return pre;
}

// Adds into d_w [O, C*H*W] and d_b [O]; returns d_in [N, C, H, W].
Tensor dense_backward(const double *w, const Tensor &in /* [N, C, H, W] */, const Tensor &d_pre /* [N, O, 1, 1] */,
                      double *d_w, double *d_b) {
    const int64_t D = in.C * in.H * in.W;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_pre.N; n++)
        for (int64_t o = 0; o < d_pre.C; o++) {
            const double g = d_pre.at(n, o, 0, 0);
            d_b[o] += g;
            for (int64_t c = 0; c < in.C; c++)
                for (int64_t y = 0; y < in.H; y++)
                    for (int64_t x = 0; x < in.W; x++) {
                        const int64_t i = (c * in.H + y) * in.W + x;
                        d_w[o * D + i] += g * in.at(n, c, y, x);
                        d_in.at(n, c, y, x) += g * w[o * D + i];
                    }
        }
    return d_in;
}

// ---- loss: mean over the batch of softmax cross-entropy, with label smoothing e ----
//   q[n, l] = (1 - e) [l == label[n]] + e / L   (PyTorch's CrossEntropyLoss(label_smoothing = e))
//   loss = 1/N sum_n sum_l q[n, l] ( log sum_k exp(scores[n, k]) - scores[n, l] )
//   d_scores[n, l] = (softmax(scores[n])[l] - q[n, l]) / N

double softmax_cross_entropy(const Tensor &scores /* [N, L, 1, 1] */, const int32_t *labels, double smoothing,
                             Tensor &d_scores /* [N, L, 1, 1] */) {
    const int64_t N = scores.N, L = scores.C;
    double loss = 0;
    for (int64_t n = 0; n < N; n++) {
        double m = scores.at(n, 0, 0, 0);
        for (int64_t l = 1; l < L; l++) m = std::max(m, scores.at(n, l, 0, 0));
        double sum = 0;
        for (int64_t l = 0; l < L; l++) sum += std::exp(scores.at(n, l, 0, 0) - m);
        const double log_sum = m + std::log(sum);
        for (int64_t l = 0; l < L; l++) {
            const double q = (l == labels[n] ? 1.0 - smoothing : 0.0) + smoothing / double(L);
            loss += q * (log_sum - scores.at(n, l, 0, 0)) / double(N);
            d_scores.at(n, l, 0, 0) = (std::exp(scores.at(n, l, 0, 0) - log_sum) - q) / double(N);
        }
    }
    return loss;
}

// ---- dropout ------------------------------------------------------------------------

// The mask is part of dropout's definition (generator/layers/dropout.cpp): an element
// is kept where the "lowbias32" mix of (seed, layer index, x, y, c, n), coordinate
// by coordinate, is at least rate * 2^32.
uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    return h ^ (h >> 16);
}

bool dropout_keep(const Layer &l, int index, uint32_t seed, int64_t x, int64_t y, int64_t c, int64_t n) {
    uint32_t h = seed ^ (uint32_t(index) * 0x9e3779b9u);
    for (int64_t coordinate : {x, y, c, n}) h = mix(h ^ uint32_t(coordinate));
    return double(h) >= std::min(l.spec_as<model::DropoutSpec>().rate * 4294967296.0, 4294967295.0);
}

// out = keep ? in / (1 - rate) : 0; its adjoint is the same map of d_out.
Tensor dropout_apply(const Layer &l, int index, uint32_t seed, const Tensor &t /* [N, C, H, W] */) {
    Tensor out(t.N, t.C, t.H, t.W);  // [N, C, H, W]
    for (int64_t n = 0; n < t.N; n++)
        for (int64_t c = 0; c < t.C; c++)
            for (int64_t y = 0; y < t.H; y++)
                for (int64_t x = 0; x < t.W; x++)
                    out.at(n, c, y, x) =
                        dropout_keep(l, index, seed, x, y, c, n) ? t.at(n, c, y, x) / (1 - l.spec_as<model::DropoutSpec>().rate) : 0.0;
    return out;
}

// ---- global average pooling -------------------------------------------------------

// out[n, c, 0, 0] = mean over y, x of in[n, c, y, x]
Tensor global_pool_forward(const Tensor &in /* [N, C, H, W] */) {
    Tensor out(in.N, in.C, 1, 1);  // [N, C, 1, 1]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++) {
            double sum = 0;
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) sum += in.at(n, c, y, x);
            out.at(n, c, 0, 0) = sum / double(in.H * in.W);
        }
    return out;
}

// d_in[n, c, y, x] = d_out[n, c, 0, 0] / (H W)
Tensor global_pool_backward(const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, 1, 1] */) {
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) d_in.at(n, c, y, x) = d_out.at(n, c, 0, 0) / double(in.H * in.W);
    return d_in;
}

// ---- batchnorm: per channel c over the M = N*H*W elements (n, y, x) ---------------------
//   pre[n, c, y, x] = weight[c] (in[n, c, y, x] - mean[c]) / sqrt(var[c] + eps) + bias[c]
// with the batch's mean and biased variance in training, running_mean and
// running_var in evaluation; then the activation.

// The batch's mean and biased variance of each channel of `in` [N, C, H, W].
void batch_statistics(const Tensor &in, std::vector<double> &mean /* [C] */, std::vector<double> &var /* [C] */) {
    const double M = double(in.N * in.H * in.W);
    mean.assign(size_t(in.C), 0.0);
    var.assign(size_t(in.C), 0.0);
    for (int64_t c = 0; c < in.C; c++) {
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) mean[size_t(c)] += in.at(n, c, y, x) / M;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    const double d = in.at(n, c, y, x) - mean[size_t(c)];
                    var[size_t(c)] += d * d / M;
                }
    }
}

Tensor batchnorm_forward(const Layer &l, const double *w, const double *b, const std::vector<double> &mean,
                         const std::vector<double> &var, const Tensor &in /* [N, C, H, W] */) {
    Tensor pre(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++)
                    pre.at(n, c, y, x) = w[c] * (in.at(n, c, y, x) - mean[size_t(c)]) /
                                             std::sqrt(var[size_t(c)] + l.spec_as<model::BatchNormSpec>().epsilon) +
                                         b[c];
    return pre;
}

// Training mode: the batch's statistics depend on every element, so
//   d_in = w / sqrt(var + eps) (d_pre - mean over (n, y, x) of d_pre - xhat mean of (d_pre xhat)),
// xhat = (in - mean) / sqrt(var + eps). Adds into d_w [C] and d_b [C].
Tensor batchnorm_backward(const Layer &l, const double *w, const std::vector<double> &mean,
                          const std::vector<double> &var, const Tensor &in /* [N, C, H, W] */,
                          const Tensor &d_pre /* [N, C, H, W] */, double *d_w, double *d_b) {
    const double M = double(in.N * in.H * in.W);
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t c = 0; c < in.C; c++) {
        const double inv_std = 1 / std::sqrt(var[size_t(c)] + l.spec_as<model::BatchNormSpec>().epsilon);
        double sum = 0, sum_xhat = 0;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    sum += d_pre.at(n, c, y, x);
                    sum_xhat += d_pre.at(n, c, y, x) * (in.at(n, c, y, x) - mean[size_t(c)]) * inv_std;
                }
        d_b[c] += sum;
        d_w[c] += sum_xhat;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    const double xhat = (in.at(n, c, y, x) - mean[size_t(c)]) * inv_std;
                    d_in.at(n, c, y, x) = w[c] * inv_std * (d_pre.at(n, c, y, x) - sum / M - xhat * sum_xhat / M);
                }
    }
    return d_in;
}

// ---- add and concat -----------------------------------------------------------------

// pre = sum of the inputs (all [N, C, H, W]); each input's gradient is d_pre.
Tensor add_forward(const std::vector<const Tensor *> &in) {
    Tensor sum = *in[0];
    for (size_t k = 1; k < in.size(); k++)
        for (size_t i = 0; i < sum.v.size(); i++) sum.v[i] += in[k]->v[i];
    return sum;
}

// Channels stacked in input order: [N, C_0 + C_1 + ..., H, W].
Tensor concat_forward(const std::vector<const Tensor *> &in) {
    int64_t C = 0;
    for (const Tensor *t : in) C += t->C;
    Tensor out(in[0]->N, C, in[0]->H, in[0]->W);
    for (int64_t n = 0; n < out.N; n++) {
        int64_t offset = 0;
        for (const Tensor *t : in) {
            for (int64_t c = 0; c < t->C; c++)
                for (int64_t y = 0; y < t->H; y++)
                    for (int64_t x = 0; x < t->W; x++) out.at(n, offset + c, y, x) = t->at(n, c, y, x);
            offset += t->C;
        }
    }
    return out;
}

// Input k's gradient: its channels' slice of d_out.
Tensor concat_backward(const Tensor &d_out, int64_t offset, int64_t channels) {
    Tensor d(d_out.N, channels, d_out.H, d_out.W);
    for (int64_t n = 0; n < d.N; n++)
        for (int64_t c = 0; c < channels; c++)
            for (int64_t y = 0; y < d.H; y++)
                for (int64_t x = 0; x < d.W; x++) d.at(n, c, y, x) = d_out.at(n, offset + c, y, x);
    return d;
}

// ---- the network ------------------------------------------------------------------

// The output shape from the definitions, checked against the model's own.
void check_shape(const model::Network &net, const Layer &l) {
    model::Shape want;
    const std::string_view kind = l.kind->name;
    if (kind == "conv") {
        const model::ConvSpec &s = l.spec_as<model::ConvSpec>();
        want = {s.filters, (l.in.height + 2 * s.padding - s.kernel) / s.stride + 1,
                (l.in.width + 2 * s.padding - s.kernel) / s.stride + 1};
    } else if (kind == "maxpool" || kind == "avgpool") {
        const model::PoolSpec &s = l.spec_as<model::PoolSpec>();
        want = {l.in.channels, (l.in.height - s.size) / s.stride + 1, (l.in.width - s.size) / s.stride + 1};
    } else if (kind == "dense") {
        want = {l.spec_as<model::DenseSpec>().units, 1, 1};
    } else if (kind == "globalavgpool") {
        want = {l.in.channels, 1, 1};
    } else if (kind == "concat") {
        want = l.in;
        want.channels = 0;
        for (int from : l.inputs) want.channels += net.shape_of(from).channels;
    } else {  // dropout, batchnorm, add
        want = l.in;
    }
    if (!(want == l.out)) throw std::logic_error("reference: layer " + l.name + " has an unexpected output shape");
}

// What the backward pass needs of one layer's forward pass.
struct Saved {
    Tensor in;   // [N, C, H, W] the first input
    Tensor pre;  // [N, O, OH, OW] before the activation (conv, dense, batchnorm; empty for pooling)
    std::vector<std::vector<double>> mean, var;  // batchnorm: [shards][C] the statistics it normalized with
};

// A tensor of the flat parameter vector.
const double *tensor(const model::Network &net, const std::vector<double> &p, int index) {
    return p.data() + net.params[size_t(index)].offset;
}

// The forward pass in training (dropout masks from `dropout_seed`, batchnorm with
// the batch's statistics) or in evaluation: the scores [N, L, 1, 1], and what the
// backward pass needs of each layer.
Tensor forward(const model::Network &net, const std::vector<double> &p, const float *images, int n, bool training,
               uint32_t dropout_seed, const Shards &shards, std::vector<Saved> &saved, std::vector<Tensor> &outs) {
    auto weight = [&](const Layer &l) { return tensor(net, p, l.weight); };
    auto bias = [&](const Layer &l) { return tensor(net, p, l.bias); };

    // The input, normalized: [N, C, H, W].
    const model::InputSpec &spec = net.input;
    Tensor x(n, spec.channels, spec.height, spec.width);
    for (size_t i = 0; i < x.v.size(); i++) x.v[i] = (double(images[i]) - spec.mean) / spec.std;

    const Tensor input = x;
    for (const Layer &l : net.layers) {
        check_shape(net, l);
        std::vector<const Tensor *> ins;
        for (int from : l.inputs) ins.push_back(from < 0 ? &input : &outs[size_t(from)]);
        x = *ins[0];
        Saved s{x, Tensor(0, 0, 0, 0), {}, {}};
        const std::string_view kind = l.kind->name;
        if (kind == "conv") s.pre = conv_forward(l, weight(l), bias(l), x);
        else if (kind == "dense") s.pre = dense_forward(l, weight(l), bias(l), x);
        else if (kind == "maxpool") x = maxpool_forward(l, x);
        else if (kind == "avgpool") x = avgpool_forward(l, x);
        else if (kind == "dropout") {
            if (training) x = dropout_apply(l, int(&l - net.layers.data()), dropout_seed, x);
        } else if (kind == "globalavgpool") x = global_pool_forward(x);
        else if (kind == "add") s.pre = add_forward(ins);
        else if (kind == "concat") x = concat_forward(ins);
        else if (kind == "batchnorm") {
            s.pre = Tensor(x.N, x.C, x.H, x.W);
            if (training) {
                for (size_t k = 0; k < shards.size(); k++) {
                    const Tensor part = x.images(shards.begin[k], shards.count(k));
                    s.mean.emplace_back(), s.var.emplace_back();
                    batch_statistics(part, s.mean.back(), s.var.back());
                    s.pre.put_images(shards.begin[k], batchnorm_forward(l, weight(l), bias(l), s.mean.back(),
                                                                        s.var.back(), part));
                }
            } else {
                const int64_t C = l.in.channels;
                s.mean.emplace_back(tensor(net, p, l.running_mean), tensor(net, p, l.running_mean) + C);
                s.var.emplace_back(tensor(net, p, l.running_var), tensor(net, p, l.running_var) + C);
                s.pre = batchnorm_forward(l, weight(l), bias(l), s.mean[0], s.var[0], x);
            }
        } else {
            throw std::logic_error("reference: no reference for layer type " + std::string(kind));
        }
        if (s.pre.N > 0) x = activation_forward(l.activation, s.pre);
        saved.push_back(std::move(s));
        outs.push_back(x);
    }
    return x;
}

}  // namespace

std::vector<double> reference_forward(const model::Network &net, const std::vector<float> &params, const float *images,
                                      int n) {
    if (int64_t(params.size()) != net.param_count) throw std::invalid_argument("reference: wrong parameter count");
    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    return forward(net, std::vector<double>(params.begin(), params.end()), images, n, false, 0, cut(n, 1), saved, outs).v;
}

std::vector<std::vector<double>> reference_layer_outputs(const model::Network &net, const std::vector<float> &params,
                                                         const float *images, int n) {
    if (int64_t(params.size()) != net.param_count) throw std::invalid_argument("reference: wrong parameter count");
    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    forward(net, std::vector<double>(params.begin(), params.end()), images, n, false, 0, cut(n, 1), saved, outs);
    std::vector<std::vector<double>> outputs;
    for (const Tensor &t : outs) outputs.push_back(t.v);
    return outputs;
}

ReferenceResult reference_train_step(const model::Network &net, const std::vector<float> &params,
                                     const float *images, const int32_t *labels, int n, uint32_t dropout_seed,
                                     int shard_count) {
    if (int64_t(params.size()) != net.param_count) throw std::invalid_argument("reference: wrong parameter count");
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= net.input.classes) throw std::invalid_argument("reference: bad label");
    const std::vector<double> p(params.begin(), params.end());  // [param_count]
    ReferenceResult r;
    r.grad.assign(p.size(), 0.0);  // [param_count]
    auto weight = [&](const Layer &l) { return tensor(net, p, l.weight); };
    auto d_weight = [&](const Layer &l) { return r.grad.data() + net.params[size_t(l.weight)].offset; };
    auto d_bias = [&](const Layer &l) { return r.grad.data() + net.params[size_t(l.bias)].offset; };

    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    const Shards shards = cut(n, shard_count);
    Tensor x = forward(net, p, images, n, true, dropout_seed, shards, saved, outs);  // the scores, [N, L, 1, 1]
    r.scores = x.v;
    Tensor d(x.N, x.C, x.H, x.W);  // d_scores, then each layer's d_in in turn
    r.loss = softmax_cross_entropy(x, labels, net.train.label_smoothing, d);

    // Backward, in reverse file order: a layer's output gradient is the sum of
    // what each layer reading it sends back, complete before its own turn.
    std::vector<Tensor> d_outs(net.layers.size(), Tensor(0, 0, 0, 0));
    d_outs.back() = d;
    auto send = [&](int to, const Tensor &g) {
        if (to < 0) return;  // the images need no gradient
        Tensor &acc = d_outs[size_t(to)];
        if (acc.N == 0) acc = g;
        else for (size_t k = 0; k < acc.v.size(); k++) acc.v[k] += g.v[k];
    };
    for (size_t i = net.layers.size(); i-- > 0;) {
        const Layer &l = net.layers[i];
        const Saved &s = saved[i];
        d = d_outs[i];
        const std::string_view kind = l.kind->name;
        if (kind == "add") {
            const Tensor d_pre = activation_backward(l.activation, s.pre, d);
            for (int from : l.inputs) send(from, d_pre);
            continue;
        }
        if (kind == "concat") {
            int64_t offset = 0;
            for (int from : l.inputs) {
                const int64_t channels = net.shape_of(from).channels;
                send(from, concat_backward(d, offset, channels));
                offset += channels;
            }
            continue;
        }
        if (kind == "conv") {
            d = conv_backward(l, weight(l), s.in, activation_backward(l.activation, s.pre, d), d_weight(l), d_bias(l));
        } else if (kind == "dense") {
            d = dense_backward(weight(l), s.in, activation_backward(l.activation, s.pre, d), d_weight(l), d_bias(l));
        } else if (kind == "maxpool") {
            d = maxpool_backward(l, s.in, d);
        } else if (kind == "avgpool") {
            d = avgpool_backward(l, s.in, d);
        } else if (kind == "dropout") {
            d = dropout_apply(l, int(i), dropout_seed, d);
        } else if (kind == "globalavgpool") {
            d = global_pool_backward(s.in, d);
        } else if (kind == "batchnorm") {
            const Tensor d_pre = activation_backward(l.activation, s.pre, d);
            d = Tensor(d_pre.N, d_pre.C, d_pre.H, d_pre.W);
            for (size_t k = 0; k < shards.size(); k++)
                d.put_images(shards.begin[k],
                             batchnorm_backward(l, weight(l), s.mean[k], s.var[k], s.in.images(shards.begin[k], shards.count(k)),
                                                d_pre.images(shards.begin[k], shards.count(k)), d_weight(l), d_bias(l)));
            // The buffers' places hold the whole batch's mean and unbiased variance (biased for M = 1).
            std::vector<double> mean, var;
            batch_statistics(s.in, mean, var);
            const double M = double(s.in.N * s.in.H * s.in.W);
            for (int64_t c = 0; c < l.in.channels; c++) {
                r.grad[size_t(net.params[size_t(l.running_mean)].offset + c)] = mean[size_t(c)];
                r.grad[size_t(net.params[size_t(l.running_var)].offset + c)] = var[size_t(c)] * M / std::max(M - 1, 1.0);
            }
        }
        send(l.inputs[0], d);
    }
    return r;
}

}  // namespace kiln::reference

