// A layer's own schedule settings (schedules/settings.h, layer tables) reach
// that layer's stages in the pipelines: the lowered training step changes where
// a layer's key changes what its stages do, and stays the same where the key
// repeats the network-wide value; and the results are the default schedule's
// within float rounding (a weight gradient's chunks add up in another order).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "Halide.h"
#include "pipeline.h"
#include "schedules/cpu.h"
#include "temp_dir.h"

namespace {

using Halide::Buffer;
using Halide::Func;
using Halide::Var;
using kiln::schedules::ScheduleSettings;

constexpr int kImages = 5;

kiln::model::Network network() {
    return kiln::model::parse_network(
        "[input]\nwidth = 12\nheight = 12\nchannels = 1\nclasses = 10\n"
        "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\nactivation = \"relu\"\n"
        "[[layer]]\ntype = \"conv\"\nfilters = 6\nkernel = 3\nactivation = \"relu\"\n"
        "[[layer]]\ntype = \"dense\"\nunits = 10\n",
        "layers.toml");
}

struct Step {
    Buffer<float> grad;
    std::string lowered;  // the lowered training step, as text
};

// One training step's gradient under `s`, and its lowered statement.
Step train_step(const kiln::model::Network &net, const ScheduleSettings &s, const kiln::testing::TempDir &dir) {
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> uniform(-0.3f, 0.3f);
    Buffer<float> params(int(net.param_count)), images(12, 12, 1, kImages);
    Buffer<int32_t> labels(kImages);
    params.for_each_value([&](float &v) { v = uniform(gen); });
    images.for_each_value([&](float &v) { v = uniform(gen) + 0.5f; });
    for (int n = 0; n < kImages; n++) labels(n) = n;
    Var i("i"), x("x"), y("y"), c("c"), n("n");
    Func p("p"), im("im"), l("l");
    p(i) = params(i);
    im(x, y, c, n) = images(x, y, c, n);
    l(n) = labels(n);
    kiln::pipeline::Graph g = kiln::pipeline::build_training(net, p, im, l, {kImages, Halide::Expr(1u), 0},
                                                             kiln::schedules::algorithms_for(s));
    const Halide::Target target = Halide::get_jit_target_from_environment();
    kiln::schedules::schedule_training(g, target, s);
    Halide::Pipeline pipe(g.grad);
    const std::string stmt = dir.file("step.stmt");
    pipe.compile_to_lowered_stmt(stmt, {}, Halide::Text, target);
    std::ostringstream text;
    text << std::ifstream(stmt).rdbuf();
    // Names Halide makes unique with running counts ("d_pre$3", "b39", "grad_1")
    // told apart by them alone: digits within names, '$' and '_' dropped.
    std::string lowered = std::regex_replace(text.str(), std::regex("([A-Za-z_$.])[0-9]+"), "$1");
    lowered = std::regex_replace(lowered, std::regex("[$_]"), "");
    return {pipe.realize({int(net.param_count)}), lowered};
}

}  // namespace

TEST_CASE("schedule settings: a layer's own settings reach its stages, results within rounding", "[schedules][layers]") {
    kiln::testing::TempDir dir("layer_settings");
    const kiln::model::Network net = network();
    const Step base = train_step(net, ScheduleSettings{}, dir);
    REQUIRE(train_step(net, ScheduleSettings{}, dir).lowered == base.lowered);  // built twice, told apart by nothing

    ScheduleSettings same;  // conv2's keys at what the network-wide settings give it already
    same.layers["conv2"].values = {{"weight_grad_chunk", 16}, {"forward_channel_block", 3}};
    CHECK(train_step(net, same, dir).lowered == base.lowered);

    for (const auto &[key, value] : std::vector<std::pair<std::string, int>>{
             {"weight_grad_chunk", 2}, {"forward_channel_block", 2}, {"input_grad_channel_block", 1}}) {
        INFO(key << " = " << value);
        ScheduleSettings own;
        own.layers["conv2"].values[key] = value;
        const Step step = train_step(net, own, dir);
        CHECK(step.lowered != base.lowered);
        float largest = 0, worst = 0;
        for (int k = 0; k < int(net.param_count); k++) {
            largest = std::max(largest, std::abs(base.grad(k)));
            worst = std::max(worst, std::abs(base.grad(k) - step.grad(k)));
        }
        INFO("largest " << largest << ", largest difference " << worst);
        CHECK(largest > 0);
        CHECK(worst <= 1e-5f * largest);
    }
}
