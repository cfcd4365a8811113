// The training loop.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "compiled.h"
#include "evaluate.h"

namespace kiln {

struct TrainOptions {
    model::TrainSettings settings;  // the network's [train] table with overrides applied
    std::string out_dir;            // checkpoint.safetensors and metrics.csv go here
    std::string resume;             // a checkpoint to continue from, or ""
    bool progress = true;           // a progress bar on stderr within each epoch
    // Called after each epoch's checkpoint is written; returning false stops the
    // run there, as an interruption would.
    std::function<bool(int64_t epoch)> after_epoch;
    // The processes training together (distributed.h), or nullptr: this one
    // alone. With a team, every process gets the same result; only the leader
    // writes `log`, metrics.csv and checkpoints. All check at the start that
    // they have the same network, settings, data and starting weights.
    const ShardTeam *team = nullptr;
};

// One epoch's figures, as metrics.csv records them.
struct EpochMetrics {
    int64_t epoch = 0;
    double train_loss = 0, train_accuracy = 0;  // over the epoch's batches, as trained
    bool validated = false;                     // images were held out: `validation` holds their figures
    Evaluation validation, test;                // after the epoch
    double images_per_s = 0;                    // training only
    double elapsed_s = 0;                       // since the run (or its resumption) started
};

struct TrainResult {
    std::vector<float> params;
    Evaluation test;  // after the last epoch
    int64_t epochs = 0;
    // Every epoch so far, a resumed run's earlier ones included (from its metrics.csv).
    std::vector<EpochMetrics> history;
};

// Trains for settings.epochs epochs (counting those already in a resumed
// checkpoint), writing one line per epoch to `log`, OUT/metrics.csv, and
// OUT/checkpoint.safetensors after every epoch.
TrainResult train(const CompiledModel &model, const TrainOptions &opts, const ImageSet &train_set,
                  const ImageSet &test_set, std::ostream &log);

}  // namespace kiln
