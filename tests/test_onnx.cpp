// ONNX export (runtime/predict/onnx_export.h) read back by another runtime, OpenCV's DNN
// module (Debian's 4.6):
//  - a network with every layer kind and activation (including those no shipped
//    network has: avgpool, globalavgpool, tanh, sigmoid, batchnorm after dense,
//    a convolution after a dense layer), with random weights and running
//    statistics, against the float64 reference's evaluation-mode forward pass;
//    the file also passes the onnx package's checker with shape inference;
//  - every shipped network (networks/*.toml), trained for one short epoch and
//    exported by `kiln export`, on the full MNIST test set: OpenCV's predictions
//    must equal the compiled forward pass's (what `kiln eval` counts) for all
//    10,000 images and every score must be within 1e-4.
#include <catch2/catch.hpp>

#include <opencv2/dnn.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sys/wait.h>
#include <random>
#include <sstream>

#include "checkpoint.h"
#include "compiled.h"
#include "idx.h"
#include "init.h"
#include "onnx_export.h"
#include "reference.h"
#include "temp_dir.h"
#include "train.h"

namespace {

using kiln::model::Network;
constexpr double kScoreTolerance = 1e-4;

// OpenCV's scores for n images, (n, c, y, x) floats in [0, 1].
std::vector<float> opencv_scores(cv::dnn::Net &net, const Network &desc, const float *images, int n) {
    const std::vector<int> shape = {n, int(desc.input.channels), int(desc.input.height), int(desc.input.width)};
    const cv::Mat blob(shape, CV_32F, const_cast<float *>(images));
    net.setInput(blob, "pixels");
    const cv::Mat out = net.forward("scores");
    REQUIRE(out.total() == size_t(n) * size_t(desc.input.classes));
    return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
}

int argmax(const float *s, int classes) { return int(std::max_element(s, s + classes) - s); }

const char *const kEveryKind = R"(
[input]
width = 28
height = 28
channels = 1
classes = 10
mean = 0.1307
std = 0.3081

[[layer]]
type = "conv"
filters = 4
kernel = 5
stride = 2
padding = 1

[[layer]]
type = "batchnorm"
activation = "sigmoid"

[[layer]]
type = "avgpool"
size = 3
stride = 2

[[layer]]
type = "conv"
filters = 6
kernel = 3
padding = "same"
activation = "relu"

[[layer]]
type = "maxpool"
size = 2

[[layer]]
type = "dropout"
rate = 0.5

[[layer]]
type = "dense"
units = 12
activation = "tanh"

[[layer]]
type = "batchnorm"
activation = "relu"

[[layer]]
type = "conv"
filters = 8
kernel = 1
activation = "sigmoid"

[[layer]]
type = "globalavgpool"

[[layer]]
type = "dense"
units = 10
)";

// Initial weights, then every batchnorm's weight, bias and running statistics
// drawn at random (they start as 1, 0, 0, 1, which would hide mistakes).
std::vector<float> random_params(const Network &net) {
    std::vector<float> p = kiln::initial_params(net, 3);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> shift(-0.5f, 0.5f), scale(0.5f, 2.0f);
    for (const kiln::model::Layer &l : net.layers) {
        if (!l.is("batchnorm")) continue;
        for (int t : {l.bias, l.running_mean})
            for (int64_t i = 0; i < net.params[size_t(t)].count; i++) p[size_t(net.params[size_t(t)].offset + i)] = shift(rng);
        for (int t : {l.weight, l.running_var})
            for (int64_t i = 0; i < net.params[size_t(t)].count; i++) p[size_t(net.params[size_t(t)].offset + i)] = scale(rng);
    }
    return p;
}

}  // namespace

TEST_CASE("onnx: every layer kind and activation runs in OpenCV as the float64 reference computes it") {
    const Network net = kiln::model::parse_network(kEveryKind, "every-kind.toml");
    const std::vector<float> params = random_params(net);
    const kiln::ImageSet test =
        kiln::to_image_set(kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, false), 100), net, "test");
    kiln::testing::TempDir dir("onnx-kinds");
    const std::string file = dir.file("every-kind.onnx");
    kiln::write_onnx(file, net, params);

    cv::dnn::Net cv_net = cv::dnn::readNetFromONNX(file);
    const std::vector<float> got = opencv_scores(cv_net, net, test.pixels.data(), int(test.count));
    const std::vector<double> want = kiln::reference::reference_forward(net, params, test.pixels.data(), int(test.count));
    double max_difference = 0, max_score = 0;
    for (size_t i = 0; i < want.size(); i++) {
        max_difference = std::max(max_difference, std::abs(double(got[i]) - want[i]));
        max_score = std::max(max_score, std::abs(want[i]));
    }
    INFO("largest score " << max_score);
    CHECK(max_score > 0.1);  // the scores are not all alike
    CHECK(max_difference <= kScoreTolerance);

    const std::string check = std::string(KILN_PYTHON) + " -c 'import onnx, sys; m = onnx.load(sys.argv[1]); "
                              "onnx.checker.check_model(m, full_check=True)' " + file;
    CHECK(std::system(check.c_str()) == 0);
}

