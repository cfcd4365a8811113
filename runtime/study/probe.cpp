#include "probe.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <thread>

#include "rng.h"
#include "softmax_probe.h"

namespace kiln {
namespace {

constexpr uint64_t kProbeShuffleStream = 7;

// One image's activations of `l` (src: C x H x W) into dst (D), average-pooled.
void extract(const ProbeLayer &l, const float *src, float *dst) {
    const int64_t C = l.shape.channels, H = l.shape.height, W = l.shape.width, p = l.pool;
    if (p == 1) {
        std::copy_n(src, C * H * W, dst);
        return;
    }
    const int64_t h = H / p, w = W / p;
    const float scale = 1.0f / float(p * p);
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                float sum = 0;
                for (int64_t dy = 0; dy < p; dy++)
                    for (int64_t dx = 0; dx < p; dx++) sum += src[(c * H + y * p + dy) * W + x * p + dx];
                *dst++ = sum * scale;
            }
}

// Layers dealt to threads, the largest first to the least loaded: a fixed
// assignment, and each probe is trained by one thread, so results do not depend
// on the thread count.
std::vector<std::vector<size_t>> deal(const std::vector<ProbeLayer> &layers, int threads) {
    std::vector<size_t> order(layers.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return layers[a].features > layers[b].features; });
    std::vector<std::vector<size_t>> hands(size_t(std::max(1, threads)));
    std::vector<int64_t> load(hands.size());
    for (size_t i : order) {
        const size_t t = size_t(std::min_element(load.begin(), load.end()) - load.begin());
        hands[t].push_back(i);
        load[t] += layers[i].features;
    }
    return hands;
}

template <typename Work>
void on_threads(const std::vector<std::vector<size_t>> &hands, Work work) {
    std::vector<std::thread> pool;
    for (size_t t = 1; t < hands.size(); t++) pool.emplace_back([&, t] { work(hands[t]); });
    work(hands[0]);
    for (std::thread &th : pool) th.join();
}

}  // namespace

std::vector<ProbeLayer> probe_layers(const model::Network &net, int64_t max_features) {
    std::vector<ProbeLayer> out;
    auto add = [&](ProbeLayer l) {
        while (l.shape.size() / (l.pool * l.pool) > max_features && l.shape.height / (2 * l.pool) >= 1 &&
               l.shape.width / (2 * l.pool) >= 1)
            l.pool *= 2;
        l.features = l.shape.channels * (l.shape.height / l.pool) * (l.shape.width / l.pool);
        out.push_back(l);
    };
    add({0, "input", "input", net.input.shape(), -1});
    for (size_t i = 0; i + 1 < net.layers.size(); i++) {
        const model::Layer &l = net.layers[i];
        if (l.kind->random_in_training) continue;
        add({int(i) + 1, l.name, std::string(l.kind->name), l.out, model::feature_offset(net, i)});
    }
    return out;
}

std::vector<ProbeResult> run_probes(const CompiledModel &model, const std::vector<float> &params,
                                    const ImageSet &train_set, const ImageSet &test_set, const ProbeSettings &s,
                                    const std::function<void(int64_t, int64_t)> &progress) {
    const model::Network &net = model.net();
    const std::vector<ProbeLayer> layers = probe_layers(net, s.max_features);
    const int classes = int(net.input.classes);
    const int64_t image_size = net.input.shape().size(), feature_count = model::feature_count(net);
    std::vector<SoftmaxProbe> probes;
    for (const ProbeLayer &l : layers) probes.emplace_back(l.features, classes);
    const std::vector<std::vector<size_t>> hands = deal(layers, s.threads);

    std::vector<float> pixels(size_t(s.batch * image_size)), features(size_t(s.batch * feature_count));
    std::vector<int32_t> labels(size_t(s.batch));
    // Per thread, one layer's batch of probe inputs (n x Dp: rows padded with zeros).
    std::vector<std::vector<float>> inputs(hands.size());
    std::vector<int64_t> correct(layers.size());

    // Runs the network on images `index(0..n)` of `set`, then `use(layer, x, n)` per layer.
    auto for_batch = [&](const ImageSet &set, const std::vector<int64_t> &index, int64_t begin, int n, auto use) {
        for (int i = 0; i < n; i++) {
            const size_t src = size_t(index.empty() ? begin + i : index[size_t(begin + i)]);
            std::copy_n(set.pixels.data() + src * size_t(image_size), image_size, pixels.data() + i * image_size);
            labels[size_t(i)] = set.labels[src];
        }
        model.features(params.data(), pixels.data(), n, features.data());
        on_threads(hands, [&](const std::vector<size_t> &mine) {
            std::vector<float> &x = inputs[size_t(&mine - hands.data())];
            for (size_t l : mine) {
                const ProbeLayer &layer = layers[l];
                const int64_t stride = probes[l].row_stride();  // features, then zeros
                x.assign(size_t(n * stride), 0.0f);
                for (int i = 0; i < n; i++) {
                    const float *src = layer.offset < 0 ? pixels.data() + i * image_size
                                                        : features.data() + i * feature_count + layer.offset;
                    extract(layer, src, x.data() + i * stride);
                }
                use(l, x.data(), n);
            }
        });
    };

    const int64_t total = s.epochs * train_set.count + test_set.count;
    int64_t done = 0;
    for (int64_t epoch = 1; epoch <= s.epochs; epoch++) {
        std::vector<int64_t> order(size_t(train_set.count));
        std::iota(order.begin(), order.end(), int64_t(0));
        Rng rng = make_rng(s.seed, kProbeShuffleStream, uint64_t(epoch));
        for (int64_t i = train_set.count - 1; i > 0; i--) std::swap(order[size_t(i)], order[rng.below(uint64_t(i + 1))]);
        std::fill(correct.begin(), correct.end(), 0);
        for (int64_t begin = 0; begin < train_set.count; begin += s.batch) {
            const int n = int(std::min<int64_t>(s.batch, train_set.count - begin));
            for_batch(train_set, order, begin, n, [&](size_t l, const float *x, int m) {
                correct[l] += probes[l].step(x, labels.data(), m, s.learning_rate);
            });
            done += n;
            if (progress) progress(done, total);
        }
    }
    std::vector<ProbeResult> results(layers.size());
    for (size_t l = 0; l < layers.size(); l++) {
        results[l].layer = layers[l];
        results[l].train_accuracy = double(correct[l]) / double(std::max<int64_t>(1, train_set.count));
    }
    std::fill(correct.begin(), correct.end(), 0);
    for (int64_t begin = 0; begin < test_set.count; begin += s.batch) {
        const int n = int(std::min<int64_t>(s.batch, test_set.count - begin));
        for_batch(test_set, {}, begin, n, [&](size_t l, const float *x, int m) {
            correct[l] += probes[l].count_correct(x, labels.data(), m);
        });
        done += n;
        if (progress) progress(done, total);
    }
    for (size_t l = 0; l < layers.size(); l++)
        results[l].test_accuracy = double(correct[l]) / double(std::max<int64_t>(1, test_set.count));
    return results;
}

}  // namespace kiln
