// Batch normalization, per channel c (a dense layer's unit) over the M = N*H*W
// elements (n, y, x) of a batch, as PyTorch's BatchNorm2d/1d:
//   training:    mean(c) = 1/M sum in;  variance(c) = 1/M sum (in - mean(c))^2   (biased)
//   evaluation:  mean(c), variance(c) = running_mean[c], running_var[c]
//   inv_std(c) = 1 / sqrt(variance(c) + eps)
//   scale(c) = weight[c] inv_std(c)
//   pre(x, y, c, n) = (in(x, y, c, n) - mean(c)) scale(c) + bias[c];  out = activation(pre)
// Centred first, as PyTorch computes it: with one element per channel (a dense
// layer's batchnorm on a batch of one image) in - mean is exactly 0 and pre exactly
// the bias, where in scale + (bias - mean scale) would round to either side of a
// ReLU's kink.
// Adjoint (training), with xhat = (in - mean(c)) inv_std(c):
//   d_bias(c) = sum d_pre;  d_weight(c) = sum d_pre xhat
//   d_in = scale(c) (d_pre - (d_bias(c) + xhat d_weight(c)) / M)
// The running statistics are not trained: the training step reports the batch's
// mean and unbiased variance, variance M / (M - 1), for the runtime to fold into
// them (with M = 1, where that is undefined, the biased one: 0).
#include "layers/layers.h"
#include "model/kinds/batchnorm.h"

namespace kiln::layers {
namespace {

// The reduction over a batch's (x, y, n) of a channel.
RDom batch_domain(const model::Layer &l, Expr batch, const std::string &name) {
    return RDom(0, int(l.in.width), 0, int(l.in.height), 0, batch, name);
}

Expr count(const model::Layer &l, Expr batch, Type t) {  // M
    return Halide::cast(t, batch * int(l.in.width * l.in.height));
}

}  // namespace

Forward batchnorm_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in,
                          Expr batch) {
    Vars v;
    Type t = in.output_types()[0];
    const model::BatchNormSpec &spec = l.spec_as<model::BatchNormSpec>();
    const model::ParamTensor &w = net.params[l.weight], &b = net.params[l.bias];
    Forward f;
    f.mean = Func(l.name + "_mean");          // (c)
    f.variance = Func(l.name + "_variance");  // (c)
    if (batch.defined()) {
        RDom r = batch_domain(l, batch, l.name + "_r");
        Expr m = count(l, batch, t);
        f.mean(v.c) = zero(t);
        f.mean(v.c) += in(r.x, r.y, v.c, r.z) / m;
        Expr centred = in(r.x, r.y, v.c, r.z) - f.mean(v.c);
        f.variance(v.c) = zero(t);
        f.variance(v.c) += centred * centred / m;
        f.unbiased_variance = Func(l.name + "_unbiased_variance");  // (c)
        f.unbiased_variance(v.c) = f.variance(v.c) * m / Halide::max(m - one(t), one(t));
    } else {
        f.mean(v.c) = param_at(params, net.params[l.running_mean], v.c);
        f.variance(v.c) = param_at(params, net.params[l.running_var], v.c);
    }
    f.inv_std = Func(l.name + "_inv_std");  // (c)
    f.inv_std(v.c) = one(t) / Halide::sqrt(f.variance(v.c) + Halide::cast(t, Expr(spec.epsilon)));
    f.scale = Func(l.name + "_scale");  // (c)
    f.scale(v.c) = param_at(params, w, v.c) * f.inv_std(v.c);
    f.pre = Func(l.name + "_pre");  // (x, y, c, n)
    f.pre(v.x, v.y, v.c, v.n) = (in(v.x, v.y, v.c, v.n) - f.mean(v.c)) * f.scale(v.c) + param_at(params, b, v.c);
    f.out = Func(l.name + "_out");  // (x, y, c, n)
    f.out(v.x, v.y, v.c, v.n) = activate(l.activation, f.pre(v.x, v.y, v.c, v.n));
    return f;
}

Backward batchnorm_backward(const model::Network &, const model::Layer &l, const Func &, const BackwardArgs &a) {
    Vars v;
    Type t = a.in.output_types()[0];
    const Forward &f = a.fwd;
    Backward g;
    g.d_pre = Func(l.name + "_d_pre");  // (x, y, c, n)
    g.d_pre(v.x, v.y, v.c, v.n) =
        activation_backward(l.activation, f.out(v.x, v.y, v.c, v.n), a.d_out(v.x, v.y, v.c, v.n));
    auto xhat = [&](Expr x, Expr y, Expr c, Expr n) { return (a.in(x, y, c, n) - f.mean(c)) * f.inv_std(c); };

    RDom r = batch_domain(l, a.batch, l.name + "_r_grad");
    g.d_bias = Func(l.name + "_d_bias");  // (c)
    g.d_bias(v.c) = zero(t);
    g.d_bias(v.c) += g.d_pre(r.x, r.y, v.c, r.z);
    g.d_weight = Func(l.name + "_d_weight");  // (c)
    g.d_weight(v.c) = zero(t);
    g.d_weight(v.c) += g.d_pre(r.x, r.y, v.c, r.z) * xhat(r.x, r.y, v.c, r.z);

    if (!a.need_d_in) return g;
    Expr m = count(l, a.batch, t);
    g.d_in = Func(l.name + "_d_in");  // (x, y, c, n)
    g.d_in(v.x, v.y, v.c, v.n) =
        f.scale(v.c) *
        (g.d_pre(v.x, v.y, v.c, v.n) - (g.d_bias(v.c) + xhat(v.x, v.y, v.c, v.n) * g.d_weight(v.c)) / m);
    return g;
}


// The flat gradient gets weight's and bias's gradients, and the batch's statistics
// in the running ones' places.
void register_batchnorm(BuilderTable &t) {
    t.push_back({"batchnorm", [](const LayerCall &c, const std::vector<Func> &in) {
                     return batchnorm_forward(c.net, c.layer, c.params, in[0], c.training.batch);
                 },
                 [](const LayerCall &c, const BackwardArgs &a) {
                     const model::Layer &l = c.layer;
                     Backward g = batchnorm_backward(c.net, l, c.params, a);
                     const int C = int(l.in.channels);
                     g.param_grads = {{l.weight, g.d_weight, {C}},
                                      {l.bias, g.d_bias, {C}},
                                      {l.running_mean, a.fwd.mean, {C}},
                                      {l.running_var, a.fwd.unbiased_variance, {C}}};
                     return g;
                 }});
}

}  // namespace kiln::layers
