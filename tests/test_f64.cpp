// The generator's float64 training step (kiln_train_f64), compiled ahead of time for
// lenet5, agrees with the independent double-precision reference to near machine
// precision: the variant gradient checks can rely on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "HalideBuffer.h"
#include "compiled.h"
#include "init.h"
#include "kiln_lenet5_train_f64.h"
#include "reference.h"
#include "train.h"

TEST_CASE("lenet5's float64 training step matches the double-precision reference", "[f64]") {
    const kiln::model::Network net = kiln::find_model("lenet5").net();
    const int n = 8;
    const kiln::ImageSet data =
        kiln::to_image_set(kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, true), n), net, "mnist");
    const std::vector<float> params = kiln::initial_params(net, 3);

    Halide::Runtime::Buffer<double> p(int(net.param_count)), images(28, 28, 1, n), grad(int(net.param_count));
    Halide::Runtime::Buffer<double> scores(10, n);
    Halide::Runtime::Buffer<double> loss = Halide::Runtime::Buffer<double>::make_scalar();
    Halide::Runtime::Buffer<int32_t> labels(const_cast<int32_t *>(data.labels.data()), n);
    for (int i = 0; i < net.param_count; i++) p(i) = params[size_t(i)];
    for (size_t i = 0; i < data.pixels.size(); i++) images.data()[i] = data.pixels[i];
    REQUIRE(kiln_lenet5_train_f64(p, images, labels, loss, scores, grad) == 0);

    const auto want = kiln::reference::reference_train_step(net, params, data.pixels.data(), data.labels.data(), n);
    CHECK(std::abs(loss() - want.loss) <= 1e-12 * want.loss);
    for (const kiln::model::ParamTensor &t : net.params) {
        double scale = 0;
        for (int64_t i = t.offset; i < t.offset + t.count; i++) scale = std::max(scale, std::abs(want.grad[size_t(i)]));
        for (int64_t i = t.offset; i < t.offset + t.count; i++) {
            INFO(t.name << " element " << i - t.offset);
            REQUIRE(std::abs(grad(int(i)) - want.grad[size_t(i)]) <= 1e-11 * scale);
        }
    }
}
