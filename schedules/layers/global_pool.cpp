// Global average pooling.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

// Global average pooling: per image and channel a sum over the image, channels
// vectorized; its adjoint is element-wise.
void global_pool_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out;
    out.compute_root().vectorize(out.args()[2], ctx.vector, TailStrategy::GuardWithIf).parallel(out.args()[3]);
    out.update().vectorize(out.args()[2], ctx.vector, TailStrategy::GuardWithIf).parallel(out.args()[3]);
}

void global_pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx);
}

}  // namespace

void register_global_pool(ScheduleTable &t) {
    t.push_back({"globalavgpool", [](const pipeline::Graph &g, size_t i, const Context &c) { global_pool_forward(g.layers[i], c); }, global_pool_backward});
}

}  // namespace kiln::schedules
