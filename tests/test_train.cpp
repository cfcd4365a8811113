// End to end on real MNIST: a short training run must learn, runs are deterministic,
// and an interrupted-and-resumed run ends with the same weights as an uninterrupted one.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "HalideRuntime.h"
#include "checkpoint.h"
#include "train.h"

namespace {

namespace fs = std::filesystem;

struct Data {
    kiln::ImageSet train, test;
};

// The first `train_count` training images and the first `test_count` test images.
Data mnist(const kiln::model::Network &net, int64_t train_count, int64_t test_count) {
    return {kiln::to_image_set(kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, true), train_count), net, "train"),
            kiln::to_image_set(kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, false), test_count), net, "test")};
}

fs::path fresh_dir(const std::string &name) {
    fs::path dir = fs::temp_directory_path() / ("kiln-test-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

kiln::TrainResult run(const kiln::CompiledModel &model, kiln::TrainOptions opts, const Data &data, int threads) {
    halide_set_num_threads(threads);
    opts.progress = false;
    std::ostringstream log;
    kiln::TrainResult r = kiln::train(model, opts, data.train, data.test, log);
    halide_set_num_threads(0);
    return r;
}

// The run of `opts` interrupted after its first epoch (as a killed process leaves
// it: the checkpoint of that epoch) in a folder of its own, then resumed there.
kiln::TrainResult interrupted_and_resumed(const kiln::CompiledModel &model, const kiln::TrainOptions &opts,
                                          const Data &data, const std::string &name) {
    kiln::TrainOptions first = opts;
    first.out_dir = fresh_dir(name).string();
    first.after_epoch = [](int64_t epoch) { return epoch < 1; };
    CHECK(run(model, first, data, 2).epochs == 1);
    kiln::TrainOptions rest = opts;
    rest.out_dir = first.out_dir;
    rest.resume = first.out_dir + "/checkpoint.safetensors";
    const kiln::TrainResult resumed = run(model, rest, data, 2);
    fs::remove_all(first.out_dir);
    return resumed;
}

}  // namespace

TEST_CASE("lenet5 learns MNIST: one epoch on 10,000 images reaches 96% on the full test set", "[train][mnist]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 10000, 10000);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 1;
    opts.out_dir = fresh_dir("learn").string();
    const kiln::TrainResult r = run(model, opts, data, 2);
    CHECK(r.test.count == 10000);
    CHECK(r.test.accuracy >= 0.96);

    // The checkpoint holds exactly the weights evaluated, and metrics.csv one row per epoch.
    const kiln::Checkpoint ck = kiln::load_checkpoint(opts.out_dir + "/checkpoint.safetensors", model.net());
    CHECK(ck.epoch == 1);
    CHECK(ck.params == r.params);
    CHECK(kiln::evaluate(model, ck.params, data.test).correct == r.test.correct);
    std::ifstream metrics(opts.out_dir + "/metrics.csv");
    std::string header, row, extra;
    REQUIRE(std::getline(metrics, header));
    REQUIRE(std::getline(metrics, row));
    CHECK(row.rfind("1,", 0) == 0);
    CHECK_FALSE(std::getline(metrics, extra));
    fs::remove_all(opts.out_dir);
}

TEST_CASE("training is deterministic: same seed gives identical weights, whatever the thread count",
          "[train][determinism]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 2;
    opts.out_dir = fresh_dir("det").string();
    const kiln::TrainResult a = run(model, opts, data, 2);
    const kiln::TrainResult b = run(model, opts, data, 2);
    const kiln::TrainResult one_thread = run(model, opts, data, 1);
    CHECK(a.params == b.params);
    CHECK(a.params == one_thread.params);

    opts.settings.seed += 1;
    const kiln::TrainResult other_seed = run(model, opts, data, 2);
    CHECK(a.params != other_seed.params);
    fs::remove_all(opts.out_dir);
}

TEST_CASE("a resumed run ends with the same weights as an uninterrupted one", "[train][resume]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 3;
    opts.out_dir = fresh_dir("straight").string();
    const kiln::TrainResult straight = run(model, opts, data, 2);

    const kiln::TrainResult resumed = interrupted_and_resumed(model, opts, data, "interrupted");
    CHECK(resumed.epochs == 3);
    CHECK(resumed.params == straight.params);
    fs::remove_all(opts.out_dir);
}

TEST_CASE("augmented training is deterministic, resumable, and differs from plain training", "[train][augment]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 2;
    opts.settings.validation = 200;
    opts.out_dir = fresh_dir("augment").string();
    const kiln::TrainResult plain = run(model, opts, data, 2);
    opts.settings.augment.shift = 2;
    opts.settings.augment.rotate = 10;
    opts.settings.augment.scale = 0.1;
    const kiln::TrainResult a = run(model, opts, data, 2);
    const kiln::TrainResult b = run(model, opts, data, 1);
    CHECK(a.params == b.params);
    CHECK(a.params != plain.params);

    CHECK(interrupted_and_resumed(model, opts, data, "augment-interrupted").params == a.params);

    // The held-out images appear as validation columns in metrics.csv.
    std::ifstream metrics(opts.out_dir + "/metrics.csv");
    std::string header, row;
    REQUIRE(std::getline(metrics, header));
    CHECK(header.find("validation_accuracy") != std::string::npos);
    REQUIRE(std::getline(metrics, row));
    CHECK(row.find(",,") == std::string::npos);
    fs::remove_all(opts.out_dir);
}

TEST_CASE("with ema the checkpoint holds the averaged weights it evaluated, and resumes exactly", "[train][ema]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 2;
    opts.settings.ema = 0.99;
    opts.out_dir = fresh_dir("ema").string();
    const kiln::TrainResult straight = run(model, opts, data, 2);
    const kiln::Checkpoint ck = kiln::load_checkpoint(opts.out_dir + "/checkpoint.safetensors", model.net());
    CHECK(ck.params == straight.params);
    REQUIRE(ck.optimizer_state.count("trained_weights") == 1);
    CHECK(ck.optimizer_state.at("trained_weights") != ck.params);  // an average is not the last weights
    CHECK(kiln::evaluate(model, ck.params, data.test).correct == straight.test.correct);

    CHECK(interrupted_and_resumed(model, opts, data, "ema-interrupted").params == straight.params);
    fs::remove_all(opts.out_dir);
}
