// The conv layer: `filters` square kernels of `kernel` x `kernel` over all input
// channels, moved by `stride`, with `padding` zeros on each side, then an
// activation. Output extent (H + 2P - K) / S + 1; weight [O, C, K, K], bias [O].
// padding = "same" keeps the input's extent: P = (K - 1) / 2, for an odd kernel at
// stride 1 (as PyTorch's padding='same', which also refuses strides).
//
// FLOPs per image count the multiply-adds only, 2 * O * OH * OW * C * K * K: the
// bias and the activation are left out, as for every kind (see parse.cpp).
#include <fmt/core.h>

#include "model/kinds/conv.h"
#include "model/layer_parse.h"

namespace kiln::model::detail {

static LayerParse parse_conv(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input", "filters", "kernel", "stride", "padding", "activation"});

    ConvSpec s;
    s.filters = r.integer("filters", 1, Limits::max_extent);
    s.kernel = r.integer("kernel", 1, Limits::max_kernel);
    s.stride = r.integer("stride", 1, Limits::max_kernel, 1);
    const toml::node *padding = r.find("padding");
    if (padding && padding->is_string()) {
        if (padding->value_or(std::string()) != "same")
            r.fail_at("padding", "'padding' must be a non-negative integer or \"same\"");
        if (s.stride != 1 || s.kernel % 2 == 0)
            r.fail_at("padding", fmt::format("padding = \"same\" needs stride 1 and an odd kernel, got stride {} "
                                             "and kernel {}",
                                             s.stride, s.kernel));
        s.padding = (s.kernel - 1) / 2;
    } else {
        s.padding = r.integer("padding", 0, Limits::max_kernel, 0);
    }
    // A pad of a whole kernel or more would give windows that see only zeros.
    if (s.padding >= s.kernel)
        r.fail_at("padding", fmt::format("'padding' must be less than 'kernel' ({}), got {}",
                                         s.kernel, s.padding));

    Extent2 e = slide(r, "kernel", in, s.kernel, s.stride, s.padding);
    LayerParse p;
    p.activation = r.activation("activation");
    p.spec = s;
    p.out = output_shape(r, s.filters, e.height, e.width);
    const int64_t fan_in = in.channels * s.kernel * s.kernel;
    p.weight = make_tensor(r, "filters", {s.filters, in.channels, s.kernel, s.kernel}, fan_in);
    p.bias = make_tensor(r, "filters", {s.filters}, fan_in);
    // O*OH*OW <= 2^24 and C*K*K <= max_params = 2^28: far below 2^63.
    p.flops = 2 * p.out.size() * fan_in;
    return p;
}

static std::string text(const Layer &l) {
    const ConvSpec &c = l.spec_as<ConvSpec>();
    return fmt::format("filters={} kernel={} stride={} padding={} activation={}", c.filters, c.kernel, c.stride,
                       c.padding, to_string(l.activation));
}

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind conv_kind{"conv", detail::parse_conv, detail::text};
void register_conv(KindTable &t) { t.push_back(&conv_kind); }

}  // namespace kiln::model
