// kiln-tune: searches the hand-written schedule's settings (schedules/settings.h) for
// the machine it runs on, timing the real pipelines compiled in Halide's JIT, and
// writes the winner where the build picks it up. `kiln tune NETWORK` runs it.
//
// It tunes for one of the build's targets (KILN_TARGETS): by default the one the
// compiled kiln runs here (the first this CPU supports), or --target. The
// pipelines are compiled for exactly that target, and the winner goes into the
// section of its family ([schedule.x86-64-avx2], ...); the file's other sections
// stay as they were.
//
// The search is coordinate descent: one setting at a time, every candidate value
// compiled and timed with the others fixed, the best kept. The objective is the
// time per image of a training step at --batch plus that of inference at 256.
// The winner is then timed again in turns with the starting settings, and
// written only if it is faster there by more than kMargin: on a machine whose
// speed drifts, a one-off timing picks noise.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "Halide.h"
#include "model/network.h"
#include "pipeline.h"
#include "schedules/cpu.h"
#include "schedules/settings.h"

namespace kiln::schedules {
namespace {

using Halide::Buffer;
using Halide::ImageParam;

constexpr int kInferBatch = 256;
constexpr double kMargin = 0.02;  // the winner must be 2% faster than the starting settings
constexpr int kFinalRounds = 3;   // turns of the starting settings and the winner at the end

struct Timing {
    double train_s = 0, infer_s = 0;  // fastest seconds per call
    int train_batch = 0, infer_batch = 0;
    double per_image() const { return train_s / train_batch + infer_s / infer_batch; }
};

// The fastest of `repeats` calls: a search compares candidates, and the minimum is
// the figure least disturbed by whatever else the machine is doing.
double fastest_seconds(const std::function<void()> &call, int repeats) {
    for (int i = 0; i < 2; i++) call();
    std::vector<double> times;
    for (int i = 0; i < repeats; i++) {
        const auto start = std::chrono::steady_clock::now();
        call();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return *std::min_element(times.begin(), times.end());
}

// Both pipelines of `net` under `settings`, compiled in the JIT and timed.
class Bench {
public:
    Bench(const model::Network &net, const Halide::Target &target, int batch, int infer_batch, int repeats)
        : net_(net), target_(target), batch_(batch), infer_batch_(infer_batch), repeats_(repeats) {
        std::mt19937 gen(1);
        std::uniform_real_distribution<float> uniform(-0.05f, 0.05f);
        params_ = Buffer<float>(int(net.param_count));
        params_.for_each_value([&](float &v) { v = uniform(gen); });
        const model::InputSpec &in = net.input;
        train_images_ = Buffer<float>(int(in.width), int(in.height), int(in.channels), batch);
        infer_images_ = Buffer<float>(int(in.width), int(in.height), int(in.channels), infer_batch);
        train_images_.for_each_value([&](float &v) { v = 0.5f + uniform(gen) * 10; });
        infer_images_.for_each_value([&](float &v) { v = 0.5f + uniform(gen) * 10; });
        labels_ = Buffer<int32_t>(batch);
        for (int n = 0; n < batch; n++) labels_(n) = n % int(in.classes);
    }

    Timing time(const ScheduleSettings &settings) {
        const Halide::Target &target = target_;
        Timing t;
        t.train_batch = batch_;
        t.infer_batch = infer_batch_;
        {
            ImageParam p(Halide::Float(32), 1, "params"), x(Halide::Float(32), 4, "images"), y(Halide::Int(32), 1, "labels");
            Halide::Param<uint32_t> seed("seed");
            Halide::Param<int32_t> first_image("first_image");
            pipeline::Graph g = pipeline::build_training(net_, p, x, y, {x.dim(3).extent(), seed, first_image},
                                                                 algorithms_for(settings));
            schedule_training(g, target, settings);
            Halide::Pipeline train({g.loss.loss, g.scores, g.grad});
            train.compile_jit(target);
            Buffer<float> loss = Buffer<float>::make_scalar(), scores(int(net_.input.classes), batch_),
                          grad(int(net_.param_count));
            p.set(params_);
            x.set(train_images_);
            y.set(labels_);
            seed.set(1);
            first_image.set(0);
            t.train_s = fastest_seconds([&] { train.realize({loss, scores, grad}); }, repeats_);
        }
        {
            ImageParam p(Halide::Float(32), 1, "params"), x(Halide::Float(32), 4, "images");
            pipeline::Graph g = pipeline::build_inference(net_, p, x, algorithms_for(settings));
            schedule_inference(g, target, settings, x.dim(3).extent());
            Halide::Pipeline infer(g.scores);
            infer.compile_jit(target);
            Buffer<float> scores(int(net_.input.classes), infer_batch_);
            p.set(params_);
            x.set(infer_images_);
            t.infer_s = fastest_seconds([&] { infer.realize(scores); }, repeats_);
        }
        return t;
    }

private:
    const model::Network &net_;
    const Halide::Target target_;
    int batch_, infer_batch_, repeats_;
    Buffer<float> params_, train_images_, infer_images_;
    Buffer<int32_t> labels_;
};

struct Knob {
    const char *name;
    int ScheduleSettings::*field;
    std::vector<int> values;
};

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

int run(int argc, char **argv) {
    CLI::App app{"kiln-tune: search schedule settings for this machine and write the best"};
    std::string network_file, out_file, target_name;
    int batch = 64, repeats = 15, threads = 0;
    app.add_option("NETWORK_TOML", network_file, "The network file")->required()->check(CLI::ExistingFile);
    app.add_option("--out", out_file, "Where to write the settings (default: schedules/<stem>.toml beside networks/)");
    app.add_option("--batch", batch, "Training batch to tune for")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--repeats", repeats, "Timed repetitions per candidate")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--threads", threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    app.add_option("--target", target_name,
                   "Halide target to tune for, one of the build's (default: the one kiln runs on this CPU)");
    CLI11_PARSE(app, argc, argv);
    Halide::Target target;
    try {
        target = tune_target(target_name);
    } catch (const std::invalid_argument &e) {
        fmt::print(stderr, "{}\n", e.what());
        return 2;
    }
    const std::string family = target_family(target.to_string());
    if (family.empty()) {
        fmt::print(stderr, "kiln-tune: error: target {} belongs to no family of settings sections\n", target.to_string());
        return 2;
    }
    if (threads > 0) setenv("HL_NUM_THREADS", std::to_string(threads).c_str(), 1);

    const model::Network net = model::load_network(network_file);
    if (out_file.empty()) {
        const std::string stem = network_file.substr(network_file.find_last_of('/') + 1);
        const std::string dir = network_file.substr(0, network_file.find_last_of('/') + 1);
        out_file = dir + "../schedules/" + stem;
    }
    const bool exists = std::ifstream(out_file).good();
    const ScheduleFile file = exists ? load_schedule_file(out_file) : ScheduleFile{};
    const bool had_section = file.families.count(family) > 0;
    ScheduleSettings best = file.for_family(family);
    if (!best.autoscheduler.empty()) {
        fmt::print(stderr, "{}: error: targets of family {} use the {} autoscheduler; set autoscheduler = \"none\" "
                           "in [schedule.{}] to tune the hand-written schedule\n", out_file, family, best.autoscheduler,
                   family);
        return 1;
    }

    const std::vector<Knob> knobs = {
        {"conv_channel_block", &ScheduleSettings::conv_channel_block, {1, 2, 3, 4, 6, 8}},
        {"conv_row_vectors", &ScheduleSettings::conv_row_vectors, {1, 2, 3}},
        {"weight_grad_chunk", &ScheduleSettings::weight_grad_chunk, {4, 8, 16, 32, 64}},
        {"dense_block", &ScheduleSettings::dense_block, {1, 2, 4, 8}},
        {"vector_lanes", &ScheduleSettings::vector_lanes, {8, 16, 32}},
    };
    int candidates = 1;
    for (const Knob &k : knobs) candidates += int(k.values.size());

    // Time what each core runs. With two threads kiln cuts every batch in halves,
    // one per core with serial loops (runtime/core/compiled.cpp). Here both pipelines
    // are timed as one core runs them.
    const char *env_threads = std::getenv("HL_NUM_THREADS");
    const int used_threads = threads > 0 ? threads
                             : env_threads && std::atoi(env_threads) > 0
                                 ? std::atoi(env_threads)
                                 : int(std::max(1u, std::thread::hardware_concurrency()));
    const bool halves = used_threads == 2 && batch >= 2;
    const int train_batch = halves ? batch / 2 : batch, infer_batch = halves ? kInferBatch / 2 : kInferBatch;
    if (halves) setenv("HL_NUM_THREADS", "1", 1);
    Bench bench(net, target, train_batch, infer_batch, repeats);
    fmt::print("tuning {} (training batch {}, inference batch {}{}) on {}\nfor target {}: section [schedule.{}] of {}\n",
               net.name, batch, kInferBatch,
               halves ? fmt::format("; timed as one of the two cores runs them: halves of {} and {}, one thread",
                                    train_batch, infer_batch)
                      : std::string(),
               cpu_name(), target.to_string(), family, out_file);
    const ScheduleSettings start = best;
    const Timing before = bench.time(best);
    Timing best_time = before;
    int done = 1;
    auto report = [&](const std::string &what, const Timing &t) {
        fmt::print("[{:2}/{}] {:<24} train {:7.3f} ms  infer {:7.3f} ms  -> {:6.2f} us/image{}\n", done, candidates,
                   what, t.train_s * 1e3, t.infer_s * 1e3, t.per_image() * 1e6,
                   t.per_image() < best_time.per_image() ? "  (best so far)" : "");
        std::fflush(stdout);
    };
    report("current settings", before);
    for (const Knob &k : knobs) {
        for (int value : k.values) {
            done++;
            if (value == best.*k.field) continue;
            ScheduleSettings trial = best;
            trial.*k.field = value;
            const Timing t = bench.time(trial);
            report(fmt::format("{} = {}", k.name, value), t);
            if (t.per_image() < best_time.per_image()) {
                best = trial;
                best_time = t;
            }
        }
    }

    // Side by side: the starting settings and the winner in turns, each's fastest.
    Timing before_again = before, best_again = best_time;
    if (!(best == start)) {
        fmt::print("timing the starting settings and the best in turns ({} rounds)\n", kFinalRounds);
        for (int round = 0; round < kFinalRounds; round++) {
            const Timing b = bench.time(start), w = bench.time(best);
            if (round == 0 || b.per_image() < before_again.per_image()) before_again = b;
            if (round == 0 || w.per_image() < best_again.per_image()) best_again = w;
        }
        if (best_again.per_image() > (1 - kMargin) * before_again.per_image()) {
            fmt::print("the best found ({:.2f} us/image) is not {:.0f}% faster than the starting settings ({:.2f}) "
                       "timed side by side: keeping the starting settings\n",
                       best_again.per_image() * 1e6, kMargin * 100, before_again.per_image() * 1e6);
            best = start;
            best_again = before_again;
        }
    }
    const Timing &before_final = before_again, &best_final = best_again;
    const std::string tuned = fmt::format(
        "Tuned by `kiln tune {}` on {} for {} (training batch {}, inference batch {}{}).\n", net.name, cpu_name(),
        target.to_string(), batch, kInferBatch,
        halves ? fmt::format(", timed on one core for halves of {} and {}", train_batch, infer_batch) : std::string());
    if (best == start) {
        fmt::print("no faster settings found (training step {:.3f} ms, inference {:.3f} ms): ",
                   before_final.train_s * 1e3, before_final.infer_s * 1e3);
        if (had_section) {
            fmt::print("[schedule.{}] of {} left as it was\n", family, out_file);
        } else {  // the starting settings are this family's: written down, [schedule] no longer decides them
            write_section(out_file, family, best,
                          tuned + fmt::format("No faster settings than these: training step {:.3f} ms, inference "
                                              "{:.3f} ms.", before_final.train_s * 1e3, before_final.infer_s * 1e3));
            fmt::print("wrote them as [schedule.{}] of {}\n", family, out_file);
        }
        return 0;
    }

    const std::string summary =
        tuned + fmt::format("Before: training step {:.3f} ms, inference {:.3f} ms; after: {:.3f} ms, {:.3f} ms.",
                            before_final.train_s * 1e3, before_final.infer_s * 1e3, best_final.train_s * 1e3,
                            best_final.infer_s * 1e3);
    write_section(out_file, family, best, summary);
    fmt::print("{}\nwrote [schedule.{}] of {}: rebuild (scripts/build.sh) to use it\n", summary, family, out_file);
    fmt::print("training images/s {:.0f} -> {:.0f}; inference images/s {:.0f} -> {:.0f}{}\n",
               train_batch / before_final.train_s, train_batch / best_final.train_s,
               infer_batch / before_final.infer_s, infer_batch / best_final.infer_s, halves ? " (one core)" : "");
    return 0;
}

}  // namespace
}  // namespace kiln::schedules

int main(int argc, char **argv) {
    // As the kiln runtime does (runtime/core/compiled.cpp): large buffers reused, not
    // mapped afresh by every call, so that page faults do not time the candidates.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    try {
        return kiln::schedules::run(argc, argv);
    } catch (const std::exception &e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
}
