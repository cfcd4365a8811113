#include "softmax_probe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln {
namespace {

// Each product is compiled three times and the best the CPU runs is chosen when
// the program loads (GCC's function multi-versioning).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KILN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KILN_VECTOR_CLONES
#endif

constexpr int64_t kLanes = 16;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

// Lanes summed in a fixed order: the same result on every run.
inline float lane_sum(const Vec &v) {
    float sum = 0;
    for (int64_t l = 0; l < kLanes; l++) sum += v[l];
    return sum;
}

// scores (N, K) = x (N, Dp) . w (K, Dp)^T + b (K). Register tile: 2 images x 5
// classes of 16-lane partial sums; a tile past the last image or class repeats
// the last one (loads stay in bounds, the extra sums are dropped).
KILN_VECTOR_CLONES
void linear_scores(const float *x, const float *w, const float *b, int64_t n, int64_t K, int64_t Dp,
                   float *scores) {
    constexpr int64_t IB = 2, KB = 5;
    for (int64_t i0 = 0; i0 < n; i0 += IB)
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const int64_t ib = std::min(IB, n - i0), kb = std::min(KB, K - k0);
            Vec acc[IB][KB] = {};
            for (int64_t j = 0; j < Dp; j += kLanes) {
                Vec xv[IB], wv[KB];
#pragma GCC unroll 8
                for (int64_t i = 0; i < IB; i++) std::memcpy(&xv[i], x + (i0 + std::min(i, ib - 1)) * Dp + j, sizeof(Vec));
#pragma GCC unroll 8
                for (int64_t k = 0; k < KB; k++) std::memcpy(&wv[k], w + (k0 + std::min(k, kb - 1)) * Dp + j, sizeof(Vec));
#pragma GCC unroll 8
                for (int64_t i = 0; i < IB; i++)
#pragma GCC unroll 8
                    for (int64_t k = 0; k < KB; k++) acc[i][k] += xv[i] * wv[k];
            }
            for (int64_t i = 0; i < ib; i++)
                for (int64_t k = 0; k < kb; k++) scores[(i0 + i) * K + k0 + k] = b[k0 + k] + lane_sum(acc[i][k]);
        }
}

// gw (K, Dp) = d (N, K)^T . x (N, Dp), images summed in order. Register tile: 5
// classes x 4 vectors of features; the feature blocks outermost, so a block's
// rows of x stay in cache while the classes pass over them.
KILN_VECTOR_CLONES
void weight_gradient(const float *d, const float *x, int64_t n, int64_t K, int64_t Dp, float *gw) {
    constexpr int64_t KB = 5, JV = 4;
    for (int64_t j0 = 0; j0 < Dp; j0 += JV * kLanes)
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const int64_t jv = std::min(JV, (Dp - j0) / kLanes), kb = std::min(KB, K - k0);
            Vec acc[KB][JV] = {};
            for (int64_t i = 0; i < n; i++) {
                Vec xv[JV];
#pragma GCC unroll 8
                for (int64_t v = 0; v < JV; v++)
                    std::memcpy(&xv[v], x + i * Dp + j0 + std::min(v, jv - 1) * kLanes, sizeof(Vec));
#pragma GCC unroll 8
                for (int64_t k = 0; k < KB; k++) {
                    const float dk = d[i * K + k0 + std::min(k, kb - 1)];
#pragma GCC unroll 8
                    for (int64_t v = 0; v < JV; v++) acc[k][v] += dk * xv[v];
                }
            }
            for (int64_t k = 0; k < kb; k++)
                for (int64_t v = 0; v < jv; v++) std::memcpy(gw + (k0 + k) * Dp + j0 + v * kLanes, &acc[k][v], sizeof(Vec));
        }
}

// PyTorch's Adam, no weight decay; t counts steps from 1.
void adam(std::vector<float> &w, const std::vector<float> &g, std::vector<float> &m, std::vector<float> &v, double lr,
          int64_t t) {
    const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    const float c1 = float(1 - std::pow(0.9, double(t))), c2 = float(std::sqrt(1 - std::pow(0.999, double(t))));
    const float step = float(lr) / c1;
    for (size_t i = 0; i < w.size(); i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        w[i] -= step * m[i] / (std::sqrt(v[i]) / c2 + eps);
    }
}

}  // namespace

SoftmaxProbe::SoftmaxProbe(int64_t features, int classes)
    : Dp_((features + kLanes - 1) / kLanes * kLanes), K_(classes), w_(size_t(Dp_ * K_)), b_(size_t(K_)),
      gw_(w_.size()), gb_(b_.size()), mw_(w_.size()), vw_(w_.size()), mb_(b_.size()), vb_(b_.size()) {}

int64_t SoftmaxProbe::softmax(const float *x, const int32_t *labels, int n, std::vector<float> &p) const {
    p.resize(size_t(n * K_));
    linear_scores(x, w_.data(), b_.data(), n, K_, Dp_, p.data());
    int64_t correct = 0;
    for (int i = 0; i < n; i++) {
        float *pi = p.data() + i * K_;  // (K)
        const int64_t best = std::max_element(pi, pi + K_) - pi;
        correct += best == labels[i];
        const float top = pi[best];
        float sum = 0;
        for (int64_t k = 0; k < K_; k++) sum += pi[k] = std::exp(pi[k] - top);
        for (int64_t k = 0; k < K_; k++) pi[k] /= sum;
    }
    return correct;
}

int64_t SoftmaxProbe::step(const float *x, const int32_t *labels, int n, double lr) {
    const int64_t correct = softmax(x, labels, n, p_);
    // d mean loss / d scores = (p - one_hot(label)) / N
    std::fill(gb_.begin(), gb_.end(), 0.0f);
    for (int i = 0; i < n; i++) {
        float *di = p_.data() + i * K_;
        di[labels[i]] -= 1.0f;
        for (int64_t k = 0; k < K_; k++) gb_[size_t(k)] += di[k] /= float(n);
    }
    weight_gradient(p_.data(), x, n, K_, Dp_, gw_.data());
    t_++;
    adam(w_, gw_, mw_, vw_, lr, t_);
    adam(b_, gb_, mb_, vb_, lr, t_);
    return correct;
}

int64_t SoftmaxProbe::count_correct(const float *x, const int32_t *labels, int n) const {
    std::vector<float> p;
    return softmax(x, labels, n, p);
}

}  // namespace kiln
