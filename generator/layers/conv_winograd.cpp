// A 3x3 'same' convolution (stride 1, padding 1) by Winograd's minimal filtering
// F(2x2, 3x3) (Lavin and Gray 2015), an algorithm of conv beside the direct one
// (conv.cpp), chosen by the schedule setting conv_algorithm. It computes
//   out(x, y, o, n) = sum_{c, ky, kx} weight(kx, ky, c, o) src(x + kx - 1, y + ky - 1, c, n)
// (src zero outside the image) for the 2x2 outputs of tile (tx, ty), x = 2 tx + i,
// y = 2 ty + j, from the 4x4 input patch d(u, v) = src(2 tx - 1 + u, 2 ty - 1 + v):
//   U = G g G^T        (a, b, c, o)  each 3x3 kernel g = weight(., ., c, o) as 4x4
//   V = B^T d B        (t, c, a, b)  each tile's patch of each input channel as 4x4
//   M(a, b) = sum_c U(a, b, c, o) V(t, c, a, b)   16 matrix products over the channels
//   Y = A^T M A        2x2 outputs per tile and output channel
// with, along either axis,
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// 16 multiplies per tile and channel pair instead of 36: 2.25x fewer. The
// transforms add and subtract only (and halve, exactly), so the result differs
// from the direct sum by rounding. Tiles are numbered t = tx + pitch ty, the
// pitch a power of two at least the tile row (14 tiles of a 28-wide image:
// pitch 16), so that a vector of `pitch` tiles is one tile row and a vector of 16
// whole rows: the products run in vectors along t, each tile's U broadcast.
// The input gradient of such a layer is the same correlation of d_pre with the
// kernel flipped and its channels swapped (conv.cpp).
//
// The weight gradient is the adjoint of the same product, exact as the forward
// pass is: with the tiles V of the input and g (2x2) of the output gradient,
//   Z = A g A^T        (tx, ty, o, a, b)  each tile's output gradient as 4x4
//   P(a, b) = sum_{n, tx, ty} V(tx, ty, c, a, b) Z(tx, ty, o, a, b)   16 matrix products over the tiles
//   d_weight = G^T P G  3x3 per channel pair
// 16 multiplies per tile and channel pair instead of 36 again. Tiles are indexed
// by column and row here: the products run in vectors along the output
// channels, not along tiles.
#include "layers/layers.h"

