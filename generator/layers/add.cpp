// add: the element-wise sum of K inputs of one shape, then an activation.
//   pre(x, y, c, n) = sum_k in_k(x, y, c, n);  out = activation(pre)
// Adjoint: every input receives the same gradient,
//   d_in_k = d_pre = activation'(out) d_out
// (the pipeline adds it to whatever else reaches that input's layer).
#include "layers/layers.h"

namespace kiln::layers {

static Forward add_forward(const model::Layer &l, const std::vector<Func> &in) {
    Vars v;
    Forward f;
    f.pre = Func(l.name + "_pre");  // (x, y, c, n)
    Expr sum = in[0](v.x, v.y, v.c, v.n);
    for (size_t k = 1; k < in.size(); k++) sum += in[k](v.x, v.y, v.c, v.n);
    f.pre(v.x, v.y, v.c, v.n) = sum;
    f.out = Func(l.name);  // (x, y, c, n)
    f.out(v.x, v.y, v.c, v.n) = activate(l.activation, f.pre(v.x, v.y, v.c, v.n));
    return f;
}

static Backward add_backward(const model::Layer &l, const BackwardArgs &a) {
    Vars v;
    Backward g;
    g.d_pre = Func(l.name + "_d_pre");  // (x, y, c, n)
    g.d_pre(v.x, v.y, v.c, v.n) = activation_backward(l.activation, a.fwd.out(v.x, v.y, v.c, v.n),
                                                      a.d_out(v.x, v.y, v.c, v.n));
    for (bool need : a.need_d_inputs) g.d_inputs.push_back(need ? g.d_pre : Func());
    return g;
}

void register_add(BuilderTable &t) {
    t.push_back({"add", [](const LayerCall &c, const std::vector<Func> &in) { return add_forward(c.layer, in); },
                 [](const LayerCall &c, const BackwardArgs &a) { return add_backward(c.layer, a); }});
}

}  // namespace kiln::layers
