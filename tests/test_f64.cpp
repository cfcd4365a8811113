// The generator's float64 training step (kiln_train_f64), compiled ahead of time
// for every network, agrees with the independent double-precision reference to near
// machine precision: loss, scores and every gradient element, dropout included.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "HalideBuffer.h"
#include "compiled.h"
#include "f64_networks.h"
#include "init.h"
#include "reference.h"
#include "train.h"

namespace {

const kiln::model::Network &network_of(const F64Network &f) {
    static std::vector<kiln::CompiledModel> all = kiln::compiled_models();
    for (const kiln::CompiledModel &m : all)
        if (std::strcmp(m.entry().file, f.file) == 0) return m.net();
    throw std::logic_error(std::string("no compiled network for ") + f.file);
}

}  // namespace

TEST_CASE("every network's float64 training step matches the double-precision reference", "[f64]") {
    REQUIRE(f64_networks.size() == kiln::compiled_network_count);
    const int n = 4;
    const uint32_t dropout_seed = 77;
    const kiln::Dataset first = kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, true), n);
    for (const F64Network &f : f64_networks) {
        const kiln::model::Network &net = network_of(f);
        INFO("network " << net.name);
        const kiln::ImageSet data = kiln::to_image_set(first, net, "mnist");
        const std::vector<float> params = kiln::initial_params(net, 3);
        const kiln::model::InputSpec &in = net.input;

        Halide::Runtime::Buffer<double> p(int(net.param_count)), grad(int(net.param_count));
        Halide::Runtime::Buffer<double> images(int(in.width), int(in.height), int(in.channels), n);
        Halide::Runtime::Buffer<double> scores(int(in.classes), n);
        Halide::Runtime::Buffer<double> loss = Halide::Runtime::Buffer<double>::make_scalar();
        Halide::Runtime::Buffer<int32_t> labels(const_cast<int32_t *>(data.labels.data()), n);
        for (int i = 0; i < net.param_count; i++) p(i) = params[size_t(i)];
        for (size_t i = 0; i < data.pixels.size(); i++) images.data()[i] = data.pixels[i];
        REQUIRE(f.train(p, images, labels, dropout_seed, 0, loss, scores, grad) == 0);

        const auto want = kiln::reference::reference_train_step(net, params, data.pixels.data(), data.labels.data(),
                                                                n, dropout_seed);
        CHECK(std::abs(loss() - want.loss) <= 1e-12 * want.loss);
        for (int i = 0; i < n * int(in.classes); i++)
            REQUIRE(std::abs(scores.data()[i] - want.scores[size_t(i)]) <= 1e-11 * std::max(1.0, std::abs(want.scores[size_t(i)])));
        for (const kiln::model::ParamTensor &t : net.params) {
            double scale = 0;
            for (int64_t i = t.offset; i < t.offset + t.count; i++)
                scale = std::max(scale, std::abs(want.grad[size_t(i)]));
            for (int64_t i = t.offset; i < t.offset + t.count; i++) {
                INFO(t.name << " element " << i - t.offset);
                REQUIRE(std::abs(grad(int(i)) - want.grad[size_t(i)]) <= 1e-10 * std::max(scale, 1e-3));
            }
        }
    }
}
