// The pooling layers, maxpool and avgpool: a `size` x `size` window moved by
// `stride` (default: size) over each channel, with no padding, so every window
// lies inside the input. Output extent (H - size) / stride + 1; no parameters.
//
// FLOPs per image: one operation per window element, size * size * C * OH * OW
// (a comparison for maxpool, an addition for avgpool; avgpool's final scaling is
// left out like every bias and activation, see parse.cpp).
#include <fmt/core.h>

#include "model/kinds/pool.h"
#include "model/layer_parse.h"

namespace kiln::model::detail {

static LayerParse parse_pool(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input", "size", "stride"});

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

static std::string text(const Layer &l) {
    return fmt::format("size={} stride={}", l.spec_as<PoolSpec>().size, l.spec_as<PoolSpec>().stride);
}

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind maxpool_kind{"maxpool", detail::parse_pool, detail::text};
const Kind avgpool_kind{"avgpool", detail::parse_pool, detail::text};
void register_pool(KindTable &t) {
    t.push_back(&maxpool_kind);
    t.push_back(&avgpool_kind);
}

}  // namespace kiln::model
