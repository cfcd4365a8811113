#include "schedules/settings.h"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <utility>
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

// One family's membership test on a target string's '-'-separated words.
struct FamilyRule {
    TargetFamily family;
    const char *arch;
    const char *bits;
    std::vector<std::vector<const char *>> needs;  // any one of these sets of features, all of it (AVX implies SSE4.1)
};

const std::vector<FamilyRule> &family_rules() {
    static const std::vector<FamilyRule> rules = {
        {{"x86-64-avx512", "x86-64 with AVX-512 as Skylake-X and later have it (avx512_skylake)"}, "x86", "64",
         {{"avx512_skylake"}, {"avx512_cannonlake"}, {"avx512_sapphirerapids"}}},
        {{"x86-64-avx2", "x86-64 with AVX2 and FMA (Haswell and later)"}, "x86", "64", {{"avx2", "fma"}}},
        {{"x86-64-sse41", "x86-64 with SSE4.1 (Nehalem and later)"}, "x86", "64", {{"sse41"}, {"avx"}, {"avx2"}}},
        {{"x86-64", "any other x86-64"}, "x86", "64", {}},
        {{"x86-32", "32-bit x86"}, "x86", "32", {}},
        {{"arm-64", "AArch64 (NEON always there)"}, "arm", "64", {}},
        {{"arm-32", "32-bit ARM"}, "arm", "32", {}},
        {{"powerpc-64", "64-bit POWER"}, "powerpc", "64", {}},
        {{"riscv-64", "64-bit RISC-V"}, "riscv", "64", {}},
        {{"wasm-32", "WebAssembly"}, "wasm", "32", {}},
    };
    return rules;
}

std::string known_families() {
    std::string names;
    for (const FamilyRule &r : family_rules()) names += std::string(names.empty() ? "" : ", ") + r.family.name;
    return names;
}

// Why a section's key is not a family, for the error message.
std::string not_a_family(const std::string &key) {
    const std::string known = "; the known families: " + known_families();
    // A Halide target string names an OS ("x86-64-linux-avx2"); a family does not.
    static const std::regex target_string("^[a-z0-9]+-(32|64)-(linux|osx|windows|android|ios|noos|qurt|wasmrt|"
                                          "fuchsia|host)(-.*)?$|^host(-.*)?$");
    if (std::regex_match(key, target_string)) {
        const std::string family = target_family(key);
        return "section 'schedule." + key + "' names a Halide target, not a target family" +
               (family.empty() ? known : " (its family is '" + family + "': [schedule." + family + "])");
    }
    return "unknown target family '" + key + "' in section 'schedule." + key + "'" + known;
}

std::string read_autoscheduler(const std::string &path, const toml::node &node, const std::string &key) {
    const auto name = node.value<std::string>();
    if (!name || (*name != "Mullapudi2016" && *name != "Adams2019" && *name != "Li2018" && *name != "none"))
        fail(path, node.source(), "'" + key + "' must be \"Mullapudi2016\", \"Adams2019\", \"Li2018\" or \"none\"");
    return *name == "none" ? "" : *name;
}

const LayerKey *find_layer_key(const std::string &key) {
    for (const LayerKey &k : layer_keys())
        if (key == k.key) return &k;
    return nullptr;
}

std::string layer_key_names() {
    std::string names;
    for (const LayerKey &k : layer_keys()) names += std::string(names.empty() ? "" : ", ") + k.key;
    return names;
}

// A `layer` table: layer name -> its keys (layer_keys()), merged into `layers`
// over what an outer section set. Names are checked against the network later
// (check_layers), when it is known.
void read_layers(const std::string &path, const toml::node &node, std::map<std::string, LayerSettings> &layers) {
    if (!node.is_table()) fail(path, node.source(), "'layer' must be a table: [schedule.layer.NAME] or layer.NAME = {...}");
    for (const auto &[name, table] : *node.as_table()) {
        const std::string layer(name.str());
        if (!table.is_table())
            fail(path, table.source(), "'layer." + layer + "' must be a table of that layer's settings, e.g. layer." +
                                           layer + " = { weight_grad_chunk = 32 }");
        LayerSettings &l = layers[layer];
        l.line = int(table.source().begin.line);
        l.column = int(table.source().begin.column);
        for (const auto &[key, value] : *table.as_table()) {
            const std::string k(key.str());
            const LayerKey *known = find_layer_key(k);
            if (!known)
                fail(path, value.source(), "unknown key '" + k + "' for layer '" + layer + "' (a layer's keys: " +
                                               layer_key_names() + ")");
            l.values[k] = read_int(path, value, k, known->lo, known->hi);
            l.places[k] = {int(value.source().begin.line), int(value.source().begin.column)};
        }
    }
}

