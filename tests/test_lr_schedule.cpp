// Learning-rate schedules at the points that define them.
#include <catch2/catch.hpp>

#include <limits>

#include "lr_schedule.h"

namespace {

kiln::model::TrainSettings schedule(const std::string &name) {
    kiln::model::TrainSettings s;
    s.lr_schedule = name;
    s.learning_rate = 0.1;
    s.epochs = 10;
    return s;
}

constexpr int64_t kSteps = 100;  // per epoch; 1000 in the run

// One epoch's metric and the plateau schedule's state after stepping with it.
struct PlateauRow {
    double metric, best;
    int64_t bad;
    double lr;
};

template <size_t N>
void step_through(kiln::Plateau &p, const PlateauRow (&rows)[N]) {
    for (const PlateauRow &r : rows) {
        INFO("metric " << r.metric);
        p.step(r.metric);
        CHECK(p.best() == r.best);
        CHECK(p.bad_epochs() == r.bad);
        CHECK(p.lr() == Approx(r.lr).epsilon(1e-15));
    }
}

}  // namespace

TEST_CASE("constant and cosine schedules", "[lr]") {
    CHECK(kiln::learning_rate_at(schedule("constant"), 777, kSteps) == 0.1);
    const auto cosine = schedule("cosine");
    CHECK(kiln::learning_rate_at(cosine, 0, kSteps) == Approx(0.1));
    CHECK(kiln::learning_rate_at(cosine, 500, kSteps) == Approx(0.05));
    CHECK(kiln::learning_rate_at(cosine, 1000, kSteps) == Approx(0).margin(1e-12));
    CHECK(kiln::learning_rate_at(cosine, 250, kSteps) > kiln::learning_rate_at(cosine, 251, kSteps));
}

TEST_CASE("the step schedule drops by gamma every lr_step_epochs", "[lr]") {
    auto s = schedule("step");
    s.lr_step_epochs = 3;
    s.lr_gamma = 0.5;
    CHECK(kiln::learning_rate_at(s, 0, kSteps) == Approx(0.1));
    CHECK(kiln::learning_rate_at(s, 299, kSteps) == Approx(0.1));
    CHECK(kiln::learning_rate_at(s, 300, kSteps) == Approx(0.05));
    CHECK(kiln::learning_rate_at(s, 600, kSteps) == Approx(0.025));
    CHECK(kiln::learning_rate_at(s, 999, kSteps) == Approx(0.0125));
}

TEST_CASE("onecycle warms up from lr/25 to lr, then anneals to lr/250000", "[lr]") {
    auto s = schedule("onecycle");
    s.lr_warmup = 0.3;
    CHECK(kiln::learning_rate_at(s, 0, kSteps) == Approx(0.1 / 25));
    CHECK(kiln::learning_rate_at(s, 150, kSteps) == Approx((0.1 + 0.1 / 25) / 2));
    CHECK(kiln::learning_rate_at(s, 300, kSteps) == Approx(0.1));
    CHECK(kiln::learning_rate_at(s, 1000, kSteps) == Approx(0.1 / 25 / 1e4));
    CHECK(kiln::learning_rate_at(s, 299, kSteps) < kiln::learning_rate_at(s, 300, kSteps));
    CHECK(kiln::learning_rate_at(s, 301, kSteps) < kiln::learning_rate_at(s, 300, kSteps));
}

// ReduceLROnPlateau(mode="min", factor, patience, threshold=1e-4 rel, min_lr=0),
// epoch by epoch: each row is the metric seen and the state PyTorch's step(metric)
// leaves (best, num_bad_epochs, the learning rate for the next epoch).
TEST_CASE("plateau follows PyTorch's ReduceLROnPlateau step by step", "[lr][plateau]") {
    auto s = schedule("plateau");
    s.lr_gamma = 0.5;
    s.lr_patience = 2;
    kiln::Plateau p(s);
    CHECK(p.lr() == 0.1);
    CHECK(p.best() == std::numeric_limits<double>::infinity());
    const PlateauRow rows[] = {
        {1.0, 1.0, 0, 0.1},            // anything beats the initial +inf
        {0.9, 0.9, 0, 0.1},            // better
        {0.89995, 0.9, 1, 0.1},        // better, but by less than 1e-4 of best: a bad epoch
        {0.95, 0.9, 2, 0.1},           // worse: 2 bad epochs, not more than patience
        {0.91, 0.9, 0, 0.05},          // 3 > patience: lr x 0.5, the count starts again
        {0.9, 0.9, 1, 0.05},           // equal is not better
        {0.8999, 0.8999, 0, 0.05},     // better by just over 1e-4 relative
        {1.0, 0.8999, 1, 0.05},
        {1.0, 0.8999, 2, 0.05},
        {1.0, 0.8999, 0, 0.025},       // reduced again
    };
    step_through(p, rows);
}

