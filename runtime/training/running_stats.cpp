#include "running_stats.h"

#include "model/kinds/batchnorm.h"

#include <algorithm>

namespace kiln {

void update_running_stats(const model::Network &net, std::vector<float> &params,
                          const std::vector<float> &step_output) {
    for (const model::Layer &l : net.layers) {
        if (!l.is("batchnorm")) continue;
        const float m = float(l.spec_as<model::BatchNormSpec>().momentum);
        for (int index : {l.running_mean, l.running_var}) {
            const model::ParamTensor &t = net.params[size_t(index)];
            for (int64_t i = t.offset; i < t.offset + t.count; i++)
                params[size_t(i)] = (1 - m) * params[size_t(i)] + m * step_output[size_t(i)];
        }
    }
}

bool has_batchnorm(const model::Network &net) {
    return std::any_of(net.layers.begin(), net.layers.end(),
                       [](const model::Layer &l) { return l.is("batchnorm"); });
}

}  // namespace kiln
