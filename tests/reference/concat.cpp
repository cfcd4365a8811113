// concat: the inputs' channels stacked in input order, [N, C_0 + C_1 + ..., H, W];
// input k's gradient is its channels' slice of d_out.
#include "reference/kind.h"

namespace kiln::reference {
namespace {

using model::Layer;

Tensor concat_forward(const std::vector<const Tensor *> &in) {
    int64_t C = 0;
    for (const Tensor *t : in) C += t->C;
    Tensor out(in[0]->N, C, in[0]->H, in[0]->W);
    for (int64_t n = 0; n < out.N; n++) {
        int64_t offset = 0;
        for (const Tensor *t : in) {
            for (int64_t c = 0; c < t->C; c++)
                for (int64_t y = 0; y < t->H; y++)
                    for (int64_t x = 0; x < t->W; x++) out.at(n, offset + c, y, x) = t->at(n, c, y, x);
            offset += t->C;
        }
    }
    return out;
}

Tensor concat_backward(const Tensor &d_out, int64_t offset, int64_t channels) {
    Tensor d(d_out.N, channels, d_out.H, d_out.W);
    for (int64_t n = 0; n < d.N; n++)
        for (int64_t c = 0; c < channels; c++)
            for (int64_t y = 0; y < d.H; y++)
                for (int64_t x = 0; x < d.W; x++) d.at(n, c, y, x) = d_out.at(n, offset + c, y, x);
    return d;
}

model::Shape concat_shape(const model::Network &net, const Layer &l) {
    model::Shape want = l.in;
    want.channels = 0;
    for (int from : l.inputs) want.channels += net.shape_of(from).channels;
    return want;
}

Tensor forward(const Step &, const Layer &, int, const std::vector<const Tensor *> &in, Saved &) {
    return concat_forward(in);
}

std::vector<Tensor> backward(const Step &step, const Layer &l, int, const Saved &, const Tensor &d_out) {
    std::vector<Tensor> d_in;
    int64_t offset = 0;
    for (int from : l.inputs) {
        const int64_t channels = step.net.shape_of(from).channels;
        d_in.push_back(concat_backward(d_out, offset, channels));
        offset += channels;
    }
    return d_in;
}

}  // namespace

void register_concat(KindTable &t) { t.push_back({"concat", concat_shape, forward, backward}); }

}  // namespace kiln::reference
