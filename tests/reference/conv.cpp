// conv: weight [O, C, K, K], bias [O], then the activation.
//   pre[n, o, oy, ox] = bias[o] + sum_{c, ky, kx} weight[o, c, ky, kx] * in[n, c, oy*S + ky - P, ox*S + kx - P]
// with the input read as zero outside [0, H) x [0, W).
#include "reference/kind.h"

#include "model/kinds/conv.h"

namespace kiln::reference {
namespace {

using model::Layer;

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

model::Shape conv_shape(const model::Network &, const Layer &l) {
    const model::ConvSpec &s = l.spec_as<model::ConvSpec>();
    return {s.filters, (l.in.height + 2 * s.padding - s.kernel) / s.stride + 1,
            (l.in.width + 2 * s.padding - s.kernel) / s.stride + 1};
}

Tensor forward(const Step &step, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &s) {
    s.pre = conv_forward(l, step.tensor(l.weight), step.tensor(l.bias), *in[0]);
    return activation_forward(l.activation, s.pre);
}

std::vector<Tensor> backward(const Step &step, const Layer &l, int, const Saved &s, const Tensor &d_out) {
    return {conv_backward(l, step.tensor(l.weight), s.in, activation_backward(l.activation, s.pre, d_out),
                          step.d_tensor(l.weight), step.d_tensor(l.bias))};
}

}  // namespace

void register_conv(KindTable &t) { t.push_back({"conv", conv_shape, forward, backward}); }

}  // namespace kiln::reference
