// The concat layer: two or more inputs of the same height and width, their
// channels stacked in the order given (Darknet's [route], Caffe's Concat). No
// parameters, no FLOPs.
#include <fmt/core.h>

#include "model/layer_parse.h"

namespace kiln::model::detail {

static LayerParse parse_concat(const TableReader &r, const std::vector<Shape> &in) {
    r.allow_only({"type", "name", "inputs"});
    int64_t channels = 0;
    for (size_t k = 0; k < in.size(); k++) {
        if (in[k].height != in[0].height || in[k].width != in[0].width)
            r.fail_at("inputs", fmt::format("concat needs inputs of one height and width, but input {} is {}x{} and "
                                            "input 1 is {}x{}",
                                            k + 1, in[k].height, in[k].width, in[0].height, in[0].width));
        channels += in[k].channels;  // each <= max_extent, at most max_layers of them
    }
    LayerParse p;
    p.out = output_shape(r, channels, in[0].height, in[0].width);
    return p;
}

static std::string text(const Layer &) { return {}; }

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind concat_kind{"concat", detail::parse_concat, detail::text, true};
void register_concat(KindTable &t) { t.push_back(&concat_kind); }

}  // namespace kiln::model
