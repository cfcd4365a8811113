#include "pipeline.h"

namespace kiln::pipeline {
namespace {

using Halide::RDom;
using Halide::Var;

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

// The same copy over the flat index alone, each element's (a, b, c, o) divided out of it.
void scatter_weight_flat(Func &grad, const model::ParamTensor &t, const Func &d_weight, int A, int B, int C, int O) {
    RDom r(0, A * B * C * O, loop_name(t));
    grad(int(t.offset) + r) = d_weight(r % A, (r / A) % B, (r / (A * B)) % C, r / (A * B * C));
}

// Copies a one-dimensional tensor's values (o) into its place.
void scatter_bias(Func &grad, const model::ParamTensor &t, const Func &d_bias) {
    RDom r(0, int(t.count), loop_name(t));
    grad(int(t.offset) + r) = d_bias(r);
}

// The flat gradient's copy of one parameter tensor's gradient.
void scatter(Func &grad, const model::Network &net, const layers::ParamGrad &g, bool flat) {
    const model::ParamTensor &t = net.params[size_t(g.param)];
    const std::vector<int> &e = g.extents;
    if (e.size() == 4)
        (flat ? scatter_weight_flat : scatter_weight)(grad, t, g.value, e[0], e[1], e[2], e[3]);
    else
        scatter_bias(grad, t, g.value);
}

// The sum of the gradients reaching a layer's output from the layers reading it.
Func sum_of(const std::vector<Func> &terms, const std::string &name) {
    if (terms.size() == 1) return terms[0];
    layers::Vars v;
    Func sum(name);  // (x, y, c, n)
    Expr e = terms[0](v.x, v.y, v.c, v.n);
    for (size_t k = 1; k < terms.size(); k++) e += terms[k](v.x, v.y, v.c, v.n);
    sum(v.x, v.y, v.c, v.n) = e;
    return sum;
}

}  // namespace

}  // namespace kiln::pipeline

namespace kiln::layers {

void register_layer_builders(BuilderTable &table);  // generated from layers/*.cpp

const LayerBuilder &builder_for(const model::Layer &l) {
    static const BuilderTable table = [] {
        BuilderTable t;
        register_layer_builders(t);
        return t;
    }();
    for (const LayerBuilder &b : table)
        if (b.kind == l.kind->name) return b;
    throw std::runtime_error("unsupported: the generator has no builders for layer type '" + std::string(l.kind->name) +
                             "' (layer " + l.name + "): add generator/layers/" + std::string(l.kind->name) + ".cpp");
}

}  // namespace kiln::layers

namespace kiln::pipeline {

Graph build_inference(const model::Network &net, const Func &params, const Func &images,
                      const layers::Algorithms &algorithms) {
    return build_forward(net, params, images, Training{}, algorithms);
}

Graph build_forward(const model::Network &net, const Func &params, const Func &images, const Training &training,
                    const layers::Algorithms &algorithms) {
    layers::Vars v;
    Graph g;
    const model::InputSpec &in = net.input;
    Halide::Type t = params.output_types()[0];
    Func normalized("normalized");  // (x, y, c, n)
    normalized(v.x, v.y, v.c, v.n) =
        (images(v.x, v.y, v.c, v.n) - Halide::cast(t, Expr(in.mean))) / Halide::cast(t, Expr(in.std));
    g.input = Halide::BoundaryConditions::constant_exterior(normalized, layers::zero(t),
                                                           {{0, int(in.width)}, {0, int(in.height)}});
    g.consumers = net.consumers();
    for (const model::Layer &l : net.layers) {
        LayerStages s;
        s.layer = &l;
        for (int from : l.inputs) s.inputs.push_back(from < 0 ? g.input : g.layers[size_t(from)].fwd.out);
        s.in = s.inputs[0];
        const layers::LayerCall call{net, l, int(g.layers.size()), params, training, algorithms};
        s.fwd = layers::builder_for(l).forward(call, s.inputs);
        g.layers.push_back(s);
    }
    Var o("o");
    g.scores = Func("scores");  // (o, n)
    g.scores(o, v.n) = g.layers.back().fwd.out(0, 0, o, v.n);
    return g;
}

Graph build_training(const model::Network &net, const Func &params, const Func &images, const Func &labels,
                     const Training &training, const layers::Algorithms &algorithms) {
    layers::Vars v;
    Var o("o");
    const Expr batch = training.batch;
    Graph g = build_forward(net, params, images, training, algorithms);
    Halide::Type t = params.output_types()[0];
    g.loss = layers::softmax_cross_entropy(g.scores, labels, int(net.input.classes), batch, t,
                                          net.train.label_smoothing);

    // Backward in reverse file order: each layer's output gradient is complete
    // (summed over the layers reading it) before its own adjoint is built.
    std::vector<std::vector<Func>> reaching(g.layers.size());  // d_out terms from each consumer
    Func d_scores("d_scores_4d");  // (x, y, o, n)
    d_scores(v.x, v.y, o, v.n) = g.loss.d_scores(o, v.n);
    reaching.back().push_back(d_scores);
    for (size_t i = g.layers.size(); i-- > 0;) {
        LayerStages &s = g.layers[i];
        const model::Layer &l = *s.layer;
        std::vector<bool> need;
        for (int from : l.inputs) need.push_back(from >= 0);  // the images need no gradient
        s.d_out = sum_of(reaching[i], l.name + "_d_out");
        const layers::BackwardArgs args{s.in, s.fwd, s.d_out, batch, need[0], s.inputs, need};
        const layers::LayerCall call{net, l, int(i), params, training, algorithms};
        s.bwd = layers::builder_for(l).backward(call, args);
        const std::vector<Func> d_inputs = s.bwd.d_inputs.empty() ? std::vector<Func>{s.bwd.d_in} : s.bwd.d_inputs;
        for (size_t k = 0; k < l.inputs.size(); k++)
            if (l.inputs[k] >= 0) reaching[size_t(l.inputs[k])].push_back(d_inputs[k]);
    }

    g.grad = Func("grad");  // (i)
    Var i("i");
    g.grad(i) = Halide::undef(t);
    for (const LayerStages &s : g.layers)
        for (const layers::ParamGrad &p : s.bwd.param_grads) scatter(g.grad, net, p, algorithms.flat_gradient_copies);
    return g;
}

}  // namespace kiln::pipeline
