// globalavgpool: each channel's mean over its rows and columns.
//   out[n, c, 0, 0] = mean over y, x of in[n, c, y, x]
//   d_in[n, c, y, x] = d_out[n, c, 0, 0] / (H W)
#include "reference/kind.h"

namespace kiln::reference {
namespace {

using model::Layer;

Tensor global_pool_forward(const Tensor &in /* [N, C, H, W] */) {
    Tensor out(in.N, in.C, 1, 1);  // [N, C, 1, 1]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++) {
            double sum = 0;
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) sum += in.at(n, c, y, x);
            out.at(n, c, 0, 0) = sum / double(in.H * in.W);
        }
    return out;
}

Tensor global_pool_backward(const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, 1, 1] */) {
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < in.N; n++)
        for (int64_t c = 0; c < in.C; c++)
            for (int64_t y = 0; y < in.H; y++)
                for (int64_t x = 0; x < in.W; x++) d_in.at(n, c, y, x) = d_out.at(n, c, 0, 0) / double(in.H * in.W);
    return d_in;
}

model::Shape global_pool_shape(const model::Network &, const Layer &l) { return {l.in.channels, 1, 1}; }

}  // namespace

void register_global_pool(KindTable &t) {
    t.push_back({"globalavgpool", global_pool_shape,
                 [](const Step &, const Layer &, int, const std::vector<const Tensor *> &in, Saved &) {
                     return global_pool_forward(*in[0]);
                 },
                 [](const Step &, const Layer &, int, const Saved &s, const Tensor &d_out) {
                     return std::vector<Tensor>{global_pool_backward(s.in, d_out)};
                 }});
}

}  // namespace kiln::reference
