#include "lr_schedule.h"

#include <cmath>

namespace kiln {
namespace {

// From `from` at fraction 0 to `to` at fraction 1 along half a cosine.
double cosine_between(double from, double to, double fraction) {
    return to + (from - to) * 0.5 * (1 + std::cos(M_PI * fraction));
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

}  // namespace kiln
