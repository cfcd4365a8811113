// Batch normalization.
#include "schedules/cpu_internal.h"

namespace kiln::schedules {
namespace {

// Whether layer i's output has one reader, a pooling layer.
bool read_by_pool(const pipeline::Graph &g, size_t i) {
    const std::vector<int> &readers = g.consumers[i];
    return readers.size() == 1 && (g.layers[size_t(readers[0])].layer->is("maxpool") ||
                                   g.layers[size_t(readers[0])].layer->is("avgpool"));
}

// Batch normalization: the per-channel statistics (training) and gradients are
// channel sums; the per-channel affine map is stored once, the normalized output
// and the adjoints are element-wise. An output that its consumer copies whole (a
// padded convolution's input) is computed in that copy instead of stored twice;
// its adjoint computes it again from the input, which it reads anyway. In
// inference an output read only by a pooling layer is computed in the pooling
// (each element read once by a non-overlapping window), saving a pass over it.
void batchnorm_forward(const pipeline::LayerStages &s, const Context &ctx, bool copied_by_consumer) {
    if (ctx.training) {
        schedule_channel_sum(s.fwd.mean, s.layer->in, ctx);
        schedule_channel_sum(s.fwd.variance, s.layer->in, ctx);
    }
    for (Func f : {s.fwd.inv_std, s.fwd.scale}) f.compute_root();
    if (!copied_by_consumer) schedule_elementwise(s.fwd.out, ctx);
}

void batchnorm_backward(const pipeline::LayerStages &s, const Context &ctx) {
    schedule_elementwise(s.bwd.d_pre, ctx);
    schedule_channel_sum(s.bwd.d_bias, s.layer->out, ctx);
    schedule_channel_sum(s.bwd.d_weight, s.layer->out, ctx);
    if (s.bwd.d_in.defined()) schedule_elementwise(s.bwd.d_in, ctx);
}

}  // namespace

void register_batchnorm(ScheduleTable &t) {
    t.push_back({"batchnorm",
                 [](const pipeline::Graph &g, size_t i, const Context &c) {
                     batchnorm_forward(g.layers[i], c, copied_by_consumer(g, i) || (!c.training && read_by_pool(g, i)));
                 },
                 batchnorm_backward});
}

}  // namespace kiln::schedules
