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
#include "team.h"

namespace kiln {

// A wrong command-line request (unknown network, bad flag value): one line.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class CompiledModel {
public:
    // `entry` outlives the model: kiln_<id>_network of a network built with
    // kiln_add_network (cmake/KilnNetwork.cmake), an entry of the table of the
    // networks compiled into kiln, or a network file's (network_cache.h).
    CompiledModel(const CompiledNetwork &entry);

    const model::Network &net() const { return net_; }
    const CompiledNetwork &entry() const { return entry_; }

    // scores: n * classes, image-major. Cut into one shard per thread (each
    // image's scores are computed the same way in any batch).
    void forward(const float *params, const float *images, int n, float *scores) const;

    // One training step's loss (mean over the n images), scores and gradient
    // (param_count floats) at `params`; `seed` draws dropout's masks. The batch is
    // cut into shards() shards (shard s: images s*n/S to (s+1)*n/S, S = min(shards(),
    // n)), each run whole on one thread, and their gradients and losses are
    // added weighted by their sizes, in shard order: the result depends on the
    // shard count, never on the thread count. Dropout draws its masks by an
    // image's index in the whole batch. Batchnorm normalizes each shard with its
    // own statistics (PyTorch's DistributedDataParallel without SyncBatchNorm);
    // the statistics reported for the running ones are the whole batch's, pooled
    // from the shards' exactly.
    float train_step(const float *params, const float *images, const int32_t *labels, int n, float *scores,
                     float *grad, uint32_t seed = 0) const;
    int shards() const { return shards_; }
    void set_shards(int shards);  // >= 1; default: the network's [train] shards
    // With a team (distributed.h), train_step computes only this process's
    // shards (rank, rank + size, ...) and gets the others' from the team: the
    // same result, on every process. nullptr (the default): every shard here.
    void set_team(const ShardTeam *team) { team_ = team; }
    const ShardTeam *team() const { return team_; }
    // The compiled training pipeline on all n images at once, never sharded;
    // `first_image`: the index of the first of them in a whole batch (dropout).
    float train_whole(const float *params, const float *images, const int32_t *labels, int n, float *scores,
                      float *grad, uint32_t seed = 0, int first_image = 0) const;
    // Every layer's output in inference: n * model::feature_count(net()) floats,
    // image-major, each image's laid out as model::feature_offset says.
    void features(const float *params, const float *images, int n, float *features) const;

private:
    const CompiledNetwork &entry_;
    model::Network net_;
    int shards_ = 2;
    const ShardTeam *team_ = nullptr;
};

// The first image of shard s of a batch of n images cut into `shards` shards.
inline int shard_begin(int n, int shards, int s) { return int(int64_t(s) * n / shards); }

// The threads kiln's pipelines use (0: the default, every core, or HL_NUM_THREADS):
// sizes Halide's thread pool and says how many shards run at once.
void set_thread_count(int threads);
int thread_count();

// The Halide target of the pipelines that run on this CPU: the first of those
// compiled in (KILN_TARGETS, best first) whose features the CPU has, as Halide's
// multi-target dispatch picks it ("host": built for the build machine only).
std::string pipeline_variant();
// The targets compiled in, best first.
std::vector<std::string> pipeline_targets();
// Throws UsageError naming what is missing if this CPU can run none of them.
void check_cpu_supported();

// The networks compiled into the kiln command (registry.cpp, in the build's
// kiln_runtime library with kiln's networks; not in the installed libraries, whose
// programs make a CompiledModel from their own kiln_<id>_network instead).
// Every compiled network, in table order.
std::vector<CompiledModel> compiled_models();
// The compiled network with this name; UsageError naming the ones there are if
// none. A name that is a file's path (NAME.toml, or with a '/') is compiled on
// demand (network_cache.h) with `schedule`, by default the one beside it.
CompiledModel find_model(const std::string &name, const std::string &schedule = "");

}  // namespace kiln
