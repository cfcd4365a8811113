// Softmax regression (multinomial logistic regression) trained with Adam: the
// linear probes' classifier. A study probes every hidden layer of every network
// for three epochs, some 10^12 multiply-adds, so its two products, scores = x w^T
// and the weight gradient d^T x, are blocked in registers (16-float vectors)
// and compiled for AVX-512, AVX2 and plain x86-64, picked at load time. Its sums
// run in a fixed order, so a probe's result does not depend on the thread
// count; the first two fuse multiply-adds, so it may differ by float rounding
// between CPUs of different kinds, as the compiled pipelines' do.
//
// Dimension letters: N images in a batch, D features per image, Dp D rounded up
// to a multiple of 16 (rows are padded with zeros), K classes.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln {

class SoftmaxProbe {
public:
    SoftmaxProbe(int64_t features, int classes);

    // Dp: floats from one image's row to the next in the x given to step() and
    // count_correct(); each row is D features, then zeros up to Dp.
    int64_t row_stride() const { return Dp_; }

    // x: (N, Dp), labels: (N). One Adam step (PyTorch's update, no weight decay)
    // on the batch's mean cross-entropy; returns how many images the probe
    // classified right before the step.
    int64_t step(const float *x, const int32_t *labels, int n, double lr);

    int64_t count_correct(const float *x, const int32_t *labels, int n) const;

    const std::vector<float> &weights() const { return w_; }  // (K, Dp), zeros past D
    const std::vector<float> &bias() const { return b_; }     // (K)

private:
    // p (N, K) = softmax(x w^T + b), row by row; returns how many rows' arg max
    // is their label.
    int64_t softmax(const float *x, const int32_t *labels, int n, std::vector<float> &p) const;

    int64_t Dp_, K_;
    std::vector<float> w_, b_;    // (K, Dp), (K)
    std::vector<float> gw_, gb_;  // their gradients, same shapes
    std::vector<float> mw_, vw_, mb_, vb_;  // Adam's moments, same shapes
    std::vector<float> p_;        // (N, K) probabilities, then d loss / d scores
    int64_t t_ = 0;
};

}  // namespace kiln
