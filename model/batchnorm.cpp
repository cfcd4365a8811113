// The batchnorm layer: per channel (a dense layer's output: per unit), normalize
// over the batch and the image, scale and shift, then an activation. Same shape
// out as in. Weight and bias [C] are trained; running_mean and running_var [C]
// are buffers (ParamTensor::buffer) that the runtime keeps up to date. FLOPs
// count the scale and shift of each element at inference, as a multiply-add: 2
// per element.
#include "model/layer_parse.h"

namespace kiln::model::detail {

static bool momentum_ok(double v) { return v >= 0 && v <= 1; }
static bool positive(double v) { return v > 0; }

LayerParse parse_batchnorm(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name", "momentum", "epsilon", "activation"});
    BatchNormSpec s;
    s.momentum = r.number("momentum", s.momentum, momentum_ok, "a number in [0, 1]");
    s.epsilon = r.number("epsilon", s.epsilon, positive, "a positive number");
    s.activation = r.activation("activation");

    LayerParse p;
    p.spec = s;
    p.out = output_shape(r, in.channels, in.height, in.width);
    p.weight = make_tensor(r, {}, {in.channels}, 1);
    p.bias = make_tensor(r, {}, {in.channels}, 1);
    p.running_mean = make_tensor(r, {}, {in.channels}, 1);
    p.running_var = make_tensor(r, {}, {in.channels}, 1);
    p.running_mean->buffer = p.running_var->buffer = true;
    p.flops = 2 * in.size();
    return p;
}

}  // namespace kiln::model::detail
