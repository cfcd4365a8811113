// The add layer: the element-wise sum of two or more inputs of the same shape,
// then an activation (default none): a residual connection's join. No parameters;
// FLOPs count one per element per input after the first.
#include <fmt/core.h>

#include "model/layer_parse.h"

namespace kiln::model::detail {

static std::string shape_text(const Shape &s) { return fmt::format("{}x{}x{}", s.channels, s.height, s.width); }

static LayerParse parse_add(const TableReader &r, const std::vector<Shape> &in) {
    r.allow_only({"type", "name", "inputs", "activation"});
    for (size_t k = 1; k < in.size(); k++)
        if (!(in[k] == in[0]))
            r.fail_at("inputs", fmt::format("add needs inputs of one shape, but input {} is {} and input 1 is {}", k + 1,
                                            shape_text(in[k]), shape_text(in[0])));
    LayerParse p;
    p.activation = r.activation("activation");
    p.out = output_shape(r, in[0].channels, in[0].height, in[0].width);
    p.flops = int64_t(in.size() - 1) * p.out.size();
    return p;
}

static std::string text(const Layer &l) { return fmt::format("activation={}", to_string(l.activation)); }

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind add_kind{"add", detail::parse_add, detail::text, true};
void register_add(KindTable &t) { t.push_back(&add_kind); }

}  // namespace kiln::model
