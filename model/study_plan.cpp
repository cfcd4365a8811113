#include "model/study_plan.h"

#include <algorithm>

#include <fmt/format.h>

#include "model/layer_parse.h"

namespace kiln::model {
namespace {

using detail::Context;
using detail::TableReader;

bool positive(double v) { return v > 0; }
bool accuracy(double v) { return v >= 0 && v <= 1; }

// A non-empty array of distinct strings at `key`.
std::vector<std::string> string_list(const TableReader &r, std::string_view key) {
    const toml::node *node = r.find(key);
    if (!node) r.fail(fmt::format("missing '{}'", key));
    const toml::array *array = node->as_array();
    if (!array || array->empty()) r.fail_at(key, fmt::format("'{}' must be a non-empty array of network names", key));
    std::vector<std::string> out;
    for (const toml::node &item : *array) {
        const auto *s = item.as_string();
        if (!s)
            r.context().fail(detail::pos_of(item), fmt::format("'{}' holds {}, not a network name in quotes", key,
                                                               detail::describe_value(item)));
        if (std::find(out.begin(), out.end(), s->get()) != out.end())
            r.context().fail(detail::pos_of(item), fmt::format("'{}' lists {} twice", key, detail::quote(s->get())));
        out.push_back(s->get());
    }
    return out;
}

const toml::table &table_at(const TableReader &r, std::string_view key) {
    const toml::node *node = r.find(key);
    if (!node) r.context().fail({}, fmt::format("missing [{}] table", key));
    if (!node->is_table()) r.fail_at(key, fmt::format("'{}' must be a table ([{}])", key, key));
    return *node->as_table();
}

StudyAxis parse_axis(const Context &ctx, const toml::table &t, size_t index, const StudyPlan &plan) {
    const TableReader r(ctx, t, fmt::format("axis {}: ", index + 1));
    r.allow_only({"name", "question", "x", "networks", "reference_accuracy", "reference"});
    StudyAxis a;
    a.name = r.string("name");
    a.question = r.string("question", "");
    a.x = r.string("x", "");
    if (!a.x.empty() && a.x != "hidden_conv" && a.x != "hidden_dense" && a.x != "params" && a.x != "mflops")
        r.fail_at("x", "'x' must be \"hidden_conv\", \"hidden_dense\", \"params\" or \"mflops\"");
    a.networks = string_list(r, "networks");
    for (const std::string &n : a.networks)
        if (std::find(plan.networks.begin(), plan.networks.end(), n) == plan.networks.end())
            r.fail_at("networks", fmt::format("{} is not in [study] networks", detail::quote(n)));
    a.reference_accuracy = r.number("reference_accuracy", 0, accuracy, "a fraction in [0, 1]");
    a.reference = r.string("reference", "");
    if ((a.reference_accuracy > 0) != !a.reference.empty())
        r.fail("'reference_accuracy' and 'reference' (where the figure comes from) go together");
    return a;
}

}  // namespace

StudyPlan parse_study_plan(std::string_view text, const std::string &source) {
    const Context ctx(source);
    const toml::table root = detail::parse_document(ctx, text);
    const TableReader r(ctx, root, "");
    r.allow_only({"study", "axis", "probe"});
    StudyPlan plan;
    {
        const TableReader s(ctx, table_at(r, "study"), "[study]: ");
        s.allow_only({"description", "seeds", "networks"});
        plan.description = s.string("description", "");
        plan.seeds = s.integer("seeds", 1, 1000, 3);
        plan.networks = string_list(s, "networks");
    }
    if (const toml::node *axes = r.find("axis")) {
        const toml::array *array = axes->as_array();
        if (!array || !array->is_array_of_tables()) r.fail_at("axis", "'axis' must be tables ([[axis]])");
        for (size_t i = 0; i < array->size(); i++)
            plan.axes.push_back(parse_axis(ctx, *array->get(i)->as_table(), i, plan));
    }
    if (r.find("probe")) {
        const TableReader p(ctx, table_at(r, "probe"), "[probe]: ");
        p.allow_only({"epochs", "batch", "learning_rate", "max_features"});
        plan.probe.epochs = p.integer("epochs", 1, 1000, plan.probe.epochs);
        plan.probe.batch = p.integer("batch", 1, 65536, plan.probe.batch);
        plan.probe.max_features = p.integer("max_features", 1, int64_t(1) << 24, plan.probe.max_features);
        plan.probe.learning_rate = p.number("learning_rate", plan.probe.learning_rate, positive, "a positive number");
    }
    return plan;
}

StudyPlan load_study_plan(const std::string &path) {
    return parse_study_plan(detail::read_text_file(Context(path), path), path);
}

}  // namespace kiln::model
