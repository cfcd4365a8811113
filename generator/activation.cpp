// Activations, applied element-wise at the end of conv and dense layers.
#include "layers/layers.h"

namespace kiln::layers {

using model::Activation;

Expr activate(Activation a, Expr pre) {
    switch (a) {
    case Activation::none: return pre;
    case Activation::relu: return Halide::max(pre, zero(pre.type()));
    case Activation::tanh: return Halide::tanh(pre);
    case Activation::sigmoid: return one(pre.type()) / (one(pre.type()) + Halide::exp(-pre));
    }
    return pre;
}

Expr activation_backward(Activation a, Expr out, Expr d_out) {
    Expr unit = one(out.type());
    switch (a) {
    case Activation::none: return d_out;
    // The gradient of relu at 0 is taken as 0, as PyTorch does.
    case Activation::relu: return Halide::select(out > zero(out.type()), d_out, zero(out.type()));
    case Activation::tanh: return d_out * (unit - out * out);
    case Activation::sigmoid: return d_out * out * (unit - out);
    }
    return d_out;
}

}  // namespace kiln::layers
