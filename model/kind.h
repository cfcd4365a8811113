// A layer kind, described in one place: its type name, its parser, its canonical
// text and what the rest of Kiln needs to know about it without knowing the
// kind. Every kind lives in its own files, model/kinds/<kind>.{h,cpp} (the spec
// struct in the header, the parser and this entry in the source), and registers
// itself: the build gathers model/kinds/*.cpp into the table kinds() iterates, so
// adding a kind edits no central list. The generator, the schedules and the float64
// reference keep their own per-kind tables the same way, keyed by `name`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::model {

struct Layer;
struct Shape;

namespace detail {
class TableReader;
struct LayerParse;
}  // namespace detail

struct Kind {
    std::string_view name;  // the TOML `type`
    // Reads the kind's own keys, validated against the shapes flowing in (one per
    // input, in order), and gives its output shape, parameter tensors and FLOPs.
    detail::LayerParse (*parse)(const detail::TableReader &r, const std::vector<Shape> &in) = nullptr;
    // The spec in the canonical text ("filters=6 kernel=5 ..."): what decides the
    // parameters' meaning, as a checkpoint's hash covers it.
    std::string (*text)(const Layer &l) = nullptr;
    // Inputs: 1 (key `input`, default the previous layer) or at least 2 (key `inputs`).
    bool many_inputs = false;
    // In training an image's result depends on the other images of its shard
    // (batchnorm's batch statistics).
    bool batch_statistics = false;
    // In training the layer draws random numbers (dropout); in evaluation it is
    // the identity, and has no output of its own worth inspecting.
    bool random_in_training = false;
};

// Every registered kind, in type-name order.
const std::vector<const Kind *> &kinds();
// The kind of that type name, or nullptr.
const Kind *find_kind(std::string_view name);

// What each kind's source file defines (model/kinds/<file>.cpp: void
// register_<file>(KindTable &)); the generated table calls them all.
using KindTable = std::vector<const Kind *>;

}  // namespace kiln::model
