// batchnorm: each channel (a dense layer's unit) normalized over (n, y, x), then
// scaled by weight and shifted by bias, then an activation. In training with the
// batch's mean and biased variance; in evaluation with the running statistics,
// which the runtime updates after each step: running = (1 - momentum) running +
// momentum batch (the variance unbiased), as PyTorch's BatchNorm2d/1d.
#pragma once

namespace kiln::model {

struct BatchNormSpec {
    double momentum = 0.1, epsilon = 1e-5;
};

}  // namespace kiln::model
