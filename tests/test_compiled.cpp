// Every compiled network's ahead-of-time pipelines against the independent
// double-precision reference (reference.cpp), on the first 16 real MNIST training
// images: the training step's loss, scores and full gradient, the forward pass's
// scores, and the dynamic batch extent (one image, a partial batch of five).
//
// Tolerances (the pipelines compute in float32, eps = 6e-8):
//   loss    relative error <= 1e-4;
//   scores  |a - b| <= 1e-3 * max(1, |ref|): a score is a chain of dot products of
//           up to ~3000 terms per layer, so float32 rounding gives ~1e-6 here;
//   grad    per parameter tensor, |a - b| <= 1e-2 * max(1e-3, max |ref| over the
//           tensor): a gradient element sums up to N*OH*OW = 12544 products whose
//           signs cancel, on top of the rounding carried back through every layer,
//           so errors of 1e-6..1e-5 of the tensor's largest element are usual. But in
//           a large network (seed-keras: 800,000 ReLUs and 200,000 pooling windows
//           in its first block) float32 may decide a few ReLU kinks or max-pool ties
//           the other way than double, moving single terms whole: errors up to 3e-3
//           were seen there. This check catches layout and indexing mistakes (errors
//           of order 1); test_f64 holds every network's float64 variant to 1e-10.
//           Measuring against the tensor's largest element (not each element's own
//           value) keeps elements that cancel to almost zero from failing; a tensor
//           whose gradient is zero but for rounding (a bias in front of batchnorm,
//           below 1e-9 of the network's largest) is measured against the network's
//           largest gradient element (batchnorm over a shard of two images
//           amplifies that rounding to ~1e-5).
//   forward scores against the training step's scores: |a - b| <= 1e-5 * max(1, |s|),
//           the same computation, possibly scheduled in another summation order
//           (for networks without dropout or batchnorm: in training, dropout and
//           batchnorm's batch statistics change the scores); and against the
//           reference's evaluation-mode forward pass as the scores above.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "compiled.h"
#include "helper_thread.h"
#include "idx.h"
#include "init.h"
#include "reference.h"
#include "running_stats.h"
#include "train.h"

namespace {

// Dropout masks from a fixed seed: the reference draws the same ones.
constexpr uint32_t kDropoutSeed = 99;

using kiln::CompiledModel;
using kiln::model::Network;
using kiln::reference::ReferenceResult;

constexpr int kImages = 16;
constexpr uint64_t kSeed = 7;
constexpr double kLossTolerance = 1e-4, kScoreTolerance = 1e-3, kGradTolerance = 1e-2, kGradFloor = 1e-3;
constexpr double kRoundingTolerance = 1e-5;

// The first 16 MNIST training images, read once.
const kiln::Dataset &first_images() {
    static const kiln::Dataset data = kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, true), kImages);
    return data;
}

kiln::ImageSet images_for(const Network &net) { return kiln::to_image_set(first_images(), net, "mnist"); }

// initial_params(net, 7), optionally with every 1-D tensor moved by small
// deterministic values in [-0.05, 0.05] (biases and batchnorm's running means from
// 0, its weights from 1), and batchnorm's running variances set in [0.5, 1.5].
std::vector<float> test_params(const Network &net, bool perturb_biases) {
    std::vector<float> p = kiln::initial_params(net, kSeed);
    if (!perturb_biases) return p;
    for (size_t t = 0; t < net.params.size(); t++) {
        const kiln::model::ParamTensor &tensor = net.params[t];
        if (tensor.shape.size() != 1) continue;
        const bool variance = tensor.name.size() > 12 && tensor.name.substr(tensor.name.size() - 12) == ".running_var";
        for (int64_t i = 0; i < tensor.count; i++) {
            const float k = float((i * 7 + int64_t(t) * 3) % 11);
            float &v = p[size_t(tensor.offset + i)];
            v = variance ? 0.5f + 0.1f * k : v + 0.01f * k - 0.05f;
        }
    }
    return p;
}

struct CompiledResult {
    float loss = 0;
    std::vector<float> scores, grad;  // from train_step
    std::vector<float> forward;       // scores from forward
};

