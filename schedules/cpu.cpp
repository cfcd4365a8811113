// Hand-written CPU schedules, one function per layer kind and direction.
// Dimension letters: see generator/layers/layers.h.
#include "schedules/cpu.h"

#include "model/kinds/conv.h"

namespace kiln::schedules {
namespace {

using Halide::Expr;
using Halide::Func;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;

struct Context {
    int vector;  // lanes of the pipeline's element type
    const ScheduleSettings &settings;
    Expr batch;             // images in the call, where known (inference)
    bool training = false;  // dropout active
};

// Vectors along a dimension that indexes a tensor of exactly that size (the
// parameter vector, a small gradient) are guarded rather than rounded up past
// the tensor's end.
constexpr TailStrategy kGuard = TailStrategy::GuardWithIf;

// Layers below this many FLOPs per image run on the calling thread when the
// batch is one image: waking the thread pool costs more than their work.
constexpr int64_t kSerialFlops = 4'000'000;

// For one image, f (a layer output) computed serially, vectorized along `lanes`.
void serial_for_one_image(Func f, const Var &lanes, const pipeline::LayerStages &s, const Context &ctx,
                          TailStrategy tail = TailStrategy::Auto) {
    if (ctx.batch.defined() && s.layer->flops < kSerialFlops) f.specialize(ctx.batch == 1).vectorize(lanes, ctx.vector, tail);
}


// A layer output (x, y, o, n) computed whole, images in parallel, rows vectorized.
void schedule_spatial(Func f, const Context &ctx) {
    f.compute_root().vectorize(f.args()[0], ctx.vector).parallel(f.args()[3]);
}

// Channels computed together, so that each input vector loaded serves that many
// accumulators: the largest divisor of `channels` up to the setting (default 4).
int channel_block(int64_t channels, const Context &ctx) {
    const int most = ctx.settings.conv_channel_block > 0 ? ctx.settings.conv_channel_block : 4;
    for (int b = most; b > 1; b--)
        if (channels % b == 0) return b;
    return 1;
}

// A convolution-shaped reduction, forward or adjoint: `stored` (x, y, ch, n) is
// computed whole in blocks of `block` channels, images and channel blocks in
// parallel (one image still has work for every core), rows vectorized; its
// accumulator `acc` one row of the block at a time, the reduction (kx, ky, and the
// other side's channels) inside, so that the block x one vector of accumulators
// stays in registers; a row of `width` up to conv_row_vectors vectors is done
// whole, all its vectors at once. `serial_single_image`: a call with one image
// runs serially.
void schedule_window_rows(Func stored, Func acc, int block, int64_t width, const Context &ctx, bool serial_single_image) {
    Var sx = stored.args()[0], sy = stored.args()[1], sc = stored.args()[2], sn = stored.args()[3];
    Var co("co"), ci("ci"), cn("cn"), xo("xo"), xi("xi");
    stored.compute_root();
    if (serial_single_image)
        stored.specialize(ctx.batch == 1).split(sc, co, ci, block).reorder(sx, ci, sy, co, sn).vectorize(sx, ctx.vector);
    stored.split(sc, co, ci, block).reorder(sx, ci, sy, co, sn).fuse(co, sn, cn).parallel(cn).vectorize(sx, ctx.vector);
    Var ax = acc.args()[0], ay = acc.args()[1], ac = acc.args()[2];
    std::vector<RVar> r = acc.rvars(0);  // kx, ky, and channels
    acc.compute_at(stored, sy).vectorize(ax, ctx.vector);
    Halide::Stage update = acc.update().split(ax, xo, xi, ctx.vector);
    if (width <= ctx.settings.conv_row_vectors * ctx.vector)  // the row's vectors share each weight loaded
        update.reorder(xi, xo, ac, r[0], r[1], r[2], ay).unroll(xo);
    else
        update.reorder(xi, ac, r[0], r[1], r[2], xo, ay);
    update.vectorize(xi).unroll(ac).unroll(r[0]);
}

void conv_forward(const pipeline::LayerStages &s, const Context &ctx) {
    // The zero border stored once, so the inner loop reads without bounds checks.
    if (s.fwd.in_padded.defined()) {
        Func padded = s.fwd.in_padded;
        padded.compute_root();
        serial_for_one_image(padded, padded.args()[0], s, ctx);
        schedule_spatial(padded, ctx);
    }
    schedule_window_rows(s.fwd.out, s.fwd.pre, channel_block(s.layer->out.channels, ctx), s.layer->out.width, ctx,
                         ctx.batch.defined() && s.layer->flops < kSerialFlops);
}

// A per-channel sum (o) over (x, y, n): a conv layer's bias gradient, batchnorm's
// statistics and gradients. A single running sum per channel waits on each add;
// instead the positions (x, y fused, contiguous in memory) are dealt to a
// vector's lanes, each lane summing its own (rfactor), and the lanes added at the
// end: channels in parallel. Over a dense layer's units (x = y = 1) the vectors
// run along the channels instead. Either way each sum adds up in a fixed order,
// whatever the thread count.
void schedule_channel_sum(Func sum, const model::Shape &over, const Context &ctx) {
    std::vector<RVar> r = sum.rvars(0);  // x, y, n
    const Var o = sum.args()[0];
    sum.compute_root();
    if (over.width * over.height < ctx.vector) {
        Var oo("oo"), oi("oi");
        sum.vectorize(o, ctx.vector, kGuard);
        sum.update().split(o, oo, oi, ctx.vector, kGuard).reorder(oi, r[0], r[1], r[2], oo).vectorize(oi).parallel(oo);
        return;
    }
    RVar xy("xy"), xyo("xyo"), xyi("xyi");
    Var lane("lane");
    Func lanes = sum.update().fuse(r[0], r[1], xy).split(xy, xyo, xyi, ctx.vector).rfactor(xyi, lane);  // (o, lane)
    // Lanes innermost in memory: each channel's partial sums fill their own cache
    // line. Stored channels innermost, the threads' channels shared lines and two
    // threads ran a training step 5x slower than one.
    lanes.compute_root().reorder_storage(lane, o).vectorize(lane).parallel(o);
    lanes.update().reorder(lane, xyo, r[2], o).vectorize(lane).parallel(o);
}

// A conv weight gradient's batch cut into chunks of weight_grad_chunk images:
// returns the chunks' partial sums (kx, ky, c, o, u), which the gradient adds up
// in a fixed order, whatever the thread count; `image` runs over a chunk.
Func chunked_partial_sums(Func dw, const RVar &image, const Var &u, const Context &ctx) {
    std::vector<RVar> r = dw.rvars(0);  // x, y, n
    RVar chunk("chunk");
    dw.compute_root();
    dw.update().split(r[2], chunk, image, ctx.settings.weight_grad_chunk);
    return dw.update().rfactor(chunk, u);
}

// A stage (x, y, o, n) stored channels innermost, vectors along the channels.
void store_channels_innermost(Func f, const Context &ctx) {
    Var x = f.args()[0], y = f.args()[1], o = f.args()[2], n = f.args()[3];
    f.reorder_storage(o, x, y, n).reorder(o, x, y, n).vectorize(o, ctx.vector, kGuard);
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
    Func row_lanes = partial.update().split(r[0], rxo, rxi, ctx.vector, kGuard).rfactor(rxi, lane);
    // row_lanes (kx, ky, c, o, u, lane)
    Var kx = partial.args()[0], ky = partial.args()[1], c = partial.args()[2], o = partial.args()[3];
    partial.compute_root().parallel(u);
    partial.update().reorder(rxi, kx, ky, c, o, u).parallel(u);
    row_lanes.compute_at(partial, u).reorder_storage(lane, kx, ky, c, o, u).vectorize(lane);
    row_lanes.update()
        .reorder(lane, rxo, kx, r[1], ky, c, o, image)
        .vectorize(lane)
        .unroll(rxo)
        .unroll(kx);
}

void conv_backward(const pipeline::LayerStages &s, const Context &ctx) {
    const model::Layer &l = *s.layer;
    const model::ConvSpec &conv = l.spec_as<model::ConvSpec>();
    const int64_t taps = conv.kernel * conv.kernel * l.in.channels;
    if (!s.bwd.d_in.defined() && taps < ctx.vector) return conv_first_layer_gradients(s, ctx);
    // Without an activation d_pre is d_out: its readers read that (no copy).
    if (l.activation != model::Activation::none) schedule_spatial(s.bwd.d_pre, ctx);
    schedule_channel_sum(s.bwd.d_bias, s.layer->out, ctx);
    if (l.out.channels % ctx.vector == 0)
        conv_weight_gradient_by_channels(s, ctx, false);
    else if (conv.stride == 1)
        conv_weight_gradient_by_rows(s, ctx);
    else
        conv_weight_gradient_by_taps(s, ctx);

    if (s.bwd.d_in.defined()) {
        // As the forward pass, input channels in the place of output channels; a
        // wrapper stores d_in, which accumulates row by row.
        schedule_spatial(s.bwd.d_pre_padded, ctx);
        Func din = s.bwd.d_in;  // (x, y, c, n) summed over kx, ky, o
        schedule_window_rows(din.in(), din, channel_block(s.layer->in.channels, ctx), s.layer->in.width, ctx, false);
    }
}

// An element-wise stage (x, y, c, n) stored whole, images in parallel, vectors
// along each image's elements (x, y, c fused, contiguous in memory). Vectors along
// x alone would run past the end of a row narrower than a vector (7 wide after
// two poolings) and pad the rows of this stage and of what it reads to a vector's
// width, turning the next dense layer's contiguous loads into gathers.
void schedule_elementwise(Func f, const Context &ctx) {
    Var xy("xy"), i("i");
    f.compute_root().fuse(f.args()[0], f.args()[1], xy).fuse(xy, f.args()[2], i).vectorize(i, ctx.vector, kGuard).parallel(f.args()[3]);
}

// Dropout's mask is a hash worth computing once per element: stored in training;
// in inference the layer is the identity and stays inline.
void dropout_forward(const pipeline::LayerStages &s, const Context &ctx) {
    if (ctx.training) schedule_elementwise(s.fwd.out, ctx);
}

void dropout_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_elementwise(s.bwd.d_in, ctx);
}

// Global average pooling: per image and channel a sum over the image, channels
// vectorized; its adjoint is element-wise.
void global_pool_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out;
    out.compute_root().vectorize(out.args()[2], ctx.vector, TailStrategy::GuardWithIf).parallel(out.args()[3]);
    out.update().vectorize(out.args()[2], ctx.vector, TailStrategy::GuardWithIf).parallel(out.args()[3]);
}

