// Dense (fully connected): the input is flattened in (channel, row, column) order.
//   pre(0, 0, o, n) = bias[o] + sum_{c, y, x} weight[o, (c*H + y)*W + x] * in(x, y, c, n)
//   out = activation(pre)
// weight is [O, C*H*W] (PyTorch's layout) inside the flat parameter vector. The
// output's x and y are unused: a dense activation is (0, 0, o, n).
#include "layers/layers.h"

namespace kiln::layers {
namespace {

struct DenseDims {
    int C, H, W, O;
};

DenseDims dims_of(const model::Layer &l) {
    return {int(l.in.channels), int(l.in.height), int(l.in.width), int(l.out.channels)};
}

// weight[o, (c*H + y)*W + x]
Expr weight_at(const Func &params, const model::ParamTensor &w, const DenseDims &d, Expr x, Expr y, Expr c, Expr o) {
    return param_at(params, w, ((o * d.C + c) * d.H + y) * d.W + x);
}

}  // namespace

Forward dense_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in) {
    Vars v;
    Var o("o");
    const DenseDims d = dims_of(l);
    const model::ParamTensor &w = net.params[l.weight], &b = net.params[l.bias];
    Forward f;
    f.weight = Func(l.name + "_weight");  // (x, y, c, o)
    f.weight(v.x, v.y, v.c, o) = weight_at(params, w, d, v.x, v.y, v.c, o);

    RDom r(0, d.W, 0, d.H, 0, d.C, l.name + "_r");  // x, y, c of the input
    f.pre = Func(l.name + "_pre");  // (x, y, o, n), x = y = 0
    f.pre(v.x, v.y, o, v.n) = param_at(params, b, o);
    f.pre(v.x, v.y, o, v.n) += f.weight(r.x, r.y, r.z, o) * in(r.x, r.y, r.z, v.n);
    f.out = Func(l.name + "_out");  // (x, y, o, n), x = y = 0
    f.out(v.x, v.y, o, v.n) = activate(l.activation, f.pre(v.x, v.y, o, v.n));
    return f;
}

Backward dense_backward(const model::Network &net, const model::Layer &l, const Func &params, const BackwardArgs &a) {
    Vars v;
    Var o("o");
    const DenseDims d = dims_of(l);
    const model::ParamTensor &w = net.params[l.weight];
    Type t = a.in.output_types()[0];
    Backward g;

    g.d_pre = Func(l.name + "_d_pre");  // (o, n): the unused x, y dropped
    g.d_pre(o, v.n) = activation_backward(l.activation, a.fwd.out(0, 0, o, v.n), a.d_out(0, 0, o, v.n));

    RDom rn(0, a.batch, l.name + "_r_batch");  // n
    g.d_bias = Func(l.name + "_d_bias");  // (o)
    g.d_bias(o) = zero(t);
    g.d_bias(o) += g.d_pre(o, rn);

    g.d_weight = Func(l.name + "_d_weight");  // (x, y, c, o)
    g.d_weight(v.x, v.y, v.c, o) = zero(t);
    g.d_weight(v.x, v.y, v.c, o) += g.d_pre(o, rn) * a.in(v.x, v.y, v.c, rn);

    if (!a.need_d_in) return g;
    RDom ro(0, d.O, l.name + "_r_units");  // o
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    g.d_in(v.x, v.y, v.c, v.n) = zero(t);
    g.d_in(v.x, v.y, v.c, v.n) += weight_at(params, w, d, v.x, v.y, v.c, ro) * g.d_pre(ro, v.n);
    return g;
}


void register_dense(BuilderTable &t) {
    t.push_back({"dense", [](const LayerCall &c, const std::vector<Func> &in) {
                     return dense_forward(c.net, c.layer, c.params, in[0]);
                 },
                 [](const LayerCall &c, const BackwardArgs &a) {
                     const model::Layer &l = c.layer;
                     Backward g = dense_backward(c.net, l, c.params, a);
                     g.param_grads = {{l.weight, g.d_weight,
                                       {int(l.in.width), int(l.in.height), int(l.in.channels), int(l.out.channels)}},
                                      {l.bias, g.d_bias, {int(l.out.channels)}}};
                     return g;
                 }});
}

}  // namespace kiln::layers
