// Halide's autoschedulers, run the same way by the generator (a settings file's
// `autoscheduler` keys) and by kiln-tune (which times them as candidates), so
// that the schedule kiln-tune times is the one the build compiles.
#pragma once

#include <string>
#include <vector>

#include "Halide.h"

namespace kiln::schedules {

// The batch the autoschedulers are told to expect: the estimate on the images'
// and outputs' batch dimension.
constexpr int kEstimatedBatch = 64;

// The autoschedulers a settings file may name, in the order kiln-tune tries them.
const std::vector<std::string> &autoscheduler_names();

// Schedules the pipeline of `outputs` (whose inputs and outputs carry estimates)
// by Halide's autoscheduler `name` for `target`, loading its plugin on first use
// (a plugin registers its autoscheduler once per process). Adams2019 searches
// greedily (HL_BEAM_SIZE=1) unless the environment sets HL_BEAM_SIZE.
void autoschedule(const std::vector<Halide::Func> &outputs, const std::string &name, const Halide::Target &target,
                  const Halide::MachineParams &machine = Halide::MachineParams::generic());

}  // namespace kiln::schedules