TEST_CASE("onnx: kiln export of every shipped network agrees with kiln on the full test set") {
    const kiln::Dataset train_data = kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, true), 2000);
    const kiln::Dataset test_data = kiln::load_mnist(KILN_MNIST_DIR, false);
    const kiln::Dataset test_few = kiln::take_first(test_data, 100);  // for train()'s report only
    for (const kiln::CompiledModel &model : kiln::compiled_models()) {
        if (std::string(model.entry().file).find('/') != std::string::npos) continue;  // networks/*.toml only
        const Network &net = model.net();
        {
            // One short epoch (held-out images kept where a plateau schedule needs them).
            kiln::testing::TempDir dir("onnx-" + net.name);
            kiln::TrainOptions opts;
            opts.settings = net.train;
            opts.settings.epochs = 1;
            opts.settings.validation = std::min<int64_t>(opts.settings.validation, 500);
            opts.out_dir = dir.path.string();
            opts.progress = false;
            const kiln::ImageSet train_set = kiln::to_image_set(train_data, net, "train");
            const kiln::ImageSet test_set = kiln::to_image_set(test_data, net, "test");
            std::ostringstream log;
            const kiln::TrainResult trained = kiln::train(model, opts, train_set, kiln::to_image_set(test_few, net, "test"), log);
            const std::string checkpoint = dir.file("checkpoint.safetensors"), onnx = dir.file(net.name + ".onnx");
            const std::string command = std::string(KILN_BINARY) + " export " + net.name + " --checkpoint " +
                                        checkpoint + " --onnx " + onnx + " > /dev/null";
            REQUIRE(std::system(command.c_str()) == 0);

            cv::dnn::Net cv_net = cv::dnn::readNetFromONNX(onnx);
            const int classes = int(net.input.classes), batch = 500;
            const size_t image_size = size_t(net.input.shape().size());
            std::vector<float> kiln_scores(size_t(batch) * classes);
            int64_t different = 0, cv_correct = 0;
            double max_difference = 0;
            for (int64_t start = 0; start < test_set.count; start += batch) {
                const float *images = test_set.pixels.data() + size_t(start) * image_size;
                const int n = int(std::min<int64_t>(batch, test_set.count - start));
                model.forward(trained.params.data(), images, n, kiln_scores.data());
                const std::vector<float> cv_scores = opencv_scores(cv_net, net, images, n);
                for (int i = 0; i < n; i++) {
                    const int k = argmax(kiln_scores.data() + size_t(i) * classes, classes);
                    const int c = argmax(cv_scores.data() + size_t(i) * classes, classes);
                    different += k != c;
                    cv_correct += c == test_set.labels[size_t(start + i)];
                }
                for (size_t j = 0; j < size_t(n) * classes; j++)
                    max_difference = std::max(max_difference, double(std::abs(kiln_scores[j] - cv_scores[j])));
            }
            const kiln::Evaluation e = kiln::evaluate(model, trained.params, test_set);
            INFO(net.name << ": kiln " << e.correct << " correct, OpenCV " << cv_correct << ", " << different
                          << " predictions differ, largest score difference " << max_difference);
            CHECK(e.correct > 3000);  // trained: far above chance (1,000)
            CHECK(different == 0);
            CHECK(cv_correct == e.correct);
            CHECK(max_difference <= kScoreTolerance);
            WARN(net.name << ": " << e.correct << " of " << e.count << " correct in kiln and OpenCV, largest score "
                          << "difference " << max_difference);
        }
    }
}

TEST_CASE("onnx: kiln export refuses a checkpoint of another network and an unwritable file, in one line") {
    kiln::testing::TempDir dir("onnx-errors");
    const kiln::CompiledModel model = kiln::find_model("logistic");
    kiln::Checkpoint ck;
    ck.params = kiln::initial_params(model.net(), 1);
    kiln::save_checkpoint(dir.file("logistic.safetensors"), model.net(), ck);
    const std::string export_ = std::string(KILN_BINARY) + " export ", err = " 2> " + dir.file("stderr");
    const auto stderr_text = [&] {
        std::ifstream in(dir.file("stderr"));
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    CHECK(WEXITSTATUS(std::system((export_ + "mlp --checkpoint " + dir.file("logistic.safetensors") + " --onnx " +
                                   dir.file("mlp.onnx") + err).c_str())) == 1);
    CHECK(stderr_text().rfind(dir.file("logistic.safetensors") + ": error: checkpoint is for network 'logistic'", 0) == 0);
    const std::string unwritable = dir.file("no/such/folder.onnx");
    CHECK(WEXITSTATUS(std::system((export_ + "logistic --checkpoint " + dir.file("logistic.safetensors") + " --onnx " +
                                   unwritable + err).c_str())) == 1);
    CHECK(stderr_text() == unwritable + ": error: cannot write: No such file or directory\n");
    CHECK(WEXITSTATUS(std::system((export_ + "logistic --onnx x.onnx" + err).c_str())) == 2);  // no --checkpoint
}
