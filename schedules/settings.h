// Schedule choices as data: a network may carry its own in schedules/<file stem>.toml,
// which the build passes to the generator (and `kiln tune` writes). Every key is
// optional; a missing file or key means the default hand-written choice.
//
//   [schedule]
//   autoscheduler = "Mullapudi2016"  # instead of the hand-written schedule (read by CMake)
//   vector_lanes = 16                # 0: the target's natural width
//   conv_channel_block = 4           # channels computed together in conv loops; 0: largest of 4,3,2 dividing
//   conv_row_vectors = 2             # a conv row up to this many vectors wide is computed whole at once
//   weight_grad_chunk = 16           # images per parallel chunk of a conv weight-gradient reduction
//   dense_block = 4                  # units or images unrolled together in dense gradients
#pragma once

#include <string>

namespace kiln::schedules {

struct ScheduleSettings {
    std::string autoscheduler;  // "" for the hand-written schedule
    int vector_lanes = 0;
    int conv_channel_block = 0;
    int conv_row_vectors = 2;
    int weight_grad_chunk = 16;
    int dense_block = 4;

    bool operator==(const ScheduleSettings &o) const {
        return autoscheduler == o.autoscheduler && vector_lanes == o.vector_lanes &&
               conv_channel_block == o.conv_channel_block && conv_row_vectors == o.conv_row_vectors &&
               weight_grad_chunk == o.weight_grad_chunk && dense_block == o.dense_block;
    }
};

// Reads a settings file; "" gives the defaults. Throws std::runtime_error with one
// line "FILE:LINE:COL: error: ..." on a bad file.
ScheduleSettings load_schedule_settings(const std::string &path);

// The settings as a TOML file, headed by `comment` lines.
std::string to_toml(const ScheduleSettings &s, const std::string &comment);

}  // namespace kiln::schedules
