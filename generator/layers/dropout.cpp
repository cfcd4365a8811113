// Dropout. In training each element is kept where a hash of (seed, layer, x, y, c,
// first_image + n) is at least rate * 2^32, and scaled by 1 / (1 - rate):
//   out(x, y, c, n) = keep ? in(x, y, c, n) / (1 - rate) : 0
//   d_in(x, y, c, n) = keep ? d_out(x, y, c, n) / (1 - rate) : 0
// The runtime passes a new seed every step, and the index in the whole batch of a
// shard's first image, so that a mask does not depend on how the batch is cut into
// shards (runtime/core/compiled.h); in inference out = in. The hash is the
// "lowbias32" integer mixer applied coordinate by coordinate (tests/reference.cpp
// computes the same mask).
#include "layers/layers.h"
#include "model/kinds/dropout.h"

namespace kiln::layers {
namespace {

Expr u32(uint32_t v) { return Halide::Internal::make_const(Halide::UInt(32), v); }

Expr mix(Expr h) {
    h = h ^ (h >> 16);
    h = h * u32(0x7feb352du);
    h = h ^ (h >> 15);
    h = h * u32(0x846ca68bu);
    return h ^ (h >> 16);
}

Expr scale(const model::Layer &l, Type t) { return Halide::cast(t, Expr(1.0 / (1.0 - l.spec_as<model::DropoutSpec>().rate))); }

}  // namespace

Expr dropout_keep(const model::Layer &l, int layer_index, Expr seed, Expr x, Expr y, Expr c, Expr n) {
    Expr h = Halide::cast<uint32_t>(seed) ^ u32(uint32_t(layer_index) * 0x9e3779b9u);
    for (Expr coordinate : {x, y, c, n}) h = mix(h ^ Halide::cast<uint32_t>(coordinate));
    const double threshold = l.spec_as<model::DropoutSpec>().rate * 4294967296.0;
    return h >= u32(uint32_t(std::min(threshold, 4294967295.0)));
}

Forward dropout_forward(const model::Layer &l, int layer_index, const Func &in, Expr seed, Expr first_image) {
    Vars v;
    Forward f;
    f.out = Func(l.name + "_out");  // (x, y, c, n)
    if (!seed.defined()) {
        f.out(v.x, v.y, v.c, v.n) = in(v.x, v.y, v.c, v.n);
        return f;
    }
    Type t = in.output_types()[0];
    f.out(v.x, v.y, v.c, v.n) = Halide::select(dropout_keep(l, layer_index, seed, v.x, v.y, v.c, first_image + v.n),
                                               in(v.x, v.y, v.c, v.n) * scale(l, t), zero(t));
    return f;
}

Backward dropout_backward(const model::Layer &l, int layer_index, const BackwardArgs &a, Expr seed,
                          Expr first_image) {
    Vars v;
    Backward g;
    if (!a.need_d_in) return g;
    Type t = a.in.output_types()[0];
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    g.d_in(v.x, v.y, v.c, v.n) = Halide::select(dropout_keep(l, layer_index, seed, v.x, v.y, v.c, first_image + v.n),
                                                a.d_out(v.x, v.y, v.c, v.n) * scale(l, t), zero(t));
    return g;
}


void register_dropout(BuilderTable &t) {
    t.push_back({"dropout", [](const LayerCall &c, const std::vector<Func> &in) {
                     return dropout_forward(c.layer, c.index, in[0], c.training.dropout_seed, c.training.first_image);
                 },
                 [](const LayerCall &c, const BackwardArgs &a) {
                     return dropout_backward(c.layer, c.index, a, c.training.dropout_seed, c.training.first_image);
                 }});
}

}  // namespace kiln::layers
