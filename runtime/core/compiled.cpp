#include "compiled.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include "HalideBuffer.h"
#include "helper_thread.h"
#include "process.h"

namespace kiln {
namespace {

using Halide::Runtime::Buffer;

thread_local std::string last_halide_error;

}  // namespace

// Halide's default error handler aborts the process; this one (installed by
// configure_process, process.h) keeps the message, and the call that failed
// reports it as an exception.
void keep_halide_error(void *, const char *message) {
    last_halide_error = message;
    while (!last_halide_error.empty() && last_halide_error.back() == '\n') last_halide_error.pop_back();
}

namespace {

void check(int code, const model::Network &net, const char *pipeline) {
    if (code != 0)
        throw std::runtime_error(net.name + ": error: the " + pipeline + " pipeline failed (Halide error " +
                                 std::to_string(code) + "): " + last_halide_error);
}

// Halide's buffers take non-const pointers; the pipelines never write their inputs.
Buffer<float> image_buffer(const model::Network &net, const float *images, int n) {
    const model::InputSpec &in = net.input;
    return Buffer<float>(const_cast<float *>(images), int(in.width), int(in.height), int(in.channels), n);
}

int requested_threads = 0;

// Halide's parallel loops run on the calling thread, in order.
int serial_do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {
    for (int i = min; i < min + size; i++)
        if (int code = task(user_context, i, closure)) return code;
    return 0;
}

// While alive, every Halide parallel loop in the process runs serially: each
// shard's pipeline keeps its own core instead of sharing the pool (and every
// stage's data) with the other shard.
class SerialLoops {
public:
    SerialLoops() : previous_(halide_set_custom_do_par_for(serial_do_par_for)) {}
    ~SerialLoops() { halide_set_custom_do_par_for(previous_); }
    SerialLoops(const SerialLoops &) = delete;
    SerialLoops &operator=(const SerialLoops &) = delete;

private:
    halide_do_par_for_t previous_;
};

}  // namespace

// The parallel-for hook configure_process (process.h) installs: Halide's pool for
// loops of two or more tasks; a loop of one task (a stage parallel over images,
// called for one image) runs here, without waking the pool.
int kiln_do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {
    if (size <= 1) return serial_do_par_for(user_context, task, min, size, closure);
    return halide_default_do_par_for(user_context, task, min, size, closure);
}

void set_thread_count(int threads) {
    requested_threads = std::max(0, threads);
    halide_set_num_threads(requested_threads);
}

int thread_count() {
    static const int fallback = [] {  // read once: train_step asks on every step
        const char *env = std::getenv("HL_NUM_THREADS");
        return env && std::atoi(env) > 0 ? std::atoi(env) : int(std::max(1u, std::thread::hardware_concurrency()));
    }();
    return requested_threads > 0 ? requested_threads : fallback;
}

CompiledModel::CompiledModel(const CompiledNetwork &entry)
    : entry_(entry), net_(model::parse_network(entry.toml, entry.file)) {
    set_shards(int(net_.train.shards));
}

void CompiledModel::set_shards(int shards) {
    if (shards < 1) throw UsageError(net_.name + ": error: the shard count must be at least 1");
    shards_ = shards;
}

namespace {

// Runs part(shard, begin, count) on shards first, first + step, ... of the
// `shards` shards of n images (shard_begin), `threads` of them at once. When every
// thread runs a shard, each shard's Halide loops run serially: a shard keeps its
// own core instead of sharing the pool (and every stage's data) with the others,
// if the process opted in (configure_process, process.h: the hook is process-wide).
// With more threads than shards, or without the opt-in, the shards share Halide's pool.
template <class Part>
void run_cut(int n, int shards, const Part &part, int first = 0, int step = 1) {
    const int threads = thread_count();
    const int mine = first < shards ? (shards - 1 - first) / step + 1 : 0;
    std::optional<SerialLoops> serial;
    if (mine > 1 && threads > 1 && threads <= mine && process_configured()) serial.emplace();
    run_shards(mine, threads, [&](int j) {
        const int s = first + j * step, begin = shard_begin(n, shards, s);
        part(s, begin, shard_begin(n, shards, s + 1) - begin);
    });
}

// The shards' outputs, gathered: each shard's slot holds its gradient
// (param_count floats) then its loss. grad = sum over s of (n_s / n) grads[s], in
// shard order, and the same for the losses. In batchnorm's buffer places each shard
// reported its own mean and unbiased variance over its M_s = n_s H W elements:
// those become the whole batch's, M = sum M_s,
//   mean = sum M_s mean_s / M
//   variance = (sum (M_s - 1) variance_s + sum M_s (mean_s - mean)^2) / (M - 1)
// (with M_s = 1 a shard reports variance 0, which the first sum takes as it is).
float gather_shards(const model::Network &net, int n, int shards, const float *slots, size_t stride, float *grad) {
    const size_t count = size_t(net.param_count);
    std::vector<float> weight(static_cast<size_t>(shards));  // n_s / n
    for (int s = 0; s < shards; s++)
        weight[size_t(s)] = float(shard_begin(n, shards, s + 1) - shard_begin(n, shards, s)) / float(n);
    float loss = weight[0] * slots[count];
    for (size_t i = 0; i < count; i++) grad[i] = weight[0] * slots[i];
    for (int s = 1; s < shards; s++) {
        const float *g = slots + size_t(s) * stride;
        loss += weight[size_t(s)] * g[count];
        for (size_t i = 0; i < count; i++) grad[i] += weight[size_t(s)] * g[i];
    }
    for (const model::Layer &l : net.layers) {
        if (l.running_mean < 0) continue;
        const int64_t mean_at = net.params[size_t(l.running_mean)].offset;
        const int64_t var_at = net.params[size_t(l.running_var)].offset;
        const double per_image = double(l.in.width * l.in.height), M = per_image * n;
        for (int64_t c = 0; c < l.in.channels; c++) {
            double mean = 0, spread = 0;
            for (int s = 0; s < shards; s++) {
                const double Ms = per_image * (shard_begin(n, shards, s + 1) - shard_begin(n, shards, s));
                mean += Ms * slots[size_t(s) * stride + size_t(mean_at + c)] / M;
            }
            for (int s = 0; s < shards; s++) {
                const double Ms = per_image * (shard_begin(n, shards, s + 1) - shard_begin(n, shards, s));
                const double mean_s = slots[size_t(s) * stride + size_t(mean_at + c)];
                const double var_s = slots[size_t(s) * stride + size_t(var_at + c)];
                spread += (Ms - 1) * var_s + Ms * (mean_s - mean) * (mean_s - mean);
            }
            grad[mean_at + c] = float(mean);
            grad[var_at + c] = float(M > 1 ? spread / (M - 1) : 0.0);
        }
    }
    return loss;
}

}  // namespace

// Images are independent in inference: one shard per thread.
void CompiledModel::forward(const float *params, const float *images, int n, float *scores) const {
    const size_t image_size = size_t(net_.input.shape().size()), classes = size_t(net_.input.classes);
    auto part = [&](int, int begin, int count) {
        Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
        Buffer<float> x = image_buffer(net_, images + size_t(begin) * image_size, count);
        Buffer<float> s(scores + size_t(begin) * classes, int(net_.input.classes), count);
        check(entry_.forward(p, x, s), net_, "forward");
    };
    const int shards = std::min(n, thread_count());
    if (shards <= 1) return part(0, 0, n);
    run_cut(n, shards, part);
}

// A small network's training step is some 25 stages of a fraction of a millisecond
// each: run on one pool of threads, every stage hands its images from core to core
// and waits for the slowest, and two threads trained lenet5 no faster than one.
// Cut into shards, each shard's step runs whole on one core.
float CompiledModel::train_step(const float *params, const float *images, const int32_t *labels, int n,
                                float *scores, float *grad, uint32_t seed) const {
    const int shards = std::min(n, shards_);
    if (shards <= 1 && !team_) return train_whole(params, images, labels, n, scores, grad, seed);
    // A slot per shard: its gradient, its loss, its images' scores. The calling
    // thread's buffer; a lambda does not capture a thread_local (on a helper
    // thread the name is the helper's own), so helpers get a pointer.
    const size_t count = size_t(net_.param_count), classes = size_t(net_.input.classes);
    const size_t image_size = size_t(net_.input.shape().size());
    const size_t stride = count + 1 + size_t((n + shards - 1) / shards) * classes;
    thread_local std::vector<float> slots_here;
    slots_here.resize(size_t(shards) * stride);
    float *const slots = slots_here.data();
    auto part = [&](int s, int begin, int images_in_shard) {
        float *slot = slots + size_t(s) * stride;
        slot[count] = train_whole(params, images + size_t(begin) * image_size, labels + begin, images_in_shard,
                                  slot + count + 1, slot, seed, begin);
    };
    if (team_) {  // this process's shards, then everyone's
        run_cut(n, shards, part, team_->rank(), team_->size());
        team_->share(slots, shards, stride);
    } else {
        run_cut(n, shards, part);
    }
    for (int s = 0; s < shards; s++) {
        const int begin = shard_begin(n, shards, s), end = shard_begin(n, shards, s + 1);
        std::copy_n(slots + size_t(s) * stride + count + 1, size_t(end - begin) * classes, scores + size_t(begin) * classes);
    }
    if (shards == 1) {  // one process's unsharded step, as it is
        std::copy_n(slots, count, grad);
        return slots[count];
    }
    return gather_shards(net_, n, shards, slots, stride, grad);
}

float CompiledModel::train_whole(const float *params, const float *images, const int32_t *labels, int n,
                                 float *scores, float *grad, uint32_t seed, int first_image) const {
    Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
    Buffer<float> x = image_buffer(net_, images, n);
    Buffer<int32_t> y(const_cast<int32_t *>(labels), n);
    Buffer<float> loss = Buffer<float>::make_scalar();
    Buffer<float> s(scores, int(net_.input.classes), n);
    Buffer<float> g(grad, int(net_.param_count));
    check(entry_.train(p, x, y, seed, first_image, loss, s, g), net_, "training");
    return loss();
}

void CompiledModel::features(const float *params, const float *images, int n, float *features) const {
    Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
    Buffer<float> x = image_buffer(net_, images, n);
    Buffer<float> f(features, int(model::feature_count(net_)), n);
    check(entry_.features(p, x, f), net_, "features");
}

#ifndef KILN_TARGETS
#define KILN_TARGETS "host"
#endif

std::vector<std::string> pipeline_targets() {
    std::vector<std::string> targets;
    std::string all = KILN_TARGETS;
    for (size_t start = 0; start <= all.size();) {
        const size_t end = std::min(all.find(',', start), all.size());
        targets.push_back(all.substr(start, end - start));
        start = end + 1;
    }
    return targets;
}

namespace {

// The CPU features a Halide x86 target names that this CPU lacks ("" if none).
std::string missing_features(const std::string &target) {
    __builtin_cpu_init();
    struct Need {
        const char *feature;
        bool present;
    };
    const Need needs[] = {
        {"sse41", bool(__builtin_cpu_supports("sse4.1"))},
        {"avx", bool(__builtin_cpu_supports("avx"))},
        {"avx2", bool(__builtin_cpu_supports("avx2"))},
        {"fma", bool(__builtin_cpu_supports("fma"))},
        {"f16c", bool(__builtin_cpu_supports("avx"))},  // every AVX CPU kiln targets has F16C (no builtin for it)
        {"avx512", __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd")},
        {"avx512_skylake", __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512dq")},
    };
    std::string missing;
    const std::string dashed = target + "-";
    for (const Need &n : needs)
        if (!n.present && dashed.find(std::string("-") + n.feature + "-") != std::string::npos)
            missing += (missing.empty() ? "" : ", ") + std::string(n.feature);
    return missing;
}

}  // namespace

std::string pipeline_variant() {
    for (const std::string &t : pipeline_targets())
        if (t == "host" || missing_features(t).empty()) return t;
    return "none";
}

void check_cpu_supported() {
    const std::vector<std::string> targets = pipeline_targets();
    if (pipeline_variant() == "none")
        throw UsageError("kiln: error: unsupported CPU: it lacks " + missing_features(targets.back()) +
                         ", which every compiled variant needs (compiled: the least is " + targets.back() +
                         "; rebuild with -DKILN_TARGETS=host on this machine)");
}

}  // namespace kiln
