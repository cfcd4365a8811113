// The network model: parsing the TOML schema, the resolved description, and one
// test per validation rule, each pinning the line (and column) of the error.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model/kinds/batchnorm.h"
#include "model/kinds/conv.h"
#include "model/kinds/dropout.h"
#include "model/kinds/pool.h"
#include "model/network.h"

using namespace kiln::model;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// A file from its lines: line N of the file is lines[N - 1].
std::string toml_text(const std::vector<std::string> &lines) {
    std::string out;
    for (const std::string &l : lines) out += l + '\n';
    return out;
}

// Lines 1-5: a valid [input] of 8x8x1 images in 2 classes; `lines` start at line 6.
// `more` follows `lines`.
std::string with_input(std::vector<std::string> lines, const std::vector<std::string> &more = {}) {
    lines.insert(lines.begin(),
                 {"[input]", "width = 8", "height = 8", "channels = 1", "classes = 2"});
    lines.insert(lines.end(), more.begin(), more.end());
    return toml_text(lines);
}

// A last layer of 3 lines, dense with 2 units (lines 6-8 right after with_input's).
const std::vector<std::string> last_dense = {"[[layer]]", "type = \"dense\"", "units = 2"};

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string> &b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::string error_of(const std::string &text, const std::string &source = "test.toml") {
    try {
        parse_network(text, source);
    } catch (const InputError &e) {
        return e.what();
    }
    return "(no error)";
}

// The error is at line:col and says `message`, on one line.
void expect_error(const std::string &text, int line, int col, const std::string &message) {
    INFO("input:\n" << text);
    const std::string what = error_of(text);
    CHECK_THAT(what, StartsWith("test.toml:" + std::to_string(line) + ":" + std::to_string(col) +
                                ": error: "));
    CHECK_THAT(what, Contains(message));
    CHECK(what.find('\n') == std::string::npos);
}

// The error has no position: "test.toml: error: ...".
void expect_error(const std::string &text, const std::string &message) {
    INFO("input:\n" << text);
    const std::string what = error_of(text);
    CHECK_THAT(what, StartsWith("test.toml: error: "));
    CHECK_THAT(what, Contains(message));
}

// The schema example of the documentation, completed to LeNet-5.
const std::string lenet5 = toml_text({
    "[network]",  // 1
    "name = \"lenet5\"",
    "description = \"LeNet-5 with ReLU and max pooling\"",
    "",
    "[input]",  // 5
    "width = 28",
    "height = 28",
    "channels = 1",
    "classes = 10",
    "mean = 0.1307",  // 10
    "std = 0.3081",
    "",
    "[[layer]]",  // 13
    "type = \"conv\"",
    "filters = 6",
    "kernel = 5",
    "stride = 1",
    "padding = 2",
    "activation = \"relu\"",
    "",
    "[[layer]]",  // 21
    "type = \"maxpool\"",
    "size = 2",
    "stride = 2",
    "",
    "[[layer]]",  // 26
    "type = \"conv\"",
    "filters = 16",
    "kernel = 5",
    "activation = \"relu\"",
    "",
    "[[layer]]",  // 32
    "type = \"maxpool\"",
    "size = 2",
    "",
    "[[layer]]",  // 36
    "type = \"dense\"",
    "units = 120",
    "activation = \"relu\"",
    "",
    "[[layer]]",  // 41
    "type = \"dense\"",
    "units = 84",
    "activation = \"relu\"",
    "",
    "[[layer]]",  // 46
    "type = \"dense\"",
    "units = 10",
    "",
    "[train]",  // 50
    "epochs = 10",
    "batch = 64",
    "optimizer = \"sgd\"",
    "learning_rate = 0.05",
    "momentum = 0.9",
    "weight_decay = 0.0",
    "seed = 1",
});

std::string replace(std::string text, const std::string &from, const std::string &to) {
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

}  // namespace

// --- What a valid file becomes ---------------------------------------------------------

TEST_CASE("LeNet-5: header, input and train settings", "[model]") {
    const Network net = parse_network(lenet5, "networks/lenet5.toml");
    CHECK(net.name == "lenet5");
    CHECK(net.description == "LeNet-5 with ReLU and max pooling");
    CHECK(net.source == "networks/lenet5.toml");
    CHECK(net.input.shape() == Shape{1, 28, 28});
    CHECK(net.input.classes == 10);
    CHECK(net.input.mean == 0.1307);
    CHECK(net.input.std == 0.3081);
    CHECK(net.train.epochs == 10);
    CHECK(net.train.batch == 64);
    CHECK(net.train.optimizer == "sgd");
    CHECK(net.train.learning_rate == 0.05);
    CHECK(net.train.momentum == 0.9);
    CHECK(net.train.weight_decay == 0.0);
    CHECK(net.train.seed == 1);
}

TEST_CASE("LeNet-5: layers, default names and shapes", "[model]") {
    const Network net = parse_network(lenet5, "lenet5.toml");
    REQUIRE(net.layers.size() == 7);
    const std::vector<std::string> names = {"conv1",  "maxpool1", "conv2", "maxpool2",
                                            "dense1", "dense2",   "dense3"};
    const std::vector<Shape> outs = {{6, 28, 28}, {6, 14, 14}, {16, 10, 10}, {16, 5, 5},
                                     {120, 1, 1}, {84, 1, 1},  {10, 1, 1}};
    const std::vector<int> lines = {13, 21, 26, 32, 36, 41, 46};
    Shape in = net.input.shape();
    for (size_t i = 0; i < net.layers.size(); ++i) {
        const Layer &l = net.layers[i];
        INFO("layer " << i + 1);
        CHECK(l.name == names[i]);
        CHECK(l.in == in);
        CHECK(l.out == outs[i]);
        CHECK(l.line == lines[i]);
        in = l.out;
    }
    const Layer &c1 = net.layers[0];
    CHECK(c1.is("conv"));
    CHECK(c1.spec_as<ConvSpec>().filters == 6);
    CHECK(c1.spec_as<ConvSpec>().kernel == 5);
    CHECK(c1.spec_as<ConvSpec>().stride == 1);
    CHECK(c1.spec_as<ConvSpec>().padding == 2);
    CHECK(c1.activation == Activation::relu);
    CHECK(net.layers[3].is("maxpool"));
    CHECK(net.layers[3].spec_as<PoolSpec>().stride == 2);  // default: the size
    CHECK(net.layers[3].activation == Activation::none);
    CHECK(net.layers[6].activation == Activation::none);
}

