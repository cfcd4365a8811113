// Schedule choices as data: a network may carry its own in schedules/<file stem>.toml,
// which the build passes to the generator (and `kiln tune` writes). Every key is
// optional; a missing file or key means the default hand-written choice.
//
//   [schedule]                       # every target: these override the defaults
//   autoscheduler = "Mullapudi2016"  # instead of the hand-written schedule; "none": the hand-written one
//   conv_algorithm = "winograd"      # 3x3 stride-1 'same' convolutions by Winograd F(2x2, 3x3); default "direct"
//   vector_lanes = 16                # 0: the target's natural width
//   conv_channel_block = 4           # channels computed together in conv loops; 0: largest of 4,3,2 dividing
//   conv_row_vectors = 2             # a conv row up to this many vectors wide is computed whole at once
//   weight_grad_chunk = 16           # images per parallel chunk of a conv weight-gradient reduction
//   dense_block = 4                  # units or images unrolled together in dense gradients
//
//   [schedule.x86-64-avx2]           # a target family's section: overrides [schedule]
//   conv_channel_block = 6           # for targets of that family (target_family below)
//
// A pipeline compiled for a target takes [schedule], then its family's section on
// top; a section for another family is kept for the builds that use it.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kiln::schedules {

struct ScheduleSettings {
    std::string autoscheduler;  // "" for the hand-written schedule
    std::string conv_algorithm = "direct";  // or "winograd" (layers::Algorithms)
    int vector_lanes = 0;
    int conv_channel_block = 0;
    int conv_row_vectors = 2;
    int weight_grad_chunk = 16;
    int dense_block = 4;

    bool operator==(const ScheduleSettings &o) const {
        return autoscheduler == o.autoscheduler && conv_algorithm == o.conv_algorithm && vector_lanes == o.vector_lanes &&
               conv_channel_block == o.conv_channel_block && conv_row_vectors == o.conv_row_vectors &&
               weight_grad_chunk == o.weight_grad_chunk && dense_block == o.dense_block;
    }
};

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
// naming the key (an unknown family's section among them).
ScheduleFile load_schedule_file(const std::string &path);

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
