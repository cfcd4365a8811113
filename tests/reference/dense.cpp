// dense: weight [O, C*H*W] over the input flattened in (c, y, x) order, bias [O],
// then the activation.
//   pre[n, o, 0, 0] = bias[o] + sum_{c, y, x} weight[o, (c*H + y)*W + x] * in[n, c, y, x]
#include "reference/kind.h"

#include "model/kinds/dense.h"

namespace kiln::reference {
namespace {

using model::Layer;

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

model::Shape dense_shape(const model::Network &, const Layer &l) { return {l.spec_as<model::DenseSpec>().units, 1, 1}; }

Tensor forward(const Step &step, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &s) {
    s.pre = dense_forward(l, step.tensor(l.weight), step.tensor(l.bias), *in[0]);
    return activation_forward(l.activation, s.pre);
}

std::vector<Tensor> backward(const Step &step, const Layer &l, int, const Saved &s, const Tensor &d_out) {
    return {dense_backward(step.tensor(l.weight), s.in, activation_backward(l.activation, s.pre, d_out),
                           step.d_tensor(l.weight), step.d_tensor(l.bias))};
}

}  // namespace

void register_dense(KindTable &t) { t.push_back({"dense", dense_shape, forward, backward}); }

}  // namespace kiln::reference
