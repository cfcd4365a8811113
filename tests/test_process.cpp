// Process-wide settings are an opt-in (runtime/core/process.h): a program that does
// not call configure_process() keeps its own Halide error handler and
// parallel-for hook while kiln's networks run, sharded training steps included.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

#include "HalideRuntime.h"
#include "compiled.h"
#include "process.h"

namespace {

std::atomic<int> par_for_calls{0};

int counting_do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure) {
    par_for_calls++;
    return halide_default_do_par_for(user_context, task, min, size, closure);
}

void own_error_handler(void *, const char *) {}

}  // namespace

// Each TEST_CASE runs in a process of its own (catch_discover_tests).
TEST_CASE("without configure_process, running networks leaves the program's Halide handlers in place") {
    halide_set_error_handler(own_error_handler);
    halide_set_custom_do_par_for(counting_do_par_for);
    kiln::set_thread_count(2);
    kiln::CompiledModel model = kiln::find_model("lenet5");
    model.set_shards(2);  // two shards on two threads: kiln's serial loops, had the process opted in
    const kiln::model::Network &net = model.net();
    const int n = 64;
    std::vector<float> params(size_t(net.param_count), 0.01f), grad(params.size());
    std::vector<float> images(size_t(n * net.input.shape().size()), 0.5f), scores(size_t(n * net.input.classes));
    std::vector<int32_t> labels(size_t(n), 3);
    model.train_step(params.data(), images.data(), labels.data(), n, scores.data(), grad.data());
    model.forward(params.data(), images.data(), n, scores.data());

    CHECK_FALSE(kiln::process_configured());
    CHECK(par_for_calls > 0);  // the pipelines' parallel loops went through the program's own hook
    CHECK(halide_set_error_handler(own_error_handler) == own_error_handler);
    CHECK(halide_set_custom_do_par_for(counting_do_par_for) == counting_do_par_for);
}

TEST_CASE("configure_process replaces the Halide handlers with kiln's") {
    halide_set_error_handler(own_error_handler);
    halide_set_custom_do_par_for(counting_do_par_for);
    kiln::configure_process();
    CHECK(kiln::process_configured());
    CHECK(halide_set_error_handler(own_error_handler) != own_error_handler);
    CHECK(halide_set_custom_do_par_for(counting_do_par_for) != counting_do_par_for);
}
