// The IDX loader: round trips through small files written here, plain and
// gzipped, one test per kind of bad file (gzip's own included), the data set's
// identification and class names, and the real MNIST and Fashion-MNIST files.
#include "idx.h"

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>

#include "temp_dir.h"

using namespace kiln;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

using kiln::testing::TempDir;

void write_file(const std::string &path, const std::vector<uint8_t> &bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    REQUIRE(out.good());
}

constexpr uint32_t images_magic = 0x00000803, labels_magic = 0x00000801;

// An IDX file: big-endian magic and dimensions, then the payload.
std::vector<uint8_t> idx_bytes(uint32_t magic, const std::vector<uint32_t> &dims,
                               const std::vector<uint8_t> &payload) {
    std::vector<uint8_t> bytes;
    auto put = [&](uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(uint8_t(v >> shift));
    };
    put(magic);
    for (uint32_t d : dims) put(d);
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    return bytes;
}

// `bytes` as one gzip member (zlib's deflate with the gzip wrapper); level 0
// stores the bytes as they are, so that a changed payload byte is found by the
// CRC-32 alone.
std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t> &bytes, int level = Z_BEST_COMPRESSION) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<uint8_t> out(deflateBound(&z, uLong(bytes.size())));
    z.next_in = const_cast<Bytef *>(bytes.data());
    z.avail_in = uInt(bytes.size());
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    REQUIRE(rc == Z_STREAM_END);
    REQUIRE(out.size() > 18);  // 10-byte header, data, 8-byte trailer (CRC-32, ISIZE)
    return out;
}

// A valid pair of files: 5 images of 3 x 4 whose pixels count up, labels i % 3;
// gzipped when `gzipped`, and so is every file written later.
struct Sample {
    static constexpr int64_t count = 5, rows = 3, cols = 4, classes = 3;
    bool gzipped;
    TempDir dir{"idx"};
    std::string images = dir.file("images-idx3-ubyte"), labels = dir.file("labels-idx1-ubyte");
    std::vector<uint8_t> pixels, label_values;

    explicit Sample(bool gzip = false) : gzipped(gzip) {
        pixels.resize(count * rows * cols);
        std::iota(pixels.begin(), pixels.end(), uint8_t(0));
        for (int64_t i = 0; i < count; i++) label_values.push_back(uint8_t(i % classes));
        write_images(idx_bytes(images_magic, {count, rows, cols}, pixels));
        write_labels(idx_bytes(labels_magic, {count}, label_values));
    }
    void write_images(const std::vector<uint8_t> &bytes) const { write_file(images, gzipped ? gzip_bytes(bytes) : bytes); }
    void write_labels(const std::vector<uint8_t> &bytes) const { write_file(labels, gzipped ? gzip_bytes(bytes) : bytes); }
    Dataset load() const { return load_idx(images, labels, classes); }
};

// Loading `sample` fails with one line that names `bad_file` and says `detail`.
void check_refused(const Sample &sample, const std::string &bad_file,
                   const std::vector<std::string> &details) {
    try {
        sample.load();
        FAIL("loaded despite a bad " << bad_file);
    } catch (const DataError &e) {
        const std::string message = e.what();
        CHECK_THAT(message, StartsWith(bad_file + ": error: "));
        CHECK(message.find('\n') == std::string::npos);
        for (const auto &detail : details) CHECK_THAT(message, Contains(detail));
    }
}

}  // namespace

TEST_CASE("IDX files round-trip", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    Dataset data = sample.load();
    CHECK(data.count == Sample::count);
    CHECK(data.rows == Sample::rows);
    CHECK(data.cols == Sample::cols);
    CHECK(data.images == sample.pixels);
    CHECK(data.labels == sample.label_values);
}

TEST_CASE("take_first keeps the first n images and labels", "[idx]") {
    Sample sample;
    const Dataset data = sample.load();

    Dataset first = take_first(data, 2);
    CHECK(first.count == 2);
    CHECK(first.rows == data.rows);
    CHECK(first.cols == data.cols);
    CHECK(first.images == std::vector<uint8_t>(data.images.begin(), data.images.begin() + 24));
    CHECK(first.labels == std::vector<uint8_t>(data.labels.begin(), data.labels.begin() + 2));

    for (int64_t n : {Sample::count, Sample::count + 1, int64_t(1) << 40}) {
        Dataset all = take_first(data, n);
        CHECK(all.count == data.count);
        CHECK(all.images == data.images);
        CHECK(all.labels == data.labels);
    }
    CHECK(take_first(data, 0).images.empty());
    CHECK_THROWS_AS(take_first(data, -1), std::invalid_argument);
}

