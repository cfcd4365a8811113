// The hidden-layer study's parts: the kiln_features pipeline against the
// reference, linear probes, the study plan's parser, and `kiln study`'s
// bookkeeping (tables, resuming, refusing mixed settings) on tiny real runs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "compiled.h"
#include "init.h"
#include "model/study_plan.h"
#include "probe.h"
#include "reference.h"
#include "softmax_probe.h"
#include "study.h"
#include "temp_dir.h"
#include "train.h"

namespace {

using kiln::CompiledModel;
using kiln::testing::TempDir;

const std::string kPlan = std::string(KILN_SOURCE_DIR) + "/networks/study/study.toml";
const std::string kStudyDir = std::string(KILN_SOURCE_DIR) + "/networks/study/";

kiln::ImageSet images(const kiln::model::Network &net, bool train, int64_t n) {
    return kiln::to_image_set(kiln::take_first(kiln::load_mnist(KILN_MNIST_DIR, train), n), net, "mnist");
}

std::string read(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines(const std::string &text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string line; std::getline(s, line);) out.push_back(line);
    return out;
}

// A column of a CSV text, by header name.
std::vector<std::string> column(const std::string &csv, const std::string &name) {
    std::vector<std::string> rows = lines(csv), out;
    std::vector<std::string> header;
    std::stringstream h(rows.at(0));
    for (std::string cell; std::getline(h, cell, ',');) header.push_back(cell);
    const size_t at = size_t(std::find(header.begin(), header.end(), name) - header.begin());
    REQUIRE(at < header.size());
    for (size_t r = 1; r < rows.size(); r++) {
        std::vector<std::string> cells;
        std::stringstream c(rows[r]);
        for (std::string cell; std::getline(c, cell, ',');) cells.push_back(cell);
        out.push_back(cells.at(at));
    }
    return out;
}

kiln::StudyOptions tiny_study(const TempDir &dir, std::vector<std::string> networks, int64_t epochs, int64_t seeds) {
    kiln::StudyOptions o;
    o.plan_path = kPlan;
    for (const std::string &n : networks) o.files.push_back(kStudyDir + n + ".toml");
    o.epochs = epochs;
    o.seeds = seeds;
    o.out_dir = dir.path.string();
    o.data_dir = KILN_MNIST_DIR;
    o.limit_train = 1000;
    o.limit_test = 300;
    o.progress = false;
    return o;
}

}  // namespace

TEST_CASE("every network's features pipeline lays out each layer's output as the reference computes it") {
    const int n = 3;
    for (const CompiledModel &m : kiln::compiled_models()) {
        const kiln::model::Network &net = m.net();
        INFO("network " << net.name);
        const kiln::ImageSet data = images(net, false, n);
        const std::vector<float> params = kiln::initial_params(net, 5);
        const int64_t count = kiln::model::feature_count(net);
        std::vector<float> features(size_t(n * count));
        m.features(params.data(), data.pixels.data(), n, features.data());
        const auto want = kiln::reference::reference_layer_outputs(net, params, data.pixels.data(), n);
        for (size_t l = 0; l < net.layers.size(); l++) {
            INFO("layer " << net.layers[l].name);
            const int64_t size = net.layers[l].out.size(), offset = kiln::model::feature_offset(net, l);
            double largest = 1e-3, worst = 0;
            for (double v : want[l]) largest = std::max(largest, std::abs(v));
            for (int i = 0; i < n; i++)
                for (int64_t k = 0; k < size; k++)
                    worst = std::max(worst, std::abs(double(features[size_t(i * count + offset + k)]) -
                                                     want[l][size_t(i * size + k)]));
            CHECK(worst <= 1e-4 * largest);
        }
    }
}

