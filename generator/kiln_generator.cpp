// The Halide generators: a thin shim from a network file to two pipelines.
//   kiln_forward: params, images -> scores            (inference)
//   kiln_train:   params, images, labels, seed, first_image -> loss, scores, grad  (one training step's gradients)
//   kiln_features: params, images -> every layer's output, laid end to end (inspection, linear probes)
// with float64 variants (kiln_forward_f64, kiln_train_f64) for precise gradient checks.
// Generator parameters: `network` names the TOML file; `schedule` optionally names
// a schedule settings file (schedules/settings.h), of which the pipeline takes
// [schedule] and the section of its target's family (each variant of a
// multi-target build its own), with the layer tables checked against the
// network. Where those settings name an autoscheduler for the pipeline
// (training, or inference for kiln_forward and kiln_features), the generator
// loads Halide's plugin and runs it on the pipeline instead of the hand-written
// schedule, guided by the estimates below (schedules/autoschedule.h); so does
// Halide's own auto_schedule=true (with -p and -s).
#include "Halide.h"
#include "model/network.h"
#include "pipeline.h"
#include "schedules/autoschedule.h"
#include "schedules/cpu.h"
#include "schedules/settings.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace kiln {
namespace {

using namespace Halide;

// read(path), or exit with its one-line error: a generator has no better way to
// report bad input than its message and exit status.
template <typename Read>
auto or_exit(Read read, const std::string &path) {
    try {
        return read(path);
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        std::exit(1);
    }
}

model::Network load_or_exit(const std::string &path) { return or_exit(model::load_network, path); }

// The settings for `target`: the file's [schedule], its family's section on
// top; its layer tables checked against `net`.
schedules::ScheduleSettings settings_or_exit(const std::string &path, const Target &target, const model::Network &net) {
    const std::string family = schedules::target_family(target.to_string());
    return or_exit([&](const std::string &p) { return schedules::load_schedule_file(p, &net).for_family(family); }, path);
}

// The algorithms the settings for `target` choose (conv_algorithm), which the
// pipeline of `type` is built with, whoever schedules it.
layers::Algorithms algorithms(const std::string &path, const Target &target, const model::Network &net,
                              Halide::Type type) {
    const schedules::ScheduleSettings s = settings_or_exit(path, target, net);
    return schedules::algorithms_for(s, schedules::vector_lanes(s, target, type));
}

// What a generator knows of its build (GeneratorBase keeps it protected).
struct Build {
    bool auto_schedule;  // Halide's own autoscheduler runs after generate() (-s and -p)
    Target target;
    MachineParams machine;
};

// Schedules a generator's pipeline: nothing if Halide's own autoscheduler runs
// after generate(), else the autoscheduler the settings name for it (the
// training pipeline's or the inference pipeline's), else the hand-written
// schedule (`by_hand`).
template <typename ByHand>
void schedule_pipeline(const Build &build, const std::string &file, const model::Network &net, bool training,
                       const std::vector<Func> &outputs, ByHand by_hand) {
    if (build.auto_schedule) return;
    const schedules::ScheduleSettings settings = settings_or_exit(file, build.target, net);
    const std::string &autoscheduler = training ? settings.training_autoscheduler : settings.inference_autoscheduler;
    if (!autoscheduler.empty())
        schedules::autoschedule(outputs, autoscheduler, build.target, build.machine);
    else
        by_hand(settings);
}

using schedules::kEstimatedBatch;

// Fixes the extents a network implies, so that the compiled code knows them and
// a caller's wrong buffer is refused.
template <typename In>
void constrain_images(In &images, const model::Network &net) {
    images.dim(0).set_bounds(0, int(net.input.width));
    images.dim(1).set_bounds(0, int(net.input.height));
    images.dim(2).set_bounds(0, int(net.input.channels));
    images.set_estimates({{0, int(net.input.width)}, {0, int(net.input.height)}, {0, int(net.input.channels)},
                          {0, kEstimatedBatch}});
}

template <typename T>
class ForwardGenerator : public Generator<ForwardGenerator<T>> {
public:
    GeneratorParam<std::string> network{"network", ""};
    GeneratorParam<std::string> schedule{"schedule", ""};
    Build build() const { return {this->get_auto_schedule(), this->get_target(), this->get_machine_params()}; }
    GeneratorInput<Buffer<T, 1>> params{"params"};  // (i)
    GeneratorInput<Buffer<T, 4>> images{"images"};  // (x, y, c, n)
    GeneratorOutput<Buffer<T, 2>> scores{"scores"};  // (o, n)

