// Every layer kind's adjoint, checked in float64 through Halide's JIT with the real
// schedules: against central finite differences of the loss, and against Halide's
// own automatic differentiation (propagate_adjoints) of the forward definitions.
//
// Each case is a tiny network: conv (so that the layer under test also passes its
// gradient back), the layer under test, and a dense classifier.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "Halide.h"
#include "pipeline.h"
#include "schedules/cpu.h"

namespace {

using Halide::Buffer;
using Halide::Func;
using Halide::Var;

constexpr int kImages = 3;
constexpr uint32_t kDropoutSeed = 12345;  // fixed: the same masks in every evaluation of the loss

// `train`: lines of a [train] table (the loss reads label_smoothing from it).
kiln::model::Network tiny_network(const std::string &layer, const std::string &train = "") {
    return kiln::model::parse_network(
        "[input]\nwidth = 7\nheight = 6\nchannels = 2\nclasses = 3\nmean = 0.5\nstd = 0.25\n"
        "[[layer]]\ntype = \"conv\"\nfilters = 3\nkernel = 2\npadding = 1\nactivation = \"tanh\"\n"
        "[[layer]]\n" + layer + "\n"
        "[[layer]]\ntype = \"dense\"\nunits = 3\n" +
        (train.empty() ? "" : "[train]\n" + train + "\n"),
        "tiny.toml");
}

struct Inputs {
    Buffer<double> params, images;
    Buffer<int32_t> labels;
};

Inputs random_inputs(const kiln::model::Network &net, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    Inputs in{Buffer<double>(int(net.param_count), "params"),
              Buffer<double>(int(net.input.width), int(net.input.height), int(net.input.channels), kImages, "images"),
              Buffer<int32_t>(kImages, "labels")};
    in.params.for_each_value([&](double &v) { v = 0.7 * uniform(gen); });
    in.images.for_each_value([&](double &v) { v = 0.5 + 0.5 * uniform(gen); });
    for (int n = 0; n < kImages; n++) in.labels(n) = n % int(net.input.classes);
    return in;
}

// The compiled training step: loss and gradient at the inputs' current parameters.
struct TrainStep {
    Halide::Pipeline pipeline;
    Func loss, grad;
    TrainStep(const kiln::model::Network &net, Inputs &in, const kiln::schedules::ScheduleSettings &settings = {}) {
        Var i, x, y, c, n;
        Func params, images, labels;
        params(i) = in.params(i);
        images(x, y, c, n) = in.images(x, y, c, n);
        labels(n) = in.labels(n);
        kiln::pipeline::Graph g = kiln::pipeline::build_training(net, params, images, labels,
                                                                 {kImages, Halide::Expr(kDropoutSeed), 0},
                                                                 kiln::schedules::algorithms_for(settings));
        kiln::schedules::schedule_training(g, Halide::get_jit_target_from_environment(), settings);
        loss = g.loss.loss;
        grad = g.grad;
        pipeline = Halide::Pipeline({loss, grad});
        pipeline.compile_jit();
    }
    double run(Buffer<double> &grad_out) {
        Buffer<double> l = Buffer<double>::make_scalar();
        pipeline.realize({l, grad_out});
        return l();
    }
};

// Halide's autodiff of the same forward definitions, with a plain log-sum-exp loss
// (its maximum-subtraction is left out: `maximum` over an RDom has no adjoint)
// against the label-smoothed target q = (1 - e) onehot + e / K, written out here.
Buffer<double> halide_autodiff_gradient(const kiln::model::Network &net, Inputs &in) {
    Var i, x, y, c, n, o;
    Func params, images;
    params(i) = in.params(i);
    images(x, y, c, n) = in.images(x, y, c, n);
    kiln::pipeline::Graph g =
        kiln::pipeline::build_forward(net, params, images, {kImages, Halide::Expr(kDropoutSeed), 0});
    Halide::RDom ro(0, int(net.input.classes)), rn(0, kImages);
    Func log_sum;
    log_sum(n) = Halide::log(Halide::sum(Halide::exp(g.scores(ro, n))));
    const double e = net.train.label_smoothing, spread = e / double(net.input.classes);
    Func label_score;  // sum_o q(o, n) scores(o, n), through a select: autodiff needs bounded accesses
    label_score(n) = Halide::sum(Halide::select(ro == in.labels(n), Halide::Expr(1 - e + spread), Halide::Expr(spread)) * g.scores(ro, n));
    Func loss;
    loss() = Halide::cast<double>(0);
    loss() += (log_sum(rn) - label_score(rn)) / kImages;
    Halide::Derivative d = Halide::propagate_adjoints(loss);
    // Every stage and its adjoints stored whole: inlined, they would multiply out
    // into expressions too large to compile.
    std::vector<Func> stages = {g.scores, log_sum, label_score};
    for (const kiln::pipeline::LayerStages &s : g.layers)
        for (const Func &f : {s.fwd.out, s.fwd.pre, s.fwd.weight, s.fwd.in_padded, s.fwd.mean, s.fwd.variance,
                              s.fwd.inv_std, s.fwd.scale})
            if (f.defined()) stages.push_back(f);
    for (Func f : stages) {
        f.compute_root();
        for (int update = -1; update < f.num_update_definitions(); update++) {
            Func adjoint = d(f, update);
            if (adjoint.defined()) adjoint.compute_root();
        }
    }
    return d(in.params).realize({int(net.param_count)});
}

// Element i of the flat vector belongs to a running statistic (not trained).
bool is_buffer(const kiln::model::Network &net, int i) {
    for (const kiln::model::ParamTensor &t : net.params)
        if (i >= t.offset && i < t.offset + t.count) return t.buffer;
    return false;
}

// `settings`: the training step's (its algorithms among them); the autodiff
// oracle differentiates the direct algorithms' definitions.
void check_layer(const std::string &layer, const std::string &train = "",
                 const kiln::schedules::ScheduleSettings &settings = {}) {
    INFO("layer under test: " << layer << "; train: " << train << "; conv_algorithm: " << settings.conv_algorithm);
    const kiln::model::Network net = tiny_network(layer, train);
    Inputs in = random_inputs(net, 42);
    TrainStep step(net, in, settings);
    Buffer<double> grad(int(net.param_count));
    step.run(grad);

    // Central differences, every parameter.
    const double h = 1e-5;
    Buffer<double> scratch(int(net.param_count));
    for (int i = 0; i < net.param_count; i++) {
        if (is_buffer(net, i)) continue;
        const double saved = in.params(i);
        in.params(i) = saved + h;
        const double up = step.run(scratch);
        in.params(i) = saved - h;
        const double down = step.run(scratch);
        in.params(i) = saved;
        const double numeric = (up - down) / (2 * h);
        INFO("parameter " << i);
        REQUIRE(std::abs(grad(i) - numeric) <= 1e-6 * std::max(1.0, std::abs(numeric)));
    }

    const Buffer<double> oracle = halide_autodiff_gradient(net, in);
    for (int i = 0; i < net.param_count; i++) {
        if (is_buffer(net, i)) continue;
        INFO("parameter " << i);
        REQUIRE(std::abs(grad(i) - oracle(i)) <= 1e-9 * std::max(1.0, std::abs(oracle(i))));
    }
}

}  // namespace

