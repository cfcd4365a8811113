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
constexpr int kEvalBatch = 256;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Cross-entropy of one image's scores against its label, in double.
double cross_entropy(const float *scores, int classes, int label) {
    double m = *std::max_element(scores, scores + classes);
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += std::exp(double(scores[k]) - m);
    return m + std::log(sum) - double(scores[label]);
}

int argmax(const float *scores, int classes) { return int(std::max_element(scores, scores + classes) - scores); }

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
                if (std::atoll(line.c_str()) >= 1 && std::atoll(line.c_str()) <= keep_epochs) kept += line + "\n";
        write(kept, std::ios::trunc);
    }
    // Validation columns stay empty when no images are held out.
    void append(int64_t epoch, double train_loss, double train_acc, const Evaluation *validation,
                const Evaluation &test, double ips, double elapsed) {
        const std::string val =
            validation ? fmt::format("{:.6f},{:.6f}", validation->loss, validation->accuracy) : std::string(",");
        write(fmt::format("{},{:.6f},{:.6f},{},{:.6f},{:.6f},{:.1f},{:.3f}\n", epoch, train_loss, train_acc, val,
                          test.loss, test.accuracy, ips, elapsed),
              std::ios::app);
    }

private:
    void write(const std::string &text, std::ios::openmode mode) {
        std::ofstream out(path_, std::ios::out | mode);
        out << text;
        if (!out.good()) throw std::runtime_error(path_ + ": error: cannot write metrics");
    }
    std::string path_;
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

}  // namespace

ImageSet to_image_set(const Dataset &data, const model::Network &net, const std::string &source) {
    const model::InputSpec &in = net.input;
    if (in.channels != 1 || data.rows != in.height || data.cols != in.width)
        throw DataError(fmt::format("{}: error: images are {}x{} with 1 channel, but network '{}' takes {}x{} with {}",
                                    source, data.cols, data.rows, net.name, in.width, in.height, in.channels));
    ImageSet set;
    set.count = data.count;
    set.pixels.resize(data.images.size());
    for (size_t i = 0; i < data.images.size(); i++) set.pixels[i] = float(data.images[i]) / 255.0f;
    set.labels.resize(data.labels.size());
    for (size_t i = 0; i < data.labels.size(); i++) {
        if (data.labels[i] >= in.classes)
            throw DataError(fmt::format("{}: error: label {} of image {} is not below the network's {} classes",
                                        source, data.labels[i], i, in.classes));
        set.labels[i] = data.labels[i];
    }
    return set;
}

Evaluation evaluate(const CompiledModel &model, const std::vector<float> &params, const ImageSet &data) {
    const int classes = int(model.net().input.classes);
    const size_t image_size = size_t(model.net().input.shape().size());
    std::vector<float> scores(size_t(kEvalBatch) * classes);
    Evaluation e;
    double loss_sum = 0;
    for (int64_t start = 0; start < data.count; start += kEvalBatch) {
        const int n = int(std::min<int64_t>(kEvalBatch, data.count - start));
        model.forward(params.data(), data.pixels.data() + size_t(start) * image_size, n, scores.data());
        for (int i = 0; i < n; i++) {
            const float *s = scores.data() + size_t(i) * classes;
            const int label = data.labels[size_t(start + i)];
            loss_sum += cross_entropy(s, classes, label);
            e.correct += argmax(s, classes) == label;
        }
    }
    e.count = data.count;
    e.loss = data.count ? loss_sum / double(data.count) : 0;
    e.accuracy = data.count ? double(e.correct) / double(data.count) : 0;
    return e;
}

