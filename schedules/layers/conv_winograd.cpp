// Winograd F(2x2, 3x3) convolutions (generator/layers/conv_winograd.cpp): a layer
// output (or input gradient) computed in groups of output rows whose tiles fill
// two vectors, the groups of all images in parallel. Per group, the input tiles' transforms are
// stored (vectors along a tile row, the 16 entries of a tile from its 4x4 patch
// at once), then the 16 products over the channels, each a register tile of two
// vectors of tiles x a block of output channels accumulating over the input
// channels, then the output transform, vectors along x (each vector of tiles
// gives two interleaved output vectors). The transformed kernels are stored once.
#include "schedules/cpu_internal.h"

#include <algorithm>

namespace kiln::schedules {

void schedule_winograd(Func stored, layers::Winograd w, int64_t width, int64_t channels, const Context &ctx) {
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

// An algorithm of conv, not a layer kind: nothing to register.
void register_conv_winograd(ScheduleTable &) {}

}  // namespace kiln::schedules
