// Checkpoints: bit-exact round trips, the safetensors layout read back by hand,
// atomic writes, and one refusal per kind of damaged or foreign file.
#include "model/kinds/conv.h"
#include "model/kinds/dense.h"
#include "checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "temp_dir.h"
#include <nlohmann/json.hpp>

using namespace kiln;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

using kiln::testing::TempDir;

std::vector<uint8_t> read_bytes(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    REQUIRE(out.good());
}

void add_param(model::Network &net, const std::string &name, std::vector<int64_t> shape) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    const int64_t fan_in = count / shape[0];
    net.params.push_back({name, std::move(shape), net.param_count, count, fan_in});
    net.param_count += count;
}

// A small network built by hand, as parse_network would describe it: a 1 x 4 x 4
// input, conv1 (2 filters 3 x 3, giving 2 x 2 x 2), dense1 (`units` outputs).
model::Network make_network(const std::string &name, int64_t units = 3) {
    model::Network net;
    net.name = name;
    net.input = {4, 4, 1, units};

    model::Layer conv;
    conv.kind = model::find_kind("conv");
    conv.name = "conv1";
    conv.spec = model::ConvSpec{2, 3, 1, 0};
    conv.activation = model::Activation::relu;
    conv.inputs = {-1};
    conv.in = {1, 4, 4};
    conv.out = {2, 2, 2};
    conv.weight = 0, conv.bias = 1;

    model::Layer dense;
    dense.kind = model::find_kind("dense");
    dense.name = "dense1";
    dense.spec = model::DenseSpec{units};
    dense.inputs = {0};
    dense.in = {2, 2, 2};
    dense.out = {units, 1, 1};
    dense.weight = 2, dense.bias = 3;
    net.layers = {conv, dense};

    add_param(net, "conv1.weight", {2, 1, 3, 3});
    add_param(net, "conv1.bias", {2});
    add_param(net, "dense1.weight", {units, 8});
    add_param(net, "dense1.bias", {units});
    return net;
}

// Values that only a bit-exact copy keeps: signed zero, subnormals, infinity,
// a NaN with a payload, and ordinary numbers that differ per vector.
std::vector<float> awkward_values(int64_t count, float scale) {
    std::vector<float> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); i++) values[i] = scale * (float(i) - 7.25f) / 3.0f;
    uint32_t nan_bits = 0x7FC01234;
    std::memcpy(&values[1], &nan_bits, sizeof nan_bits);
    values[2] = -0.0f;
    values[3] = std::numeric_limits<float>::denorm_min();
    values[4] = -std::numeric_limits<float>::infinity();
    values[5] = std::numeric_limits<float>::max();
    return values;
}

Checkpoint make_checkpoint(const model::Network &net) {
    Checkpoint ck;
    ck.epoch = 7;
    ck.params = awkward_values(net.param_count, 1.0f);
    ck.optimizer_state["momentum"] = awkward_values(net.param_count, -0.5f);
    ck.optimizer_state["velocity"] = awkward_values(net.param_count, 2.0f);
    ck.metadata = {{"seed", "42"}, {"learning_rate", "0.05"}, {"rng", "1 2 3 4"},
                   {"note", "quotes \" and \\ and caf\xC3\xA9"}};
    return ck;
}

bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A safetensors file taken apart by hand, independently of checkpoint.cpp.
struct Parts {
    uint64_t header_length = 0;
    ordered_json header;
    std::vector<uint8_t> data;
};

Parts take_apart(const std::vector<uint8_t> &bytes) {
    REQUIRE(bytes.size() >= 8);
    Parts parts;
    for (int i = 0; i < 8; i++) parts.header_length |= uint64_t(bytes[i]) << (8 * i);
    REQUIRE(parts.header_length <= bytes.size() - 8);
    const auto header_end = bytes.begin() + 8 + std::ptrdiff_t(parts.header_length);
    parts.header = ordered_json::parse(bytes.begin() + 8, header_end);
    parts.data.assign(header_end, bytes.end());
    return parts;
}

std::vector<uint8_t> put_together(const std::string &header, const std::vector<uint8_t> &data) {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < 8; i++) bytes.push_back(uint8_t(uint64_t(header.size()) >> (8 * i)));
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    return bytes;
}

// Rewrites a saved checkpoint's JSON header, keeping its data.
void edit_header(const std::string &path, const std::function<void(ordered_json &)> &edit) {
    Parts parts = take_apart(read_bytes(path));
    edit(parts.header);
    write_bytes(path, put_together(parts.header.dump(), parts.data));
}

