// The dropout layer: in training, each element is zeroed with probability `rate`
// and the others scaled by 1 / (1 - rate); in evaluation it passes its input on.
// Same shape out as in; no parameters; no FLOPs counted (it is no work at inference).
#include <fmt/core.h>

#include "model/kinds/dropout.h"
#include "model/layer_parse.h"

namespace kiln::model::detail {

static bool below_one(double v) { return v >= 0 && v < 1; }

static LayerParse parse_dropout(const TableReader &r, const std::vector<Shape> &inputs) {
    const Shape &in = inputs[0];
    r.allow_only({"type", "name", "input", "rate"});
    if (!r.find("rate")) r.fail("layer of type dropout needs 'rate'");
    DropoutSpec s;
    s.rate = r.number("rate", 0, below_one, "a number in [0, 1)");
    LayerParse p;
    p.spec = s;
    p.out = in;
    return p;
}

static std::string text(const Layer &l) { return fmt::format("rate={}", l.spec_as<DropoutSpec>().rate); }

}  // namespace kiln::model::detail

namespace kiln::model {

const Kind dropout_kind{"dropout", detail::parse_dropout, detail::text, false, false, true};
void register_dropout(KindTable &t) { t.push_back(&dropout_kind); }

}  // namespace kiln::model
