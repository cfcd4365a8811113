#include "optimizer.h"

#include <algorithm>
#include <cmath>

#include "compiled.h"
#include "helper_thread.h"

namespace kiln {
namespace {

// Below this many elements an update runs on the calling thread: handing a piece
// to a helper would cost more than it saves.
constexpr size_t kParallelFrom = 16384;

// The loops below are written with restrict pointers and no branch per element so
// that the compiler vectorizes them; each element's arithmetic is the rule as
// written, in the same order, whatever the vector width or the cut.
class Sgd : public Optimizer {
public:
    Sgd(size_t size, const model::TrainSettings &s) : s_(s), momentum_(&buffers_["momentum"]) {
        momentum_->assign(size, 0.0f);
    }

private:
    void update(float *__restrict p, const float *__restrict grad, size_t begin, size_t end, double lr,
                int64_t) override {
        float *__restrict v = momentum_->data();
        const float m = float(s_.momentum), wd = float(s_.weight_decay), rate = float(lr);
        if (s_.nesterov) {
            for (size_t i = begin; i < end; i++) {
                const float g = grad[i] + wd * p[i];
                v[i] = m * v[i] + g;
                p[i] -= rate * (g + m * v[i]);
            }
        } else {
            for (size_t i = begin; i < end; i++) {
                const float g = grad[i] + wd * p[i];
                v[i] = m * v[i] + g;
                p[i] -= rate * v[i];
            }
        }
    }

    model::TrainSettings s_;
    std::vector<float> *momentum_;
};

class Adam : public Optimizer {
public:
    Adam(size_t size, const model::TrainSettings &s, bool decoupled)
        : s_(s), decoupled_(decoupled), exp_avg_(&buffers_["exp_avg"]), exp_avg_sq_(&buffers_["exp_avg_sq"]) {
        exp_avg_->assign(size, 0.0f);
        exp_avg_sq_->assign(size, 0.0f);
    }

private:
    void update(float *__restrict p, const float *__restrict grad, size_t begin, size_t end, double lr,
                int64_t step) override {
        float *__restrict m = exp_avg_->data();
        float *__restrict v = exp_avg_sq_->data();
        const double t = double(step + 1);
        const float b1 = float(s_.beta1), b2 = float(s_.beta2), eps = float(s_.epsilon);
        const float wd = float(s_.weight_decay), rate = float(lr);
        const float correction1 = float(1 - std::pow(s_.beta1, t)), correction2 = float(1 - std::pow(s_.beta2, t));
        for (size_t i = begin; i < end; i++) {  // the compiler takes decoupled_'s test out of the loop
            if (decoupled_) p[i] -= rate * wd * p[i];
            const float g = decoupled_ ? grad[i] : grad[i] + wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            p[i] -= rate * (m[i] / correction1) / (std::sqrt(v[i] / correction2) + eps);
        }
    }

    model::TrainSettings s_;
    bool decoupled_;
    std::vector<float> *exp_avg_, *exp_avg_sq_;
};

class RmsProp : public Optimizer {
public:
    RmsProp(size_t size, const model::TrainSettings &s) : s_(s), square_avg_(&buffers_["square_avg"]) {
        square_avg_->assign(size, 0.0f);
        if (s.momentum > 0) {
            momentum_ = &buffers_["momentum"];
            momentum_->assign(size, 0.0f);
        }
    }

private:
    void update(float *__restrict p, const float *__restrict grad, size_t begin, size_t end, double lr,
                int64_t) override {
        float *__restrict sq = square_avg_->data();
        const float alpha = float(s_.alpha), eps = float(s_.epsilon), wd = float(s_.weight_decay);
        const float m = float(s_.momentum), rate = float(lr);
        if (momentum_) {
            float *__restrict v = momentum_->data();
            for (size_t i = begin; i < end; i++) {
                const float g = grad[i] + wd * p[i];
                sq[i] = alpha * sq[i] + (1 - alpha) * g * g;
                v[i] = m * v[i] + g / (std::sqrt(sq[i]) + eps);
                p[i] -= rate * v[i];
            }
        } else {
            for (size_t i = begin; i < end; i++) {
                const float g = grad[i] + wd * p[i];
                sq[i] = alpha * sq[i] + (1 - alpha) * g * g;
                p[i] -= rate * (g / (std::sqrt(sq[i]) + eps));
            }
        }
    }

    model::TrainSettings s_;
    std::vector<float> *square_avg_, *momentum_ = nullptr;
};

}  // namespace

void Optimizer::step(std::vector<float> &params, const std::vector<float> &grad, double lr, int64_t step) {
    const std::vector<Range> all = {{0, params.size()}};
    const std::vector<Range> &ranges = updated_.empty() ? all : updated_;
    size_t total = 0;
    for (const Range &r : ranges) total += r.end - r.begin;
    const int pieces = total >= kParallelFrom ? std::max(1, thread_count()) : 1;
    // Piece k: the elements of ordinal k * total / pieces to (k + 1) * total / pieces
    // counted through the ranges in order.
    run_shards(pieces, pieces, [&](int k) {
        const size_t first = total * size_t(k) / size_t(pieces), last = total * size_t(k + 1) / size_t(pieces);
        size_t before = 0;  // elements in the ranges before r
        for (const Range &r : ranges) {
            const size_t size = r.end - r.begin;
            const size_t lo = std::max(first, before), hi = std::min(last, before + size);
            if (lo < hi) update(params.data(), grad.data(), r.begin + lo - before, r.begin + hi - before, lr, step);
            before += size;
        }
    });
}

bool Optimizer::restore(const std::map<std::string, std::vector<float>> &saved) {
    for (auto &[name, buffer] : buffers_) {
        auto it = saved.find(name);
        if (it == saved.end() || it->second.size() != buffer.size()) return false;
    }
    for (auto &[name, buffer] : buffers_) buffer = saved.at(name);
    return true;
}

void Optimizer::freeze_buffers(const model::Network &net) {
    updated_.clear();
    for (const model::ParamTensor &t : net.params) {
        if (t.buffer) continue;
        const size_t begin = size_t(t.offset), end = begin + size_t(t.count);
        if (!updated_.empty() && updated_.back().end == begin)
            updated_.back().end = end;
        else
            updated_.push_back({begin, end});
    }
    if (updated_.empty()) updated_.push_back({0, 0});  // nothing to train: nothing to update
}

std::unique_ptr<Optimizer> make_optimizer(const model::TrainSettings &s, size_t size) {
    if (s.optimizer == "adam") return std::make_unique<Adam>(size, s, false);
    if (s.optimizer == "adamw") return std::make_unique<Adam>(size, s, true);
    if (s.optimizer == "rmsprop") return std::make_unique<RmsProp>(size, s);
    return std::make_unique<Sgd>(size, s);
}

}  // namespace kiln
