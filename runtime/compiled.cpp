#include "compiled.h"

#include <malloc.h>

#include "HalideBuffer.h"

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

}  // namespace

CompiledModel::CompiledModel(const CompiledNetwork &entry)
    : entry_(entry), net_(model::parse_network(entry.toml, entry.file)) {
    halide_set_error_handler(keep_halide_error);
    // The pipelines allocate their stages' buffers (megabytes) on every call. By
    // default glibc maps such blocks fresh and unmaps them on free, so every call
    // pays page faults on all of them: keep them in the heap instead.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void CompiledModel::forward(const float *params, const float *images, int n, float *scores) const {
    Buffer<float> p(const_cast<float *>(params), int(net_.param_count));
    Buffer<float> x = image_buffer(net_, images, n);
    Buffer<float> s(scores, int(net_.input.classes), n);
    check(entry_.forward(p, x, s), net_, "forward");
}

float CompiledModel::train_step(const float *params, const float *images, const int32_t *labels, int n,
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