TEST_CASE("LeNet-5: 61,706 parameters laid out weight then bias, in layer order", "[model]") {
    const Network net = parse_network(lenet5, "lenet5.toml");
    CHECK(net.param_count == 61706);
    REQUIRE(net.params.size() == 10);
    struct Expected {
        const char *name;
        std::vector<int64_t> shape;
        int64_t fan_in;
    };
    const std::vector<Expected> expected = {
        {"conv1.weight", {6, 1, 5, 5}, 25},   {"conv1.bias", {6}, 25},
        {"conv2.weight", {16, 6, 5, 5}, 150}, {"conv2.bias", {16}, 150},
        {"dense1.weight", {120, 400}, 400},   {"dense1.bias", {120}, 400},
        {"dense2.weight", {84, 120}, 120},    {"dense2.bias", {84}, 120},
        {"dense3.weight", {10, 84}, 84},      {"dense3.bias", {10}, 84},
    };
    int64_t offset = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        const ParamTensor &p = net.params[i];
        INFO(expected[i].name);
        CHECK(p.name == expected[i].name);
        CHECK(p.shape == expected[i].shape);
        CHECK(p.fan_in == expected[i].fan_in);
        CHECK(p.offset == offset);
        int64_t count = 1;
        for (int64_t d : p.shape) count *= d;
        CHECK(p.count == count);
        offset += p.count;
    }
    CHECK(offset == net.param_count);
    CHECK(net.params[2].offset == 156);
    CHECK(net.layers[0].weight == 0);
    CHECK(net.layers[0].bias == 1);
    CHECK(net.layers[1].weight == -1);
    CHECK(net.layers[1].bias == -1);
    CHECK(net.layers[6].weight == 8);
}

TEST_CASE("LeNet-5: FLOPs per image", "[model]") {
    const Network net = parse_network(lenet5, "lenet5.toml");
    const std::vector<int64_t> flops = {2 * 6 * 28 * 28 * 1 * 5 * 5,
                                        2 * 2 * 6 * 14 * 14,
                                        2 * 16 * 10 * 10 * 6 * 5 * 5,
                                        2 * 2 * 16 * 5 * 5,
                                        2 * 120 * 400,
                                        2 * 84 * 120,
                                        2 * 10 * 84};
    int64_t total = 0;
    for (size_t i = 0; i < flops.size(); ++i) {
        CHECK(net.layers[i].flops == flops[i]);
        total += flops[i];
    }
    CHECK(net.flops == total);
    CHECK(net.flops == 839344);
}

TEST_CASE("defaults: network name from the file's stem, input and train defaults", "[model]") {
    const std::string text = with_input(
        {"[[layer]]", "type = \"conv\"", "filters = 3", "kernel = 3", "stride = 2"}, last_dense);
    const Network net = parse_network(text, "some/dir/my-net.v2.toml");
    CHECK(net.name == "my-net.v2");
    CHECK(net.description.empty());
    CHECK(net.input.mean == 0.0);
    CHECK(net.input.std == 1.0);
    const TrainSettings defaults;
    CHECK(net.train.epochs == defaults.epochs);
    CHECK(net.train.batch == defaults.batch);
    CHECK(net.train.learning_rate == defaults.learning_rate);
    CHECK(net.train.momentum == defaults.momentum);
    CHECK(net.train.seed == defaults.seed);
    const ConvSpec &c = net.layers[0].spec_as<ConvSpec>();
    CHECK(c.padding == 0);
    CHECK(net.layers[0].activation == Activation::none);
    CHECK(net.layers[0].out == Shape{3, 3, 3});  // (8 - 3) / 2 + 1, floored
    CHECK(parse_network(text, "plain").name == "plain");
}

TEST_CASE("other kinds and values: avgpool, tanh, sigmoid, integers as floats", "[model]") {
    const std::string text = with_input({
        "mean = 0",
        "std = 2",  // 6-7, still in [input]
        "[[layer]]",
        "type = \"conv\"",
        "name = \"features\"",
        "filters = 4",
        "kernel = 3",
        "padding = 1",
        "activation = \"tanh\"",
        "[[layer]]",
        "type = \"avgpool\"",
        "size = 3",
        "stride = 1",
        "[[layer]]",
        "type = \"conv\"",
        "filters = 2",
        "kernel = 1",
        "activation = \"sigmoid\"",
        "[[layer]]",
        "type = \"dense\"",
        "units = 2",
        "[train]",
        "learning_rate = 1",
        "momentum = 0",
        "weight_decay = 1",
    });
    const Network net = parse_network(text, "t.toml");
    CHECK(net.input.mean == 0.0);
    CHECK(net.input.std == 2.0);
    CHECK(net.train.learning_rate == 1.0);
    CHECK(net.train.weight_decay == 1.0);
    REQUIRE(net.layers.size() == 4);
    CHECK(net.layers[0].name == "features");
    CHECK(net.layers[0].out == Shape{4, 8, 8});
    CHECK(net.layers[0].activation == Activation::tanh);
    CHECK(net.layers[1].name == "avgpool1");
    CHECK(net.layers[1].is("avgpool"));
    CHECK(net.layers[1].out == Shape{4, 6, 6});
    CHECK(net.layers[1].flops == 3 * 3 * 4 * 6 * 6);
    CHECK(net.layers[2].name == "conv2");  // counts every conv, named or not
    CHECK(net.layers[2].activation == Activation::sigmoid);
    CHECK(net.layers[3].in == Shape{2, 6, 6});
    CHECK(net.params[4].shape == std::vector<int64_t>{2, 72});
}

TEST_CASE("an inline array of inline tables is an array of tables too", "[model]") {
    const std::string text = "layer = [{type = \"dense\", units = 2}]\n" + with_input({});
    const Network net = parse_network(text, "t.toml");
    REQUIRE(net.layers.size() == 1);
    CHECK(net.layers[0].line == 1);
}

TEST_CASE("canonical text and hash", "[model]") {
    const Network net = parse_network(lenet5, "lenet5.toml");
    const std::string hash = net.hash();
    CHECK(hash.size() == 16);
    CHECK(hash.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(net.canonical() ==
          "kiln-network 1\n"
          "input channels=1 height=28 width=28 classes=10 mean=0.1307 std=0.3081\n"
          "layer conv1 conv filters=6 kernel=5 stride=1 padding=2 activation=relu\n"
          "layer maxpool1 maxpool size=2 stride=2\n"
          "layer conv2 conv filters=16 kernel=5 stride=1 padding=0 activation=relu\n"
          "layer maxpool2 maxpool size=2 stride=2\n"
          "layer dense1 dense units=120 activation=relu\n"
          "layer dense2 dense units=84 activation=relu\n"
          "layer dense3 dense units=10 activation=none\n");
    // FNV-1a of the text above, computed independently: a change of format shows here.
    CHECK(hash == "51f69f9611d2c850");

    SECTION("the same architecture written differently hashes the same") {
        std::string same = replace(lenet5, "name = \"lenet5\"", "name = \"other\"");
        same = replace(same, "epochs = 10", "epochs = 3");
        same = replace(same, "description = \"LeNet-5 with ReLU and max pooling\"", "# none");
        same = replace(same, "stride = 1\n", "");                  // the default
        same = replace(same, "size = 2\nstride = 2", "size = 2");  // the default
        same = replace(same, "filters = 16\nkernel = 5", "kernel = 5\nfilters = 16");
        CHECK(parse_network(same, "elsewhere.toml").hash() == hash);
    }
    SECTION("a different architecture hashes differently") {
        for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
                 {"filters = 6", "filters = 7"},
                 {"padding = 2\n", "padding = 2\nname = \"c1\"\n"},
                 {"mean = 0.1307", "mean = 0.13"},
                 {"type = \"maxpool\"", "type = \"avgpool\""},
                 {"units = 84\nactivation = \"relu\"", "units = 84\nactivation = \"tanh\""}}) {
            INFO(from << " -> " << to);
            CHECK(parse_network(replace(lenet5, from, to), "lenet5.toml").hash() != hash);
        }
    }
}

