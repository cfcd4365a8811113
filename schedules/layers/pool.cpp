// Max and average pooling: outputs stored whole, rows vectorized.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

void pool_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out;
    out.compute_root();
    serial_for_one_image(out, out.args()[0], s, ctx, TailStrategy::Auto, s.layer->out.width);
    schedule_spatial(out, ctx, s.layer->out.width);
}

void pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx, s.layer->in.width);
}

}  // namespace

void register_pool(ScheduleTable &t) {
    t.push_back({"maxpool", [](const pipeline::Graph &g, size_t i, const Context &c) { pool_forward(g.layers[i], c); }, pool_backward});
    t.push_back({"avgpool", [](const pipeline::Graph &g, size_t i, const Context &c) { pool_forward(g.layers[i], c); }, pool_backward});
}

}  // namespace kiln::schedules
