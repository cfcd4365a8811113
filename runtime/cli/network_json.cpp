// The network as JSON (network_json.h). A kind's fields come from its canonical
// text (Kind::text, "filters=6 kernel=5 ..."), the kind's own statement of what
// decides its parameters' meaning, so that this file knows no kind by name.
#include "network_json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using json = nlohmann::ordered_json;  // keys in the order written: name first

json shape_json(const model::Shape &s) {
    return {{"channels", s.channels}, {"height", s.height}, {"width", s.width}};
}

// "7" -> 7, "0.1" and "1e-05" -> a double, anything else ("relu") -> a string.
json value_json(const std::string &text) {
    if (text.empty()) return text;
    char *end = nullptr;
    errno = 0;
    const long long i = std::strtoll(text.c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return int64_t(i);
    const double d = std::strtod(text.c_str(), &end);
    if (*end == '\0' && std::isfinite(d)) return d;
    return text;
}

// "filters=6 kernel=5 stride=1" -> {"filters": 6, "kernel": 5, "stride": 1}
json spec_json(const model::Layer &l) {
    json spec = json::object();
    std::istringstream words(l.kind->text(l));
    for (std::string word; words >> word;) {
        const size_t eq = word.find('=');
        if (eq == std::string::npos) spec[word] = true;  // no kind prints a bare word today
        else spec[word.substr(0, eq)] = value_json(word.substr(eq + 1));
    }
    return spec;
}

json layer_json(const model::Network &net, const model::Layer &l) {
    json inputs = json::array(), in = json::array(), params = json::array();
    for (int from : l.inputs) {
        inputs.push_back(from < 0 ? std::string("input") : net.layers[size_t(from)].name);
        in.push_back(shape_json(net.shape_of(from)));
    }
    for (int i : {l.weight, l.bias, l.running_mean, l.running_var}) {
        if (i < 0) continue;
        const model::ParamTensor &p = net.params[size_t(i)];
        params.push_back({{"name", p.name}, {"shape", p.shape}, {"offset", p.offset}, {"count", p.count},
                          {"buffer", p.buffer}});
    }
    return {{"name", l.name},
            {"type", std::string(l.kind->name)},
            {"inputs", inputs},
            {"in", in},
            {"out", shape_json(l.out)},
            {"activation", model::to_string(l.activation)},
            {"spec", spec_json(l)},
            {"params", params},
            {"flops", l.flops}};
}

json train_json(const model::TrainSettings &t) {
    return {{"epochs", t.epochs},         {"batch", t.batch},
            {"optimizer", t.optimizer},   {"learning_rate", t.learning_rate},
            {"lr_schedule", t.lr_schedule}, {"lr_step_epochs", t.lr_step_epochs},
            {"lr_gamma", t.lr_gamma},     {"lr_patience", t.lr_patience},
            {"lr_min", t.lr_min},         {"lr_warmup", t.lr_warmup},
            {"lr_monitor", t.lr_monitor}, {"momentum", t.momentum},
            {"nesterov", t.nesterov},     {"beta1", t.beta1},
            {"beta2", t.beta2},           {"alpha", t.alpha},
            {"epsilon", t.epsilon},       {"weight_decay", t.weight_decay},
            {"seed", t.seed},             {"validation", t.validation},
            {"shards", t.shards},         {"ema", t.ema},
            {"label_smoothing", t.label_smoothing}, {"init", t.init}};
}

}  // namespace

std::string network_json(const model::Network &net) {
    const model::InputSpec &i = net.input;
    const model::AugmentSettings &a = net.train.augment;
    json layers = json::array();
    for (const model::Layer &l : net.layers) layers.push_back(layer_json(net, l));
    const json j = {
        {"name", net.name},
        {"description", net.description},
        {"source", net.source},
        {"hash", net.hash()},
        {"canonical", net.canonical()},
        {"input",
         {{"width", i.width}, {"height", i.height}, {"channels", i.channels}, {"classes", i.classes},
          {"mean", i.mean}, {"std", i.std}}},
        {"layers", layers},
        {"param_count", net.param_count},
        {"flops", net.flops},
        {"train", train_json(net.train)},
        {"augment", {{"shift", a.shift}, {"rotate", a.rotate}, {"scale", a.scale}, {"scale_per_axis", a.scale_per_axis}}}};
    return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace kiln