// Loading `path` for `net` fails with one line that names the file and says `detail`.
void check_refused(const std::string &path, const model::Network &net, const std::string &detail) {
    try {
        load_checkpoint(path, net);
        FAIL("loaded " << path << " (expected: " << detail << ")");
    } catch (const CheckpointError &e) {
        const std::string message = e.what();
        CHECK_THAT(message, StartsWith(path + ": error: "));
        CHECK_THAT(message, Contains(detail));
        CHECK(message.find('\n') == std::string::npos);
    }
}

// A directory holding one checkpoint of make_network("tiny"), saved.
struct Saved {
    TempDir dir{"checkpoint"};
    std::string path = dir.file("tiny.safetensors");
    model::Network net = make_network("tiny");
    Checkpoint ck = make_checkpoint(net);
    Saved() { save_checkpoint(path, net, ck); }
};

}  // namespace

TEST_CASE("checkpoints round-trip bit-exactly", "[checkpoint]") {
    Saved saved;
    SECTION("with optimizer state") {}
    SECTION("without optimizer state") {
        saved.ck.optimizer_state.clear();
        saved.ck.metadata.clear();
        saved.ck.epoch = 0;
        save_checkpoint(saved.path, saved.net, saved.ck);
    }
    const Checkpoint loaded = load_checkpoint(saved.path, saved.net);
    CHECK(loaded.epoch == saved.ck.epoch);
    CHECK(same_bits(loaded.params, saved.ck.params));
    CHECK(loaded.metadata == saved.ck.metadata);
    REQUIRE(loaded.optimizer_state.size() == saved.ck.optimizer_state.size());
    for (const auto &[state, values] : saved.ck.optimizer_state) {
        INFO("optimizer state " << state);
        REQUIRE(loaded.optimizer_state.count(state));
        CHECK(same_bits(loaded.optimizer_state.at(state), values));
    }
}

TEST_CASE("a checkpoint is a valid safetensors file", "[checkpoint]") {
    Saved saved;
    const std::vector<uint8_t> bytes = read_bytes(saved.path);
    const Parts parts = take_apart(bytes);
    CHECK(parts.header_length % 8 == 0);  // so the F32 data starts aligned
    CHECK(bytes[8] == '{');

    const ordered_json &metadata = parts.header.at("__metadata__");
    CHECK(metadata.at("format") == "kiln");
    CHECK(metadata.at("network") == "tiny");
    CHECK(metadata.at("hash") == saved.net.hash());
    CHECK(metadata.at("epoch") == "7");
    for (const auto &[key, value] : saved.ck.metadata) CHECK(metadata.at(key) == value);

    // Tensors in order: the parameters, then each optimizer state's copies.
    std::vector<std::pair<std::string, const model::ParamTensor *>> expected;
    for (const std::string prefix : {"", "optimizer.momentum.", "optimizer.velocity."})
        for (const auto &p : saved.net.params) expected.push_back({prefix + p.name, &p});
    REQUIRE(parts.header.size() == expected.size() + 1);

    auto key = parts.header.begin();
    uint64_t offset = 0;
    for (const auto &[name, param] : expected) {
        ++key;  // past __metadata__, then one tensor per step
        INFO("tensor " << name);
        REQUIRE(key.key() == name);
        CHECK(key.value().at("dtype") == "F32");
        CHECK(key.value().at("shape").get<std::vector<int64_t>>() == param->shape);
        const auto offsets = key.value().at("data_offsets").get<std::vector<uint64_t>>();
        REQUIRE(offsets == std::vector<uint64_t>{offset, offset + uint64_t(param->count) * 4});
        offset = offsets[1];
    }
    CHECK(offset == parts.data.size());

    // The first tensor's data is the parameters' little-endian F32 bits.
    const auto &first = saved.net.params[0];
    std::vector<float> values(static_cast<size_t>(first.count));
    for (size_t i = 0; i < values.size(); i++) {
        uint32_t bits = 0;
        for (int b = 0; b < 4; b++) bits |= uint32_t(parts.data[4 * i + size_t(b)]) << (8 * b);
        std::memcpy(&values[i], &bits, sizeof bits);
    }
    CHECK(same_bits(values, {saved.ck.params.begin(), saved.ck.params.begin() + first.count}));
}