TrainResult train(const CompiledModel &compiled, const TrainOptions &opts, const ImageSet &all_train,
                  const ImageSet &test_set, std::ostream &log) {
    const model::TrainSettings &s = opts.settings;
    CompiledModel model = compiled;
    model.set_shards(int(s.shards));
    model.set_team(opts.team);
    const bool writer = !opts.team || opts.team->leader();  // prints, writes metrics and checkpoints
    const model::Network &net = model.net();
    const int classes = int(net.input.classes);
    const size_t image_size = size_t(net.input.shape().size());
    const model::InputSpec &in = net.input;

    const bool plateau = s.lr_schedule == "plateau";
    run_together(opts.team, [&] { check_settings(net, s, all_train.count, opts.team); });
    // Without a validation split the training images are all_train's (no copy).
    const ImageSet train_copy = s.validation > 0 ? slice(all_train, 0, all_train.count - s.validation, image_size)
                                                 : ImageSet{};
    const ImageSet &train_set = s.validation > 0 ? train_copy : all_train;
    const ImageSet validation_set = slice(all_train, all_train.count - s.validation, s.validation, image_size);

    // `trained` are the weights the optimizer moves; result.params those evaluated
    // and saved: the same, or with [train] ema their exponential moving average,
    // in which case the checkpoint keeps the trained ones as optimizer state.
    TrainResult result;
    std::vector<float> trained = initial_params(net, uint64_t(s.seed), s.init);
    result.params = trained;
    const bool ema = s.ema > 0;
    std::unique_ptr<Optimizer> optimizer = make_optimizer(s, trained.size());
    optimizer->freeze_buffers(net);
    Plateau plateau_lr(s);  // lr_schedule = "plateau" only
    int64_t first_epoch = 1;
    const std::string checkpoint_path = (std::filesystem::path(opts.out_dir) / "checkpoint.safetensors").string();
    std::optional<MetricsFile> metrics;
    run_together(opts.team, [&] {
        if (!opts.resume.empty()) {
            first_epoch = resume(opts.resume, net, s, *optimizer, plateau_lr, trained, result.params) + 1;
            if (writer) log << fmt::format("resuming {} from {} after epoch {}\n", net.name, opts.resume, first_epoch - 1);
        }
        if (writer) {
            std::filesystem::create_directories(opts.out_dir);
            metrics.emplace((std::filesystem::path(opts.out_dir) / "metrics.csv").string(), first_epoch - 1);
        }
    });
    if (opts.team) check_team_agrees(*opts.team, model, s, all_train, test_set, trained);
    ProgressBar bar(opts.progress && writer);

    std::vector<float> batch_pixels(size_t(s.batch) * image_size), scores(size_t(s.batch) * classes);
    std::vector<float> grad(trained.size());
    std::vector<int32_t> batch_labels(size_t(s.batch));
    const auto start = Clock::now();
    const int64_t steps_per_epoch = (train_set.count + s.batch - 1) / s.batch;
    int64_t step = (first_epoch - 1) * steps_per_epoch;
    for (int64_t epoch = first_epoch; epoch <= s.epochs; epoch++) {
        const std::vector<int64_t> order = epoch_order(train_set.count, uint64_t(s.seed), epoch);
        const auto epoch_start = Clock::now();
        double loss_sum = 0;
        int64_t correct = 0;
        for (int64_t begin = 0; begin < train_set.count; begin += s.batch) {
            const int n = int(std::min<int64_t>(s.batch, train_set.count - begin));
            for (int i = 0; i < n; i++) {
                const size_t src = size_t(order[size_t(begin + i)]);
                const float *image = train_set.pixels.data() + src * image_size;
                float *slot = batch_pixels.data() + size_t(i) * image_size;
                if (s.augment.enabled()) {  // drawn per (seed, epoch, position): resumable
                    Rng rng = make_rng(uint64_t(s.seed), kAugmentStream, (uint64_t(epoch) << 32) | uint64_t(begin + i));
                    warp_image(image, slot, int(in.width), int(in.height), int(in.channels), random_warp(s.augment, rng));
                } else {
                    std::copy_n(image, image_size, slot);
                }
                batch_labels[size_t(i)] = train_set.labels[src];
            }
            const uint32_t dropout_seed = uint32_t(make_rng(uint64_t(s.seed), kDropoutStream, uint64_t(step)).next());
            const float loss = model.train_step(trained.data(), batch_pixels.data(), batch_labels.data(), n,
                                                scores.data(), grad.data(), dropout_seed);
            if (!std::isfinite(loss)) diverged(net, epoch, loss, opts.team);
            loss_sum += double(loss) * n;
            for (int i = 0; i < n; i++) correct += argmax(scores.data() + size_t(i) * classes, classes) == batch_labels[size_t(i)];
            const double lr = plateau ? plateau_lr.lr() : learning_rate_at(s, step, steps_per_epoch);
            optimizer->step(trained, grad, lr, step);
            update_running_stats(net, trained, grad);
            if (ema)
                for (size_t i = 0; i < trained.size(); i++)
                    result.params[i] = float(s.ema) * result.params[i] + float(1 - s.ema) * trained[i];
            step++;
            const int64_t done = begin + n;
            bar.update(epoch, s.epochs, done, train_set.count, double(done) / seconds_since(epoch_start));
        }
        const double images_per_s = double(train_set.count) / seconds_since(epoch_start);
        bar.clear();
        if (!ema) result.params = trained;
        result.test = evaluate(model, result.params, test_set);
        Evaluation validation;
        if (s.validation > 0) validation = evaluate(model, result.params, validation_set);
        const std::string lr_text = plateau ? fmt::format("  lr {:.3g}", plateau_lr.lr()) : std::string();
        if (plateau)  // sets the next epoch's rate
            plateau_lr.step(s.lr_monitor == "val_accuracy" ? validation.accuracy : validation.loss);
        const double train_loss = loss_sum / double(train_set.count);
        const double train_acc = double(correct) / double(train_set.count);
        const double elapsed = seconds_since(start);
        const std::string val_text = s.validation > 0 ? fmt::format("  val loss {:.4f} acc {:6.2f}%", validation.loss,
                                                                    100 * validation.accuracy)
                                                      : std::string();
        if (writer) {
            log << fmt::format("epoch {:>3}/{}  train loss {:.4f} acc {:6.2f}%{}  test loss {:.4f} acc {:6.2f}%  "
                               "{:>7.0f} img/s  {:6.1f} s{}\n",
                               epoch, s.epochs, train_loss, 100 * train_acc, val_text, result.test.loss,
                               100 * result.test.accuracy, images_per_s, elapsed, lr_text);
            log.flush();
            metrics->append(epoch, train_loss, train_acc, s.validation > 0 ? &validation : nullptr, result.test,
                            images_per_s, elapsed);
        }

        Checkpoint ck;
        ck.epoch = epoch;
        ck.params = result.params;
        ck.optimizer_state = optimizer->state();
        if (ema) ck.optimizer_state[kTrainedWeights] = trained;
        ck.metadata = settings_metadata(s);
        if (plateau) ck.metadata.merge(plateau_lr.to_metadata());
        if (writer) save_checkpoint(checkpoint_path, net, ck);
        result.epochs = epoch;
        if (opts.after_epoch && !opts.after_epoch(epoch)) break;
    }
    return result;
}

}  // namespace kiln
