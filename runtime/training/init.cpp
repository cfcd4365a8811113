#include "init.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "rng.h"

namespace kiln {

constexpr uint64_t kInitStream = 1;

namespace {

double weight_bound(const std::string &init, const model::Layer &l, const model::ParamTensor &w) {
    if (init == "glorot_uniform") {
        const int64_t fan_out = w.count / w.shape.at(1);  // [out, in, ...]: out x the kernel's area
        return std::sqrt(6.0 / double(w.fan_in + fan_out));
    }
    const double gain = l.activation == model::Activation::relu ? 6.0 : 3.0;
    return std::sqrt(gain / double(w.fan_in));
}

}  // namespace

std::vector<float> initial_params(const model::Network &net, uint64_t seed) {
    return initial_params(net, seed, net.train.init);
}

std::vector<float> initial_params(const model::Network &net, uint64_t seed, const std::string &init) {
    if (init != "he_lecun" && init != "glorot_uniform") throw std::invalid_argument("initial_params: unknown init " + init);
    std::vector<float> params(size_t(net.param_count), 0.0f);
    for (const model::Layer &l : net.layers) {
        if (l.is("batchnorm")) {  // as PyTorch's: weight 1, bias 0, running mean 0, variance 1
            for (int index : {l.weight, l.running_var}) {
                const model::ParamTensor &t = net.params[size_t(index)];
                std::fill_n(params.begin() + t.offset, t.count, 1.0f);
            }
            continue;
        }
        if (l.weight < 0) continue;
        const model::ParamTensor &w = net.params[size_t(l.weight)];
        const double bound = weight_bound(init, l, w);
        Rng rng = make_rng(seed, kInitStream, uint64_t(l.weight));
        for (int64_t i = 0; i < w.count; i++) params[size_t(w.offset + i)] = float((2 * rng.uniform() - 1) * bound);
    }
    return params;
}

}  // namespace kiln
