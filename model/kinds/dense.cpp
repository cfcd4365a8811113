// The dense (fully connected) layer: the input is flattened in (channel, row,
// column) order into IN = C*H*W values, then O = `units` outputs, then an
// activation. Weight [O, IN], bias [O]; the output is (O, 1, 1).
//
// FLOPs per image count the multiply-adds only, 2 * O * IN: the bias and the
// activation are left out, as for every kind (see parse.cpp).
#include <fmt/core.h>

#include "model/kinds/dense.h"
#include "model/layer_parse.h"

namespace kiln::model::detail {

static LayerParse parse_dense(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input", "units", "activation"});

    DenseSpec s;
    s.units = r.integer("units", 1, Limits::max_units);

    LayerParse p;
    p.activation = r.activation("activation");
    p.spec = s;
    p.out = output_shape(r, s.units, 1, 1);
    const int64_t fan_in = in.size();
    p.weight = make_tensor(r, "units", {s.units, fan_in}, fan_in);
    p.bias = make_tensor(r, "units", {s.units}, fan_in);
    p.flops = 2 * p.weight->count;  // <= 2^29
    return p;
}

static std::string text(const Layer &l) {
    return fmt::format("units={} activation={}", l.spec_as<DenseSpec>().units, to_string(l.activation));
}

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind dense_kind{"dense", detail::parse_dense, detail::text};
void register_dense(KindTable &t) { t.push_back(&dense_kind); }

}  // namespace kiln::model