TEST_CASE("layer table", "[model]") {
    const std::string table = layer_table(parse_network(lenet5, "lenet5.toml"));
    CHECK(table ==
          "layer     type     output    params    FLOPs  inputs\n"
          "input              1x28x28\n"
          "conv1     conv     6x28x28      156  235,200  input\n"
          "maxpool1  maxpool  6x14x14        0    4,704  conv1\n"
          "conv2     conv     16x10x10   2,416  480,000  maxpool1\n"
          "maxpool2  maxpool  16x5x5         0    1,600  conv2\n"
          "dense1    dense    120x1x1   48,120   96,000  maxpool2\n"
          "dense2    dense    84x1x1    10,164   20,160  dense1\n"
          "dense3    dense    10x1x1       850    1,680  dense2\n"
          "------------------------------------------------------\n"
          "total: 61,706 parameters, 0.84 MFLOPs per image\n");
}

TEST_CASE("load_network reads a file and names it in errors", "[model]") {
    // A name of its own, so that concurrent runs do not share the file.
    const std::string path =
        "/tmp/kiln_test_model_" + std::to_string(std::random_device{}()) + ".toml";
    { std::ofstream(path, std::ios::binary) << lenet5; }
    CHECK(load_network(path).param_count == 61706);
    { std::ofstream(path, std::ios::binary) << replace(lenet5, "filters = 6", "filters = -3"); }
    CHECK_THROWS_WITH(
        load_network(path),
        path + ":15:11: error: layer 'conv1': 'filters' must be a positive integer, got -3");
    std::remove(path.c_str());
}

// --- One test per validation rule ------------------------------------------------------

TEST_CASE("refused: a missing or unreadable file", "[model][errors]") {
    CHECK_THROWS_WITH(load_network("/nonexistent/net.toml"),
                      "/nonexistent/net.toml: error: cannot read file");
    CHECK_THROWS_WITH(load_network("/tmp"), "/tmp: error: cannot read file");
}

TEST_CASE("refused: unknown keys, in every table and at the top level", "[model][errors]") {
    expect_error(with_input({"depth = 3"}, last_dense), 6, 1, "[input]: unknown key 'depth'");
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filter = 6", "kernel = 3"}, last_dense), 8, 1,
        "layer 'conv1': unknown key 'filter'");
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "units = 2", "  size = 2"}), 9, 3,
                 "layer 'dense1': unknown key 'size'");
    expect_error(with_input(last_dense, {"[train]", "epoch = 3"}), 10, 1,
                 "[train]: unknown key 'epoch'");
    expect_error("[network]\nname = \"a\"\nauthor = \"me\"\n" + with_input(last_dense), 3, 1,
                 "[network]: unknown key 'author'");
    expect_error(with_input(last_dense, {"[model]", "x = 1"}), 9, 2, "unknown table 'model'");
    expect_error("version = 1\n" + with_input(last_dense), 1, 1, "unknown key 'version'");
    // Of several, the first in the file (toml++ keeps keys sorted by name).
    expect_error(with_input({"zeta = 1", "alpha = 2"}, last_dense), 6, 1, "unknown key 'zeta'");
}

TEST_CASE("refused: an unknown layer type", "[model][errors]") {
    expect_error(with_input({"[[layer]]", "type = \"lstm\"", "units = 2"}), 7, 8,
                 "layer 1: unknown layer type \"lstm\" (expected add, avgpool, batchnorm, concat, conv, dense, dropout, "
                 "globalavgpool, maxpool)");
    expect_error(with_input({"[[layer]]", "type = \"Dense\"", "units = 2"}), 7, 8,
                 "unknown layer type \"Dense\"");
}

TEST_CASE("refused: an unknown activation", "[model][errors]") {
    expect_error(
        with_input({"[[layer]]", "type = \"dense\"", "units = 2", "activation = \"gelu\""}), 9, 14,
        "layer 'dense1': 'activation' must be one of relu, tanh, sigmoid, none; got \"gelu\"");
}

TEST_CASE("refused: values of the wrong type", "[model][errors]") {
    auto conv = [](const std::string &filters) {
        return with_input({"[[layer]]", "type = \"conv\"", "kernel = 3", "filters = " + filters},
                          last_dense);
    };
    expect_error(conv("\"6\""), 9, 11, "'filters' must be a positive integer, got \"6\"");
    expect_error(conv("6.5"), 9, 11, "'filters' must be a positive integer, got 6.5");
    expect_error(conv("6.0"), 9, 11, "'filters' must be a positive integer, got 6.0");
    expect_error(conv("true"), 9, 11, "got true");
    expect_error(conv("[6]"), 9, 11, "got an array");
    expect_error(conv("1979-05-27"), 9, 11, "got a date");
    expect_error(with_input({"mean = \"x\""}, last_dense), 6, 8,
                 "[input]: 'mean' must be a number, got \"x\"");
    expect_error(with_input({"std = {}"}, last_dense), 6, 7,
                 "'std' must be a positive number, got a table");
    expect_error(with_input({"[[layer]]", "type = 3"}), 7, 8,
                 "layer 1: 'type' must be a string, got 3");
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "name = 1", "units = 2"}), 8, 8,
                 "'name' must be a string, got 1");
    expect_error(with_input(last_dense, {"activation = false"}), 9, 14,
                 "'activation' must be a string, got false");
    expect_error("network = \"x\"\n" + with_input(last_dense), 1, 11,
                 "'network' must be a table ([network]), got \"x\"");
    expect_error("input = 5\n" + toml_text(last_dense), 1, 9,
                 "'input' must be a table ([input]), got 5");
    expect_error("[network]\ndescription = 5\n" + with_input(last_dense), 2, 15,
                 "[network]: 'description' must be a string, got 5");
}

TEST_CASE("refused: missing required keys, at their table's header", "[model][errors]") {
    expect_error(toml_text({"", "[input]", "height = 8", "channels = 1", "classes = 2"}) +
                     toml_text(last_dense),
                 2, 1, "[input]: missing required key 'width'");
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "kernel = 3"}, last_dense), 6, 1,
                 "layer 'conv1': missing required key 'filters'");
    expect_error(with_input({"[[layer]]", "units = 2"}), 6, 1,
                 "layer 1: missing required key 'type'");
    expect_error(with_input({"[[layer]]", "type = \"maxpool\""}, last_dense), 6, 1,
                 "layer 'maxpool1': missing required key 'size'");
    expect_error(toml_text(last_dense), "missing [input] table");
}

TEST_CASE("refused: zero or negative sizes", "[model][errors]") {
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = -3", "kernel = 5"}, last_dense), 8,
        11, "layer 'conv1': 'filters' must be a positive integer, got -3");
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 3", "kernel = 0"}, last_dense), 9,
        10, "'kernel' must be a positive integer, got 0");
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 3", "kernel = 3", "stride = 0"},
                   last_dense),
        10, 10, "'stride' must be a positive integer, got 0");
    expect_error(with_input({"[[layer]]", "type = \"avgpool\"", "size = 0"}, last_dense), 8, 8,
                 "layer 'avgpool1': 'size' must be a positive integer, got 0");
    expect_error(
        with_input({"[[layer]]", "type = \"maxpool\"", "size = 2", "stride = -1"}, last_dense), 9,
        10, "'stride' must be a positive integer, got -1");
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "units = 0"}), 8, 9,
                 "'units' must be a positive integer, got 0");
    expect_error(toml_text({"[input]", "width = 8", "height = 0", "channels = 1", "classes = 2"}) +
                     toml_text(last_dense),
                 3, 10, "[input]: 'height' must be a positive integer, got 0");
}

