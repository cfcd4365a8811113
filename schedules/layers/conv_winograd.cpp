// Winograd F(2x2, 3x3) convolutions (generator/layers/conv_winograd.cpp): a layer
// output (or input gradient) computed in groups of output rows whose tiles fill
// two vectors, the groups of all images in parallel. Per group, the input tiles' transforms are
// stored (vectors along a tile row, the 16 entries of a tile from its 4x4 patch
// at once), then the 16 products over the channels, each a register tile of two
// vectors of tiles x a block of output channels accumulating over the input
// channels, then the output transform, vectors along x (each vector of tiles
// gives two interleaved output vectors). The transformed kernels are stored once.
// F(4x4, 3x3) runs in vectors along the channels instead (schedule_winograd_by_channels).
// A weight gradient by Winograd: per image, its input and output-gradient tiles
// are transformed and the 16 products accumulate over the image's tiles, each a
// register tile of a block of input channels x one or two vectors of output
// channels; the chunks of the batch run in parallel and their sums are added in
// a fixed order.
#include "schedules/cpu_internal.h"

#include <algorithm>

namespace kiln::schedules {

namespace {

// One of F(4x4, 3x3)'s transform passes `f`: its argument `lanes` in vectors,
// inside each vector all its e0 x e1 entries (extents n0, n1) unrolled, so that
// the terms they share are computed once; then the loops `rest`.
void schedule_transform_pass(Func f, Var lanes, Var e0, int n0, Var e1, int n1, const std::vector<Halide::VarOrRVar> &rest,
                             const Context &ctx) {
    Var vo("vo"), vl("vl");
    std::vector<Halide::VarOrRVar> order{vl, e0, e1, vo};
    order.insert(order.end(), rest.begin(), rest.end());
    f.bound(e0, 0, n0)
        .bound(e1, 0, n1)
        .split(lanes, vo, vl, ctx.vector, kGuard)
        .reorder(order)
        .vectorize(vl)
        .unroll(e0)
        .unroll(e1);
}

// F(4x4, 3x3) with vectors along the channels, per image: its input copied
// channels innermost, the tiles' transforms (36 entries of each tile from its
// 6x6 patch at once) in vectors of input channels, the 36 products over the
// input channels each a register tile of a block of tiles x one or two vectors
// of output channels (the tile's entry broadcast, the kernel's loaded), the
// inverse transform in vectors of output channels (both transforms one axis at
// a time, each pass's few terms per entry in registers), then the output read back
// along x. Every tile of the image is one of the products' rows: none wasted on
// a power-of-two pitch, and rows narrower than a vector cost nothing extra. A
// tile's entries are stored together (channels, then entries, then tiles): by
// entry first, 16 tiles of 64 channels put all 36 entries 4 KiB apart, in one
// set of the L1 cache.
void schedule_winograd_by_channels(Func stored, layers::Winograd w, Func src, int64_t width,
                                   int64_t height, int64_t channels, const Context &ctx) {
    Var x = stored.args()[0], n = stored.args()[3];
    stored.compute_root().vectorize(x, row_lanes(width, ctx)).parallel(n);

    const int64_t tiles = w.pitch * ((height + 3) / 4);
    int tile_block = w.pitch;  // tiles per register tile: a divisor of the image's, 4 to 8, else a tile row
    for (int b = 8; b >= 4; b--)
        if (tiles % b == 0) {
            tile_block = b;
            break;
        }
    const int o_vectors = channels % (2 * ctx.vector) == 0 ? 2 : 1;
    Var t = w.product.args()[0], o = w.product.args()[1], a = w.product.args()[2], b = w.product.args()[3];
    Var to("to"), ti("ti"), oo("oo"), ov("ov"), ol("ol");
    RVar c = w.product.rvars(0)[0];
    w.product.compute_at(stored, n)
        .bound(a, 0, 6)
        .bound(b, 0, 6)
        .reorder_storage(o, a, b, t)
        .reorder(o, t, a, b)
        .vectorize(o, ctx.vector, kGuard);
    w.product.update()
        .split(o, oo, ov, ctx.vector * o_vectors, kGuard)
        .split(ov, ov, ol, ctx.vector)
        .split(t, to, ti, tile_block, kGuard)
        .reorder(ol, ov, ti, c, to, oo, a, b)
        .vectorize(ol)
        .unroll(ov)
        .unroll(ti);

    // Each transform pass: a vector of channels' whole tile at once, unrolled
    // (the sums along one axis shared); the inverse per tile of the products.
    Var it = w.inverse.args()[0], io = w.inverse.args()[1], ii = w.inverse.args()[2], ij = w.inverse.args()[3];
    w.inverse.compute_at(stored, n).reorder_storage(io, ii, ij, it);
    schedule_transform_pass(w.inverse, io, ii, 4, ij, 4, {it}, ctx);
    const std::vector<Var> rows = w.inverse_rows.args();  // t, o, i, b, n
    w.inverse_rows.compute_at(w.inverse, it);
    schedule_transform_pass(w.inverse_rows, rows[1], rows[2], 4, rows[3], 6, {}, ctx);

    Var tt = w.tiles.args()[0], tc = w.tiles.args()[1], ta = w.tiles.args()[2], tb = w.tiles.args()[3];
    w.tiles.compute_at(stored, n).reorder_storage(tc, ta, tb, tt);
    schedule_transform_pass(w.tiles, tc, ta, 6, tb, 6, {tt}, ctx);
    const std::vector<Var> patch_rows = w.tile_rows.args();  // t, c, a, row, n
    w.tile_rows.compute_at(w.tiles, tt);
    schedule_transform_pass(w.tile_rows, patch_rows[1], patch_rows[2], 6, patch_rows[3], 6, {}, ctx);
    Func copy = src.in(w.tile_rows);  // (x, y, c, n)
    copy.compute_at(stored, n);
    store_channels_innermost(copy, ctx);

    // Every call transforms the kernels again (36 x C x O values: most of a
    // batch-1 call's time unless each vector's 36 entries share its 9 taps).
    Var ka = w.kernel.args()[0], kb = w.kernel.args()[1], kc = w.kernel.args()[2], ko = w.kernel.args()[3];
    w.kernel.compute_root().reorder_storage(ko, kc, ka, kb);
    schedule_transform_pass(w.kernel, ko, ka, 6, kb, 6, {kc}, ctx);
}

}  // namespace

void schedule_winograd(Func stored, layers::Winograd w, Func src, int64_t width, int64_t height, int64_t channels,
                       const Context &ctx) {
    if (w.tile == 4) return schedule_winograd_by_channels(stored, w, src, width, height, channels, ctx);
    Var x = stored.args()[0], y = stored.args()[1], n = stored.args()[3];
    const int group_tiles = 2 * ctx.vector;                      // tiles per group: two vectors
    const int rows = 2 * std::max(1, group_tiles / w.pitch);     // output rows per group
    const int x_lanes = std::max(2, row_lanes(width, ctx));  // each vector starts at an even x
    // Groups of every image in parallel: one image still has work for every core.
    Var yo("yo"), yi("yi"), yp("yp"), yj("yj"), group("group");
    stored.compute_root()
        .align_bounds(x, 2)
        .align_bounds(y, rows)
        .split(y, yo, yi, rows)
        .split(yi, yp, yj, 2)
        .reorder(x, yj, yp, stored.args()[2], yo, n)
        .fuse(yo, n, group)
        .vectorize(x, x_lanes)
        .unroll(yj)
        .parallel(group);

    const int block = channel_block(channels, ctx);  // output channels per register tile
    Var t = w.product.args()[0], o = w.product.args()[1], a = w.product.args()[2], b = w.product.args()[3];
    Var tg("tg"), tv("tv"), tl("tl"), oo("oo"), oi("oi");
    RVar c = w.product.rvars(0)[0];
    w.product.compute_at(stored, group).bound(a, 0, 4).bound(b, 0, 4).align_bounds(t, group_tiles).vectorize(t, ctx.vector);
    w.product.update()
        .split(t, tg, tv, group_tiles)
        .split(tv, tv, tl, ctx.vector)
        .split(o, oo, oi, block)
        .reorder(tl, tv, oi, c, oo, tg, a, b)
        .vectorize(tl)
        .unroll(tv)
        .unroll(oi);

    Var tt = w.tiles.args()[0], ta = w.tiles.args()[2], tb = w.tiles.args()[3];
    Var tq("tq"), tr("tr");
    w.tiles.compute_at(stored, group)
        .bound(ta, 0, 4)
        .bound(tb, 0, 4)
        .align_bounds(tt, group_tiles)
        .split(tt, tq, tr, std::min(w.pitch, ctx.vector))
        .reorder(tr, ta, tb, tq, w.tiles.args()[1])
        .vectorize(tr)
        .unroll(ta)
        .unroll(tb);

    Var ka = w.kernel.args()[0], kb = w.kernel.args()[1], kc = w.kernel.args()[2], ko = w.kernel.args()[3];
    w.kernel.compute_root()
        .bound(ka, 0, 4)
        .bound(kb, 0, 4)
        .reorder_storage(kc, ko, ka, kb)
        .reorder(ka, kb, kc, ko)
        .vectorize(kc, ctx.vector, kGuard)
        .unroll(ka)
        .unroll(kb);
}

namespace {

// One side's tiles `f` (tx, ty, ch, a, b, n) of a Winograd weight gradient, per
// image of `partial`'s loop `image`: all 16 entries of a tile at once, in
// vectors along the channels (the products load the output gradient's as
// vectors and broadcast the input's), from a copy of `src` (x, y, ch, n) stored
// channels innermost.
void schedule_weight_grad_tiles(Func f, Func src, Func partial, const RVar &image, const Context &ctx) {
    Var tx = f.args()[0], ty = f.args()[1], ch = f.args()[2], a = f.args()[3], b = f.args()[4];
    f.compute_at(partial, image)
        .bound(a, 0, 4)
        .bound(b, 0, 4)
        .reorder_storage(ch, tx, ty, a, b, f.args()[5])
        .reorder(ch, a, b, tx, ty)
        .vectorize(ch, ctx.vector, kGuard)
        .unroll(a)
        .unroll(b);
    Func copy = src.in(f);  // (x, y, ch, n)
    copy.compute_at(partial, image);
    store_channels_innermost(copy, ctx);
}

}  // namespace

void schedule_winograd_weight_grad(const pipeline::LayerStages &s, const Context &ctx) {
    const layers::WinogradWeightGrad &w = s.bwd.winograd_grad;
    std::vector<RVar> r = w.product.rvars(0);  // tx, ty, n
    RVar chunk("chunk"), image("image");
    Func d_weight = w.d_weight, product = w.product;
    d_weight.compute_root();
    product.compute_root();
    product.update().split(r[2], chunk, image, ctx.settings.weight_grad_chunk);
    Var u("u");
    Func partial = product.update().rfactor(chunk, u);  // (a, b, c, o, u): each chunk's sum
    Var a = partial.args()[0], b = partial.args()[1], c = partial.args()[2], o = partial.args()[3];

    // Register tile: c_block input channels x o_vectors vectors of output channels.
    const int o_vectors = s.layer->out.channels % (2 * ctx.vector) == 0 ? 2 : 1;
    const int c_block = channel_block(s.layer->in.channels, ctx);
    Var oo("oo"), oi("oi"), ov("ov"), ol("ol"), co("co"), ci("ci");
    partial.compute_root().bound(a, 0, 4).bound(b, 0, 4).reorder_storage(o, c, a, b, u).vectorize(o, ctx.vector, kGuard).parallel(u);
    partial.update()
        .split(o, oo, oi, ctx.vector * o_vectors, kGuard)
        .split(oi, ov, ol, ctx.vector)
        .split(c, co, ci, c_block)
        .reorder(ol, ov, ci, r[0], r[1], co, oo, a, b, image, u)
        .vectorize(ol)
        .unroll(ov)
        .unroll(ci)
        .parallel(u);
    schedule_weight_grad_tiles(w.tiles, s.fwd.in_padded, partial, image, ctx);
    schedule_weight_grad_tiles(w.d_tiles, s.bwd.d_pre_padded, partial, image, ctx);
}

// An algorithm of conv, not a layer kind: nothing to register.
void register_conv_winograd(ScheduleTable &) {}

}  // namespace kiln::schedules