void global_pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx);
}

// Batch normalization: the per-channel statistics (training) and gradients are
// channel sums; the per-channel affine map is stored once, the normalized output
// and the adjoints are element-wise. An output that its consumer copies whole (a
// padded convolution's input) is computed in that copy instead of stored twice;
// its adjoint computes it again from the input, which it reads anyway.
void batchnorm_forward(const pipeline::LayerStages &s, const Context &ctx, bool copied_by_consumer) {
    if (ctx.training) {
        schedule_channel_sum(s.fwd.mean, s.layer->in, ctx);
        schedule_channel_sum(s.fwd.variance, s.layer->in, ctx);
    }
    for (Func f : {s.fwd.inv_std, s.fwd.scale}) f.compute_root();
    if (!copied_by_consumer) schedule_elementwise(s.fwd.out, ctx);
}

void batchnorm_backward(const pipeline::LayerStages &s, const Context &ctx) {
    schedule_elementwise(s.bwd.d_pre, ctx);
    schedule_channel_sum(s.bwd.d_bias, s.layer->out, ctx);
    schedule_channel_sum(s.bwd.d_weight, s.layer->out, ctx);
    if (s.bwd.d_in.defined()) schedule_elementwise(s.bwd.d_in, ctx);
}

void pool_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out;
    out.compute_root();
    serial_for_one_image(out, out.args()[0], s, ctx);
    schedule_spatial(out, ctx);
}

