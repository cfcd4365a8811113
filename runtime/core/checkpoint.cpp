#include "checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "idx.h"  // read_whole_file

namespace kiln {
namespace {

// ordered_json keeps the header in file order, for people who read it.
using nlohmann::ordered_json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint data is copied as little-endian F32 without byte swapping");

constexpr size_t length_bytes = 8;       // the header length, a little-endian u64
constexpr size_t header_alignment = 8;   // the spec's padding: keeps the F32 data aligned
const std::string format_name = "kiln";
const std::string optimizer_prefix = "optimizer.";
const std::set<std::string> reserved_keys = {"format", "network", "hash", "epoch"};

[[noreturn]] void fail(const std::string &path, const std::string &message) {
    throw CheckpointError(path + ": error: " + message);
}

// ---- The tensors of a checkpoint, shared by saving and loading

// One tensor of the file: a parameter tensor, or one optimizer state's copy of it.
struct Slot {
    std::string name;
    const model::ParamTensor *param;
    std::string state;  // "" for the parameters themselves
};

// Every tensor in file order: the parameters, then each state's copies.
std::vector<Slot> layout(const model::Network &net, const std::vector<std::string> &states) {
    std::vector<Slot> slots;
    for (const auto &p : net.params) slots.push_back({p.name, &p, ""});
    for (const auto &state : states)
        for (const auto &p : net.params)
            slots.push_back({optimizer_prefix + state + "." + p.name, &p, state});
    return slots;
}

// The flat vector a slot's tensor lives in (Checkpoint or const Checkpoint).
template <class CheckpointT>
auto &flat_vector(CheckpointT &ck, const Slot &slot) {
    return slot.state.empty() ? ck.params : ck.optimizer_state.at(slot.state);
}

uint64_t byte_size(const model::ParamTensor &p) { return uint64_t(p.count) * sizeof(float); }

// ---- Saving

// A checkpoint that does not fit its network is the caller's bug, not bad input.
void check_fits(const std::string &path, const model::Network &net, const Checkpoint &ck) {
    auto bug = [&](const std::string &why) {
        throw std::invalid_argument("save_checkpoint(" + path + "): " + why);
    };
    auto check_size = [&](const std::string &what, const std::vector<float> &values) {
        if (int64_t(values.size()) != net.param_count)
            bug(what + " has " + std::to_string(values.size()) + " values, network '" +
                net.name + "' has " + std::to_string(net.param_count) + " parameters");
    };
    if (ck.epoch < 0) bug("negative epoch " + std::to_string(ck.epoch));
    check_size("params", ck.params);
    for (const auto &[state, values] : ck.optimizer_state) {
        // The loader finds a state's name between "optimizer." and the next dot.
        if (state.empty() || state.find('.') != std::string::npos)
            bug("optimizer state name '" + state + "' is empty or holds '.'");
        check_size("optimizer state '" + state + "'", values);
    }
    for (const auto &key : reserved_keys)
        if (ck.metadata.count(key)) bug("metadata key '" + key + "' is reserved");
}

// The JSON header, space-padded to a multiple of header_alignment.
std::string header_text(const model::Network &net, const Checkpoint &ck,
                        const std::vector<Slot> &slots) {
    ordered_json metadata = {{"format", format_name},
                             {"network", net.name},
                             {"hash", net.hash()},
                             {"epoch", std::to_string(ck.epoch)}};
    for (const auto &[key, value] : ck.metadata) metadata[key] = value;

    ordered_json header = {{"__metadata__", metadata}};
    uint64_t offset = 0;
    for (const auto &slot : slots) {
        const uint64_t end = offset + byte_size(*slot.param);
        header[slot.name] = {{"dtype", "F32"},
                             {"shape", slot.param->shape},
                             {"data_offsets", {offset, end}}};
        offset = end;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const ordered_json::type_error &e) {  // a string that is not UTF-8
        throw std::invalid_argument(std::string("save_checkpoint: ") + e.what());
    }
    text.resize((text.size() + header_alignment - 1) / header_alignment * header_alignment, ' ');
    return text;
}

struct Chunk {
    const void *data;
    size_t size;
};

// Returns why the chunks could not all be written, or "" on success.
std::string write_all(int fd, const std::vector<Chunk> &chunks) {
    for (const auto &chunk : chunks) {
        auto *bytes = static_cast<const char *>(chunk.data);
        size_t done = 0;
        while (done < chunk.size) {  // write() may take less than offered
            ssize_t n = ::write(fd, bytes + done, chunk.size - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return std::strerror(errno);
            done += size_t(n);
        }
    }
    return "";
}

// Makes the rename itself survive a crash. Best effort: some file systems refuse
// to sync a directory, and the checkpoint is complete either way.
void sync_directory(const std::string &path) {
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

// Writes to a temporary file beside `path`, syncs it and renames it over `path`:
// readers see the old checkpoint or the new one, never a part of one.
void write_atomically(const std::string &path, const std::vector<Chunk> &chunks) {
    const std::string temp = path + ".tmp-" + std::to_string(::getpid());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(path, "cannot create " + temp + ": " + std::strerror(errno));

    std::string problem = write_all(fd, chunks);
    if (problem.empty() && ::fsync(fd) != 0) problem = std::strerror(errno);
    if (::close(fd) != 0 && problem.empty()) problem = std::strerror(errno);
    if (!problem.empty()) {
        ::unlink(temp.c_str());
        fail(path, "cannot write " + temp + ": " + problem);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        problem = std::strerror(errno);
        ::unlink(temp.c_str());
        fail(path, "cannot rename " + temp + " to it: " + problem);
    }
    sync_directory(path);
}

// ---- Loading

// What the header says of one tensor.
struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // relative to the start of the data
};

// A safetensors file taken apart.
struct File {
    ordered_json metadata = ordered_json::object();
    std::map<std::string, Entry> tensors;
    const uint8_t *data = nullptr;
    uint64_t data_size = 0;
};

std::string shape_text(const std::vector<int64_t> &shape) {
    std::string text;
    for (int64_t d : shape) text += (text.empty() ? "" : ", ") + std::to_string(d);
    return "[" + text + "]";
}

std::string offsets_text(const Entry &e) {
    return "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
}

bool all_unsigned(const ordered_json &array) {
    return std::all_of(array.begin(), array.end(),
                       [](const ordered_json &v) { return v.is_number_unsigned(); });
}

Entry parse_entry(const std::string &path, const std::string &name, const ordered_json &j) {
    auto malformed = [&](const std::string &why) { fail(path, "tensor '" + name + "': " + why); };
    if (!j.is_object()) malformed("entry is not a JSON object");
    auto dtype = j.find("dtype"), shape = j.find("shape"), offsets = j.find("data_offsets");
    if (dtype == j.end() || !dtype->is_string()) malformed("\"dtype\" is missing or not a string");
    if (shape == j.end() || !shape->is_array() || !all_unsigned(*shape))
        malformed("\"shape\" is missing or not a list of non-negative integers");
    if (offsets == j.end() || !offsets->is_array() || offsets->size() != 2 ||
        !all_unsigned(*offsets))
        malformed("\"data_offsets\" is missing or not a pair of non-negative integers");

    Entry e;
    e.dtype = dtype->get<std::string>();
    e.shape = shape->get<std::vector<int64_t>>();
    e.begin = (*offsets)[0].get<uint64_t>();
    e.end = (*offsets)[1].get<uint64_t>();
    if (e.begin > e.end) malformed(offsets_text(e) + " run backwards");
    return e;
}

// Splits the file into its parsed header and its data.
File split(const std::string &path, const std::vector<uint8_t> &bytes) {
    if (bytes.size() < length_bytes)
        fail(path, "file is " + std::to_string(bytes.size()) +
                       " bytes, too short for a safetensors header");
    uint64_t length = 0;
    for (size_t i = 0; i < length_bytes; i++) length |= uint64_t(bytes[i]) << (8 * i);
    const uint64_t rest = bytes.size() - length_bytes;
    if (length > rest)
        fail(path, "header length " + std::to_string(length) +
                       " reaches beyond the end of the file (" + std::to_string(rest) +
                       " bytes after the length)");

    const auto header_begin = bytes.begin() + length_bytes;
    ordered_json header;
    try {
        header = ordered_json::parse(header_begin, header_begin + std::ptrdiff_t(length));
    } catch (const ordered_json::parse_error &e) {
        std::string what = e.what();
        std::replace(what.begin(), what.end(), '\n', ' ');  // keep the message one line
        fail(path, "invalid JSON header: " + what);
    }
    if (!header.is_object()) fail(path, "JSON header is not an object");

    File file;
    for (const auto &[key, value] : header.items()) {
        if (key == "__metadata__") file.metadata = value;
        else file.tensors[key] = parse_entry(path, key, value);
    }
    file.data = bytes.data() + length_bytes + length;
    file.data_size = rest - length;
    return file;
}

int64_t parse_epoch(const std::string &path, const std::string &text) {
    int64_t epoch = -1;
    const char *end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, epoch);
    // from_chars takes a leading '-', so insist on a digit first.
    const bool ok = !text.empty() && std::isdigit(static_cast<unsigned char>(text[0])) &&
                    error == std::errc() && stop == end;
    if (!ok) fail(path, "epoch '" + text + "' is not a non-negative integer");
    return epoch;
}

// Checks the metadata against `net` and fills in ck.epoch and ck.metadata.
void read_metadata(const std::string &path, const ordered_json &metadata,
                   const model::Network &net, Checkpoint &ck) {
    if (!metadata.is_object() ||
        !std::all_of(metadata.begin(), metadata.end(),
                     [](const ordered_json &v) { return v.is_string(); }))
        fail(path, "\"__metadata__\" must map strings to strings");
    auto get = [&](const std::string &key) {
        auto it = metadata.find(key);
        return it == metadata.end() ? std::string() : it->get<std::string>();
    };
    if (get("format") != format_name)
        fail(path, "not a kiln checkpoint: its metadata lacks \"format\": \"kiln\"");
    const std::string hash = net.hash();
    if (get("network") != net.name || get("hash") != hash)
        fail(path, "checkpoint is for network '" + get("network") + "' (hash " + get("hash") +
                       "), not '" + net.name + "' (hash " + hash + ")");
    ck.epoch = parse_epoch(path, get("epoch"));
    for (const auto &[key, value] : metadata.items())
        if (!reserved_keys.count(key)) ck.metadata[key] = value.get<std::string>();
}

// "optimizer.<state>.<param name>" -> state; "" if the name is not of that form.
std::string state_of(const std::string &name, const std::set<std::string> &params) {
    if (name.compare(0, optimizer_prefix.size(), optimizer_prefix) != 0) return "";
    const size_t dot = name.find('.', optimizer_prefix.size());
    if (dot == std::string::npos || !params.count(name.substr(dot + 1))) return "";
    return name.substr(optimizer_prefix.size(), dot - optimizer_prefix.size());
}

// The optimizer states the file holds; refuses any tensor that is neither a
// parameter of `net` nor an optimizer state's copy of one.
std::vector<std::string> find_states(const std::string &path, const File &file,
                                     const model::Network &net) {
    std::set<std::string> params, states;
    for (const auto &p : net.params) params.insert(p.name);
    for (const auto &[name, entry] : file.tensors) {
        if (params.count(name)) continue;
        const std::string state = state_of(name, params);
        if (state.empty())
            fail(path, "unexpected tensor '" + name + "': network '" + net.name +
                           "' has no such parameter");
        states.insert(state);
    }
    return {states.begin(), states.end()};
}

// Every expected tensor is present, F32, shaped as its parameter tensor, and
// its data_offsets span exactly that many bytes.
void check_tensors(const std::string &path, const File &file, const std::vector<Slot> &slots) {
    for (const auto &slot : slots) {
        auto it = file.tensors.find(slot.name);
        if (it == file.tensors.end()) fail(path, "missing tensor '" + slot.name + "'");
        const Entry &e = it->second;
        const std::string tensor = "tensor '" + slot.name + "'";
        if (e.dtype != "F32") fail(path, tensor + " has dtype " + e.dtype + ", expected F32");
        if (e.shape != slot.param->shape)
            fail(path, tensor + " has shape " + shape_text(e.shape) + ", expected " +
                           shape_text(slot.param->shape));
        if (e.end - e.begin != byte_size(*slot.param))
            fail(path, tensor + " " + offsets_text(e) + " span " +
                           std::to_string(e.end - e.begin) + " bytes, its shape needs " +
                           std::to_string(byte_size(*slot.param)));
    }
}

// The tensors' data lie back to back from the start of the data to the end of
// the file, as the safetensors format demands.
void check_offsets(const std::string &path, const File &file) {
    std::vector<const std::pair<const std::string, Entry> *> order;
    for (const auto &tensor : file.tensors) order.push_back(&tensor);
    std::sort(order.begin(), order.end(), [](auto *a, auto *b) {
        return std::tie(a->second.begin, a->second.end) < std::tie(b->second.begin, b->second.end);
    });
    uint64_t position = 0;
    for (const auto *tensor : order) {
        if (tensor->second.begin != position)
            fail(path, "tensor '" + tensor->first + "' " + offsets_text(tensor->second) +
                           " are not contiguous: it should begin at byte " +
                           std::to_string(position));
        position = tensor->second.end;
    }
    if (position != file.data_size)
        fail(path, std::string(position > file.data_size ? "truncated" : "trailing bytes") +
                       ": the tensors need " + std::to_string(position) +
                       " bytes of data, the file holds " + std::to_string(file.data_size));
}

}  // namespace

void save_checkpoint(const std::string &path, const model::Network &net, const Checkpoint &ck) {
    check_fits(path, net, ck);
    std::vector<std::string> states;
    for (const auto &entry : ck.optimizer_state) states.push_back(entry.first);
    const std::vector<Slot> slots = layout(net, states);

    const std::string header = header_text(net, ck, slots);
    uint8_t length[length_bytes];
    for (size_t i = 0; i < length_bytes; i++) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));

    std::vector<Chunk> chunks = {{length, sizeof length}, {header.data(), header.size()}};
    for (const auto &slot : slots)
        chunks.push_back({flat_vector(ck, slot).data() + slot.param->offset, byte_size(*slot.param)});
    write_atomically(path, chunks);
}

Checkpoint load_checkpoint(const std::string &path, const model::Network &net) {
    std::vector<uint8_t> bytes;
    const std::string problem = read_whole_file(path, bytes);
    if (!problem.empty()) fail(path, problem);
    const File file = split(path, bytes);

    Checkpoint ck;
    read_metadata(path, file.metadata, net, ck);
    const std::vector<std::string> states = find_states(path, file, net);
    const std::vector<Slot> slots = layout(net, states);
    check_tensors(path, file, slots);
    check_offsets(path, file);

    ck.params.resize(size_t(net.param_count));
    for (const auto &state : states) ck.optimizer_state[state].resize(size_t(net.param_count));
    for (const auto &slot : slots)
        std::memcpy(flat_vector(ck, slot).data() + slot.param->offset,
                    file.data + file.tensors.at(slot.name).begin, byte_size(*slot.param));
    return ck;
}

}  // namespace kiln
