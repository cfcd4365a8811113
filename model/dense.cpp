// The dense (fully connected) layer: the input is flattened in (channel, row,
// column) order into IN = C*H*W values, then O = `units` outputs, then an
// activation. Weight [O, IN], bias [O]; the output is (O, 1, 1).
//
// FLOPs per image count the multiply-adds only, 2 * O * IN: the bias and the
// activation are left out, as for every kind (see parse.cpp).
#include "model/layer_parse.h"

namespace kiln::model::detail {

LayerParse parse_dense(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name", "units", "activation"});

    DenseSpec s;
    s.units = r.integer("units", 1, Limits::max_units);
    s.activation = r.activation("activation");

    LayerParse p;
    p.spec = s;
    p.out = output_shape(r, s.units, 1, 1);
    const int64_t fan_in = in.size();
    p.weight = make_tensor(r, "units", {s.units, fan_in}, fan_in);
    p.bias = make_tensor(r, "units", {s.units}, fan_in);
    p.flops = 2 * p.weight->count;  // <= 2^29
    return p;
}

}  // namespace kiln::model::detail
