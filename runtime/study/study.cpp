#include "study.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "HalideRuntime.h"
#include "checkpoint.h"
#include "compiled.h"
#include "idx.h"
#include "inspect.h"
#include "probe.h"
#include "train.h"

extern char **environ;

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A study setup error (its files, its command line): one line, exit status 1.
struct StudyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Readers of the study's folder see the old file or the new one, never a part.
void write_file(const fs::path &path, const std::string &text) {
    fs::create_directories(path.parent_path());
    const fs::path temp = path.string() + ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out.good()) throw StudyError(temp.string() + ": error: cannot write");
    }
    fs::rename(temp, path);
}

std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

json read_json(const fs::path &path) {
    try {
        return json::parse(read_file(path));
    } catch (const json::exception &e) {
        throw StudyError(path.string() + ": error: not the JSON kiln study writes (" + e.what() +
                         "); delete it to redo that step");
    }
}

std::string machine_name() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, model = "unknown CPU";
    while (std::getline(cpuinfo, line))
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    return fmt::format("{} ({} cores)", model, std::thread::hardware_concurrency());
}

struct Member {
    CompiledModel model;
    int64_t hidden_conv = 0, hidden_dense = 0;
};

Member member(const CompiledModel &m) {
    Member out{m};
    const std::vector<model::Layer> &layers = m.net().layers;
    for (size_t i = 0; i < layers.size(); i++) {
        out.hidden_conv += layers[i].is("conv");
        out.hidden_dense += layers[i].is("dense") && i + 1 < layers.size();
    }
    return out;
}

// The compiled network a file describes: the one compiled in with the same name
// and architecture, else the file compiled on demand (network_cache.h).
CompiledModel compiled_for_file(const std::string &file) {
    const model::Network net = model::load_network(file);
    for (const CompiledModel &m : compiled_models())
        if (m.net().name == net.name && m.net().hash() == net.hash()) return m;
    return find_model(file);
}

// A network the plan names: the one compiled into kiln, else the file NAME.toml
// in the plan's folder or below it, compiled on demand (networks/study/depth/:
// networks too slow to compile for every target of every build).
CompiledModel compiled_by_name(const std::string &name, const std::string &plan_path) {
    for (const CompiledModel &m : compiled_models())
        if (m.net().name == name) return m;
    const fs::path dir = fs::path(plan_path).parent_path();
    std::vector<fs::path> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir.empty() ? "." : dir, ec); !ec && it != fs::end(it);
         it.increment(ec))
        if (it->path().filename() == name + ".toml") files.push_back(it->path());
    if (files.size() > 1)
        throw StudyError(plan_path + ": error: network '" + name + "' is two files: " + files[0].string() + " and " +
                         files[1].string());
    if (files.empty())
        throw StudyError(plan_path + ": error: network '" + name + "' is neither compiled into kiln nor a file " + name +
                         ".toml under " + (dir.empty() ? "." : dir.string()));
    return compiled_for_file(files[0].string());
}

json recipe_json(const model::TrainSettings &s) {
    return {{"optimizer", s.optimizer},   {"learning_rate", s.learning_rate}, {"lr_schedule", s.lr_schedule},
            {"batch", s.batch},           {"momentum", s.momentum},           {"weight_decay", s.weight_decay},
            {"augment", s.augment.enabled()}, {"validation", s.validation}};
}

json axes_json(const model::StudyPlan &plan) {
    json axes = json::array();
    for (const model::StudyAxis &a : plan.axes) {
        json j = {{"name", a.name}, {"question", a.question}, {"networks", a.networks}};
        j["x"] = a.x.empty() ? json(nullptr) : json(a.x);
        if (a.reference_accuracy > 0) {
            j["reference_accuracy"] = a.reference_accuracy;
            j["reference"] = a.reference;
        }
        axes.push_back(j);
    }
    return axes;
}

