// batchnorm: per channel c over the M = N*H*W elements (n, y, x)
//   pre[n, c, y, x] = weight[c] (in[n, c, y, x] - mean[c]) / sqrt(var[c] + eps) + bias[c]
// with the batch's mean and biased variance in training (each shard its own),
// running_mean and running_var in evaluation; then the activation.
#include "reference/kind.h"

#include <cmath>

#include "model/kinds/batchnorm.h"

namespace kiln::reference {
namespace {

using model::Layer;

// The batch's mean and biased variance of each channel of `in` [N, C, H, W].
void batch_statistics(const Tensor &in, std::vector<double> &mean /* [C] */, std::vector<double> &var /* [C] */) {
    const double M = double(in.N * in.H * in.W);
    mean.assign(size_t(in.C), 0.0);
    var.assign(size_t(in.C), 0.0);
    for (int64_t c = 0; c < in.C; c++) {
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) mean[size_t(c)] += in.at(n, c, y, x) / M;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    const double d = in.at(n, c, y, x) - mean[size_t(c)];
                    var[size_t(c)] += d * d / M;
                }
    }
}

Tensor batchnorm_forward(const Layer &l, const double *w, const double *b, const std::vector<double> &mean,
                         const std::vector<double> &var, const Tensor &in /* [N, C, H, W] */) {
    Tensor pre(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++)
                    pre.at(n, c, y, x) = w[c] * (in.at(n, c, y, x) - mean[size_t(c)]) /
                                             std::sqrt(var[size_t(c)] + l.spec_as<model::BatchNormSpec>().epsilon) +
                                         b[c];
    return pre;
}

// Training mode: the batch's statistics depend on every element, so
//   d_in = w / sqrt(var + eps) (d_pre - mean over (n, y, x) of d_pre - xhat mean of (d_pre xhat)),
// xhat = (in - mean) / sqrt(var + eps). Adds into d_w [C] and d_b [C].
Tensor batchnorm_backward(const Layer &l, const double *w, const std::vector<double> &mean,
                          const std::vector<double> &var, const Tensor &in /* [N, C, H, W] */,
                          const Tensor &d_pre /* [N, C, H, W] */, double *d_w, double *d_b) {
    const double M = double(in.N * in.H * in.W);
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t c = 0; c < in.C; c++) {
        const double inv_std = 1 / std::sqrt(var[size_t(c)] + l.spec_as<model::BatchNormSpec>().epsilon);
        double sum = 0, sum_xhat = 0;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    sum += d_pre.at(n, c, y, x);
                    sum_xhat += d_pre.at(n, c, y, x) * (in.at(n, c, y, x) - mean[size_t(c)]) * inv_std;
                }
        d_b[c] += sum;
        d_w[c] += sum_xhat;
        for (int64_t n = 0; n < in.N; n++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) {
                    const double xhat = (in.at(n, c, y, x) - mean[size_t(c)]) * inv_std;
                    d_in.at(n, c, y, x) = w[c] * inv_std * (d_pre.at(n, c, y, x) - sum / M - xhat * sum_xhat / M);
                }
    }
    return d_in;
}

model::Shape same_shape(const model::Network &, const Layer &l) { return l.in; }

// Training: each shard normalized with its own statistics, saved for backward;
// evaluation: the running statistics.
Tensor forward(const Step &step, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &s) {
    const Tensor &x = *in[0];
    const double *w = step.tensor(l.weight), *b = step.tensor(l.bias);
    s.pre = Tensor(x.N, x.C, x.H, x.W);
    if (step.training) {
        for (size_t k = 0; k < step.shards.size(); k++) {
            const Tensor part = x.images(step.shards.begin[k], step.shards.count(k));
            s.mean.emplace_back(), s.var.emplace_back();
            batch_statistics(part, s.mean.back(), s.var.back());
            s.pre.put_images(step.shards.begin[k], batchnorm_forward(l, w, b, s.mean.back(), s.var.back(), part));
        }
    } else {
        const int64_t C = l.in.channels;
        s.mean.emplace_back(step.tensor(l.running_mean), step.tensor(l.running_mean) + C);
        s.var.emplace_back(step.tensor(l.running_var), step.tensor(l.running_var) + C);
        s.pre = batchnorm_forward(l, w, b, s.mean[0], s.var[0], x);
    }
    return activation_forward(l.activation, s.pre);
}

// Each shard's adjoint; the buffers' places in the gradient hold the whole batch's
// mean and unbiased variance (biased for M = 1), the running statistics' update.
std::vector<Tensor> backward(const Step &step, const Layer &l, int, const Saved &s, const Tensor &d_out) {
    const Shards &shards = step.shards;
    const Tensor d_pre = activation_backward(l.activation, s.pre, d_out);
    Tensor d(d_pre.N, d_pre.C, d_pre.H, d_pre.W);
    for (size_t k = 0; k < shards.size(); k++)
        d.put_images(shards.begin[k],
                     batchnorm_backward(l, step.tensor(l.weight), s.mean[k], s.var[k],
                                        s.in.images(shards.begin[k], shards.count(k)),
                                        d_pre.images(shards.begin[k], shards.count(k)), step.d_tensor(l.weight),
                                        step.d_tensor(l.bias)));
    std::vector<double> mean, var;
    batch_statistics(s.in, mean, var);
    const double M = double(s.in.N * s.in.H * s.in.W);
    for (int64_t c = 0; c < l.in.channels; c++) {
        step.d_tensor(l.running_mean)[c] = mean[size_t(c)];
        step.d_tensor(l.running_var)[c] = var[size_t(c)] * M / std::max(M - 1, 1.0);
    }
    return {d};
}

}  // namespace

void register_batchnorm(KindTable &t) { t.push_back({"batchnorm", same_shape, forward, backward}); }

}  // namespace kiln::reference
