// concat: K inputs of one height and width, channels stacked in order; input k's
// channels start at offset_k = C_0 + ... + C_(k-1).
//   out(x, y, c, n) = in_k(x, y, c - offset_k, n)  for offset_k <= c < offset_k + C_k
// Adjoint: each input gets its slice of the gradient,
//   d_in_k(x, y, c, n) = d_out(x, y, c + offset_k, n)
#include "layers/layers.h"

namespace kiln::layers {

// Where each input's channels start in the output.
static std::vector<int> channel_offsets(const model::Network &net, const model::Layer &l) {
    std::vector<int> offsets;
    int offset = 0;
    for (int from : l.inputs) {
        offsets.push_back(offset);
        offset += int(net.shape_of(from).channels);
    }
    return offsets;
}

static Forward concat_forward(const model::Network &net, const model::Layer &l, const std::vector<Func> &in) {
    Vars v;
    const std::vector<int> offsets = channel_offsets(net, l);
    // From the last input down, each clamped to its own channels, so that no
    // input is read (or computed) outside them.
    Expr value;
    for (size_t k = in.size(); k-- > 0;) {
        const int channels = int(net.shape_of(l.inputs[k]).channels);
        Expr read = in[k](v.x, v.y, Halide::clamp(v.c - offsets[k], 0, channels - 1), v.n);
        value = value.defined() ? Halide::select(v.c < offsets[k] + channels, read, value) : read;
    }
    Forward f;
    f.out = Func(l.name);  // (x, y, c, n)
    f.out(v.x, v.y, v.c, v.n) = value;
    return f;
}

static Backward concat_backward(const model::Network &net, const model::Layer &l, const BackwardArgs &a) {
    Vars v;
    const std::vector<int> offsets = channel_offsets(net, l);
    Backward g;
    for (size_t k = 0; k < a.need_d_inputs.size(); k++) {
        if (!a.need_d_inputs[k]) {
            g.d_inputs.emplace_back();
            continue;
        }
        Func d(l.name + "_d_in" + std::to_string(k));  // (x, y, c, n) over input k's channels
        d(v.x, v.y, v.c, v.n) = a.d_out(v.x, v.y, v.c + offsets[k], v.n);
        g.d_inputs.push_back(d);
    }
    return g;
}

void register_concat(BuilderTable &t) {
    t.push_back({"concat",
                 [](const LayerCall &c, const std::vector<Func> &in) { return concat_forward(c.net, c.layer, in); },
                 [](const LayerCall &c, const BackwardArgs &a) { return concat_backward(c.net, c.layer, a); }});
}

}  // namespace kiln::layers