TEST_CASE("refused: padding below zero or not less than the kernel", "[model][errors]") {
    auto conv = [](const std::string &padding) {
        return with_input(
            {"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 3", "padding = " + padding},
            last_dense);
    };
    expect_error(conv("-1"), 10, 11, "'padding' must be a non-negative integer, got -1");
    expect_error(conv("3"), 10, 11, "'padding' must be less than 'kernel' (3), got 3");
    CHECK_NOTHROW(parse_network(conv("2"), "t.toml"));
}

TEST_CASE("refused: windows larger than the (padded) input", "[model][errors]") {
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 9"}, last_dense), 9,
        10, "layer 'conv1': 'kernel' = 9 is larger than the input 8x8");
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 11", "padding = 1"},
                   last_dense),
        9, 10, "'kernel' = 11 is larger than the padded input 10x10 (8x8 with padding 1)");
    CHECK_NOTHROW(parse_network(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 9", "padding = 1"},
                   last_dense),
        "t.toml"));
    expect_error(with_input({"[[layer]]", "type = \"maxpool\"", "size = 9"}, last_dense), 8, 8,
                 "layer 'maxpool1': 'size' = 9 is larger than the input 8x8");
    // Not square: the window must fit both ways.
    expect_error(toml_text({"[input]", "width = 8", "height = 4", "channels = 1", "classes = 2",
                            "[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 5"}) +
                     toml_text(last_dense),
                 9, 10, "'kernel' = 5 is larger than the input 4x8");
}

TEST_CASE("refused: a shape that shrinks to nothing along the network", "[model][errors]") {
    // 8x8 -> conv 5 -> 4x4 -> maxpool 2 -> 2x2 -> maxpool 3: no room.
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 5",  // 6
                             "[[layer]]", "type = \"maxpool\"", "size = 2",                // 10
                             "[[layer]]", "type = \"maxpool\"", "size = 3"},               // 13
                            last_dense),
                 15, 8, "layer 'maxpool2': 'size' = 3 is larger than the input 2x2");
}

TEST_CASE("refused: numbers that would overflow", "[model][errors]") {
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "units = 9223372036854775807"}), 8, 9,
                 "'units' must be at most 65536, got 9223372036854775807");
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "units = 99999999999999999999"}), 8,
                 29, "not representable in 64 bits");
    // 17 x 4096 x 4096 weights: more than fits, refused before multiplying out.
    const std::string big_input =
        toml_text({"[input]", "width = 4096", "height = 4096", "channels = 1", "classes = 2"});
    expect_error(
        big_input + toml_text({"[[layer]]", "type = \"dense\"", "units = 17"}), 8, 9,
        "layer 'dense1': parameter tensor [17 x 16777216] has more than 268435456 elements");
    // One tensor of exactly the limit is fine; its bias tips the total over.
    expect_error(big_input + toml_text({"[[layer]]", "type = \"dense\"", "units = 16"}) +
                     toml_text(last_dense),
                 6, 1, "layer 'dense1': the network has more than 268435456 parameters in all");
}

TEST_CASE("refused: sizes beyond the limits", "[model][errors]") {
    expect_error(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 4097", "kernel = 3"}, last_dense), 8,
        11, "'filters' must be at most 4096, got 4097");
    expect_error(with_input({"[[layer]]", "type = \"maxpool\"", "size = 65"}, last_dense), 8, 8,
                 "'size' must be at most 64, got 65");
    expect_error(toml_text({"[input]", "width = 4097"}), 2, 9,
                 "'width' must be at most 4096, got 4097");
    expect_error(
        toml_text({"[input]", "width = 8", "height = 8", "channels = 1", "classes = 65537"}), 5, 11,
        "'classes' must be at most 65536, got 65537");
    expect_error(
        toml_text({"[input]", "width = 4096", "height = 4096", "channels = 2", "classes = 2"}), 1,
        1, "[input]: input image [2 x 4096 x 4096] has more than 16777216 elements");
    expect_error(
        toml_text({"[input]", "width = 1024", "height = 1024", "channels = 1", "classes = 2",
                   "[[layer]]", "type = \"conv\"", "filters = 17", "kernel = 1"}),
        6, 1, "layer 'conv1': output activation [17 x 1024 x 1024] has more than 16777216");

    std::vector<std::string> many;
    for (int i = 0; i < 257; ++i)
        many = many + std::vector<std::string>{"[[layer]]", "type = \"dense\"", "units = 2"};
    expect_error(with_input(many), 6 + 3 * 256, 1, "the network has more than 256 layers");
    many.resize(3 * 256);
    CHECK(parse_network(with_input(many), "t.toml").layers.size() == 256);
}

TEST_CASE("refused: std <= 0 and non-finite numbers", "[model][errors]") {
    expect_error(with_input({"std = 0"}, last_dense), 6, 7,
                 "'std' must be a positive number, got 0");
    expect_error(with_input({"std = -0.5"}, last_dense), 6, 7,
                 "'std' must be a positive number, got -0.5");
    expect_error(with_input({"std = nan"}, last_dense), 6, 7,
                 "'std' must be a finite number, got nan");
    expect_error(with_input({"mean = -inf"}, last_dense), 6, 8,
                 "'mean' must be a finite number, got -inf");
    expect_error(with_input(last_dense, {"[train]", "momentum = inf"}), 10, 12,
                 "'momentum' must be a finite number, got inf");
}

TEST_CASE("refused: a network with no layers", "[model][errors]") {
    expect_error(with_input({}), "the network has no layers");
    expect_error("layer = []\n" + with_input({}), 1, 9, "the network has no layers");
}

TEST_CASE("refused: a last layer that does not give the class scores", "[model][errors]") {
    expect_error(
        with_input({"[[layer]]", "type = \"maxpool\"", "size = 2"}), 6, 1,
        "layer 'maxpool1': the last layer must be dense (it gives the class scores), not maxpool");
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 8"}), 6, 1,
                 "the last layer must be dense");
    expect_error(with_input({"[[layer]]", "type = \"dense\"", "units = 3"}), 8, 9,
                 "layer 'dense1': the last layer's 'units' must equal [input] classes (2), got 3");
    expect_error(toml_text({"[input]", "width = 8", "height = 8", "channels = 1", "classes = 1"}),
                 5, 11, "'classes' must be an integer of at least 2, got 1");
}

TEST_CASE("refused: [[layer]] that is not an array of tables", "[model][errors]") {
    expect_error(with_input({"[layer]", "type = \"dense\"", "units = 2"}), 6, 1,
                 "'layer' must be an array of tables ([[layer]]), got a table");
    expect_error("layer = 5\n" + with_input({}), 1, 9,
                 "'layer' must be an array of tables ([[layer]]), got 5");
    expect_error("layer = [{type = \"dense\", units = 2}, 3]\n" + with_input({}), 1, 39,
                 "'layer' must be an array of tables ([[layer]]), but it holds 3");
}

