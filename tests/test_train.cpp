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
    kiln::set_thread_count(threads);
    opts.progress = false;
    std::ostringstream log;
    kiln::TrainResult r = kiln::train(model, opts, data.train, data.test, log);
    kiln::set_thread_count(0);
    return r;
}

// The run of `opts` interrupted after epoch `stop` (as a killed process leaves
// it: the checkpoint of that epoch) in a folder of its own, then resumed there.
kiln::TrainResult interrupted_and_resumed(const kiln::CompiledModel &model, const kiln::TrainOptions &opts,
                                          const Data &data, const std::string &name, int64_t stop = 1) {
    kiln::TrainOptions first = opts;
    first.out_dir = fresh_dir(name).string();
    first.after_epoch = [stop](int64_t epoch) { return epoch < stop; };
    CHECK(run(model, first, data, 2).epochs == stop);
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

TEST_CASE("the plateau schedule drops the rate on the validation loss, and resumes exactly", "[train][plateau]") {
    const kiln::CompiledModel model = kiln::find_model("lenet5");
    const Data data = mnist(model.net(), 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = model.net().train;
    opts.settings.epochs = 3;
    opts.settings.lr_schedule = "plateau";
    opts.settings.lr_patience = 0;
    opts.settings.lr_gamma = 0.5;
    opts.settings.learning_rate = 0.2;  // high enough that the validation loss goes up as well as down
    opts.settings.validation = 200;
    opts.out_dir = fresh_dir("plateau").string();
    run(model, opts, data, 2);
    const kiln::Checkpoint third = kiln::load_checkpoint(opts.out_dir + "/checkpoint.safetensors", model.net());
    INFO(std::ifstream(opts.out_dir + "/metrics.csv").rdbuf());
    REQUIRE(third.metadata.count("plateau_lr") == 1);
    // The rate has dropped by the end of epoch 3, so the fourth epoch of a run
    // resumed there needs the saved state (a fresh one would start at the full rate).
    REQUIRE(std::stod(third.metadata.at("plateau_lr")) < opts.settings.learning_rate);

    opts.settings.epochs = 4;
    const kiln::TrainResult straight = run(model, opts, data, 2);
    CHECK(interrupted_and_resumed(model, opts, data, "plateau-interrupted", 3).params == straight.params);

    opts.settings.validation = 0;
    CHECK_THROWS_WITH(run(model, opts, data, 2),
                      Catch::Matchers::StartsWith("lenet5.toml: error: [train] lr_schedule = \"plateau\"") &&
                          Catch::Matchers::Contains("--validation N"));
    fs::remove_all(opts.out_dir);
}

TEST_CASE("batchnorm's running statistics follow the batches, untouched by the optimizer, and resume exactly",
          "[train][batchnorm]") {
    const kiln::CompiledModel model = kiln::find_model("bn-small");
    const kiln::model::Network &net = model.net();
    const Data data = mnist(net, 1000, 500);
    kiln::TrainOptions opts;
    opts.settings = net.train;
    opts.settings.epochs = 2;
    opts.settings.weight_decay = 0.01;  // would pull the buffers towards 0 if it reached them
    opts.out_dir = fresh_dir("batchnorm").string();
    const kiln::TrainResult straight = run(model, opts, data, 2);
    CHECK(straight.test.accuracy > 0.5);
    const kiln::Checkpoint ck = kiln::load_checkpoint(opts.out_dir + "/checkpoint.safetensors", net);
    const std::vector<float> &momentum = ck.optimizer_state.at("momentum");
    for (const kiln::model::ParamTensor &t : net.params) {
        if (!t.buffer) continue;
        INFO(t.name);
        bool moved = false;
        for (int64_t i = t.offset; i < t.offset + t.count; i++) {
            CHECK(momentum[size_t(i)] == 0.0f);
            moved = moved || ck.params[size_t(i)] != (t.name.find("running_var") != std::string::npos ? 1.0f : 0.0f);
            if (t.name.find("running_var") != std::string::npos) CHECK(ck.params[size_t(i)] > 0);
        }
        CHECK(moved);
    }
    CHECK(interrupted_and_resumed(model, opts, data, "batchnorm-interrupted").params == straight.params);
    fs::remove_all(opts.out_dir);
}