// Pure training seconds of a run: its images over each epoch's speed.
double train_seconds(const std::vector<EpochMetrics> &history, int64_t train_count) {
    double seconds = 0;
    for (const EpochMetrics &m : history)
        if (m.images_per_s > 0) seconds += double(train_count) / m.images_per_s;
    return seconds;
}

// A run's learning curve, as result.json keeps it: one object per epoch.
json curve_of(const std::vector<EpochMetrics> &history) {
    json curve = json::array();
    for (const EpochMetrics &m : history)
        curve.push_back({{"epoch", m.epoch},
                         {"train_loss", m.train_loss},
                         {"train_accuracy", m.train_accuracy},
                         {"test_loss", m.test.loss},
                         {"test_accuracy", m.test.accuracy},
                         {"images_per_s", m.images_per_s}});
    return curve;
}

// result.json's curve as curves.csv rows (network, seed, epoch, train_loss,
// train_accuracy, test_loss, test_accuracy, images_per_s).
std::string curve_rows(const json &result) {
    std::string out;
    if (!result.contains("curve")) return out;
    for (const json &e : result.at("curve"))
        out += fmt::format("{},{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.1f}\n", result.at("network").get<std::string>(),
                           result.at("seed").get<int64_t>(), e.at("epoch").get<int64_t>(),
                           e.at("train_loss").get<double>(), e.at("train_accuracy").get<double>(),
                           e.at("test_loss").get<double>(), e.at("test_accuracy").get<double>(),
                           e.at("images_per_s").get<double>());
    return out;
}

class Study {
public:
    Study(const StudyOptions &opts, std::ostream &log) : opts_(opts), log_(log), out_(opts.out_dir) {}

    StudySummary run() {
        plan_ = model::load_study_plan(opts_.plan_path);
        resolve_members();
        seeds_ = opts_.seeds.value_or(plan_.seeds);
        recipe_ = members_.front().model.net().train;
        if (opts_.epochs) recipe_.epochs = *opts_.epochs;
        data_ = identify_data(opts_.data_dir, members_.front().model.net().input.classes);
        check_earlier_study();
        if (opts_.threads > 0) set_thread_count(opts_.threads);
        const Dataset train_data = load(true), test_data = load(false);

        summary_.runs = int64_t(members_.size()) * seeds_;
        log_ << fmt::format("studying {} networks x {} seeds on {}, {} epochs each ({} lr {}, {} schedule, batch {}); "
                            "output in {}\n",
                            members_.size(), seeds_, data_.name, recipe_.epochs, recipe_.optimizer,
                            recipe_.learning_rate, recipe_.lr_schedule, recipe_.batch, out_.string());
        start_ = Clock::now();
        if (opts_.leader) write_study_json(false);
        for (int64_t run = next_run(); run >= 0; run = next_run()) {
            const int64_t seed = run / int64_t(members_.size()) + 1;
            const Member &m = members_[size_t(run % int64_t(members_.size()))];
            const ImageSet train_set = to_image_set(train_data, m.model.net(), opts_.data_dir);
            const ImageSet test_set = to_image_set(test_data, m.model.net(), opts_.data_dir);
            if (!run_one(m, seed, run + 1, train_set, test_set)) return stop();
            if (seed == 1 && !look_inside(m, train_set, test_set)) return stop();
            if (opts_.leader) write_tables();
        }
        if (opts_.all_done) opts_.all_done();
        summary_.complete = true;
        if (!opts_.leader) return summary_;
        write_tables();  // with the other processes' last runs
        write_study_json(true);
        log_ << fmt::format("study finished in {:.1f} min: {}/results.csv\n", elapsed() / 60, out_.string());
        report();
        return summary_;
    }

private:
    void resolve_members() {
        if (opts_.files.empty())
            for (const std::string &name : plan_.networks) members_.push_back(member(compiled_by_name(name, opts_.plan_path)));
        for (const std::string &file : opts_.files) members_.push_back(member(compiled_for_file(file)));
        for (size_t i = 0; i < members_.size(); i++)
            for (size_t j = 0; j < i; j++)
                if (members_[i].model.net().name == members_[j].model.net().name)
                    throw StudyError("kiln study: error: network '" + members_[i].model.net().name + "' given twice");
    }