TEST_CASE("refused: an empty file", "[model][errors]") {
    expect_error("", "the file is empty");
    expect_error("  \n# nothing here\n\n", "the file is empty");
}

TEST_CASE("refused: a file that is not UTF-8, at the first bad byte", "[model][errors]") {
    const std::string head = "[input]\nwidth = 8\n";
    expect_error(head + "height = 8 # caf\xe9\n", 3, 17, "not valid UTF-8 (byte 0xe9)");
    // Columns count characters, as toml++'s do: "é" and "€" are one column each.
    expect_error(head + "# \xc3\xa9\xe2\x82\xac \xff\n", 3, 6, "(byte 0xff)");
    expect_error(head + "# overlong \xc0\xaf\n", 3, 12, "(byte 0xc0)");
    expect_error(head + "# surrogate \xed\xa0\x80\n", 3, 13, "(byte 0xed)");
    expect_error(head + "# beyond U+10FFFF \xf4\x90\x80\x80\n", 3, 19, "(byte 0xf4)");
    expect_error(head + "# cut short \xe2\x82", 3, 13, "(byte 0xe2)");
}

TEST_CASE("non-ASCII text in comments and string values, and a byte order mark, are fine",
          "[model]") {
    const std::string text =
        "\xef\xbb\xbf# caf\xc3\xa9 \xe2\x82\xac\n"  // BOM, then a comment
        "[network]\n"
        "description = \"\"\"Caf\xc3\xa9 \\\n   r\xc3\xa9seau \xe7\xbd\x91\"\"\"\n" +
        with_input(last_dense);
    CHECK(parse_network(text, "t.toml").description == "Caf\xc3\xa9 r\xc3\xa9seau \xe7\xbd\x91");
}

TEST_CASE("refused: input that toml++ 3.3 mishandles, before it sees it", "[model][errors]") {
    // toml++ reaches TOML_UNREACHABLE when it tests these characters for whitespace
    // (its issue #190): outside strings, in quoted keys, after backslashes in """.
    expect_error(toml_text({"[input]", "width = 8\xcb\x8c"}), 2, 10,
                 "non-ASCII character U+02CC '\xcb\x8c' outside strings and comments");
    expect_error(toml_text({"[input]", "\"caf\xc3\xa9\" = 1"}), 2, 5,
                 "non-ASCII character U+00E9 '\xc3\xa9' in a quoted key");
    expect_error(toml_text({"[network]", "description = \"\"\"\\", "  \xc2\xa7 x\"\"\""}), 3, 3,
                 "U+00A7 '\xc2\xa7' first after a line-ending backslash");
    expect_error(toml_text({"[network]", "description = \"\"\"a\\\xc3\xa9\"\"\""}), 2, 20,
                 "U+00E9 '\xc3\xa9' after a backslash");
    expect_error(toml_text({"x = 1", "\xe2\x80\x8b"}), 2, 1,
                 "U+200B outside strings");  // invisible
    // The columns of line 1 do not count a byte order mark, as toml++'s do not.
    expect_error("\xef\xbb\xbfx = 1\xc3\xa9\n", 1, 6, "U+00E9");
    // toml++ asserts (or assumes) that these cannot happen, then refuses them: this
    // test, built without NDEBUG, aborts if the assertions are not disabled.
    expect_error("[.a]\n", 1, 2, "invalid TOML while parsing key");
    expect_error("x = [}]\n", 1, 6, "invalid TOML while parsing value");
    expect_error(toml_text({"[input]", "width = 1979-05-27T\b7:32:00Z"}), 2, 20,
                 "invalid TOML while parsing time");
}

TEST_CASE("refused: TOML syntax errors, with toml++'s position", "[model][errors]") {
    expect_error(toml_text({"[input]", "width = 8", "height = "}), 3, 10, "expected value");
    expect_error(toml_text({"[input]", "width = 8", "width = 9"}), 3, 9, "redefine");
    expect_error(toml_text({"[input]", "[[layer]", "type = \"dense\""}), 2, 9, "expected ']'");
}

TEST_CASE("refused: train settings out of range", "[model][errors]") {
    auto train = [](const std::string &line) {
        return with_input(last_dense, {"[train]", line});  // line 10
    };
    expect_error(train("epochs = 0"), 10, 10,
                 "[train]: 'epochs' must be a positive integer, got 0");
    expect_error(train("epochs = 100001"), 10, 10, "'epochs' must be at most 100000, got 100001");
    expect_error(train("batch = 0"), 10, 9, "'batch' must be a positive integer, got 0");
    expect_error(train("batch = 65537"), 10, 9, "'batch' must be at most 65536, got 65537");
    expect_error(train("learning_rate = 0"), 10, 17,
                 "'learning_rate' must be a positive number, got 0");
    expect_error(train("learning_rate = -0.1"), 10, 17,
                 "'learning_rate' must be a positive number");
    expect_error(train("momentum = 1.0"), 10, 12, "'momentum' must be a number in [0, 1), got 1.0");
    expect_error(train("momentum = -0.1"), 10, 12,
                 "'momentum' must be a number in [0, 1), got -0.1");
    expect_error(train("weight_decay = -1"), 10, 16,
                 "'weight_decay' must be a non-negative number, got -1");
    expect_error(train("seed = -1"), 10, 8, "'seed' must be a non-negative integer, got -1");
    expect_error(train("batch = 64.0"), 10, 9, "'batch' must be a positive integer, got 64.0");
    CHECK(parse_network(train("momentum = 0.99"), "t.toml").train.momentum == 0.99);
}

TEST_CASE("refused: an unknown optimizer", "[model][errors]") {
    expect_error(with_input(last_dense, {"[train]", "optimizer = \"adagrad\""}), 10, 13,
                 "'optimizer' must be \"sgd\", \"adam\", \"adamw\" or \"rmsprop\", got \"adagrad\"");
    expect_error(with_input(last_dense, {"[train]", "optimizer = \"sgd\"", "nesterov = 1"}), 11, 12,
                 "'nesterov' must be true or false");
    expect_error(with_input(last_dense, {"[train]", "optimizer = \"adam\"", "beta2 = 1.0"}), 11, 9,
                 "'beta2' must be a number in [0, 1)");
}

TEST_CASE("refused: layer names that are not identifiers", "[model][errors]") {
    auto named = [](const std::string &name) {
        return with_input({"[[layer]]", "type = \"dense\"", "name = " + name, "units = 2"});
    };
    expect_error(named("\"1st\""), 8, 8,
                 "layer 1: 'name' must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got \"1st\"");
    expect_error(named("\"out-put\""), 8, 8, "got \"out-put\"");
    expect_error(named("\"\""), 8, 8, "got \"\"");
    CHECK(parse_network(named("\"_Out2\""), "t.toml").layers[0].name == "_Out2");
}

