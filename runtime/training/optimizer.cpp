#include "optimizer.h"

#include <algorithm>
#include <cmath>

namespace kiln {
namespace {

class Sgd : public Optimizer {
public:
    Sgd(size_t size, const model::TrainSettings &s) : s_(s) { buffers_["momentum"].assign(size, 0.0f); }
    void step(std::vector<float> &p, const std::vector<float> &grad, double lr, int64_t) override {
        std::vector<float> &v = buffers_["momentum"];
        const float m = float(s_.momentum), wd = float(s_.weight_decay), rate = float(lr);
        for (size_t i = 0; i < p.size(); i++) {
            if (frozen(i)) continue;
            const float g = grad[i] + wd * p[i];
            v[i] = m * v[i] + g;
            p[i] -= rate * (s_.nesterov ? g + m * v[i] : v[i]);
        }
    }
    std::map<std::string, std::vector<float>> state() const override { return buffers_; }

private:
    model::TrainSettings s_;
};

class Adam : public Optimizer {
public:
    Adam(size_t size, const model::TrainSettings &s, bool decoupled) : s_(s), decoupled_(decoupled) {
        buffers_["exp_avg"].assign(size, 0.0f);
        buffers_["exp_avg_sq"].assign(size, 0.0f);
    }
    void step(std::vector<float> &p, const std::vector<float> &grad, double lr, int64_t step) override {
        std::vector<float> &m = buffers_["exp_avg"], &v = buffers_["exp_avg_sq"];
        const double t = double(step + 1);
        const float b1 = float(s_.beta1), b2 = float(s_.beta2), eps = float(s_.epsilon);
        const float wd = float(s_.weight_decay), rate = float(lr);
        const float correction1 = float(1 - std::pow(s_.beta1, t)), correction2 = float(1 - std::pow(s_.beta2, t));
        for (size_t i = 0; i < p.size(); i++) {
            if (frozen(i)) continue;
            float g = grad[i];
            if (decoupled_)
                p[i] -= rate * wd * p[i];
            else
                g += wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            p[i] -= rate * (m[i] / correction1) / (std::sqrt(v[i] / correction2) + eps);
        }
    }
    std::map<std::string, std::vector<float>> state() const override { return buffers_; }

private:
    model::TrainSettings s_;
    bool decoupled_;
};

class RmsProp : public Optimizer {
public:
    RmsProp(size_t size, const model::TrainSettings &s) : s_(s) {
        buffers_["square_avg"].assign(size, 0.0f);
        if (s.momentum > 0) buffers_["momentum"].assign(size, 0.0f);
    }
    void step(std::vector<float> &p, const std::vector<float> &grad, double lr, int64_t) override {
        std::vector<float> &sq = buffers_["square_avg"];
        const float alpha = float(s_.alpha), eps = float(s_.epsilon), wd = float(s_.weight_decay);
        const float m = float(s_.momentum), rate = float(lr);
        std::vector<float> *v = m > 0 ? &buffers_["momentum"] : nullptr;
        for (size_t i = 0; i < p.size(); i++) {
            if (frozen(i)) continue;
            const float g = grad[i] + wd * p[i];
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g;
            const float d = g / (std::sqrt(sq[i]) + eps);
            if (v) {
                (*v)[i] = m * (*v)[i] + d;
                p[i] -= rate * (*v)[i];
            } else {
                p[i] -= rate * d;
            }
        }
    }
    std::map<std::string, std::vector<float>> state() const override { return buffers_; }

private:
    model::TrainSettings s_;
};

}  // namespace

bool Optimizer::restore(const std::map<std::string, std::vector<float>> &saved) {
    for (auto &[name, buffer] : buffers_) {
        auto it = saved.find(name);
        if (it == saved.end() || it->second.size() != buffer.size()) return false;
    }
    for (auto &[name, buffer] : buffers_) buffer = saved.at(name);
    return true;
}

void Optimizer::freeze_buffers(const model::Network &net) {
    frozen_.assign(size_t(net.param_count), 0);
    for (const model::ParamTensor &t : net.params)
        if (t.buffer) std::fill_n(frozen_.begin() + t.offset, t.count, uint8_t(1));
}

std::unique_ptr<Optimizer> make_optimizer(const model::TrainSettings &s, size_t size) {
    if (s.optimizer == "adam") return std::make_unique<Adam>(size, s, false);
    if (s.optimizer == "adamw") return std::make_unique<Adam>(size, s, true);
    if (s.optimizer == "rmsprop") return std::make_unique<RmsProp>(size, s);
    return std::make_unique<Sgd>(size, s);
}

}  // namespace kiln