void pool_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.bwd.d_in.defined()) schedule_spatial(s.bwd.d_in, ctx);
}


// A dense layer's products run along its flattened input i = (c, y, x). An input
// narrower than a vector was stored with rows padded to a vector's width, which
// would make those loads gathers: `consumer` reads a contiguous copy instead.
void read_input_contiguous(const pipeline::LayerStages &s, Func consumer, const Context &ctx) {
    if (s.layer->in.width > 1 && s.layer->in.width < ctx.vector) schedule_elementwise(Func(s.in).in(consumer), ctx);
}

// A dense layer's forward pass reads its weights where they lie: each unit's
// weights are contiguous along the flattened input i = (c, y, x), as is each
// image's input, so vectors run along i (dot products), each lane summing every
// `lanes`-th term (rfactor), and the lanes are added at the end. A tile of
// kDenseUnits units x kDenseImages images accumulates in registers: each vector
// loaded serves several accumulators. No copy of the weights is made, which at
// one image costs more than the layer itself. The lanes do not depend on the
// batch, so every image's scores are the same whatever the batch it is in.
constexpr int kDenseUnits = 4, kDenseImages = 4;

// Lanes of the dot products: the widest of a vector, 8, 4, 2 dividing the inputs.
int dense_lanes(int64_t inputs, const Context &ctx) {
    for (int l = ctx.vector; l > 1; l /= 2)
        if (inputs % l == 0) return l;
    return 1;
}

