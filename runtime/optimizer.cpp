#include "optimizer.h"

namespace kiln {

SgdMomentum::SgdMomentum(size_t size, double momentum, double weight_decay)
    : velocity_(size, 0.0f), momentum_(float(momentum)), weight_decay_(float(weight_decay)) {}

void SgdMomentum::step(std::vector<float> &params, const std::vector<float> &grad, double lr) {
    const float rate = float(lr);
    for (size_t i = 0; i < params.size(); i++) {
        float g = grad[i] + weight_decay_ * params[i];
        velocity_[i] = momentum_ * velocity_[i] + g;
        params[i] -= rate * velocity_[i];
    }
}

std::map<std::string, std::vector<float>> SgdMomentum::state() const { return {{"momentum", velocity_}}; }

bool SgdMomentum::restore(const std::map<std::string, std::vector<float>> &state) {
    auto it = state.find("momentum");
    if (it == state.end() || it->second.size() != velocity_.size()) return false;
    velocity_ = it->second;
    return true;
}

}  // namespace kiln
