#include "schedules/tune_bench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "pipeline.h"
#include "schedules/autoschedule.h"
#include "schedules/cpu.h"

namespace kiln::schedules {
namespace {

using Halide::Buffer;
using Halide::ImageParam;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The inputs' extents and estimates as the generator sets them
// (generator/kiln_generator.cpp): the compiled code knows the fixed extents,
// and an autoscheduler sees the same estimates as in the build.
void constrain_inputs(ImageParam &params, ImageParam &images, const model::Network &net) {
    params.dim(0).set_bounds(0, int(net.param_count));
    params.set_estimates({{0, int(net.param_count)}});
    images.dim(0).set_bounds(0, int(net.input.width));
    images.dim(1).set_bounds(0, int(net.input.height));
    images.dim(2).set_bounds(0, int(net.input.channels));
    images.set_estimates({{0, int(net.input.width)}, {0, int(net.input.height)}, {0, int(net.input.channels)},
                          {0, kEstimatedBatch}});
}

// Schedules `pipe` (of `outputs`) by the autoscheduler `name`, or by hand
// (`by_hand`), and compiles it; a Halide error (an autoscheduler refusing the
// pipeline) is returned, not thrown. The caller sets `call`.
template <typename ByHand>
Compiled compile_pipeline(Halide::Pipeline &pipe, const std::vector<Halide::Func> &outputs, const std::string &name,
                          const Halide::Target &target, ByHand by_hand) {
    Compiled c;
    const auto start = std::chrono::steady_clock::now();
    try {
        if (name.empty())
            by_hand();
        else
            autoschedule(outputs, name, target);  // MachineParams::generic(), as the build's generator
        pipe.compile_jit(target);
    } catch (const std::exception &e) {
        c.error = e.what();
        while (!c.error.empty() && (c.error.back() == '\n' || c.error.back() == ' ')) c.error.pop_back();
    }
    c.compile_s = seconds_since(start);
    return c;
}

}  // namespace

Bench::Bench(const model::Network &net, const Halide::Target &target, int train_batch, int infer_batch, int repeats)
    : net_(net), target_(target), train_batch_(train_batch), infer_batch_(infer_batch), repeats_(repeats) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
    params_ = Buffer<float>(int(net.param_count));
    params_.for_each_value([&](float &v) { v = uniform(gen); });
    const model::InputSpec &in = net.input;
    train_images_ = Buffer<float>(int(in.width), int(in.height), int(in.channels), train_batch);
    infer_images_ = Buffer<float>(int(in.width), int(in.height), int(in.channels), infer_batch);
    train_images_.for_each_value([&](float &v) { v = 0.5f + uniform(gen) * 10; });
    infer_images_.for_each_value([&](float &v) { v = 0.5f + uniform(gen) * 10; });
    labels_ = Buffer<int32_t>(train_batch);
    for (int n = 0; n < train_batch; n++) labels_(n) = n % int(in.classes);
}

Compiled Bench::compile_training(const ScheduleSettings &s) const {
    ImageParam p(Halide::Float(32), 1, "params"), x(Halide::Float(32), 4, "images"), y(Halide::Int(32), 1, "labels");
    Halide::Param<uint32_t> seed("seed");
    Halide::Param<int32_t> first_image("first_image");
    const Halide::Expr batch = x.dim(3).extent();
    const layers::Algorithms algos = algorithms_for(s, vector_lanes(s, target_, Halide::Float(32)));  // as the build's
    pipeline::Graph g = pipeline::build_training(net_, p, x, y, {batch, seed, first_image}, algos);
    constrain_inputs(p, x, net_);
    x.dim(3).set_min(0);
    y.dim(0).set_bounds(0, batch);
    y.set_estimates({{0, kEstimatedBatch}});
    seed.set_estimate(1);  // Adams2019 wants every input estimated (dropout reads the seed)
    first_image.set_estimate(0);
    const int classes = int(net_.input.classes), count = int(net_.param_count);
    g.scores.set_estimates({{0, classes}, {0, kEstimatedBatch}});
    g.grad.set_estimates({{0, count}});
    g.scores.output_buffer().dim(0).set_bounds(0, classes).dim(1).set_bounds(0, batch);
    g.grad.output_buffer().dim(0).set_bounds(0, count);
    const std::vector<Halide::Func> outputs = {g.loss.loss, g.scores, g.grad};
    Halide::Pipeline pipe(outputs);
    Compiled c = compile_pipeline(pipe, outputs, s.training_autoscheduler, target_,
                                  [&] { schedule_training(g, target_, s); });
    if (!c.ok()) return c;
    p.set(params_);
    x.set(train_images_);
    y.set(labels_);
    seed.set(1);
    first_image.set(0);
    Buffer<float> loss = Buffer<float>::make_scalar(), scores(classes, train_batch_), grad(count);
    c.call = [pipe, loss, scores, grad]() mutable { pipe.realize({loss, scores, grad}); };
    return c;
}

Compiled Bench::compile_inference(const ScheduleSettings &s) const {
    ImageParam p(Halide::Float(32), 1, "params"), x(Halide::Float(32), 4, "images");
    const layers::Algorithms algos = algorithms_for(s, vector_lanes(s, target_, Halide::Float(32)));  // as the build's
    pipeline::Graph g = pipeline::build_inference(net_, p, x, algos);
    constrain_inputs(p, x, net_);
    const int classes = int(net_.input.classes);
    g.scores.set_estimates({{0, classes}, {0, kEstimatedBatch}});
    g.scores.output_buffer().dim(0).set_bounds(0, classes);
    Halide::Pipeline pipe(g.scores);
    Compiled c = compile_pipeline(pipe, {g.scores}, s.inference_autoscheduler, target_,
                                  [&] { schedule_inference(g, target_, s, x.dim(3).extent()); });
    if (!c.ok()) return c;
    p.set(params_);
    x.set(infer_images_);
    Buffer<float> scores(classes, infer_batch_);
    c.call = [pipe, scores]() mutable { pipe.realize(scores); };
    return c;
}

const Compiled &Bench::compile(Pipe p, const ScheduleSettings &settings) {
    // What schedules p: its autoscheduler and the algorithms, or every hand-written setting.
    ScheduleSettings key_settings = settings;
    const std::string autoscheduler = autoscheduler_of(settings, p);
    key_settings.training_autoscheduler = key_settings.inference_autoscheduler = "";
    const std::string key = std::string(pipe_name(p)) + "\n" +
                            (autoscheduler.empty() ? to_toml(key_settings, "")
                                                   : autoscheduler + " " + settings.conv_algorithm);
    auto it = compiled_.find(key);
    if (it == compiled_.end())
        it = compiled_.emplace(key, p == Pipe::training ? compile_training(settings) : compile_inference(settings)).first;
    return it->second;
}

double Bench::time(const Compiled &c, std::string *error) const {
    try {
        for (int i = 0; i < 2; i++) c.call();
        double fastest = 0;
        for (int i = 0; i < repeats_; i++) {
            const auto start = std::chrono::steady_clock::now();
            c.call();
            const double s = seconds_since(start);
            if (i == 0 || s < fastest) fastest = s;
        }
        return fastest;
    } catch (const std::exception &e) {  // a schedule that assumes more images than a call has, say
        if (error) *error = e.what();
        return -1;
    }
}

}  // namespace kiln::schedules
