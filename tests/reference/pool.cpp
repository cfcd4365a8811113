// maxpool and avgpool: K x K windows at stride S, no padding.
//   max: out[n, c, oy, ox] = max_{ky, kx} in[n, c, oy*S + ky, ox*S + kx]
//   avg: out[n, c, oy, ox] = mean_{ky, kx} in[n, c, oy*S + ky, ox*S + kx]
#include "reference/kind.h"

#include "model/kinds/pool.h"

namespace kiln::reference {
namespace {

using model::Layer;

Tensor maxpool_forward(const Layer &l, const Tensor &in /* [N, C, H, W] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor out(in.N, in.C, l.out.height, l.out.width);  // [N, C, OH, OW]
    for (int64_t n = 0; n < out.N; n++)
        for (int64_t c = 0; c < out.C; c++)
            for (int64_t oy = 0; oy < out.H; oy++)
                for (int64_t ox = 0; ox < out.W; ox++) {
                    double best = in.at(n, c, oy * S, ox * S);
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) best = std::max(best, in.at(n, c, oy * S + ky, ox * S + kx));
                    out.at(n, c, oy, ox) = best;
                }
    return out;
}

// Each window's gradient goes to its FIRST maximum in row-major (ky, kx) order.
Tensor maxpool_backward(const Layer &l, const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, OH, OW] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_out.N; n++)
        for (int64_t c = 0; c < d_out.C; c++)
            for (int64_t oy = 0; oy < d_out.H; oy++)
                for (int64_t ox = 0; ox < d_out.W; ox++) {
                    int64_t best_y = oy * S, best_x = ox * S;
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) {
                            const int64_t y = oy * S + ky, x = ox * S + kx;
                            if (in.at(n, c, y, x) > in.at(n, c, best_y, best_x)) best_y = y, best_x = x;  // strict: first wins
                        }
                    d_in.at(n, c, best_y, best_x) += d_out.at(n, c, oy, ox);
                }
    return d_in;
}

Tensor avgpool_forward(const Layer &l, const Tensor &in /* [N, C, H, W] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor out(in.N, in.C, l.out.height, l.out.width);  // [N, C, OH, OW]
    for (int64_t n = 0; n < out.N; n++)
        for (int64_t c = 0; c < out.C; c++)
            for (int64_t oy = 0; oy < out.H; oy++)
                for (int64_t ox = 0; ox < out.W; ox++) {
                    double sum = 0;
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) sum += in.at(n, c, oy * S + ky, ox * S + kx);
                    out.at(n, c, oy, ox) = sum / double(K * K);
                }
    return out;
}

Tensor avgpool_backward(const Layer &l, const Tensor &in /* [N, C, H, W] */, const Tensor &d_out /* [N, C, OH, OW] */) {
    const int64_t K = l.spec_as<model::PoolSpec>().size, S = l.spec_as<model::PoolSpec>().stride;
    Tensor d_in(in.N, in.C, in.H, in.W);  // [N, C, H, W]
    for (int64_t n = 0; n < d_out.N; n++)
        for (int64_t c = 0; c < d_out.C; c++)
            for (int64_t oy = 0; oy < d_out.H; oy++)
                for (int64_t ox = 0; ox < d_out.W; ox++)
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++)
                            d_in.at(n, c, oy * S + ky, ox * S + kx) += d_out.at(n, c, oy, ox) / double(K * K);
    return d_in;
}

model::Shape pool_shape(const model::Network &, const Layer &l) {
    const model::PoolSpec &s = l.spec_as<model::PoolSpec>();
    return {l.in.channels, (l.in.height - s.size) / s.stride + 1, (l.in.width - s.size) / s.stride + 1};
}

}  // namespace

void register_pool(KindTable &t) {
    t.push_back({"maxpool", pool_shape,
                 [](const Step &, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &) {
                     return maxpool_forward(l, *in[0]);
                 },
                 [](const Step &, const Layer &l, int, const Saved &s, const Tensor &d_out) {
                     return std::vector<Tensor>{maxpool_backward(l, s.in, d_out)};
                 }});
    t.push_back({"avgpool", pool_shape,
                 [](const Step &, const Layer &l, int, const std::vector<const Tensor *> &in, Saved &) {
                     return avgpool_forward(l, *in[0]);
                 },
                 [](const Step &, const Layer &l, int, const Saved &s, const Tensor &d_out) {
                     return std::vector<Tensor>{avgpool_backward(l, s.in, d_out)};
                 }});
}

}  // namespace kiln::reference
