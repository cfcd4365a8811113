// Convolution: forward and adjoint.
//   pre(x, y, o, n) = bias[o] + sum_{c, ky, kx} weight[o, c, ky, kx] * in(x*S + kx - P, y*S + ky - P, c, n)
//   out = activation(pre)
// weight is [O, C, K, K] (PyTorch's layout) inside the flat parameter vector.
// Adjoint:
//   d_pre = activation'(out) d_out;  d_bias[o] = sum_{x, y, n} d_pre(x, y, o, n)
//   d_weight[o, c, ky, kx] = sum_{x, y, n} d_pre(x, y, o, n) in(x*S + kx - P, y*S + ky - P, c, n)
//   d_in(x, y, c, n) = sum_{o, ky, kx} weight[o, c, ky, kx] d_pre((x + P - kx) / S, (y + P - ky) / S, o, n)
//     over the taps where S divides x + P - kx and y + P - ky: at S > 1, one dense sum per
//     phase (x mod S, y mod S) of the input, over that phase's taps
// At stride 1 and K = 3, P = 1, d_in is itself a 'same' correlation of d_pre with the
// kernel flipped and channels swapped, weight'(kx, ky, o, c) = weight[o, c, 2 - ky, 2 - kx]:
// such layers may compute pre and d_in by Winograd (conv_winograd.cpp) instead, and
// d_weight by its adjoint.
#include <algorithm>

#include "layers/layers.h"
#include "model/kinds/conv.h"

namespace kiln::layers {
namespace {

struct ConvDims {
    int C, H, W, K, S, P, OH, OW;
};

ConvDims dims_of(const model::Layer &l) {
    const model::ConvSpec &s = l.spec_as<model::ConvSpec>();
    return {int(l.in.channels), int(l.in.height), int(l.in.width), int(s.kernel), int(s.stride),
            int(s.padding), int(l.out.height), int(l.out.width)};
}

// weight[o, c, ky, kx]
Expr weight_at(const Func &params, const model::ParamTensor &w, const ConvDims &d, Expr kx, Expr ky, Expr c, Expr o) {
    return param_at(params, w, ((o * d.C + c) * d.K + ky) * d.K + kx);
}

// f, reading as zero outside [0, width) x [0, height).
Func zero_outside(const Func &f, int width, int height, const std::string &name) {
    Vars v;
    Func bounded = Halide::BoundaryConditions::constant_exterior(
        f, zero(f.output_types()[0]), {{0, width}, {0, height}});
    Func padded(name);
    padded(v.x, v.y, v.c, v.n) = bounded(v.x, v.y, v.c, v.n);
    return padded;
}

// Phase (px, py) of a strided conv's input gradient (Backward::d_in_phases):
//   phase(xh, yh, c, n) = sum_{o, i, j} weight[o, c, ky0 + S i, kx0 + S j] d_pre(xh + bx - j, yh + by - i, o, n)
// where kx0 = (px + P) mod S is its first tap and bx = (px + P - kx0) / S; undefined
// when no tap of the kernel falls on the phase (kx0 >= K: a 1x1 stride-2 layer's odd columns).
Func strided_input_gradient_phase(const model::Layer &l, const BackwardArgs &a, const Func &d_pre_padded, int O,
                                  const ConvDims &d, int px, int py) {
    const int kx0 = (px + d.P) % d.S, ky0 = (py + d.P) % d.S;
    if (kx0 >= d.K || ky0 >= d.K) return Func();
    const int nx = (d.K - kx0 + d.S - 1) / d.S, ny = (d.K - ky0 + d.S - 1) / d.S;  // its taps along x, y
    const int bx = (px + d.P - kx0) / d.S, by = (py + d.P - ky0) / d.S;
    Vars v;
    const std::string name = l.name + "_d_in_phase" + std::to_string(px + d.S * py);
    RDom k(0, nx, 0, ny, 0, O, name + "_r");  // j, i, o
    Func phase(name);  // (xh, yh, c, n)
    phase(v.x, v.y, v.c, v.n) = zero(a.in.output_types()[0]);
    phase(v.x, v.y, v.c, v.n) += a.fwd.weight(kx0 + d.S * k.x, ky0 + d.S * k.y, v.c, k.z) *
                                 d_pre_padded(v.x + bx - k.x, v.y + by - k.y, k.z, v.n);
    return phase;
}

}  // namespace

bool uses_winograd(const model::Layer &l, const Algorithms &a) {
    const model::ConvSpec &s = l.spec_as<model::ConvSpec>();
    const bool narrow_direct =
        a.winograd_tile == 2 && channel_vectors_fit(l.out.width, l.out.channels, a.direct_narrow_lanes);
    return a.winograd && !narrow_direct && s.kernel == 3 && s.stride == 1 && s.padding == 1 && l.in.channels >= 8;
}

int winograd_tile(const model::Layer &l, const Algorithms &a) {
    return uses_winograd(l, a) ? a.winograd_tile : 0;
}

bool uses_winograd_weight_grad(const model::Layer &l, const Algorithms &a) {
    const model::ConvSpec &s = l.spec_as<model::ConvSpec>();
    return a.winograd && s.kernel == 3 && s.stride == 1 && s.padding == 1 && l.in.channels >= 8;
}

Forward conv_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in,
                     int winograd) {
    Vars v;
    Var o("o");
    const ConvDims d = dims_of(l);
    const model::ParamTensor &w = net.params[l.weight], &b = net.params[l.bias];
    Forward f;
    if (d.P > 0) f.in_padded = zero_outside(in, d.W, d.H, l.name + "_in_padded");
    Func src = d.P > 0 ? f.in_padded : in;  // (x, y, c, n)

    RDom r(0, d.K, 0, d.K, 0, d.C, l.name + "_r");  // kx, ky, c
    Var kx("kx"), ky("ky");
    f.weight = Func(l.name + "_weight");  // (kx, ky, c, o)
    f.weight(kx, ky, v.c, o) = weight_at(params, w, d, kx, ky, v.c, o);
    f.pre = Func(l.name + "_pre");  // (x, y, o, n)
    if (winograd) {
        f.winograd = winograd_3x3(l.name, src, f.weight, d.C, d.W, winograd);
        f.pre(v.x, v.y, o, v.n) = param_at(params, b, o) + f.winograd.out(v.x, v.y, o, v.n);
    } else {
        f.pre(v.x, v.y, o, v.n) = param_at(params, b, o);
        f.pre(v.x, v.y, o, v.n) += f.weight(r.x, r.y, r.z, o) *
                                   src(v.x * d.S + r.x - d.P, v.y * d.S + r.y - d.P, r.z, v.n);
    }
    f.out = Func(l.name + "_out");  // (x, y, o, n)
    f.out(v.x, v.y, o, v.n) = activate(l.activation, f.pre(v.x, v.y, o, v.n));
    return f;
}

