// Softmax cross-entropy over the class scores with label smoothing e (PyTorch's
// CrossEntropyLoss(label_smoothing = e)), averaged over the batch. The target of
// image n is q(o, n) = (1 - e) [o == label(n)] + e / K over the K classes; with
// log_sum(n) = log sum_o exp(scores(o, n)) and sum_o q(o, n) = 1:
//   loss = 1/N sum_n [ log_sum(n) - sum_o q(o, n) scores(o, n) ]
//   d_scores(o, n) = (softmax(o, n) - q(o, n)) / N
// e = 0 is plain cross-entropy.
#include "layers/layers.h"

namespace kiln::layers {

Loss softmax_cross_entropy(const Func &scores, const Func &labels, int classes, Expr batch, Type t,
                           double label_smoothing) {
    Var o("o"), n("n");
    RDom ro(0, classes, "r_classes");
    RDom rn(0, batch, "r_images");
    Loss s;
    s.max_score = Func("max_score");  // (n): subtracted so that exp never overflows
    s.max_score(n) = Halide::maximum(scores(ro, n));
    s.log_sum = Func("log_sum");  // (n)
    s.log_sum(n) = s.max_score(n) + Halide::log(Halide::sum(Halide::exp(scores(ro, n) - s.max_score(n))));

    // Labels are checked by the runtime; the clamp only keeps reads in bounds.
    Expr label = Halide::clamp(labels(n), 0, classes - 1);
    Expr n_images = Halide::cast(t, batch);
    Expr hit = Halide::cast(t, Expr(1.0 - label_smoothing)), spread = Halide::cast(t, Expr(label_smoothing / classes));
    s.target = Func("target");  // (o, n): q
    s.target(o, n) = Halide::select(o == label, hit + spread, spread);
    s.loss = Func("loss");  // ()
    s.loss() = zero(t);
    if (label_smoothing == 0) {
        s.loss() += (s.log_sum(rn) - scores(Halide::clamp(labels(rn), 0, classes - 1), rn)) / n_images;
    } else {
        RDom r(0, classes, 0, batch, "r_classes_images");
        s.loss() += s.target(r.x, r.y) * (s.log_sum(r.y) - scores(r.x, r.y)) / n_images;
    }

    s.d_scores = Func("d_scores");  // (o, n)
    s.d_scores(o, n) = (Halide::exp(scores(o, n) - s.log_sum(n)) - s.target(o, n)) / n_images;
    return s;
}

}  // namespace kiln::layers