TEST_CASE("conv adjoint matches finite differences and Halide's autodiff", "[gradients][conv]") {
    check_layer("type = \"conv\"\nfilters = 2\nkernel = 3\npadding = 1\nactivation = \"relu\"");
    check_layer("type = \"conv\"\nfilters = 2\nkernel = 3\nstride = 2\nactivation = \"tanh\"");
    check_layer("type = \"conv\"\nfilters = 3\nkernel = 2\nstride = 2\npadding = 1\nactivation = \"sigmoid\"");
    check_layer("type = \"conv\"\nfilters = 1\nkernel = 1");
    // Strided input gradients by phases (one sum per input column and row parity):
    // resnet's 3x3 stride-2 'same' layer and 1x1 projection (odd phases: no tap), and
    // a stride of 3 whose middle phase no tap of a 2-wide kernel reaches.
    check_layer("type = \"conv\"\nfilters = 4\nkernel = 3\nstride = 2\npadding = 1\nactivation = \"relu\"");
    check_layer("type = \"conv\"\nfilters = 2\nkernel = 1\nstride = 2");
    check_layer("type = \"conv\"\nfilters = 2\nkernel = 2\nstride = 3\npadding = 1");
    check_layer("type = \"conv\"\nfilters = 5\nkernel = 5\npadding = \"same\"\nactivation = \"relu\"");
    // Channels filling whole float64 vectors (8 lanes), one and two of them: the
    // weight gradient's schedule with vectors along channels. The cases above
    // cover its other two (rows at stride 1, im2col at stride 2).
    check_layer("type = \"conv\"\nfilters = 8\nkernel = 3\npadding = 1\nactivation = \"relu\"");
    check_layer("type = \"conv\"\nfilters = 16\nkernel = 2\nactivation = \"tanh\"");
}

