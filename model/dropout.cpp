// The dropout layer: in training, each element is zeroed with probability `rate`
// and the others scaled by 1 / (1 - rate); in evaluation it passes its input on.
// Same shape out as in; no parameters; no FLOPs counted (it is no work at inference).
#include <fmt/core.h>

#include "model/layer_parse.h"

namespace kiln::model::detail {

static bool below_one(double v) { return v >= 0 && v < 1; }

LayerParse parse_dropout(const TableReader &r, const Shape &in) {
    r.allow_only({"type", "name", "rate"});
    if (!r.find("rate")) r.fail("layer of type dropout needs 'rate'");
    DropoutSpec s;
    s.rate = r.number("rate", 0, below_one, "a number in [0, 1)");
    LayerParse p;
    p.spec = s;
    p.out = in;
    return p;
}

}  // namespace kiln::model::detail