namespace kiln::layers {
namespace {

// One axis of B^T d, entry k, from d0..d3.
Expr input_transform(int k, Expr d0, Expr d1, Expr d2, Expr d3) {
    switch (k) {
    case 0: return d0 - d2;
    case 1: return d1 + d2;
    case 2: return d2 - d1;
    default: return d1 - d3;
    }
}

// One axis of G g, entry k, from g0..g2.
Expr kernel_transform(int k, Expr g0, Expr g1, Expr g2) {
    const Expr half = Halide::cast(g0.type(), Expr(0.5));
    switch (k) {
    case 0: return g0;
    case 1: return (g0 + g1 + g2) * half;
    case 2: return (g0 - g1 + g2) * half;
    default: return g2;
    }
}

// One axis of A^T m, entry k (0 or 1), from m0..m3.
Expr output_transform(Expr k, Expr m0, Expr m1, Expr m2, Expr m3) {
    return Halide::select(k == 0, m0 + m1 + m2, m1 - m2 - m3);
}

// One axis of A g, entry k, from g0, g1 (the adjoint of output_transform).
Expr output_transform_adjoint(int k, Expr g0, Expr g1) {
    switch (k) {
    case 0: return g0;
    case 1: return g0 + g1;
    case 2: return g0 - g1;
    default: return -g1;
    }
}

// One axis of G^T p, entry k (0 to 2), from p0..p3 (the adjoint of kernel_transform).
Expr kernel_transform_adjoint(Expr k, Expr p0, Expr p1, Expr p2, Expr p3) {
    const Expr half = Halide::cast(p0.type(), Expr(0.5));
    return Halide::select(k == 0, p0 + (p1 + p2) * half, k == 1, (p1 - p2) * half, (p1 + p2) * half + p3);
}

// A Func of a, b in [0, 4) from 16 expressions e[b][a].
Expr pick(const Var &a, const Var &b, const std::vector<std::vector<Expr>> &e) {
    Expr out = e[3][3];
    for (int bb = 3; bb >= 0; bb--)
        for (int aa = 3; aa >= 0; aa--)
            if (bb != 3 || aa != 3) out = Halide::select(a == aa && b == bb, e[bb][aa], out);
    return out;
}

// V = B^T d B, the 16 entries [b][a] of the transform of the 4x4 patch of `src`
// at tile (tx, ty), channel c, image n: d(u, v) = src(2 tx - 1 + u, 2 ty - 1 + v, c, n).
std::vector<std::vector<Expr>> patch_transform(const Func &src, Expr tx, Expr ty, Expr c, Expr n) {
    auto d = [&](int du, int dv) { return src(2 * tx - 1 + du, 2 * ty - 1 + dv, c, n); };
    std::vector<std::vector<Expr>> vt(4, std::vector<Expr>(4));
    for (int bb = 0; bb < 4; bb++)
        for (int aa = 0; aa < 4; aa++) {
            auto row = [&](int dv) { return input_transform(aa, d(0, dv), d(1, dv), d(2, dv), d(3, dv)); };
            vt[bb][aa] = input_transform(bb, row(0), row(1), row(2), row(3));
        }
    return vt;
}

}  // namespace

int winograd_pitch(int width) {
    int tiles = (width + 1) / 2, pitch = 1;
    while (pitch < tiles) pitch *= 2;
    return pitch;
}

Winograd winograd_3x3(const std::string &name, const Func &src, const Func &weight, int channels, int width) {
    Vars v;
    Var a("a"), b("b"), t("t"), o("o");
    Winograd w;
    w.pitch = winograd_pitch(width);
    Type type = src.output_types()[0];

    // U = G g G^T, each entry an expression in the nine taps.
    std::vector<std::vector<Expr>> u(4, std::vector<Expr>(4));
    for (int bb = 0; bb < 4; bb++)
        for (int aa = 0; aa < 4; aa++) {
            auto row = [&](int ky) {
                return kernel_transform(aa, weight(0, ky, v.c, o), weight(1, ky, v.c, o), weight(2, ky, v.c, o));
            };
            u[bb][aa] = kernel_transform(bb, row(0), row(1), row(2));
        }
    w.kernel = Func(name + "_wino_kernel");  // (a, b, c, o)
    w.kernel(a, b, v.c, o) = pick(a, b, u);

    // V = B^T d B over the tile's patch.
    w.tiles = Func(name + "_wino_tiles");  // (t, c, a, b, n)
    w.tiles(t, v.c, a, b, v.n) = pick(a, b, patch_transform(src, t % w.pitch, t / w.pitch, v.c, v.n));

    // M: per (a, b), tiles x input channels times input channels x output channels.
    RDom r(0, channels, name + "_wino_r");  // c
    w.product = Func(name + "_wino_product");  // (t, o, a, b, n)
    w.product(t, o, a, b, v.n) = zero(type);
    w.product(t, o, a, b, v.n) += w.kernel(a, b, r, o) * w.tiles(t, r, a, b, v.n);

    // Y = A^T M A: output (x, y) is entry (x % 2, y % 2) of tile (x / 2, y / 2).
    Expr i = v.x % 2, j = v.y % 2, tile = v.x / 2 + w.pitch * (v.y / 2);
    auto m = [&](int aa, int bb) { return w.product(tile, o, aa, bb, v.n); };
    auto col = [&](int bb) { return output_transform(i, m(0, bb), m(1, bb), m(2, bb), m(3, bb)); };
    w.out = Func(name + "_wino_out");  // (x, y, o, n)
    w.out(v.x, v.y, o, v.n) = output_transform(j, col(0), col(1), col(2), col(3));
    return w;
}

WinogradWeightGrad winograd_3x3_weight_grad(const std::string &name, const Func &src, const Func &d_out, int width,
                                            int height, Expr batch) {
    Vars v;
    Var a("a"), b("b"), tx("tx"), ty("ty"), o("o"), kx("kx"), ky("ky");
    WinogradWeightGrad w;

    // V = B^T d B over the tile's 4x4 input patch.
    w.tiles = Func(name + "_wino_grad_tiles");  // (tx, ty, c, a, b, n)
    w.tiles(tx, ty, v.c, a, b, v.n) = pick(a, b, patch_transform(src, tx, ty, v.c, v.n));

    // Z = A g A^T over the tile's 2x2 output gradient.
    auto g = [&](int i, int j) { return d_out(2 * tx + i, 2 * ty + j, o, v.n); };
    std::vector<std::vector<Expr>> z(4, std::vector<Expr>(4));
    for (int bb = 0; bb < 4; bb++)
        for (int aa = 0; aa < 4; aa++) {
            auto row = [&](int j) { return output_transform_adjoint(aa, g(0, j), g(1, j)); };
            z[bb][aa] = output_transform_adjoint(bb, row(0), row(1));
        }
    w.d_tiles = Func(name + "_wino_grad_d_tiles");  // (tx, ty, o, a, b, n)
    w.d_tiles(tx, ty, o, a, b, v.n) = pick(a, b, z);

    // P: per (a, b), input channels x tiles times tiles x output channels, over the batch.
    RDom r(0, (width + 1) / 2, 0, (height + 1) / 2, 0, batch, name + "_wino_grad_r");  // tx, ty, n
    Type type = src.output_types()[0];
    w.product = Func(name + "_wino_grad_product");  // (a, b, c, o)
    w.product(a, b, v.c, o) = zero(type);
    w.product(a, b, v.c, o) += w.tiles(r.x, r.y, v.c, a, b, r.z) * w.d_tiles(r.x, r.y, o, a, b, r.z);

    // d_weight = G^T P G.
    auto p = [&](int aa, int bb) { return w.product(aa, bb, v.c, o); };
    auto col = [&](int bb) { return kernel_transform_adjoint(kx, p(0, bb), p(1, bb), p(2, bb), p(3, bb)); };
    w.d_weight = Func(name + "_wino_d_weight");  // (kx, ky, c, o)
    w.d_weight(kx, ky, v.c, o) = kernel_transform_adjoint(ky, col(0), col(1), col(2), col(3));
    return w;
}

// An algorithm of conv, not a layer kind: nothing to register.
void register_conv_winograd(BuilderTable &) {}

}  // namespace kiln::layers
