// kiln-tune's bench: a network's training and inference pipelines compiled in
// Halide's JIT under given settings (by hand, or by the autoscheduler the
// settings name for that pipeline, as the generator would) and timed on
// fixed random inputs.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "Halide.h"
#include "model/network.h"
#include "schedules/settings.h"

namespace kiln::schedules {

enum class Pipe { training, inference };
inline const char *pipe_name(Pipe p) { return p == Pipe::training ? "training" : "inference"; }

// The autoscheduler `s` names for pipeline `p` ("" for the hand-written schedule).
inline const std::string &autoscheduler_of(const ScheduleSettings &s, Pipe p) {
    return p == Pipe::training ? s.training_autoscheduler : s.inference_autoscheduler;
}

// One pipeline compiled in the JIT, ready to be called on the bench's buffers;
// or the error Halide gave compiling it.
struct Compiled {
    std::function<void()> call;
    std::string error;
    double compile_s = 0;
    bool ok() const { return error.empty(); }
};

class Bench {
public:
    Bench(const model::Network &net, const Halide::Target &target, int train_batch, int infer_batch, int repeats);

    // Pipeline `p` under `settings`, compiled once: a second call with settings
    // that schedule `p` the same way returns the first's (an autoscheduler may
    // take minutes).
    const Compiled &compile(Pipe p, const ScheduleSettings &settings);

    // The fastest of `repeats` calls, in seconds, after two untimed ones; -1 if
    // a call fails (Halide's message in *error).
    double time(const Compiled &c, std::string *error = nullptr) const;

    int batch(Pipe p) const { return p == Pipe::training ? train_batch_ : infer_batch_; }
    const model::Network &net() const { return net_; }
    const Halide::Target &target() const { return target_; }

private:
    Compiled compile_training(const ScheduleSettings &s) const;
    Compiled compile_inference(const ScheduleSettings &s) const;

    const model::Network &net_;
    const Halide::Target target_;
    int train_batch_, infer_batch_, repeats_;
    Halide::Buffer<float> params_, train_images_, infer_images_;
    Halide::Buffer<int32_t> labels_;
    std::map<std::string, Compiled> compiled_;  // by pipeline and what schedules it
};

}  // namespace kiln::schedules
