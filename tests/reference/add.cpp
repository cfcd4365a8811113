// add: the element-wise sum of the inputs (all [N, C, H, W]), then the activation;
// each input's gradient is d_pre.
#include "reference/kind.h"

namespace kiln::reference {
namespace {

using model::Layer;

Tensor add_forward(const std::vector<const Tensor *> &in) {
    Tensor sum = *in[0];
    for (size_t k = 1; k < in.size(); k++)
        for (size_t i = 0; i < sum.v.size(); i++) sum.v[i] += in[k]->v[i];
    return sum;
}

model::Shape same_shape(const model::Network &, const Layer &l) { return l.in; }

Tensor forward(const Step &, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &s) {
    s.pre = add_forward(in);
    return activation_forward(l.activation, s.pre);
}

std::vector<Tensor> backward(const Step &, const Layer &l, int, const Saved &s, const Tensor &d_out) {
    const Tensor d_pre = activation_backward(l.activation, s.pre, d_out);
    return std::vector<Tensor>(l.inputs.size(), d_pre);
}

}  // namespace

void register_add(KindTable &t) { t.push_back({"add", same_shape, forward, backward}); }

}  // namespace kiln::reference