// Sets in `s` the keys `table` has, checking each. `autoscheduler` sets both
// pipelines' first, so that a pipeline's own key overrides it in any order.
void apply(const std::string &path, const toml::table &table, ScheduleSettings &s, bool families_allowed) {
    if (const toml::node *both = table.get("autoscheduler"))
        s.training_autoscheduler = s.inference_autoscheduler = read_autoscheduler(path, *both, "autoscheduler");
    for (const auto &[key, node] : table) {
        const std::string k(key.str());
        if (k == "layer") {
            read_layers(path, node, s.layers);
        } else if (node.is_table() && families_allowed) {
            continue;  // a family section, read by the caller
        } else if (k == "autoscheduler") {
            continue;  // above
        } else if (k == "training_autoscheduler") {
            s.training_autoscheduler = read_autoscheduler(path, node, k);
        } else if (k == "inference_autoscheduler") {
            s.inference_autoscheduler = read_autoscheduler(path, node, k);
        } else if (k == "conv_algorithm") {
            const auto name = node.value<std::string>();
            if (!name || (*name != "direct" && *name != "winograd" && *name != "winograd4"))
                fail(path, node.source(), "'conv_algorithm' must be \"direct\", \"winograd\" or \"winograd4\"");
            s.conv_algorithm = *name;
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
}

[[noreturn]] void fail_at(const std::string &path, int line, int column, const std::string &what) {
    throw std::runtime_error(path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + what);
}

std::vector<std::string> words(const std::string &text, char sep) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string w; std::getline(in, w, sep);) out.push_back(w);
    return out;
}

std::string comment_lines(const std::string &comment) {
    std::string out;
    for (const std::string &line : words(comment, '\n')) out += "# " + line + "\n";
    return out;
}

}  // namespace

const std::vector<LayerKey> &layer_keys() {
    using S = ScheduleSettings;
    static const std::vector<LayerKey> keys = {
        {"forward_channel_block", Direction::forward, &S::conv_channel_block, 0, 16, "conv"},
        {"forward_row_vectors", Direction::forward, &S::conv_row_vectors, 1, 4, "conv"},
        {"input_grad_channel_block", Direction::input_grad, &S::conv_channel_block, 0, 16, "conv"},
        {"input_grad_row_vectors", Direction::input_grad, &S::conv_row_vectors, 1, 4, "conv"},
        {"weight_grad_chunk", Direction::weight_grad, &S::weight_grad_chunk, 1, 1024, "conv"},
        {"weight_grad_channel_block", Direction::weight_grad, &S::conv_channel_block, 0, 16, "conv"},
        {"input_grad_dense_block", Direction::input_grad, &S::dense_block, 1, 16, "dense"},
        {"weight_grad_dense_block", Direction::weight_grad, &S::dense_block, 1, 16, "dense"},
    };
    return keys;
}

ScheduleSettings ScheduleSettings::for_stage(const std::string &layer, Direction direction) const {
    ScheduleSettings s = *this;
    s.layers.clear();
    const auto it = layers.find(layer);
    if (it == layers.end()) return s;
    for (const auto &[key, value] : it->second.values) {
        const LayerKey *k = find_layer_key(key);
        if (k && k->direction == direction) s.*(k->field) = value;
    }
    return s;
}

void check_layers(const ScheduleSettings &s, const model::Network &net, const std::string &path) {
    for (const auto &[name, l] : s.layers) {
        const auto layer = std::find_if(net.layers.begin(), net.layers.end(),
                                        [&](const model::Layer &m) { return m.name == name; });
        if (layer == net.layers.end()) {
            std::string names;
            for (const model::Layer &m : net.layers) names += (names.empty() ? "" : ", ") + m.name;
            fail_at(path, l.line, l.column, "no layer named '" + name + "' in network '" + net.name + "' (its layers: " + names + ")");
        }
        for (const auto &[key, value] : l.values) {
            const LayerKey *k = find_layer_key(key);
            if (k && layer->kind->name != k->kind) {
                const auto &[line, column] = l.places.at(key);
                fail_at(path, line, column, "key '" + key + "' is for " + k->kind + " layers; layer '" + name + "' is " +
                                                std::string(layer->kind->name));
            }
        }
    }
}

const std::vector<TargetFamily> &target_families() {
    static const std::vector<TargetFamily> families = [] {
        std::vector<TargetFamily> f;
        for (const FamilyRule &r : family_rules()) f.push_back(r.family);
        return f;
    }();
    return families;
}

std::string target_family(const std::string &halide_target) {
    const std::vector<std::string> w = words(halide_target, '-');
    if (w.size() < 2) return "";
    const std::set<std::string> features(w.begin() + 2, w.end());
    for (const FamilyRule &r : family_rules()) {
        if (w[0] != r.arch || w[1] != r.bits) continue;
        if (r.needs.empty()) return r.family.name;
        for (const auto &set : r.needs)
            if (std::all_of(set.begin(), set.end(), [&](const char *f) { return features.count(f) > 0; }))
                return r.family.name;
    }
    return "";
}

