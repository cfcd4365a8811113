// Schedule settings files (schedules/<network>.toml): what is read, what is
// written back, and a bad file refused with one line naming file, line and column.
#include <catch2/catch.hpp>

#include <fstream>
#include <stdexcept>

#include "schedules/settings.h"
#include "temp_dir.h"

namespace {

using kiln::schedules::load_schedule_settings;
using kiln::schedules::ScheduleSettings;

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
    CHECK(load_schedule_settings(write(dir, "[schedule]\nautoscheduler = \"Adams2019\"\n")).autoscheduler ==
          "Adams2019");
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
        {"[schedule\n", ":1:"},
    };
    for (const auto &c : cases) {
        const std::string path = write(dir, c.text);
        INFO(c.text);
        const std::string message = error_of(path);
        CHECK(message.rfind(path + c.expected, 0) == 0);
        CHECK(message.find('\n') == std::string::npos);
    }
}
