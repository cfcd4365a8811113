// Hand-written CPU schedules, one function per layer kind and direction.
// Dimension letters: see generator/layers/layers.h.
#include "schedules/cpu.h"

namespace kiln::schedules {
namespace {

using Halide::Func;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;
using model::LayerKind;

constexpr int kChunk = 16;  // images per parallel chunk of a weight-gradient reduction

struct Context {
    int vector;       // lanes of the pipeline's element type
    bool training;
};


// A layer output (x, y, o, n) computed whole, images in parallel, rows vectorized.
void schedule_spatial(Func f, const Context &ctx) {
    f.compute_root().vectorize(f.args()[0], ctx.vector).parallel(f.args()[3]);
}

void conv_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out, pre = s.fwd.pre;
    Var fx = out.args()[0], fy = out.args()[1], fo = out.args()[2], fn = out.args()[3];
    // The zero border stored once, so the inner loop reads without bounds checks.
    if (s.fwd.in_padded.defined()) schedule_spatial(s.fwd.in_padded, ctx);
    // Images in parallel; with a single image the output channels take turns instead.
    Var on("on");
    out.compute_root().fuse(fo, fn, on).parallel(on).vectorize(fx, ctx.vector);
    // One output row accumulated at a time, so its vectors stay in registers.
    pre.compute_at(out, fy).vectorize(pre.args()[0], ctx.vector);
    std::vector<RVar> r = pre.rvars(0);  // kx, ky, c
    pre.update().reorder(pre.args()[0], r[0], r[1], r[2], pre.args()[1]).vectorize(pre.args()[0], ctx.vector);
}

void conv_backward(const pipeline::LayerStages &s, const Context &ctx) {
    schedule_spatial(s.bwd.d_pre, ctx);
    Func db = s.bwd.d_bias;
    db.compute_root();

    // The weight gradient as a matrix product over every output position of every
    // image: per image, its input windows are stored (im2col) with (kx, ky, c)
    // innermost, and each output channel's gradient accumulates along that fused,
    // vectorized dimension.
    // The batch is cut into chunks of kChunk images that run in parallel, each
    // with its own partial sums (rfactor), added up at the end in a fixed order.
    Func dw = s.bwd.d_weight, patches = s.bwd.patches;  // (kx, ky, c, o); (kx, ky, c, x, y, n)
    std::vector<RVar> r = dw.rvars(0);  // x, y, n
    RVar chunk("chunk"), image("image");
    Var u("u"), t("t"), t2("t2");
    dw.compute_root();
    dw.update().split(r[2], chunk, image, kChunk);
    Func partial = dw.update().rfactor(chunk, u);  // (kx, ky, c, o, u)
    Var pkx = partial.args()[0], pky = partial.args()[1], pc = partial.args()[2], po = partial.args()[3];
    partial.compute_root().parallel(u);
    partial.update()
        .reorder(pkx, pky, pc, r[0], r[1], po, image, u)
        .fuse(pkx, pky, t)
        .fuse(t, pc, t2)
        .vectorize(t2, ctx.vector, TailStrategy::GuardWithIf)
        .parallel(u);
    patches.compute_at(partial, image).vectorize(patches.args()[0], ctx.vector, TailStrategy::GuardWithIf);

    if (s.bwd.d_in.defined()) {
        schedule_spatial(s.bwd.d_pre_padded, ctx);
        Func din = s.bwd.d_in;  // (x, y, c, n) summed over kx, ky, o
        din.compute_root().parallel(din.args()[3]).vectorize(din.args()[0], ctx.vector);
        std::vector<RVar> k = din.rvars(0);
        din.update()
            .reorder(din.args()[0], k[0], k[1], k[2], din.args()[1])
            .parallel(din.args()[3])
            .vectorize(din.args()[0], ctx.vector);
    }
}

void pool_forward(const pipeline::LayerStages &s, const Context &ctx) { schedule_spatial(s.fwd.out, ctx); }

void pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx);
}

// Dense layers index the parameter vector with their vectorized dimension, so
// their vectors are guarded rather than rounded up past the tensor's end.
constexpr TailStrategy kGuard = TailStrategy::GuardWithIf;