TEST_CASE("IDX: a missing file is refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    fs::remove(sample.images);
    check_refused(sample, sample.images, {"cannot open"});
}

TEST_CASE("IDX: a bad magic number is refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    SECTION("labels given as images") {
        sample.write_images(idx_bytes(labels_magic, {Sample::count}, sample.label_values));
        check_refused(sample, sample.images, {"0x00000801 (IDX unsigned bytes, 1 dimension)",
                                              "expected 0x00000803", "for images"});
    }
    SECTION("not an IDX file at all") {
        sample.write_labels(idx_bytes(0x89504E47, {Sample::count}, sample.label_values));
        check_refused(sample, sample.labels, {"bad magic number 0x89504E47"});
    }
    SECTION("wrong dimension count") {
        sample.write_images(idx_bytes(0x00000802, {Sample::count, 12}, sample.pixels));
        check_refused(sample, sample.images, {"2 dimensions", "expected 0x00000803"});
    }
    SECTION("shorter than a magic number") {
        sample.write_labels({0, 0, 8});
        check_refused(sample, sample.labels, {"3 bytes"});
    }
}

TEST_CASE("IDX: insane dimensions are refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    SECTION("no images") {
        sample.write_images(idx_bytes(images_magic, {0, 3, 4}, {}));
        check_refused(sample, sample.images, {"image count is 0"});
    }
    SECTION("zero rows") {
        sample.write_images(idx_bytes(images_magic, {5, 0, 4}, {}));
        check_refused(sample, sample.images, {"row count 0"});
    }
    SECTION("too many columns") {
        sample.write_images(idx_bytes(images_magic, {1, 1, 5000}, std::vector<uint8_t>(5000)));
        check_refused(sample, sample.images, {"column count 5000", "1..4096"});
    }
}

TEST_CASE("IDX: a truncated file is refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    SECTION("payload cut short") {
        auto bytes = idx_bytes(images_magic, {Sample::count, Sample::rows, Sample::cols}, sample.pixels);
        bytes.pop_back();
        sample.write_images(bytes);
        check_refused(sample, sample.images, {"truncated", "75 bytes", "expected 76"});
    }
    SECTION("header cut short") {
        sample.write_images(idx_bytes(images_magic, {Sample::count}, {}));
        check_refused(sample, sample.images, {"truncated", "needs 16 bytes", "has 8"});
    }
}

TEST_CASE("IDX: trailing bytes are refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    auto bytes = idx_bytes(labels_magic, {Sample::count}, sample.label_values);
    bytes.push_back(0);
    sample.write_labels(bytes);
    check_refused(sample, sample.labels, {"trailing bytes", "14 bytes", "expected 13"});
}

TEST_CASE("IDX: image and label counts must agree", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    sample.write_labels(idx_bytes(labels_magic, {4}, {0, 1, 2, 0}));
    check_refused(sample, sample.labels, {"4 labels", sample.images, "5 images"});
}

TEST_CASE("IDX: a label out of range is refused", "[idx]") {
    const bool gzipped = GENERATE(false, true);  // the IDX checks apply to inflated bytes alike
    INFO((gzipped ? "gzipped" : "plain"));
    Sample sample(gzipped);
    sample.write_labels(idx_bytes(labels_magic, {Sample::count}, {0, 1, 3, 7, 2}));
    check_refused(sample, sample.labels, {"label 3 at index 2", "class count 3"});
}

TEST_CASE("gzipped IDX files load as their plain content", "[idx][gzip]") {
    Sample sample;
    const Dataset plain = sample.load();
    const auto images = idx_bytes(images_magic, {Sample::count, Sample::rows, Sample::cols}, sample.pixels);
    const auto labels = idx_bytes(labels_magic, {Sample::count}, sample.label_values);
    SECTION("both gzipped, compressed or stored") {
        for (int level : {Z_BEST_COMPRESSION, Z_NO_COMPRESSION}) {
            sample.write_images(gzip_bytes(images, level));
            sample.write_labels(gzip_bytes(labels, level));
            const Dataset data = sample.load();
            CHECK(data.count == plain.count);
            CHECK(data.rows == plain.rows);
            CHECK(data.cols == plain.cols);
            CHECK(data.images == plain.images);
            CHECK(data.labels == plain.labels);
        }
    }
    SECTION("one gzipped, one plain") {
        sample.write_labels(gzip_bytes(labels));
        CHECK(sample.load().labels == plain.labels);
    }
    SECTION("several gzip members, as gunzip reads them") {
        const std::vector<uint8_t> head(images.begin(), images.begin() + 30), tail(images.begin() + 30, images.end());
        auto bytes = gzip_bytes(head);
        const auto second = gzip_bytes(tail);
        bytes.insert(bytes.end(), second.begin(), second.end());
        sample.write_images(bytes);
        CHECK(sample.load().images == plain.images);
    }
}

