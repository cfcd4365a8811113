// kiln-tune: searches the schedule of a network's two pipelines (the training
// step and inference) for the machine it runs on, timing the real pipelines
// compiled in Halide's JIT, and writes the winner where the build picks it up.
// `kiln tune NETWORK` runs it.
//
// It tunes for one of the build's targets (KILN_TARGETS): by default the one the
// compiled kiln runs here (the first this CPU supports), or --target. The
// pipelines are compiled for exactly that target, and the winner goes into the
// section of its family ([schedule.x86-64-avx2], ...); the file's other sections
// stay as they were.
//
// The candidates, in this order, until --minutes have passed:
//  1. the starting settings (the file's for that family);
//  2. each of Halide's autoschedulers, run as the generator runs them
//     (schedules/autoschedule.h). An autoscheduler schedules a whole pipeline,
//     so it competes for the training and the inference pipeline separately;
//  3. the hand-written schedule's settings by coordinate descent
//     (tune_search.h): the network-wide settings, then each layer's per
//     direction, one at a time, every value worth trying compiled and timed
//     with the rest fixed, the best kept. A setting of a training direction
//     alone times the training pipeline alone.
// The objective is the time per image of a training step at --batch plus that
// of inference at 256. Then, per pipeline, the starting settings, the best
// hand-written settings and the best autoscheduler are timed again in turns;
// the faster of the last two for each pipeline makes the winner, which is
// written only if it is faster than the starting settings there by more than
// kMargin: on a machine whose speed drifts, a one-off timing picks noise.
//
// --compare tunes nothing: it times the build's schedule (the file's settings)
// and each autoscheduler's for both pipelines, in turns, and prints the ratios
// (bench/tune_vs_autoschedulers.py runs it for every network).
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "Halide.h"
#include "model/network.h"
#include "schedules/autoschedule.h"
#include "schedules/settings.h"
#include "schedules/tune_bench.h"
#include "schedules/tune_search.h"

