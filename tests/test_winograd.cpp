// Winograd F(2x2, 3x3) and F(4x4, 3x3) against the direct convolution in float32, through Halide's
// JIT with the real schedules: best's shapes (32 and 64 channels on 28 x 28 and
// 14 x 14) and odd ones, every layer's output in inference and the whole training
// step's gradient, equal within float rounding. (Its adjoint in float64 against
// finite differences: test_gradients.cpp.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "Halide.h"
#include "pipeline.h"
#include "schedules/cpu.h"

namespace {

using Halide::Buffer;
using Halide::Func;
using Halide::Var;

constexpr int kImages = 5;

kiln::model::Network network(int width, int height) {
    const std::string conv = "[[layer]]\ntype = \"conv\"\nkernel = 3\npadding = \"same\"\nactivation = \"relu\"\n";
    return kiln::model::parse_network(
        "[input]\nwidth = " + std::to_string(width) + "\nheight = " + std::to_string(height) +
            "\nchannels = 1\nclasses = 10\nmean = 0.13\nstd = 0.31\n" + conv + "filters = 32\n" + conv +
            "filters = 32\n[[layer]]\ntype = \"maxpool\"\nsize = 2\n" + conv + "filters = 64\n" + conv +
            "filters = 64\n[[layer]]\ntype = \"dense\"\nunits = 10\n",
        "winograd.toml");
}

struct Inputs {
    Buffer<float> params, images;
    Buffer<int32_t> labels;
};

Inputs random_inputs(const kiln::model::Network &net) {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    Inputs in{Buffer<float>(int(net.param_count)),
              Buffer<float>(int(net.input.width), int(net.input.height), 1, kImages), Buffer<int32_t>(kImages)};
    // Kaiming-like scales, so that activations stay of order one layer to layer.
    for (const kiln::model::ParamTensor &t : net.params) {
        const float scale = t.shape.size() == 4 ? std::sqrt(6.0f / float(t.shape[1] * t.shape[2] * t.shape[3])) : 0.1f;
        for (int64_t i = 0; i < t.count; i++) in.params(int(t.offset + i)) = scale * (2 * uniform(gen) - 1);
    }
    in.images.for_each_value([&](float &v) { v = uniform(gen); });
    for (int n = 0; n < kImages; n++) in.labels(n) = n % 10;
    return in;
}

kiln::schedules::ScheduleSettings settings_for(const std::string &algorithm) {
    kiln::schedules::ScheduleSettings s;
    s.conv_algorithm = algorithm;
    return s;
}

// Every conv layer's output in inference, by `algorithm`.
std::vector<Buffer<float>> conv_outputs(const kiln::model::Network &net, Inputs &in, const std::string &algorithm) {
    Var i, x, y, c, n;
    Func params, images;
    params(i) = in.params(i);
    images(x, y, c, n) = in.images(x, y, c, n);
    const kiln::schedules::ScheduleSettings s = settings_for(algorithm);
    kiln::pipeline::Graph g = kiln::pipeline::build_inference(net, params, images, kiln::schedules::algorithms_for(s));
    kiln::schedules::schedule_inference(g, Halide::get_jit_target_from_environment(), s, kImages, true);
    std::vector<Func> outs;
    std::vector<Buffer<float>> bufs;
    for (const kiln::pipeline::LayerStages &l : g.layers)
        if (l.layer->kind->name == "conv") {
            Func copy;  // (x, y, o, n) of the whole output: the layer's own stages stay inner stages
            copy(x, y, c, n) = l.fwd.out(x, y, c, n);
            copy.output_buffer().dim(0).set_bounds(0, int(l.layer->out.width)).dim(1).set_bounds(0, int(l.layer->out.height));
            outs.push_back(copy);
            bufs.emplace_back(int(l.layer->out.width), int(l.layer->out.height), int(l.layer->out.channels), kImages);
        }
    Halide::Pipeline p(outs);
    std::vector<Halide::Buffer<>> untyped(bufs.begin(), bufs.end());
    Halide::Realization r(untyped);
    p.realize(r);
    return bufs;
}

Buffer<float> gradient(const kiln::model::Network &net, Inputs &in, const std::string &algorithm) {
    Var i, x, y, c, n;
    Func params, images, labels;
    params(i) = in.params(i);
    images(x, y, c, n) = in.images(x, y, c, n);
    labels(n) = in.labels(n);
    const kiln::schedules::ScheduleSettings s = settings_for(algorithm);
    kiln::pipeline::Graph g = kiln::pipeline::build_training(net, params, images, labels, {kImages, Halide::Expr(1u), 0},
                                                             kiln::schedules::algorithms_for(s));
    kiln::schedules::schedule_training(g, Halide::get_jit_target_from_environment(), s);
    return g.grad.realize({int(net.param_count)});
}

// |a - b| small beside the values' magnitude: float32 rounding of sums of a few
// hundred terms, the transforms' adds among them (F(4x4, 3x3)'s scalings by 4,
// 5 and 1/6 to 1/24 among them: a looser bound).
void require_close(const Buffer<float> &a, const Buffer<float> &b, int begin, int end, float bound) {
    float largest = 0, worst = 0;
    for (int i = begin; i < end; i++) {
        largest = std::max(largest, std::abs(a.data()[i]));
        worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
    }
    INFO("largest " << largest << ", largest difference " << worst);
    REQUIRE(largest > 0);
    REQUIRE(worst <= bound * largest);
}

float bound_for(const std::string &algorithm) { return algorithm == "winograd4" ? 1e-4f : 2e-5f; }

}  // namespace

TEST_CASE("conv by Winograd computes every layer's output as the direct method does", "[winograd]") {
    // Each network's layers after its pooling are half as large: 28 and 14 wide
    // (best's), 13 x 9 and 6 x 4 (partial tiles), 7 x 10 and 3 x 5 (an image of
    // fewer tiles than a register tile of F(4x4, 3x3)'s products holds).
    for (auto [width, height] : {std::pair{28, 28}, std::pair{13, 9}, std::pair{7, 10}}) {
        const kiln::model::Network net = network(width, height);
        Inputs in = random_inputs(net);
        const std::vector<Buffer<float>> direct = conv_outputs(net, in, "direct");
        for (const std::string algorithm : {"winograd", "winograd4"}) {
            INFO(algorithm << ", " << width << " x " << height << " images");
            const std::vector<Buffer<float>> wino = conv_outputs(net, in, algorithm);
            for (size_t k = 0; k < direct.size(); k++) {
                INFO("conv layer " << k + 1);
                require_close(direct[k], wino[k], 0, int(direct[k].number_of_elements()), bound_for(algorithm));
            }
        }
    }
}

TEST_CASE("conv by Winograd gives the direct method's training gradient", "[winograd]") {
    const kiln::model::Network net = network(28, 28);
    Inputs in = random_inputs(net);
    const Buffer<float> direct = gradient(net, in, "direct");
    for (const std::string algorithm : {"winograd", "winograd4"}) {
        const Buffer<float> wino = gradient(net, in, algorithm);
        for (const kiln::model::ParamTensor &t : net.params) {
            INFO(algorithm << ", " << t.name);
            require_close(direct, wino, int(t.offset), int(t.offset + t.count), bound_for(algorithm));
        }
    }
}
