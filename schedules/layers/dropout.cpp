// Dropout.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

// Dropout's mask is a hash worth computing once per element: stored in training;
// in inference the layer is the identity and stays inline.
void dropout_forward(const pipeline::LayerStages &s, const Context &ctx) {
    if (ctx.training) schedule_elementwise(s.fwd.out, ctx);
}

void dropout_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_elementwise(s.bwd.d_in, ctx);
}

}  // namespace

void register_dropout(ScheduleTable &t) {
    t.push_back({"dropout", [](const pipeline::Graph &g, size_t i, const Context &c) { dropout_forward(g.layers[i], c); }, dropout_backward});
}

}  // namespace kiln::schedules
