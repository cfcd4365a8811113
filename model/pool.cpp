// The pooling layers, maxpool and avgpool: a `size` x `size` window moved by
// `stride` (default: size) over each channel, with no padding, so every window
// lies inside the input. Output extent (H - size) / stride + 1; no parameters.
//
// FLOPs per image: one operation per window element, size * size * C * OH * OW
// (a comparison for maxpool, an addition for avgpool; avgpool's final scaling is
// left out like every bias and activation, see parse.cpp).
#include "model/layer_parse.h"

namespace kiln::model::detail {

LayerParse parse_pool(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name", "size", "stride"});

    PoolSpec s;
    s.size = r.integer("size", 1, Limits::max_kernel);
    s.stride = r.integer("stride", 1, Limits::max_kernel, s.size);

    Extent2 e = slide(r, "size", in, s.size, s.stride, 0);
    LayerParse p;
    p.spec = s;
    p.out = output_shape(r, in.channels, e.height, e.width);
    p.flops = s.size * s.size * p.out.size();  // <= 2^12 * 2^24
    return p;
}

}  // namespace kiln::model::detail
