// Convolution: the forward pass by rows of channel blocks (or, for rows narrower than a vector, with
// vectors along the channels), the weight gradient by one of three strategies (channels, rows, taps)
// by shape, the input gradient as a transposed convolution (channel vectors likewise; a strided
// layer's as one dense sum per phase of the input, interleaved).
#include <algorithm>

#include "schedules/cpu_internal.h"

#include "model/kinds/conv.h"

namespace kiln::schedules {
namespace {

// A direct convolution whose rows are narrower than a vector (lenet5's conv2: 10
// wide in 16 lanes) but whose channels fill vectors, forward or adjoint: vectors
// run along the channels instead of x, so that no lane computes past a row's
// end. Per image, the sum `acc` (x, y, ch, n) is stored channels innermost; a
// row's positions x a vector of channels accumulate in registers, each input
// value broadcast to them and each vector of weights loaded once for the row,
// from a copy of `weight` (kx, ky, c, o) stored with argument `weight_lanes` (the
// channels of `acc`) innermost. `stored` (x, y, ch, n) reads `acc` back along x
// (along the channels instead, writing across rows: no faster). `serial`: the
// layer whose output `stored` is, which runs serially for one image.
void schedule_channel_vectors(Func stored, Func acc, Func weight, int weight_lanes, int64_t width, const Context &ctx,
                              const pipeline::LayerStages *serial) {
    Var x = stored.args()[0], n = stored.args()[3];
    stored.compute_root();
    if (serial) serial_for_one_image(stored, x, *serial, ctx, TailStrategy::Auto, width);
    stored.vectorize(x, row_lanes(width, ctx)).parallel(n);

    std::vector<Var> w = weight.args();
    std::rotate(w.begin(), w.begin() + weight_lanes, w.begin() + weight_lanes + 1);  // lanes first, the rest in order
    weight.compute_root().reorder_storage(w).vectorize(w[0], ctx.vector);

    Var ax = acc.args()[0], ay = acc.args()[1], ac = acc.args()[2], an = acc.args()[3];
    Var co("co"), ci("ci"), xo("xo"), xi("xi");
    std::vector<RVar> r = acc.rvars(0);  // kx, ky, and the other side's channels
    acc.compute_at(stored, n).reorder_storage(ac, ax, ay, an).vectorize(ac, ctx.vector);
    acc.update()
        .split(ac, co, ci, ctx.vector)
        .split(ax, xo, xi, int(width))
        .reorder(ci, xi, r[0], r[1], r[2], xo, co, ay)
        .vectorize(ci)
        .unroll(xi);
}

void conv_forward(const pipeline::LayerStages &s, const Context &ctx) {
    // The zero border stored once, so the inner loop reads without bounds checks.
    // (Winograd by channels reads it through a copy of its own: the border there.)
    if (s.fwd.in_padded.defined() && s.fwd.winograd.tile != 4) {
        Func padded = s.fwd.in_padded;
        padded.compute_root();
        serial_for_one_image(padded, padded.args()[0], s, ctx);
        schedule_spatial(padded, ctx);
    }
    if (s.fwd.winograd.out.defined())
        return schedule_winograd(s.fwd.out, s.fwd.winograd, s.fwd.in_padded, s.layer->out.width, s.layer->out.height,
                                 s.layer->out.channels, ctx);
    if (layers::channel_vectors_fit(s.layer->out.width, s.layer->out.channels, ctx.vector))
        return schedule_channel_vectors(s.fwd.out, s.fwd.pre, s.fwd.weight, 3, s.layer->out.width, ctx, &s);
    schedule_window_rows(s.fwd.out, s.fwd.pre, channel_block(s.layer->out.channels, ctx), s.layer->out.width, ctx,
                         ctx.batch.defined() && s.layer->flops < kSerialFlops);
}

// A conv weight gradient (kx, ky, c, o) with vectors along the output channels,
// reading the input in place (no im2col): per image, input channel and block of
// output channels, every tap's vector of channels accumulates in a register over
// the image's positions, the taps unrolled, each input value broadcast to them.
// This reads d_pre (x, y, o, n) channels innermost: a first layer's d_pre is
// stored so by its caller (nothing else reads it), and its few input channels
// are unrolled too; otherwise d_pre is stored by rows for d_in, and each image's
// is copied. The chunks of the batch run in parallel.
void conv_weight_gradient_by_channels(const pipeline::LayerStages &s, const Context &ctx, bool first_layer) {
    std::vector<RVar> r = s.bwd.d_weight.rvars(0);  // x, y, n
    RVar image("image");
    Var u("u"), oo("oo"), oi("oi");
    Func partial = chunked_partial_sums(s.bwd.d_weight, image, u, ctx);  // (kx, ky, c, o, u)
    Var kx = partial.args()[0], ky = partial.args()[1], c = partial.args()[2], o = partial.args()[3];
    partial.compute_root().reorder_storage(o, kx, ky, c, partial.args()[4]).vectorize(o, ctx.vector, kGuard).parallel(u);
    Halide::Stage update = partial.update().split(o, oo, oi, ctx.vector, kGuard);
    if (first_layer)
        update.reorder(oi, kx, ky, c, r[0], r[1], oo, image, u).unroll(c);
    else
        update.reorder(oi, kx, ky, r[0], r[1], c, oo, image, u);
    update.vectorize(oi).unroll(kx).unroll(ky).parallel(u);
    if (!first_layer) {
        Func copy = Func(s.bwd.d_pre).in(partial);  // (x, y, o, n)
        copy.compute_at(partial, image);
        store_channels_innermost(copy, ctx);
    }
}

// The first layer's gradients when its window has fewer taps (kx, ky, c) than a
// vector has lanes, as a 3x3 window on one channel (9 taps): nothing reads d_pre
// by rows (there is no d_in), so it is stored channels innermost for the weight
// gradient, and the bias gradient's vectors run along channels too.
void conv_first_layer_gradients(const pipeline::LayerStages &s, const Context &ctx) {
    Func dp = s.bwd.d_pre, db = s.bwd.d_bias;  // (x, y, o, n); (o)
    dp.compute_root();
    store_channels_innermost(dp, ctx);
    dp.parallel(dp.args()[3]);
    conv_weight_gradient_by_channels(s, ctx, true);

    Var oo("oo"), oi("oi");
    std::vector<RVar> rb = db.rvars(0);  // x, y, n
    db.compute_root().vectorize(db.args()[0], ctx.vector, kGuard);
    db.update().split(db.args()[0], oo, oi, ctx.vector, kGuard).reorder(oi, rb[0], rb[1], rb[2], oo).vectorize(oi);
}

// The weight gradient as a matrix product over every output position of every
// image, for strided layers whose output channels do not fill vectors: per
// image, its input windows are stored (im2col) with (kx, ky, c) innermost; a
// tile of (kx, ky, c) vectors x a block of output channels accumulates in
// registers over the image's positions. The chunks of the batch run in parallel.
void conv_weight_gradient_by_taps(const pipeline::LayerStages &s, const Context &ctx) {
    Func patches = s.bwd.patches;  // (kx, ky, c, x, y, n)
    std::vector<RVar> r = s.bwd.d_weight.rvars(0);  // x, y, n
    RVar image("image");
    Var u("u"), t("t"), t2("t2"), to("to"), ti("ti"), oo("oo"), oi("oi");
    Func partial = chunked_partial_sums(s.bwd.d_weight, image, u, ctx);  // (kx, ky, c, o, u)
    Var pkx = partial.args()[0], pky = partial.args()[1], pc = partial.args()[2], po = partial.args()[3];
    const int block = channel_block(s.layer->out.channels, ctx);
    partial.compute_root().parallel(u);
    partial.update()
        .fuse(pkx, pky, t)
        .fuse(t, pc, t2)
        .split(t2, to, ti, ctx.vector, TailStrategy::GuardWithIf)
        .split(po, oo, oi, block)
        .reorder(ti, oi, r[0], r[1], to, oo, image, u)
        .vectorize(ti)
        .unroll(oi)
        .parallel(u);
    patches.compute_at(partial, image).vectorize(patches.args()[0], ctx.vector, TailStrategy::GuardWithIf);
}

// A weight gradient with vectors along the output rows, for a layer at stride 1
// whose output channels do not fill vectors (lenet5's first: 6 channels of
// 28 x 28, 25 taps): each lane sums every vector-th position of a row (rfactor),
// and for each tap row (ky) the kernel's taps along x times the row's vectors
// accumulate in registers, each d_pre row loaded serving them all. The lanes
// are added at the end; the chunks of the batch run in parallel.
void conv_weight_gradient_by_rows(const pipeline::LayerStages &s, const Context &ctx) {
    std::vector<RVar> r = s.bwd.d_weight.rvars(0);  // x, y, n
    RVar image("image"), rxo("rxo"), rxi("rxi");
    Var u("u"), lane("lane");
    Func partial = chunked_partial_sums(s.bwd.d_weight, image, u, ctx);  // (kx, ky, c, o, u)
    // A row of up to two vectors is one vector of its width (28 lanes: two
    // registers), so that no lane is masked off.
    const int64_t width = s.layer->out.width;
    const int lanes = width > ctx.vector && width <= 2 * ctx.vector ? int(width) : ctx.vector;
    Func row_lanes = partial.update().split(r[0], rxo, rxi, lanes, kGuard).rfactor(rxi, lane);
    // row_lanes (kx, ky, c, o, u, lane)
    Var kx = partial.args()[0], ky = partial.args()[1], c = partial.args()[2], o = partial.args()[3];
    Var oo("oo"), oi("oi");
    // Two output channels at a time share each input row loaded (20 accumulators
    // of a 5-tap row and 28-wide rows, in registers).
    const int o_block = s.layer->out.channels % 2 == 0 ? 2 : 1;
    partial.compute_root().parallel(u);
    partial.update().split(o, oo, oi, o_block).reorder(rxi, kx, oi, ky, c, oo, u).parallel(u);
    // Stored per tap row: a row's kx accumulators are a few vectors the compiler
    // keeps in registers over the chunk's rows (stored for the whole kernel, each
    // update was a load and a store, 20 GFLOP/s on lenet5's first layer).
    row_lanes.compute_at(partial, ky).reorder_storage(lane, kx, o, ky, c, u).vectorize(lane);
    row_lanes.update()
        .reorder(lane, kx, rxo, o, r[1], image, ky, c)
        .vectorize(lane)
        .unroll(rxo)
        .unroll(kx);
    if (o_block > 1) row_lanes.update().unroll(o);
}

// The weight gradient's stages by one of the strategies above, by shape.
void conv_weight_gradient(const pipeline::LayerStages &s, const Context &ctx) {
    const model::Layer &l = *s.layer;
    if (s.bwd.winograd_grad.d_weight.defined())
        schedule_winograd_weight_grad(s, ctx);
    else if (l.out.channels % ctx.vector == 0)
        conv_weight_gradient_by_channels(s, ctx, false);
    else if (l.spec_as<model::ConvSpec>().stride == 1)
        conv_weight_gradient_by_rows(s, ctx);
    else
        conv_weight_gradient_by_taps(s, ctx);
}

// An input gradient's sum `din` (x, y, c, n) over kx, ky, o, `width` wide, as the
// forward pass with input channels in the place of output channels; a wrapper
// stores it, as it accumulates row by row, and its weights are read through a copy
// of their own, input channels innermost.
void conv_input_gradient_sum(Func din, const pipeline::LayerStages &s, int64_t width, const Context &ctx) {
    if (layers::channel_vectors_fit(width, s.layer->in.channels, ctx.vector))
        return schedule_channel_vectors(din.in(), din, Func(s.fwd.weight).in(din), 2, width, ctx, nullptr);
    schedule_window_rows(din.in(), din, channel_block(s.layer->in.channels, ctx), width, ctx, false);
}

// A strided layer's input gradient: each phase a dense sum as above, S times
// narrower; d_in interleaves them, S rows at a time (each row's phase a constant)
// with vectors along x.
void conv_strided_input_gradient(const pipeline::LayerStages &s, const Context &ctx) {
    const int64_t stride = s.layer->spec_as<model::ConvSpec>().stride;
    const int64_t phase_width = (s.layer->in.width + stride - 1) / stride;
    for (const Func &phase : s.bwd.d_in_phases)
        if (phase.defined()) conv_input_gradient_sum(phase, s, phase_width, ctx);
    Func din = s.bwd.d_in;  // (x, y, c, n)
    Var x = din.args()[0], y = din.args()[1], yo("yo"), yi("yi");
    din.compute_root()
        .split(y, yo, yi, int(stride), TailStrategy::GuardWithIf)
        .unroll(yi)
        .vectorize(x, row_lanes(s.layer->in.width, ctx))
        .parallel(din.args()[3]);
}

// `net`: the network's context; the weight gradient and the input gradient
// each take their own direction's settings.
void conv_backward(const pipeline::LayerStages &s, const Context &net) {
    const model::Layer &l = *s.layer;
    const model::ConvSpec &conv = l.spec_as<model::ConvSpec>();
    const Context weight_grad = net.stage(l, Direction::weight_grad), input_grad = net.stage(l, Direction::input_grad);
    const int64_t taps = conv.kernel * conv.kernel * l.in.channels;
    if (!s.bwd.d_in.defined() && taps < input_grad.vector) return conv_first_layer_gradients(s, weight_grad);
    // Without an activation d_pre is d_out: its readers read that (no copy).
    if (l.activation != model::Activation::none) schedule_spatial(s.bwd.d_pre, input_grad);
    schedule_channel_sum(s.bwd.d_bias, s.layer->out, weight_grad);
    conv_weight_gradient(s, weight_grad);

    if (s.bwd.d_in.defined()) {
        // As the forward pass, input channels in the place of output channels; a
        // wrapper stores d_in, which accumulates row by row.
        schedule_spatial(s.bwd.d_pre_padded, input_grad);
        if (s.bwd.winograd.out.defined())
            return schedule_winograd(s.bwd.d_in, s.bwd.winograd, s.bwd.d_pre_padded, s.layer->in.width, s.layer->in.height,
                                     s.layer->in.channels, input_grad);
        if (!s.bwd.d_in_phases.empty()) return conv_strided_input_gradient(s, input_grad);
        conv_input_gradient_sum(s.bwd.d_in, s, s.layer->in.width, input_grad);
    }
}

}  // namespace

void register_conv(ScheduleTable &t) {
    t.push_back({"conv", [](const pipeline::Graph &g, size_t i, const Context &c) { conv_forward(g.layers[i], c); }, conv_backward});
}

}  // namespace kiln::schedules