// Outputs start as NaN, so that an element the pipelines never write is caught.
CompiledResult run_compiled(const CompiledModel &m, const std::vector<float> &params, const float *images,
                            const int32_t *labels, int n) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const size_t classes = size_t(m.net().input.classes);
    CompiledResult r;
    r.scores.assign(size_t(n) * classes, nan);
    r.forward.assign(size_t(n) * classes, nan);
    r.grad.assign(size_t(m.net().param_count), nan);
    r.loss = m.train_step(params.data(), images, labels, n, r.scores.data(), r.grad.data(), kDropoutSeed);
    m.forward(params.data(), images, n, r.forward.data());
    return r;
}

// Largest error, relative to `scale`, of got against want; NaN counts as infinite.
double worst_error(const float *got, const double *want, size_t count, double scale) {
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        const double e = std::abs(double(got[i]) - want[i]) / scale;
        worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(worst, e);
    }
    return worst;
}

// The largest errors seen, each relative to what its tolerance scales with.
struct Errors {
    double loss = 0, scores = 0, forward = 0, grad = 0;
    void merge(const Errors &o) {
        loss = std::max(loss, o.loss), scores = std::max(scores, o.scores);
        forward = std::max(forward, o.forward), grad = std::max(grad, o.grad);
    }
};

// Checks a compiled training step and forward pass against the reference on n images.
Errors check_against_reference(const CompiledModel &m, const std::vector<float> &params, const float *images,
                               const int32_t *labels, int n) {
    const Network &net = m.net();
    const CompiledResult got = run_compiled(m, params, images, labels, n);
    const ReferenceResult want =
        kiln::reference::reference_train_step(net, params, images, labels, n, kDropoutSeed, m.shards());
    INFO("network " << net.name << ", " << n << " images");
    Errors e;

    INFO("loss " << got.loss << ", reference " << want.loss);
    e.loss = std::abs(got.loss - want.loss) / std::abs(want.loss);
    CHECK(e.loss <= kLossTolerance);

    for (size_t i = 0; i < want.scores.size(); i++) {
        const double scale = std::max(1.0, std::abs(want.scores[i]));
        e.scores = std::max(e.scores, worst_error(&got.scores[i], &want.scores[i], 1, scale));
        const double train_score = got.scores[i];
        e.forward = std::max(e.forward, worst_error(&got.forward[i], &train_score, 1, scale));
    }
    CHECK(e.scores <= kScoreTolerance);
    const bool has_dropout = std::any_of(net.layers.begin(), net.layers.end(), [](const kiln::model::Layer &l) {
        return l.kind->random_in_training;
    });
    if (!has_dropout && !kiln::has_batchnorm(net)) CHECK(e.forward <= kRoundingTolerance);
    const std::vector<double> want_forward = kiln::reference::reference_forward(net, params, images, n);
    double forward_error = 0;
    for (size_t i = 0; i < want_forward.size(); i++)
        forward_error = std::max(forward_error, worst_error(&got.forward[i], &want_forward[i], 1,
                                                            std::max(1.0, std::abs(want_forward[i]))));
    INFO("forward pass against the reference's evaluation mode: worst error " << forward_error);
    CHECK(forward_error <= kScoreTolerance);

    double network_largest = 0;  // of the trained tensors' gradients
    for (const kiln::model::ParamTensor &t : net.params)
        if (!t.buffer)
            for (int64_t i = 0; i < t.count; i++) network_largest = std::max(network_largest, std::abs(want.grad[size_t(t.offset + i)]));
    for (const kiln::model::ParamTensor &t : net.params) {
        const double *ref = want.grad.data() + t.offset;
        double largest = 0;
        for (int64_t i = 0; i < t.count; i++) largest = std::max(largest, std::abs(ref[i]));
        // A gradient that is zero but for rounding (a bias in front of batchnorm) is
        // measured against the network's largest.
        const double scale = largest < 1e-9 * network_largest ? network_largest : largest;
        const double error = worst_error(got.grad.data() + t.offset, ref, size_t(t.count), std::max(kGradFloor, scale));
        INFO("gradient of " << t.name << ": largest |reference| " << largest << ", worst error / that " << error);
        CHECK(error <= kGradTolerance);
        e.grad = std::max(e.grad, error);
    }
    return e;
}

}  // namespace

TEST_CASE("every network is compiled in") {
    std::vector<std::string> names;
    for (const CompiledModel &m : kiln::compiled_models()) names.push_back(m.net().name);
    for (const char *name : {"lenet5", "vgg-mini", "logistic", "mlp", "bn-small"})
        CHECK(std::find(names.begin(), names.end(), name) != names.end());
}

