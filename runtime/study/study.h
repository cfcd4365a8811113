// `kiln study`: the hidden-layer study. Trains a family of compiled networks with
// one recipe for each seed, probes and inspects them, and writes into OUT:
//   study.json                    what was run (networks, seeds, recipe, axes, machine, time)
//   results.csv                   a row per network and seed
//   curves.csv                    a row per network, seed and epoch
//   probes.csv                    a row per network and probed layer (seed 1)
//   inspect/NETWORK.json          filters, activations, confusion, mistakes (seed 1)
//   runs/NETWORK/seedS/           checkpoint, metrics.csv, train.log, result.json
//   report.md, plots/             made from the files above by scripts/study_report.py
// A finished run (its result.json exists) is never trained again; an interrupted
// one resumes from its last checkpoint, so a study can be stopped and restarted.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "model/study_plan.h"

namespace kiln {

struct StudyOptions {
    std::string plan_path;           // the study plan (networks/study/study.toml)
    std::vector<std::string> files;  // network files to study instead of the plan's networks
    std::optional<int64_t> seeds;    // default: the plan's
    std::optional<int64_t> epochs;   // default: the recipe's
    std::string out_dir = "study";
    std::string data_dir;
    int64_t limit_train = -1, limit_test = -1;  // -1: all images
    int threads = 0;                            // 0: all cores
    bool progress = true;                       // a progress bar on stderr during each run
    std::string report_script;                  // "" : no report
    std::string command;                        // recorded in study.json
    // Asked after every epoch; false stops the study there, as an interruption would.
    std::function<bool()> keep_going;
    // A study over several processes (mpirun; distributed.h): next_run(runs) gives
    // the next run this process does, an index into the one-process order (seeds,
    // then networks), or -1 when none is left; a seed-1 run includes its probes
    // and inspection. Only the `leader` writes study.json, the tables and the
    // report, after all_done() (every process has finished its runs). Unset:
    // every run here, in order.
    std::function<int64_t(int64_t runs)> next_run;
    std::function<void()> all_done;
    bool leader = true;
};

struct StudySummary {
    int64_t runs = 0;     // network x seed pairs in the study
    int64_t trained = 0;  // trained (or finished) by this call
    int64_t skipped = 0;  // already finished before it
    bool complete = false;
};

StudySummary run_study(const StudyOptions &opts, std::ostream &log);

}  // namespace kiln