void dense_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out, pre = s.fwd.pre, w = s.fwd.weight;
    Var fo = out.args()[2], fn = out.args()[3];
    // The weights stored transposed, units innermost, so that units vectorize.
    w.compute_root().reorder_storage(w.args()[3], w.args()[0], w.args()[1], w.args()[2]);
    out.compute_root().parallel(fn).vectorize(fo, ctx.vector, kGuard);
    pre.compute_at(out, fn).vectorize(pre.args()[2], ctx.vector, kGuard);
    pre.update().vectorize(pre.args()[2], ctx.vector, kGuard);
}

// (x, y, c) of a dense layer's input fused into the one contiguous index i, split
// into vectors ii and their loop io; the stage's other loops go outside io.
void vectorize_input_index(Halide::Stage stage, const Func &f, const std::vector<Halide::VarOrRVar> &outer,
                           const Context &ctx) {
    Var xy("xy"), i("i"), io("io"), ii("ii");
    stage.fuse(f.args()[0], f.args()[1], xy).fuse(xy, f.args()[2], i).split(i, io, ii, ctx.vector, kGuard).vectorize(ii);
    std::vector<Halide::VarOrRVar> order = {ii};
    for (const auto &v : outer) {
        order.push_back(v);
        if (order.size() == 2) order.push_back(io);  // io just outside the innermost reduction
    }
    if (order.size() == 1) order.push_back(io);
    stage.reorder(order);
}

void dense_backward(const pipeline::LayerStages &s, const Context &ctx) {
    Func dp = s.bwd.d_pre;  // (o, n)
    dp.compute_root();
    Func db = s.bwd.d_bias;
    db.compute_root();
    Func dw = s.bwd.d_weight;  // (x, y, c, o) summed over n
    Var wo = dw.args()[3];
    dw.compute_root();
    vectorize_input_index(dw, dw, {wo}, ctx);
    dw.parallel(wo);
    vectorize_input_index(dw.update(), dw, {dw.rvars(0)[0], wo}, ctx);
    dw.update().parallel(wo);
    if (s.bwd.d_in.defined()) {
        Func din = s.bwd.d_in;  // (x, y, c, n) summed over o
        Var dn = din.args()[3];
        din.compute_root();
        vectorize_input_index(din, din, {dn}, ctx);
        din.parallel(dn);
        vectorize_input_index(din.update(), din, {din.rvars(0)[0], dn}, ctx);
        din.update().parallel(dn);
    }
}

void schedule_forward_layers(pipeline::Graph &g, const Context &ctx) {
    for (const pipeline::LayerStages &s : g.layers) {
        switch (s.layer->kind) {
        case LayerKind::conv: conv_forward(s, ctx); break;
        case LayerKind::maxpool:
        case LayerKind::avgpool: pool_forward(s, ctx); break;
        case LayerKind::dense: dense_forward(s, ctx); break;
        }
    }
}

Context context_for(const pipeline::Graph &g, const Halide::Target &target, bool training) {
    return {target.natural_vector_size(g.scores.output_types()[0]), training};
}

}  // namespace

void schedule_inference(pipeline::Graph &g, const model::Network &, const Halide::Target &target) {
    Context ctx = context_for(g, target, false);
    schedule_forward_layers(g, ctx);
    g.scores.compute_root();
}

void schedule_training(pipeline::Graph &g, const model::Network &, const Halide::Target &target) {
    Context ctx = context_for(g, target, true);
    schedule_forward_layers(g, ctx);
    g.scores.compute_root();
    g.loss.max_score.compute_root();
    g.loss.log_sum.compute_root();
    g.loss.d_scores.compute_root();
    for (const pipeline::LayerStages &s : g.layers) {
        switch (s.layer->kind) {
        case LayerKind::conv: conv_backward(s, ctx); break;
        case LayerKind::maxpool:
        case LayerKind::avgpool: pool_backward(s, ctx); break;
        case LayerKind::dense: dense_backward(s, ctx); break;
        }
    }
}

}  // namespace kiln::schedules
