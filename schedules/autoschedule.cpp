#include "schedules/autoschedule.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace kiln::schedules {
namespace {

// Where the autoschedulers' plugins are (generator/CMakeLists.txt: Halide's own).
struct Plugin {
    const char *name, *path;
};
constexpr Plugin kPlugins[] = {
    {"Mullapudi2016", KILN_PLUGIN_MULLAPUDI2016},
    {"Adams2019", KILN_PLUGIN_ADAMS2019},
    {"Li2018", KILN_PLUGIN_LI2018},
};

}  // namespace

const std::vector<std::string> &autoscheduler_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const Plugin &p : kPlugins) n.push_back(p.name);
        return n;
    }();
    return names;
}

void autoschedule(const std::vector<Halide::Func> &outputs, const std::string &name, const Halide::Target &target,
                  const Halide::MachineParams &machine) {
    static std::vector<std::string> loaded;
    if (std::find(loaded.begin(), loaded.end(), name) == loaded.end()) {
        const auto plugin = std::find_if(std::begin(kPlugins), std::end(kPlugins),
                                         [&](const Plugin &p) { return name == p.name; });
        if (plugin == std::end(kPlugins)) throw std::invalid_argument("unknown autoscheduler '" + name + "'");
        Halide::load_plugin(plugin->path);
        loaded.push_back(name);
    }
    // Adams2019's beam search (beam 32 by default) ran out of memory on training
    // pipelines: lenet5's took 24 GB before the kernel killed it. Greedy (beam
    // 1) unless HL_BEAM_SIZE asks otherwise, in the build and in kiln-tune alike.
    if (name == "Adams2019") setenv("HL_BEAM_SIZE", "1", 0);
    Halide::Pipeline(outputs).auto_schedule(name, target, machine);
}

}  // namespace kiln::schedules
