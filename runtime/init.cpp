#include "init.h"

#include <cmath>

#include "rng.h"

namespace kiln {

constexpr uint64_t kInitStream = 1;

std::vector<float> initial_params(const model::Network &net, uint64_t seed) {
    std::vector<float> params(size_t(net.param_count), 0.0f);
    for (const model::Layer &l : net.layers) {
        if (l.weight < 0) continue;
        const model::ParamTensor &w = net.params[size_t(l.weight)];
        const double gain = l.activation() == model::Activation::relu ? 6.0 : 3.0;
        const double bound = std::sqrt(gain / double(w.fan_in));
        Rng rng = make_rng(seed, kInitStream, uint64_t(l.weight));
        for (int64_t i = 0; i < w.count; i++) params[size_t(w.offset + i)] = float((2 * rng.uniform() - 1) * bound);
    }
    return params;
}

}  // namespace kiln
