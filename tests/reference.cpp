// The reference training step: naive loops in double precision, written from the
// definitions in model/network.h. The network's passes live here (with the
// activations and the loss); each layer kind's forward and backward live in
// reference/<kind>.cpp, found by the kind's name (reference/kind.h, which also
// gives the dimension letters).
#include "reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "reference/kind.h"

namespace kiln::reference {

void register_kinds(KindTable &table);  // generated from reference/*.cpp

const KindReference &kind_reference(const model::Layer &l) {
    static const KindTable table = [] {
        KindTable t;
        register_kinds(t);
        return t;
    }();
    for (const KindReference &k : table)
        if (k.kind == l.kind->name) return k;
    throw std::logic_error("reference: no reference for layer type " + std::string(l.kind->name) +
                           ": add tests/reference/" + std::string(l.kind->name) + ".cpp");
}

// ---- activations ----------------------------------------------------------------

namespace {

using model::Activation;
using model::Layer;

double activate(Activation a, double pre) {
    switch (a) {
    case Activation::none: return pre;
    case Activation::relu: return pre > 0 ? pre : 0.0;
    case Activation::tanh: return std::tanh(pre);
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-pre));
    }
    throw std::logic_error("unknown activation");
}

// d activate(pre) / d pre. ReLU's derivative at 0 is taken as 0, as PyTorch does.
double activation_derivative(Activation a, double pre) {
    switch (a) {
    case Activation::none: return 1.0;
    case Activation::relu: return pre > 0 ? 1.0 : 0.0;
    case Activation::tanh: return 1.0 - std::tanh(pre) * std::tanh(pre);
    case Activation::sigmoid: {
        double s = 1.0 / (1.0 + std::exp(-pre));
        return s * (1.0 - s);
    }
    }
    throw std::logic_error("unknown activation");
}

}  // namespace

Tensor activation_forward(Activation a, const Tensor &pre /* [N, O, OH, OW] */) {
    Tensor out = pre;  // [N, O, OH, OW]
    for (double &x : out.v) x = activate(a, x);
    return out;
}

Tensor activation_backward(Activation a, const Tensor &pre /* [N, O, OH, OW] */, const Tensor &d_out /* same */) {
    Tensor d_pre = d_out;  // [N, O, OH, OW]
    for (size_t i = 0; i < d_pre.v.size(); i++) d_pre.v[i] *= activation_derivative(a, pre.v[i]);
    return d_pre;
}

