// dropout: in training, out = keep ? in / (1 - rate) : 0, and its adjoint is the
// same map of d_out; in evaluation, the identity.
#include "reference/kind.h"

#include "model/kinds/dropout.h"

namespace kiln::reference {
namespace {

using model::Layer;

// The mask is part of dropout's definition (generator/layers/dropout.cpp): an element
// is kept where the "lowbias32" mix of (seed, layer index, x, y, c, n), coordinate
// by coordinate, is at least rate * 2^32.
uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    return h ^ (h >> 16);
}

bool dropout_keep(const Layer &l, int index, uint32_t seed, int64_t x, int64_t y, int64_t c, int64_t n) {
    uint32_t h = seed ^ (uint32_t(index) * 0x9e3779b9u);
    for (int64_t coordinate : {x, y, c, n}) h = mix(h ^ uint32_t(coordinate));
    return double(h) >= std::min(l.spec_as<model::DropoutSpec>().rate * 4294967296.0, 4294967295.0);
}

Tensor dropout_apply(const Layer &l, int index, uint32_t seed, const Tensor &t /* [N, C, H, W] */) {
    Tensor out(t.N, t.C, t.H, t.W);  // [N, C, H, W]
    for (int64_t n = 0; n < t.N; n++)
        for (int64_t c = 0; c < t.C; c++)
            for (int64_t y = 0; y < t.H; y++)
                for (int64_t x = 0; x < t.W; x++)
                    out.at(n, c, y, x) =
                        dropout_keep(l, index, seed, x, y, c, n) ? t.at(n, c, y, x) / (1 - l.spec_as<model::DropoutSpec>().rate) : 0.0;
    return out;
}

model::Shape same_shape(const model::Network &, const Layer &l) { return l.in; }

Tensor forward(const Step &step, const Layer &l, int index, const std::vector<const Tensor *> &in, Saved &) {
    return step.training ? dropout_apply(l, index, step.dropout_seed, *in[0]) : *in[0];
}

std::vector<Tensor> backward(const Step &step, const Layer &l, int index, const Saved &, const Tensor &d_out) {
    return {dropout_apply(l, index, step.dropout_seed, d_out)};
}

}  // namespace

void register_dropout(KindTable &t) { t.push_back({"dropout", same_shape, forward, backward}); }

}  // namespace kiln::reference
