// Optimizers over the flat parameter vector, each following PyTorch's update rule
// (torch.optim), so that settings carry over. g is the gradient, p a parameter,
// wd the weight decay, t the 1-based step number.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/network.h"

namespace kiln {

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // One update with learning rate `lr`; `step` counts the updates before this one
    // (derivable from the epoch, so a resumed run needs no more than state()).
    // Large vectors are cut into one contiguous piece per thread (thread_count());
    // each element's update is the same whatever the cut.
    void step(std::vector<float> &params, const std::vector<float> &grad, double lr, int64_t step);
    // State saved in a checkpoint, by name, one float per parameter each.
    std::map<std::string, std::vector<float>> state() const { return buffers_; }
    // Restores state(); false if it does not fit (missing or wrong size).
    bool restore(const std::map<std::string, std::vector<float>> &saved);
    // Leaves the elements of `net`'s buffers (batchnorm's running statistics) alone:
    // no update, no weight decay, their state stays zero.
    void freeze_buffers(const model::Network &net);

protected:
    // The rule on elements [begin, end) of params, grad and the state buffers.
    virtual void update(float *params, const float *grad, size_t begin, size_t end, double lr, int64_t step) = 0;
    // The state by name; a subclass keeps pointers to its own (a map's elements stay put).
    std::map<std::string, std::vector<float>> buffers_;

private:
    struct Range {
        size_t begin, end;
    };
    std::vector<Range> updated_;  // the elements step() updates; empty: all of them
};

// sgd:      g += wd p;  v = momentum v + g;  p -= lr (nesterov ? g + momentum v : v)
// adam:     g += wd p;  m = b1 m + (1-b1) g;  s = b2 s + (1-b2) g^2;
//           p -= lr (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps)
// adamw:    p -= lr wd p (decoupled), then adam's update without the decay
// rmsprop:  g += wd p;  s = alpha s + (1-alpha) g^2;  d = g / (sqrt(s) + eps);
//           with momentum: v = momentum v + d, p -= lr v; else p -= lr d
std::unique_ptr<Optimizer> make_optimizer(const model::TrainSettings &settings, size_t size);

}  // namespace kiln