namespace {

Shards cut(int64_t n, int shards) {
    Shards s;
    const int64_t k = std::max<int64_t>(1, std::min<int64_t>(shards, n));
    for (int64_t i = 0; i <= k; i++) s.begin.push_back(i * n / k);
    return s;
}

// ---- loss: mean over the batch of softmax cross-entropy, with label smoothing e ----
//   q[n, l] = (1 - e) [l == label[n]] + e / L   (PyTorch's CrossEntropyLoss(label_smoothing = e))
//   loss = 1/N sum_n sum_l q[n, l] ( log sum_k exp(scores[n, k]) - scores[n, l] )
//   d_scores[n, l] = (softmax(scores[n])[l] - q[n, l]) / N

double softmax_cross_entropy(const Tensor &scores /* [N, L, 1, 1] */, const int32_t *labels, double smoothing,
                             Tensor &d_scores /* [N, L, 1, 1] */) {
    const int64_t N = scores.N, L = scores.C;
    double loss = 0;
    for (int64_t n = 0; n < N; n++) {
        double m = scores.at(n, 0, 0, 0);
        for (int64_t l = 1; l < L; l++) m = std::max(m, scores.at(n, l, 0, 0));
        double sum = 0;
        for (int64_t l = 0; l < L; l++) sum += std::exp(scores.at(n, l, 0, 0) - m);
        const double log_sum = m + std::log(sum);
        for (int64_t l = 0; l < L; l++) {
            const double q = (l == labels[n] ? 1.0 - smoothing : 0.0) + smoothing / double(L);
            loss += q * (log_sum - scores.at(n, l, 0, 0)) / double(N);
            d_scores.at(n, l, 0, 0) = (std::exp(scores.at(n, l, 0, 0) - log_sum) - q) / double(N);
        }
    }
    return loss;
}

// ---- the network ------------------------------------------------------------------

// The forward pass in training (dropout masks from `dropout_seed`, batchnorm with
// the batch's statistics) or in evaluation: the scores [N, L, 1, 1], every layer's
// output, and what the backward pass needs of each layer.
Tensor forward(const Step &step, const float *images, int n, std::vector<Saved> &saved, std::vector<Tensor> &outs) {
    const model::Network &net = step.net;
    // The input, normalized: [N, C, H, W].
    const model::InputSpec &spec = net.input;
    Tensor x(n, spec.channels, spec.height, spec.width);
    for (size_t i = 0; i < x.v.size(); i++) x.v[i] = (double(images[i]) - spec.mean) / spec.std;

    const Tensor input = x;
    for (const Layer &l : net.layers) {
        const KindReference &kind = kind_reference(l);
        // The output shape from the definitions, checked against the model's own.
        if (!(kind.shape(net, l) == l.out))
            throw std::logic_error("reference: layer " + l.name + " has an unexpected output shape");
        std::vector<const Tensor *> ins;
        for (int from : l.inputs) ins.push_back(from < 0 ? &input : &outs[size_t(from)]);
        Saved s{*ins[0], Tensor(0, 0, 0, 0), {}, {}};
        x = kind.forward(step, l, int(&l - net.layers.data()), ins, s);
        saved.push_back(std::move(s));
        outs.push_back(x);
    }
    return x;
}

// Backward, in reverse file order from d_scores: a layer's output gradient is the
// sum of what each layer reading it sends back, complete before its own turn.
void backward(const Step &step, const std::vector<Saved> &saved, const Tensor &d_scores) {
    const model::Network &net = step.net;
    std::vector<Tensor> d_outs(net.layers.size(), Tensor(0, 0, 0, 0));
    d_outs.back() = d_scores;
    auto send = [&](int to, const Tensor &g) {
        if (to < 0) return;  // the images need no gradient
        Tensor &acc = d_outs[size_t(to)];
        if (acc.N == 0) acc = g;
        else for (size_t k = 0; k < acc.v.size(); k++) acc.v[k] += g.v[k];
    };
    for (size_t i = net.layers.size(); i-- > 0;) {
        const Layer &l = net.layers[i];
        const std::vector<Tensor> d_in = kind_reference(l).backward(step, l, int(i), saved[i], d_outs[i]);
        for (size_t k = 0; k < l.inputs.size(); k++) send(l.inputs[k], d_in[k]);
    }
}

void check_params(const model::Network &net, const std::vector<float> &params) {
    if (int64_t(params.size()) != net.param_count) throw std::invalid_argument("reference: wrong parameter count");
}

}  // namespace

std::vector<double> reference_forward(const model::Network &net, const std::vector<float> &params, const float *images,
                                      int n) {
    check_params(net, params);
    const std::vector<double> p(params.begin(), params.end());
    const Shards shards = cut(n, 1);
    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    return forward(Step{net, p, false, 0, shards, nullptr}, images, n, saved, outs).v;
}

std::vector<std::vector<double>> reference_layer_outputs(const model::Network &net, const std::vector<float> &params,
                                                         const float *images, int n) {
    check_params(net, params);
    const std::vector<double> p(params.begin(), params.end());
    const Shards shards = cut(n, 1);
    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    forward(Step{net, p, false, 0, shards, nullptr}, images, n, saved, outs);
    std::vector<std::vector<double>> outputs;
    for (const Tensor &t : outs) outputs.push_back(t.v);
    return outputs;
}

ReferenceResult reference_train_step(const model::Network &net, const std::vector<float> &params,
                                     const float *images, const int32_t *labels, int n, uint32_t dropout_seed,
                                     int shard_count) {
    check_params(net, params);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= net.input.classes) throw std::invalid_argument("reference: bad label");
    const std::vector<double> p(params.begin(), params.end());  // [param_count]
    ReferenceResult r;
    r.grad.assign(p.size(), 0.0);  // [param_count]
    const Shards shards = cut(n, shard_count);
    const Step step{net, p, true, dropout_seed, shards, &r.grad};

    std::vector<Saved> saved;
    std::vector<Tensor> outs;
    const Tensor scores = forward(step, images, n, saved, outs);  // [N, L, 1, 1]
    r.scores = scores.v;
    Tensor d_scores(scores.N, scores.C, scores.H, scores.W);
    r.loss = softmax_cross_entropy(scores, labels, net.train.label_smoothing, d_scores);
    backward(step, saved, d_scores);
    return r;
}

}  // namespace kiln::reference
