#include "train.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "augment.h"
#include "checkpoint.h"
#include "init.h"
#include "lr_schedule.h"
#include "optimizer.h"
#include "rng.h"
#include "running_stats.h"

namespace kiln {
namespace {

constexpr uint64_t kShuffleStream = 2;
constexpr uint64_t kAugmentStream = 4;
constexpr uint64_t kDropoutStream = 5;
// With ema, the checkpoint's optimizer state holds the trained weights under this name.
const std::string kTrainedWeights = "trained_weights";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The epoch's order of the training images: a Fisher-Yates shuffle seeded by
// (seed, epoch), so a resumed run sees the same order as an uninterrupted one.
std::vector<int64_t> epoch_order(int64_t count, uint64_t seed, int64_t epoch) {
    std::vector<int64_t> order(static_cast<size_t>(count));
    std::iota(order.begin(), order.end(), int64_t(0));
    Rng rng = make_rng(seed, kShuffleStream, uint64_t(epoch));
    for (int64_t i = count - 1; i > 0; i--) std::swap(order[size_t(i)], order[rng.below(uint64_t(i + 1))]);
    return order;
}

class ProgressBar {
public:
    explicit ProgressBar(bool enabled) : enabled_(enabled && isatty(STDERR_FILENO)) {}
    void update(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double images_per_s) {
        if (!enabled_ || (done < total && seconds_since(last_) < 0.1)) return;
        last_ = Clock::now();
        const int width = 30, filled = int(width * done / std::max<int64_t>(total, 1));
        fmt::print(stderr, "\repoch {}/{} [{}{}] {:3d}% {:7.0f} img/s", epoch, epochs, std::string(filled, '#'),
                   std::string(width - filled, '.'), int(100 * done / std::max<int64_t>(total, 1)), images_per_s);
        std::fflush(stderr);
    }
    void clear() {
        if (enabled_) fmt::print(stderr, "\r{:70}\r", "");
    }

private:
    bool enabled_;
    Clock::time_point last_ = Clock::now();
};

// metrics.csv: the header and one row per epoch. A resumed run keeps the rows of
// the epochs its checkpoint holds and drops any later ones.
class MetricsFile {
public:
    MetricsFile(const std::string &path, int64_t keep_epochs) : path_(path) {
        std::string kept =
            "epoch,train_loss,train_accuracy,validation_loss,validation_accuracy,test_loss,test_accuracy,"
            "images_per_s,elapsed_s\n";
        std::ifstream old(path);
        std::string line;
        if (keep_epochs > 0 && std::getline(old, line))
            while (std::getline(old, line))
                if (std::atoll(line.c_str()) >= 1 && std::atoll(line.c_str()) <= keep_epochs) {
                    kept += line + "\n";
                    earlier_.push_back(parse(line));
                }
        write(kept, std::ios::trunc);
    }
    // The epochs kept from an earlier run (resumed), in order.
    const std::vector<EpochMetrics> &earlier() const { return earlier_; }