void dense_forward(const pipeline::LayerStages &s, const Context &ctx) {
    Func out = s.fwd.out, pre = s.fwd.pre;  // (x, y, o, n), x = y = 0
    Var fo = out.args()[2], fn = out.args()[3], oo("oo"), oi("oi"), no("no"), ni("ni"), tile("tile");
    const model::Shape &in = s.layer->in;
    const int lanes = dense_lanes(in.width * in.height * in.channels, ctx);
    std::vector<RVar> r = pre.rvars(0);  // x, y, c of the input
    RVar rxy("rxy"), ri("ri"), rio("rio"), rii("rii");
    Var lane("lane");
    Func partial = pre.update().fuse(r[0], r[1], rxy).fuse(rxy, r[2], ri).split(ri, rio, rii, lanes).rfactor(rii, lane);
    // partial (x, y, o, n, lane)
    read_input_contiguous(s, partial, ctx);
    out.compute_root()
        .split(fo, oo, oi, kDenseUnits, kGuard)
        .split(fn, no, ni, kDenseImages, kGuard)
        .reorder(out.args()[0], out.args()[1], oi, ni, oo, no)
        .fuse(oo, no, tile);
    if (ctx.batch.defined() && s.layer->flops < kSerialFlops) out.specialize(ctx.batch == 1);  // serial
    out.parallel(tile);
    pre.compute_at(out, tile);
    Var px = partial.args()[0], py = partial.args()[1], po = partial.args()[2], pn = partial.args()[3];
    partial.compute_at(out, tile).reorder_storage(lane, px, py, po, pn).vectorize(lane);
    partial.update().reorder(lane, po, pn, rio, px, py).vectorize(lane).unroll(po).unroll(pn);
}

// A dense layer's gradients are matrix products over the flattened input index i
// = (c, y, x) fused, which is contiguous in memory: vectors run along i, and a
// block of `block` rows (units or images) is unrolled so that each vector loaded
// serves that many accumulators, which stay in registers over the reduction.
void schedule_dense_product(Func f, const Var &blocked, int block, const Context &ctx) {
    Var xy("xy"), i("i"), io("io"), ii("ii"), bo("bo"), bi("bi");
    const RVar r = f.rvars(0)[0];
    f.compute_root()
        .fuse(f.args()[0], f.args()[1], xy)
        .fuse(xy, f.args()[2], i)
        .vectorize(i, ctx.vector, kGuard)
        .parallel(blocked);
    f.update()
        .fuse(f.args()[0], f.args()[1], xy)
        .fuse(xy, f.args()[2], i)
        .split(i, io, ii, ctx.vector, kGuard)
        .split(blocked, bo, bi, block, kGuard)
        .reorder(ii, bi, r, io, bo)
        .vectorize(ii)
        .unroll(bi)
        .parallel(bo);
}

void dense_backward(const pipeline::LayerStages &s, const Context &ctx) {
    Func dp = s.bwd.d_pre;  // (o, n)
    dp.compute_root();
    Func db = s.bwd.d_bias;
    db.compute_root();
    // d_weight (x, y, c, o) summed over n: blocks of units.
    schedule_dense_product(s.bwd.d_weight, s.bwd.d_weight.args()[3], ctx.settings.dense_block, ctx);
    read_input_contiguous(s, s.bwd.d_weight, ctx);
    // d_in (x, y, c, n) summed over o: blocks of images.
    if (s.bwd.d_in.defined()) schedule_dense_product(s.bwd.d_in, s.bwd.d_in.args()[3], ctx.settings.dense_block, ctx);
}

// Whether layer i's output is read only through its consumer's stored copy of it:
// one reader, a convolution with padding, which reads its input, forward and
// adjoint, from its padded copy.
bool copied_by_consumer(const pipeline::Graph &g, size_t i) {
    const std::vector<int> &readers = g.consumers[i];
    return readers.size() == 1 && g.layers[size_t(readers[0])].fwd.in_padded.defined();
}

// The element-wise kinds without parameters: add (its sum, then its activation)
// and concat (each element from one input) are stored once; in the adjoint, add
// hands the same d_pre to every input, concat a slice of d_out (inline).
void add_forward(const pipeline::LayerStages &s, const Context &ctx) { schedule_elementwise(s.fwd.out, ctx); }

void add_backward(const pipeline::LayerStages &s, const Context &ctx) {
    if (s.layer->activation != model::Activation::none) schedule_elementwise(s.bwd.d_pre, ctx);
}

void concat_forward(const pipeline::LayerStages &s, const Context &ctx) { schedule_elementwise(s.fwd.out, ctx); }

