// The batchnorm layer: per channel (a dense layer's output: per unit), normalize
// over the batch and the image, scale and shift, then an activation. Same shape
// out as in. Weight and bias [C] are trained; running_mean and running_var [C]
// are buffers (ParamTensor::buffer) that the runtime keeps up to date. FLOPs
// count the scale and shift of each element at inference, as a multiply-add: 2
// per element.
#include <fmt/core.h>

#include "model/kinds/batchnorm.h"
#include "model/layer_parse.h"

namespace kiln::model::detail {

static bool momentum_ok(double v) { return v >= 0 && v <= 1; }
static bool positive(double v) { return v > 0; }

static LayerParse parse_batchnorm(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input", "momentum", "epsilon", "activation"});
    BatchNormSpec s;
    s.momentum = r.number("momentum", s.momentum, momentum_ok, "a number in [0, 1]");
    s.epsilon = r.number("epsilon", s.epsilon, positive, "a positive number");

    LayerParse p;
    p.activation = r.activation("activation");
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

static std::string text(const Layer &l) {
    const BatchNormSpec &b = l.spec_as<BatchNormSpec>();
    return fmt::format("momentum={} epsilon={} activation={}", b.momentum, b.epsilon, to_string(l.activation));
}

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind batchnorm_kind{"batchnorm", detail::parse_batchnorm, detail::text, false, true};
void register_batchnorm(KindTable &t) { t.push_back(&batchnorm_kind); }

}  // namespace kiln::model
