// A 3x3 'same' convolution (stride 1, padding 1) by Winograd's minimal filtering
// F(m x m, 3x3), m = 2 or 4 (Lavin and Gray 2015), an algorithm of conv beside the
// direct one (conv.cpp), chosen by the schedule setting conv_algorithm. It computes
//   out(x, y, o, n) = sum_{c, ky, kx} weight(kx, ky, c, o) src(x + kx - 1, y + ky - 1, c, n)
// (src zero outside the image) for the m x m outputs of tile (tx, ty), x = m tx + i,
// y = m ty + j, from the alpha x alpha input patch (alpha = m + 2)
// d(u, v) = src(m tx - 1 + u, m ty - 1 + v):
//   U = G g G^T        (a, b, c, o)  each 3x3 kernel g = weight(., ., c, o) as alpha x alpha
//   V = B^T d B        (t, c, a, b)  each tile's patch of each input channel as alpha x alpha
//   M(a, b) = sum_c U(a, b, c, o) V(t, c, a, b)   alpha^2 matrix products over the channels
//   Y = A^T M A        m x m outputs per tile and output channel
// with, along either axis, for F(2x2, 3x3)
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// and for F(4x4, 3x3) (points 0, 1, -1, 2, -2, infinity) those of `transforms`.
// Multiplies per tile and channel pair: 16 for 4 outputs (2.25x fewer than the
// direct method's 36), 36 for 16 (4x fewer). F(2x2, 3x3)'s transforms add,
// subtract and halve (exactly), so its result differs from the direct sum by
// rounding; F(4x4, 3x3)'s scale by 4, 5, 1/6, 1/12, 1/24 too, and lose a few more
// bits (tests/test_winograd.cpp bounds both). Tiles are numbered t = tx + pitch ty.
// F(2x2, 3x3)'s pitch is a power of two at least the tile row (14 tiles of a
// 28-wide image: pitch 16), so that a vector of `pitch` tiles is one tile row and
// a vector of 16 whole rows: its products run in vectors along t, each tile's U
// broadcast. F(4x4, 3x3)'s is the tile row (7 tiles of a 28-wide image): its
// products run in vectors along the output channels, each tile's V broadcast.
// The input gradient of such a layer is the same correlation of d_pre with the
// kernel flipped and its channels swapped (conv.cpp).
//
// The weight gradient is the adjoint of F(2x2, 3x3)'s product, exact as the forward
// pass is: with the tiles V of the input and g (2x2) of the output gradient,
//   Z = A g A^T        (tx, ty, o, a, b)  each tile's output gradient as 4x4
//   P(a, b) = sum_{n, tx, ty} V(tx, ty, c, a, b) Z(tx, ty, o, a, b)   16 matrix products over the tiles
//   d_weight = G^T P G  3x3 per channel pair
// 16 multiplies per tile and channel pair instead of 36 again. Tiles are indexed
// by column and row here: the products run in vectors along the output
// channels, not along tiles.
#include "layers/layers.h"

#include <cassert>
#include <cmath>
#include <functional>