Backward conv_backward(const model::Network &net, const model::Layer &l, const Func &params, const BackwardArgs &a,
                       int winograd, bool winograd_grad) {
    Vars v;
    Var o("o"), kx("kx"), ky("ky");
    const ConvDims d = dims_of(l);
    const model::ParamTensor &w = net.params[l.weight];
    Backward g;

    g.d_pre = Func(l.name + "_d_pre");  // (x, y, o, n)
    g.d_pre(v.x, v.y, o, v.n) =
        activation_backward(l.activation, a.fwd.out(v.x, v.y, o, v.n), a.d_out(v.x, v.y, o, v.n));

    // Sums over every output position of every image.
    RDom r(0, d.OW, 0, d.OH, 0, a.batch, l.name + "_r_out");  // x, y, n
    g.d_bias = Func(l.name + "_d_bias");  // (o)
    g.d_bias(o) = zero(a.in.output_types()[0]);
    g.d_bias(o) += g.d_pre(r.x, r.y, o, r.z);

    Func src = d.P > 0 ? a.fwd.in_padded : a.in;  // (x, y, c, n)
    // Input (x, y) feeds output ((x + P - kx) / S, (y + P - ky) / S) where that divides
    // exactly and lies inside the output; elsewhere d_pre reads as zero.
    g.d_pre_padded = zero_outside(g.d_pre, d.OW, d.OH, l.name + "_d_pre_padded");  // (x, y, o, n)
    if (winograd_grad) {
        g.winograd_grad = winograd_3x3_weight_grad(l.name, src, g.d_pre_padded, d.OW, d.OH, a.batch);
        g.d_weight = g.winograd_grad.d_weight;  // (kx, ky, c, o)
    } else {
        g.patches = Func(l.name + "_patches");  // (kx, ky, c, x, y, n)
        g.patches(kx, ky, v.c, v.x, v.y, v.n) = src(v.x * d.S + kx - d.P, v.y * d.S + ky - d.P, v.c, v.n);
        g.d_weight = Func(l.name + "_d_weight");  // (kx, ky, c, o)
        g.d_weight(kx, ky, v.c, o) = zero(a.in.output_types()[0]);
        g.d_weight(kx, ky, v.c, o) += g.d_pre(r.x, r.y, o, r.z) * g.patches(kx, ky, v.c, r.x, r.y, r.z);
    }

    if (!a.need_d_in) return g;
    if (winograd) {
        Func flipped(l.name + "_weight_flipped");  // (kx, ky, o, c)
        flipped(kx, ky, o, v.c) = weight_at(params, w, d, 2 - kx, 2 - ky, v.c, o);
        g.winograd = winograd_3x3(l.name + "_d_in", g.d_pre_padded, flipped, int(l.out.channels), d.W, winograd);
        g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
        g.d_in(v.x, v.y, v.c, v.n) = g.winograd.out(v.x, v.y, v.c, v.n);
        return g;
    }
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    if (d.S == 1) {
        RDom k(0, d.K, 0, d.K, 0, int(l.out.channels), l.name + "_r_in");  // kx, ky, o
        Expr ox = v.x + d.P - k.x, oy = v.y + d.P - k.y;
        // Window rows falling outside d_pre would add zeros: skipped (Halide trims the
        // ky loop per row): 2 of 7 of lenet5's conv2 terms (5x5 'valid', 14 rows in).
        k.where(oy >= 0 && oy < d.OH);
        g.d_in(v.x, v.y, v.c, v.n) = zero(a.in.output_types()[0]);
        g.d_in(v.x, v.y, v.c, v.n) += a.fwd.weight(k.x, k.y, v.c, k.z) * g.d_pre_padded(ox, oy, k.z, v.n);
        return g;
    }
    // Strided: input column x = S xh + px receives only from the taps kx = px + P (mod S),
    // from output column xh + (px + P - kx) / S; likewise rows. Each of the S x S phases
    // is a dense correlation over its own taps (resnet's 3x3 stride-2 layers: 1, 2, 2 and
    // 4 taps where summing all 9 behind a select wasted three quarters of the work).
    for (int py = 0; py < d.S; py++)
        for (int px = 0; px < d.S; px++)
            g.d_in_phases.push_back(strided_input_gradient_phase(l, a, g.d_pre_padded, int(l.out.channels), d, px, py));
    // The last phase is the select's default when every phase has taps; zero otherwise.
    const bool all = std::all_of(g.d_in_phases.begin(), g.d_in_phases.end(), [](const Func &f) { return f.defined(); });
    auto phase_at = [&](int p) { return g.d_in_phases[p](v.x / d.S, v.y / d.S, v.c, v.n); };
    const int last = d.S * d.S - 1;
    Expr value = all ? phase_at(last) : zero(a.in.output_types()[0]);
    for (int p = all ? last - 1 : last; p >= 0; p--)
        if (g.d_in_phases[p].defined())
            value = Halide::select(v.x % d.S == p % d.S && v.y % d.S == p / d.S, phase_at(p), value);
    g.d_in(v.x, v.y, v.c, v.n) = value;
    return g;
}


void register_conv(BuilderTable &t) {
    t.push_back({"conv", [](const LayerCall &c, const std::vector<Func> &in) {
                     return conv_forward(c.net, c.layer, c.params, in[0], winograd_tile(c.layer, c.algorithms));
                 },
                 [](const LayerCall &c, const BackwardArgs &a) {
                     const model::Layer &l = c.layer;
                     Backward g = conv_backward(c.net, l, c.params, a, winograd_tile(l, c.algorithms),
                                                uses_winograd_weight_grad(l, c.algorithms));
                     const int K = int(l.spec_as<model::ConvSpec>().kernel);
                     g.param_grads = {{l.weight, g.d_weight, {K, K, int(l.in.channels), int(l.out.channels)}},
                                      {l.bias, g.d_bias, {int(l.out.channels)}}};
                     return g;
                 }});
}

}  // namespace kiln::layers
