// Each optimizer, step by step, against its published update rule written out
// here in double precision for one parameter at a time (PyTorch's torch.optim
// documentation gives the same rules), and resuming from its saved state.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "compiled.h"
#include "optimizer.h"

namespace {

using kiln::model::TrainSettings;

// Gradients for 6 steps of 3 parameters: signs and sizes vary.
const std::vector<std::vector<float>> kGrads = {
    {0.5f, -1.0f, 0.01f}, {0.4f, -0.2f, 0.02f}, {-0.3f, 0.6f, 0.0f},
    {0.2f, 0.1f, -0.05f}, {0.0f, -0.7f, 0.3f}, {1.5f, 0.2f, -0.1f}};
const std::vector<float> kStart = {1.0f, -2.0f, 0.5f};

// The rule for one parameter over all steps, learning rates lr * (1 + step / 10).
double rule(const TrainSettings &s, int index) {
    double p = kStart[size_t(index)], v = 0, m = 0, sq = 0;
    for (size_t t = 0; t < kGrads.size(); t++) {
        const double lr = s.learning_rate * (1 + double(t) / 10);
        double g = kGrads[t][size_t(index)];
        if (s.optimizer == "sgd") {
            g += s.weight_decay * p;
            v = s.momentum * v + g;
            p -= lr * (s.nesterov ? g + s.momentum * v : v);
        } else if (s.optimizer == "adam" || s.optimizer == "adamw") {
            if (s.optimizer == "adamw") p -= lr * s.weight_decay * p;
            else g += s.weight_decay * p;
            m = s.beta1 * m + (1 - s.beta1) * g;
            sq = s.beta2 * sq + (1 - s.beta2) * g * g;
            const double mhat = m / (1 - std::pow(s.beta1, double(t + 1)));
            const double vhat = sq / (1 - std::pow(s.beta2, double(t + 1)));
            p -= lr * mhat / (std::sqrt(vhat) + s.epsilon);
        } else {  // rmsprop
            g += s.weight_decay * p;
            sq = s.alpha * sq + (1 - s.alpha) * g * g;
            const double d = g / (std::sqrt(sq) + s.epsilon);
            if (s.momentum > 0) {
                v = s.momentum * v + d;
                p -= lr * v;
            } else {
                p -= lr * d;
            }
        }
    }
    return p;
}

// Runs the optimizer over all steps, moving it to a fresh one through its saved
// state halfway, as a resumed run does.
std::vector<float> run(const TrainSettings &s) {
    std::vector<float> p = kStart;
    auto opt = kiln::make_optimizer(s, p.size());
    for (size_t t = 0; t < kGrads.size(); t++) {
        if (t == 3) {
            auto resumed = kiln::make_optimizer(s, p.size());
            REQUIRE(resumed->restore(opt->state()));
            opt = std::move(resumed);
        }
        opt->step(p, kGrads[t], s.learning_rate * (1 + double(t) / 10), int64_t(t));
    }
    return p;
}

void check(const TrainSettings &s) {
    const std::vector<float> got = run(s);
    for (int i = 0; i < 3; i++) {
        INFO(s.optimizer << " parameter " << i);
        CHECK(got[size_t(i)] == Approx(rule(s, i)).epsilon(1e-5));
    }
    // The rule moves every parameter: a no-op optimizer would fail above.
    CHECK(got != kStart);
}

TrainSettings settings(const std::string &optimizer, double lr, double momentum, double weight_decay) {
    TrainSettings s;
    s.optimizer = optimizer;
    s.learning_rate = lr;
    s.momentum = momentum;
    s.weight_decay = weight_decay;
    return s;
}

}  // namespace

TEST_CASE("sgd with momentum, with and without Nesterov, follows its update rule", "[optimizer]") {
    check(settings("sgd", 0.1, 0.9, 0.01));
    check(settings("sgd", 0.1, 0.0, 0.0));
    TrainSettings nesterov = settings("sgd", 0.05, 0.9, 0.001);
    nesterov.nesterov = true;
    check(nesterov);
}

TEST_CASE("adam and adamw follow their update rules", "[optimizer]") {
    check(settings("adam", 0.01, 0.0, 0.0));
    check(settings("adam", 0.01, 0.0, 0.1));
    check(settings("adamw", 0.01, 0.0, 0.1));
    TrainSettings betas = settings("adam", 0.003, 0.0, 0.0);
    betas.beta1 = 0.5;
    betas.beta2 = 0.9;
    check(betas);
}

TEST_CASE("rmsprop follows its update rule, with and without momentum", "[optimizer]") {
    check(settings("rmsprop", 0.001, 0.0, 0.0));
    check(settings("rmsprop", 0.001, 0.9, 0.01));
}

TEST_CASE("an optimizer refuses state that does not fit", "[optimizer]") {
    auto adam = kiln::make_optimizer(settings("adam", 0.01, 0, 0), 3);
    auto sgd = kiln::make_optimizer(settings("sgd", 0.01, 0.9, 0), 3);
    CHECK_FALSE(adam->restore(sgd->state()));
    auto bigger = kiln::make_optimizer(settings("sgd", 0.01, 0.9, 0), 4);
    CHECK_FALSE(bigger->restore(sgd->state()));
}

TEST_CASE("an update is the same whatever the thread count, and leaves buffers alone", "[optimizer]") {
    // A network large enough that step() cuts its update into one piece per
    // thread, with batchnorm's running statistics between its trained tensors.
    const kiln::model::Network net = kiln::model::parse_network(
        "[input]\nwidth = 28\nheight = 28\nchannels = 1\nclasses = 10\n"
        "[[layer]]\ntype = \"conv\"\nfilters = 8\nkernel = 3\n"
        "[[layer]]\ntype = \"batchnorm\"\n"
        "[[layer]]\ntype = \"dense\"\nunits = 10\n",
        "test.toml");
    const size_t n = size_t(net.param_count);
    REQUIRE(n > 40000);
    std::vector<float> start(n), grad(n);
    for (size_t i = 0; i < n; i++) {
        start[i] = float(i % 97) / 97.0f - 0.5f;
        grad[i] = float(i % 89) / 89.0f - 0.4f;
    }
    for (const char *name : {"sgd", "adam", "adamw", "rmsprop"}) {
        INFO(name);
        TrainSettings s = settings(name, 0.01, 0.9, 0.001);
        s.nesterov = s.optimizer == "sgd";
        std::vector<std::vector<float>> results;
        for (int threads : {1, 2, 3}) {
            kiln::set_thread_count(threads);
            auto opt = kiln::make_optimizer(s, n);
            opt->freeze_buffers(net);
            std::vector<float> p = start;
            for (int t = 0; t < 3; t++) opt->step(p, grad, s.learning_rate, t);
            results.push_back(p);
        }
        kiln::set_thread_count(0);
        CHECK(results[0] == results[1]);
        CHECK(results[0] == results[2]);
        for (const kiln::model::ParamTensor &t : net.params)
            for (int64_t i = t.offset; i < t.offset + t.count; i++)
                if (t.buffer != (results[0][size_t(i)] == start[size_t(i)])) {
                    FAIL_CHECK(t.name << " element " << i - t.offset << (t.buffer ? " changed" : " did not change"));
                    break;
                }
    }
}
