// Learning-rate schedules at the points that define them.
#include <catch2/catch.hpp>

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
