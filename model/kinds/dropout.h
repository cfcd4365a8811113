// dropout: in training, zero each element with probability `rate` and scale the
// rest by 1/(1 - rate); in evaluation the identity.
#pragma once

namespace kiln::model {

struct DropoutSpec {
    double rate = 0;
};

}  // namespace kiln::model
