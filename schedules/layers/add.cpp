// add: the sum (then its activation) stored once, element-wise; in the adjoint
// every input gets the same d_pre, stored when an activation makes it differ from
// d_out (which is stored by the driver when several layers send gradients to it).
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

void add_forward(const pipeline::LayerStages &s, const Context &ctx) { schedule_elementwise(s.fwd.out, ctx); }

void add_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.layer->activation != model::Activation::none) schedule_elementwise(s.bwd.d_pre, ctx);
}

}  // namespace

void register_add(ScheduleTable &t) {
    t.push_back({"add", [](const pipeline::Graph &g, size_t i, const Context &c) { add_forward(g.layers[i], c); },
                 add_backward});
}

}  // namespace kiln::schedules
