// Global average pooling: each channel's mean over the whole image.
//   out(0, 0, c, n) = 1/(H*W) sum_{y, x} in(x, y, c, n)
//   d_in(x, y, c, n) = d_out(0, 0, c, n) / (H*W)
// The output's x and y are unused, as a dense layer's.
#include "layers/layers.h"

namespace kiln::layers {

Forward global_pool_forward(const model::Layer &l, const Func &in) {
    Vars v;
    RDom r(0, int(l.in.width), 0, int(l.in.height), l.name + "_r");  // x, y
    Type t = in.output_types()[0];
    Forward f;
    f.out = Func(l.name + "_out");  // (x, y, c, n), x = y = 0
    f.out(v.x, v.y, v.c, v.n) = zero(t);
    f.out(v.x, v.y, v.c, v.n) += in(r.x, r.y, v.c, v.n) / Halide::cast(t, int(l.in.size() / l.in.channels));
    return f;
}

Backward global_pool_backward(const model::Layer &l, const BackwardArgs &a) {
    Vars v;
    Backward g;
    if (!a.need_d_in) return g;
    Type t = a.in.output_types()[0];
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    g.d_in(v.x, v.y, v.c, v.n) = a.d_out(0, 0, v.c, v.n) / Halide::cast(t, int(l.in.size() / l.in.channels));
    return g;
}


void register_global_pool(BuilderTable &t) {
    t.push_back({"globalavgpool",
                 [](const LayerCall &c, const std::vector<Func> &in) { return global_pool_forward(c.layer, in[0]); },
                 [](const LayerCall &c, const BackwardArgs &a) { return global_pool_backward(c.layer, a); }});
}

}  // namespace kiln::layers
