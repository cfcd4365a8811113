// The globalavgpool layer: the mean of each channel over all rows and columns, so
// the output is (C, 1, 1); no parameters. FLOPs per image: one addition per input
// element, C * H * W.
#include "model/layer_parse.h"

namespace kiln::model::detail {

LayerParse parse_global_pool(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name"});
    LayerParse p;
    p.spec = GlobalPoolSpec{};
    p.out = {in.channels, 1, 1};
    p.flops = in.size();
    return p;
}

}  // namespace kiln::model::detail
