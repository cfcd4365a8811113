// TOML text -> validated Network, in the manner of Darknet's parser but strict:
// [network], [input], then each [[layer]] in order with the activation shape
// carried from one to the next, then [train]. Each layer kind's own keys are read
// by its parser (conv.cpp, pool.cpp, dense.cpp), looked up by type name below;
// everything shared lives here: reading typed keys with positions, the one-line
// errors, names, the flat parameter layout and the totals.
//
// FLOPs count multiply-adds as 2 and leave out biases and activations.
//
// The first problem found ends parsing with an InputError; nothing else escapes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>

#include <fmt/core.h>

#include "model/layer_parse.h"

namespace kiln::model {
namespace detail {

// --- Positions, messages -------------------------------------------------------

static Pos to_pos(const toml::source_position &p) {
    return {static_cast<int>(p.line), static_cast<int>(p.column)};
}

Pos pos_of(const toml::node &node) { return to_pos(node.source().begin); }

static std::string escape_controls(std::string_view s, bool quotes) {
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (u < 0x20 || u == 0x7f)
            out += fmt::format("\\x{:02x}", u);
        else if (quotes && (c == '"' || c == '\\'))
            out += {'\\', c};
        else
            out += c;
    }
    return out;
}

std::string quote(std::string_view s) { return '"' + escape_controls(s, true) + '"'; }

void Context::fail(Pos pos, std::string_view message) const {
    std::string where =
        pos.line > 0 ? fmt::format("{}:{}:{}", source_, pos.line, pos.col) : source_;
    throw InputError(escape_controls(fmt::format("{}: error: {}", where, message), false));
}

// A value as the user wrote it, or its kind when it is not a scalar.
static std::string describe(const toml::node &node) {
    if (auto s = node.as_string()) return quote(s->get());
    if (auto i = node.as_integer()) return std::to_string(i->get());
    if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
    if (auto f = node.as_floating_point()) {
        std::string text = fmt::format("{}", f->get());
        // Keep "6.0" recognizably a float.
        if (text.find_first_of(".eni") == std::string::npos) text += ".0";
        return text;
    }
    if (node.is_table()) return "a table";
    if (node.is_array()) return "an array";
    if (node.is_date()) return "a date";
    if (node.is_time()) return "a time";
    return "a date-time";
}

// --- TableReader -----------------------------------------------------------------

void TableReader::fail_at_node(const toml::node &node, std::string_view message) const {
    ctx_.fail(pos_of(node), fmt::format("{}{}", prefix_, message));
}

void TableReader::allow_only(std::initializer_list<std::string_view> keys) const {
    const toml::key *first = nullptr;
    for (auto &&[key, value] : table_) {
        if (std::find(keys.begin(), keys.end(), key.str()) != keys.end()) continue;
        // toml::table is ordered by name; report the unknown key that comes first in the file.
        const auto at = key.source().begin;
        if (!first || at < first->source().begin) first = &key;
    }
    if (!first) return;

    std::string allowed;
    for (std::string_view k : keys) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", k);
    const bool is_table = table_.get(first->str())->is_table();
    ctx_.fail(to_pos(first->source().begin),
              fmt::format("{}unknown {} '{}' (expected {})", prefix_, is_table ? "table" : "key",
                          escape_controls(first->str(), false), allowed));
}

const toml::node *TableReader::find(std::string_view key) const { return table_.get(key); }

static std::string integer_expected(int64_t lo) {
    if (lo == 1) return "a positive integer";
    if (lo == 0) return "a non-negative integer";
    return fmt::format("an integer of at least {}", lo);
}

int64_t TableReader::integer(std::string_view key, int64_t lo, int64_t hi) const {
    const toml::node *node = find(key);
    if (!node) fail(fmt::format("missing required key '{}'", key));
    const toml::value<int64_t> *v = node->as_integer();
    if (!v || v->get() < lo)
        fail_at(key,
                fmt::format("'{}' must be {}, got {}", key, integer_expected(lo), describe(*node)));
    if (v->get() > hi)
        fail_at(key, fmt::format("'{}' must be at most {}, got {}", key, hi, v->get()));
    return v->get();
}

int64_t TableReader::integer(std::string_view key, int64_t lo, int64_t hi, int64_t fallback) const {
    return find(key) ? integer(key, lo, hi) : fallback;
}

double TableReader::number(std::string_view key, double fallback, bool (*ok)(double),
                           std::string_view expected) const {
    const toml::node *node = find(key);
    if (!node) return fallback;
    double v = 0;
    if (auto i = node->as_integer())
        v = static_cast<double>(i->get());
    else if (auto f = node->as_floating_point())
        v = f->get();
    else
        fail_at(key, fmt::format("'{}' must be {}, got {}", key, expected, describe(*node)));
    if (!std::isfinite(v))
        fail_at(key, fmt::format("'{}' must be a finite number, got {}", key, describe(*node)));
    if (!ok(v))
        fail_at(key, fmt::format("'{}' must be {}, got {}", key, expected, describe(*node)));
    return v;
}

std::string TableReader::string(std::string_view key) const {
    const toml::node *node = find(key);
    if (!node) fail(fmt::format("missing required key '{}'", key));
    if (!node->is_string())
        fail_at(key, fmt::format("'{}' must be a string, got {}", key, describe(*node)));
    return node->as_string()->get();
}

std::string TableReader::string(std::string_view key, std::string fallback) const {
    return find(key) ? string(key) : fallback;
}

Activation TableReader::activation(std::string_view key) const {
    const std::string name = string(key, "none");
    std::string names;
    for (Activation a :
         {Activation::relu, Activation::tanh, Activation::sigmoid, Activation::none}) {
        if (name == to_string(a)) return a;
        names += fmt::format("{}{}", names.empty() ? "" : ", ", to_string(a));
    }
    fail_at(key, fmt::format("'{}' must be one of {}; got {}", key, names, quote(name)));
}

void TableReader::fail_at(std::string_view key, std::string_view message) const {
    const toml::node *node = key.empty() ? nullptr : find(key);
    ctx_.fail(pos_of(node ? *node : table_), prefix_ + std::string(message));
}

void TableReader::fail(std::string_view message) const { fail_at({}, message); }

int64_t TableReader::bounded_product(std::initializer_list<int64_t> factors, int64_t limit,
                                     std::string_view key, std::string_view what) const {
    int64_t product = 1;
    for (int64_t f : factors) {
        if (f != 0 && product > limit / f) {
            std::string dims;
            for (int64_t g : factors) dims += fmt::format("{}{}", dims.empty() ? "" : " x ", g);
            fail_at(key, fmt::format("{} [{}] has more than {} elements", what, dims, limit));
        }
        product *= f;
    }
    return product;
}

// --- Shapes and tensors, shared by the kinds ---------------------------------------------

Extent2 slide(const TableReader &r, std::string_view key, const Shape &in, int64_t window,
              int64_t stride, int64_t pad) {
    // Extents are at most a few thousand plus 2 * max_kernel: no overflow.
    const int64_t h = in.height + 2 * pad, w = in.width + 2 * pad;
    if (window > h || window > w) {
        std::string input = pad == 0 ? fmt::format("the input {}x{}", h, w)
                                     : fmt::format("the padded input {}x{} ({}x{} with padding {})",
                                                   h, w, in.height, in.width, pad);
        r.fail_at(key, fmt::format("'{}' = {} is larger than {}", key, window, input));
    }
    return {(h - window) / stride + 1, (w - window) / stride + 1};
}

Shape output_shape(const TableReader &r, int64_t channels, int64_t height, int64_t width) {
    if (channels < 1 || height < 1 || width < 1)
        r.fail(fmt::format("output shape {}x{}x{} is empty", channels, height, width));
    r.bounded_product({channels, height, width}, Limits::max_activation, {}, "output activation");
    return {channels, height, width};
}

ParamTensor make_tensor(const TableReader &r, std::string_view key,
                        std::initializer_list<int64_t> shape, int64_t fan_in) {
    ParamTensor t;
    t.shape = shape;
    t.count = r.bounded_product(shape, Limits::max_params, key, "parameter tensor");
    t.fan_in = fan_in;
    return t;
}

// --- The text, before toml++ sees it ---------------------------------------------------
//
// The file must be UTF-8: toml++ would refuse it too, but we name the first bad byte.
// And toml++ 3.3 must not see the input that reaches its undefined behaviour:
// TOML_UNREACHABLE in is_non_ascii_horizontal_whitespace (toml++ issue #190), which it
// calls on non-ASCII characters outside strings, in quoted keys, after a backslash in a
// """string""" and first after a line-ending backslash. So non-ASCII text is refused
// except in comments and string values; nothing refused could be part of a network
// file, save non-ASCII text right after a line-ending backslash.

// Length of the well-formed UTF-8 sequence at s[i], or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF).
static size_t utf8_length(std::string_view s, size_t i) {
    auto byte = [&](size_t k) -> unsigned {
        return k < s.size() ? static_cast<unsigned char>(s[k]) : 0x100u;
    };
    const unsigned c = byte(i);
    if (c < 0x80) return 1;
    size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : lo, hi = c == 0xED ? 0x9F : hi;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : lo, hi = c == 0xF4 ? 0x8F : hi;
    else
        return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return n;
}

// A scan over the text one character at a time that follows comments and strings
// just well enough for the checks above. Columns count characters, as toml++'s do.
class TextScan {
public:
    TextScan(const Context &ctx, std::string_view text) : ctx_(ctx), text_(text) {}

