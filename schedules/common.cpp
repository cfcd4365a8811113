// The schedule building blocks every kind uses: layer outputs stored whole,
// convolution-shaped reductions, per-channel sums, element-wise stages.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {

void serial_for_one_image(Func f, const Var &lanes, const pipeline::LayerStages &s, const Context &ctx,
                          TailStrategy tail, int64_t width) {
    if (ctx.batch.defined() && s.layer->flops < kSerialFlops)
        f.specialize(ctx.batch == 1).vectorize(lanes, width > 0 ? row_lanes(width, ctx) : ctx.vector, tail);
}

int row_lanes(int64_t width, const Context &ctx) {
    int lanes = ctx.vector;
    while (lanes > width && lanes > 1) lanes /= 2;
    return lanes;
}

void schedule_spatial(Func f, const Context &ctx, int64_t width) {
    f.compute_root().vectorize(f.args()[0], width > 0 ? row_lanes(width, ctx) : ctx.vector).parallel(f.args()[3]);
}

int channel_block(int64_t channels, const Context &ctx) {
    const int most = ctx.settings.conv_channel_block > 0 ? ctx.settings.conv_channel_block : 4;
    for (int b = most; b > 1; b--)
        if (channels % b == 0) return b;
    return 1;
}

void schedule_window_rows(Func stored, Func acc, int block, int64_t width, const Context &ctx, bool serial_single_image) {
    Var sx = stored.args()[0], sy = stored.args()[1], sc = stored.args()[2], sn = stored.args()[3];
    Var co("co"), ci("ci"), cn("cn"), xo("xo"), xi("xi");
    stored.compute_root();
    if (serial_single_image)
        stored.specialize(ctx.batch == 1).split(sc, co, ci, block).reorder(sx, ci, sy, co, sn).vectorize(sx, ctx.vector);
    stored.split(sc, co, ci, block).reorder(sx, ci, sy, co, sn).fuse(co, sn, cn).parallel(cn).vectorize(sx, ctx.vector);
    Var ax = acc.args()[0], ay = acc.args()[1], ac = acc.args()[2];
    std::vector<RVar> r = acc.rvars(0);  // kx, ky, and channels
    acc.compute_at(stored, sy).vectorize(ax, ctx.vector);
    Halide::Stage update = acc.update().split(ax, xo, xi, ctx.vector);
    if (width <= ctx.settings.conv_row_vectors * ctx.vector)  // the row's vectors share each weight loaded
        update.reorder(xi, xo, ac, r[0], r[1], r[2], ay).unroll(xo);
    else
        update.reorder(xi, ac, r[0], r[1], r[2], xo, ay);
    update.vectorize(xi).unroll(ac).unroll(r[0]);
}

void schedule_channel_sum(Func sum, const model::Shape &over, const Context &ctx) {
    std::vector<RVar> r = sum.rvars(0);  // x, y, n
    const Var o = sum.args()[0];
    sum.compute_root();
    if (over.width * over.height < ctx.vector) {
        Var oo("oo"), oi("oi");
        sum.vectorize(o, ctx.vector, kGuard);
        sum.update().split(o, oo, oi, ctx.vector, kGuard).reorder(oi, r[0], r[1], r[2], oo).vectorize(oi).parallel(oo);
        return;
    }
    // Lanes along each row, the last vector of a row masked: rows are stored
    // padded (14 wide in 16), so vectors along x and y fused would be gathers
    // (vgg-mini's 14 x 14 layers: 0.6 ms a step instead of 0.1).
    RVar xo("xo"), xi("xi");
    Var lane("lane");
    Func lanes = sum.update().split(r[0], xo, xi, ctx.vector, kGuard).rfactor(xi, lane);  // (o, lane)
    // Lanes innermost in memory: each channel's partial sums fill their own cache
    // line. Stored channels innermost, the threads' channels shared lines and two
    // threads ran a training step 5x slower than one.
    lanes.compute_root().reorder_storage(lane, o).vectorize(lane).parallel(o);
    lanes.update().reorder(lane, xo, r[1], r[2], o).vectorize(lane).parallel(o);
}

Func chunked_partial_sums(Func dw, const RVar &image, const Var &u, const Context &ctx) {
    std::vector<RVar> r = dw.rvars(0);  // x, y, n
    RVar chunk("chunk");
    dw.compute_root();
    dw.update().split(r[2], chunk, image, ctx.settings.weight_grad_chunk);
    return dw.update().rfactor(chunk, u);
}

void store_channels_innermost(Func f, const Context &ctx) {
    Var x = f.args()[0], y = f.args()[1], o = f.args()[2], n = f.args()[3];
    f.reorder_storage(o, x, y, n).reorder(o, x, y, n).vectorize(o, ctx.vector, kGuard);
}

void schedule_elementwise(Func f, const Context &ctx) {
    Var xy("xy"), i("i");
    f.compute_root().fuse(f.args()[0], f.args()[1], xy).fuse(xy, f.args()[2], i).vectorize(i, ctx.vector, kGuard).parallel(f.args()[3]);
}

void read_input_contiguous(const pipeline::LayerStages &s, Func consumer, const Context &ctx) {
    if (s.layer->in.width > 1 && s.layer->in.width < ctx.vector) schedule_elementwise(Func(s.in).in(consumer), ctx);
}

bool copied_by_consumer(const pipeline::Graph &g, size_t i) {
    const std::vector<int> &readers = g.consumers[i];
    return readers.size() == 1 && g.layers[size_t(readers[0])].fwd.in_padded.defined();
}

}  // namespace kiln::schedules