ScheduleFile load_schedule_file(const std::string &path, const model::Network *net) {
    ScheduleFile file;
    if (path.empty()) return file;
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error &e) {
        fail(path, e.source(), std::string(e.description()));
    }
    for (const auto &[key, node] : root)
        if (key.str() != "schedule") fail(path, node.source(), "unknown table '" + std::string(key.str()) + "'");
    const toml::node *top = root.get("schedule");
    if (!top) return file;
    if (!top->is_table()) fail(path, top->source(), "'schedule' must be a table: [schedule]");
    const toml::table &t = *top->as_table();
    apply(path, t, file.defaults, true);
    for (const auto &[key, node] : t) {
        if (!node.is_table()) continue;
        const std::string family(key.str());
        if (family == "layer") continue;
        const auto &families = family_rules();
        if (std::none_of(families.begin(), families.end(), [&](const FamilyRule &r) { return family == r.family.name; }))
            fail(path, node.source(), not_a_family(family));
        ScheduleSettings s = file.defaults;
        apply(path, *node.as_table(), s, false);
        file.families[family] = s;
    }
    if (net) {
        check_layers(file.defaults, *net, path);
        for (const auto &[family, s] : file.families) check_layers(s, *net, path);
    }
    return file;
}

ScheduleSettings load_schedule_settings(const std::string &path, const std::string &family) {
    return load_schedule_file(path).for_family(family);
}

std::string to_toml(const ScheduleSettings &s, const std::string &comment) {
    std::ostringstream out;
    out << comment_lines(comment) << "[schedule]\n";
    const auto name = [](const std::string &a) { return "\"" + (a.empty() ? std::string("none") : a) + "\"\n"; };
    if (s.training_autoscheduler == s.inference_autoscheduler && !s.training_autoscheduler.empty())
        out << "autoscheduler = " << name(s.training_autoscheduler);
    else if (s.training_autoscheduler != s.inference_autoscheduler)
        out << "training_autoscheduler = " << name(s.training_autoscheduler)
            << "inference_autoscheduler = " << name(s.inference_autoscheduler);
    if (s.conv_algorithm != "direct") out << "conv_algorithm = \"" << s.conv_algorithm << "\"\n";
    out << "vector_lanes = " << s.vector_lanes << "\n"
        << "conv_channel_block = " << s.conv_channel_block << "\n"
        << "conv_row_vectors = " << s.conv_row_vectors << "\n"
        << "weight_grad_chunk = " << s.weight_grad_chunk << "\n"
        << "dense_block = " << s.dense_block << "\n";
    for (const auto &[layer, l] : s.layers) {
        if (l.values.empty()) continue;
        const bool bare = std::regex_match(layer, std::regex("[A-Za-z0-9_-]+"));  // else a quoted key
        out << "layer." << (bare ? layer : "\"" + layer + "\"") << " = {";
        const char *sep = " ";
        for (const auto &[key, value] : l.values) out << std::exchange(sep, ", ") << key << " = " << value;
        out << " }\n";
    }
    return out.str();
}

std::string with_family_section(const std::string &text, const std::string &family, const ScheduleSettings &s,
                                const std::string &comment) {
    std::string section = to_toml(s, comment);
    section.replace(section.find("[schedule]"), 10, "[schedule." + family + "]");

    std::vector<std::string> lines = words(text, '\n');
    const std::regex header("^\\s*\\[\\s*schedule\\s*\\.\\s*(\"" + family + "\"|" + family + ")\\s*\\]\\s*(#.*)?$");
    const std::regex any_header("^\\s*\\[.*");
    size_t begin = lines.size(), end = lines.size();
    for (size_t i = 0; i < lines.size(); i++)
        if (std::regex_match(lines[i], header)) {
            begin = i;
            for (end = i + 1; end < lines.size() && !std::regex_match(lines[end], any_header); end++) {
            }
            while (begin > 0 && lines[begin - 1].rfind('#', 0) == 0) begin--;
            break;
        }
    std::string out;
    for (size_t i = 0; i < begin; i++) out += lines[i] + "\n";
    if (begin == lines.size() && !out.empty() && out != "\n" && out.substr(out.size() - 2) != "\n\n") out += "\n";
    out += section;
    if (end < lines.size()) out += "\n";
    for (size_t i = end; i < lines.size(); i++) out += lines[i] + (i + 1 < lines.size() || text.back() == '\n' ? "\n" : "");
    return out;
}

}  // namespace kiln::schedules
