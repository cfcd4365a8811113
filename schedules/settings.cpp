#include "schedules/settings.h"

#include <sstream>
#include <stdexcept>

#include "model/toml.h"

namespace kiln::schedules {
namespace {

[[noreturn]] void fail(const std::string &path, const toml::source_region &where, const std::string &what) {
    std::ostringstream msg;
    msg << path;
    if (where.begin.line) msg << ":" << where.begin.line << ":" << where.begin.column;
    msg << ": error: " << what;
    throw std::runtime_error(msg.str());
}

int read_int(const std::string &path, const toml::node &node, const std::string &key, int lo, int hi) {
    const auto value = node.value<int64_t>();
    if (!node.is_integer() || !value || *value < lo || *value > hi)
        fail(path, node.source(),
             "schedule '" + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return int(*value);
}

}  // namespace

ScheduleSettings load_schedule_settings(const std::string &path) {
    ScheduleSettings s;
    if (path.empty()) return s;
    toml::table file;
    try {
        file = toml::parse_file(path);
    } catch (const toml::parse_error &e) {
        fail(path, e.source(), std::string(e.description()));
    }
    for (const auto &[key, node] : file)
        if (key.str() != "schedule") fail(path, node.source(), "unknown table '" + std::string(key.str()) + "'");
    const toml::table *t = file["schedule"].as_table();
    if (!t) return s;
    for (const auto &[key, node] : *t) {
        const std::string k(key.str());
        if (k == "autoscheduler") {
            const auto name = node.value<std::string>();
            if (!name || (*name != "Mullapudi2016" && *name != "Adams2019" && *name != "Li2018"))
                fail(path, node.source(), "'autoscheduler' must be \"Mullapudi2016\", \"Adams2019\" or \"Li2018\"");
            s.autoscheduler = *name;
        } else if (k == "vector_lanes") {
            s.vector_lanes = read_int(path, node, k, 0, 64);
        } else if (k == "conv_channel_block") {
            s.conv_channel_block = read_int(path, node, k, 0, 16);
        } else if (k == "conv_row_vectors") {
            s.conv_row_vectors = read_int(path, node, k, 1, 4);
        } else if (k == "weight_grad_chunk") {
            s.weight_grad_chunk = read_int(path, node, k, 1, 1024);
        } else if (k == "dense_block") {
            s.dense_block = read_int(path, node, k, 1, 16);
        } else {
            fail(path, node.source(), "unknown schedule key '" + k + "'");
        }
    }
    return s;
}

std::string to_toml(const ScheduleSettings &s, const std::string &comment) {
    std::ostringstream out;
    std::istringstream lines(comment);
    for (std::string line; std::getline(lines, line);) out << "# " << line << "\n";
    out << "[schedule]\n";
    if (!s.autoscheduler.empty()) out << "autoscheduler = \"" << s.autoscheduler << "\"\n";
    out << "vector_lanes = " << s.vector_lanes << "\n"
        << "conv_channel_block = " << s.conv_channel_block << "\n"
        << "conv_row_vectors = " << s.conv_row_vectors << "\n"
        << "weight_grad_chunk = " << s.weight_grad_chunk << "\n"
        << "dense_block = " << s.dense_block << "\n";
    return out.str();
}

}  // namespace kiln::schedules
