// Initial parameters: each init's bounds (fan_in and fan_out as Keras and PyTorch
// count them), zero biases, the same random draws for the same seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "init.h"

namespace {

using kiln::model::Network;

// conv 4 filters 3x3 (ReLU) on 8x8x2, then dense 10: weights [4, 2, 3, 3] and [10, 144].
Network small_network(const std::string &init_line = "") {
    return kiln::model::parse_network("[input]\nwidth = 8\nheight = 8\nchannels = 2\nclasses = 10\n"
                                      "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\nactivation = \"relu\"\n"
                                      "[[layer]]\ntype = \"dense\"\nunits = 10\n"
                                      "[train]\n" + init_line + "\n",
                                      "small.toml");
}

struct Stats {
    double largest = 0, mean_square = 0;
};

Stats stats(const std::vector<float> &params, const kiln::model::ParamTensor &t) {
    Stats s;
    for (int64_t i = 0; i < t.count; i++) {
        const double v = params[size_t(t.offset + i)];
        s.largest = std::max(s.largest, std::abs(v));
        s.mean_square += v * v / double(t.count);
    }
    return s;
}

}  // namespace

TEST_CASE("glorot_uniform: weights within sqrt(6 / (fan_in + fan_out)), spread over it; biases zero", "[init]") {
    const Network net = small_network("init = \"glorot_uniform\"");
    REQUIRE(net.params.size() == 4);
    const std::vector<float> params = kiln::initial_params(net, 3);  // the network's own init
    CHECK(params == kiln::initial_params(net, 3, "glorot_uniform"));
    const double conv_bound = std::sqrt(6.0 / (2 * 9 + 4 * 9)), dense_bound = std::sqrt(6.0 / (144 + 10));
    for (auto [index, bound] : {std::pair{0, conv_bound}, std::pair{2, dense_bound}}) {
        const auto &w = net.params[size_t(index)];
        INFO(w.name);
        const Stats s = stats(params, w);
        CHECK(s.largest <= bound);
        CHECK(s.largest >= 0.9 * bound);
        // Uniform's variance bound^2 / 3, to 3 standard errors of the mean of n squares.
        CHECK(s.mean_square == Approx(bound * bound / 3).epsilon(9 * std::sqrt(4.0 / 45 / double(w.count))));
        CHECK(stats(params, net.params[size_t(index + 1)]).largest == 0);  // the bias
    }
}

TEST_CASE("he_lecun stays the default; the inits draw the same numbers, scaled by their bounds", "[init]") {
    const Network net = small_network();
    CHECK(net.train.init == "he_lecun");
    const std::vector<float> he = kiln::initial_params(net, 5), glorot = kiln::initial_params(net, 5, "glorot_uniform");
    CHECK(he == kiln::initial_params(net, 5, "he_lecun"));
    CHECK(he != kiln::initial_params(net, 6));
    // conv1 before a ReLU: He's sqrt(6 / fan_in); dense1 without: LeCun's sqrt(3 / fan_in).
    const double ratio_conv = std::sqrt(6.0 / 54) / std::sqrt(6.0 / 18), ratio_dense = std::sqrt(6.0 / 154) / std::sqrt(3.0 / 144);
    for (auto [index, ratio] : {std::pair{0, ratio_conv}, std::pair{2, ratio_dense}}) {
        const auto &w = net.params[size_t(index)];
        INFO(w.name);
        for (int64_t i = 0; i < w.count; i++)
            REQUIRE(glorot[size_t(w.offset + i)] == Approx(he[size_t(w.offset + i)] * ratio).epsilon(1e-6));
    }
    CHECK_THROWS_AS(kiln::initial_params(net, 5, "xavier"), std::invalid_argument);
}