TEST_CASE("checkpoint writes are atomic", "[checkpoint]") {
    Saved saved;
    const std::vector<std::string> only_checkpoint = {"tiny.safetensors"};

    SECTION("a successful save replaces the file and leaves no temporary file") {
        saved.ck.epoch = 8;
        save_checkpoint(saved.path, saved.net, saved.ck);
        CHECK(load_checkpoint(saved.path, saved.net).epoch == 8);
        CHECK(saved.dir.entries() == only_checkpoint);
    }
    SECTION("a save into a missing directory fails and leaves nothing") {
        const std::string path = saved.dir.file("missing/tiny.safetensors");
        CHECK_THROWS_WITH(save_checkpoint(path, saved.net, saved.ck),
                          StartsWith(path + ": error: "));
        CHECK(saved.dir.entries() == only_checkpoint);
    }
    SECTION("a save that cannot rename removes its temporary file") {
        // rename() cannot put a file over a non-empty directory, even as root.
        const std::string path = saved.dir.file("in-the-way");
        fs::create_directories(fs::path(path) / "inside");
        CHECK_THROWS_WITH(save_checkpoint(path, saved.net, saved.ck),
                          StartsWith(path + ": error: ") && Contains("rename"));
        CHECK(saved.dir.entries() == std::vector<std::string>{"in-the-way", "tiny.safetensors"});
        CHECK(fs::exists(fs::path(path) / "inside"));
    }
    SECTION("a checkpoint that does not fit the network is refused before writing") {
        const std::vector<uint8_t> before = read_bytes(saved.path);
        Checkpoint bad = saved.ck;
        SECTION("too few parameters") { bad.params.pop_back(); }
        SECTION("optimizer state of the wrong size") { bad.optimizer_state["momentum"].push_back(1); }
        SECTION("optimizer state name with a dot") { bad.optimizer_state["a.b"] = bad.params; }
        SECTION("reserved metadata key") { bad.metadata["hash"] = "0"; }
        SECTION("negative epoch") { bad.epoch = -1; }
        SECTION("metadata that is not UTF-8") { bad.metadata["note"] = "\xFF"; }
        CHECK_THROWS_AS(save_checkpoint(saved.path, saved.net, bad), std::invalid_argument);
        CHECK(read_bytes(saved.path) == before);
        CHECK(saved.dir.entries() == only_checkpoint);
    }
}

TEST_CASE("checkpoint: a missing file is refused", "[checkpoint]") {
    TempDir dir{"checkpoint"};
    check_refused(dir.file("absent.safetensors"), make_network("tiny"), "cannot open");
}

TEST_CASE("checkpoint: a truncated file is refused", "[checkpoint]") {
    Saved saved;
    const std::vector<uint8_t> bytes = read_bytes(saved.path);
    const size_t header_end = 8 + take_apart(bytes).header_length;
    const std::pair<size_t, const char *> cuts[] = {
        {0, "too short"},          {5, "too short"},          {8, "beyond the end"},
        {20, "beyond the end"},    {header_end - 1, "beyond the end"},
        {header_end, "truncated"}, {header_end + 10, "truncated"},
        {bytes.size() - 1, "truncated"},
    };
    for (const auto &[length, detail] : cuts) {
        INFO("cut at " << length << " of " << bytes.size() << " bytes");
        write_bytes(saved.path, {bytes.begin(), bytes.begin() + std::ptrdiff_t(length)});
        check_refused(saved.path, saved.net, detail);
    }
}

TEST_CASE("checkpoint: trailing bytes are refused", "[checkpoint]") {
    Saved saved;
    std::vector<uint8_t> bytes = read_bytes(saved.path);
    bytes.insert(bytes.end(), 4, 0);
    write_bytes(saved.path, bytes);
    check_refused(saved.path, saved.net, "trailing bytes");
}

TEST_CASE("checkpoint: a header length beyond the file is refused", "[checkpoint]") {
    Saved saved;
    std::vector<uint8_t> bytes = read_bytes(saved.path);
    for (uint64_t length : {uint64_t(bytes.size()), ~uint64_t(0)}) {
        INFO("header length " << length);
        for (int i = 0; i < 8; i++) bytes[size_t(i)] = uint8_t(length >> (8 * i));
        write_bytes(saved.path, bytes);
        check_refused(saved.path, saved.net, "header length " + std::to_string(length));
    }
}