namespace kiln::schedules {
namespace {

constexpr int kInferBatch = 256;
constexpr double kMargin = 0.02;  // the winner must be 2% faster than the starting settings
constexpr int kFinalRounds = 3;   // turns of the final candidates at the end
constexpr Pipe kPipes[] = {Pipe::training, Pipe::inference};

using Clock = std::chrono::steady_clock;

// Fastest seconds per call of each pipeline; negative: it failed to compile.
struct Times {
    double train_s = 0, infer_s = 0;
    double &of(Pipe p) { return p == Pipe::training ? train_s : infer_s; }
    double of(Pipe p) const { return p == Pipe::training ? train_s : infer_s; }
};

// The first line of a (Halide) error message, for one-line reports.
std::string first_line(const std::string &text) {
    std::string line = text.substr(0, text.find('\n'));
    return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

// Times candidates on the bench within the time budget, and reports progress.
class Tuner {
public:
    Tuner(Bench &bench, double minutes, int candidates)
        : bench_(bench), start_(Clock::now()), deadline_(start_ + std::chrono::duration_cast<Clock::duration>(
                                                                      std::chrono::duration<double>(minutes * 60))),
          total_(candidates) {}

    double per_image(const Times &t) const {
        return t.train_s / bench_.batch(Pipe::training) + t.infer_s / bench_.batch(Pipe::inference);
    }
    bool out_of_time() const { return Clock::now() > deadline_; }
    void next() { done_++; }

    // Seconds per call of pipeline p under s; negative if it does not compile
    // (the error in *error).
    double time(Pipe p, const ScheduleSettings &s, std::string *error = nullptr) {
        const Compiled &c = bench_.compile(p, s);
        if (!c.ok()) {
            if (error) *error = c.error;
            return -1;
        }
        return bench_.time(c, error);
    }
    Times time_both(const ScheduleSettings &s) { return {time(Pipe::training, s), time(Pipe::inference, s)}; }

    // "[k/N] m:ss what  figures  (best so far)"
    void report(const std::string &what, const std::string &figures, bool best) const {
        const int elapsed = int(std::chrono::duration<double>(Clock::now() - start_).count());
        fmt::print("[{:3}/{}] {:2}:{:02} {:<40} {}{}\n", done_, total_, elapsed / 60, elapsed % 60, what, figures,
                   best ? "  (best so far)" : "");
        std::fflush(stdout);
    }
    std::string figures(const Times &t) const {
        return fmt::format("train {:8.3f} ms  infer {:8.3f} ms -> {:7.2f} us/image", t.train_s * 1e3, t.infer_s * 1e3,
                           per_image(t) * 1e6);
    }
    int done() const { return done_; }

private:
    Bench &bench_;
    Clock::time_point start_, deadline_;
    int total_, done_ = 0;
};

// The best autoscheduler found for a pipeline ("" none that compiled).
struct AutoBest {
    std::string name;
    double seconds = -1;
};

// Each autoscheduler on each pipeline of `hand` (whose conv_algorithm they
// keep: the same pipeline), within the budget; the fastest per pipeline.
std::vector<AutoBest> try_autoschedulers(Tuner &tuner, const ScheduleSettings &hand, const Times &hand_t,
                                         const std::vector<std::string> &names) {
    std::vector<AutoBest> best(2);
    for (const std::string &name : names)
        for (Pipe p : kPipes) {
            tuner.next();
            if (tuner.out_of_time()) return best;
            ScheduleSettings trial = hand;
            (p == Pipe::training ? trial.training_autoscheduler : trial.inference_autoscheduler) = name;
            std::string error;
            const auto start = Clock::now();
            const double s = tuner.time(p, trial, &error);
            const double took = std::chrono::duration<double>(Clock::now() - start).count();
            AutoBest &b = best[p == Pipe::training ? 0 : 1];
            const bool better = s > 0 && (b.seconds < 0 || s < b.seconds);
            if (better) b = {name, s};
            const std::string what = fmt::format("{} ({})", name, pipe_name(p));
            if (s < 0)
                tuner.report(what, "failed: " + first_line(error), false);
            else
                tuner.report(what, fmt::format("{} {:8.3f} ms (hand-written {:.3f} ms; scheduled and compiled in {:.0f} s)",
                                               pipe_name(p), s * 1e3, hand_t.of(p) * 1e3, took),
                             s < hand_t.of(p) && better);
        }
    return best;
}

// Coordinate descent from `best` (timed `best_t`) over `coordinates`, within
// the budget: each value compiled and timed with the rest fixed, the best kept.
void descend(Tuner &tuner, const std::vector<Coordinate> &coordinates, ScheduleSettings &best, Times &best_t) {
    for (const Coordinate &c : coordinates)
        for (int value : c.values) {
            tuner.next();
            if (tuner.out_of_time()) return;
            ScheduleSettings trial = best;
            c.set(trial, value);
            if (c.effect(trial) == c.effect(best)) continue;  // the same schedule as the best's
            Times t = best_t;
            std::string error;
            t.train_s = tuner.time(Pipe::training, trial, &error);
            if (!c.training_only && t.train_s > 0) t.infer_s = tuner.time(Pipe::inference, trial, &error);
            const std::string what = c.name + " = " + c.label(value);
            if (t.train_s < 0 || t.infer_s < 0) {
                tuner.report(what, "failed: " + first_line(error), false);
                continue;
            }
            const bool better = tuner.per_image(t) < tuner.per_image(best_t);
            tuner.report(what, tuner.figures(t), better);
            if (better) {
                best = trial;
                best_t = t;
            }
        }
}

std::string cpu_name() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

// The build's targets, as CMake compiled them in (KILN_TARGETS, best first, comma-separated).
std::vector<std::string> build_targets() {
    std::vector<std::string> targets;
    std::string list = KILN_BUILD_TARGETS;
    for (size_t start = 0, end; start <= list.size(); start = end + 1) {
        end = std::min(list.find(',', start), list.size());
        if (end > start) targets.push_back(list.substr(start, end - start));
    }
    return targets;
}

// The CPU features `t` needs that this machine lacks ("" if it runs here).
std::string missing_here(const Halide::Target &t) {
    const Halide::Target host = Halide::get_host_target();
    if (t.arch != host.arch || t.bits != host.bits || t.os != host.os)
        return "another architecture or OS than this machine's (" + host.to_string() + ")";
    std::string missing;
    for (int f = 0; f < int(Halide::Target::FeatureEnd); f++) {
        const auto feature = Halide::Target::Feature(f);
        if (t.has_feature(feature) && !host.has_feature(feature))
            missing += (missing.empty() ? "" : " ") + Halide::Target::feature_to_name(feature);
    }
    return missing.empty() ? "" : "features this CPU lacks: " + missing;
}

// The target to tune for: `given` (one of the build's that runs here, or "host",
// which network files compiled on demand use), or the first of the build's that
// runs here, as kiln's dispatch picks.
// Throws std::invalid_argument with one line on a bad --target.
Halide::Target tune_target(const std::string &given) {
    const std::vector<std::string> targets = build_targets();
    std::string list;
    for (const std::string &t : targets) list += (list.empty() ? "" : ", ") + t;
    if (given == "host") return Halide::get_host_target();  // what network files compile for (kiln build)
    if (!given.empty()) {
        if (!Halide::Target::validate_target_string(given))
            throw std::invalid_argument("kiln-tune: error: --target " + given + ": not a target string Halide knows");
        const Halide::Target t(given);
        if (std::none_of(targets.begin(), targets.end(), [&](const std::string &b) { return Halide::Target(b) == t; }))
            throw std::invalid_argument("kiln-tune: error: --target " + given +
                                        ": this build does not include it (its targets, KILN_TARGETS: " + list +
                                        "); settings for it would never be used");
        if (const std::string why = missing_here(t); !why.empty())
            throw std::invalid_argument("kiln-tune: error: --target " + given + ": cannot be timed here: " + why);
        return t;
    }
    for (const std::string &b : targets)
        if (missing_here(Halide::Target(b)).empty()) return Halide::Target(b);
    throw std::invalid_argument("kiln-tune: error: none of this build's targets (" + list + ") runs on this CPU");
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Writes `best` as `family`'s section of `out_file` (the rest kept), and checks
// that the file read back gives it.
void write_section(const std::string &out_file, const std::string &family, const ScheduleSettings &best,
                   const std::string &summary) {
    const std::string text = with_family_section(read_file(out_file), family, best, summary);
    const std::string tmp = out_file + ".tmp";
    {
        std::ofstream out(tmp);
        out << text;
        if (!out.good()) throw std::runtime_error(out_file + ": error: cannot write");
    }
    try {
        if (!(load_schedule_file(tmp).for_family(family) == best))
            throw std::runtime_error("the section read back differs");
    } catch (const std::exception &e) {
        std::remove(tmp.c_str());
        throw std::runtime_error(out_file + ": error: cannot rewrite its section [schedule." + family +
                                 "] (is it given as dotted keys?): " + e.what());
    }
    std::rename(tmp.c_str(), out_file.c_str());
}

void keep_fastest(double &fastest, double seconds) {
    if (seconds > 0 && (fastest < 0 || seconds < fastest)) fastest = seconds;
}

void set_autoscheduler(ScheduleSettings &s, Pipe p, const std::string &name) {
    (p == Pipe::training ? s.training_autoscheduler : s.inference_autoscheduler) = name;
}

// The final choice, timed side by side.
struct Final {
    ScheduleSettings winner;
    Times winner_t, start_t;
};

// Per pipeline, the starting settings, the best hand-written ones and the best
// autoscheduler's schedule in turns, each's fastest: the winner is `hand` with
// the autoschedulers that beat it.
Final side_by_side(Tuner &tuner, const ScheduleSettings &start, const ScheduleSettings &hand,
                   const std::vector<AutoBest> &autos) {
    Final f{hand, {}, {}};
    fmt::print("timing the starting settings, the best hand-written ones and the best autoscheduler in turns "
               "({} rounds)\n", kFinalRounds);
    for (Pipe p : kPipes) {
        const AutoBest &a = autos[p == Pipe::training ? 0 : 1];
        ScheduleSettings by_auto = hand;
        set_autoscheduler(by_auto, p, a.name);
        double start_s = -1, hand_s = -1, auto_s = -1;
        for (int round = 0; round < kFinalRounds; round++) {
            keep_fastest(start_s, tuner.time(p, start));
            keep_fastest(hand_s, tuner.time(p, hand));
            if (!a.name.empty()) keep_fastest(auto_s, tuner.time(p, by_auto));
        }
        const bool auto_wins = auto_s > 0 && auto_s < hand_s;
        if (auto_wins) set_autoscheduler(f.winner, p, a.name);
        f.winner_t.of(p) = auto_wins ? auto_s : hand_s;
        f.start_t.of(p) = start_s;
        fmt::print("  {:<9}: starting settings {:8.3f} ms, hand-written {:8.3f} ms, {} -> {}\n", pipe_name(p),
                   start_s * 1e3, hand_s * 1e3,
                   a.name.empty() ? std::string("no autoscheduler") : fmt::format("{} {:8.3f} ms", a.name, auto_s * 1e3),
                   auto_wins ? a.name : std::string("hand-written"));
    }
    return f;
}

struct Options {
    std::string network_file, out_file, target_name, json_file;
    std::string autoschedulers = "Mullapudi2016,Adams2019,Li2018";
    int batch = 64, repeats = 15, threads = 0, rounds = 3;
    double minutes = 10;
    bool compare = false;
};

std::vector<std::string> split_list(const std::string &list) {
    std::vector<std::string> out;
    std::istringstream in(list);
    for (std::string w; std::getline(in, w, ',');)
        if (!w.empty()) out.push_back(w);
    return out;
}

// A string as a JSON string literal.
std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + "\"";
}

// One candidate of --compare: a name and the settings that schedule both pipelines.
struct Contender {
    std::string name;
    ScheduleSettings settings;
    Compiled compiled[2];
    double fastest[2] = {-1, -1};
};

// Compiles every contender's pipelines, reporting each; the bench caches them.
void compile_contenders(Bench &bench, std::vector<Contender> &contenders) {
    for (Contender &c : contenders)
        for (Pipe p : kPipes) {
            Compiled &out = c.compiled[p == Pipe::training ? 0 : 1];
            out = bench.compile(p, c.settings);
            if (out.ok())
                fmt::print("{:<14} {:<9} scheduled and compiled in {:6.1f} s\n", c.name, pipe_name(p), out.compile_s);
            else
                fmt::print("{:<14} {:<9} FAILED: {}\n", c.name, pipe_name(p), first_line(out.error));
            std::fflush(stdout);
        }
}

// The contenders' figures as JSON, for bench/tune_vs_autoschedulers.py.
void write_compare_json(const std::string &path, const Bench &bench, const std::string &network, bool halves,
                        const std::vector<Contender> &contenders) {
    std::ofstream out(path);
    out << "{\"network\": " << json_string(network) << ", \"target\": " << json_string(bench.target().to_string())
        << ", \"train_batch\": " << bench.batch(Pipe::training) << ", \"infer_batch\": " << bench.batch(Pipe::inference)
        << ", \"one_core_halves\": " << (halves ? "true" : "false") << ", \"schedules\": {";
    for (size_t i = 0; i < contenders.size(); i++) {
        const Contender &c = contenders[i];
        out << (i ? ", " : "") << json_string(c.name) << ": {";
        for (int k = 0; k < 2; k++) {
            out << (k ? ", " : "") << json_string(pipe_name(kPipes[k])) << ": ";
            if (c.compiled[k].ok())
                out << "{\"ms\": " << c.fastest[k] * 1e3 << ", \"compile_s\": " << c.compiled[k].compile_s << "}";
            else
                out << "{\"error\": " << json_string(first_line(c.compiled[k].error)) << "}";
        }
        out << "}";
    }
    out << "}}\n";
    if (!out.good()) throw std::runtime_error(path + ": error: cannot write");
}

// --compare: the build's schedule and each autoscheduler's, both pipelines,
// timed in turns (`rounds` of them, each's fastest), and the ratios.
int compare(Bench &bench, const Options &o, const ScheduleSettings &build, bool halves) {
    std::vector<Contender> contenders = {{"kiln", build, {}, {-1, -1}}};
    for (const std::string &name : split_list(o.autoschedulers)) {
        ScheduleSettings s = build;  // the same pipeline (conv_algorithm), scheduled by `name`
        s.training_autoscheduler = s.inference_autoscheduler = name;
        contenders.push_back({name, s, {}, {-1, -1}});
    }
    compile_contenders(bench, contenders);
    for (int round = 0; round < o.rounds; round++)
        for (int k = 0; k < 2; k++)
            for (Contender &c : contenders)
                if (c.compiled[k].ok()) {
                    std::string error;
                    const double s = bench.time(c.compiled[k], &error);
                    if (s < 0) c.compiled[k].error = "running it: " + error;  // no more turns
                    keep_fastest(c.fastest[k], s);
                }
    for (int k = 0; k < 2; k++) {
        const double kiln = contenders[0].fastest[k];
        fmt::print("{:<9} (batch {:3}, fastest of {} rounds x {} calls): kiln {:8.3f} ms", pipe_name(kPipes[k]),
                   bench.batch(kPipes[k]), o.rounds, o.repeats, kiln * 1e3);
        for (size_t i = 1; i < contenders.size(); i++) {
            const Contender &c = contenders[i];
            if (c.compiled[k].ok() && kiln > 0)
                fmt::print(" | {} {:8.3f} ms ({:.2f}x)", c.name, c.fastest[k] * 1e3, c.fastest[k] / kiln);
            else
                fmt::print(" | {} failed", c.name);
        }
        fmt::print("\n");
    }
    if (!o.json_file.empty()) write_compare_json(o.json_file, bench, bench.net().name, halves, contenders);
    return 0;
}

// How many candidates the search may time (the progress lines' N).
int candidate_count(const std::vector<Coordinate> &coordinates, size_t autoschedulers, bool start_autoscheduled) {
    int n = 1 + (start_autoscheduled ? 1 : 0) + 2 * int(autoschedulers);
    for (const Coordinate &c : coordinates) n += int(c.values.size());
    return n;
}

// The search from the file's settings for `family`, the side-by-side check, and
// the winner written as that family's section. `tuned` heads its comment.
int tune(Bench &bench, const Options &o, const std::string &family, const ScheduleFile &file, const std::string &tuned) {
    const ScheduleSettings start = file.for_family(family);
    ScheduleSettings hand = start;
    hand.training_autoscheduler = hand.inference_autoscheduler = "";
    const std::vector<std::string> names = split_list(o.autoschedulers);
    const std::vector<Coordinate> coordinates = search_coordinates(
        bench.net(), bench.target().natural_vector_size(Halide::Float(32)), bench.batch(Pipe::training));
    Tuner tuner(bench, o.minutes, candidate_count(coordinates, names.size(), !(hand == start)));

    tuner.next();
    std::string error;
    const Times start_t = {tuner.time(Pipe::training, start, &error), tuner.time(Pipe::inference, start, &error)};
    if (start_t.train_s < 0 || start_t.infer_s < 0)
        throw std::runtime_error(o.out_file + ": error: the starting settings do not compile or run: " + first_line(error));
    tuner.report("starting settings", tuner.figures(start_t), false);
    Times hand_t = start_t;
    if (!(hand == start)) {
        tuner.next();
        hand_t = tuner.time_both(hand);
        tuner.report("the hand-written schedule", tuner.figures(hand_t), false);
    }
    const std::vector<AutoBest> autos = try_autoschedulers(tuner, hand, hand_t, names);
    if (hand_t.train_s > 0 && hand_t.infer_s > 0) descend(tuner, coordinates, hand, hand_t);
    if (tuner.out_of_time())
        fmt::print("the time budget ({} min) ran out after {} candidates\n", o.minutes, tuner.done() - 1);

    const Final f = side_by_side(tuner, start, hand, autos);
    const bool faster = tuner.per_image(f.winner_t) <= (1 - kMargin) * tuner.per_image(f.start_t);
    const std::string before = fmt::format("training step {:.3f} ms, inference {:.3f} ms", f.start_t.train_s * 1e3,
                                           f.start_t.infer_s * 1e3);
    if (f.winner == start || !faster) {
        if (!(f.winner == start))
            fmt::print("the best found ({:.2f} us/image) is not {:.0f}% faster than the starting settings ({:.2f}) "
                       "timed side by side: keeping the starting settings\n",
                       tuner.per_image(f.winner_t) * 1e6, kMargin * 100, tuner.per_image(f.start_t) * 1e6);
        fmt::print("no faster settings found ({}): ", before);
        if (file.families.count(family)) {
            fmt::print("[schedule.{}] of {} left as it was\n", family, o.out_file);
        } else {  // the starting settings are this family's: written down, [schedule] no longer decides them
            write_section(o.out_file, family, start, tuned + "No faster settings than these: " + before + ".");
            fmt::print("wrote them as [schedule.{}] of {}\n", family, o.out_file);
        }
        return 0;
    }
    const std::string summary = tuned + fmt::format("Before: {}; after: {:.3f} ms, {:.3f} ms.", before,
                                                    f.winner_t.train_s * 1e3, f.winner_t.infer_s * 1e3);
    write_section(o.out_file, family, f.winner, summary);
    fmt::print("{}\nwrote [schedule.{}] of {}: rebuild (scripts/build.sh) to use it\n", summary, family, o.out_file);
    fmt::print("training images/s {:.0f} -> {:.0f}; inference images/s {:.0f} -> {:.0f}\n",
               bench.batch(Pipe::training) / f.start_t.train_s, bench.batch(Pipe::training) / f.winner_t.train_s,
               bench.batch(Pipe::inference) / f.start_t.infer_s, bench.batch(Pipe::inference) / f.winner_t.infer_s);
    return 0;
}

void add_options(CLI::App &app, Options &o) {
    app.add_option("NETWORK_TOML", o.network_file, "The network file")->required()->check(CLI::ExistingFile);
    app.add_option("--out", o.out_file, "Where to write the settings (default: schedules/<stem>.toml beside networks/)");
    app.add_option("--batch", o.batch, "Training batch to tune for")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--repeats", o.repeats, "Timed repetitions per candidate")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--threads", o.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    app.add_option("--target", o.target_name,
                   "Halide target to tune for, one of the build's (default: the one kiln runs on this CPU)");
    app.add_option("--minutes", o.minutes, "Time budget of the search (the final side-by-side check follows)")
        ->check(CLI::Range(0.0, 10000.0))
        ->capture_default_str();
    app.add_option("--autoschedulers", o.autoschedulers, "Halide autoschedulers to try, comma-separated (\"\": none)")
        ->capture_default_str();
    app.add_flag("--compare", o.compare,
                 "Tune nothing: time the file's schedule and each autoscheduler's side by side, and print the ratios");
    app.add_option("--rounds", o.rounds, "--compare: turns of every schedule")->check(CLI::Range(1, 100))->capture_default_str();
    app.add_option("--json", o.json_file, "--compare: also write the figures to this file as JSON");
}

// The target to tune for, checking --autoschedulers too. Throws
// std::invalid_argument with one line on a bad command line.
Halide::Target checked_target(const Options &o) {
    const Halide::Target target = tune_target(o.target_name);
    for (const std::string &name : split_list(o.autoschedulers)) {
        const auto &known = autoscheduler_names();
        if (std::find(known.begin(), known.end(), name) == known.end())
            throw std::invalid_argument("kiln-tune: error: --autoschedulers: unknown autoscheduler '" + name +
                                        "' (known: Mullapudi2016, Adams2019, Li2018)");
    }
    if (target_family(target.to_string()).empty())
        throw std::invalid_argument("kiln-tune: error: target " + target.to_string() +
                                    " belongs to no family of settings sections");
    return target;
}

// The batches timed. With two threads kiln cuts every batch in halves, one per
// core with serial loops (runtime/core/compiled.cpp): then both pipelines are
// timed as one core runs them, halves of the batches on one thread.
struct Timed {
    bool halves;
    int train_batch, infer_batch;
};
Timed timed_batches(const Options &o) {
    if (o.threads > 0) setenv("HL_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
    const char *env_threads = std::getenv("HL_NUM_THREADS");
    const int used_threads = env_threads && std::atoi(env_threads) > 0
                                 ? std::atoi(env_threads)
                                 : int(std::max(1u, std::thread::hardware_concurrency()));
    const bool halves = used_threads == 2 && o.batch >= 2;
    if (halves) setenv("HL_NUM_THREADS", "1", 1);
    return {halves, halves ? o.batch / 2 : o.batch, halves ? kInferBatch / 2 : kInferBatch};
}

int run(int argc, char **argv) {
    CLI::App app{"kiln-tune: search schedule settings for this machine and write the best"};
    Options o;
    add_options(app, o);
    CLI11_PARSE(app, argc, argv);
    Halide::Target target;
    try {
        target = checked_target(o);
    } catch (const std::invalid_argument &e) {
        fmt::print(stderr, "{}\n", e.what());
        return 2;
    }
    const std::string family = target_family(target.to_string());
    const model::Network net = model::load_network(o.network_file);
    if (o.out_file.empty()) {
        const std::string stem = o.network_file.substr(o.network_file.find_last_of('/') + 1);
        const std::string dir = o.network_file.substr(0, o.network_file.find_last_of('/') + 1);
        o.out_file = dir + "../schedules/" + stem;
    }
    const ScheduleFile file = std::ifstream(o.out_file).good() ? load_schedule_file(o.out_file, &net) : ScheduleFile{};
    const Timed timed = timed_batches(o);
    Bench bench(net, target, timed.train_batch, timed.infer_batch, o.repeats);
    const std::string one_core = fmt::format("halves of {} and {}", timed.train_batch, timed.infer_batch);
    fmt::print("{} {} (training batch {}, inference batch {}{}) on {}\nfor target {}: section [schedule.{}] of {}\n",
               o.compare ? "comparing schedules of" : "tuning", net.name, o.batch, kInferBatch,
               timed.halves ? "; timed as one of the two cores runs them: " + one_core + ", one thread" : "",
               cpu_name(), target.to_string(), family, o.out_file);
    if (o.compare) return compare(bench, o, file.for_family(family), timed.halves);
    const std::string tuned = fmt::format("Tuned by `kiln tune {}` on {} for {} (training batch {}, inference batch {}{}).\n",
                                          net.name, cpu_name(), target.to_string(), o.batch, kInferBatch,
                                          timed.halves ? ", timed on one core for " + one_core : "");
    return tune(bench, o, family, file, tuned);
}

}  // namespace
}  // namespace kiln::schedules

namespace {

// Halide's warnings (the autoschedulers print dozens) would bury the progress
// lines: dropped. Errors are thrown as Halide's own reporter does.
class QuietWarnings : public Halide::CompileTimeErrorReporter {
public:
    void warning(const char *) override {}
    void error(const char *msg) override { throw Halide::CompileError(msg); }
};

}  // namespace

int main(int argc, char **argv) {
    // As the kiln runtime does (runtime/core/compiled.cpp): large buffers reused, not
    // mapped afresh by every call, so that page faults do not time the candidates.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    static QuietWarnings quiet;
    Halide::set_custom_compile_time_error_reporter(&quiet);
    try {
        return kiln::schedules::run(argc, argv);
    } catch (const std::exception &e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
}