namespace kiln::layers {
namespace {

// The transforms of F(m x m, 3x3) along one axis: B^T (alpha x alpha), G
// (alpha x 3), A^T (m x alpha).
struct Transforms {
    int m, alpha;
    std::vector<std::vector<double>> bt, g, at;
};

const Transforms &transforms(int m) {
    static const Transforms f2{2, 4,
                               {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
                               {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
                               {{1, 1, 1, 0}, {0, 1, -1, -1}}};
    static const Transforms f4{4, 6,
                               {{4, 0, -5, 0, 1, 0},
                                {0, -4, -4, 1, 1, 0},
                                {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0},
                                {0, 2, -1, -2, 1, 0},
                                {0, 4, 0, -5, 0, 1}},
                               {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}},
                               {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};
    assert(m == 2 || m == 4);
    return m == 4 ? f4 : f2;
}

// sum_k row[k] e(k): zero coefficients skipped, those of magnitude one added or
// subtracted, no multiply.
Expr combine(const std::vector<double> &row, const std::function<Expr(int)> &e) {
    Expr sum;
    for (int k = 0; k < int(row.size()); k++) {
        if (row[k] == 0) continue;
        Expr term = e(k);
        if (std::abs(row[k]) != 1) term = term * Halide::cast(term.type(), Expr(std::abs(row[k])));
        if (!sum.defined()) sum = row[k] < 0 ? -term : term;
        else sum = row[k] < 0 ? sum - term : sum + term;
    }
    return sum;
}

// Row k of `matrix` times the vector e(0), e(1), ...
Expr transform(const std::vector<std::vector<double>> &matrix, Expr k, const std::function<Expr(int)> &e) {
    const int rows = int(matrix.size());
    Expr out = combine(matrix[rows - 1], e);
    for (int i = rows - 2; i >= 0; i--) out = Halide::select(k == i, combine(matrix[i], e), out);
    return out;
}

// One axis of A g, entry k, from g0, g1 (F(2x2, 3x3)'s A^T, adjoint).
Expr output_transform_adjoint(int k, Expr g0, Expr g1) {
    switch (k) {
    case 0: return g0;
    case 1: return g0 + g1;
    case 2: return g0 - g1;
    default: return -g1;
    }
}

// One axis of G^T p, entry k (0 to 2), from p0..p3 (F(2x2, 3x3)'s G, adjoint).
Expr kernel_transform_adjoint(Expr k, Expr p0, Expr p1, Expr p2, Expr p3) {
    const Expr half = Halide::cast(p0.type(), Expr(0.5));
    return Halide::select(k == 0, p0 + (p1 + p2) * half, k == 1, (p1 - p2) * half, (p1 + p2) * half + p3);
}

// A Func of a, b in [0, k) from k x k expressions e[b][a].
Expr pick(const Var &a, const Var &b, const std::vector<std::vector<Expr>> &e) {
    const int k = int(e.size());
    Expr out = e[k - 1][k - 1];
    for (int bb = k - 1; bb >= 0; bb--)
        for (int aa = k - 1; aa >= 0; aa--)
            if (bb != k - 1 || aa != k - 1) out = Halide::select(a == aa && b == bb, e[bb][aa], out);
    return out;
}

// V = B^T d B, the alpha x alpha entries [b][a] of the transform of the patch of
// `src` at tile (tx, ty), channel c, image n: d(u, v) = src(m tx - 1 + u, m ty - 1 + v, c, n).
std::vector<std::vector<Expr>> patch_transform(const Transforms &f, const Func &src, Expr tx, Expr ty, Expr c, Expr n) {
    auto d = [&](int du, int dv) { return src(f.m * tx - 1 + du, f.m * ty - 1 + dv, c, n); };
    std::vector<std::vector<Expr>> vt(f.alpha, std::vector<Expr>(f.alpha));
    for (int bb = 0; bb < f.alpha; bb++)
        for (int aa = 0; aa < f.alpha; aa++) {
            auto row = [&](int dv) { return combine(f.bt[aa], [&](int du) { return d(du, dv); }); };
            vt[bb][aa] = combine(f.bt[bb], row);
        }
    return vt;
}

}  // namespace

int winograd_pitch(int width, int tile) {
    int tiles = (width + tile - 1) / tile, pitch = 1;
    if (tile == 4) return tiles;  // its products run in vectors of channels: tiles in any order
    while (pitch < tiles) pitch *= 2;
    return pitch;
}

Winograd winograd_3x3(const std::string &name, const Func &src, const Func &weight, int channels, int width, int tile) {
    Vars v;
    Var a("a"), b("b"), t("t"), o("o"), i("i"), j("j");
    const Transforms &f = transforms(tile);
    Winograd w;
    w.tile = tile;
    w.pitch = winograd_pitch(width, tile);
    Type type = src.output_types()[0];

    // U = G g G^T, each entry an expression in the nine taps.
    std::vector<std::vector<Expr>> u(f.alpha, std::vector<Expr>(f.alpha));
    for (int bb = 0; bb < f.alpha; bb++)
        for (int aa = 0; aa < f.alpha; aa++) {
            auto row = [&](int ky) { return combine(f.g[aa], [&](int kx) { return weight(kx, ky, v.c, o); }); };
            u[bb][aa] = combine(f.g[bb], row);
        }
    w.kernel = Func(name + "_wino_kernel");  // (a, b, c, o)
    w.kernel(a, b, v.c, o) = pick(a, b, u);

    // V = B^T d B over the tile's patch: at m = 4 one axis at a time (tile_rows:
    // B^T along x of each of the patch's rows), so that every entry is a few terms.
    w.tiles = Func(name + "_wino_tiles");  // (t, c, a, b, n)
    if (tile == 2) {
        w.tiles(t, v.c, a, b, v.n) = pick(a, b, patch_transform(f, src, t % w.pitch, t / w.pitch, v.c, v.n));
    } else {
        Var row("row");
        Expr tx = t % w.pitch, ty = t / w.pitch;
        w.tile_rows = Func(name + "_wino_tile_rows");  // (t, c, a, row, n)
        w.tile_rows(t, v.c, a, row, v.n) =
            transform(f.bt, a, [&](int du) { return src(4 * tx - 1 + du, 4 * ty - 1 + row, v.c, v.n); });
        w.tiles(t, v.c, a, b, v.n) = transform(f.bt, b, [&](int dv) { return w.tile_rows(t, v.c, a, dv, v.n); });
    }

    // M: per (a, b), tiles x input channels times input channels x output channels.
    RDom r(0, channels, name + "_wino_r");  // c
    w.product = Func(name + "_wino_product");  // (t, o, a, b, n)
    w.product(t, o, a, b, v.n) = zero(type);
    w.product(t, o, a, b, v.n) += w.kernel(a, b, r, o) * w.tiles(t, r, a, b, v.n);

    // Y = A^T M A: output (x, y) is entry (x % m, y % m) of tile (x / m, y / m).
    auto m = [&](Expr t, int aa, Expr bb) { return w.product(t, o, aa, bb, v.n); };
    w.out = Func(name + "_wino_out");  // (x, y, o, n)
    Expr tile_of_xy = v.x / tile + w.pitch * (v.y / tile);
    if (tile == 2) {
        // Four outputs of a tile, each from nine entries: computed in place, each
        // vector of x reading its tiles' entries (Halide deinterleaves x % 2).
        auto col = [&](int bb) { return transform(f.at, v.x % 2, [&](int aa) { return m(tile_of_xy, aa, bb); }); };
        w.out(v.x, v.y, o, v.n) = transform(f.at, v.y % 2, col);
        return w;
    }
    // Sixteen outputs of a tile from 36 entries, one axis at a time
    // (inverse_rows: A^T along a), computed per tile, then read in place.
    w.inverse_rows = Func(name + "_wino_inverse_rows");  // (t, o, i, b, n)
    w.inverse_rows(t, o, i, b, v.n) = transform(f.at, i, [&](int aa) { return m(t, aa, b); });
    w.inverse = Func(name + "_wino_inverse");  // (t, o, i, j, n)
    w.inverse(t, o, i, j, v.n) = transform(f.at, j, [&](int bb) { return w.inverse_rows(t, o, i, bb, v.n); });
    w.out(v.x, v.y, o, v.n) = w.inverse(tile_of_xy, o, v.x % tile, v.y % tile, v.n);
    return w;
}

WinogradWeightGrad winograd_3x3_weight_grad(const std::string &name, const Func &src, const Func &d_out, int width,
                                            int height, Expr batch) {
    Vars v;
    Var a("a"), b("b"), tx("tx"), ty("ty"), o("o"), kx("kx"), ky("ky");
    WinogradWeightGrad w;

    // V = B^T d B over the tile's 4x4 input patch.
    w.tiles = Func(name + "_wino_grad_tiles");  // (tx, ty, c, a, b, n)
    w.tiles(tx, ty, v.c, a, b, v.n) = pick(a, b, patch_transform(transforms(2), src, tx, ty, v.c, v.n));

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