TEST_CASE("probes see the input and every hidden layer but dropout, pooled to fit") {
    const CompiledModel m = kiln::find_model("siddique2019");
    std::vector<std::string> names;
    for (const kiln::ProbeLayer &l : kiln::probe_layers(m.net(), 8192)) names.push_back(l.name);
    CHECK(names == std::vector<std::string>{"input", "conv1", "maxpool1", "conv2", "maxpool2", "dense1"});
    const std::vector<kiln::ProbeLayer> small = kiln::probe_layers(m.net(), 1000);
    CHECK(small[0].features == 784);  // the input fits
    CHECK(small[1].pool == 4);        // conv1, 16x28x28: 2x2 pooled twice to 16x7x7
    CHECK(small[1].features == 16 * 7 * 7);
    CHECK(small[3].offset == kiln::model::feature_offset(m.net(), 2));
}

// Three Adam steps of softmax regression in float64, written plainly: the
// blocked products, padding and tails (37 features, 13 classes, 7 images) must
// give the same weights.
TEST_CASE("the probes' softmax regression matches a plain float64 one") {
    const int64_t D = 37, K = 13;
    const int n = 7;
    kiln::SoftmaxProbe probe(D, int(K));
    const int64_t Dp = probe.row_stride();
    REQUIRE(Dp == 48);
    std::vector<float> x(size_t(n * Dp), 0.0f);  // (N, Dp)
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) {
        labels[size_t(i)] = int32_t((5 * i + 3) % K);
        for (int64_t j = 0; j < D; j++) x[size_t(i * Dp + j)] = float(std::sin(0.7 * double(i * D + j)));
    }
    std::vector<double> w(static_cast<size_t>(K * D)), b(static_cast<size_t>(K)), mw(w.size()), vw(w.size()), mb(b.size()), vb(b.size());
    auto adam = [](std::vector<double> &p, const std::vector<double> &g, std::vector<double> &m,
                   std::vector<double> &v, double lr, int t) {
        for (size_t i = 0; i < p.size(); i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            const double m_hat = m[i] / (1 - std::pow(0.9, t)), v_hat = v[i] / (1 - std::pow(0.999, t));
            p[i] -= lr * m_hat / (std::sqrt(v_hat) + 1e-8);
        }
    };
    for (int t = 1; t <= 3; t++) {
        std::vector<double> gw(w.size()), gb(b.size());
        int64_t correct = 0;
        for (int i = 0; i < n; i++) {
            std::vector<double> s(static_cast<size_t>(K));
            for (int64_t k = 0; k < K; k++) {
                s[size_t(k)] = b[size_t(k)];
                for (int64_t j = 0; j < D; j++) s[size_t(k)] += w[size_t(k * D + j)] * x[size_t(i * Dp + j)];
            }
            correct += std::max_element(s.begin(), s.end()) - s.begin() == labels[size_t(i)];
            const double top = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (double &v : s) sum += v = std::exp(v - top);
            for (int64_t k = 0; k < K; k++) {
                const double d = (s[size_t(k)] / sum - (k == labels[size_t(i)])) / n;
                gb[size_t(k)] += d;
                for (int64_t j = 0; j < D; j++) gw[size_t(k * D + j)] += d * x[size_t(i * Dp + j)];
            }
        }
        CHECK(probe.step(x.data(), labels.data(), n, 0.01) == correct);
        adam(w, gw, mw, vw, 0.01, t);
        adam(b, gb, mb, vb, 0.01, t);
    }
    for (int64_t k = 0; k < K; k++) {
        CHECK(probe.bias()[size_t(k)] == Approx(b[size_t(k)]).margin(1e-6));
        for (int64_t j = 0; j < Dp; j++)
            CHECK(probe.weights()[size_t(k * Dp + j)] == Approx(j < D ? w[size_t(k * D + j)] : 0.0).margin(1e-6));
    }
}

TEST_CASE("linear probes learn, and do not depend on the thread count") {
    const CompiledModel m = kiln::find_model("conv0-dense1");
    const std::vector<float> params = kiln::initial_params(m.net(), 1);
    const kiln::ImageSet train = images(m.net(), true, 3000), test = images(m.net(), false, 500);
    kiln::ProbeSettings s;
    s.epochs = 2;
    s.batch = 32;
    s.threads = 1;
    const auto one = kiln::run_probes(m, params, train, test, s);
    s.threads = 2;
    const auto two = kiln::run_probes(m, params, train, test, s);
    REQUIRE(one.size() == 2);  // input, dense1
    CHECK(one[0].test_accuracy > 0.8);  // softmax regression on pixels, 3000 images
    CHECK(one[1].test_accuracy > 0.6);  // on 128 random ReLU features of them (chance: 0.1)
    for (size_t i = 0; i < one.size(); i++) {
        CHECK(one[i].test_accuracy == two[i].test_accuracy);
        CHECK(one[i].train_accuracy == two[i].train_accuracy);
    }
}

