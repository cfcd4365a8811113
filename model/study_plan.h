// The hidden-layer study's plan (networks/study/study.toml): which networks
// `kiln study` trains by default, with how many seeds, how the report groups
// them into axes (each axis varies one thing), and the linear probes' settings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::model {

struct StudyAxis {
    std::string name, question;
    std::string x;  // the results column the axis varies: hidden_conv | hidden_dense | params | mflops, or ""
    std::vector<std::string> networks;  // in the axis's order; each one of StudyPlan::networks
    double reference_accuracy = 0;      // a published figure to compare with, 0 if none
    std::string reference;              // where it comes from
};

struct ProbePlan {
    int64_t epochs = 3, batch = 256, max_features = 8192;
    double learning_rate = 1e-3;
};

struct StudyPlan {
    std::string description;
    int64_t seeds = 3;
    std::vector<std::string> networks;  // names of compiled networks, in study order
    std::vector<StudyAxis> axes;
    ProbePlan probe;
};

// Parse and validate; errors are InputError naming `source`, line and column.
StudyPlan parse_study_plan(std::string_view text, const std::string &source);
StudyPlan load_study_plan(const std::string &path);

}  // namespace kiln::model
