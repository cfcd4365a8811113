#include "idx.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string &path, const std::string &message) {
    throw DataError(path + ": error: " + message);
}

bool is_gzip(const std::vector<uint8_t> &bytes, size_t at = 0) {
    return bytes.size() >= at + 2 && bytes[at] == 0x1F && bytes[at + 1] == 0x8B;
}

// A file's bytes, inflated when it is gzipped: it starts with gzip's magic bytes,
// which no IDX file does (their magic numbers start with two zero bytes).
struct FileBytes {
    std::vector<uint8_t> bytes;
    bool gzipped = false;
    // How messages about the bytes' length call them.
    const char *noun() const { return gzipped ? "the inflated file" : "the file"; }
};

// The file's bytes, or a DataError naming it.
FileBytes read_file(const std::string &path) {
    FileBytes file;
    std::string problem = read_whole_file(path, file.bytes);
    if (!problem.empty()) fail(path, problem);
    if (is_gzip(file.bytes)) {
        std::vector<uint8_t> compressed = std::move(file.bytes);
        problem = gunzip(compressed, file.bytes);
        if (!problem.empty()) fail(path, problem);
        file.gzipped = true;
    }
    return file;
}

uint32_t big_endian_u32(const uint8_t *p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

uint32_t little_endian_u32(const uint8_t *p) {
    return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | uint32_t(p[0]);
}

// zlib's message for a bad stream, as a sentence that says what is wrong with the file.
std::string gzip_problem(const char *zlib_message) {
    const std::string m = zlib_message ? zlib_message : "unknown zlib error";
    if (m == "incorrect data check") return "gzip CRC-32 mismatch: the inflated data is corrupt";
    if (m == "incorrect length check")
        return "gzip length mismatch: the size in the gzip trailer differs from the inflated data's";
    return "corrupt gzip stream: " + m;
}

// Ends a zlib inflate stream however the function leaves.
struct Inflater {
    z_stream z{};
    bool ok = inflateInit2(&z, 16 + MAX_WBITS) == Z_OK;  // 16 +: the gzip wrapper only
    Inflater() = default;
    Inflater(const Inflater &) = delete;  // zlib's state points back at z
    Inflater &operator=(const Inflater &) = delete;
    ~Inflater() {
        if (ok) inflateEnd(&z);
    }
};

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
    FileBytes file_bytes = read_file(path);
    std::vector<uint8_t> &bytes = file_bytes.bytes;
    const std::string noun = file_bytes.noun();
    if (bytes.size() < 4)
        fail(path, noun + " is " + std::to_string(bytes.size()) +
                       " bytes, too short for an IDX header");
    check_magic(path, kind, big_endian_u32(bytes.data()));

    const size_t header = 4 + 4 * kind.dimensions.size();
    if (bytes.size() < header)
        fail(path, "truncated: the IDX header needs " + std::to_string(header) +
                       " bytes, " + noun + " has " + std::to_string(bytes.size()));
    IdxFile file;
    for (size_t i = 0; i < kind.dimensions.size(); i++)
        file.dims.push_back(big_endian_u32(bytes.data() + 4 + 4 * i));
    check_dimensions(path, kind, file.dims);
    int64_t payload = 1;
    for (int64_t d : file.dims) payload *= d;  // at most 2^32 * 4096^2: no overflow

    const int64_t expected = int64_t(header) + payload, actual = int64_t(bytes.size());
    if (actual != expected)
        fail(path, std::string(actual < expected ? "truncated" : "trailing bytes") +
                       ": " + noun + " has " + std::to_string(actual) + " bytes, expected " +
                       std::to_string(expected) + " (" + std::to_string(header) +
                       "-byte header + " + join_dims(file.dims) + " bytes)");
    bytes.erase(bytes.begin(), bytes.begin() + header);  // in place: no second 47 MB buffer
    file.payload = std::move(bytes);
    return file;
}

// `dir`/name, or `dir`/name.gz when only that exists. Neither: a DataError naming both.
std::string find_data_file(const std::string &dir, const std::string &name) {
    const fs::path plain = fs::path(dir) / name, gz = fs::path(dir) / (name + ".gz");
    std::error_code ec;
    if (fs::exists(plain, ec)) return plain.string();
    if (fs::exists(gz, ec)) return gz.string();
    if (ec) return plain.string();  // cannot tell (a permission?): reading it says why
    fail(plain.string(), "cannot open: No such file or directory (nor " + name + ".gz)");
}

std::string mnist_file(const std::string &dir, bool train, const char *what) {
    return find_data_file(dir, std::string(train ? "train" : "t10k") + "-" + what + "-ubyte");
}

// Data sets recognised by the CRC-32 of their decompressed t10k-labels-idx1-ubyte
// file (header included): `gunzip -c FILE | python3 -c 'import sys, zlib;
// print(hex(zlib.crc32(sys.stdin.buffer.read())))'`.
struct KnownDataSet {
    const char *name;
    uint32_t test_labels_crc32;
    std::vector<std::string> class_names;
};

