// Schedule settings files (schedules/<network>.toml): what is read, what is
// written back, the section each target takes, and a bad file refused with one
// line naming file, line and column.
#include <catch2/catch.hpp>

#include <fstream>
#include <stdexcept>

#include "Halide.h"
#include "schedules/settings.h"
#include "temp_dir.h"

namespace {

using kiln::schedules::load_schedule_file;
using kiln::schedules::load_schedule_settings;
using kiln::schedules::ScheduleSettings;
using kiln::schedules::target_family;
using kiln::schedules::with_family_section;

std::string write(const kiln::testing::TempDir &dir, const std::string &text) {
    const std::string path = dir.file("s.toml");
    std::ofstream(path) << text;
    return path;
}

std::string error_of(const std::string &path) {
    try {
        load_schedule_settings(path);
    } catch (const std::runtime_error &e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("schedule settings: defaults, every key, and a round trip", "[schedules]") {
    kiln::testing::TempDir dir("settings");
    CHECK(load_schedule_settings("") == ScheduleSettings{});
    const ScheduleSettings s = load_schedule_settings(write(
        dir, "[schedule]\nvector_lanes = 8\nconv_channel_block = 6\nconv_row_vectors = 3\n"
             "weight_grad_chunk = 4\ndense_block = 2\n"));
    CHECK(s.vector_lanes == 8);
    CHECK(s.conv_channel_block == 6);
    CHECK(s.conv_row_vectors == 3);
    CHECK(s.weight_grad_chunk == 4);
    CHECK(s.dense_block == 2);
    CHECK(load_schedule_settings(write(dir, to_toml(s, "tuned\nby a test"))) == s);
    const ScheduleSettings both = load_schedule_settings(write(dir, "[schedule]\nautoscheduler = \"Adams2019\"\n"));
    CHECK(both.training_autoscheduler == "Adams2019");
    CHECK(both.inference_autoscheduler == "Adams2019");
    CHECK(load_schedule_settings(write(dir, "[schedule]\nconv_algorithm = \"winograd4\"\n")).conv_algorithm == "winograd4");
}

TEST_CASE("schedule settings: a bad file is refused with file, line and column", "[schedules][errors]") {
    kiln::testing::TempDir dir("settings");
    const struct {
        std::string text, expected;
    } cases[] = {
        {"[schedule]\nconv_row_vectors = 9\n", ":2:20: error: schedule 'conv_row_vectors' must be an integer in [1, 4]"},
        {"[schedule]\ndense_block = \"4\"\n", ":2:15: error: schedule 'dense_block' must be an integer in [1, 16]"},
        {"[schedule]\ntile = 4\n", ":2:8: error: unknown schedule key 'tile'"},
        {"[tuning]\n", ":1:1: error: unknown table 'tuning'"},
        {"[schedule]\nautoscheduler = \"fast\"\n", ":2:17: error: 'autoscheduler' must be"},
        {"[schedule]\nconv_algorithm = \"winograd8\"\n",
         ":2:18: error: 'conv_algorithm' must be \"direct\", \"winograd\" or \"winograd4\""},
        {"[schedule\n", ":1:"},
        {"[schedule]\n[schedule.x86-64-avx3]\ndense_block = 2\n",
         ":2:1: error: unknown target family 'x86-64-avx3' in section 'schedule.x86-64-avx3'; the known families: "
         "x86-64-avx512, x86-64-avx2, x86-64-sse41, x86-64, x86-32, arm-64, arm-32"},
        {"[schedule.x86-64-linux-avx2-fma]\n",
         ":1:1: error: section 'schedule.x86-64-linux-avx2-fma' names a Halide target, not a target family (its "
         "family is 'x86-64-avx2': [schedule.x86-64-avx2])"},
        {"[schedule.arm-64]\nvector_lanes = 99\n", ":2:16: error: schedule 'vector_lanes' must be an integer in [0, 64]"},
        {"[schedule.arm-64]\nlanes = 4\n", ":2:9: error: unknown schedule key 'lanes'"},
        {"[schedule.arm-64.neon]\n", ":1:1: error: unknown schedule key 'neon'"},
        {"[schedule]\nx86-64-avx2 = 4\n", ":2:15: error: unknown schedule key 'x86-64-avx2'"},
        {"schedule = 4\n", ":1:12: error: 'schedule' must be a table"},
    };
    for (const auto &c : cases) {
        const std::string path = write(dir, c.text);
        INFO(c.text);
        const std::string message = error_of(path);
        CHECK(message.rfind(path + c.expected, 0) == 0);
        CHECK(message.find('\n') == std::string::npos);
    }
}

TEST_CASE("schedule settings: target families from Halide target strings", "[schedules][targets]") {
    CHECK(target_family("x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41") == "x86-64-avx512");
    CHECK(target_family("x86-64-linux-sse41-avx-f16c-fma-avx2") == "x86-64-avx2");
    CHECK(target_family("x86-64-linux-avx2") == "x86-64-sse41");  // AVX2 without FMA: not the AVX2 family
    CHECK(target_family("x86-64-linux-sse41") == "x86-64-sse41");
    CHECK(target_family("x86-64-osx") == "x86-64");
    CHECK(target_family("x86-32-linux-sse41") == "x86-32");
    CHECK(target_family("arm-64-linux") == "arm-64");
    CHECK(target_family("arm-64-android-arm_dot_prod") == "arm-64");
    CHECK(target_family("arm-32-linux") == "arm-32");
    CHECK(target_family("hexagon-32-qurt") == "");
    // Halide's own names for the targets the default build compiles for: each its own family.
    const char *build[] = {"x86-64-linux-sse41-avx-f16c-fma-avx2-avx512-avx512_skylake",
                           "x86-64-linux-sse41-avx-f16c-fma-avx2", "x86-64-linux-sse41"};
    const char *families[] = {"x86-64-avx512", "x86-64-avx2", "x86-64-sse41"};
    for (int i = 0; i < 3; i++) CHECK(target_family(Halide::Target(build[i]).to_string()) == families[i]);
    CHECK(target_family(Halide::Target("arm-64-linux-no_runtime").to_string()) == "arm-64");
}

TEST_CASE("schedule settings: a family's section overrides [schedule] for its targets only", "[schedules][targets]") {
    kiln::testing::TempDir dir("settings");
    const std::string path = write(dir,
                                   "[schedule]\nconv_channel_block = 8\nweight_grad_chunk = 32\n\n"
                                   "[schedule.x86-64-avx2]\nweight_grad_chunk = 8\ndense_block = 2\n\n"
                                   "[schedule.arm-64]\nautoscheduler = \"Mullapudi2016\"\n");
    const kiln::schedules::ScheduleFile file = load_schedule_file(path);
    ScheduleSettings defaults;
    defaults.conv_channel_block = 8;
    defaults.weight_grad_chunk = 32;
    CHECK(file.defaults == defaults);
    CHECK(file.for_family("x86-64-avx512") == defaults);  // no section: [schedule]
    CHECK(file.for_family("") == defaults);
    ScheduleSettings avx2 = defaults;
    avx2.weight_grad_chunk = 8;
    avx2.dense_block = 2;
    CHECK(file.for_family("x86-64-avx2") == avx2);
    CHECK(load_schedule_settings(path, "x86-64-avx2") == avx2);
    ScheduleSettings arm = defaults;
    arm.training_autoscheduler = arm.inference_autoscheduler = "Mullapudi2016";
    CHECK(file.for_family("arm-64") == arm);
    // "none" in a section takes back [schedule]'s autoscheduler.
    const std::string back = write(dir, "[schedule]\nautoscheduler = \"Adams2019\"\n[schedule.arm-64]\nautoscheduler = \"none\"\n");
    CHECK(load_schedule_settings(back, "arm-64").training_autoscheduler.empty());
    CHECK(load_schedule_settings(back, "arm-64").inference_autoscheduler.empty());
    CHECK(load_schedule_settings(back, "x86-64").inference_autoscheduler == "Adams2019");
}

TEST_CASE("schedule settings: kiln tune's section is written in, the rest kept", "[schedules][targets]") {
    kiln::testing::TempDir dir("settings");
    ScheduleSettings tuned;
    tuned.conv_channel_block = 6;
    tuned.weight_grad_chunk = 64;
    ScheduleSettings again = tuned;
    again.dense_block = 8;
    const std::string original = "# the defaults\n[schedule]\nconv_channel_block = 8  # a comment kept\n\n"
                                 "# arm: by hand\n[schedule.arm-64]\nvector_lanes = 4\n";

    // A new section goes at the end; every other byte stays.
    const std::string first = with_family_section(original, "x86-64-avx2", tuned, "tuned once");
    CHECK(first.rfind(original, 0) == 0);
    CHECK(first.substr(original.size()) ==
          "\n# tuned once\n[schedule.x86-64-avx2]\nvector_lanes = 0\nconv_channel_block = 6\nconv_row_vectors = 2\n"
          "weight_grad_chunk = 64\ndense_block = 4\n");
    const std::string path = write(dir, first);
    CHECK(load_schedule_settings(path, "x86-64-avx2") == tuned);
    CHECK(load_schedule_settings(path, "arm-64").vector_lanes == 4);

    // Written again: the section and its comment are replaced, not repeated.
    const std::string second = with_family_section(first, "x86-64-avx2", again, "tuned twice");
    CHECK(second.find("tuned once") == std::string::npos);
    CHECK(second.find("[schedule.x86-64-avx2]") == second.rfind("[schedule.x86-64-avx2]"));
    CHECK(load_schedule_settings(write(dir, second), "x86-64-avx2") == again);

    // A section in the middle: what follows it stays.
    const std::string middle = with_family_section(second, "arm-64", tuned, "arm, tuned");
    CHECK(middle.find("# arm: by hand") == std::string::npos);
    CHECK(middle.find("# the defaults\n[schedule]\nconv_channel_block = 8  # a comment kept\n") == 0);
    const kiln::schedules::ScheduleFile file = load_schedule_file(write(dir, middle));
    CHECK(file.for_family("arm-64") == tuned);
    CHECK(file.for_family("x86-64-avx2") == again);
    CHECK(file.defaults.conv_channel_block == 8);

    // No file yet: the section alone.
    CHECK(load_schedule_settings(write(dir, with_family_section("", "x86-64-sse41", tuned, "new")), "x86-64-sse41") ==
          tuned);
}

TEST_CASE("schedule settings: per-pipeline autoschedulers and per-layer, per-direction settings", "[schedules][layers]") {
    kiln::testing::TempDir dir("settings");
    using kiln::schedules::Direction;
    const std::string path = write(dir,
                                   "[schedule]\nautoscheduler = \"Adams2019\"\ninference_autoscheduler = \"none\"\n"
                                   "weight_grad_chunk = 8\n\n"
                                   "[schedule.layer.conv2]\nforward_channel_block = 2\nweight_grad_chunk = 32\n\n"
                                   "[schedule.x86-64-avx2]\ntraining_autoscheduler = \"none\"\n"
                                   "layer.conv2 = { input_grad_row_vectors = 3 }\nlayer.dense1 = { weight_grad_dense_block = 8 }\n");
    const kiln::schedules::ScheduleFile file = load_schedule_file(path);
    CHECK(file.defaults.training_autoscheduler == "Adams2019");
    CHECK(file.defaults.inference_autoscheduler.empty());
    CHECK(file.for_family("x86-64-avx2").training_autoscheduler.empty());

    // A layer's key sets its direction only; other layers and directions keep the network's.
    const ScheduleSettings &s = file.defaults;
    CHECK(s.for_stage("conv2", Direction::forward).conv_channel_block == 2);
    CHECK(s.for_stage("conv2", Direction::forward).weight_grad_chunk == 8);
    CHECK(s.for_stage("conv2", Direction::weight_grad).weight_grad_chunk == 32);
    CHECK(s.for_stage("conv2", Direction::weight_grad).conv_channel_block == 0);
    CHECK(s.for_stage("conv1", Direction::weight_grad).weight_grad_chunk == 8);
    CHECK(s.for_stage("conv2", Direction::forward).layers.empty());

    // A family's layer table adds to [schedule]'s, key by key.
    const ScheduleSettings &avx2 = file.for_family("x86-64-avx2");
    CHECK(avx2.for_stage("conv2", Direction::forward).conv_channel_block == 2);
    CHECK(avx2.for_stage("conv2", Direction::input_grad).conv_row_vectors == 3);
    CHECK(avx2.for_stage("conv2", Direction::forward).conv_row_vectors == 2);
    CHECK(avx2.for_stage("dense1", Direction::weight_grad).dense_block == 8);
    CHECK(avx2.for_stage("dense1", Direction::input_grad).dense_block == 4);

    // Written as kiln tune writes a section, and read back the same.
    const std::string again = write(dir, with_family_section("", "x86-64-avx2", avx2, "tuned"));
    CHECK(load_schedule_settings(again, "x86-64-avx2") == avx2);
    CHECK(std::ifstream(again).good());
}

TEST_CASE("schedule settings: bad layer tables are refused with file, line and column", "[schedules][layers][errors]") {
    kiln::testing::TempDir dir("settings");
    const kiln::model::Network net = kiln::model::parse_network(
        "[input]\nwidth = 12\nheight = 12\nchannels = 1\nclasses = 10\n"
        "[[layer]]\ntype = \"conv\"\nfilters = 4\nkernel = 3\n[[layer]]\ntype = \"maxpool\"\nsize = 2\n"
        "[[layer]]\ntype = \"dense\"\nunits = 10\n",
        "net.toml");
    const struct {
        std::string text, expected;
    } cases[] = {
        {"[schedule.layer.conv1]\ntile = 3\n", ":2:8: error: unknown key 'tile' for layer 'conv1' (a layer's keys: "
                                               "forward_channel_block, forward_row_vectors"},
        {"[schedule.layer.conv1]\nforward_row_vectors = 7\n",
         ":2:23: error: schedule 'forward_row_vectors' must be an integer in [1, 4]"},
        {"[schedule]\nlayer = 3\n", ":2:9: error: 'layer' must be a table"},
        {"[schedule]\nlayer.conv1 = 3\n", ":2:15: error: 'layer.conv1' must be a table of that layer's settings"},
        {"[schedule]\ninference_autoscheduler = \"fast\"\n", ":2:27: error: 'inference_autoscheduler' must be"},
        {"[schedule.layer.conv9]\nweight_grad_chunk = 8\n",
         ":1:1: error: no layer named 'conv9' in network 'net' (its layers: conv1, maxpool1, dense1)"},
        {"[schedule.arm-64]\nlayer.conv9 = { weight_grad_chunk = 8 }\n", ":2:15: error: no layer named 'conv9'"},
        {"[schedule.layer.conv1]\nweight_grad_dense_block = 2\n",
         ":2:27: error: key 'weight_grad_dense_block' is for dense layers; layer 'conv1' is conv"},
        {"[schedule.layer.maxpool1]\nweight_grad_chunk = 8\n",
         ":2:21: error: key 'weight_grad_chunk' is for conv layers; layer 'maxpool1' is maxpool"},
    };
    for (const auto &c : cases) {
        const std::string path = write(dir, c.text);
        INFO(c.text);
        std::string message;
        try {
            load_schedule_file(path, &net);
        } catch (const std::runtime_error &e) {
            message = e.what();
        }
        INFO(message);
        CHECK(message.rfind(path + c.expected, 0) == 0);
        CHECK(message.find('\n') == std::string::npos);
    }
}