    // Validation columns stay empty when no images are held out.
    void append(const EpochMetrics &m) {
        const std::string val = m.validated ? fmt::format("{:.6f},{:.6f}", m.validation.loss, m.validation.accuracy)
                                            : std::string(",");
        write(fmt::format("{},{:.6f},{:.6f},{},{:.6f},{:.6f},{:.1f},{:.3f}\n", m.epoch, m.train_loss,
                          m.train_accuracy, val, m.test.loss, m.test.accuracy, m.images_per_s, m.elapsed_s),
              std::ios::app);
    }

private:
    static EpochMetrics parse(const std::string &line) {
        std::vector<std::string> f;
        std::stringstream cells(line);
        for (std::string cell; std::getline(cells, cell, ',');) f.push_back(cell);
        f.resize(9);
        EpochMetrics m;
        m.epoch = std::atoll(f[0].c_str());
        m.train_loss = std::atof(f[1].c_str()), m.train_accuracy = std::atof(f[2].c_str());
        m.validated = !f[3].empty();
        m.validation.loss = std::atof(f[3].c_str()), m.validation.accuracy = std::atof(f[4].c_str());
        m.test.loss = std::atof(f[5].c_str()), m.test.accuracy = std::atof(f[6].c_str());
        m.images_per_s = std::atof(f[7].c_str()), m.elapsed_s = std::atof(f[8].c_str());
        return m;
    }
    void write(const std::string &text, std::ios::openmode mode) {
        std::ofstream out(path_, std::ios::out | mode);
        out << text;
        if (!out.good()) throw std::runtime_error(path_ + ": error: cannot write metrics");
    }
    std::string path_;
    std::vector<EpochMetrics> earlier_;
};

std::map<std::string, std::string> settings_metadata(const model::TrainSettings &s) {
    return {{"seed", std::to_string(s.seed)},
            {"batch", std::to_string(s.batch)},
            {"optimizer", s.optimizer},
            {"learning_rate", fmt::format("{}", s.learning_rate)},
            {"lr_schedule", s.lr_schedule},
            {"lr_gamma", fmt::format("{}", s.lr_gamma)},
            {"lr_patience", std::to_string(s.lr_patience)},
            {"lr_min", fmt::format("{}", s.lr_min)},
            {"lr_monitor", s.lr_monitor},
            {"init", s.init},
            {"augment_scale_per_axis", s.augment.scale_per_axis ? "true" : "false"},
            {"momentum", fmt::format("{}", s.momentum)},
            {"nesterov", s.nesterov ? "true" : "false"},
            {"beta1", fmt::format("{}", s.beta1)},
            {"beta2", fmt::format("{}", s.beta2)},
            {"alpha", fmt::format("{}", s.alpha)},
            {"epsilon", fmt::format("{}", s.epsilon)},
            {"weight_decay", fmt::format("{}", s.weight_decay)},
            {"epochs", std::to_string(s.epochs)},
            {"validation", std::to_string(s.validation)},
            {"ema", fmt::format("{}", s.ema)},
            {"label_smoothing", fmt::format("{}", s.label_smoothing)},
            {"shards", std::to_string(s.shards)},
            {"augment", fmt::format("shift {} rotate {} scale {}", s.augment.shift, s.augment.rotate, s.augment.scale)}};
}

// `count` images of `set` from `first` on.
ImageSet slice(const ImageSet &set, int64_t first, int64_t count, size_t image_size) {
    ImageSet part;
    part.count = count;
    part.pixels.assign(set.pixels.begin() + ptrdiff_t(size_t(first) * image_size),
                       set.pixels.begin() + ptrdiff_t(size_t(first + count) * image_size));
    part.labels.assign(set.labels.begin() + first, set.labels.begin() + first + count);
    return part;
}

// Training that diverged: with a team, the same error on every process (they
// share the loss), which rank 0 alone reports.
[[noreturn]] void diverged(const model::Network &net, int64_t epoch, float loss, const ShardTeam *team) {
    const std::string message = fmt::format(
        "{}: error: training diverged in epoch {} (loss is {}); try a lower learning rate", net.name, epoch, loss);
    if (team) throw TeamError(message, 1);
    throw std::runtime_error(message);
}

// Runs `step` here, or on every process of the team, failing on all if it fails on one.
void run_together(const ShardTeam *team, const std::function<void()> &step) {
    if (team)
        team->together(step);
    else
        step();
}

uint64_t fingerprint_of(const ImageSet &set) {
    return fingerprint(set.labels.data(), set.labels.size() * sizeof(int32_t),
                       fingerprint(set.pixels.data(), set.pixels.size() * sizeof(float)));
}

// Every process of a team must train the same network with the same settings on
// the same data from the same state: checked once, at the start.
void check_team_agrees(const ShardTeam &team, const CompiledModel &model, const model::TrainSettings &s,
                       const ImageSet &train_set, const ImageSet &test_set, const std::vector<float> &start) {
    const std::string toml = model.entry().toml;
    team.check_same(fingerprint(toml.data(), toml.size()), "network file (another build?)");
    std::string settings;
    for (const auto &[key, value] : settings_metadata(s)) settings += key + "=" + value + "\n";
    team.check_same(fingerprint(settings.data(), settings.size()), "training settings");
    team.check_same(fingerprint_of(train_set), "training images (the --data folder, --limit-train)");
    team.check_same(fingerprint_of(test_set), "test images (the --data folder, --limit-test)");
    team.check_same(fingerprint(start.data(), start.size() * sizeof(float)), "starting weights (the --resume checkpoint)");
}

// A run's settings that no process could train with; thrown on every process alike.
void check_settings(const model::Network &net, const model::TrainSettings &s, int64_t train_count,
                    const ShardTeam *team) {
    if (s.lr_schedule == "plateau" && s.validation == 0)
        throw UsageError(fmt::format("{}: error: [train] lr_schedule = \"plateau\" watches the validation {}, but no "
                                     "images are held out: set [train] validation or pass --validation N",
                                     net.source, s.lr_monitor == "val_accuracy" ? "accuracy" : "loss"));
    // The last `validation` training images are held out: never trained on, and
    // the place to compare settings (the test set chooses nothing).
    if (s.validation >= train_count)
        throw std::runtime_error(fmt::format("{}: error: --validation {} leaves no training images (there are {})",
                                             net.name, s.validation, train_count));
    const int64_t shards = std::min(s.shards, s.batch);
    if (team && team->size() > shards)
        throw UsageError(fmt::format("kiln: error: {} MPI ranks, but each batch of {} is cut into {} shards and a rank "
                                     "computes whole shards: pass --shards {} or more (or start fewer ranks)",
                                     team->size(), s.batch, shards, team->size()));
}

// Restores a run from its checkpoint at `path`: the optimizer's state, the
// plateau schedule's, the trained weights and the evaluated ones (their moving
// average with ema). Returns the epochs the checkpoint holds.
int64_t resume(const std::string &path, const model::Network &net, const model::TrainSettings &s,
               Optimizer &optimizer, Plateau &plateau, std::vector<float> &trained, std::vector<float> &evaluated) {
    Checkpoint ck = load_checkpoint(path, net);
    if (!optimizer.restore(ck.optimizer_state))
        throw CheckpointError(path + ": error: checkpoint has no " + s.optimizer +
                              " optimizer state to resume from (was it trained with another optimizer?)");
    evaluated = ck.params;
    trained = ck.params;
    if (s.ema > 0) {
        auto raw = ck.optimizer_state.find(kTrainedWeights);
        if (raw == ck.optimizer_state.end())
            throw CheckpointError(path + ": error: checkpoint has no trained weights beside its moving "
                                         "average (was it trained without ema?)");
        trained = raw->second;
    }
    if (s.lr_schedule == "plateau" && !plateau.restore(ck.metadata))
        throw CheckpointError(path + ": error: checkpoint has no plateau schedule state to resume from "
                                     "(was it trained with another lr_schedule?)");
    return ck.epoch;
}

// One training run: the model, the data, the weights the optimizer moves and
// those evaluated and saved (the same, or with [train] ema their moving average,
// in which case the checkpoint keeps the trained ones as optimizer state).
struct Run {
    Run(const CompiledModel &compiled, const TrainOptions &options, const ImageSet &all_train, const ImageSet &test)
        : opts(options), s(options.settings), model(compiled), net(model.net()), all_train(all_train), test_set(test),
          image_size(size_t(net.input.shape().size())), classes(int(net.input.classes)),
          writer(!opts.team || opts.team->leader()), plateau(s), bar(opts.progress && writer) {
        model.set_shards(int(s.shards));
        model.set_team(opts.team);
        run_together(opts.team, [&] { check_settings(net, s, all_train.count, opts.team); });
        // The last `validation` training images are held out; without them the
        // training images are all_train's (no copy).
        if (s.validation > 0) train_copy = slice(all_train, 0, all_train.count - s.validation, image_size);
        train_set = s.validation > 0 ? &train_copy : &all_train;
        validation_set = slice(all_train, all_train.count - s.validation, s.validation, image_size);
        trained = initial_params(net, uint64_t(s.seed), s.init);
        result.params = trained;
        optimizer = make_optimizer(s, trained.size());
        optimizer->freeze_buffers(net);
        steps_per_epoch = (train_set->count + s.batch - 1) / s.batch;
        pixels.resize(size_t(s.batch) * image_size);
        labels.resize(size_t(s.batch));
        scores.resize(size_t(s.batch) * size_t(classes));
        grad.resize(trained.size());
    }

