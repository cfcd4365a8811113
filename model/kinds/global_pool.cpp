// The globalavgpool layer: the mean of each channel over all rows and columns, so
// the output is (C, 1, 1); no parameters. FLOPs per image: one addition per input
// element, C * H * W.
#include "model/layer_parse.h"

namespace kiln::model::detail {

static LayerParse parse_global_pool(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input"});
    LayerParse p;
    p.out = {in.channels, 1, 1};
    p.flops = in.size();
    return p;
}

static std::string text(const Layer &) { return {}; }

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind globalavgpool_kind{"globalavgpool", detail::parse_global_pool, detail::text};
void register_global_pool(KindTable &t) { t.push_back(&globalavgpool_kind); }

}  // namespace kiln::model