TEST_CASE("plateau with lr_monitor = val_accuracy follows ReduceLROnPlateau(mode=\"max\")", "[lr][plateau]") {
    auto s = schedule("plateau");
    s.lr_gamma = 0.5;
    s.lr_patience = 1;
    s.lr_monitor = "val_accuracy";
    kiln::Plateau p(s);
    CHECK(p.best() == -std::numeric_limits<double>::infinity());
    const PlateauRow rows[] = {
        {0.5, 0.5, 0, 0.1},          // anything beats the initial -inf
        {0.9, 0.9, 0, 0.1},          // higher is better
        {0.90005, 0.9, 1, 0.1},      // higher, but by less than 1e-4 of best: a bad epoch
        {0.8, 0.9, 0, 0.05},         // lower: 2 bad epochs > patience 1, lr x 0.5
        {0.9001, 0.9001, 0, 0.05},   // higher by just over 1e-4 relative
        {0.9001, 0.9001, 1, 0.05},   // equal is not better
        {0.95, 0.95, 0, 0.05},
    };
    step_through(p, rows);
    kiln::Plateau q(s);  // resumed: the state carries over, the mode from the settings
    REQUIRE(q.restore(p.to_metadata()));
    q.step(0.96);
    CHECK(q.best() == 0.96);
}

TEST_CASE("plateau with patience 0 drops after every epoch without improvement, down to eps", "[lr][plateau]") {
    auto s = schedule("plateau");
    s.lr_gamma = 0.1;
    s.lr_patience = 0;
    s.learning_rate = 1e-6;
    kiln::Plateau p(s);
    p.step(1.0);
    CHECK(p.lr() == 1e-6);
    p.step(2.0);
    CHECK(p.lr() == Approx(1e-7));
    p.step(2.0);
    CHECK(p.lr() == Approx(1e-8));
    p.step(2.0);  // 1e-8 - 1e-9 is below PyTorch's eps of 1e-8: no change
    CHECK(p.lr() == Approx(1e-8));
    CHECK(p.bad_epochs() == 0);
}

TEST_CASE("plateau never drops below lr_min", "[lr][plateau]") {
    auto s = schedule("plateau");
    s.lr_gamma = 0.5;
    s.lr_patience = 0;
    s.learning_rate = 1e-3;
    s.lr_min = 3e-4;
    kiln::Plateau p(s);
    p.step(1.0);
    p.step(2.0);
    CHECK(p.lr() == Approx(5e-4));
    p.step(2.0);  // 2.5e-4 is below the floor
    CHECK(p.lr() == Approx(3e-4));
    p.step(2.0);
    CHECK(p.lr() == Approx(3e-4));
}

TEST_CASE("plateau state round-trips through checkpoint metadata exactly", "[lr][plateau]") {
    auto s = schedule("plateau");
    s.lr_gamma = 0.3;
    s.lr_patience = 1;
    kiln::Plateau p(s);
    for (double m : {0.7, 0.6123456789012345, 0.65, 0.66, 0.64}) p.step(m);
    kiln::Plateau q(s);
    REQUIRE(q.restore(p.to_metadata()));
    CHECK(q.lr() == p.lr());
    CHECK(q.best() == p.best());
    CHECK(q.bad_epochs() == p.bad_epochs());
    CHECK(p.lr() != 0.1);  // it did drop

    kiln::Plateau fresh(s);
    CHECK(q.restore(fresh.to_metadata()));  // best = +inf survives the text too
    CHECK(q.best() == std::numeric_limits<double>::infinity());
    auto broken = p.to_metadata();
    broken["plateau_bad_epochs"] = "1.5";
    CHECK_FALSE(q.restore(broken));
    broken.erase("plateau_bad_epochs");
    CHECK_FALSE(q.restore(broken));
}