// Winograd F(2x2, 3x3) and F(4x4, 3x3): the layer under test reads 8 channels (a
// first layer of 3 is left direct), its forward pass and input gradient by
// Winograd; odd and even sizes (7 x 6 images: a partial tile column), one and
// several vectors of tiles or channels, a layer after it (so its d_in is used) or not.
TEST_CASE("conv by Winograd: adjoint matches finite differences and Halide's autodiff", "[gradients][conv][winograd]") {
    for (const std::string algorithm : {"winograd", "winograd4"}) {
        kiln::schedules::ScheduleSettings winograd;
        winograd.conv_algorithm = algorithm;
        const std::string eight = "type = \"conv\"\nfilters = 8\nkernel = 3\npadding = 1\nactivation = \"relu\"\n[[layer]]\n";
        check_layer(eight + "type = \"conv\"\nfilters = 9\nkernel = 3\npadding = 1\nactivation = \"tanh\"", "", winograd);
        check_layer(eight + "type = \"conv\"\nfilters = 16\nkernel = 3\npadding = \"same\"\n[[layer]]\n"
                            "type = \"conv\"\nfilters = 4\nkernel = 3\npadding = 1\nactivation = \"relu\"", "", winograd);
    }
}

TEST_CASE("maxpool adjoint matches finite differences and Halide's autodiff", "[gradients][maxpool]") {
    check_layer("type = \"maxpool\"\nsize = 2");
    check_layer("type = \"maxpool\"\nsize = 3\nstride = 1");
    check_layer("type = \"maxpool\"\nsize = 2\nstride = 3");
}

TEST_CASE("avgpool adjoint matches finite differences and Halide's autodiff", "[gradients][avgpool]") {
    check_layer("type = \"avgpool\"\nsize = 2");
    check_layer("type = \"avgpool\"\nsize = 3\nstride = 2");
}

TEST_CASE("dense adjoint matches finite differences and Halide's autodiff", "[gradients][dense]") {
    check_layer("type = \"dense\"\nunits = 5\nactivation = \"relu\"");
    check_layer("type = \"dense\"\nunits = 4\nactivation = \"sigmoid\"");
    check_layer("type = \"dense\"\nunits = 17\nactivation = \"tanh\"");  // more units than a vector
}

TEST_CASE("the label-smoothed loss's adjoint matches finite differences and Halide's autodiff",
          "[gradients][loss]") {
    check_layer("type = \"dense\"\nunits = 4\nactivation = \"tanh\"", "label_smoothing = 0.1");
    check_layer("type = \"maxpool\"\nsize = 2", "label_smoothing = 0.6");
}

TEST_CASE("globalavgpool adjoint matches finite differences and Halide's autodiff", "[gradients][globalavgpool]") {
    check_layer("type = \"globalavgpool\"");
}

TEST_CASE("dropout adjoint matches finite differences and Halide's autodiff", "[gradients][dropout]") {
    check_layer("type = \"dropout\"\nrate = 0.5");
    check_layer("type = \"dropout\"\nrate = 0.2");
}

// In training: batch statistics, so every image's gradient reaches every other's.
// The buffers' places in the "gradient" hold batch statistics (checked against the
// reference by test_compiled and test_f64), so they are left out here.
TEST_CASE("batchnorm adjoint matches finite differences and Halide's autodiff", "[gradients][batchnorm]") {
    check_layer("type = \"batchnorm\"");
    check_layer("type = \"batchnorm\"\nactivation = \"relu\"\nepsilon = 0.01");
    check_layer("type = \"batchnorm\"\nactivation = \"tanh\"\nmomentum = 0.5");
    // After a dense layer: per unit, over the batch only.
    check_layer("type = \"dense\"\nunits = 5\n[[layer]]\ntype = \"batchnorm\"\nactivation = \"sigmoid\"");
}

// Graphs: conv1's output fans out (to `side` and to the join), so its gradient is
// the sum of what both send back; add hands its gradient to every input, concat a
// slice to each.
const std::string side = "type = \"conv\"\nname = \"side\"\ninput = \"conv1\"\nfilters = 3\nkernel = 1\n"
                         "activation = \"tanh\"\n[[layer]]\n";

TEST_CASE("add adjoint matches finite differences and Halide's autodiff", "[gradients][add][graph]") {
    check_layer(side + "type = \"add\"\ninputs = [\"conv1\", \"side\"]\nactivation = \"relu\"");
    check_layer(side + "type = \"add\"\ninputs = [\"side\", \"conv1\", \"side\"]");  // one input twice
}

TEST_CASE("concat adjoint matches finite differences and Halide's autodiff", "[gradients][concat][graph]") {
    check_layer(side + "type = \"concat\"\ninputs = [\"side\", \"conv1\"]");
    // concat, then a residual add over it (its output read twice).
    check_layer(side + "type = \"concat\"\nname = \"both\"\ninputs = [\"conv1\", \"side\"]\n[[layer]]\n"
                       "type = \"conv\"\nname = \"conv2\"\nfilters = 6\nkernel = 3\npadding = 1\n[[layer]]\n"
                       "type = \"add\"\ninputs = [\"conv2\", \"both\"]\nactivation = \"tanh\"");
}