TEST_CASE("each compiled training step and forward pass match the double-precision reference") {
    for (const CompiledModel &m : kiln::compiled_models()) {
        const kiln::ImageSet data = images_for(m.net());
        REQUIRE(data.count == kImages);
        Errors worst;
        for (bool perturb : {false, true}) {
            INFO((perturb ? "perturbed biases" : "initial parameters"));
            worst.merge(check_against_reference(m, test_params(m.net(), perturb), data.pixels.data(),
                                                data.labels.data(), kImages));
        }
        // One line per network: the largest errors seen, relative to each tolerance's scale.
        WARN(m.net().name << ": largest errors: loss " << worst.loss << ", scores " << worst.scores
                          << ", forward vs train scores " << worst.forward << ", gradient " << worst.grad
                          << " (of its tensor's largest element)");
    }
}

TEST_CASE("a batch of one agrees with the first image of a batch of 16") {
    for (const CompiledModel &m : kiln::compiled_models()) {
        INFO("network " << m.net().name);
        const kiln::ImageSet data = images_for(m.net());
        const std::vector<float> params = test_params(m.net(), true);
        const CompiledResult one = run_compiled(m, params, data.pixels.data(), data.labels.data(), 1);
        const CompiledResult all = run_compiled(m, params, data.pixels.data(), data.labels.data(), kImages);
        for (size_t k = 0; k < one.scores.size(); k++) {
            if (!kiln::has_batchnorm(m.net()))  // in training, batchnorm's statistics depend on the whole batch
                CHECK(std::abs(one.scores[k] - all.scores[k]) <= kRoundingTolerance * std::max(1.0f, std::abs(all.scores[k])));
            CHECK(std::abs(one.forward[k] - all.forward[k]) <= kRoundingTolerance * std::max(1.0f, std::abs(all.forward[k])));
        }
        check_against_reference(m, params, data.pixels.data(), data.labels.data(), 1);
    }
}

TEST_CASE("a partial last batch of five images works") {
    for (const CompiledModel &m : kiln::compiled_models()) {
        INFO("network " << m.net().name);
        const kiln::ImageSet data = images_for(m.net());
        const std::vector<float> params = test_params(m.net(), true);
        const int first = kImages - 5;  // the last five of the 16
        const size_t image_size = size_t(m.net().input.shape().size()), classes = size_t(m.net().input.classes);
        const float *images = data.pixels.data() + size_t(first) * image_size;
        const int32_t *labels = data.labels.data() + first;
        check_against_reference(m, params, images, labels, 5);

        // The same images' scores as in the whole batch of 16.
        const CompiledResult five = run_compiled(m, params, images, labels, 5);
        const CompiledResult all = run_compiled(m, params, data.pixels.data(), data.labels.data(), kImages);
        for (size_t k = 0; k < five.forward.size(); k++) {
            const float s = all.forward[size_t(first) * classes + k];
            CHECK(std::abs(five.forward[k] - s) <= kRoundingTolerance * std::max(1.0f, std::abs(s)));
        }
    }
}

// Where images are independent (no batchnorm), sharding (CompiledModel::train_step)
// changes only how the batch is summed: the step equals the whole-batch pipeline
// to float rounding (dropout's masks too: drawn by an image's index in the whole
// batch), and is the same on one thread as on two, bit for bit.
TEST_CASE("a sharded training step equals the whole batch's, whatever the thread count") {
    int sharded_networks = 0;
    for (const CompiledModel &m : kiln::compiled_models()) {
        INFO("network " << m.net().name);
        if (!kiln::model::images_independent_in_training(m.net())) continue;
        sharded_networks++;
        const kiln::ImageSet data = images_for(m.net());
        const std::vector<float> params = test_params(m.net(), true);
        const size_t classes = size_t(m.net().input.classes), count = size_t(m.net().param_count);
        for (int n : {kImages, 7}) {  // even, and odd (shards of 3 and 4)
            INFO(n << " images");
            std::vector<float> whole_scores(size_t(n) * classes), whole_grad(count);
            const float whole_loss = m.train_whole(params.data(), data.pixels.data(), data.labels.data(), n,
                                                   whole_scores.data(), whole_grad.data(), kDropoutSeed);
            std::vector<std::vector<float>> grads;
            for (int threads : {1, 2}) {
                kiln::set_thread_count(threads);
                CompiledResult r = run_compiled(m, params, data.pixels.data(), data.labels.data(), n);
                kiln::set_thread_count(0);
                CHECK(std::abs(r.loss - whole_loss) <= kRoundingTolerance * std::abs(whole_loss));
                for (size_t k = 0; k < r.scores.size(); k++)
                    CHECK(std::abs(r.scores[k] - whole_scores[k]) <=
                          kRoundingTolerance * std::max(1.0f, std::abs(whole_scores[k])));
                for (const kiln::model::ParamTensor &t : m.net().params) {
                    std::vector<double> want(whole_grad.begin() + t.offset, whole_grad.begin() + t.offset + t.count);
                    double largest = 0;
                    for (double v : want) largest = std::max(largest, std::abs(v));
                    INFO("gradient of " << t.name);
                    CHECK(worst_error(r.grad.data() + t.offset, want.data(), want.size(), std::max(kGradFloor, largest)) <=
                          kRoundingTolerance);
                }
                grads.push_back(r.grad);
            }
            CHECK(grads[0] == grads[1]);
        }
    }
    CHECK(sharded_networks > 0);
}