// Each kind's schedules, by kind name (model::Kind::name).
struct KindSchedule {
    std::string_view kind;
    void (*forward)(const pipeline::Graph &g, size_t i, const Context &ctx);
    void (*backward)(const pipeline::LayerStages &s, const Context &ctx);
};

void no_schedule(const pipeline::LayerStages &, const Context &) {}

const KindSchedule kind_schedules[] = {
    {"conv", [](const pipeline::Graph &g, size_t i, const Context &c) { conv_forward(g.layers[i], c); }, conv_backward},
    {"maxpool", [](const pipeline::Graph &g, size_t i, const Context &c) { pool_forward(g.layers[i], c); }, pool_backward},
    {"avgpool", [](const pipeline::Graph &g, size_t i, const Context &c) { pool_forward(g.layers[i], c); }, pool_backward},
    {"dense", [](const pipeline::Graph &g, size_t i, const Context &c) { dense_forward(g.layers[i], c); }, dense_backward},
    {"dropout", [](const pipeline::Graph &g, size_t i, const Context &c) { dropout_forward(g.layers[i], c); },
     dropout_backward},
    {"globalavgpool", [](const pipeline::Graph &g, size_t i, const Context &c) { global_pool_forward(g.layers[i], c); },
     global_pool_backward},
    {"batchnorm",
     [](const pipeline::Graph &g, size_t i, const Context &c) {
         batchnorm_forward(g.layers[i], c, copied_by_consumer(g, i));
     },
     batchnorm_backward},
    {"add", [](const pipeline::Graph &g, size_t i, const Context &c) { add_forward(g.layers[i], c); }, add_backward},
    {"concat", [](const pipeline::Graph &g, size_t i, const Context &c) { concat_forward(g.layers[i], c); }, no_schedule},
};

const KindSchedule &schedule_of(const model::Layer &l) {
    for (const KindSchedule &k : kind_schedules)
        if (k.kind == l.kind->name) return k;
    throw std::runtime_error("unsupported: no CPU schedule for layer type '" + std::string(l.kind->name) + "' (layer " +
                             l.name + ")");
}

void schedule_forward_layers(pipeline::Graph &g, const Context &ctx) {
    for (size_t i = 0; i < g.layers.size(); i++) schedule_of(*g.layers[i].layer).forward(g, i, ctx);
}

// The flat gradient's updates copy each tensor's gradient into place: the copy
// runs along the tensor's innermost dimensions fused, in vectors. Each element is
// written exactly once (the index is one-to-one in the loop variables), which
// Halide cannot prove on its own: hence allow_race_conditions, which is safe here.
void schedule_gradient_copy(Func grad, const Context &ctx) {
    for (int u = 0; u < grad.num_update_definitions(); u++) {
        std::vector<RVar> r = grad.rvars(u);
        if (r.size() == 4) {  // a weight (a, b, c, o): fuse a, b, c
            RVar ab("ab"), abc("abc");
            grad.update(u).allow_race_conditions().fuse(r[0], r[1], ab).fuse(ab, r[2], abc).vectorize(
                abc, ctx.vector, TailStrategy::GuardWithIf);
        } else {  // a bias (o)
            grad.update(u).allow_race_conditions().vectorize(r[0], ctx.vector, TailStrategy::GuardWithIf);
        }
    }
}

Context context_for(const pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings) {
    const int lanes = settings.vector_lanes > 0 ? settings.vector_lanes
                                                : target.natural_vector_size(g.scores.output_types()[0]);
    return {lanes, settings, Expr()};
}

}  // namespace

void schedule_inference(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings,
                        Expr batch) {
    Context ctx = context_for(g, target, settings);
    ctx.batch = batch;
    schedule_forward_layers(g, ctx);
    g.scores.compute_root();
}

void schedule_training(pipeline::Graph &g, const Halide::Target &target, const ScheduleSettings &settings) {
    Context ctx = context_for(g, target, settings);
    ctx.training = true;
    schedule_forward_layers(g, ctx);
    g.scores.compute_root();
    g.loss.max_score.compute_root();
    g.loss.log_sum.compute_root();
    g.loss.d_scores.compute_root();
    schedule_gradient_copy(g.grad, ctx);
    for (size_t i = 0; i < g.layers.size(); i++) {
        const pipeline::LayerStages &s = g.layers[i];
        schedule_of(*s.layer).backward(s, ctx);
        // An output read by several layers: the gradients reaching it summed once.
        if (g.consumers[i].size() > 1) schedule_elementwise(s.d_out, ctx);
    }
}

}  // namespace kiln::schedules
