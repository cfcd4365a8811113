#include "idx.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {
namespace {

[[noreturn]] void fail(const std::string &path, const std::string &message) {
    throw DataError(path + ": error: " + message);
}

// The file's bytes, or a DataError naming it.
std::vector<uint8_t> read_file(const std::string &path) {
    std::vector<uint8_t> bytes;
    std::string problem = read_whole_file(path, bytes);
    if (!problem.empty()) fail(path, problem);
    return bytes;
}

uint32_t big_endian_u32(const uint8_t *p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

std::string hex32(uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08X", value);
    return text;
}

// What one kind of IDX file must look like. The magic number's low byte is the
// dimension count, so `dimensions` has exactly that many names.
struct IdxKind {
    const char *what;  // "images" or "labels"
    uint32_t magic;
    std::vector<const char *> dimensions;  // the first is the item count
};

const IdxKind images_kind{"images", 0x00000803, {"image count", "row count", "column count"}};
const IdxKind labels_kind{"labels", 0x00000801, {"label count"}};

constexpr int64_t max_side = 4096;

// The file's dimensions, and its payload with the header stripped.
struct IdxFile {
    std::vector<int64_t> dims;
    std::vector<uint8_t> payload;
};

std::string describe_magic(uint32_t magic) {
    const uint32_t dims = magic & 0xFF;
    return "(IDX unsigned bytes, " + std::to_string(dims) + (dims == 1 ? " dimension)" : " dimensions)");
}

// Names what was found, so that a labels file given as images, or an IDX file of
// another type, is recognisable in the message.
void check_magic(const std::string &path, const IdxKind &kind, uint32_t found) {
    if (found == kind.magic) return;
    const bool unsigned_bytes = found >> 8 == kind.magic >> 8;
    fail(path, "bad magic number " + hex32(found) +
                   (unsigned_bytes ? " " + describe_magic(found) : std::string()) +
                   ", expected " + hex32(kind.magic) + " " + describe_magic(kind.magic) +
                   " for " + kind.what);
}

// The item count must be at least 1; every other dimension 1..max_side. Checked
// before the length so that the expected length cannot overflow.
void check_dimensions(const std::string &path, const IdxKind &kind,
                      const std::vector<int64_t> &dims) {
    if (dims[0] < 1) fail(path, std::string(kind.dimensions[0]) + " is 0");
    for (size_t i = 1; i < dims.size(); i++)
        if (dims[i] < 1 || dims[i] > max_side)
            fail(path, std::string(kind.dimensions[i]) + " " + std::to_string(dims[i]) +
                           " is outside 1.." + std::to_string(max_side));
}

std::string join_dims(const std::vector<int64_t> &dims) {
    std::string text;
    for (int64_t d : dims) text += (text.empty() ? "" : " x ") + std::to_string(d);
    return text;
}

IdxFile read_idx(const std::string &path, const IdxKind &kind) {
    std::vector<uint8_t> bytes = read_file(path);
    if (bytes.size() < 4)
        fail(path, "file is " + std::to_string(bytes.size()) +
                       " bytes, too short for an IDX header");
    check_magic(path, kind, big_endian_u32(bytes.data()));

    const size_t header = 4 + 4 * kind.dimensions.size();
    if (bytes.size() < header)
        fail(path, "truncated: the IDX header needs " + std::to_string(header) +
                       " bytes, the file has " + std::to_string(bytes.size()));
    IdxFile file;
    for (size_t i = 0; i < kind.dimensions.size(); i++)
        file.dims.push_back(big_endian_u32(bytes.data() + 4 + 4 * i));
    check_dimensions(path, kind, file.dims);
    int64_t payload = 1;
    for (int64_t d : file.dims) payload *= d;  // at most 2^32 * 4096^2: no overflow

    const int64_t expected = int64_t(header) + payload, actual = int64_t(bytes.size());
    if (actual != expected)
        fail(path, std::string(actual < expected ? "truncated" : "trailing bytes") +
                       ": the file has " + std::to_string(actual) + " bytes, expected " +
                       std::to_string(expected) + " (" + std::to_string(header) +
                       "-byte header + " + join_dims(file.dims) + " bytes)");
    bytes.erase(bytes.begin(), bytes.begin() + header);  // in place: no second 47 MB buffer
    file.payload = std::move(bytes);
    return file;
}

}  // namespace

std::string read_whole_file(const std::string &path, std::vector<uint8_t> &bytes) {
    bytes.clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
    std::string problem;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        problem = std::string("cannot read: ") + std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        problem = "cannot read: not a regular file";
    } else {
        bytes.resize(size_t(st.st_size));
        size_t done = 0;
        while (done < bytes.size() && problem.empty()) {  // read() may return less than asked
            ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
            if (n > 0) done += size_t(n);
            else if (n == 0) bytes.resize(done);  // it shrank meanwhile: length checks will tell
            else if (errno != EINTR) problem = std::string("cannot read: ") + std::strerror(errno);
        }
    }
    ::close(fd);
    return problem;
}

Dataset load_idx(const std::string &images_path, const std::string &labels_path,
                 int64_t classes) {
    if (classes < 1) throw std::invalid_argument("load_idx: class count must be at least 1");
    IdxFile images = read_idx(images_path, images_kind);
    IdxFile labels = read_idx(labels_path, labels_kind);

    if (labels.dims[0] != images.dims[0])
        fail(labels_path, "has " + std::to_string(labels.dims[0]) + " labels but " +
                              images_path + " has " + std::to_string(images.dims[0]) +
                              " images");
    auto bad = std::find_if(labels.payload.begin(), labels.payload.end(),
                            [&](uint8_t label) { return label >= classes; });
    if (bad != labels.payload.end())
        fail(labels_path, "label " + std::to_string(*bad) + " at index " +
                              std::to_string(bad - labels.payload.begin()) +
                              " is not below the class count " + std::to_string(classes));

    Dataset data;
    data.count = images.dims[0];
    data.rows = images.dims[1];
    data.cols = images.dims[2];
    data.images = std::move(images.payload);
    data.labels = std::move(labels.payload);
    return data;
}

Dataset load_mnist(const std::string &dir, bool train) {
    const std::string prefix = train ? "train" : "t10k";
    const std::filesystem::path base(dir);
    return load_idx((base / (prefix + "-images-idx3-ubyte")).string(),
                    (base / (prefix + "-labels-idx1-ubyte")).string(), 10);
}

Dataset take_first(const Dataset &data, int64_t n) {
    if (n < 0) throw std::invalid_argument("take_first: negative count " + std::to_string(n));
    const int64_t count = std::min(n, data.count);
    const auto pixels = std::ptrdiff_t(count * data.rows * data.cols);
    return Dataset{count, data.rows, data.cols,
                   {data.images.begin(), data.images.begin() + pixels},
                   {data.labels.begin(), data.labels.begin() + std::ptrdiff_t(count)}};
}

}  // namespace kiln
