// Internal to the model library: what parse.cpp shares with the per-kind parsers
// (kinds/*.cpp) and the study plan's parser (study_plan.cpp). A kind's parser reads
// its own keys through a TableReader, validates them against the shapes flowing
// in, and returns a LayerParse; parse.cpp does everything common to all kinds
// (type, name, inputs, offsets into the flat parameter vector, totals) and
// provides the helpers declared here.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <any>
#include <vector>

#include "model/toml.h"

#include "model/network.h"

namespace kiln::model::detail {

// A place in the source; line 0 means "no position".
struct Pos {
    int line = 0, col = 0;
};
Pos pos_of(const toml::node &node);

// Formats and throws the one-line InputError for one source file.
class Context {
public:
    explicit Context(std::string source) : source_(std::move(source)) {}
    const std::string &source() const { return source_; }
    [[noreturn]] void fail(Pos pos, std::string_view message) const;

private:
    std::string source_;
};

// A whole TOML document, checked first for text toml++ mishandles; invalid
// TOML fails with the parser's message at its position.
toml::table parse_document(const Context &ctx, std::string_view text);
// The file's bytes; fails with "cannot read file" naming it.
std::string read_text_file(const Context &ctx, const std::string &path);
// A value as the user wrote it ("relu", 3, 2.0), or its kind ("an array").
std::string describe_value(const toml::node &node);

// A user string in double quotes, with control characters escaped so that every
// message stays on one line.
std::string quote(std::string_view s);

// One TOML table being read. `prefix` starts every message ("layer 'conv1': ").
// Readers of required keys fail at the table header when the key is missing;
// readers with a fallback return it when the key is absent. Every value is
// checked for type and range, and failures point at the value.
class TableReader {
public:
    TableReader(const Context &ctx, const toml::table &table, std::string prefix)
        : ctx_(ctx), table_(table), prefix_(std::move(prefix)) {}

    // Refuses the first key (in file order) that is not listed.
    void allow_only(std::initializer_list<std::string_view> keys) const;

    const toml::node *find(std::string_view key) const;
    const Context &context() const { return ctx_; }

    // An integer in [lo, hi].
    int64_t integer(std::string_view key, int64_t lo, int64_t hi) const;
    int64_t integer(std::string_view key, int64_t lo, int64_t hi, int64_t fallback) const;

    // A finite number (integers accepted) for which ok(v) holds; `expected`
    // describes the accepted values for the message ("a positive number").
    double number(std::string_view key, double fallback, bool (*ok)(double),
                  std::string_view expected) const;

    std::string string(std::string_view key) const;
    std::string string(std::string_view key, std::string fallback) const;

    // relu | tanh | sigmoid | none, default none.
    Activation activation(std::string_view key) const;

    // Fails at the key's value (or at the table header if the key is absent).
    [[noreturn]] void fail_at(std::string_view key, std::string_view message) const;
    // Fails at the table header.
    [[noreturn]] void fail(std::string_view message) const;
    // Fails at `node`, a value inside this table (an element of an array).
    [[noreturn]] void fail_at_node(const toml::node &node, std::string_view message) const;

    // The product of `factors` (all >= 0), failing with `what` in the message if
    // it would exceed `limit`; checked before each multiplication so that nothing
    // overflows.
    int64_t bounded_product(std::initializer_list<int64_t> factors, int64_t limit,
                            std::string_view key, std::string_view what) const;

private:
    const Context &ctx_;
    const toml::table &table_;
    std::string prefix_;
};

// Rows and columns of a square window of `window` sliding by `stride` over `in`
// padded by `pad` on each side. Refuses a window larger than the padded input,
// at `key` (the key that sets the window).
struct Extent2 {
    int64_t height = 0, width = 0;
};
Extent2 slide(const TableReader &r, std::string_view key, const Shape &in, int64_t window,
              int64_t stride, int64_t pad);

// The output activation shape, refused (at the table header) if it is empty or
// has more than Limits::max_activation elements. Every kind builds its output
// with this before computing FLOPs, which the bound keeps far from overflow.
Shape output_shape(const TableReader &r, int64_t channels, int64_t height, int64_t width);

// What one kind's parser produces; parse.cpp names and places the tensors.
struct LayerParse {
    std::any spec;  // the kind's own parameter struct, if it has one
    Shape out;
    Activation activation = Activation::none;
    std::optional<ParamTensor> weight, bias;  // name and offset are filled in later
    std::optional<ParamTensor> running_mean, running_var;  // batchnorm's buffers
    int64_t flops = 0;
};

// A parameter tensor of the given shape (count checked against Limits::max_params
// at `key`, the key that sizes it).
ParamTensor make_tensor(const TableReader &r, std::string_view key,
                        std::initializer_list<int64_t> shape, int64_t fan_in);

}  // namespace kiln::model::detail
