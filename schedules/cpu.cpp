// Hand-written CPU schedules: the driver. Each layer's stages are scheduled by
// its kind's entry in the table gathered from schedules/layers/*.cpp (see
// cpu_internal.h); the loss and the flat gradient's copies are scheduled here.
// Dimension letters: see generator/layers/layers.h.
#include "schedules/cpu.h"

#include <stdexcept>
#include <string>

#include "schedules/cpu_internal.h"

namespace kiln::schedules {

void register_layer_schedules(ScheduleTable &table);  // generated from layers/*.cpp

namespace {

const LayerSchedule &schedule_of(const model::Layer &l) {
    static const ScheduleTable table = [] {
        ScheduleTable t;
        register_layer_schedules(t);
        return t;
    }();
    for (const LayerSchedule &k : table)
        if (k.kind == l.kind->name) return k;
    throw std::runtime_error("unsupported: no CPU schedule for layer type '" + std::string(l.kind->name) + "' (layer " +
                             l.name + "): add schedules/layers/" + std::string(l.kind->name) + ".cpp");
}

void schedule_forward_layers(pipeline::Graph &g, const Context &ctx) {
    for (size_t i = 0; i < g.layers.size(); i++) {
        const model::Layer &l = *g.layers[i].layer;
        schedule_of(l).forward(g, i, ctx.stage(l, Direction::forward));
    }
}

// A copy into place (an update of the flat gradient or of the features output):
// its first `fused` loop variables, a tensor's innermost dimensions, fused and
// in vectors. Each element is written exactly once (the index is one-to-one in
// the loop variables), which Halide cannot prove on its own: hence
// allow_race_conditions, which is safe here.
Halide::Stage vectorize_copy(Func f, int u, size_t fused, const Context &ctx) {
    std::vector<RVar> r = f.rvars(u);
    RVar along = r[0];
    for (size_t i = 1; i < fused; i++) {
        RVar next("fused" + std::to_string(i));
        f.update(u).fuse(along, r[i], next);
        along = next;
    }
    return f.update(u).allow_race_conditions().vectorize(along, ctx.vector, TailStrategy::GuardWithIf);
}

// The flat gradient's updates: a weight (a, b, c, o) along a, b, c fused; a bias (o) along o.
void schedule_gradient_copy(Func grad, const Context &ctx) {
    for (int u = 0; u < grad.num_update_definitions(); u++)
        vectorize_copy(grad, u, grad.rvars(u).size() == 4 ? 3 : 1, ctx);
}

// The features output's updates, one per layer: its (x, y, c) fused, images in parallel.
void schedule_features_copy(Func features, const Context &ctx) {
    for (int u = 0; u < features.num_update_definitions(); u++)
        vectorize_copy(features, u, 3, ctx).parallel(features.args()[1]);
}

// Whether a layer's schedule stores f whole. (Locking a LoopLevel lets it be
// inspected; a later compute_at replaces it rather than changing it.)
bool computed_root(const Func &f) {
    if (!f.defined()) return false;
    Halide::LoopLevel level = f.function().schedule().compute_level();
    return level.lock().is_root();
}

// In inference, the layers in front of the first dense layer run image by image:
// every stored stage of theirs is computed inside the loop over images of the last
// of them that is stored, if a pooling layer (`anchor`, best's second), so that an image's
// activations (some 700 KB for best) stay in the core's cache from one layer to
// the next instead of streaming whole batches of them through memory. Left as
// they are when a layer there is read from beyond the anchor.
void compute_image_by_image(const pipeline::Graph &g) {
    size_t dense = 0;
    while (dense < g.layers.size() && g.layers[dense].layer->out.width * g.layers[dense].layer->out.height > 1) dense++;
    size_t anchor = dense;
    while (anchor-- > 0 && !computed_root(g.layers[anchor].fwd.out)) {}
    // A pooling layer's loops keep the images apart (a convolution's fuse them with channel blocks).
    if (anchor >= dense || anchor == 0 || !g.layers[anchor].layer->is("maxpool") && !g.layers[anchor].layer->is("avgpool"))
        return;
    for (size_t i = 0; i < anchor; i++)
        for (int reader : g.consumers[i])
            if (size_t(reader) > anchor) return;
    Func at = g.layers[anchor].fwd.out;
    for (size_t i = 0; i < anchor; i++)
        for (Func f : {g.layers[i].fwd.in_padded, g.layers[i].fwd.out})
            if (computed_root(f)) f.compute_at(at, at.args()[3]);
}

Context context_for(const pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings) {
    return {vector_lanes(settings, target, g.scores.output_types()[0]), settings, Expr()};
}

}  // namespace

int vector_lanes(const ScheduleSettings &settings, const Halide::Target &target, Halide::Type type) {
    return settings.vector_lanes > 0 ? settings.vector_lanes : target.natural_vector_size(type);
}

void schedule_inference(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings,
                        Expr batch, bool layers_read_outside) {
    Context ctx = context_for(g, target, settings);
    ctx.batch = batch;
    schedule_forward_layers(g, ctx);
    if (!layers_read_outside) compute_image_by_image(g);
    g.scores.compute_root();
}

void schedule_features(pipeline::Graph &g, Func features, const Halide::Target &target,
                       const ScheduleSettings &settings) {
    schedule_inference(g, target, settings, Expr(), true);
    schedule_features_copy(features, context_for(g, target, settings));
}

void schedule_training(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings) {
    Context ctx = context_for(g, target, settings);
    ctx.training = true;
    schedule_forward_layers(g, ctx);
    g.scores.compute_root();
    g.loss.max_score.compute_root();
    g.loss.log_sum.compute_root();
    g.loss.d_scores.compute_root();
    schedule_gradient_copy(g.grad, ctx);
    for (size_t i = 0; i < g.layers.size(); i++) {
        const pipeline::LayerStages &s = g.layers[i];
        schedule_of(*s.layer).backward(s, ctx);
        // An output read by several layers: the gradients reaching it summed once.
        if (g.consumers[i].size() > 1) schedule_elementwise(s.d_out, ctx);
    }
}

}  // namespace kiln::schedules