TEST_CASE("checkpoint: a header that is not a JSON object is refused", "[checkpoint]") {
    Saved saved;
    SECTION("garbage") {
        write_bytes(saved.path, put_together("{\"conv1.weight\": oops\n}   ", {}));
        check_refused(saved.path, saved.net, "invalid JSON");
    }
    SECTION("an array") {
        write_bytes(saved.path, put_together("[1, 2]  ", {}));
        check_refused(saved.path, saved.net, "not an object");
    }
}

TEST_CASE("checkpoint: bad tensor entries are refused", "[checkpoint]") {
    Saved saved;
    auto check_edit = [&](const std::function<void(ordered_json &)> &edit, const std::string &detail) {
        edit_header(saved.path, edit);
        check_refused(saved.path, saved.net, detail);
    };
    SECTION("a tensor missing") {
        check_edit([](ordered_json &h) { h.erase("dense1.bias"); }, "missing tensor 'dense1.bias'");
    }
    SECTION("an optimizer state's tensor missing") {
        check_edit([](ordered_json &h) { h.erase("optimizer.velocity.conv1.weight"); },
                   "missing tensor 'optimizer.velocity.conv1.weight'");
    }
    SECTION("a misnamed tensor") {
        check_edit([](ordered_json &h) {
            const ordered_json entry = h["conv1.bias"];  // a copy: inserting may move entries
            h.erase("conv1.bias");
            h["conv9.bias"] = entry;
        }, "unexpected tensor 'conv9.bias'");
    }
    SECTION("optimizer state for a parameter the network lacks") {
        check_edit([](ordered_json &h) {
            const ordered_json entry = h["dense1.bias"];
            h["optimizer.momentum.dense9.bias"] = entry;
        }, "unexpected tensor 'optimizer.momentum.dense9.bias'");
    }
    SECTION("a wrong shape with the right size") {
        check_edit([](ordered_json &h) { h["conv1.weight"]["shape"] = {2, 9, 1, 1}; },
                   "tensor 'conv1.weight' has shape [2, 9, 1, 1], expected [2, 1, 3, 3]");
    }
    SECTION("a wrong dtype") {
        check_edit([](ordered_json &h) { h["dense1.weight"]["dtype"] = "F16"; },
                   "tensor 'dense1.weight' has dtype F16, expected F32");
    }
    SECTION("data offsets spanning the wrong size") {
        check_edit([](ordered_json &h) { h["conv1.bias"]["data_offsets"][1] = 0; }, "conv1.bias");
    }
    SECTION("data offsets not contiguous") {
        check_edit([](ordered_json &h) {
            for (auto &offset : h["conv1.bias"]["data_offsets"]) offset = offset.get<uint64_t>() + 4;
        }, "not contiguous");
    }
    SECTION("a malformed entry") {
        check_edit([](ordered_json &h) { h["conv1.bias"].erase("data_offsets"); },
                   "tensor 'conv1.bias': \"data_offsets\" is missing");
    }
}

TEST_CASE("checkpoint: bad metadata is refused", "[checkpoint]") {
    Saved saved;
    auto check_metadata = [&](const std::string &key, const ordered_json &value,
                              const std::string &detail) {
        INFO("metadata " << key << " = " << value.dump());
        edit_header(saved.path, [&](ordered_json &h) { h["__metadata__"][key] = value; });
        check_refused(saved.path, saved.net, detail);
        save_checkpoint(saved.path, saved.net, saved.ck);  // undo
    };
    check_metadata("format", "pytorch", "not a kiln checkpoint");
    check_metadata("hash", "0123456789abcdef", "checkpoint is for network 'tiny' (hash 0123456789abcdef)");
    check_metadata("seed", 42, "must map strings to strings");
    for (const char *epoch : {"-1", "", "seven", "3.5", "1e3", "99999999999999999999"})
        check_metadata("epoch", epoch, "epoch '" + std::string(epoch) + "' is not a non-negative integer");

    edit_header(saved.path, [](ordered_json &h) { h.erase("__metadata__"); });
    check_refused(saved.path, saved.net, "not a kiln checkpoint");
}

TEST_CASE("checkpoint: another network's checkpoint is refused", "[checkpoint]") {
    Saved saved;
    SECTION("another name") {
        const model::Network other = make_network("other");
        check_refused(saved.path, other, "checkpoint is for network 'tiny' (hash " +
                                             saved.net.hash() + "), not 'other' (hash " +
                                             other.hash() + ")");
    }
    SECTION("the same name, another architecture") {
        // The hash tells them apart; were it equal, the shapes would still differ.
        check_refused(saved.path, make_network("tiny", 4), "");
    }
}
