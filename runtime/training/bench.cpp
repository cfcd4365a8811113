#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "running_stats.h"

#include "HalideRuntime.h"
#include "init.h"
#include "optimizer.h"
#include "rng.h"

namespace kiln {
namespace {

constexpr uint64_t kBenchStream = 3;

// Median seconds of one call, after a few untimed warm-up calls.
double median_seconds(const std::function<void()> &call, int repeats) {
    for (int i = 0; i < 3; i++) call();
    std::vector<double> times;
    for (int i = 0; i < repeats; i++) {
        const auto start = std::chrono::steady_clock::now();
        call();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    return times[size_t(repeats / 2)];
}

std::vector<float> random_images(const model::Network &net, int n) {
    Rng rng = make_rng(1, kBenchStream);
    std::vector<float> pixels(size_t(n) * size_t(net.input.shape().size()));
    for (float &p : pixels) p = float(rng.uniform());
    return pixels;
}

}  // namespace

BenchResult bench(const CompiledModel &model, const BenchOptions &opts) {
    const model::Network &net = model.net();
    const int classes = int(net.input.classes);
    if (opts.threads > 0) set_thread_count(opts.threads);
    std::vector<float> params = initial_params(net, 1);
    std::vector<float> grad(params.size());
    std::unique_ptr<Optimizer> optimizer = make_optimizer(net.train, params.size());

    const int batch_max = std::max(opts.batch, opts.infer_batch);
    const std::vector<float> images = random_images(net, batch_max);
    std::vector<int32_t> labels(static_cast<size_t>(batch_max));
    for (size_t i = 0; i < labels.size(); i++) labels[i] = int32_t(i % size_t(classes));
    std::vector<float> train_scores(size_t(batch_max) * classes), infer_scores(size_t(batch_max) * classes);

    BenchResult r;
    // The check beside the benchmark: both pipelines give the same scores (in
    // training, dropout and batchnorm's batch statistics change them: then the
    // forward pass of one image must agree with that image's scores in the whole
    // forward batch).
    const float loss =
        model.train_step(params.data(), images.data(), labels.data(), opts.batch, train_scores.data(), grad.data());
    model.forward(params.data(), images.data(), opts.batch, infer_scores.data());
    const bool has_dropout = std::any_of(net.layers.begin(), net.layers.end(),
                                         [](const model::Layer &l) { return l.kind->random_in_training; });
    const bool train_differs = has_dropout || has_batchnorm(net);
    if (train_differs) {
        train_scores = infer_scores;
        model.forward(params.data(), images.data(), 1, infer_scores.data());
    }
    for (size_t i = 0; i < size_t(train_differs ? 1 : opts.batch) * classes; i++)
        r.max_score_difference = std::max(r.max_score_difference, double(std::abs(train_scores[i] - infer_scores[i])));
    if (!std::isfinite(loss) || !(r.max_score_difference <= 1e-4))
        throw std::runtime_error(fmt::format("{}: error: self-check failed: loss {}, forward and training scores differ by {}",
                                             net.name, loss, r.max_score_difference));

    const double train_s = median_seconds(
        [&] {
            model.train_step(params.data(), images.data(), labels.data(), opts.batch, train_scores.data(), grad.data());
            optimizer->step(params, grad, 1e-6, 0);  // a tiny rate: the weights stay sane over many repetitions
        },
        opts.repeats);
    const double infer_s = median_seconds(
        [&] { model.forward(params.data(), images.data(), opts.infer_batch, infer_scores.data()); }, opts.repeats);
    const double latency_s =
        median_seconds([&] { model.forward(params.data(), images.data(), 1, infer_scores.data()); }, opts.repeats * 10);

    r.train_images_per_s = opts.batch / train_s;
    r.infer_images_per_s = opts.infer_batch / infer_s;
    r.latency_us_batch1 = latency_s * 1e6;
    r.train_gflops = 3.0 * double(net.flops) * r.train_images_per_s / 1e9;
    r.infer_gflops = double(net.flops) * r.infer_images_per_s / 1e9;
    return r;
}

}  // namespace kiln