const std::vector<KnownDataSet> &known_data_sets() {
    static const std::vector<KnownDataSet> known = {
        {"MNIST", 0x4AB9EFF9, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
        // Zalando's Fashion-MNIST (https://github.com/zalandoresearch/fashion-mnist), its README's labels.
        {"Fashion-MNIST",
         0x80142C1F,
         {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}},
    };
    return known;
}

// classes.txt: one class name per line, exactly `classes` of them.
std::vector<std::string> read_class_names(const std::string &path, int64_t classes) {
    std::vector<uint8_t> bytes;
    const std::string problem = read_whole_file(path, bytes);
    if (!problem.empty()) fail(path, problem);
    std::vector<std::string> names;
    std::string text(bytes.begin(), bytes.end());
    if (!text.empty() && text.back() == '\n') text.pop_back();  // a final newline ends the last line
    size_t start = 0;
    for (int64_t line = 1; start <= text.size(); line++) {
        const size_t end = std::min(text.find('\n', start), text.size());
        std::string name = text.substr(start, end - start);
        start = end + 1;
        const std::string where = path + ":" + std::to_string(line);
        const size_t first = name.find_first_not_of(" \t\r"), last = name.find_last_not_of(" \t\r");
        if (first == std::string::npos) throw DataError(where + ": error: empty class name");
        name = name.substr(first, last - first + 1);
        try {
            (void)nlohmann::json(name).dump();  // the study writes the names into JSON: UTF-8 only
        } catch (const nlohmann::json::exception &) {
            throw DataError(where + ": error: class name is not UTF-8");
        }
        names.push_back(name);
    }
    if (int64_t(names.size()) != classes)
        fail(path, "has " + std::to_string(names.size()) + " class names, one per line; the data has " +
                       std::to_string(classes) + " classes");
    return names;
}

}  // namespace

std::string gunzip(const std::vector<uint8_t> &compressed, std::vector<uint8_t> &bytes) {
    bytes.clear();
    Inflater inflater;
    if (!inflater.ok) return "cannot start zlib's inflate";
    z_stream &z = inflater.z;
    // The last member's trailer gives the size modulo 2^32: a first guess for the
    // buffer, bounded by deflate's largest ratio (1032:1) in case it is garbage.
    const size_t n = compressed.size();
    const size_t guess = n >= 4 ? little_endian_u32(compressed.data() + n - 4) : 0;
    bytes.resize(std::max<size_t>(std::min(guess, n * 1032), 1 << 16) + 1);  // + 1: no regrowth at the end
    size_t in = 0, out = 0;
    for (;;) {
        if (out == bytes.size()) bytes.resize(bytes.size() * 2);
        z.next_in = const_cast<Bytef *>(compressed.data() + in);
        z.avail_in = uInt(std::min<size_t>(n - in, UINT_MAX));
        z.next_out = bytes.data() + out;
        z.avail_out = uInt(std::min<size_t>(bytes.size() - out, UINT_MAX));
        const int rc = inflate(&z, Z_NO_FLUSH);
        in = size_t(z.next_in - compressed.data());
        out = size_t(z.next_out - bytes.data());
        if (rc == Z_STREAM_END) {
            if (in == n) break;
            if (!is_gzip(compressed, in))
                return "trailing garbage: " + std::to_string(n - in) + " bytes after the end of the gzip stream";
            inflateReset(&z);  // another member follows, as gunzip reads them
        } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
            if (in == n && z.avail_out > 0)
                return "gzip stream truncated: the file ends after " + std::to_string(n) +
                       " bytes, before the stream's end";
        } else if (rc == Z_MEM_ERROR) {
            return "out of memory while inflating";
        } else {
            return gzip_problem(z.msg);
        }
    }
    bytes.resize(out);
    return "";
}

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
    const std::string images = mnist_file(dir, train, "images-idx3");  // first: a missing images file is named first
    return load_idx(images, mnist_file(dir, train, "labels-idx1"), 10);
}

DataSetInfo identify_data(const std::string &dir, int64_t classes) {
    if (classes < 1) throw std::invalid_argument("identify_data: class count must be at least 1");
    const FileBytes labels = read_file(mnist_file(dir, false, "labels-idx1"));
    const uint32_t crc = uint32_t(crc32_z(0, labels.bytes.data(), labels.bytes.size()));
    DataSetInfo info;
    for (const KnownDataSet &known : known_data_sets())
        if (known.test_labels_crc32 == crc && int64_t(known.class_names.size()) == classes) {
            info.name = known.name;
            info.class_names = known.class_names;
        }
    if (info.name.empty()) {
        info.name = fs::path(dir).lexically_normal().filename().string();
        if (info.name.empty()) info.name = fs::path(dir).lexically_normal().parent_path().filename().string();
        for (int64_t k = 0; k < classes; k++) info.class_names.push_back(std::to_string(k));
    }
    const fs::path names = fs::path(dir) / "classes.txt";
    if (fs::exists(names)) info.class_names = read_class_names(names.string(), classes);
    return info;
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
