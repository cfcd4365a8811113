// kiln-tune's search space: the coordinates of coordinate descent over the
// hand-written schedule's settings, network-wide first, then per layer and
// direction (the layer tables of schedules/settings.h), each with the values
// worth trying for that layer's shape.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/network.h"
#include "schedules/settings.h"

namespace kiln::schedules {

struct Coordinate {
    std::string name;            // "conv_channel_block", "conv2 weight_grad_chunk"
    bool training_only = false;  // its values change the training pipeline alone
    std::vector<int> values;
    std::function<void(ScheduleSettings &, int)> set;
    // What the setting does under given settings (the block a layer gets from
    // "up to 8 channels", say): a value doing what the current one does is not tried.
    std::function<std::string(const ScheduleSettings &)> effect;
    std::function<std::string(int)> label = [](int v) { return std::to_string(v); };
};

// The coordinates for `net`: `vector` is the target's natural vector width in
// floats, `train_batch` the images of a timed training call.
std::vector<Coordinate> search_coordinates(const model::Network &net, int vector, int train_batch);

}  // namespace kiln::schedules
