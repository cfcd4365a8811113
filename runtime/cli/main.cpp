// kiln: train, evaluate and inspect the networks compiled into this build.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "HalideRuntime.h"
#include "bench.h"
#include "checkpoint.h"
#include "compiled.h"
#include "distributed.h"
#include "export_predict_cli.h"
#include "idx.h"
#include "network_json.h"
#include "network_cache.h"
#include "process.h"
#include "study.h"
#include "train.h"

#ifndef KILN_DEFAULT_DATA_DIR
#define KILN_DEFAULT_DATA_DIR "data/mnist"
#endif

namespace kiln {
namespace {

std::string default_data_dir() {
    const char *env = std::getenv("KILN_DATA");
    return env && *env ? env : KILN_DEFAULT_DATA_DIR;
}

struct DataOptions {
    std::string dir = default_data_dir();
    int64_t limit_train = -1, limit_test = -1;  // -1: all
};

void add_data_options(CLI::App &cmd, DataOptions &d, bool train) {
    cmd.add_option("--data", d.dir, "Folder with MNIST's four IDX files (or set KILN_DATA)")->capture_default_str();
    if (train) cmd.add_option("--limit-train", d.limit_train, "Use only the first N training images")->check(CLI::PositiveNumber);
    cmd.add_option("--limit-test", d.limit_test, "Use only the first N test images")->check(CLI::PositiveNumber);
}

ImageSet load_images(const DataOptions &d, bool train_split, const model::Network &net) {
    Dataset data = load_mnist(d.dir, train_split);
    const int64_t limit = train_split ? d.limit_train : d.limit_test;
    if (limit > 0) data = take_first(data, limit);
    return to_image_set(data, net, d.dir);
}

void set_threads(int threads) {
    if (threads > 0) set_thread_count(threads);
}

int cmd_list() {
    fmt::print("pipelines: {} (compiled for: {})\n", pipeline_variant(), fmt::join(pipeline_targets(), ", "));
    fmt::print("{:<16} {:>12} {:>14}  {}\n", "network", "parameters", "MFLOPs/image", "description");
    for (const CompiledModel &m : compiled_models()) {
        const model::Network &n = m.net();
        fmt::print("{:<16} {:>12} {:>14.3f}  {}\n", n.name, n.param_count, double(n.flops) / 1e6, n.description);
    }
    return 0;
}

int cmd_check(const std::string &file, bool json) {
    const model::Network net = model::load_network(file);
    if (json)
        fmt::print("{}", network_json(net));
    else
        fmt::print("{}: ok: network '{}'\n{}", file, net.name, model::layer_table(net));
    return 0;
}

struct TrainArgs {
    std::string network, schedule, out, resume;
    std::optional<int64_t> epochs, batch, seed, validation, shards;
    std::optional<double> lr;
    int threads = 0;
    bool no_progress = false;
    DataOptions data;
};

// Under mpirun, ranks on one machine share its cores unless --threads says otherwise.
void set_threads(int threads, const MpiJob &job) {
    if (threads == 0 && job.local_size() > 1)
        threads = std::max(1, int(std::thread::hardware_concurrency()) / job.local_size());
    set_threads(threads);
}

// The network's [train] settings with the command line's overrides.
TrainOptions train_options(const TrainArgs &a, const model::Network &net, const MpiJob &job) {
    TrainOptions opts;
    opts.settings = net.train;
    if (a.epochs) opts.settings.epochs = *a.epochs;
    if (a.batch) opts.settings.batch = *a.batch;
    if (a.seed) opts.settings.seed = *a.seed;
    if (a.lr) opts.settings.learning_rate = *a.lr;
    if (a.validation) opts.settings.validation = *a.validation;
    if (a.shards) opts.settings.shards = *a.shards;
    opts.out_dir = a.out.empty() ? "runs/" + net.name : a.out;
    opts.resume = a.resume;
    opts.progress = !a.no_progress;
    if (job.running()) opts.team = &job;
    return opts;
}

void print_plan(const model::Network &net, const model::TrainSettings &s, const ImageSet &train_set,
                const ImageSet &test_set, const MpiJob &job) {
    fmt::print("training {} ({} parameters, {:.2f} MFLOPs/image) on {} images, testing on {}: {} epochs, batch {}, "
               "{} lr {} ({}) momentum {} weight decay {}, seed {}\n",
               net.name, net.param_count, double(net.flops) / 1e6, train_set.count, test_set.count, s.epochs, s.batch,
               s.optimizer, s.learning_rate, s.lr_schedule, s.momentum, s.weight_decay, s.seed);
    if (s.augment.enabled())
        fmt::print("augmenting: shift up to {} px, rotation up to {} degrees, scale within {}\n", s.augment.shift,
                   s.augment.rotate, s.augment.scale);
    if (s.validation > 0) fmt::print("holding out the last {} training images for validation\n", s.validation);
    if (job.running())
        fmt::print("on {} MPI ranks with {} threads each: rank r computes shards r, r + {}, ... of {}\n", job.size(),
                   thread_count(), job.size(), s.shards);
    std::fflush(stdout);
}

void print_outcome(const TrainResult &r, const TrainOptions &opts, const MpiJob &job) {
    if (r.epochs == 0) {
        fmt::print("nothing to train: the checkpoint already holds {} epochs\n", opts.settings.epochs);
        return;
    }
    fmt::print("test accuracy {:.2f}% ({} of {}), loss {:.4f}; checkpoint {}/checkpoint.safetensors\n",
               100 * r.test.accuracy, r.test.correct, r.test.count, r.test.loss, opts.out_dir);
    if (job.running() && job.shares() > 0) {
        const double steps = double(job.shares());
        fmt::print("MPI: rank 0 received {:.0f} KB per step in {:.2f} ms, after waiting {:.2f} ms for the slowest rank\n",
                   job.shared_bytes() / 1e3 / steps, 1e3 * job.shared_seconds() / steps,
                   1e3 * job.waited_seconds() / steps);
    }
}

int cmd_train(const TrainArgs &a, const MpiJob &job) {
    const CompiledModel model = find_model(a.network, a.schedule);
    const TrainOptions opts = train_options(a, model.net(), job);
    set_threads(a.threads, job);
    // Under MPI every rank reads the data itself; a rank that cannot fails them
    // all, and a bad request, which every rank refuses, is said once.
    ImageSet train_set, test_set;
    auto load = [&] {
        if (a.shards && *a.shards > opts.settings.batch)
            throw UsageError(fmt::format("kiln: error: --shards {} exceeds the batch ({}): every shard needs an image",
                                         *a.shards, opts.settings.batch));
        train_set = load_images(a.data, true, model.net());
        test_set = load_images(a.data, false, model.net());
    };
    if (opts.team)
        opts.team->together(load);
    else
        load();
    if (job.rank() == 0) print_plan(model.net(), opts.settings, train_set, test_set, job);
    const TrainResult r = train(model, opts, train_set, test_set, std::cout);
    if (job.rank() == 0) print_outcome(r, opts, job);
    return 0;
}

struct EvalArgs {
    std::string network, schedule, checkpoint;
    bool json = false;
    int threads = 0;
    DataOptions data;
};

int cmd_eval(const EvalArgs &a) {
    const CompiledModel model = find_model(a.network, a.schedule);
    set_threads(a.threads);
    const Checkpoint ck = load_checkpoint(a.checkpoint, model.net());
    const ImageSet test_set = load_images(a.data, false, model.net());
    const Evaluation e = evaluate(model, ck.params, test_set);
    if (a.json) {
        nlohmann::json j = {{"network", model.net().name}, {"checkpoint", a.checkpoint}, {"epoch", ck.epoch},
                            {"images", e.count},           {"correct", e.correct},        {"accuracy", e.accuracy},
                            {"loss", e.loss}};
        fmt::print("{}\n", j.dump());
    } else {
        fmt::print("{} after epoch {}: test accuracy {:.2f}% ({} of {}), loss {:.4f}\n", model.net().name, ck.epoch,
                   100 * e.accuracy, e.correct, e.count, e.loss);
    }
    return 0;
}

struct BenchArgs {
    std::string network, schedule;
    BenchOptions opts;
    int shards = 0;  // 0: the network's [train] shards
    bool json = false;
};

int cmd_bench(const BenchArgs &a) {
    CompiledModel model = find_model(a.network, a.schedule);
    if (a.shards > 0) model.set_shards(a.shards);
    const BenchResult r = bench(model, a.opts);
    const int threads = thread_count();
    if (a.json) {
        nlohmann::json j = {{"network", model.net().name},
                            {"batch", a.opts.batch},
                            {"infer_batch", a.opts.infer_batch},
                            {"threads", threads},
                            {"shards", model.shards()},
                            {"variant", pipeline_variant()},
                            {"repeats", a.opts.repeats},
                            {"train_images_per_s", r.train_images_per_s},
                            {"infer_images_per_s", r.infer_images_per_s},
                            {"latency_us_batch1", r.latency_us_batch1},
                            {"train_gflops", r.train_gflops},
                            {"infer_gflops", r.infer_gflops},
                            {"mflops_per_image", double(model.net().flops) / 1e6},
                            {"self_check_max_score_difference", r.max_score_difference}};
        fmt::print("{}\n", j.dump());
    } else {
        fmt::print("{} with {} threads, training batches cut into {} shards, medians of {} runs (self-check passed: "
                   "forward and training scores agree within {:.1e})\n",
                   model.net().name, threads, model.shards(), a.opts.repeats, r.max_score_difference);
        fmt::print("  training step, batch {:<4} {:>10.0f} images/s  {:7.1f} GFLOP/s (3x forward FLOPs)\n",
                   a.opts.batch, r.train_images_per_s, r.train_gflops);
        fmt::print("  inference, batch {:<8} {:>10.0f} images/s  {:7.1f} GFLOP/s\n", a.opts.infer_batch,
                   r.infer_images_per_s, r.infer_gflops);
        fmt::print("  inference, batch 1 latency {:>9.1f} us\n", r.latency_us_batch1);
    }
    return 0;
}

// `kiln build FILE.toml`: compiles a network file into the cache, nothing else.
int cmd_build(const std::string &file, const std::string &schedule) {
    if (!names_a_file(file)) throw UsageError("kiln: error: build takes a network file (NAME.toml), got '" + file + "'");
    const CompiledModel model = find_model(file, schedule);
    fmt::print("{}: network '{}' compiled (cache: {})\n", file, model.net().name, cache_dir());
    return 0;
}

// `kiln tune NETWORK`: runs kiln-tune, which sits beside this binary, on the
// network's source file, writing schedules/<file stem>.toml in the source tree
// (where the build looks for it), or, for a network file, <stem>.schedule.toml
// beside it (where kiln looks for it); or to `out` where given.
int cmd_tune(const std::string &network, const std::string &out_given, const std::vector<std::string> &extra) {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    const std::string tuner = self.substr(0, self.find_last_of('/') + 1) + "kiln-tune";
    std::string file, out;
    std::vector<std::string> args_target;
    if (names_a_file(network)) {
        model::load_network(network);  // bad input first
        const std::filesystem::path p(network);
        file = network;
        out = (p.parent_path() / (p.stem().string() + ".schedule.toml")).string();
        if (std::find(extra.begin(), extra.end(), "--target") == extra.end())
            args_target = {"--target", "host"};  // a network file is compiled for this machine (network_cache.cpp)
    } else {
        const CompiledModel model = find_model(network);
        file = std::string(KILN_SOURCE_DIR) + "/networks/" + model.entry().file;
        out = std::string(KILN_SOURCE_DIR) + "/schedules/" + std::filesystem::path(model.entry().file).filename().string();
    }
    if (!out_given.empty()) out = out_given;
    std::vector<std::string> args = {tuner, file, "--out", out};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), args_target.begin(), args_target.end());
    std::vector<char *> argv;
    for (std::string &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(tuner.c_str(), argv.data());
    throw std::runtime_error(tuner + ": error: cannot run: " + std::strerror(errno));
}

// `kiln study --part K/N`: runs K, K + N, ... only, and no tables (a later run
// without --part trains nothing again and writes them).
void take_part(StudyOptions &opts, const std::string &part) {
    int k = -1, n = 0;
    char rest = 0;
    if (std::sscanf(part.c_str(), "%d/%d%c", &k, &n, &rest) != 2 || n < 1 || k < 0 || k >= n)
        throw UsageError("kiln: error: --part " + part + ": expected K/N with 0 <= K < N, e.g. 3/8");
    auto next = std::make_shared<int64_t>(k);
    opts.next_run = [next, n](int64_t runs) {
        const int64_t run = *next < runs ? *next : -1;
        *next += n;
        return run;
    };
    opts.leader = false;
}

// Under mpirun the ranks take the study's runs as they free up; rank 0 writes
// the tables and the report when all are done.
int cmd_study(StudyOptions opts, const DataOptions &data, bool no_report, int argc, char **argv, const MpiJob &job) {
    if (job.size() > 1) {
        job.together([&] {  // refused on any rank: said once, by rank 0
            if (opts.next_run)
                throw UsageError("kiln: error: --part splits a study without mpirun; under mpirun the ranks share it");
        });
        opts.next_run = [&job](int64_t runs) { return job.next_task(runs); };
        opts.all_done = [&job] { job.tasks_done(); };
        opts.leader = job.rank() == 0;
        if (opts.threads == 0) opts.threads = std::max(1, int(std::thread::hardware_concurrency()) / job.local_size());
    }
    opts.data_dir = data.dir;
    opts.limit_train = data.limit_train;
    opts.limit_test = data.limit_test;
    if (!no_report) opts.report_script = std::string(KILN_SOURCE_DIR) + "/scripts/study_report.py";
    opts.command = "kiln";
    for (int i = 1; i < argc; i++) opts.command += std::string(" ") + argv[i];
    const StudySummary s = run_study(opts, std::cout);
    if (job.size() <= 1 && !opts.leader)
        fmt::print("this part is done ({} runs); once every part is, the same command without --part writes the "
                   "tables and the report\n",
                   s.trained + s.skipped);
    return s.complete ? 0 : 1;
}

int run(int argc, char **argv, const MpiJob &job) {
    CLI::App app{"kiln: ahead-of-time compiled trainers for convolutional networks described in TOML"};
    app.require_subcommand(1);

    app.add_subcommand("list", "List the networks compiled in: name, parameters, MFLOPs per image");

    std::string check_file;
    CLI::App *check = app.add_subcommand("check", "Validate a network file and print its layer table");
    check->add_option("FILE", check_file, "A network TOML file")->required();
    bool check_json = false;
    check->add_flag("--json", check_json, "Print the validated network as one JSON object (runtime/cli/network_json.h)");

    std::string build_file, build_schedule;
    CLI::App *build = app.add_subcommand("build", "Compile a network file into the cache (other commands do it on first use)");
    build->add_option("FILE", build_file, "A network TOML file")->required();
    build->add_option("--schedule", build_schedule, "Schedule settings (default: STEM.schedule.toml beside FILE)");

    TrainArgs t;
    CLI::App *train_cmd = app.add_subcommand("train", "Train a compiled network on MNIST");
    train_cmd->add_option("NETWORK", t.network, "A compiled network's name (see `kiln list`) or a network file")->required();
    train_cmd->add_option("--schedule", t.schedule, "Schedule settings for a network file (default: STEM.schedule.toml beside it)");
    train_cmd->add_option("--epochs", t.epochs, "Epochs (default: the network's [train] table)")->check(CLI::Range(int64_t(1), model::Limits::max_epochs));
    train_cmd->add_option("--batch", t.batch, "Images per training step")->check(CLI::Range(int64_t(1), model::Limits::max_batch));
    train_cmd->add_option("--lr", t.lr, "Learning rate")->check(CLI::PositiveNumber);
    train_cmd->add_option("--seed", t.seed, "Seed for initialization and shuffling")->check(CLI::NonNegativeNumber);
    train_cmd->add_option("--validation", t.validation, "Hold out the last N training images to validate on")
        ->check(CLI::Range(int64_t(0), int64_t(1) << 31));
    train_cmd->add_option("--threads", t.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    train_cmd->add_option("--shards", t.shards, "Shards each batch is cut into, one core each (default: [train] shards)")
        ->check(CLI::Range(int64_t(1), model::Limits::max_shards));
    train_cmd->add_option("--out", t.out, "Output folder (default: runs/NETWORK)");
    train_cmd->add_option("--resume", t.resume, "Continue from this checkpoint");
    train_cmd->add_flag("--no-progress", t.no_progress, "No progress bar");
    add_data_options(*train_cmd, t.data, true);

    EvalArgs e;
    CLI::App *eval_cmd = app.add_subcommand("eval", "Evaluate a checkpoint on the MNIST test set");
    eval_cmd->add_option("NETWORK", e.network, "A compiled network's name or a network file")->required();
    eval_cmd->add_option("--schedule", e.schedule, "Schedule settings for a network file (default: STEM.schedule.toml beside it)");
    eval_cmd->add_option("--checkpoint", e.checkpoint, "A checkpoint written by `kiln train`")->required();
    eval_cmd->add_flag("--json", e.json, "Print one JSON object");
    eval_cmd->add_option("--threads", e.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    add_data_options(*eval_cmd, e.data, false);

    BenchArgs b;
    CLI::App *bench_cmd = app.add_subcommand("bench", "Time the training step, inference and batch-1 latency");
    bench_cmd->add_option("NETWORK", b.network, "A compiled network's name or a network file")->required();
    bench_cmd->add_option("--schedule", b.schedule, "Schedule settings for a network file (default: STEM.schedule.toml beside it)");
    bench_cmd->add_option("--batch", b.opts.batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
    bench_cmd->add_option("--infer-batch", b.opts.infer_batch, "Images per inference call")->check(CLI::Range(1, 65536))->capture_default_str();
    bench_cmd->add_option("--repeats", b.opts.repeats, "Timed repetitions")->check(CLI::Range(1, 100000))->capture_default_str();
    bench_cmd->add_option("--threads", b.opts.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    bench_cmd->add_option("--shards", b.shards, "Shards each training batch is cut into (default: [train] shards)")
        ->check(CLI::Range(1, int(model::Limits::max_shards)));
    bench_cmd->add_flag("--json", b.json, "Print one JSON object");

    std::string tune_network;
    std::string tune_target, tune_out, tune_autoschedulers;
    int tune_batch = 64, tune_repeats = 15, tune_threads = 0;
    double tune_minutes = 10;
    CLI::App *tune_cmd = app.add_subcommand(
        "tune", "Search schedule settings for this machine; writes schedules/NETWORK.toml for the next build");
    tune_cmd->add_option("NETWORK", tune_network, "A compiled network's name or a network file")->required();
    tune_cmd->add_option("--batch", tune_batch, "Training batch to tune for")->check(CLI::Range(1, 4096))->capture_default_str();
    tune_cmd->add_option("--repeats", tune_repeats, "Timed repetitions per candidate")->check(CLI::Range(1, 1000))->capture_default_str();
    tune_cmd->add_option("--threads", tune_threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    tune_cmd->add_option("--target", tune_target, "Halide target to tune for, one of the build's (default: the one running here)");
    tune_cmd->add_option("--minutes", tune_minutes, "Time budget of the search (the final side-by-side check follows)")
        ->check(CLI::Range(0.0, 10000.0))
        ->capture_default_str();
    tune_cmd->add_option("--out", tune_out,
                         "Where to write the settings (default: schedules/NETWORK.toml, or STEM.schedule.toml beside a "
                         "network file)");
    CLI::Option *tune_autoschedulers_opt = tune_cmd->add_option(
        "--autoschedulers", tune_autoschedulers,
        "Halide autoschedulers to try, comma-separated (\"\": none; default: Mullapudi2016,Adams2019,Li2018)");

    ExportArgs x;
    add_export_command(app, x);
    PredictArgs p;
    add_predict_command(app, p);

    StudyOptions study;
    study.plan_path = std::string(KILN_SOURCE_DIR) + "/networks/study/study.toml";
    DataOptions study_data;
    bool study_no_report = false, study_no_progress = false;
    CLI::App *study_cmd = app.add_subcommand(
        "study", "The hidden-layer study: train a family of networks over seeds, probe them, write a report");
    study_cmd->add_option("FILES", study.files, "Network files to study (default: the family in the study plan)");
    study_cmd->add_option("--seeds", study.seeds, "Seeds 1..N per network (default: the plan's)")->check(CLI::Range(int64_t(1), int64_t(1000)));
    study_cmd->add_option("--epochs", study.epochs, "Epochs per run (default: the recipe's)")->check(CLI::Range(int64_t(1), model::Limits::max_epochs));
    study_cmd->add_option("--out", study.out_dir, "Output folder; an interrupted study there resumes")->capture_default_str();
    study_cmd->add_option("--plan", study.plan_path, "The study plan: networks, seeds, axes, probes")->capture_default_str();
    study_cmd->add_option("--threads", study.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
    study_cmd->add_flag("--no-report", study_no_report, "Write the tables only, not report.md and its plots");
    study_cmd->add_flag("--no-progress", study_no_progress, "No progress bar");
    std::string study_part;
    study_cmd->add_option("--part", study_part,
                          "K/N: only runs K, K + N, ... of the study (0 <= K < N; e.g. a Slurm array task), no tables");
    add_data_options(*study_cmd, study_data, true);

    int help = -1;
    auto parse = [&] {
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError &err) {
            if (err.get_exit_code() != 0) throw UsageError(std::string("kiln: error: ") + err.what() + " (see kiln --help)");
            help = app.exit(err);  // --help
        }
    };
    if (job.running())
        job.together(parse);  // a bad command line on some rank: one line, from rank 0
    else
        parse();
    if (help >= 0) return help;
    // Ranks of an MPI job all run one command: the first thing they compare.
    const std::string command = app.get_subcommands().front()->get_name();
    if (job.size() > 1) job.check_same(fingerprint(command.data(), command.size()), "command (train, eval, ...)");
    const bool under_mpi = command == "train" || command == "study" || command == "list" || command == "check" ||
                           command == "eval";
    if (job.size() > 1 && !under_mpi)
        throw TeamError("kiln: error: under mpirun, kiln trains and studies (`kiln train`, `kiln study`); run the "
                        "other commands without it",
                        2);
    if (app.got_subcommand("list")) return cmd_list();
    if (app.got_subcommand("check")) return cmd_check(check_file, check_json);
    if (app.got_subcommand("build")) return cmd_build(build_file, build_schedule);
    if (app.got_subcommand("train")) return cmd_train(t, job);
    if (app.got_subcommand("bench")) return cmd_bench(b);
    if (app.got_subcommand("export")) return cmd_export(x);
    if (app.got_subcommand("predict")) return cmd_predict(p);
    if (app.got_subcommand("study")) {
        study.progress = !study_no_progress;
        if (!study_part.empty()) take_part(study, study_part);
        return cmd_study(study, study_data, study_no_report, argc, argv, job);
    }
    if (app.got_subcommand("tune")) {
        std::vector<std::string> extra = {"--batch", std::to_string(tune_batch), "--repeats", std::to_string(tune_repeats),
                                          "--minutes", fmt::format("{}", tune_minutes)};
        if (tune_threads > 0) extra.insert(extra.end(), {"--threads", std::to_string(tune_threads)});
        if (!tune_target.empty()) extra.insert(extra.end(), {"--target", tune_target});
        if (tune_autoschedulers_opt->count() > 0) extra.insert(extra.end(), {"--autoschedulers", tune_autoschedulers});
        return cmd_tune(tune_network, tune_out, extra);
    }
    return cmd_eval(e);
}

}  // namespace
}  // namespace kiln

int main(int argc, char **argv) {
    kiln::restart_with_huge_pages(argv);  // process-wide settings: the command opts in (process.h)
    kiln::configure_process();
    kiln::MpiJob job(argc, argv);  // an MPI job's rank under mpirun, else a job of one that never calls MPI
    int code = 0;
    try {
        kiln::check_cpu_supported();  // before any pipeline runs an instruction the CPU lacks
        code = kiln::run(argc, argv, job);
    } catch (const kiln::TeamError &e) {  // raised on every rank alike: rank 0 says it
        if (job.rank() == 0) std::cerr << e.what() << "\n";
        code = e.exit_code;
    } catch (const std::exception &e) {  // bad input: the messages name the file
        code = dynamic_cast<const kiln::UsageError *>(&e) ? 2 : 1;
        std::cerr << (job.rank() > 0 ? "rank " + std::to_string(job.rank()) + ": " : "") << e.what() << "\n";
        if (job.size() > 1) job.abort(code);  // the other ranks may be waiting for this one
    }
    return code;
}
