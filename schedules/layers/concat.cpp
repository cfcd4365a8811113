// concat: the stacked channels stored once, element-wise, each element read from
// one input; in the adjoint each input's gradient is a slice of d_out, read in
// place (inline).
#include "schedules/cpu_internal.h"

namespace kiln::schedules {

void register_concat(ScheduleTable &t) {
    t.push_back({"concat",
                 [](const pipeline::Graph &g, size_t i, const Context &c) { schedule_elementwise(g.layers[i].fwd.out, c); },
                 [](const pipeline::LayerStages &, const Context &) {}});
}

}  // namespace kiln::schedules
