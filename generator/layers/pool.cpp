// Max and average pooling over size x size windows at stride S, no padding:
//   maxpool: out(x, y, c, n) = max_{ky, kx} in(x*S + kx, y*S + ky, c, n)
//   avgpool: out(x, y, c, n) = mean_{ky, kx} in(x*S + kx, y*S + ky, c, n)
// Windows are small, so their terms are unrolled into one expression. The adjoint
// of maxpool sends each window's gradient to its first maximum in row-major order,
// as PyTorch does: MNIST's flat background ties often, and a tie must not double
// the gradient.
#include "layers/layers.h"
#include "model/kinds/pool.h"

#include <utility>
#include <vector>

namespace kiln::layers {
namespace {

bool is_max(const model::Layer &l) { return l.is("maxpool"); }

// Window position of (x, y) offset by (kx, ky).
Expr window_value(const Func &in, int stride, Expr x, Expr y, int kx, int ky, Expr c, Expr n) {
    return in(x * stride + kx, y * stride + ky, c, n);
}

// Row-major index ky*size + kx of the first maximum of window (ox, oy).
Expr first_argmax(const Func &in, const Func &out, int size, int stride, Expr ox, Expr oy, Expr c, Expr n) {
    Expr best = out(ox, oy, c, n);
    Expr index = size * size - 1;
    for (int k = size * size - 1; k >= 0; k--)  // backwards, so the first match wins
        index = Halide::select(window_value(in, stride, ox, oy, k % size, k / size, c, n) == best, k, index);
    return index;
}

}  // namespace

Forward pool_forward(const model::Layer &l, const Func &in) {
    Vars v;
    const int size = int(l.spec_as<model::PoolSpec>().size), stride = int(l.spec_as<model::PoolSpec>().stride);
    Expr acc;
    for (int ky = 0; ky < size; ky++)
        for (int kx = 0; kx < size; kx++) {
            Expr e = window_value(in, stride, v.x, v.y, kx, ky, v.c, v.n);
            acc = !acc.defined() ? e : is_max(l) ? Halide::max(acc, e) : acc + e;
        }
    if (!is_max(l)) acc = acc / Halide::cast(acc.type(), size * size);
    Forward f;
    f.out = Func(l.name + "_out");  // (x, y, c, n)
    f.out(v.x, v.y, v.c, v.n) = acc;
    return f;
}

Backward pool_backward(const model::Layer &l, const BackwardArgs &a) {
    Vars v;
    const int size = int(l.spec_as<model::PoolSpec>().size), stride = int(l.spec_as<model::PoolSpec>().stride);
    const int OW = int(l.out.width), OH = int(l.out.height);
    Backward g;
    if (!a.need_d_in) return g;

    Type t = a.in.output_types()[0];
    Expr z = zero(t);
    // Sum over the windows that contain (x, y): window (ox, oy) = ((x - kx) / S, (y - ky) / S)
    // where that divides exactly and lies inside the output. Non-overlapping windows
    // (S == size, the usual case) have exactly one candidate: kx = x % S, ky = y % S.
    std::vector<std::pair<Expr, Expr>> offsets;  // candidate (kx, ky)
    if (stride == size)
        offsets.emplace_back(v.x % stride, v.y % stride);
    else
        for (int ky = 0; ky < size; ky++)
            for (int kx = 0; kx < size; kx++) offsets.emplace_back(kx, ky);
    Expr sum = z;
    for (const auto &[kx, ky] : offsets) {
        Expr dx = v.x - kx, dy = v.y - ky;
        Expr ox = dx / stride, oy = dy / stride;
        Expr inside = dx >= 0 && dy >= 0 && ox < OW && oy < OH && dx % stride == 0 && dy % stride == 0;
        // Clamp so that reads stay inside the output even where `inside` is false.
        Expr cx = Halide::clamp(ox, 0, OW - 1), cy = Halide::clamp(oy, 0, OH - 1);
        Expr d = a.d_out(cx, cy, v.c, v.n);
        if (is_max(l))
            d = Halide::select(first_argmax(a.in, a.fwd.out, size, stride, cx, cy, v.c, v.n) == ky * size + kx, d, z);
        else
            d = d / Halide::cast(t, size * size);
        sum = sum + Halide::select(inside, d, z);
    }
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    g.d_in(v.x, v.y, v.c, v.n) = sum;
    return g;
}


void register_pool(BuilderTable &t) {
    for (std::string_view kind : {"maxpool", "avgpool"})
        t.push_back({kind, [](const LayerCall &c, const std::vector<Func> &in) { return pool_forward(c.layer, in[0]); },
                     [](const LayerCall &c, const BackwardArgs &a) { return pool_backward(c.layer, a); }});
}

}  // namespace kiln::layers