// Any shard count: the step matches the reference cut into the same shards
// (batchnorm normalizing each shard with its own statistics, the running ones
// getting the whole batch's), and one, two or three threads give the same bits.
TEST_CASE("S shards on T threads: the reference's result, the same bits for any T") {
    for (CompiledModel m : kiln::compiled_models()) {
        INFO("network " << m.net().name);
        const kiln::ImageSet data = images_for(m.net());
        const std::vector<float> params = test_params(m.net(), true);
        for (int shards : {3, 5}) {
            INFO(shards << " shards");
            m.set_shards(shards);
            check_against_reference(m, params, data.pixels.data(), data.labels.data(), kImages);
            std::vector<std::vector<float>> grads;
            for (int threads : {1, 2, 3}) {
                kiln::set_thread_count(threads);
                grads.push_back(run_compiled(m, params, data.pixels.data(), data.labels.data(), kImages).grad);
                kiln::set_thread_count(0);
            }
            CHECK(grads[0] == grads[1]);
            CHECK(grads[0] == grads[2]);
        }
    }
}

// Batchnorm's shards each see their own statistics: the result differs from the
// whole batch's (it must, or the test above would not tell them apart).
TEST_CASE("batchnorm networks' shards normalize with their own statistics") {
    int batchnorm_networks = 0;
    for (CompiledModel m : kiln::compiled_models()) {
        if (!kiln::has_batchnorm(m.net())) continue;
        batchnorm_networks++;
        INFO("network " << m.net().name);
        const kiln::ImageSet data = images_for(m.net());
        const std::vector<float> params = test_params(m.net(), true);
        m.set_shards(1);
        const CompiledResult whole = run_compiled(m, params, data.pixels.data(), data.labels.data(), kImages);
        m.set_shards(2);
        const CompiledResult halves = run_compiled(m, params, data.pixels.data(), data.labels.data(), kImages);
        CHECK(std::abs(whole.loss - halves.loss) > kRoundingTolerance * std::abs(whole.loss));
    }
    CHECK(batchnorm_networks > 0);
}

// The helper that runs a batch's second half: both parts run, either part's
// exception reaches the caller, and a call made while the helper is busy (from
// inside one of its parts) runs both of its parts on the calling thread instead
// of waiting for itself.
TEST_CASE("the helper thread runs both parts and reports either one's failure") {
    kiln::HelperThread &helper = kiln::HelperThread::instance();
    int mine = 0, theirs = 0;
    for (int i = 0; i < 1000; i++) helper.run_beside([&] { theirs++; }, [&] { mine++; });
    CHECK(mine == 1000);
    CHECK(theirs == 1000);

    CHECK_THROWS_WITH(helper.run_beside([] { throw std::runtime_error("second half failed"); }, [] {}),
                      "second half failed");
    CHECK_THROWS_WITH(helper.run_beside([] {}, [] { throw std::runtime_error("first half failed"); }),
                      "first half failed");

    int inner = 0;
    helper.run_beside([&] { helper.run_beside([&] { inner++; }, [&] { inner++; }); }, [] {});
    CHECK(inner == 2);
    helper.run_beside([&] { theirs++; }, [&] { mine++; });  // still serves after all that
    CHECK(theirs == 1001);
}