    void generate() {
        const model::Network net = load_or_exit(network);
        const layers::Algorithms algos = algorithms(this->schedule, this->get_target(), net, Halide::type_of<T>());
        pipeline::Graph g = pipeline::build_inference(net, params, images, algos);
        scores = g.scores;
        params.dim(0).set_bounds(0, int(net.param_count));
        params.set_estimates({{0, int(net.param_count)}});
        constrain_images(images, net);
        scores.dim(0).set_bounds(0, int(net.input.classes));
        scores.set_estimates({{0, int(net.input.classes)}, {0, kEstimatedBatch}});
        schedule_pipeline(this->build(), this->schedule, net, false, {scores}, [&](const schedules::ScheduleSettings &s) {
            schedules::schedule_inference(g, this->get_target(), s, images.dim(3).extent());
        });
    }
};

template <typename T>
class TrainGenerator : public Generator<TrainGenerator<T>> {
public:
    GeneratorParam<std::string> network{"network", ""};
    GeneratorParam<std::string> schedule{"schedule", ""};
    Build build() const { return {this->get_auto_schedule(), this->get_target(), this->get_machine_params()}; }
    GeneratorInput<Buffer<T, 1>> params{"params"};         // (i)
    GeneratorInput<Buffer<T, 4>> images{"images"};         // (x, y, c, n)
    GeneratorInput<Buffer<int32_t, 1>> labels{"labels"};   // (n)
    GeneratorInput<uint32_t> seed{"seed"};                 // dropout's masks, new every step
    GeneratorInput<int32_t> first_image{"first_image"};    // image 0's index in the whole batch (shards)
    GeneratorOutput<Buffer<T, 0>> loss{"loss"};            // () mean over the batch
    GeneratorOutput<Buffer<T, 2>> scores{"scores"};        // (o, n)
    GeneratorOutput<Buffer<T, 1>> grad{"grad"};            // (i) d loss / d params

    void generate() {
        const model::Network net = load_or_exit(network);
        Expr batch = images.dim(3).extent();
        const layers::Algorithms algos = algorithms(this->schedule, this->get_target(), net, Halide::type_of<T>());
        pipeline::Graph g = pipeline::build_training(net, params, images, labels, {batch, seed, first_image}, algos);
        loss = g.loss.loss;
        scores = g.scores;
        grad = g.grad;
        params.dim(0).set_bounds(0, int(net.param_count));
        constrain_images(images, net);
        images.dim(3).set_min(0);
        labels.dim(0).set_bounds(0, batch);
        scores.dim(0).set_bounds(0, int(net.input.classes)).dim(1).set_bounds(0, batch);
        grad.dim(0).set_bounds(0, int(net.param_count));
        params.set_estimates({{0, int(net.param_count)}});
        labels.set_estimates({{0, kEstimatedBatch}});
        seed.set_estimate(1);  // Adams2019 wants every input estimated (dropout reads the seed)
        first_image.set_estimate(0);
        scores.set_estimates({{0, int(net.input.classes)}, {0, kEstimatedBatch}});
        grad.set_estimates({{0, int(net.param_count)}});
        schedule_pipeline(this->build(), this->schedule, net, true, {loss, scores, grad}, [&](const schedules::ScheduleSettings &s) {
            schedules::schedule_training(g, this->get_target(), s);
        });
    }
};

// Every layer's output in inference, for looking inside a trained network:
// features(f, n) holds layer i's output (x, y, c) at
// model::feature_offset(net, i) + (c * H + y) * W + x, the layout of model/network.h.
class FeaturesGenerator : public Generator<FeaturesGenerator> {
public:
    GeneratorParam<std::string> network{"network", ""};
    GeneratorParam<std::string> schedule{"schedule", ""};
    Build build() const { return {this->get_auto_schedule(), this->get_target(), this->get_machine_params()}; }
    GeneratorInput<Buffer<float, 1>> params{"params"};      // (i)
    GeneratorInput<Buffer<float, 4>> images{"images"};      // (x, y, c, n)
    GeneratorOutput<Buffer<float, 2>> features{"features"};  // (f, n)

    void generate() {
        const model::Network net = load_or_exit(network);
        const layers::Algorithms algos = algorithms(this->schedule, this->get_target(), net, Halide::Float(32));
        pipeline::Graph g = pipeline::build_inference(net, params, images, algos);
        Var f("f"), n("n");
        Func all("features");  // (f, n)
        all(f, n) = undef<float>();
        for (size_t i = 0; i < g.layers.size(); i++) {
            const model::Shape &s = g.layers[i].layer->out;
            RDom r(0, int(s.width), 0, int(s.height), 0, int(s.channels), "layer" + std::to_string(i));
            const Expr offset = int(model::feature_offset(net, i));
            all(offset + (r.z * int(s.height) + r.y) * int(s.width) + r.x, n) = g.layers[i].fwd.out(r.x, r.y, r.z, n);
        }
        features = all;
        params.dim(0).set_bounds(0, int(net.param_count));
        params.set_estimates({{0, int(net.param_count)}});
        constrain_images(images, net);
        features.dim(0).set_bounds(0, int(model::feature_count(net)));
        features.set_estimates({{0, int(model::feature_count(net))}, {0, kEstimatedBatch}});
        schedule_pipeline(this->build(), this->schedule, net, false, {features}, [&](const schedules::ScheduleSettings &s) {
            schedules::schedule_features(g, all, this->get_target(), s);
        });
    }
};

}  // namespace
}  // namespace kiln

HALIDE_REGISTER_GENERATOR(kiln::ForwardGenerator<float>, kiln_forward)
HALIDE_REGISTER_GENERATOR(kiln::ForwardGenerator<double>, kiln_forward_f64)
HALIDE_REGISTER_GENERATOR(kiln::TrainGenerator<float>, kiln_train)
HALIDE_REGISTER_GENERATOR(kiln::TrainGenerator<double>, kiln_train_f64)
HALIDE_REGISTER_GENERATOR(kiln::FeaturesGenerator, kiln_features)