    const TrainOptions &opts;
    const model::TrainSettings &s;
    CompiledModel model;
    const model::Network &net;
    const ImageSet &all_train, &test_set;
    const size_t image_size;
    const int classes;
    const bool writer;  // prints, writes metrics and checkpoints
    ImageSet train_copy, validation_set;
    const ImageSet *train_set = nullptr;
    std::vector<float> trained;
    TrainResult result;
    std::unique_ptr<Optimizer> optimizer;
    Plateau plateau;  // lr_schedule = "plateau" only
    std::optional<MetricsFile> metrics;
    ProgressBar bar;  // within each epoch, on stderr
    int64_t first_epoch = 1, step = 0, steps_per_epoch = 0;
    double epoch_lr = 0;  // plateau: the rate the last epoch trained with (the schedule has set the next)
    Clock::time_point start = Clock::now();
    // One batch: (n, c, y, x) pixels, labels, the step's scores and gradient.
    std::vector<float> pixels, scores, grad;
    std::vector<int32_t> labels;

    bool plateau_schedule() const { return s.lr_schedule == "plateau"; }
    std::string checkpoint_path() const {
        return (std::filesystem::path(opts.out_dir) / "checkpoint.safetensors").string();
    }
};

// From the checkpoint to resume, if any; the metrics file (its earlier rows kept).
void begin_run(Run &run, std::ostream &log) {
    run_together(run.opts.team, [&] {
        if (!run.opts.resume.empty()) {
            run.first_epoch =
                resume(run.opts.resume, run.net, run.s, *run.optimizer, run.plateau, run.trained, run.result.params) + 1;
            if (run.writer)
                log << fmt::format("resuming {} from {} after epoch {}\n", run.net.name, run.opts.resume,
                                   run.first_epoch - 1);
        }
        if (run.writer) {
            std::filesystem::create_directories(run.opts.out_dir);
            run.metrics.emplace((std::filesystem::path(run.opts.out_dir) / "metrics.csv").string(), run.first_epoch - 1);
            run.result.history = run.metrics->earlier();
        }
    });
    if (run.opts.team) check_team_agrees(*run.opts.team, run.model, run.s, run.all_train, run.test_set, run.trained);
    run.step = (run.first_epoch - 1) * run.steps_per_epoch;
    run.start = Clock::now();
}

// One pass over the training images: their order, and the figures so far.
struct EpochTally {
    int64_t epoch = 0, count = 0;  // training images
    std::vector<int64_t> order;    // the shuffled order they are trained in
    Clock::time_point start = Clock::now();
    double loss_sum = 0;  // over the images so far
    int64_t correct = 0;
};

EpochTally begin_epoch(const Run &run, int64_t epoch) {
    EpochTally e;
    e.epoch = epoch;
    e.count = run.train_set->count;
    e.order = epoch_order(e.count, uint64_t(run.s.seed), epoch);
    e.start = Clock::now();
    return e;
}

// Images order[begin ..] into the batch, augmented (drawn per seed, epoch and
// position, so that a resumed run sees the same images); returns how many.
int next_batch(Run &run, const EpochTally &e, int64_t begin) {
    const model::TrainSettings &s = run.s;
    const model::InputSpec &in = run.net.input;
    const int n = int(std::min<int64_t>(s.batch, e.count - begin));
    for (int i = 0; i < n; i++) {
        const size_t src = size_t(e.order[size_t(begin + i)]);
        const float *image = run.train_set->pixels.data() + src * run.image_size;
        float *slot = run.pixels.data() + size_t(i) * run.image_size;
        if (s.augment.enabled()) {
            Rng rng = make_rng(uint64_t(s.seed), kAugmentStream, (uint64_t(e.epoch) << 32) | uint64_t(begin + i));
            warp_image(image, slot, int(in.width), int(in.height), int(in.channels), random_warp(s.augment, rng));
        } else {
            std::copy_n(image, run.image_size, slot);
        }
        run.labels[size_t(i)] = run.train_set->labels[src];
    }
    return n;
}

// The compiled training step on the batch's n images: forward, loss, backward
// into run.scores and run.grad, with this step's dropout masks. Returns the loss.
float train_step(Run &run, const EpochTally &e, int n) {
    const uint32_t dropout_seed = uint32_t(make_rng(uint64_t(run.s.seed), kDropoutStream, uint64_t(run.step)).next());
    const float loss = run.model.train_step(run.trained.data(), run.pixels.data(), run.labels.data(), n,
                                            run.scores.data(), run.grad.data(), dropout_seed);
    if (!std::isfinite(loss)) diverged(run.net, e.epoch, loss, run.opts.team);
    return loss;
}

// The optimizer's step with this step's rate, the batch statistics folded into
// the running ones, and the moving average of the weights.
void update(Run &run) {
    const model::TrainSettings &s = run.s;
    const double lr = run.plateau_schedule() ? run.plateau.lr() : learning_rate_at(s, run.step, run.steps_per_epoch);
    run.optimizer->step(run.trained, run.grad, lr, run.step);
    update_running_stats(run.net, run.trained, run.grad);
    if (s.ema > 0)
        for (size_t i = 0; i < run.trained.size(); i++)
            run.result.params[i] = float(s.ema) * run.result.params[i] + float(1 - s.ema) * run.trained[i];
    run.step++;
}

// The batch's loss and correct answers (as trained) into the epoch's, and the progress bar.
void count_batch(Run &run, EpochTally &e, float loss, int n, int64_t done) {
    e.loss_sum += double(loss) * n;
    for (int i = 0; i < n; i++)
        e.correct += argmax(run.scores.data() + size_t(i) * run.classes, run.classes) == run.labels[size_t(i)];
    run.bar.update(e.epoch, run.s.epochs, done, e.count, double(done) / seconds_since(e.start));
}

EpochMetrics end_epoch(Run &run, const EpochTally &e) {
    run.bar.clear();
    EpochMetrics m;
    m.epoch = e.epoch;
    m.train_loss = e.loss_sum / double(e.count);
    m.train_accuracy = double(e.correct) / double(e.count);
    m.images_per_s = double(e.count) / seconds_since(e.start);
    return m;
}

// The evaluated weights on the test (and held-out) images; the plateau schedule
// sets the next epoch's rate from them.
void evaluate_epoch(Run &run, EpochMetrics &m) {
    if (run.s.ema <= 0) run.result.params = run.trained;
    m.test = run.result.test = evaluate(run.model, run.result.params, run.test_set);
    m.validated = run.s.validation > 0;
    if (m.validated) m.validation = evaluate(run.model, run.result.params, run.validation_set);
    run.epoch_lr = run.plateau.lr();
    if (run.plateau_schedule())
        run.plateau.step(run.s.lr_monitor == "val_accuracy" ? m.validation.accuracy : m.validation.loss);
    m.elapsed_s = seconds_since(run.start);
}

void log_epoch(Run &run, const EpochMetrics &m, std::ostream &log) {
    if (!run.writer) return;
    const std::string lr_text = run.plateau_schedule() ? fmt::format("  lr {:.3g}", run.epoch_lr) : "";
    const std::string val_text =
        m.validated ? fmt::format("  val loss {:.4f} acc {:6.2f}%", m.validation.loss, 100 * m.validation.accuracy) : "";
    log << fmt::format("epoch {:>3}/{}  train loss {:.4f} acc {:6.2f}%{}  test loss {:.4f} acc {:6.2f}%  "
                       "{:>7.0f} img/s  {:6.1f} s{}\n",
                       m.epoch, run.s.epochs, m.train_loss, 100 * m.train_accuracy, val_text, m.test.loss,
                       100 * m.test.accuracy, m.images_per_s, m.elapsed_s, lr_text);
    log.flush();
    run.metrics->append(m);
}

void save(const Run &run, int64_t epoch) {
    if (!run.writer) return;
    Checkpoint ck;
    ck.epoch = epoch;
    ck.params = run.result.params;
    ck.optimizer_state = run.optimizer->state();
    if (run.s.ema > 0) ck.optimizer_state[kTrainedWeights] = run.trained;
    ck.metadata = settings_metadata(run.s);
    if (run.plateau_schedule()) ck.metadata.merge(run.plateau.to_metadata());
    save_checkpoint(run.checkpoint_path(), run.net, ck);
}

}  // namespace

// llm.c's loop: per step next_batch -> train_step -> update, per epoch evaluate ->
// log -> save, every other concern in the function named.
TrainResult train(const CompiledModel &compiled, const TrainOptions &opts, const ImageSet &all_train,
                  const ImageSet &test_set, std::ostream &log) {
    Run run(compiled, opts, all_train, test_set);
    begin_run(run, log);  // resumed from a checkpoint, metrics.csv, the team's check
    for (int64_t epoch = run.first_epoch; epoch <= run.s.epochs; epoch++) {
        EpochTally tally = begin_epoch(run, epoch);  // the epoch's shuffled order
        for (int64_t begin = 0; begin < tally.count; begin += run.s.batch) {
            const int n = next_batch(run, tally, begin);   // images (augmented) and labels
            const float loss = train_step(run, tally, n);  // forward, loss, backward
            update(run);                                   // optimizer, running statistics, ema
            count_batch(run, tally, loss, n, begin + n);   // loss, accuracy, progress bar
        }
        EpochMetrics m = end_epoch(run, tally);
        evaluate_epoch(run, m);  // test and held-out images; the plateau schedule
        log_epoch(run, m, log);  // the console and metrics.csv
        save(run, epoch);        // checkpoint.safetensors
        run.result.history.push_back(m);
        run.result.epochs = epoch;
        if (opts.after_epoch && !opts.after_epoch(epoch)) break;
    }
    return std::move(run.result);
}

}  // namespace kiln
