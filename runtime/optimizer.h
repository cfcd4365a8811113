// Optimizers over the flat parameter vector.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kiln {

// SGD with momentum and L2 weight decay, as PyTorch's torch.optim.SGD:
//   g = grad + weight_decay * p;  v = momentum * v + g;  p -= lr * v
class SgdMomentum {
public:
    SgdMomentum(size_t size, double momentum, double weight_decay);
    void step(std::vector<float> &params, const std::vector<float> &grad, double lr);

    // State saved in a checkpoint, by name ("momentum" -> one float per parameter).
    std::map<std::string, std::vector<float>> state() const;
    // Restores state(); false if it does not fit (missing or wrong size).
    bool restore(const std::map<std::string, std::vector<float>> &state);

private:
    std::vector<float> velocity_;
    float momentum_, weight_decay_;
};

}  // namespace kiln