    Dataset load(bool train) {
        Dataset d = load_mnist(opts_.data_dir, train);
        const int64_t limit = train ? opts_.limit_train : opts_.limit_test;
        return limit > 0 ? take_first(d, limit) : d;
    }

    // Runs already in OUT were trained with some recipe, epoch count and data set:
    // going on with another would mix them in one table. (A study.json from before
    // data sets were recorded holds MNIST.)
    void check_earlier_study() {
        const fs::path path = out_ / "study.json";
        if (!fs::exists(path)) return;
        const json old = read_json(path);
        const json old_data = old.value("data", json::object());
        const json old_data_name = old_data.is_object() ? old_data.value("name", json("MNIST")) : json();
        if (old.value("epochs", json()) != json(recipe_.epochs) || old.value("recipe", json()) != recipe_json(recipe_) ||
            old.value("train_images", json()) != json(train_count()) ||
            old.value("test_images", json()) != json(test_count()) || old_data_name != json(data_.name))
            throw StudyError(path.string() +
                             ": error: this folder holds a study with other settings (epochs, recipe or data); "
                             "use another --out or the same settings");
        earlier_seconds_ = old.value("wall_seconds", 0.0);
    }

    // The next run to do (an index: seeds, then networks), -1 when none is left.
    int64_t next_run() {
        if (opts_.next_run) return opts_.next_run(summary_.runs);
        return next_ < summary_.runs ? next_++ : -1;
    }

    // A probe trains no longer than the networks do: a quick study stays quick.
    int64_t probe_epochs() const { return std::min(plan_.probe.epochs, recipe_.epochs); }

    int64_t train_count() const { return opts_.limit_train > 0 ? std::min<int64_t>(opts_.limit_train, 60000) : 60000; }
    int64_t test_count() const { return opts_.limit_test > 0 ? std::min<int64_t>(opts_.limit_test, 10000) : 10000; }

    fs::path run_dir(const Member &m, int64_t seed) const {
        return out_ / "runs" / m.model.net().name / fmt::format("seed{}", seed);
    }

    bool run_one(const Member &m, int64_t seed, int64_t index, const ImageSet &train_set, const ImageSet &test_set) {
        const model::Network &net = m.model.net();
        const fs::path dir = run_dir(m, seed), result_path = dir / "result.json";
        const std::string tag = fmt::format("[{:>3}/{}] {} seed {}", index, summary_.runs, net.name, seed);
        if (fs::exists(result_path)) {
            const json r = read_json(result_path);
            log_ << fmt::format("{}: done before: {:.2f}%\n", tag, 100 * r.at("test_accuracy").get<double>());
            summary_.skipped++;
            return true;
        }
        TrainOptions t;
        t.settings = recipe_;
        t.settings.seed = seed;
        t.out_dir = dir.string();
        t.progress = opts_.progress;
        const fs::path checkpoint = dir / "checkpoint.safetensors";
        if (fs::exists(checkpoint)) t.resume = checkpoint.string();
        bool stopped = false;
        t.after_epoch = [&](int64_t) { return !(stopped = opts_.keep_going && !opts_.keep_going()); };
        fs::create_directories(dir);
        std::ofstream run_log(dir / "train.log", std::ios::app);
        TrainResult r = train(m.model, t, train_set, test_set, run_log);
        if (stopped && r.epochs < recipe_.epochs) return false;
        if (r.epochs == 0) r.test = evaluate(m.model, r.params, test_set);  // trained, not yet recorded
        const json result = {{"network", net.name},
                             {"seed", seed},
                             {"hidden_conv", m.hidden_conv},
                             {"hidden_dense", m.hidden_dense},
                             {"params", net.param_count},
                             {"mflops", double(net.flops) / 1e6},
                             {"epochs", recipe_.epochs},
                             {"train_seconds", train_seconds(r.history, train_set.count)},
                             {"test_accuracy", r.test.accuracy},
                             {"test_loss", r.test.loss},
                             {"curve", curve_of(r.history)}};
        write_file(result_path, result.dump(2) + "\n");
        summary_.trained++;
        log_ << fmt::format("{}: test accuracy {:.2f}% in {:.1f} s of training; study {:.0f}% done, {:.1f} min so far\n",
                            tag, 100 * r.test.accuracy, result["train_seconds"].get<double>(),
                            100.0 * double(index) / double(summary_.runs), elapsed() / 60);
        log_.flush();
        return !(opts_.keep_going && !opts_.keep_going());
    }

