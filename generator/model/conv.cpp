// The conv layer: `filters` square kernels of `kernel` x `kernel` over all input
// channels, moved by `stride`, with `padding` zeros on each side, then an
// activation. Output extent (H + 2P - K) / S + 1; weight [O, C, K, K], bias [O].
//
// FLOPs per image count the multiply-adds only, 2 * O * OH * OW * C * K * K: the
// bias and the activation are left out, as for every kind (see parse.cpp).
#include <fmt/core.h>

#include "model/layer_parse.h"

namespace kiln::model::detail {

LayerParse parse_conv(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name", "filters", "kernel", "stride", "padding", "activation"});

    ConvSpec s;
    s.filters = r.integer("filters", 1, Limits::max_extent);
    s.kernel = r.integer("kernel", 1, Limits::max_kernel);
    s.stride = r.integer("stride", 1, Limits::max_kernel, 1);
    s.padding = r.integer("padding", 0, Limits::max_kernel, 0);
    // A pad of a whole kernel or more would give windows that see only zeros.
    if (s.padding >= s.kernel)
        r.fail_at("padding", fmt::format("'padding' must be less than 'kernel' ({}), got {}",
                                         s.kernel, s.padding));
    s.activation = r.activation("activation");

    Extent2 e = slide(r, "kernel", in, s.kernel, s.stride, s.padding);
    LayerParse p;
    p.spec = s;
    p.out = output_shape(r, s.filters, e.height, e.width);
    const int64_t fan_in = in.channels * s.kernel * s.kernel;
    p.weight = make_tensor(r, "filters", {s.filters, in.channels, s.kernel, s.kernel}, fan_in);
    p.bias = make_tensor(r, "filters", {s.filters}, fan_in);
    // O*OH*OW <= 2^24 and C*K*K <= max_params = 2^28: far below 2^63.
    p.flops = 2 * p.out.size() * fan_in;
    return p;
}

}  // namespace kiln::model::detail
