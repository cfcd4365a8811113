// Schedule choices as data: a network may carry its own in schedules/<file stem>.toml,
// which the build passes to the generator (and `kiln tune` writes). Every key is
// optional; a missing file or key means the default hand-written choice.
//
//   [schedule]                       # every target: these override the defaults
//   autoscheduler = "Mullapudi2016"  # instead of the hand-written schedule; "none": the hand-written one
//   training_autoscheduler = "Adams2019"  # the training pipeline's alone (over `autoscheduler`)
//   inference_autoscheduler = "none"      # the inference (and features) pipelines' alone
//   conv_algorithm = "winograd"      # 3x3 stride-1 'same' convolutions by Winograd F(2x2, 3x3), but those
//                                    #   narrower than a vector with channels filling vectors; default "direct"
//                                    #   "winograd4": by F(4x4, 3x3) (weight gradients by F(2x2, 3x3)), every
//                                    #   such layer, narrow ones too (its products run along the channels)
//   vector_lanes = 16                # 0: the target's natural width
//   conv_channel_block = 4           # channels computed together in conv loops; 0: largest of 4,3,2 dividing
//   conv_row_vectors = 2             # a conv row up to this many vectors wide is computed whole at once
//   weight_grad_chunk = 16           # images per parallel chunk of a conv weight-gradient reduction
//   dense_block = 4                  # units or images unrolled together in dense gradients
//
//   [schedule.x86-64-avx2]           # a target family's section: overrides [schedule]
//   conv_channel_block = 6           # for targets of that family (target_family below)
//   layer.conv2 = { weight_grad_chunk = 32, forward_channel_block = 4 }  # one layer's, per direction
//
// A pipeline compiled for a target takes [schedule], then its family's section on
// top; a section for another family is kept for the builds that use it. A
// `layer` table ([schedule.layer.conv2], or layer.conv2 = {...} in a section)
// overrides, for one layer (by its name in the network) and one direction of its
// stages, what the network-wide keys set: keys named direction_knob (layer_keys()).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/network.h"

namespace kiln::schedules {

// The directions of a layer's stages, which may each have their own settings.
enum class Direction { forward, input_grad, weight_grad };

// A setting one layer may override: `key` in its table sets the network-wide
// `field` for its stages of one direction, for layers of kind `kind`.
struct ScheduleSettings;
struct LayerKey {
    const char *key;  // "forward_channel_block", ...
    Direction direction;
    int ScheduleSettings::*field;
    int lo, hi;
    const char *kind;  // model::Kind::name
};
const std::vector<LayerKey> &layer_keys();

// One layer's own settings: key -> value, and where each was set (for errors
// found once the network is known).
struct LayerSettings {
    std::map<std::string, int> values;
    std::map<std::string, std::pair<int, int>> places;  // key -> line, column
    int line = 0, column = 0;                           // the layer's table
    bool operator==(const LayerSettings &o) const { return values == o.values; }
};

struct ScheduleSettings {
    // Halide autoschedulers run instead of the hand-written schedule ("" for none),
    // per pipeline: an autoscheduler schedules a whole pipeline. The key
    // `autoscheduler` sets both.
    std::string training_autoscheduler, inference_autoscheduler;
    std::string conv_algorithm = "direct";  // or "winograd", "winograd4" (layers::Algorithms)
    int vector_lanes = 0;
    int conv_channel_block = 0;
    int conv_row_vectors = 2;
    int weight_grad_chunk = 16;
    int dense_block = 4;
    std::map<std::string, LayerSettings> layers;  // layer name -> its own settings, where it has some

    bool operator==(const ScheduleSettings &o) const {
        return training_autoscheduler == o.training_autoscheduler && inference_autoscheduler == o.inference_autoscheduler &&
               conv_algorithm == o.conv_algorithm && vector_lanes == o.vector_lanes &&
               conv_channel_block == o.conv_channel_block && conv_row_vectors == o.conv_row_vectors &&
               weight_grad_chunk == o.weight_grad_chunk && dense_block == o.dense_block && layers == o.layers;
    }

    // The settings the stages of `layer` in `direction` are scheduled with: these,
    // that layer's own keys of that direction on top (and no layer table).
    ScheduleSettings for_stage(const std::string &layer, Direction direction) const;
};

// Checks the layer tables of `s` (read from `path`) against `net`: every layer
// named must be one of its layers, every key one for that layer's kind. Throws
// std::runtime_error "PATH:LINE:COL: error: ..." naming the layer or key.
void check_layers(const ScheduleSettings &s, const model::Network &net, const std::string &path);

// A family of Halide targets that share one section of settings: what decides a
// schedule's best tile sizes (architecture, pointer width, vector ISA), not the OS.
struct TargetFamily {
    const char *name;         // the section's key, e.g. "x86-64-avx2"
    const char *description;  // which targets belong to it
};

// Every family a settings file may have a section for, most specific first.
const std::vector<TargetFamily> &target_families();

// The family of a Halide target given as its string (Halide::Target::to_string(),
// e.g. "x86-64-linux-avx-avx2-f16c-fma-sse41"): the first of target_families()
// it belongs to, "" if none (then only [schedule] applies). Plain string work, so
// the runtime, which has no Halide compiler, can use it too.
std::string target_family(const std::string &halide_target);

// A settings file: [schedule], and each family section resolved on top of it.
struct ScheduleFile {
    ScheduleSettings defaults;
    std::map<std::string, ScheduleSettings> families;  // family name -> its settings

    // The settings a target of `family` is compiled with.
    const ScheduleSettings &for_family(const std::string &family) const {
        const auto it = families.find(family);
        return it == families.end() ? defaults : it->second;
    }
};

// Reads and checks a whole settings file; "" gives the defaults. Throws
// std::runtime_error with one line "FILE:LINE:COL: error: ..." on a bad file,
// naming the key (an unknown family's section among them); given `net`, the
// layer tables of every section are checked against it too (check_layers).
ScheduleFile load_schedule_file(const std::string &path, const model::Network *net = nullptr);

// The settings for targets of `family` ("" for [schedule] alone).
ScheduleSettings load_schedule_settings(const std::string &path, const std::string &family = "");

// The settings as a TOML file with a plain [schedule] table, headed by `comment` lines.
std::string to_toml(const ScheduleSettings &s, const std::string &comment);

// `text` (a settings file's contents, possibly "") with the section of `family`
// replaced by `s`, headed by `comment` lines: every number written out, so that
// [schedule] changes nothing of it later (`autoscheduler` only when set). The
// section's old lines and the comment lines just above its header go; the rest
// of the file stays as it was, byte for byte.
std::string with_family_section(const std::string &text, const std::string &family, const ScheduleSettings &s,
                                const std::string &comment);

}  // namespace kiln::schedules
