#include "lr_schedule.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/core.h>

namespace kiln {
namespace {

// From `from` at fraction 0 to `to` at fraction 1 along half a cosine.
double cosine_between(double from, double to, double fraction) {
    return to + (from - to) * 0.5 * (1 + std::cos(M_PI * fraction));
}

const char *const kLr = "plateau_lr", *const kBest = "plateau_best", *const kBad = "plateau_bad_epochs";

// The whole of `text` as a number, or false.
bool parse_double(const std::string &text, double &out) {
    if (text.empty()) return false;
    char *end = nullptr;
    errno = 0;
    out = std::strtod(text.c_str(), &end);
    return errno == 0 && *end == '\0';
}

}  // namespace

double learning_rate_at(const model::TrainSettings &s, int64_t step, int64_t steps_per_epoch) {
    const double lr = s.learning_rate;
    const double total = double(steps_per_epoch * s.epochs);
    if (s.lr_schedule == "cosine") return cosine_between(lr, 0, double(step) / total);
    if (s.lr_schedule == "step") return lr * std::pow(s.lr_gamma, double((step / steps_per_epoch) / s.lr_step_epochs));
    if (s.lr_schedule == "onecycle") {
        constexpr double div_factor = 25, final_div_factor = 1e4;
        const double warmup = std::max(1.0, s.lr_warmup * total);  // steps
        if (double(step) < warmup) return cosine_between(lr / div_factor, lr, double(step) / warmup);
        return cosine_between(lr, lr / (div_factor * final_div_factor), (double(step) - warmup) / (total - warmup));
    }
    return lr;
}

void Plateau::step(double metric) {
    if (maximize_ ? metric > best_ * (1 + kThreshold) : metric < best_ * (1 - kThreshold)) {
        best_ = metric;
        bad_epochs_ = 0;
    } else {
        bad_epochs_++;
    }
    if (bad_epochs_ > patience_) {
        const double reduced = std::max(lr_ * factor_, min_lr_);
        if (lr_ - reduced > kEps) lr_ = reduced;
        bad_epochs_ = 0;
    }
}

std::map<std::string, std::string> Plateau::to_metadata() const {
    return {{kLr, fmt::format("{}", lr_)}, {kBest, fmt::format("{}", best_)}, {kBad, std::to_string(bad_epochs_)}};
}

bool Plateau::restore(const std::map<std::string, std::string> &metadata) {
    auto lr = metadata.find(kLr), best = metadata.find(kBest), bad = metadata.find(kBad);
    if (lr == metadata.end() || best == metadata.end() || bad == metadata.end()) return false;
    double l = 0, b = 0, e = 0;
    if (!parse_double(lr->second, l) || !parse_double(best->second, b) || !parse_double(bad->second, e)) return false;
    if (!(l >= 0) || e < 0 || e != std::floor(e)) return false;
    lr_ = l;
    best_ = b;
    bad_epochs_ = int64_t(e);
    return true;
}

}  // namespace kiln
