#include "pipeline.h"

namespace kiln::pipeline {
namespace {

using Halide::RDom;
using Halide::Var;

using model::LayerKind;

int index_of(const model::Network &net, const model::Layer &l) { return int(&l - net.layers.data()); }

layers::Forward layer_forward(const model::Network &net, const model::Layer &l, const Func &params, const Func &in,
                              const Training &t) {
    switch (l.kind) {
    case LayerKind::batchnorm: return layers::batchnorm_forward(net, l, params, in, t.batch);
    case LayerKind::dropout: return layers::dropout_forward(l, index_of(net, l), in, t.dropout_seed, t.first_image);
    case LayerKind::globalavgpool: return layers::global_pool_forward(l, in);
    case LayerKind::conv: return layers::conv_forward(net, l, params, in);
    case LayerKind::maxpool:
    case LayerKind::avgpool: return layers::pool_forward(l, in);
    case LayerKind::dense: return layers::dense_forward(net, l, params, in);
    }
    return {};
}

layers::Backward layer_backward(const model::Network &net, const model::Layer &l, const Func &params,
                                const layers::BackwardArgs &args, const Training &t) {
    switch (l.kind) {
    case LayerKind::batchnorm: return layers::batchnorm_backward(net, l, params, args);
    case LayerKind::dropout: return layers::dropout_backward(l, index_of(net, l), args, t.dropout_seed, t.first_image);
    case LayerKind::globalavgpool: return layers::global_pool_backward(l, args);
    case LayerKind::conv: return layers::conv_backward(net, l, params, args);
    case LayerKind::maxpool:
    case LayerKind::avgpool: return layers::pool_backward(l, args);
    case LayerKind::dense: return layers::dense_backward(net, l, params, args);
    }
    return {};
}

// A Halide name for a parameter tensor's loops: "conv1.weight" -> "conv1_weight_r"
// (Halide reads '.' in loop names as a separator).
std::string loop_name(const model::ParamTensor &t) {
    std::string name = t.name + "_r";
    for (char &ch : name)
        if (ch == '.') ch = '_';
    return name;
}

// Copies a weight gradient d_weight(a, b, c, o) into its place in the flat vector,
// where element [o, c, b, a] lies at offset + ((o*C + c)*B + b)*A + a.
void scatter_weight(Func &grad, const model::ParamTensor &t, const Func &d_weight, int A, int B, int C, int O) {
    RDom r(0, A, 0, B, 0, C, 0, O, loop_name(t));
    grad(int(t.offset) + ((r.w * C + r.z) * B + r.y) * A + r.x) = d_weight(r.x, r.y, r.z, r.w);
}

// Copies a one-dimensional tensor's values (o) into its place.
void scatter_bias(Func &grad, const model::ParamTensor &t, const Func &d_bias) {
    RDom r(0, int(t.count), loop_name(t));
    grad(int(t.offset) + r) = d_bias(r);
}

}  // namespace

Graph build_inference(const model::Network &net, const Func &params, const Func &images) {
    return build_forward(net, params, images, Training{});
}

Graph build_forward(const model::Network &net, const Func &params, const Func &images, const Training &training) {
    layers::Vars v;
    Graph g;
    const model::InputSpec &in = net.input;
    Halide::Type t = params.output_types()[0];
    Func normalized("normalized");  // (x, y, c, n)
    normalized(v.x, v.y, v.c, v.n) =
        (images(v.x, v.y, v.c, v.n) - Halide::cast(t, Expr(in.mean))) / Halide::cast(t, Expr(in.std));
    g.input = Halide::BoundaryConditions::constant_exterior(normalized, layers::zero(t),
                                                           {{0, int(in.width)}, {0, int(in.height)}});
    Func x = g.input;
    for (const model::Layer &l : net.layers) {
        LayerStages s;
        s.layer = &l;
        s.in = x;
        s.fwd = layer_forward(net, l, params, x, training);
        x = s.fwd.out;
        g.layers.push_back(s);
    }
    Var o("o");
    g.scores = Func("scores");  // (o, n)
    g.scores(o, v.n) = x(0, 0, o, v.n);
    return g;
}

Graph build_training(const model::Network &net, const Func &params, const Func &images, const Func &labels,
                     const Training &training) {
    layers::Vars v;
    Var o("o");
    const Expr batch = training.batch;
    Graph g = build_forward(net, params, images, training);
    Halide::Type t = params.output_types()[0];
    g.loss = layers::softmax_cross_entropy(g.scores, labels, int(net.input.classes), batch, t,
                                          net.train.label_smoothing);

    Func d_out("d_scores_4d");  // (x, y, o, n)
    d_out(v.x, v.y, o, v.n) = g.loss.d_scores(o, v.n);
    for (size_t i = g.layers.size(); i-- > 0;) {
        LayerStages &s = g.layers[i];
        s.bwd = layer_backward(net, *s.layer, params, {s.in, s.fwd, d_out, batch, i > 0}, training);
        d_out = s.bwd.d_in;
    }

    g.grad = Func("grad");  // (i)
    Var i("i");
    g.grad(i) = Halide::undef(t);
    for (const LayerStages &s : g.layers) {
        const model::Layer &l = *s.layer;
        if (l.kind == LayerKind::batchnorm) {  // weight, bias, then the batch's statistics in the buffers' places
            scatter_bias(g.grad, net.params[l.weight], s.bwd.d_weight);
            scatter_bias(g.grad, net.params[l.bias], s.bwd.d_bias);
            scatter_bias(g.grad, net.params[l.running_mean], s.fwd.mean);
            scatter_bias(g.grad, net.params[l.running_var], s.fwd.unbiased_variance);
            continue;
        }
        if (l.weight < 0) continue;
        const model::Shape &in = l.in;
        if (l.kind == LayerKind::conv)
            scatter_weight(g.grad, net.params[l.weight], s.bwd.d_weight, int(l.conv().kernel), int(l.conv().kernel),
                           int(in.channels), int(l.out.channels));
        else
            scatter_weight(g.grad, net.params[l.weight], s.bwd.d_weight, int(in.width), int(in.height),
                           int(in.channels), int(l.out.channels));
        scatter_bias(g.grad, net.params[l.bias], s.bwd.d_bias);
    }
    return g;
}

}  // namespace kiln::pipeline