    // Linear probes and pictures of the seed-1 network.
    bool look_inside(const Member &m, const ImageSet &train_set, const ImageSet &test_set) {
        const model::Network &net = m.model.net();
        const fs::path dir = run_dir(m, 1), probes_path = dir / "probes.json";
        const fs::path inspect_path = out_ / "inspect" / (net.name + ".json");
        if (fs::exists(probes_path) && fs::exists(inspect_path)) return true;
        const Checkpoint ck = load_checkpoint((dir / "checkpoint.safetensors").string(), net);
        if (!fs::exists(inspect_path))
            write_file(inspect_path, inspection_json(m.model, ck.params, test_set, data_.class_names, 1));
        if (fs::exists(probes_path)) return true;
        ProbeSettings ps;
        ps.epochs = probe_epochs();
        ps.batch = plan_.probe.batch;
        ps.learning_rate = plan_.probe.learning_rate;
        ps.max_features = plan_.probe.max_features;
        ps.threads = opts_.threads > 0 ? opts_.threads : thread_count();
        const auto begin = Clock::now();
        const std::vector<ProbeResult> probes = run_probes(m.model, ck.params, train_set, test_set, ps);
        json rows = json::array();
        std::string line;
        for (const ProbeResult &p : probes) {
            const ProbeLayer &l = p.layer;
            rows.push_back({{"layer_index", l.layer_index}, {"layer", l.name}, {"kind", l.kind},
                            {"shape", fmt::format("{}x{}x{}", l.shape.channels, l.shape.height, l.shape.width)},
                            {"features", l.features}, {"pooled", l.pool > 1 ? 1 : 0},
                            {"probe_train_accuracy", p.train_accuracy}, {"probe_test_accuracy", p.test_accuracy}});
            line += fmt::format(" {} {:.1f}%", l.name, 100 * p.test_accuracy);
        }
        write_file(probes_path, rows.dump(2) + "\n");
        log_ << fmt::format("      {} linear probes ({:.1f} s):{}\n", net.name,
                            std::chrono::duration<double>(Clock::now() - begin).count(), line);
        return !(opts_.keep_going && !opts_.keep_going());
    }

    // results.csv, curves.csv and probes.csv from every finished run in OUT.
    void write_tables() {
        std::string results = "network,seed,hidden_conv,hidden_dense,params,mflops,epochs,train_seconds,test_accuracy,"
                              "test_loss\n";
        std::string curves = "network,seed,epoch,train_loss,train_accuracy,test_loss,test_accuracy,images_per_s\n";
        std::string probes = "network,seed,layer_index,layer,kind,shape,features,pooled,probe_train_accuracy,"
                             "probe_test_accuracy\n";
        for (const Member &m : members_)
            for (int64_t seed = 1; seed <= seeds_; seed++) {
                const fs::path dir = run_dir(m, seed);
                if (!fs::exists(dir / "result.json")) continue;
                const json r = read_json(dir / "result.json");
                results += fmt::format("{},{},{},{},{},{:.4f},{},{:.2f},{:.4f},{:.5f}\n", r.at("network").get<std::string>(),
                                       r.at("seed").get<int64_t>(), r.at("hidden_conv").get<int64_t>(),
                                       r.at("hidden_dense").get<int64_t>(), r.at("params").get<int64_t>(),
                                       r.at("mflops").get<double>(), r.at("epochs").get<int64_t>(),
                                       r.at("train_seconds").get<double>(), r.at("test_accuracy").get<double>(),
                                       r.at("test_loss").get<double>());
                curves += curve_rows(r);
                if (!fs::exists(dir / "probes.json")) continue;
                for (const json &p : read_json(dir / "probes.json"))
                    probes += fmt::format("{},{},{},{},{},{},{},{},{:.4f},{:.4f}\n", m.model.net().name, seed,
                                          p.at("layer_index").get<int64_t>(), p.at("layer").get<std::string>(),
                                          p.at("kind").get<std::string>(), p.at("shape").get<std::string>(),
                                          p.at("features").get<int64_t>(), p.at("pooled").get<int64_t>(),
                                          p.at("probe_train_accuracy").get<double>(),
                                          p.at("probe_test_accuracy").get<double>());
            }
        write_file(out_ / "results.csv", results);
        write_file(out_ / "curves.csv", curves);
        write_file(out_ / "probes.csv", probes);
    }

