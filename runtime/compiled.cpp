#include "compiled.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include "HalideBuffer.h"
#include "helper_thread.h"

namespace kiln {
namespace {

using Halide::Runtime::Buffer;

// Halide's default error handler aborts the process; keep the message instead and
// report it as an exception from the call that failed.
thread_local std::string last_halide_error;

void keep_halide_error(void *, const char *message) {
    last_halide_error = message;
    while (!last_halide_error.empty() && last_halide_error.back() == '\n') last_halide_error.pop_back();
}

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

// Halide's pool for loops of two or more tasks; a loop of one task (a stage
// parallel over images, called for one image) runs here, without waking the pool.
int kiln_do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {
    if (size <= 1) return serial_do_par_for(user_context, task, min, size, closure);
    return halide_default_do_par_for(user_context, task, min, size, closure);
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
    halide_set_error_handler(keep_halide_error);
    halide_set_custom_do_par_for(kiln_do_par_for);
    // The pipelines allocate their stages' buffers (megabytes) on every call. By
    // default glibc maps such blocks fresh and unmaps them on free, so every call
    // pays page faults on all of them: keep them in the heap instead.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    sharded_ = model::images_independent_in_training(net_);
}

namespace {

// Runs part(0, n / 2) on the first half of n images and part(n / 2, n - n / 2) on
// the second: side by side when there are threads for both (each half's Halide
// loops serial if there are no more threads than halves), else one after the
// other on the calling thread.
template <class Part>
void run_halves(int n, const Part &part) {
    static_assert(kShards == 2, "the shards here are a first and a second half");
    const int first = n / 2, second = n - first;
    const int threads = thread_count();
    if (threads < kShards) {
        part(0, first);
        part(first, second);
        return;
    }
    std::optional<SerialLoops> serial;
    if (threads == kShards) serial.emplace();
    HelperThread::instance().run_beside([&] { part(first, second); }, [&] { part(0, first); });
}

}  // namespace

// Images are independent in inference: halves on their own cores, as training.
void CompiledModel::forward(const float *params, const float *images, int n, float *scores) const {
    const size_t image_size = size_t(net_.input.shape().size()), classes = size_t(net_.input.classes);
    auto part = [&](int begin, int count) {
        Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
        Buffer<float> x = image_buffer(net_, images + size_t(begin) * image_size, count);
        Buffer<float> s(scores + size_t(begin) * classes, int(net_.input.classes), count);
        check(entry_.forward(p, x, s), net_, "forward");
    };
    if (n < kShards) return part(0, n);
    run_halves(n, part);
}

// A small network's training step is some 25 stages of a fraction of a millisecond
// each: run on one pool of threads, every stage hands its images from core to core
// and waits for the slowest, and two threads trained lenet5 no faster than one.
// Cut into shards, each shard's step runs whole on one core, and the shards'
// gradients (each the mean over its images) are added weighted by their sizes,
// in shard order.
float CompiledModel::train_step(const float *params, const float *images, const int32_t *labels, int n,
                                float *scores, float *grad, uint32_t seed) const {
    if (!sharded_ || n < kShards) return train_whole(params, images, labels, n, scores, grad, seed);
    const size_t image_size = size_t(net_.input.shape().size()), classes = size_t(net_.input.classes);
    thread_local std::vector<float> second_grad;  // the calling thread's: the helper gets a pointer
    second_grad.resize(size_t(net_.param_count));
    float *const shard_grads[kShards] = {grad, second_grad.data()};
    float losses[kShards] = {};
    run_halves(n, [&](int begin, int count) {
        const int shard = begin > 0;
        losses[shard] = train_whole(params, images + size_t(begin) * image_size, labels + begin, count,
                                    scores + size_t(begin) * classes, shard_grads[shard], seed);
    });
    const int first = n / 2;
    const float first_weight = float(first) / float(n), second_weight = float(n - first) / float(n);
    for (size_t i = 0; i < second_grad.size(); i++) grad[i] = first_weight * grad[i] + second_weight * second_grad[i];
    return first_weight * losses[0] + second_weight * losses[1];
}

float CompiledModel::train_whole(const float *params, const float *images, const int32_t *labels, int n,
                                 float *scores, float *grad, uint32_t seed) const {
    Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
    Buffer<float> x = image_buffer(net_, images, n);
    Buffer<int32_t> y(const_cast<int32_t *>(labels), n);
    Buffer<float> loss = Buffer<float>::make_scalar();
    Buffer<float> s(scores, int(net_.input.classes), n);
    Buffer<float> g(grad, int(net_.param_count));
    check(entry_.train(p, x, y, seed, loss, s, g), net_, "training");
    return loss();
}

void CompiledModel::features(const float *params, const float *images, int n, float *features) const {
    Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
    Buffer<float> x = image_buffer(net_, images, n);
    Buffer<float> f(features, int(model::feature_count(net_)), n);
    check(entry_.features(p, x, f), net_, "features");
}

std::vector<CompiledModel> compiled_models() {
    std::vector<CompiledModel> all;
    for (size_t i = 0; i < compiled_network_count; i++) all.emplace_back(compiled_networks[i]);
    return all;
}

CompiledModel find_model(const std::string &name) {
    std::string names;
    for (CompiledModel &m : compiled_models()) {
        if (m.net().name == name) return m;
        names += (names.empty() ? "" : ", ") + m.net().name;
    }
    throw UsageError("kiln: error: no network named '" + name + "' is compiled in (there are: " + names +
                     "); `kiln check FILE.toml` validates any file");
}

}  // namespace kiln