    void run() {
        if (text_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;  // a byte order mark: toml++ skips it
        char last = '\n';  // the last significant character outside strings and comments
        while (!done()) {
            const char c = at();
            if (c == '#') {
                while (!done() && at() != '\n') next();
            } else if (c == '"' || c == '\'') {
                string(last == '=');
                last = c;
            } else {
                if (!ascii()) refuse("outside strings and comments");
                if (c != ' ' && c != '\t') last = c;
                next();
            }
        }
    }

private:
    bool done() const { return i_ >= text_.size(); }
    char at(size_t ahead = 0) const { return i_ + ahead < text_.size() ? text_[i_ + ahead] : '\0'; }
    bool ascii() const { return static_cast<unsigned char>(at()) < 0x80; }

    void next() {
        const size_t n = utf8_length(text_, i_);
        if (n == 0)
            ctx_.fail(pos_, fmt::format("the file is not valid UTF-8 (byte 0x{:02x})",
                                        static_cast<unsigned char>(text_[i_])));
        pos_ = text_[i_] == '\n' ? Pos{pos_.line + 1, 1} : Pos{pos_.line, pos_.col + 1};
        i_ += n;
    }

    // At a non-ASCII character (or a malformed one, which is the error then).
    [[noreturn]] void refuse(std::string_view where) {
        const size_t n = utf8_length(text_, i_);
        if (n == 0) next();
        uint32_t cp = static_cast<unsigned char>(text_[i_]) & (0x7Fu >> n);
        for (size_t k = 1; k < n; ++k)
            cp = cp << 6 | (static_cast<unsigned char>(text_[i_ + k]) & 0x3Fu);
        // Show the character too, unless it is invisible or a format control.
        const bool visible = cp >= 0xA0 && !(cp >= 0x2000 && cp <= 0x206F) && cp != 0xFEFF;
        ctx_.fail(pos_,
                  fmt::format("non-ASCII character U+{:04X}{} {}", cp,
                              visible ? fmt::format(" '{}'", text_.substr(i_, n)) : "", where));
    }

    // At the opening quote of a string; `value`: the string is a value, not a key.
    void string(bool value) {
        const char q = at();
        const bool triple = at(1) == q && at(2) == q, basic = q == '"';
        for (int k = triple ? 3 : 1; k > 0; --k) next();
        bool line_end = false;  // after a line-ending backslash, before the next text
        while (!done()) {
            const char c = at();
            if (c == '\n' && !triple) return;  // unterminated: toml++ says so
            if (c == q && (!triple || (at(1) == q && at(2) == q))) {
                for (int k = triple ? 3 : 1; k > 0; --k) next();
                for (int k = 0; triple && k < 2 && at() == q; ++k) next();  // """a"""" ends in '"'
                return;
            }
            if (!ascii() && !value)
                refuse("in a quoted key or an array (only comments and string values may hold it)");
            if (!ascii() && line_end)
                refuse(
                    "first after a line-ending backslash (start the line with an ASCII character)");
            const bool blank = c == ' ' || c == '\t' || c == '\r' || c == '\n';
            line_end = line_end && blank;
            if (basic && c == '\\') {
                next();
                if (done()) return;
                if (!ascii()) refuse("after a backslash (not an escape sequence)");
                line_end = triple && (at() == ' ' || at() == '\t' || at() == '\r' || at() == '\n');
            }
            next();
        }
    }

    const Context &ctx_;
    std::string_view text_;
    size_t i_ = 0;
    Pos pos_{1, 1};
};

static toml::table parse_toml(const Context &ctx, std::string_view text) {
    try {
        return toml::parse(text, std::string_view(ctx.source()));
    } catch (const toml::parse_error &e) {
        // "Error while parsing key: ..." -> "invalid TOML while parsing key: ..."
        std::string_view what = e.description();
        const std::string_view error = "Error ";
        if (what.substr(0, error.size()) == error) what.remove_prefix(error.size());
        ctx.fail(to_pos(e.source().begin), fmt::format("invalid TOML {}", what));
    }
}

// --- Sections -----------------------------------------------------------------------

// ASCII only, whatever the locale.
static bool is_alpha_(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_word(char c) { return is_alpha_(c) || (c >= '0' && c <= '9'); }

static bool is_identifier(std::string_view s) {  // [A-Za-z_][A-Za-z0-9_]*
    return !s.empty() && is_alpha_(s[0]) && std::all_of(s.begin(), s.end(), is_word);
}

static bool is_network_name(std::string_view s) {  // [A-Za-z0-9_.-]+
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return is_word(c) || c == '.' || c == '-'; });
}

// "dir/lenet5.toml" -> "lenet5"
static std::string file_stem(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = base.find_last_of('.');
    return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

// A sub-table of the root, or nullptr if it is optional and absent.
static const toml::table *section(const TableReader &root, std::string_view key, bool required) {
    const toml::node *node = root.find(key);
    if (!node) {
        if (required) root.context().fail({}, fmt::format("missing [{}] table", key));
        return nullptr;
    }
    if (!node->is_table())
        root.fail_at(key,
                     fmt::format("'{}' must be a table ([{}]), got {}", key, key, describe(*node)));
    return node->as_table();
}

static void parse_header(const Context &ctx, const toml::table *t, Network &net) {
    const toml::table none;
    TableReader r(ctx, t ? *t : none, "[network]: ");
    r.allow_only({"name", "description"});
    net.description = r.string("description", "");
    if (r.find("name")) {
        net.name = r.string("name");
        if (!is_network_name(net.name))
            r.fail_at("name", fmt::format("'name' must be letters, digits, '_', '.' or '-', got {}",
                                          quote(net.name)));
    } else {
        net.name = file_stem(ctx.source());
        if (!is_network_name(net.name))
            ctx.fail({},
                     fmt::format("the file name {} is not a valid network name (letters, digits, "
                                 "'_', '.' or '-'); set 'name' in [network]",
                                 quote(net.name)));
    }
}

static bool any_number(double) { return true; }
static bool positive(double v) { return v > 0; }
static bool non_negative(double v) { return v >= 0; }
static bool unit_interval(double v) { return v >= 0 && v < 1; }

static InputSpec parse_input(const Context &ctx, const toml::table &t) {
    TableReader r(ctx, t, "[input]: ");
    r.allow_only({"width", "height", "channels", "classes", "mean", "std"});
    InputSpec in;
    in.width = r.integer("width", 1, Limits::max_extent);
    in.height = r.integer("height", 1, Limits::max_extent);
    in.channels = r.integer("channels", 1, Limits::max_extent);
    in.classes = r.integer("classes", 2, Limits::max_units);
    in.mean = r.number("mean", in.mean, any_number, "a number");
    in.std = r.number("std", in.std, positive, "a positive number");
    r.bounded_product({in.channels, in.height, in.width}, Limits::max_activation, {},
                      "input image");
    return in;
}

static TrainSettings parse_train(const Context &ctx, const toml::table *t) {
    const toml::table none;
    TableReader r(ctx, t ? *t : none, "[train]: ");
    r.allow_only(
        {"epochs", "batch", "optimizer", "learning_rate", "lr_schedule", "lr_step_epochs", "lr_gamma",
         "init", "lr_monitor",
         "lr_warmup", "lr_patience", "lr_min", "momentum", "nesterov", "beta1",
         "beta2", "alpha", "epsilon", "weight_decay", "seed", "validation", "ema", "label_smoothing", "shards"});
    TrainSettings s;
    s.epochs = r.integer("epochs", 1, Limits::max_epochs, s.epochs);
    s.batch = r.integer("batch", 1, Limits::max_batch, s.batch);
    s.optimizer = r.string("optimizer", s.optimizer);
    if (s.optimizer != "sgd" && s.optimizer != "adam" && s.optimizer != "adamw" && s.optimizer != "rmsprop")
        r.fail_at("optimizer", fmt::format("'optimizer' must be \"sgd\", \"adam\", \"adamw\" or \"rmsprop\", got {}",
                                           quote(s.optimizer)));
    s.learning_rate = r.number("learning_rate", s.learning_rate, positive, "a positive number");
    s.lr_schedule = r.string("lr_schedule", s.lr_schedule);
    if (s.lr_schedule != "constant" && s.lr_schedule != "cosine" && s.lr_schedule != "step" &&
        s.lr_schedule != "onecycle" && s.lr_schedule != "plateau")
        r.fail_at("lr_schedule", fmt::format("'lr_schedule' must be \"constant\", \"cosine\", \"step\", \"onecycle\" "
                                             "or \"plateau\", got {}",
                                             quote(s.lr_schedule)));
    s.lr_step_epochs = r.integer("lr_step_epochs", 1, Limits::max_epochs, s.lr_schedule == "step" ? 0 : 1);
    if (s.lr_schedule == "step" && !r.find("lr_step_epochs"))
        r.fail_at("lr_schedule", "lr_schedule = \"step\" needs 'lr_step_epochs'");
    s.lr_gamma = r.number("lr_gamma", s.lr_gamma, unit_interval, "a number in [0, 1)");
    s.lr_patience = r.integer("lr_patience", 0, Limits::max_epochs, s.lr_patience);
    s.lr_min = r.number("lr_min", s.lr_min, non_negative, "a non-negative number");
    s.lr_warmup = r.number("lr_warmup", s.lr_warmup, unit_interval, "a number in [0, 1)");
    // RMSprop, as PyTorch's, has no momentum unless asked.
    s.momentum = r.number("momentum", s.optimizer == "rmsprop" ? 0.0 : s.momentum, unit_interval,
                          "a number in [0, 1)");
    if (const toml::node *n = r.find("nesterov")) {
        if (!n->is_boolean()) r.fail_at("nesterov", "'nesterov' must be true or false");
        s.nesterov = n->value_or(false);
    }
    s.beta1 = r.number("beta1", s.beta1, unit_interval, "a number in [0, 1)");
    s.beta2 = r.number("beta2", s.beta2, unit_interval, "a number in [0, 1)");
    s.alpha = r.number("alpha", s.alpha, unit_interval, "a number in [0, 1)");
    s.epsilon = r.number("epsilon", s.epsilon, positive, "a positive number");
    s.weight_decay =
        r.number("weight_decay", s.weight_decay, non_negative, "a non-negative number");
    s.seed = r.integer("seed", 0, std::numeric_limits<int64_t>::max(), s.seed);
    s.validation = r.integer("validation", 0, std::numeric_limits<int32_t>::max(), s.validation);
    s.ema = r.number("ema", s.ema, unit_interval, "a number in [0, 1)");
    s.label_smoothing = r.number("label_smoothing", s.label_smoothing, unit_interval, "a number in [0, 1)");
    s.shards = r.integer("shards", 1, Limits::max_shards, s.shards);
    if (r.find("shards") && s.shards > s.batch)
        r.fail_at("shards", fmt::format("'shards' ({}) exceeds the batch ({}): every shard needs an image", s.shards,
                                        s.batch));
    s.init = r.string("init", s.init);
    if (s.init != "he_lecun" && s.init != "glorot_uniform")
        r.fail_at("init", fmt::format("'init' must be \"he_lecun\" or \"glorot_uniform\", got {}", quote(s.init)));
    s.lr_monitor = r.string("lr_monitor", s.lr_monitor);
    if (s.lr_monitor != "val_loss" && s.lr_monitor != "val_accuracy")
        r.fail_at("lr_monitor",
                  fmt::format("'lr_monitor' must be \"val_loss\" or \"val_accuracy\", got {}", quote(s.lr_monitor)));
    if (r.find("lr_monitor") && s.lr_schedule != "plateau")
        r.fail_at("lr_monitor", "'lr_monitor' is for lr_schedule = \"plateau\"");
    return s;
}

static AugmentSettings parse_augment(const Context &ctx, const toml::table *t, const InputSpec &in) {
    AugmentSettings a;
    if (!t) return a;
    TableReader r(ctx, *t, "[augment]: ");
    r.allow_only({"shift", "rotate", "scale", "scale_per_axis"});
    const double half = double(std::min(in.width, in.height)) / 2;
    a.shift = r.number("shift", 0, non_negative, "a non-negative number of pixels");
    if (a.shift > half) r.fail_at("shift", fmt::format("'shift' must be at most half the image ({}), got {}", half, a.shift));
    a.rotate = r.number("rotate", 0, non_negative, "a non-negative number of degrees");
    if (a.rotate > 180) r.fail_at("rotate", fmt::format("'rotate' must be at most 180 degrees, got {}", a.rotate));
    a.scale = r.number("scale", 0, unit_interval, "a number in [0, 1)");
    if (const toml::node *n = r.find("scale_per_axis")) {
        if (!n->is_boolean()) r.fail_at("scale_per_axis", "'scale_per_axis' must be true or false");
        a.scale_per_axis = n->value_or(false);
    }
    return a;
}

// --- Layers -------------------------------------------------------------------------

// State carried from layer to layer.
struct LayerWalk {
    std::map<std::string_view, int> counts;  // for default names
    std::map<std::string, int> names;        // name -> index in Network::layers
    std::map<std::string, int> explicit_names;  // every layer's given name -> its 1-based position, for messages
};

static const Kind &layer_kind(const TableReader &r) {
    const std::string type = r.string("type");
    if (const Kind *k = find_kind(type)) return *k;
    std::string names;
    for (const Kind *k : kinds()) names += fmt::format("{}{}", names.empty() ? "" : ", ", k->name);
    r.fail_at("type", fmt::format("unknown layer type {} (expected {})", quote(type), names));
}

// The explicit name or kind + running count, unique among all layers so far.
static std::string layer_name(const TableReader &r, const Kind &kind, int index, LayerWalk &walk) {
    const int count = ++walk.counts[kind.name];
    const bool given = r.find("name") != nullptr;
    std::string name = given ? r.string("name") : fmt::format("{}{}", kind.name, count);
    if (given && !is_identifier(name))
        r.fail_at("name",
                  fmt::format("'name' must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got {}",
                              quote(name)));
    if (given && name == "input") r.fail_at("name", "'input' names the network's input: choose another name");
    auto [it, fresh] = walk.names.emplace(name, index - 1);
    if (!fresh && given)
        r.fail_at("name", fmt::format("name '{}' is already used by layer {}", name, it->second + 1));
    if (!fresh)
        r.fail(fmt::format("the default name '{}' is already used by layer {}; name one of them",
                           name, it->second + 1));
    return name;
}

// One name in `input` or `inputs`: "input" (the network's input, -1) or a layer above.
static int resolve_input(const TableReader &r, std::string_view key, const std::string &name, int index,
                         const LayerWalk &walk) {
    if (name == "input") return -1;
    if (auto it = walk.names.find(name); it != walk.names.end()) {
        if (it->second == index - 1)
            r.fail_at(key, fmt::format("'{}' is this layer: a layer may only read the input or layers above it", name));
        return it->second;
    }
    if (auto it = walk.explicit_names.find(name); it != walk.explicit_names.end())
        r.fail_at(key, fmt::format("'{}' is layer {}, below this one: a layer may only read the input or layers "
                                   "above it",
                                   name, it->second));
    r.fail_at(key, fmt::format("no layer named {} above this one", quote(name)));
}

// The layers a layer reads: `input` (one name, default the previous layer) or,
// for kinds that read several, `inputs` (two or more names, required).
static std::vector<int> layer_inputs(const TableReader &r, const Kind &kind, int index, const LayerWalk &walk) {
    const toml::node *one = r.find("input"), *many = r.find("inputs");
    if (one && many) r.fail_at("inputs", "give 'input' or 'inputs', not both");
    if (!kind.many_inputs) {
        if (many) r.fail_at("inputs", fmt::format("{} reads one input: use 'input'", kind.name));
        if (!one) return {index - 2};  // the previous layer, or the network's input for the first
        return {resolve_input(r, "input", r.string("input"), index, walk)};
    }
    if (one) r.fail_at("input", fmt::format("{} reads two or more inputs: use 'inputs'", kind.name));
    if (!many) r.fail(fmt::format("{} needs 'inputs', the names of the layers it reads", kind.name));
    const toml::array *names = many->as_array();
    if (!names) r.fail_at("inputs", fmt::format("'inputs' must be an array of layer names, got {}", describe(*many)));
    if (names->size() < 2)
        r.fail_at("inputs", fmt::format("{} needs at least two inputs, got {}", kind.name, names->size()));
    std::vector<int> out;
    for (const toml::node &n : *names) {
        if (!n.is_string())
            r.fail_at_node(n, fmt::format("'inputs' must hold layer names (strings), got {}", describe(n)));
        out.push_back(resolve_input(r, "inputs", n.value_or(std::string()), index, walk));
    }
    return out;
}

// Appends a layer's tensor to the flat parameter vector; returns its index.
static int place(Network &net, const TableReader &r, const std::string &layer,
                 std::optional<ParamTensor> t, const char *role) {
    if (!t) return -1;
    if (t->count > Limits::max_params - net.param_count)  // both within the limit: no overflow
        r.fail(fmt::format("the network has more than {} parameters in all", Limits::max_params));
    t->name = fmt::format("{}.{}", layer, role);
    t->offset = net.param_count;
    net.param_count += t->count;
    net.params.push_back(std::move(*t));
    return static_cast<int>(net.params.size()) - 1;
}

static void parse_layer(const Context &ctx, const toml::table &t, int index, LayerWalk &walk,
                        Network &net) {
    const TableReader pre(ctx, t, fmt::format("layer {}: ", index));
    const Kind &kind = layer_kind(pre);
    Layer layer;
    layer.kind = &kind;
    layer.name = layer_name(pre, kind, index, walk);
    layer.line = pos_of(t).line;

    const TableReader r(ctx, t, fmt::format("layer '{}': ", layer.name));
    layer.inputs = layer_inputs(r, kind, index, walk);
    std::vector<Shape> shapes;
    for (int from : layer.inputs) shapes.push_back(net.shape_of(from));
    LayerParse p = kind.parse(r, shapes);
    layer.spec = std::move(p.spec);
    layer.in = shapes[0];
    layer.out = p.out;
    layer.activation = p.activation;
    layer.flops = p.flops;  // each <= 2^54, at most 256 layers: the sum fits
    layer.weight = place(net, r, layer.name, std::move(p.weight), "weight");
    layer.bias = place(net, r, layer.name, std::move(p.bias), "bias");
    layer.running_mean = place(net, r, layer.name, std::move(p.running_mean), "running_mean");
    layer.running_var = place(net, r, layer.name, std::move(p.running_var), "running_var");
    net.flops += layer.flops;
    net.layers.push_back(std::move(layer));
}

// Every layer's given name, so that naming a layer below is told apart from a typo.
static std::map<std::string, int> explicit_names(const toml::array &layers) {
    std::map<std::string, int> out;
    for (size_t i = 0; i < layers.size(); i++)
        if (auto name = layers.get(i)->as_table()->get("name"); name && name->is_string())
            out.emplace(name->value_or(std::string()), int(i) + 1);
    return out;
}

// Every layer's output but the last feeds a later layer: an unused output is a
// mistake in the wiring (and would get no gradient).
static void check_all_used(const Context &ctx, const toml::array &tables, const Network &net) {
    const std::vector<std::vector<int>> consumers = net.consumers();
    for (size_t i = 0; i + 1 < net.layers.size(); i++)
        if (consumers[i].empty())
            TableReader(ctx, *tables.get(i)->as_table(), fmt::format("layer '{}': ", net.layers[i].name))
                .fail("its output is not read by any later layer (only the last layer's may be unused; check the "
                      "'input' and 'inputs' below it)");
}

static void parse_layers(const Context &ctx, const TableReader &root, Network &net) {
    const toml::node *node = root.find("layer");
    if (!node) ctx.fail({}, "the network has no layers (add [[layer]] tables)");
    const toml::array *layers = node->as_array();
    if (!layers)
        root.fail_at("layer", fmt::format("'layer' must be an array of tables ([[layer]]), got {}",
                                          describe(*node)));
    if (layers->empty()) root.fail_at("layer", "the network has no layers");
    for (const toml::node &n : *layers)
        if (!n.is_table())
            ctx.fail(pos_of(n), fmt::format("'layer' must be an array of tables ([[layer]]), but "
                                            "it holds {}",
                                            describe(n)));
    if (static_cast<int64_t>(layers->size()) > Limits::max_layers)
        ctx.fail(pos_of(*layers->get(Limits::max_layers)),
                 fmt::format("the network has more than {} layers", Limits::max_layers));

    LayerWalk walk;
    walk.explicit_names = explicit_names(*layers);
    for (size_t i = 0; i < layers->size(); ++i)
        parse_layer(ctx, *layers->get(i)->as_table(), static_cast<int>(i) + 1, walk, net);
    check_all_used(ctx, *layers, net);

    // The last layer gives the class scores.
    const Layer &last = net.layers.back();
    const TableReader r(ctx, *layers->back().as_table(), fmt::format("layer '{}': ", last.name));
    if (!last.is("dense"))
        r.fail(fmt::format("the last layer must be dense (it gives the class scores), not {}", last.kind->name));
    if (last.out.channels != net.input.classes)
        r.fail_at("units", fmt::format("the last layer's 'units' must equal [input] classes ({}), "
                                       "got {}",
                                       net.input.classes, last.out.channels));
}

}  // namespace detail

namespace detail {

toml::table parse_document(const Context &ctx, std::string_view text) {
    TextScan(ctx, text).run();
    return parse_toml(ctx, text);
}

std::string read_text_file(const Context &ctx, const std::string &path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE *)> file(std::fopen(path.c_str(), "rb"),
                                                          std::fclose);
    if (!file) ctx.fail({}, "cannot read file");
    std::string text;
    char buffer[1 << 16];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0;)
        text.append(buffer, n);
    if (std::ferror(file.get())) ctx.fail({}, "cannot read file");  // e.g. a directory
    return text;
}

std::string describe_value(const toml::node &node) { return describe(node); }

}  // namespace detail

Network parse_network(std::string_view text, const std::string &source) {
    using namespace detail;
    const Context ctx(source);
    const toml::table root = parse_document(ctx, text);
    if (root.empty()) ctx.fail({}, "the file is empty");
    const TableReader r(ctx, root, "");
    r.allow_only({"network", "input", "layer", "train", "augment"});

    Network net;
    net.source = source;
    parse_header(ctx, section(r, "network", false), net);
    net.input = parse_input(ctx, *section(r, "input", true));
    parse_layers(ctx, r, net);
    net.train = parse_train(ctx, section(r, "train", false));
    net.train.augment = parse_augment(ctx, section(r, "augment", false), net.input);
    return net;
}

Network load_network(const std::string &path) {
    return parse_network(detail::read_text_file(detail::Context(path), path), path);
}

}  // namespace kiln::model