TEST_CASE("a study writes its tables, and run again trains nothing twice") {
    TempDir dir("study");
    kiln::StudyOptions o = tiny_study(dir, {"conv0-dense0", "conv2-dense1-half"}, 1, 2);
    std::ostringstream log;
    const kiln::StudySummary first = kiln::run_study(o, log);
    CHECK(first.complete);
    CHECK(first.runs == 4);
    CHECK(first.trained == 4);
    const std::string results = read(dir.file("results.csv"));
    CHECK(column(results, "network") ==
          std::vector<std::string>{"conv0-dense0", "conv0-dense0", "conv2-dense1-half", "conv2-dense1-half"});
    CHECK(column(results, "seed") == std::vector<std::string>{"1", "2", "1", "2"});
    CHECK(column(results, "hidden_conv") == std::vector<std::string>{"0", "0", "2", "2"});
    CHECK(column(results, "hidden_dense") == std::vector<std::string>{"0", "0", "1", "1"});
    CHECK(column(results, "params")[2] == std::to_string(kiln::find_model("conv2-dense1-half").net().param_count));
    for (const std::string &a : column(results, "test_accuracy")) CHECK(std::stod(a) > 0.5);
    CHECK(lines(read(dir.file("curves.csv"))).size() == 1 + 4);  // a row per run and epoch
    // Probes on seed 1: conv0-dense0 has only its input; the other its input and 5 hidden layers.
    CHECK(column(read(dir.file("probes.csv")), "layer") ==
          std::vector<std::string>{"input", "input", "conv1", "maxpool1", "conv2", "maxpool2", "dense1"});
    CHECK(read(dir.file("inspect/conv2-dense1-half.json")).find("\"confusion\"") != std::string::npos);
    CHECK(read(dir.file("study.json")).find("\"complete\": true") != std::string::npos);

    const kiln::StudySummary again = kiln::run_study(o, log);
    CHECK(again.trained == 0);
    CHECK(again.skipped == 4);
    CHECK(read(dir.file("results.csv")) == results);
}

TEST_CASE("an interrupted study, run again, ends as an uninterrupted one") {
    TempDir whole("study-whole"), cut("study-cut");
    std::ostringstream log;
    kiln::StudyOptions o = tiny_study(whole, {"conv0-dense1"}, 2, 1);
    REQUIRE(kiln::run_study(o, log).complete);

    kiln::StudyOptions c = tiny_study(cut, {"conv0-dense1"}, 2, 1);
    int asked = 0;
    c.keep_going = [&] { return ++asked < 1; };  // stop after the first epoch
    const kiln::StudySummary stopped = kiln::run_study(c, log);
    CHECK_FALSE(stopped.complete);
    CHECK(column(read(cut.file("results.csv")), "network").empty());
    c.keep_going = nullptr;
    CHECK(kiln::run_study(c, log).complete);

    const std::string a = read(whole.file("results.csv")), b = read(cut.file("results.csv"));
    CHECK(column(a, "test_accuracy") == column(b, "test_accuracy"));
    CHECK(column(a, "test_loss") == column(b, "test_loss"));
    CHECK(read(whole.file("probes.csv")) == read(cut.file("probes.csv")));
}