TEST_CASE("refused: duplicate layer names, explicit or default", "[model][errors]") {
    const std::vector<std::string> conv = {"[[layer]]", "type = \"conv\"", "filters = 2",
                                           "kernel = 1"};
    // Two explicit names.
    expect_error(with_input(conv + std::vector<std::string>{"name = \"a\""} + conv +
                                std::vector<std::string>{"name = \"a\""},
                            last_dense),
                 15, 8, "layer 2: name 'a' is already used by layer 1");
    // An explicit name taking an earlier default.
    expect_error(with_input(conv + conv + std::vector<std::string>{"name = \"conv1\""}, last_dense),
                 14, 8, "name 'conv1' is already used by layer 1");
    // An explicit name taking a later layer's default: reported at the later layer.
    expect_error(
        with_input(conv + std::vector<std::string>{"name = \"conv2\""} + conv + last_dense), 11, 1,
        "layer 2: the default name 'conv2' is already used by layer 1");
    // The same name on layers of different kinds.
    expect_error(with_input(conv + std::vector<std::string>{"name = \"dense1\""}, last_dense), 11,
                 1, "the default name 'dense1' is already used by layer 1");
}

TEST_CASE("refused: bad network names", "[model][errors]") {
    expect_error("[network]\nname = \"le net\"\n" + with_input(last_dense), 2, 8,
                 "[network]: 'name' must be letters, digits, '_', '.' or '-', got \"le net\"");
    expect_error("[network]\nname = \"\"\n" + with_input(last_dense), 2, 8, "got \"\"");
    INFO("from the file's stem");
    const std::string what = error_of(with_input(last_dense), "nets/le net.toml");
    CHECK(what ==
          "nets/le net.toml: error: the file name \"le net\" is not a valid network name "
          "(letters, digits, '_', '.' or '-'); set 'name' in [network]");
}

TEST_CASE("messages stay on one line, whatever the input holds", "[model][errors]") {
    expect_error(with_input({"[[layer]]", "type = \"con\\nv\\u0007\""}), 7, 8,
                 "unknown layer type \"con\\nv\\x07\"");
}

TEST_CASE("never anything but a Network or an InputError, on mangled input", "[model][errors]") {
    std::mt19937 rng(1);
    const std::string alphabet = "0123456789-+.=[]{}\"',#\n xe_\xff\xc3";
    int parsed = 0, refused = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string text = lenet5;
        for (int edits = 1 + rng() % 3; edits > 0; --edits) {
            const size_t at = rng() % text.size();
            switch (rng() % 3) {
                case 0:
                    text[at] = alphabet[rng() % alphabet.size()];
                    break;
                case 1:
                    text.erase(at, 1 + rng() % 8);
                    break;
                default:
                    text.insert(at, text.substr(rng() % text.size(), rng() % 40));
                    break;
            }
        }
        try {
            parse_network(text, "fuzz.toml");
            ++parsed;
        } catch (const InputError &e) {
            const std::string what = e.what();
            INFO(text);
            REQUIRE_THAT(what, StartsWith("fuzz.toml"));
            REQUIRE(what.find('\n') == std::string::npos);
            ++refused;
        }
    }
    CHECK(parsed > 20);  // the mutations reach past the TOML parser
    CHECK(refused > 2000);
}

TEST_CASE("padding = \"same\" keeps the input's extent for odd kernels at stride 1", "[model]") {
    const Network net = parse_network(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 5", "padding = \"same\""}, last_dense),
        "t.toml");
    CHECK(net.layers[0].spec_as<ConvSpec>().padding == 2);
    CHECK(net.layers[0].out == Shape{2, 8, 8});
}

TEST_CASE("refused: padding = \"same\" with an even kernel, a stride, or another word", "[model][errors]") {
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 4", "padding = \"same\""},
                            last_dense),
                 10, 11, "padding = \"same\" needs stride 1 and an odd kernel");
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 3", "stride = 2",
                             "padding = \"same\""},
                            last_dense),
                 11, 11, "needs stride 1");
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 3", "padding = \"valid\""},
                            last_dense),
                 10, 11, "'padding' must be a non-negative integer or \"same\"");
}

TEST_CASE("[augment] and validation are read; bad values refused", "[model]") {
    const Network net = parse_network(
        with_input(last_dense, {"[train]", "validation = 500", "[augment]", "shift = 2", "rotate = 10", "scale = 0.1"}),
        "t.toml");
    CHECK(net.train.validation == 500);
    CHECK(net.train.augment.shift == 2);
    CHECK(net.train.augment.rotate == 10);
    CHECK(net.train.augment.scale == Approx(0.1));
    expect_error(with_input(last_dense, {"[augment]", "flip = true"}), 10, 1, "[augment]: unknown key 'flip'");
    expect_error(with_input(last_dense, {"[augment]", "shift = 5"}), 10, 9, "'shift' must be at most half the image");
    expect_error(with_input(last_dense, {"[augment]", "rotate = -1"}), 10, 10, "'rotate' must be a non-negative");
    expect_error(with_input(last_dense, {"[augment]", "scale = 1.5"}), 10, 9, "'scale' must be a number in [0, 1)");
    expect_error(with_input(last_dense, {"[train]", "validation = -1"}), 10, 14, "'validation'");
}

TEST_CASE("dropout keeps the shape; its rate is required and below 1", "[model]") {
    const Network net = parse_network(
        with_input({"[[layer]]", "type = \"dropout\"", "rate = 0.25"}, last_dense), "t.toml");
    CHECK(net.layers[0].spec_as<DropoutSpec>().rate == 0.25);
    CHECK(net.layers[0].out == net.input.shape());
    CHECK(net.layers[0].name == "dropout1");
    expect_error(with_input({"[[layer]]", "type = \"dropout\""}, last_dense), 6, 1, "needs 'rate'");
    expect_error(with_input({"[[layer]]", "type = \"dropout\"", "rate = 1"}, last_dense), 8, 8,
                 "'rate' must be a number in [0, 1)");
}

TEST_CASE("learning-rate schedules: step needs its epochs; unknown names refused", "[model][errors]") {
    const Network net = parse_network(
        with_input(last_dense, {"[train]", "lr_schedule = \"step\"", "lr_step_epochs = 3", "lr_gamma = 0.5"}),
        "t.toml");
    CHECK(net.train.lr_step_epochs == 3);
    CHECK(net.train.lr_gamma == 0.5);
    expect_error(with_input(last_dense, {"[train]", "lr_schedule = \"step\""}), 10, 15,
                 "lr_schedule = \"step\" needs 'lr_step_epochs'");
    expect_error(with_input(last_dense, {"[train]", "lr_schedule = \"exponential\""}), 10, 15,
                 "'lr_schedule' must be \"constant\", \"cosine\", \"step\", \"onecycle\" or \"plateau\", got "
                 "\"exponential\"");
}

TEST_CASE("globalavgpool gives one value per channel and takes no keys", "[model]") {
    const Network net = parse_network(with_input({"[[layer]]", "type = \"globalavgpool\""}, last_dense), "t.toml");
    CHECK(net.layers[0].out == Shape{1, 1, 1});
    CHECK(net.layers[0].flops == 64);
    expect_error(with_input({"[[layer]]", "type = \"globalavgpool\"", "size = 2"}, last_dense), 8, 1,
                 "unknown key 'size'");
}

