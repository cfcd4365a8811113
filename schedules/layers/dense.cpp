// Dense layers: dot products along the flattened input, tiles of units x images in registers.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

// A dense layer's forward pass reads its weights where they lie: each unit's
// weights are contiguous along the flattened input i = (c, y, x), as is each
// image's input, so vectors run along i (dot products), each lane summing every
// `lanes`-th term (rfactor), and the lanes are added at the end. A tile of
// kDenseUnits units x kDenseImages images accumulates in registers: each vector
// loaded serves several accumulators. No copy of the weights is made, which at
// one image costs more than the layer itself. The lanes do not depend on the
// batch, so every image's scores are the same whatever the batch it is in.
constexpr int kDenseUnits = 4, kDenseImages = 4;

// Lanes of the dot products: the widest of a vector, 8, 4, 2 dividing the inputs.
int dense_lanes(int64_t inputs, const Context &ctx) {
    for (int l = ctx.vector; l > 1; l /= 2)
        if (inputs % l == 0) return l;
    return 1;
}

void dense_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out, pre = s.fwd.pre;  // (x, y, o, n), x = y = 0
    Var fo = out.args()[2], fn = out.args()[3], oo("oo"), oi("oi"), no("no"), ni("ni"), tile("tile");
    const model::Shape &in = s.layer->in;
    const int lanes = dense_lanes(in.width * in.height * in.channels, ctx);
    std::vector<RVar> r = pre.rvars(0);  // x, y, c of the input
    RVar rxy("rxy"), ri("ri"), rio("rio"), rii("rii");
    Var lane("lane");
    Func partial = pre.update().fuse(r[0], r[1], rxy).fuse(rxy, r[2], ri).split(ri, rio, rii, lanes).rfactor(rii, lane);
    // partial (x, y, o, n, lane)
    read_input_contiguous(s, partial, ctx);
    out.compute_root()
        .split(fo, oo, oi, kDenseUnits, kGuard)
        .split(fn, no, ni, kDenseImages, kGuard)
        .reorder(out.args()[0], out.args()[1], oi, ni, oo, no)
        .fuse(oo, no, tile);
    if (ctx.batch.defined() && s.layer->flops < kSerialFlops) out.specialize(ctx.batch == 1);  // serial
    out.parallel(tile);
    pre.compute_at(out, tile);
    Var px = partial.args()[0], py = partial.args()[1], po = partial.args()[2], pn = partial.args()[3];
    partial.compute_at(out, tile).reorder_storage(lane, px, py, po, pn).vectorize(lane);
    partial.update().reorder(lane, po, pn, rio, px, py).vectorize(lane).unroll(po).unroll(pn);
}

// A dense layer's gradients are matrix products over the flattened input index i
// = (c, y, x) fused, which is contiguous in memory: vectors run along i, and a
// block of `block` rows (units or images) is unrolled so that each vector loaded
// serves that many accumulators, which stay in registers over the reduction.
void schedule_dense_product(Func f, const Var &blocked, int block, const Context &ctx) {
    Var xy("xy"), i("i"), io("io"), ii("ii"), bo("bo"), bi("bi");
    const RVar r = f.rvars(0)[0];
    f.compute_root()
        .fuse(f.args()[0], f.args()[1], xy)
        .fuse(xy, f.args()[2], i)
        .vectorize(i, ctx.vector, kGuard)
        .parallel(blocked);
    f.update()
        .fuse(f.args()[0], f.args()[1], xy)
        .fuse(xy, f.args()[2], i)
        .split(i, io, ii, ctx.vector, kGuard)
        .split(blocked, bo, bi, block, kGuard)
        .reorder(ii, bi, r, io, bo)
        .vectorize(ii)
        .unroll(bi)
        .parallel(bo);
}

// `net`: the network's context; each gradient takes its own direction's settings.
void dense_backward(const pipeline::LayerStages &s, const Context &net) {
    const Context weight_grad = net.stage(*s.layer, Direction::weight_grad);
    const Context input_grad = net.stage(*s.layer, Direction::input_grad);
    Func dp = s.bwd.d_pre;  // (o, n)
    dp.compute_root();
    Func db = s.bwd.d_bias;
    db.compute_root();
    // d_weight (x, y, c, o) summed over n: blocks of units.
    schedule_dense_product(s.bwd.d_weight, s.bwd.d_weight.args()[3], weight_grad.settings.dense_block, weight_grad);
    read_input_contiguous(s, s.bwd.d_weight, weight_grad);
    // d_in (x, y, c, n) summed over o: blocks of images.
    if (s.bwd.d_in.defined())
        schedule_dense_product(s.bwd.d_in, s.bwd.d_in.args()[3], input_grad.settings.dense_block, input_grad);
}

}  // namespace

void register_dense(ScheduleTable &t) {
    t.push_back({"dense", [](const pipeline::Graph &g, size_t i, const Context &c) { dense_forward(g.layers[i], c); }, dense_backward});
}

}  // namespace kiln::schedules
