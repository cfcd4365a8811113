// The IDX loader: round trips through small files written here, one test per
// kind of bad file, and the real MNIST files the build provides.
#include "idx.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <unistd.h>

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

// A valid pair of files: 5 images of 3 x 4 whose pixels count up, labels i % 3.
struct Sample {
    static constexpr int64_t count = 5, rows = 3, cols = 4, classes = 3;
    TempDir dir{"idx"};
    std::string images = dir.file("images-idx3-ubyte"), labels = dir.file("labels-idx1-ubyte");
    std::vector<uint8_t> pixels, label_values;

    Sample() {
        pixels.resize(count * rows * cols);
        std::iota(pixels.begin(), pixels.end(), uint8_t(0));
        for (int64_t i = 0; i < count; i++) label_values.push_back(uint8_t(i % classes));
        write_images(idx_bytes(images_magic, {count, rows, cols}, pixels));
        write_labels(idx_bytes(labels_magic, {count}, label_values));
    }
    void write_images(const std::vector<uint8_t> &bytes) const { write_file(images, bytes); }
    void write_labels(const std::vector<uint8_t> &bytes) const { write_file(labels, bytes); }
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
    Sample sample;
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
    Sample sample;
    fs::remove(sample.images);
    check_refused(sample, sample.images, {"cannot open"});
}

TEST_CASE("IDX: a bad magic number is refused", "[idx]") {
    Sample sample;
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
    Sample sample;
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
    Sample sample;
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
    Sample sample;
    auto bytes = idx_bytes(labels_magic, {Sample::count}, sample.label_values);
    bytes.push_back(0);
    sample.write_labels(bytes);
    check_refused(sample, sample.labels, {"trailing bytes", "14 bytes", "expected 13"});
}

TEST_CASE("IDX: image and label counts must agree", "[idx]") {
    Sample sample;
    sample.write_labels(idx_bytes(labels_magic, {4}, {0, 1, 2, 0}));
    check_refused(sample, sample.labels, {"4 labels", sample.images, "5 images"});
}

TEST_CASE("IDX: a label out of range is refused", "[idx]") {
    Sample sample;
    sample.write_labels(idx_bytes(labels_magic, {Sample::count}, {0, 1, 3, 7, 2}));
    check_refused(sample, sample.labels, {"label 3 at index 2", "class count 3"});
}

TEST_CASE("the real MNIST files load", "[idx][mnist]") {
#ifndef KILN_MNIST_DIR
    FAIL("KILN_MNIST_DIR is not defined: the build must name the directory of the MNIST files");
#else
    // Absent files throw a DataError, which fails the test: the build provides them.
    const Dataset train = load_mnist(KILN_MNIST_DIR, true);
    const Dataset test = load_mnist(KILN_MNIST_DIR, false);
    CHECK(train.count == 60000);
    CHECK(test.count == 10000);
    for (const Dataset *data : {&train, &test}) {
        CHECK(data->rows == 28);
        CHECK(data->cols == 28);
        CHECK(int64_t(data->images.size()) == data->count * 28 * 28);
        CHECK(int64_t(data->labels.size()) == data->count);
    }
    std::array<int64_t, 10> histogram{};
    for (uint8_t label : test.labels) histogram[label]++;
    CHECK(std::accumulate(histogram.begin(), histogram.end(), int64_t(0)) == 10000);
    // The published MNIST test set's class sizes.
    CHECK(histogram == std::array<int64_t, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
#endif
}
