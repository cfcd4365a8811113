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
    Func dw = s.bwd.d_weight;  // (kx, ky, c, o) summed over x, y, n
    dw.compute_root().parallel(dw.args()[3]);
    dw.update().parallel(dw.args()[3]);
    if (s.bwd.d_in.defined()) {
        Func din = s.bwd.d_in;  // (x, y, c, n) summed over kx, ky, o
        din.compute_root().parallel(din.args()[3]).vectorize(din.args()[0], ctx.vector);
        std::vector<RVar> r = din.rvars(0);
        din.update()
            .reorder(din.args()[0], r[0], r[1], r[2], din.args()[1])
            .parallel(din.args()[3])
            .vectorize(din.args()[0], ctx.vector);
    }
}

void pool_forward(const pipeline::LayerStages &s, const Context &ctx) { schedule_spatial(s.fwd.out, ctx); }

void pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx);
}

// The input's innermost dimension with more than one element: where vectors go.
int inner_dim(const model::Shape &in) { return in.width > 1 ? 0 : in.height > 1 ? 1 : 2; }

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

void dense_backward(const pipeline::LayerStages &s, const Context &ctx) {
    const model::Shape &in = s.layer->in;
    Func dp = s.bwd.d_pre;  // (o, n)
    dp.compute_root();
    Func db = s.bwd.d_bias;
    db.compute_root();
    Func dw = s.bwd.d_weight;  // (x, y, c, o) summed over n
    Var dv = dw.args()[inner_dim(in)];
    dw.compute_root().parallel(dw.args()[3]).vectorize(dv, ctx.vector, kGuard);
    dw.update().parallel(dw.args()[3]).vectorize(dv, ctx.vector, kGuard);
    if (s.bwd.d_in.defined()) {
        Func din = s.bwd.d_in;  // (x, y, c, n) summed over o
        Var iv = din.args()[inner_dim(in)];
        din.compute_root().parallel(din.args()[3]).vectorize(iv, ctx.vector, kGuard);
        din.update().parallel(din.args()[3]).vectorize(iv, ctx.vector, kGuard);
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
