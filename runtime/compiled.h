// A network compiled into this build: its description (parsed from the TOML text
// its pipelines were generated from) and its pipelines, callable on plain
// arrays. Images are (n, c, y, x) row-major floats in [0, 1], which is Halide's
// (x, y, c, n) with x innermost.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/network.h"
#include "registry.h"

namespace kiln {

// A wrong command-line request (unknown network, bad flag value): one line.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class CompiledModel {
public:
    CompiledModel(const CompiledNetwork &entry);

    const model::Network &net() const { return net_; }
    const CompiledNetwork &entry() const { return entry_; }

    // scores: n * classes, image-major. Cut into kShards shards (each image's
    // scores are computed the same way in any batch).
    void forward(const float *params, const float *images, int n, float *scores) const;
    // One training step's loss (mean over the n images), scores and gradient
    // (param_count floats) at `params`; `seed` draws dropout's masks. Where the
    // images are independent until their gradients are summed (no batchnorm, no
    // dropout), the batch is cut into kShards shards run on their own threads
    // (see compiled.cpp); the result does not depend on the thread count.
    float train_step(const float *params, const float *images, const int32_t *labels, int n, float *scores,
                     float *grad, uint32_t seed = 0) const;
    // Whether train_step cuts its batches into shards.
    bool sharded() const { return sharded_; }
    // The compiled training pipeline on all n images at once, never sharded.
    float train_whole(const float *params, const float *images, const int32_t *labels, int n, float *scores,
                      float *grad, uint32_t seed = 0) const;
    // Every layer's output in inference: n * model::feature_count(net()) floats,
    // image-major, each image's laid out as model::feature_offset says.
    void features(const float *params, const float *images, int n, float *features) const;

private:
    const CompiledNetwork &entry_;
    model::Network net_;
    bool sharded_ = false;
};

// Shards a batch is cut into (see train_step and forward): two, on any machine, so
// that a result is the same whatever the thread count.
constexpr int kShards = 2;

// The threads kiln's pipelines use (0: the default, every core, or HL_NUM_THREADS):
// sizes Halide's thread pool and tells train_step whether its shards run at once.
void set_thread_count(int threads);
int thread_count();

// Every compiled network, in table order.
std::vector<CompiledModel> compiled_models();
// The compiled network with this name; UsageError naming the ones there are if none.
CompiledModel find_model(const std::string &name);

}  // namespace kiln