    void write_study_json(bool complete) {
        json names = json::array(), descriptions = json::object(), seeds = json::array();
        for (const Member &m : members_) {
            names.push_back(m.model.net().name);
            descriptions[m.model.net().name] = m.model.net().description;
        }
        for (int64_t s = 1; s <= seeds_; s++) seeds.push_back(s);
        const json j = {{"command", opts_.command},
                        {"description", plan_.description},
                        {"networks", names},
                        {"descriptions", descriptions},
                        {"seeds", seeds},
                        {"epochs", recipe_.epochs},
                        {"recipe", recipe_json(recipe_)},
                        {"threads", opts_.threads > 0 ? opts_.threads : thread_count()},
                        {"machine", machine_name()},
                        {"data", {{"name", data_.name}, {"dir", opts_.data_dir}, {"class_names", data_.class_names}}},
                        {"train_images", train_count()},
                        {"test_images", test_count()},
                        {"wall_seconds", elapsed()},
                        {"complete", complete},
                        {"axes", axes_json(plan_)},
                        {"probe",
                         {{"epochs", probe_epochs()},
                          {"batch", plan_.probe.batch},
                          {"max_features", plan_.probe.max_features},
                          {"learning_rate", plan_.probe.learning_rate},
                          {"optimizer", "adam"},
                          {"train_images", train_count()},
                          {"seed", 1}}}};
        write_file(out_ / "study.json", j.dump(2) + "\n");
    }

    StudySummary stop() {
        write_tables();
        write_study_json(false);
        log_ << fmt::format("study stopped; run the same command again to go on ({} of {} runs done)\n",
                            summary_.skipped + summary_.trained, summary_.runs);
        return summary_;
    }

    void report() {
        if (opts_.report_script.empty()) return;
        const std::string python = "/usr/bin/python3";
        std::vector<std::string> args = {python, opts_.report_script, out_.string()};
        std::vector<char *> argv;
        for (std::string &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_t pid = 0;
        if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
            throw StudyError(python + ": error: cannot run the report script (bash scripts/install-deps.sh installs it)");
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw StudyError(opts_.report_script + ": error: the report failed (its message is above); the results are in " +
                             out_.string());
    }

    // Wall time of the study, over every call that worked on it.
    double elapsed() const { return earlier_seconds_ + std::chrono::duration<double>(Clock::now() - start_).count(); }

    const StudyOptions &opts_;
    std::ostream &log_;
    fs::path out_;
    model::StudyPlan plan_;
    std::vector<Member> members_;
    int64_t seeds_ = 1;
    model::TrainSettings recipe_;
    DataSetInfo data_;  // the data set's name and class names
    StudySummary summary_;
    Clock::time_point start_;
    double earlier_seconds_ = 0;
    int64_t next_ = 0;  // without opts_.next_run
};

}  // namespace

StudySummary run_study(const StudyOptions &opts, std::ostream &log) { return Study(opts, log).run(); }

}  // namespace kiln
