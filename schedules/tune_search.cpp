#include "schedules/tune_search.h"

#include <algorithm>

#include "layers/layers.h"
#include "model/kinds/conv.h"

namespace kiln::schedules {
namespace {

// conv_algorithm's values, the tuner's coordinate 0, 1, 2.
constexpr const char *kConvAlgorithms[] = {"direct", "winograd", "winograd4"};

// The block schedules/common.cpp's channel_block() makes of `channels` under
// a setting: the largest divisor up to it (0: up to 4).
int effective_block(int64_t channels, int setting) {
    for (int b = setting > 0 ? setting : 4; b > 1; b--)
        if (channels % b == 0) return b;
    return 1;
}

// What conv_row_vectors decides for a row `width` wide: whether it is done
// whole, all its vectors at once (schedule_window_rows).
std::string whole_row(int64_t width, int row_vectors, int vector) { return width <= row_vectors * vector ? "w" : "p"; }

bool reads_input(const model::Layer &l) { return l.inputs.size() == 1 && l.inputs[0] == -1; }

bool has(const model::Network &net, const char *kind) {
    return std::any_of(net.layers.begin(), net.layers.end(), [kind](const model::Layer &l) { return l.is(kind); });
}

// The network-wide settings of conv layers, with what each does for every conv layer.
void conv_network_coordinates(const model::Network &net, int vector, int train_batch, std::vector<Coordinate> &out) {
    const auto convs = [&net](auto per_layer) {
        return [&net, per_layer](const ScheduleSettings &s) {
            std::string e;
            for (const model::Layer &l : net.layers)
                if (l.is("conv")) e += per_layer(l, s) + ",";
            return e;
        };
    };
    if (std::any_of(net.layers.begin(), net.layers.end(),
                    [](const model::Layer &l) { return l.is("conv") && layers::uses_winograd(l, {true}); }))
        out.push_back({"conv_algorithm", false, {0, 1, 2},
                       [](ScheduleSettings &s, int v) { s.conv_algorithm = kConvAlgorithms[v]; },
                       [](const ScheduleSettings &s) { return s.conv_algorithm; },
                       [](int v) { return "\"" + std::string(kConvAlgorithms[v]) + "\""; }});
    out.push_back({"conv_channel_block", false, {1, 2, 3, 4, 6, 8},
                   [](ScheduleSettings &s, int v) { s.conv_channel_block = v; },
                   convs([](const model::Layer &l, const ScheduleSettings &s) {
                       return std::to_string(effective_block(l.out.channels, s.conv_channel_block)) + "/" +
                              std::to_string(effective_block(l.in.channels, s.conv_channel_block));
                   })});
    out.push_back({"conv_row_vectors", false, {1, 2, 3}, [](ScheduleSettings &s, int v) { s.conv_row_vectors = v; },
                   convs([vector](const model::Layer &l, const ScheduleSettings &s) {
                       return whole_row(l.out.width, s.conv_row_vectors, vector) +
                              whole_row(l.in.width, s.conv_row_vectors, vector);
                   })});
    out.push_back({"weight_grad_chunk", true, {4, 8, 16, 32, 64},
                   [](ScheduleSettings &s, int v) { s.weight_grad_chunk = v; },
                   [train_batch](const ScheduleSettings &s) { return std::to_string(std::min(s.weight_grad_chunk, train_batch)); }});
}

// The network-wide coordinates, those of a kind only where the network has one.
std::vector<Coordinate> network_coordinates(const model::Network &net, int vector, int train_batch) {
    std::vector<Coordinate> out;
    if (has(net, "conv")) conv_network_coordinates(net, vector, train_batch, out);
    if (has(net, "dense"))
        out.push_back({"dense_block", true, {1, 2, 4, 8}, [](ScheduleSettings &s, int v) { s.dense_block = v; },
                       [](const ScheduleSettings &s) { return std::to_string(s.dense_block); }});
    out.push_back({"vector_lanes", false, {8, 16, 32}, [](ScheduleSettings &s, int v) { s.vector_lanes = v; },
                   [vector](const ScheduleSettings &s) { return std::to_string(s.vector_lanes > 0 ? s.vector_lanes : vector); }});
    return out;
}

// One layer key's coordinate: `what` gives the effect of the layer's resolved
// settings for the key's direction.
Coordinate layer_coordinate(const model::Layer &l, const LayerKey &key, std::vector<int> values,
                            std::function<std::string(const ScheduleSettings &)> what) {
    const std::string name = l.name, k = key.key;
    const Direction d = key.direction;
    return {name + " " + k, d != Direction::forward, std::move(values),
            [name, k](ScheduleSettings &s, int v) { s.layers[name].values[k] = v; },
            [name, d, what](const ScheduleSettings &s) { return what(s.for_stage(name, d)); }};
}

const LayerKey &key_named(const std::string &name) {
    for (const LayerKey &k : layer_keys())
        if (name == k.key) return k;
    throw std::logic_error("no layer key " + name);
}

void conv_layer_coordinates(const model::Layer &l, int vector, int train_batch, std::vector<Coordinate> &out) {
    const auto block = [](int64_t channels) {
        return [channels](const ScheduleSettings &s) { return std::to_string(effective_block(channels, s.conv_channel_block)); };
    };
    const auto row = [vector](int64_t width) {
        return [width, vector](const ScheduleSettings &s) { return whole_row(width, s.conv_row_vectors, vector); };
    };
    out.push_back(layer_coordinate(l, key_named("forward_channel_block"), {1, 2, 3, 4, 6, 8}, block(l.out.channels)));
    out.push_back(layer_coordinate(l, key_named("forward_row_vectors"), {1, 2, 3}, row(l.out.width)));
    out.push_back(layer_coordinate(l, key_named("weight_grad_chunk"), {4, 8, 16, 32, 64},
                                   [train_batch](const ScheduleSettings &s) {
                                       return std::to_string(std::min(s.weight_grad_chunk, train_batch));
                                   }));
    if (reads_input(l)) return;  // no input gradient
    out.push_back(layer_coordinate(l, key_named("input_grad_channel_block"), {1, 2, 3, 4, 6, 8}, block(l.in.channels)));
    out.push_back(layer_coordinate(l, key_named("input_grad_row_vectors"), {1, 2, 3}, row(l.in.width)));
}

void dense_layer_coordinates(const model::Layer &l, std::vector<Coordinate> &out) {
    const auto block = [](const ScheduleSettings &s) { return std::to_string(s.dense_block); };
    out.push_back(layer_coordinate(l, key_named("weight_grad_dense_block"), {1, 2, 4, 8}, block));
    if (!reads_input(l)) out.push_back(layer_coordinate(l, key_named("input_grad_dense_block"), {1, 2, 4, 8}, block));
}

}  // namespace

std::vector<Coordinate> search_coordinates(const model::Network &net, int vector, int train_batch) {
    std::vector<Coordinate> out = network_coordinates(net, vector, train_batch);
    for (const model::Layer &l : net.layers) {
        if (l.is("conv")) conv_layer_coordinates(l, vector, train_batch, out);
        if (l.is("dense")) dense_layer_coordinates(l, out);
    }
    return out;
}

}  // namespace kiln::schedules
