// `kiln check FILE --json`: a validated network as data, so that tools in other
// languages (scripts/torch_check.py, bench/compare.py) read Kiln's own model
// instead of parsing the TOML again.
#pragma once

#include <string>

#include "model/network.h"

namespace kiln {

// One JSON object (indented, ending in a newline):
//   name, description, source, hash, canonical   (Network::canonical() and its hash)
//   input {width, height, channels, classes, mean, std}
//   layers [{name, type, inputs, in, out, activation, spec, params, flops}] in file order:
//     inputs   the names of the layers read, "input" for the network's input
//     in       one shape {channels, height, width} per input; out: the output's shape
//     spec     the kind's key=value pairs of the canonical text (conv: filters, kernel,
//              stride, padding, activation; pool: size, stride; ...), numbers as numbers
//     params   [{name, shape, offset, count, buffer}]: the checkpoint's tensors of the layer
//   param_count, flops (per image)
//   train {epochs, batch, optimizer, learning_rate, ..., label_smoothing, init}, augment {...}
//     the [train] and [augment] settings with every default filled in.
std::string network_json(const model::Network &net);

}  // namespace kiln