TEST_CASE("label_smoothing: default 0, read from [train], refused outside [0, 1)", "[model]") {
    CHECK(parse_network(with_input(last_dense), "t.toml").train.label_smoothing == 0);
    const Network net = parse_network(with_input(last_dense, {"[train]", "label_smoothing = 0.1"}), "t.toml");
    CHECK(net.train.label_smoothing == 0.1);
    expect_error(with_input(last_dense, {"[train]", "label_smoothing = 1"}), 10, 19,
                 "'label_smoothing' must be a number in [0, 1), got 1");
    expect_error(with_input(last_dense, {"[train]", "label_smoothing = -0.1"}), 10, 19,
                 "'label_smoothing' must be a number in [0, 1), got -0.1");
    expect_error(with_input(last_dense, {"[train]", "label_smoothing = \"0.1\""}), 10, 19,
                 "'label_smoothing' must be a number in [0, 1), got \"0.1\"");
}

TEST_CASE("plateau: lr_patience defaults to PyTorch's 10, lr_gamma is its factor", "[model]") {
    const Network plain = parse_network(with_input(last_dense, {"[train]", "lr_schedule = \"plateau\""}), "t.toml");
    CHECK(plain.train.lr_schedule == "plateau");
    CHECK(plain.train.lr_patience == 10);
    CHECK(plain.train.lr_gamma == 0.1);
    const Network net = parse_network(
        with_input(last_dense, {"[train]", "lr_schedule = \"plateau\"", "lr_patience = 3", "lr_gamma = 0.5"}), "t.toml");
    CHECK(net.train.lr_patience == 3);
    CHECK(net.train.lr_gamma == 0.5);
    CHECK(plain.train.lr_min == 0);
    CHECK(parse_network(with_input(last_dense, {"[train]", "lr_min = 1e-5"}), "t.toml").train.lr_min == 1e-5);
    expect_error(with_input(last_dense, {"[train]", "lr_min = -1e-5"}), 10, 10,
                 "'lr_min' must be a non-negative number, got -1e-05");
    expect_error(with_input(last_dense, {"[train]", "lr_patience = -1"}), 10, 15,
                 "'lr_patience' must be a non-negative integer, got -1");
    expect_error(with_input(last_dense, {"[train]", "lr_patience = 2.5"}), 10, 15,
                 "'lr_patience' must be a non-negative integer, got 2.5");
}

TEST_CASE("init, lr_monitor and scale_per_axis: defaults, read, refused when bad", "[model]") {
    const Network plain = parse_network(with_input(last_dense), "t.toml");
    CHECK(plain.train.init == "he_lecun");
    CHECK(plain.train.lr_monitor == "val_loss");
    CHECK_FALSE(plain.train.augment.scale_per_axis);
    const Network keras = parse_network(
        with_input(last_dense, {"[train]", "init = \"glorot_uniform\"", "lr_schedule = \"plateau\"",
                                "lr_monitor = \"val_accuracy\"", "[augment]", "scale = 0.1", "scale_per_axis = true"}),
        "t.toml");
    CHECK(keras.train.init == "glorot_uniform");
    CHECK(keras.train.lr_monitor == "val_accuracy");
    CHECK(keras.train.augment.scale_per_axis);
    expect_error(with_input(last_dense, {"[train]", "init = \"xavier\""}), 10, 8,
                 "'init' must be \"he_lecun\" or \"glorot_uniform\", got \"xavier\"");
    expect_error(with_input(last_dense, {"[train]", "lr_schedule = \"plateau\"", "lr_monitor = \"val_acc\""}), 11, 14,
                 "'lr_monitor' must be \"val_loss\" or \"val_accuracy\", got \"val_acc\"");
    expect_error(with_input(last_dense, {"[train]", "lr_monitor = \"val_accuracy\""}), 10, 14,
                 "'lr_monitor' is for lr_schedule = \"plateau\"");
    expect_error(with_input(last_dense, {"[augment]", "scale_per_axis = 1"}), 10, 18,
                 "'scale_per_axis' must be true or false");
}

TEST_CASE("batchnorm: per channel after conv, per unit after dense; four tensors, two of them buffers", "[model]") {
    const Network net = parse_network(
        with_input({"[[layer]]", "type = \"conv\"", "filters = 3", "kernel = 3", "[[layer]]", "type = \"batchnorm\"",
                    "activation = \"relu\"", "[[layer]]", "type = \"dense\"", "units = 4", "[[layer]]",
                    "type = \"batchnorm\"", "momentum = 0.2", "epsilon = 0.001"},
                   last_dense),
        "t.toml");
    const auto &bn1 = net.layers[1], &bn2 = net.layers[3];
    CHECK(bn1.name == "batchnorm1");
    CHECK(bn1.out == bn1.in);
    CHECK(bn1.out == Shape{3, 6, 6});
    CHECK(bn1.spec_as<BatchNormSpec>().momentum == 0.1);
    CHECK(bn1.spec_as<BatchNormSpec>().epsilon == 1e-5);
    CHECK(bn1.activation == Activation::relu);
    CHECK(bn2.out == Shape{4, 1, 1});
    CHECK(bn2.spec_as<BatchNormSpec>().momentum == 0.2);
    CHECK(bn2.spec_as<BatchNormSpec>().epsilon == 0.001);
    CHECK(bn1.flops == 2 * 3 * 6 * 6);
    const char *roles[] = {"weight", "bias", "running_mean", "running_var"};
    const int indices[] = {bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var};
    for (int k = 0; k < 4; k++) {
        const auto &t = net.params[size_t(indices[k])];
        CHECK(t.name == std::string("batchnorm1.") + roles[k]);
        CHECK(t.shape == std::vector<int64_t>{3});
        CHECK(t.buffer == (k >= 2));
    }
    CHECK(net.params[size_t(bn2.running_var)].shape == std::vector<int64_t>{4});
    CHECK(net.params[size_t(bn1.weight)].offset == 3 * 1 * 3 * 3 + 3);  // right after conv1's weight and bias
    CHECK_THAT(net.canonical(), Contains("layer batchnorm1 batchnorm momentum=0.1 epsilon=1e-05 activation=relu"));

    expect_error(with_input({"[[layer]]", "type = \"batchnorm\"", "momentum = 1.5"}, last_dense), 8, 12,
                 "'momentum' must be a number in [0, 1], got 1.5");
    expect_error(with_input({"[[layer]]", "type = \"batchnorm\"", "epsilon = 0"}, last_dense), 8, 11,
                 "'epsilon' must be a positive number, got 0");
    expect_error(with_input({"[[layer]]", "type = \"batchnorm\"", "size = 2"}, last_dense), 8, 1,
                 "layer 'batchnorm1': unknown key 'size'");
}

TEST_CASE("shards: default 2, read from [train]; below 1, beyond the limit or above the batch refused", "[model]") {
    CHECK(parse_network(with_input(last_dense), "t.toml").train.shards == 2);
    CHECK(parse_network(with_input(last_dense, {"[train]", "shards = 8"}), "t.toml").train.shards == 8);
    CHECK(parse_network(with_input(last_dense, {"[train]", "batch = 1"}), "t.toml").train.shards == 2);
    expect_error(with_input(last_dense, {"[train]", "shards = 0"}), 10, 10, "'shards'");
    expect_error(with_input(last_dense, {"[train]", "shards = 1025"}), 10, 10, "'shards'");
    expect_error(with_input(last_dense, {"[train]", "batch = 4", "shards = 8"}), 11, 10,
                 "'shards' (8) exceeds the batch (4)");
}

// ---- graphs: named inputs, add and concat ------------------------------------------

