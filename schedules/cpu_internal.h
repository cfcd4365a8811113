// Internal to the CPU schedules: what the driver (cpu.cpp) and each layer kind's
// schedules (layers/<kind>.cpp) share. Each kind's file registers its schedules
// under the kind's name (model::Kind::name); the build gathers schedules/layers/*.cpp
// into the table the driver reads, so a new kind is a new file there.
// Dimension letters: see generator/layers/layers.h.
#pragma once

#include <string_view>
#include <vector>

#include "pipeline.h"
#include "schedules/settings.h"

namespace kiln::schedules {

using Halide::Expr;
using Halide::Func;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;

struct Context {
    int vector;  // lanes of the pipeline's element type
    ScheduleSettings settings;  // the network's; a stage's own in stage()'s contexts
    Expr batch;             // images in the call, where known (inference)
    bool training = false;  // dropout active

    // The context of layer `l`'s stages of `direction`: its own settings for
    // that direction (the file's layer tables) over the network's.
    Context stage(const model::Layer &l, Direction direction) const {
        Context c = *this;
        c.settings = settings.for_stage(l.name, direction);
        return c;
    }
};

// Vectors along a dimension that indexes a tensor of exactly that size (the
// parameter vector, a small gradient) are guarded rather than rounded up past
// the tensor's end.
constexpr TailStrategy kGuard = TailStrategy::GuardWithIf;

// Layers below this many FLOPs per image run on the calling thread when the
// batch is one image: waking the thread pool costs more than their work.
constexpr int64_t kSerialFlops = 4'000'000;

// For one image, f (a layer output) computed serially, vectorized along `lanes`;
// given the `width` of rows along it, in vectors no wider than a row (row_lanes).
void serial_for_one_image(Func f, const Var &lanes, const pipeline::LayerStages &s, const Context &ctx,
                          TailStrategy tail = TailStrategy::Auto, int64_t width = 0);

// A layer output (x, y, o, n) computed whole, images in parallel, rows vectorized;
// given its `width`, in vectors no wider than a row (row_lanes).
void schedule_spatial(Func f, const Context &ctx, int64_t width = 0);

// The widest vector, a power of two, that fits in a row `width` wide: vectors
// along x wider than the row would compute past its end, and make the stages
// read there compute past theirs (a 7-wide pooling output in vectors of 16
// made its 14-wide input be computed 32 wide).
int row_lanes(int64_t width, const Context &ctx);

// Channels computed together, so that each input vector loaded serves that many
// accumulators: the largest divisor of `channels` up to the setting (default 4).
int channel_block(int64_t channels, const Context &ctx);

// A convolution-shaped reduction, forward or adjoint: `stored` (x, y, ch, n) is
// computed whole in blocks of `block` channels, images and channel blocks in
// parallel (one image still has work for every core), rows vectorized; its
// accumulator `acc` one row of the block at a time, the reduction (kx, ky, and the
// other side's channels) inside, so that the block x one vector of accumulators
// stays in registers; a row of `width` up to conv_row_vectors vectors is done
// whole, all its vectors at once. `serial_single_image`: a call with one image
// runs serially.
void schedule_window_rows(Func stored, Func acc, int block, int64_t width, const Context &ctx, bool serial_single_image);

// `stored` (x, y, o, n), `width` wide with `channels` channels, computed by
// Winograd's F(m x m, 3x3) through `w` (layers/conv_winograd.cpp) from `src` (x, y,
// c, n, zero outside the image), into `stored` (x, y, o, n), width x height x channels.
void schedule_winograd(Func stored, layers::Winograd w, Func src, int64_t width, int64_t height, int64_t channels,
                       const Context &ctx);

// A conv layer's weight gradient by Winograd (s.bwd.winograd_grad).
void schedule_winograd_weight_grad(const pipeline::LayerStages &s, const Context &ctx);

// A per-channel sum (o) over (x, y, n): a conv layer's bias gradient, batchnorm's
// statistics and gradients. A single running sum per channel waits on each add;
// instead the positions (x, y fused, contiguous in memory) are dealt to a
// vector's lanes, each lane summing its own (rfactor), and the lanes added at the
// end: channels in parallel. Over a dense layer's units (x = y = 1) the vectors
// run along the channels instead. Either way each sum adds up in a fixed order,
// whatever the thread count.
void schedule_channel_sum(Func sum, const model::Shape &over, const Context &ctx);

// A conv weight gradient's batch cut into chunks of weight_grad_chunk images:
// returns the chunks' partial sums (kx, ky, c, o, u), which the gradient adds up
// in a fixed order, whatever the thread count; `image` runs over a chunk.
Func chunked_partial_sums(Func dw, const RVar &image, const Var &u, const Context &ctx);

// A stage (x, y, o, n) stored channels innermost, vectors along the channels.
void store_channels_innermost(Func f, const Context &ctx);

// An element-wise stage (x, y, c, n) stored whole, images in parallel, vectors
// along each image's elements (x, y, c fused, contiguous in memory). Vectors along
// x alone would run past the end of a row narrower than a vector (7 wide after
// two poolings) and pad the rows of this stage and of what it reads to a vector's
// width, turning the next dense layer's contiguous loads into gathers.
void schedule_elementwise(Func f, const Context &ctx);

// A dense layer's products run along its flattened input i = (c, y, x). An input
// narrower than a vector was stored with rows padded to a vector's width, which
// would make those loads gathers: `consumer` reads a contiguous copy instead.
void read_input_contiguous(const pipeline::LayerStages &s, Func consumer, const Context &ctx);

// Whether layer i's output is read only through its consumer's stored copy of it:
// one reader, a convolution with padding, which reads its input, forward and
// adjoint, from its padded copy.
bool copied_by_consumer(const pipeline::Graph &g, size_t i);

// One kind's schedules: `forward` for layer i of the graph (it may look at the
// layers around it), given its forward stages' context; `backward` for its
// adjoint stages in training, given the network's context, from which it takes
// each direction's (Context::stage).
struct LayerSchedule {
    std::string_view kind;
    void (*forward)(const pipeline::Graph &g, size_t i, const Context &ctx) = nullptr;
    void (*backward)(const pipeline::LayerStages &s, const Context &ctx) = nullptr;
};
using ScheduleTable = std::vector<LayerSchedule>;

}  // namespace kiln::schedules