TEST_CASE("dropout drops about its rate of elements, and none in inference", "[gradients][dropout]") {
    const kiln::model::Network net = tiny_network("type = \"dropout\"\nrate = 0.3");
    const kiln::model::Layer &drop = net.layers[1];
    Var x, y, c, n;
    Func ones;
    ones(x, y, c, n) = Halide::cast<double>(1);
    Buffer<double> trained = kiln::layers::dropout_forward(drop, 1, ones, Halide::Expr(7u), 0).out.realize({50, 50, 4, 4});
    int dropped = 0;
    trained.for_each_value([&](double v) {
        dropped += v == 0;
        if (v != 0) CHECK(v == Approx(1 / 0.7));
    });
    CHECK(double(dropped) / (50 * 50 * 4 * 4) == Approx(0.3).margin(0.01));
    Buffer<double> other = kiln::layers::dropout_forward(drop, 1, ones, Halide::Expr(8u), 0).out.realize({50, 50, 4, 4});
    int differ = 0;
    for (int i = 0; i < 50 * 50 * 16; i++) differ += trained.data()[i] != other.data()[i];
    CHECK(differ > 0);  // a new seed, new masks
    Buffer<double> inferred = kiln::layers::dropout_forward(drop, 1, ones, Halide::Expr(), Halide::Expr()).out.realize({5, 5, 4, 1});
    inferred.for_each_value([&](double v) { CHECK(v == 1.0); });
    // A shard starting at image 2 of the batch draws images 2 and 3's masks.
    Buffer<double> shard = kiln::layers::dropout_forward(drop, 1, ones, Halide::Expr(7u), 2).out.realize({50, 50, 4, 2});
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 4; c++)
            for (int y = 0; y < 50; y++)
                for (int x = 0; x < 50; x++) REQUIRE(shard(x, y, c, n) == trained(x, y, c, n + 2));
}

TEST_CASE("maxpool sends a tied window's gradient to its first maximum only", "[gradients][maxpool]") {
    const kiln::model::Network net = tiny_network("type = \"maxpool\"\nsize = 2");
    const kiln::model::Layer &pool = net.layers[1];
    Var x, y, c, n;
    Func flat;  // every input equal: each window is a four-way tie
    flat(x, y, c, n) = Halide::cast<double>(1);
    kiln::layers::Forward fwd = kiln::layers::pool_forward(pool, flat);
    Func ones;
    ones(x, y, c, n) = Halide::cast<double>(1);
    kiln::layers::Backward bwd = kiln::layers::pool_backward(pool, {flat, fwd, ones, 1, true});
    Buffer<double> d_in = bwd.d_in.realize({int(pool.in.width), int(pool.in.height), 1, 1});
    for (int yy = 0; yy < d_in.height(); yy++)
        for (int xx = 0; xx < d_in.width(); xx++) {
            const bool first_of_window = xx % 2 == 0 && yy % 2 == 0 && xx / 2 < pool.out.width && yy / 2 < pool.out.height;
            INFO("x " << xx << " y " << yy);
            REQUIRE(d_in(xx, yy, 0, 0) == (first_of_window ? 1.0 : 0.0));
        }
}

TEST_CASE("schedule settings change the speed of a training step, not its result", "[gradients][schedules]") {
    // A conv whose channels fill vectors, pooling and dense layers after the tiny
    // network's first conv: every setting reaches some stage.
    const kiln::model::Network net = tiny_network("type = \"conv\"\nfilters = 8\nkernel = 3\npadding = 1\nactivation = \"relu\"");
    Inputs in = random_inputs(net, 7);
    Buffer<double> expected(int(net.param_count)), grad(int(net.param_count));
    const double expected_loss = TrainStep(net, in).run(expected);
    kiln::schedules::ScheduleSettings variants[5];
    variants[0].conv_row_vectors = 1;
    variants[1].conv_channel_block = 1;
    variants[2].conv_channel_block = 8;
    variants[3].weight_grad_chunk = 1;
    variants[4].dense_block = 1;
    variants[4].vector_lanes = 4;
    for (const kiln::schedules::ScheduleSettings &settings : variants) {
        INFO("conv_row_vectors " << settings.conv_row_vectors << ", conv_channel_block " << settings.conv_channel_block
                                 << ", weight_grad_chunk " << settings.weight_grad_chunk << ", dense_block "
                                 << settings.dense_block << ", vector_lanes " << settings.vector_lanes);
        const double loss = TrainStep(net, in, settings).run(grad);
        REQUIRE(std::abs(loss - expected_loss) <= 1e-12 * std::abs(expected_loss));
        for (int i = 0; i < net.param_count; i++) {
            INFO("parameter " << i);
            REQUIRE(std::abs(grad(i) - expected(i)) <= 1e-12 * std::max(1.0, std::abs(expected(i))));
        }
    }
}