TEST_CASE("gunzip inflates what zlib deflated, and larger than its first guess", "[idx][gzip]") {
    std::vector<uint8_t> bytes(3 << 20);
    for (size_t i = 0; i < bytes.size(); i++) bytes[i] = uint8_t(i * 2654435761u >> 13);
    auto compressed = gzip_bytes(bytes);
    std::vector<uint8_t> out;
    CHECK(gunzip(compressed, out).empty());
    CHECK(out == bytes);
    // Two members whose last trailer sizes only the second: the buffer must grow.
    const auto small = gzip_bytes({1, 2, 3});
    compressed.insert(compressed.end(), small.begin(), small.end());
    CHECK(gunzip(compressed, out).empty());
    REQUIRE(out.size() == bytes.size() + 3);
    CHECK(std::equal(bytes.begin(), bytes.end(), out.begin()));
    CHECK(out.back() == 3);
}

TEST_CASE("IDX: a truncated gzip stream is refused", "[idx][gzip]") {
    Sample sample;
    const auto gz = gzip_bytes(idx_bytes(images_magic, {Sample::count, Sample::rows, Sample::cols}, sample.pixels));
    // Cut in the header, in the deflate data, just before the trailer and inside it.
    for (size_t keep : {size_t(5), gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
        INFO("kept " << keep << " of " << gz.size() << " bytes");
        sample.write_images(std::vector<uint8_t>(gz.begin(), gz.begin() + std::ptrdiff_t(keep)));
        check_refused(sample, sample.images, {"gzip stream truncated", std::to_string(keep) + " bytes"});
    }
}

TEST_CASE("IDX: a gzip file with a bad CRC-32 is refused", "[idx][gzip]") {
    Sample sample;
    auto gz = gzip_bytes(idx_bytes(labels_magic, {Sample::count}, sample.label_values), Z_NO_COMPRESSION);
    SECTION("a payload byte changed (stored block: still valid deflate)") {
        gz[gz.size() - 8 - 1] ^= 0x01;  // the last label: 1 becomes 0, inside the class range
        sample.write_labels(gz);
        check_refused(sample, sample.labels, {"gzip CRC-32 mismatch"});
    }
    SECTION("the trailer's CRC-32 changed") {
        gz[gz.size() - 8] ^= 0x80;
        sample.write_labels(gz);
        check_refused(sample, sample.labels, {"gzip CRC-32 mismatch"});
    }
}

TEST_CASE("IDX: a gzip trailer with the wrong size is refused", "[idx][gzip]") {
    Sample sample;
    auto gz = gzip_bytes(idx_bytes(labels_magic, {Sample::count}, sample.label_values));
    gz[gz.size() - 4] ^= 0x01;  // ISIZE, little-endian: 13 becomes 12
    sample.write_labels(gz);
    check_refused(sample, sample.labels, {"gzip length mismatch"});
}

TEST_CASE("IDX: garbage after a gzip stream is refused", "[idx][gzip]") {
    Sample sample;
    auto gz = gzip_bytes(idx_bytes(labels_magic, {Sample::count}, sample.label_values));
    gz.insert(gz.end(), {0, 0, 0});
    sample.write_labels(gz);
    check_refused(sample, sample.labels, {"trailing garbage", "3 bytes after the end of the gzip stream"});
}

TEST_CASE("IDX: a corrupt gzip stream is refused", "[idx][gzip]") {
    Sample sample;
    auto gz = gzip_bytes(idx_bytes(images_magic, {Sample::count, Sample::rows, Sample::cols}, sample.pixels));
    SECTION("an unknown compression method") {
        gz[2] = 7;
        sample.write_images(gz);
        check_refused(sample, sample.images, {"corrupt gzip stream", "unknown compression method"});
    }
    SECTION("an invalid deflate block type") {
        gz[10] |= 0x06;  // the first block's type bits: 3 is reserved
        sample.write_images(gz);
        check_refused(sample, sample.images, {"corrupt gzip stream", "invalid block type"});
    }
}

TEST_CASE("IDX: an empty gzip stream is refused", "[idx][gzip]") {
    Sample sample(true);
    sample.write_labels({});
    check_refused(sample, sample.labels, {"the inflated file is 0 bytes"});
}

namespace {

// A folder in MNIST's layout with tiny files: 5 images of 3 x 4 per split, labels
// i % 10 (train) or (i + 1) % 10 (test).
struct TinyMnist {
    TempDir dir{"mnist"};
    std::vector<uint8_t> pixels = std::vector<uint8_t>(5 * 12);
    explicit TinyMnist(bool gzipped) {
        std::iota(pixels.begin(), pixels.end(), uint8_t(0));
        for (const char *split : {"train", "t10k"}) {
            const bool test = std::string(split) == "t10k";
            std::vector<uint8_t> labels;
            for (int i = 0; i < 5; i++) labels.push_back(uint8_t((i + test) % 10));
            write(std::string(split) + "-images-idx3-ubyte", idx_bytes(images_magic, {5, 3, 4}, pixels), gzipped);
            write(std::string(split) + "-labels-idx1-ubyte", idx_bytes(labels_magic, {5}, labels), gzipped);
        }
    }
    void write(const std::string &name, const std::vector<uint8_t> &bytes, bool gzipped) const {
        write_file(dir.file(gzipped ? name + ".gz" : name), gzipped ? gzip_bytes(bytes) : bytes);
    }
};

void check_data_error(const std::function<void()> &load, const std::string &start, const std::string &detail) {
    try {
        load();
        FAIL("no error, expected " << start << "..." << detail);
    } catch (const DataError &e) {
        const std::string message = e.what();
        CHECK_THAT(message, StartsWith(start));
        CHECK_THAT(message, Contains(detail));
        CHECK(message.find('\n') == std::string::npos);
    }
}

}  // namespace

TEST_CASE("load_mnist finds plain or gzipped files", "[idx][gzip]") {
    TinyMnist gz(true), plain(false);
    for (bool train : {true, false}) {
        const Dataset a = load_mnist(gz.dir.path.string(), train), b = load_mnist(plain.dir.path.string(), train);
        CHECK(a.count == 5);
        CHECK(a.images == b.images);
        CHECK(a.labels == b.labels);
    }
    SECTION("plain first when both are there") {
        gz.write("t10k-labels-idx1-ubyte", idx_bytes(labels_magic, {5}, {9, 9, 9, 9, 9}), false);
        CHECK(load_mnist(gz.dir.path.string(), false).labels == std::vector<uint8_t>(5, 9));
    }
    SECTION("neither: the error names the plain file and the .gz") {
        fs::remove(gz.dir.file("train-labels-idx1-ubyte.gz"));
        check_data_error([&] { load_mnist(gz.dir.path.string(), true); },
                         gz.dir.file("train-labels-idx1-ubyte") + ": error: cannot open", "nor train-labels-idx1-ubyte.gz");
    }
}

TEST_CASE("identify_data: an unknown folder, and classes.txt", "[idx][classes]") {
    TinyMnist tiny(true);
    const std::string dir = tiny.dir.path.string();
    const DataSetInfo unknown = identify_data(dir);
    CHECK(unknown.name == tiny.dir.path.filename().string());
    CHECK(unknown.class_names == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
    CHECK(identify_data(dir + "/").name == unknown.name);

    const std::vector<std::string> names = {"zero", "one", "two", "three", "four",
                                            "five", "six", "seven", "eight", "nine ünïcode"};
    std::string text;
    for (const auto &n : names) text += n + "\n";
    SECTION("ten names, one per line, spaces around them dropped") {
        text.replace(0, 4, "  zero\r");
        write_file(tiny.dir.file("classes.txt"), {text.begin(), text.end()});
        CHECK(identify_data(dir).class_names == names);
    }
    SECTION("without the final newline") {
        text.pop_back();
        write_file(tiny.dir.file("classes.txt"), {text.begin(), text.end()});
        CHECK(identify_data(dir).class_names == names);
    }
    SECTION("too few names") {
        text = "a\nb\n";
        write_file(tiny.dir.file("classes.txt"), {text.begin(), text.end()});
        check_data_error([&] { identify_data(dir); }, tiny.dir.file("classes.txt") + ": error: has 2 class names",
                         "10 classes");
    }
    SECTION("an empty line") {
        text.insert(text.find("two"), "\n");
        write_file(tiny.dir.file("classes.txt"), {text.begin(), text.end()});
        check_data_error([&] { identify_data(dir); }, tiny.dir.file("classes.txt") + ":3: error: ", "empty class name");
    }
    SECTION("not UTF-8") {
        text.insert(text.find("four"), "\xff");
        write_file(tiny.dir.file("classes.txt"), {text.begin(), text.end()});
        check_data_error([&] { identify_data(dir); }, tiny.dir.file("classes.txt") + ":5: error: ", "not UTF-8");
    }
    SECTION("no test labels: the error names the file") {
        fs::remove(tiny.dir.file("t10k-labels-idx1-ubyte.gz"));
        check_data_error([&] { identify_data(dir); }, tiny.dir.file("t10k-labels-idx1-ubyte") + ": error: ", ".gz");
    }
}

namespace {

// A real data set's splits: 60,000 and 10,000 images of 28 x 28, a label each.
void check_28x28_splits(const Dataset &train, const Dataset &test) {
    CHECK(train.count == 60000);
    CHECK(test.count == 10000);
    for (const Dataset *data : {&train, &test}) {
        CHECK(data->rows == 28);
        CHECK(data->cols == 28);
        CHECK(int64_t(data->images.size()) == data->count * 28 * 28);
        CHECK(int64_t(data->labels.size()) == data->count);
    }
}

}  // namespace

TEST_CASE("the real MNIST files load", "[idx][mnist]") {
#ifndef KILN_MNIST_DIR
    FAIL("KILN_MNIST_DIR is not defined: the build must name the directory of the MNIST files");
#else
    // Absent files throw a DataError, which fails the test: the build provides them.
    const Dataset train = load_mnist(KILN_MNIST_DIR, true);
    const Dataset test = load_mnist(KILN_MNIST_DIR, false);
    check_28x28_splits(train, test);
    std::array<int64_t, 10> histogram{};
    for (uint8_t label : test.labels) histogram[label]++;
    CHECK(std::accumulate(histogram.begin(), histogram.end(), int64_t(0)) == 10000);
    // The published MNIST test set's class sizes.
    CHECK(histogram == std::array<int64_t, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
#endif
}

TEST_CASE("the real MNIST folder is recognised, and its test files gzipped load as plain", "[idx][mnist][classes]") {
#ifndef KILN_MNIST_DIR
    FAIL("KILN_MNIST_DIR is not defined: the build must name the directory of the MNIST files");
#else
    const DataSetInfo info = identify_data(KILN_MNIST_DIR);
    CHECK(info.name == "MNIST");
    CHECK(info.class_names == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
    // The test files gzipped: the same data set, and the same content.
    TempDir dir{"mnist-gz"};
    for (const char *name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
        std::vector<uint8_t> bytes;
        REQUIRE(read_whole_file(std::string(KILN_MNIST_DIR) + "/" + name, bytes).empty());
        write_file(dir.file(std::string(name) + ".gz"), gzip_bytes(bytes, Z_BEST_SPEED));
    }
    CHECK(identify_data(dir.path.string()).name == "MNIST");
    const Dataset plain = load_mnist(KILN_MNIST_DIR, false), gzipped = load_mnist(dir.path.string(), false);
    CHECK(gzipped.count == plain.count);
    CHECK(gzipped.images == plain.images);
    CHECK(gzipped.labels == plain.labels);
#endif
}

// Debian's dataset-fashion-mnist (scripts/install-deps.sh installs it): four gzipped files.
TEST_CASE("the real Fashion-MNIST files load and are recognised", "[idx][fashion]") {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::exists(dir + "/t10k-labels-idx1-ubyte.gz"))
        FAIL(dir << " lacks Fashion-MNIST: install Debian's dataset-fashion-mnist (bash scripts/install-deps.sh)");
    const Dataset train = load_mnist(dir, true), test = load_mnist(dir, false);
    check_28x28_splits(train, test);
    // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    std::array<int64_t, 10> train_histogram{}, test_histogram{};
    for (uint8_t label : train.labels) train_histogram[label]++;
    for (uint8_t label : test.labels) test_histogram[label]++;
    std::array<int64_t, 10> six_thousand{}, thousand{};
    six_thousand.fill(6000);
    thousand.fill(1000);
    CHECK(train_histogram == six_thousand);
    CHECK(test_histogram == thousand);

    const DataSetInfo info = identify_data(dir);
    CHECK(info.name == "Fashion-MNIST");
    CHECK(info.class_names == std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"});
}