TEST_CASE("a study refuses a folder made with other settings, and network files it cannot compile") {
    TempDir dir("study-refuse");
    std::ostringstream log;
    kiln::StudyOptions o = tiny_study(dir, {"conv0-dense0"}, 1, 1);
    REQUIRE(kiln::run_study(o, log).complete);
    o.epochs = 2;
    CHECK_THROWS_WITH(kiln::run_study(o, log), Catch::Contains("study.json: error: this folder holds a study with other settings"));

    TempDir other("study-other");
    std::string text = read(kStudyDir + "conv0-dense0.toml");
    std::ofstream(other.file("renamed.toml")) << std::string(text).replace(text.find("conv0-dense0"), 12, "not-compiled");
    kiln::StudyOptions r = tiny_study(other, {}, 1, 1);
    // Files not compiled in are compiled on demand (tests/cli_test.sh does it for
    // real); without the generator that fails with one line naming it.
    setenv("KILN_GENERATOR", other.file("no-generator").c_str(), 1);
    setenv("KILN_CACHE", other.file("cache").c_str(), 1);
    r.files = {other.file("renamed.toml")};
    CHECK_THROWS_WITH(kiln::run_study(r, log), Catch::Contains("no-generator: error: kiln's Halide generator is missing"));
    std::ofstream(other.file("changed.toml")) << std::string(text).replace(text.find("units = 10"), 10, "units = 10\nactivation = \"relu\"");
    r.files = {other.file("changed.toml")};
    CHECK_THROWS_WITH(kiln::run_study(r, log), Catch::Contains("kiln's Halide generator is missing"));
    unsetenv("KILN_GENERATOR");
    unsetenv("KILN_CACHE");
}

TEST_CASE("the deep study's plan: every network a valid file beside it, plain and residual twins alike in size") {
    const std::string dir = std::string(KILN_SOURCE_DIR) + "/networks/study/depth";
    const kiln::model::StudyPlan plan = kiln::model::load_study_plan(dir + "/study.toml");
    CHECK(plan.networks.size() == 10);
    for (const std::string &name : plan.networks) {
        INFO(name);
        const kiln::model::Network net = kiln::model::load_network(dir + "/" + name + ".toml");
        CHECK(net.name == name);
        if (name.rfind("plain", 0) == 0) {  // its residual twin: the same parameters; its sums add a few FLOPs
            const kiln::model::Network twin = kiln::model::load_network(dir + "/residual" + name.substr(5) + ".toml");
            CHECK(twin.param_count == net.param_count);
            CHECK(twin.flops > net.flops);
            CHECK(double(twin.flops) < double(net.flops) * 1.01);
        }
    }
}

TEST_CASE("the study plan: the shipped one parses, and mistakes name file, line and column") {
    const kiln::model::StudyPlan plan = kiln::model::load_study_plan(kPlan);
    CHECK(plan.networks.size() >= 12);
    CHECK(plan.seeds == 3);
    for (const std::string &name : plan.networks) CHECK_NOTHROW(kiln::find_model(name));

    const std::string head = "[study]\nnetworks = [\"a\", \"b\"]\n";
    using kiln::model::parse_study_plan;
    CHECK_THROWS_WITH(parse_study_plan(head + "[[axis]]\nname = \"x\"\nnetworks = [\"a\", \"c\"]\n", "p.toml"),
                      "p.toml:5:12: error: axis 1: \"c\" is not in [study] networks");
    CHECK_THROWS_WITH(parse_study_plan(head + "[[axis]]\nname = \"x\"\nx = \"depth\"\nnetworks = [\"a\"]\n", "p.toml"),
                      Catch::StartsWith("p.toml:5:5: error: axis 1: 'x' must be"));
    CHECK_THROWS_WITH(parse_study_plan("[study]\nnetworks = [\"a\", \"a\"]\n", "p.toml"),
                      "p.toml:2:18: error: 'networks' lists \"a\" twice");
    CHECK_THROWS_WITH(parse_study_plan(head + "[probe]\nepochs = 0\n", "p.toml"), Catch::StartsWith("p.toml:4:10: error:"));
    CHECK_THROWS_WITH(parse_study_plan(head + "colour = 1\n", "p.toml"), Catch::StartsWith("p.toml:3:1: error:"));
    CHECK_THROWS_WITH(parse_study_plan("networks = 1\n", "p.toml"), Catch::StartsWith("p.toml:1:1: error:"));
}
