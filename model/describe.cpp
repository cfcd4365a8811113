// Text forms of a Network: activation names, the canonical architecture and its hash
// (what a checkpoint records), and the layer table `kiln` prints.
#include <algorithm>
#include <array>
#include <cassert>
#include <vector>

#include <fmt/core.h>

#include "model/network.h"

namespace kiln::model {

const char *to_string(Activation a) {
    switch (a) {
        case Activation::none:
            return "none";
        case Activation::relu:
            return "relu";
        case Activation::tanh:
            return "tanh";
        case Activation::sigmoid:
            return "sigmoid";
    }
    return "?";
}

// The names of the layers a layer reads, comma-separated ("input" for the network's input).
static std::string input_names(const Network &net, const Layer &l) {
    std::string out;
    for (int from : l.inputs)
        out += fmt::format("{}{}", out.empty() ? "" : ",", from < 0 ? "input" : net.layers[size_t(from)].name);
    return out;
}

// Whether a layer reads just the layer above it (or the input, for the first):
// a chain's layers, whose canonical text has no inputs (so that chain networks
// keep the hash they had before graphs).
static bool reads_previous(const Network &net, const Layer &l) {
    return l.inputs.size() == 1 && l.inputs[0] == int(&l - net.layers.data()) - 1;
}

// Everything that decides what the parameters mean, and nothing else: the network's
// name, description, source and training settings are left out. Numbers print in
// fmt's shortest round-trip form, so the text is the same on every platform.
std::string Network::canonical() const {
    std::string out = "kiln-network 1\n";
    out += fmt::format("input channels={} height={} width={} classes={} mean={} std={}\n",
                       input.channels, input.height, input.width, input.classes, input.mean,
                       input.std);
    for (const Layer &l : layers) {
        out += fmt::format("layer {} {} {}", l.name, l.kind->name, l.kind->text(l));
        if (!reads_previous(*this, l)) out += fmt::format(" inputs={}", input_names(*this, l));
        out += '\n';
    }
    return out;
}

std::string Network::hash() const {
    uint64_t h = 14695981039346656037ull;  // FNV-1a, 64-bit
    for (char c : canonical()) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return fmt::format("{:016x}", h);
}

// 61706 -> "61,706"
static std::string grouped(int64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
        out += digits[i];
    }
    return out;
}

static std::string shape_text(const Shape &s) {
    return fmt::format("{}x{}x{}", s.channels, s.height, s.width);
}

int64_t feature_offset(const Network &net, size_t layer) {
    assert(layer <= net.layers.size());
    int64_t offset = 0;
    for (size_t i = 0; i < layer; i++) offset += net.layers[i].out.size();
    return offset;
}

int64_t feature_count(const Network &net) { return feature_offset(net, net.layers.size()); }

bool images_independent_in_training(const Network &net) {
    return std::none_of(net.layers.begin(), net.layers.end(),
                        [](const Layer &l) { return l.kind->batch_statistics; });
}

std::string layer_table(const Network &net) {
    using Row = std::array<std::string, 6>;
    std::vector<Row> rows = {{"layer", "type", "output", "params", "FLOPs", "inputs"},
                             {"input", "", shape_text(net.input.shape()), "", "", ""}};
    for (const Layer &l : net.layers) {
        int64_t params = 0;
        for (int i : {l.weight, l.bias, l.running_mean, l.running_var})
            if (i >= 0) params += net.params[i].count;
        rows.push_back(
            {l.name, std::string(l.kind->name), shape_text(l.out), grouped(params), grouped(l.flops), input_names(net, l)});
    }
    std::array<size_t, 6> width{};
    for (const Row &r : rows)
        for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());

    std::string out;
    size_t rule = 0;
    for (const Row &r : rows) {
        std::string line =
            fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>{}}  {:>{}}  {}", r[0], width[0], r[1], width[1],
                        r[2], width[2], r[3], width[3], r[4], width[4], r[5]);
        line.erase(line.find_last_not_of(' ') + 1);
        rule = std::max(rule, line.size());
        out += line + '\n';
    }
    const std::string total =
        fmt::format("total: {} parameters, {:.2f} MFLOPs per image", grouped(net.param_count),
                    static_cast<double>(net.flops) / 1e6);
    return out + std::string(std::max(rule, total.size()), '-') + '\n' + total + '\n';
}

}  // namespace kiln::model