// The error names the file (and a position), says `message`, and is one line.
void refused_with(const std::string &text, const std::string &message) {
    INFO("input:\n" << text);
    const std::string what = error_of(text);
    CHECK_THAT(what, StartsWith("test.toml:"));
    CHECK_THAT(what, Contains(message));
    CHECK(what.find('\n') == std::string::npos);
}


// A 1x8x8 input, two convolutions reading it side by side, then `join` over them,
// then the dense classifier. Lines: with_input's 5, then 6-10 a, 11-15 b, 16.. join.
std::string two_branches(const std::vector<std::string> &join, int64_t b_filters = 4) {
    return with_input(std::vector<std::string>{"[[layer]]", "type = \"conv\"", "name = \"a\"", "filters = 4", "kernel = 3",
                       "[[layer]]", "type = \"conv\"", "name = \"b\"", "input = \"input\"",
                       "filters = " + std::to_string(b_filters), "kernel = 3"} +
                          join,
                      last_dense);
}

TEST_CASE("graphs: named inputs, add and concat", "[model][graph]") {
    const Network sum = parse_network(
        two_branches({"[[layer]]", "type = \"add\"", "name = \"sum\"", "inputs = [\"a\", \"b\"]",
                      "activation = \"relu\""}),
        "sum.toml");
    REQUIRE(sum.layers.size() == 4);
    CHECK(sum.layers[0].inputs == std::vector<int>{-1});
    CHECK(sum.layers[1].inputs == std::vector<int>{-1});
    CHECK(sum.layers[2].inputs == std::vector<int>{0, 1});
    CHECK(sum.layers[2].is("add"));
    CHECK(sum.layers[2].out == Shape{4, 6, 6});
    CHECK(sum.layers[2].activation == Activation::relu);
    CHECK(sum.layers[2].weight == -1);
    CHECK(sum.layers[2].flops == 4 * 6 * 6);
    CHECK(sum.layers[3].inputs == std::vector<int>{2});  // the previous layer by default
    CHECK(sum.consumers() == std::vector<std::vector<int>>{{2}, {2}, {3}, {}});
    CHECK_THAT(layer_table(sum), Contains("sum     add    4x6x6") && Contains("a,b"));
    CHECK_THAT(sum.canonical(), Contains("layer b conv filters=4 kernel=3 stride=1 padding=0 activation=none inputs=input\n"));
    CHECK_THAT(sum.canonical(), Contains("layer sum add activation=relu inputs=a,b\n"));

    const Network cat = parse_network(
        two_branches({"[[layer]]", "type = \"concat\"", "inputs = [\"b\", \"a\"]"}, 3), "cat.toml");
    CHECK(cat.layers[2].name == "concat1");
    CHECK(cat.layers[2].out == Shape{7, 6, 6});
    CHECK(cat.layers[2].inputs == std::vector<int>{1, 0});
    CHECK(cat.params[cat.params.size() - 2].shape == std::vector<int64_t>{2, 7 * 6 * 6});  // dense1.weight
    // The wiring is part of what the parameters mean: another order, another hash.
    const Network swapped = parse_network(
        two_branches({"[[layer]]", "type = \"concat\"", "inputs = [\"a\", \"b\"]"}, 3), "cat.toml");
    CHECK(swapped.hash() != cat.hash());
}

TEST_CASE("graphs: a chain written with explicit inputs is the same network", "[model][graph]") {
    const Network plain = parse_network(with_input({"[[layer]]", "type = \"conv\"", "filters = 2", "kernel = 3"},
                                                   last_dense),
                                        "a.toml");
    const Network named = parse_network(
        with_input({"[[layer]]", "type = \"conv\"", "input = \"input\"", "filters = 2", "kernel = 3"},
                   {"[[layer]]", "type = \"dense\"", "input = \"conv1\"", "units = 2"}),
        "b.toml");
    CHECK(plain.hash() == named.hash());
}

TEST_CASE("refused: graph wiring mistakes", "[model][graph][errors]") {
    const std::vector<std::string> add = {"[[layer]]", "type = \"add\""};
    expect_error(two_branches(add + std::vector<std::string>{"inputs = [\"a\", \"c\"]"}), 19, 10,
                 "layer 'add1': no layer named \"c\" above this one");
    expect_error(two_branches(add + std::vector<std::string>{"inputs = [\"a\"]"}), 19, 10,
                 "layer 'add1': add needs at least two inputs, got 1");
    expect_error(two_branches(add + std::vector<std::string>{"inputs = \"a\""}), 19, 10,
                 "layer 'add1': 'inputs' must be an array of layer names, got \"a\"");
    refused_with(two_branches(add + std::vector<std::string>{"inputs = [\"a\", 2]"}),
                 "layer 'add1': 'inputs' must hold layer names (strings), got 2");
    refused_with(two_branches(add), "layer 'add1': add needs 'inputs', the names of the layers it reads");
    refused_with(two_branches(add + std::vector<std::string>{"input = \"a\""}),
                 "layer 'add1': add reads two or more inputs: use 'inputs'");
    refused_with(two_branches(add + std::vector<std::string>{"inputs = [\"a\", \"b\"]", "input = \"a\""}),
                 "layer 'add1': give 'input' or 'inputs', not both");
    // Shapes: add needs one shape, concat one height and width.
    refused_with(two_branches(add + std::vector<std::string>{"inputs = [\"a\", \"b\"]"}, 5),
                 "layer 'add1': add needs inputs of one shape, but input 2 is 5x6x6 and input 1 is 4x6x6");
    refused_with(with_input({"[[layer]]", "type = \"conv\"", "name = \"a\"", "filters = 4", "kernel = 3",
                             "[[layer]]", "type = \"conv\"", "name = \"b\"", "input = \"input\"", "filters = 4",
                             "kernel = 5", "[[layer]]", "type = \"concat\"", "inputs = [\"a\", \"b\"]"},
                            last_dense),
                 "layer 'concat1': concat needs inputs of one height and width, but input 2 is 4x4 and input 1 is 6x6");
    // Only layers above, and every output but the last used.
    expect_error(with_input({"[[layer]]", "type = \"conv\"", "input = \"later\"", "filters = 2", "kernel = 3",
                             "[[layer]]", "type = \"conv\"", "name = \"later\"", "filters = 2", "kernel = 3"},
                            last_dense),
                 8, 9, "layer 'conv1': 'later' is layer 2, below this one: a layer may only read the input or layers above it");
    refused_with(with_input({"[[layer]]", "type = \"conv\"", "name = \"self\"", "input = \"self\"",
                             "filters = 2", "kernel = 3"},
                            last_dense),
                 "layer 'self': 'self' is this layer: a layer may only read the input or layers above it");
    expect_error(two_branches({}), 6, 1,
                 "layer 'a': its output is not read by any later layer (only the last layer's may be unused; check "
                 "the 'input' and 'inputs' below it)");
    refused_with(with_input({"[[layer]]", "type = \"conv\"", "inputs = [\"input\", \"input\"]", "filters = 2",
                             "kernel = 3"},
                            last_dense),
                 "layer 'conv1': conv reads one input: use 'input'");
    refused_with(with_input({"[[layer]]", "type = \"conv\"", "name = \"input\"", "filters = 2", "kernel = 3"},
                            last_dense),
                 "'input' names the network's input: choose another name");
}
