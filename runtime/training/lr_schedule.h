// The learning rate at each training step, from [train]'s lr_schedule. A pure
// function of the step, so that a resumed run continues the same curve.
//   constant   lr
//   cosine     lr (1 + cos(pi t / T)) / 2, from lr down to 0 at the last step
//   step       lr gamma^floor(epoch / lr_step_epochs)
//   onecycle   PyTorch's OneCycleLR with cosine annealing: from lr/25 up to lr over
//              the first lr_warmup of the run, then down to lr/(25 * 1e4)
// t counts steps from 0, T = steps in the whole run.
//
//   plateau    PyTorch's ReduceLROnPlateau on the validation loss, not a function of
//              the step: see Plateau below (learning_rate_at is not used for it).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "model/network.h"

namespace kiln {

double learning_rate_at(const model::TrainSettings &s, int64_t step, int64_t steps_per_epoch);

// ReduceLROnPlateau(mode="min", factor=lr_gamma, patience=lr_patience,
// threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=lr_min, eps=1e-8), stepped
// once per epoch with the validation loss; with lr_monitor = "val_accuracy", mode="max"
// stepped with the validation accuracy. Its rule, as PyTorch's step(metric):
//   min: if metric < best (1 - threshold): best = metric, bad_epochs = 0
//   max: if metric > best (1 + threshold): best = metric, bad_epochs = 0
//   else bad_epochs += 1
//   if bad_epochs > patience:
//       new = max(lr factor, min_lr); if lr - new > eps: lr = new
//       bad_epochs = 0
// The state is saved in the checkpoint's metadata (to_metadata) and restored
// from it on resume.
class Plateau {
public:
    static constexpr double kThreshold = 1e-4, kEps = 1e-8;

    explicit Plateau(const model::TrainSettings &s)
        : maximize_(s.lr_monitor == "val_accuracy"), factor_(s.lr_gamma), patience_(s.lr_patience), min_lr_(s.lr_min),
          lr_(s.learning_rate), best_(maximize_ ? -std::numeric_limits<double>::infinity()
                                                : std::numeric_limits<double>::infinity()) {}

    double lr() const { return lr_; }
    double best() const { return best_; }
    int64_t bad_epochs() const { return bad_epochs_; }

    // After an epoch, with that epoch's validation loss (or accuracy: lr_monitor).
    void step(double metric);

    // "plateau_lr", "plateau_best", "plateau_bad_epochs": exact decimal round trips.
    std::map<std::string, std::string> to_metadata() const;
    // false if an entry is missing or malformed.
    bool restore(const std::map<std::string, std::string> &metadata);

private:
    bool maximize_;
    double factor_;
    int64_t patience_;
    double min_lr_;
    double lr_;
    double best_;
    int64_t bad_epochs_ = 0;
};

}  // namespace kiln
