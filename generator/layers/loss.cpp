// Softmax cross-entropy over the class scores, averaged over the batch:
//   loss = 1/N sum_n [ log sum_o exp(scores(o, n)) - scores(label(n), n) ]
//   d_scores(o, n) = (softmax(o, n) - [o == label(n)]) / N
#include "layers/layers.h"

namespace kiln::layers {

Loss softmax_cross_entropy(const Func &scores, const Func &labels, int classes, Expr batch, Type t) {
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
    s.loss = Func("loss");  // ()
    s.loss() = zero(t);
    s.loss() += (s.log_sum(rn) - scores(Halide::clamp(labels(rn), 0, classes - 1), rn)) / n_images;

    s.d_scores = Func("d_scores");  // (o, n)
    s.d_scores(o, n) = (Halide::exp(scores(o, n) - s.log_sum(n)) - Halide::select(o == label, 1, 0)) / n_images;
    return s;
}

}  // namespace kiln::layers
