// kiln predict (runtime/predict/predict.h, digit_image.h): MNIST test digits written out
// as large PNG and JPEG files, with margins, mostly dark ink on light paper, must
// get the predictions kiln gives the original 28x28 digits; files that cannot be
// used get one line each, naming the file, and the others are still classified.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <stb/stb_image_resize.h>  // its implementation is in kiln_predict
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "checkpoint.h"
#include "compiled.h"
#include "digit_image.h"
#include "idx.h"
#include "init.h"
#include "predict.h"
#include "temp_dir.h"
#include "train.h"

namespace {

using kiln::testing::TempDir;

// Settings for a longer run by hand: KILN_PREDICT_IMAGES (default 2000; 10000 for
// the whole test set) and KILN_PREDICT_EPOCHS (default 3; lenet5's recipe is 10).
int setting(const char *name, int default_value) {
    const char *env = std::getenv(name);
    return env ? std::atoi(env) : default_value;
}

struct Trained {
    kiln::CompiledModel model = kiln::find_model("lenet5");
    std::vector<float> params;
    kiln::ImageSet test = kiln::to_image_set(kiln::load_mnist(KILN_MNIST_DIR, false), model.net(), "test");
};

// lenet5 with its initial weights: enough where two ways to the same input are compared.
const Trained &untrained() {
    static const Trained t = [] {
        Trained t;
        t.params = kiln::initial_params(t.model.net(), 1);
        return t;
    }();
    return t;
}

// lenet5 trained on all 60,000 training images (3 epochs: 98.65% on the test set),
// for the predictions of files against originals.
const Trained &trained() {
    static const Trained t = [] {
        Trained t;
        kiln::TrainOptions opts;
        opts.settings = t.model.net().train;
        opts.settings.epochs = setting("KILN_PREDICT_EPOCHS", 3);
        opts.progress = false;
        TempDir dir("predict-train");
        opts.out_dir = dir.path.string();
        const kiln::ImageSet train_set = kiln::to_image_set(kiln::load_mnist(KILN_MNIST_DIR, true), t.model.net(), "train");
        std::ostringstream log;
        t.params = kiln::train(t.model, opts, train_set, t.test, log).params;
        return t;
    }();
    return t;
}

// Test image i as a photo-like file: scaled up 3-8 times (stb's Catmull-Rom), inside
// margins of 10-150 pixels, two of three as dark ink on light paper (the others
// light on dark), even ones as RGB JPEG (quality 90, blue 10% weaker: yellowish
// paper), odd ones as gray PNG.
std::string write_large(const TempDir &dir, const kiln::ImageSet &test, int i) {
    const int factor = 3 + i % 6, side = 28 * factor;
    const int left = 10 + (i * 37) % 141, top = 10 + (i * 53) % 141, right = 10 + (i * 71) % 141,
              bottom = 10 + (i * 89) % 141;
    std::vector<float> big(size_t(side) * side);
    stbir_resize_float(test.pixels.data() + size_t(i) * 784, 28, 28, 0, big.data(), side, side, 0, 1);
    const int w = left + side + right, h = top + side + bottom, channels = i % 2 ? 1 : 3;
    const bool dark_ink = i % 3 != 0;
    std::vector<uint8_t> pixels(size_t(w) * h * channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const bool inside = x >= left && x < left + side && y >= top && y < top + side;
            const float ink = inside ? std::clamp(big[size_t(y - top) * side + (x - left)], 0.0f, 1.0f) : 0.0f;
            const float level = dark_ink ? 235 - 215 * ink : 20 + 215 * ink;
            for (int c = 0; c < channels; c++)
                pixels[(size_t(y) * w + x) * channels + c] = uint8_t(std::lround(level * (c == 2 ? 0.9f : 1.0f)));
        }
    const std::string file = dir.file("digit" + std::to_string(i) + (channels == 3 ? ".jpg" : ".png"));
    const int ok = channels == 3 ? stbi_write_jpg(file.c_str(), w, h, 3, pixels.data(), 90)
                                 : stbi_write_png(file.c_str(), w, h, 1, pixels.data(), w);
    REQUIRE(ok);
    return file;
}

// kiln's prediction for each of the first n original test images, with its probability.
struct Original {
    int digit = 0;
    double probability = 0;
};
std::vector<Original> kiln_originals(const Trained &t, int n) {
    std::vector<float> scores(size_t(n) * 10);
    t.model.forward(t.params.data(), t.test.pixels.data(), n, scores.data());
    std::vector<Original> originals;
    for (int i = 0; i < n; i++) {
        const float *s = &scores[size_t(i) * 10];
        const int digit = int(std::max_element(s, s + 10) - s);
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += std::exp(double(s[k]) - s[digit]);
        originals.push_back({digit, 1 / sum});
    }
    return originals;
}

void write_bytes(const std::string &file, const std::string &bytes) {
    std::ofstream(file, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command: its exit code, and its stdout in `out`.
int run(const std::string &command, std::string &out) {
    FILE *pipe = popen(command.c_str(), "r");
    REQUIRE(pipe);
    out.clear();
    char buffer[4096];
    for (size_t got; (got = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, got);
    return WEXITSTATUS(pclose(pipe));
}

}  // namespace

TEST_CASE("predict: large, inverted MNIST digits in PNG and JPEG files get kiln's predictions of the originals") {
    const Trained &t = trained();
    const int n = setting("KILN_PREDICT_IMAGES", 2000);
    TempDir dir("predict-digits");
    std::vector<std::string> files;
    for (int i = 0; i < n; i++) files.push_back(write_large(dir, t.test, i));
    std::ostringstream errors;
    const kiln::Predictions p = kiln::predict_files(t.model, t.params, files, errors);
    CHECK(errors.str().empty());
    REQUIRE(p.classified.size() == size_t(n));
    const std::vector<Original> originals = kiln_originals(t, n);
    int same = 0, unsure = 0, file_right = 0, original_right = 0;
    for (size_t i = 0; i < size_t(n); i++) {
        const int digit = p.classified[i].digit, label = t.test.labels[i];
        if (digit == originals[i].digit) {
            same++;
            continue;
        }
        unsure += originals[i].probability < 0.9;
        file_right += digit == label;
        original_right += originals[i].digit == label;
    }
    WARN(same << " of " << n << " files predicted as their originals; of the " << n - same << " others, kiln gave "
              << unsure << " originals a probability below 0.9; the file's prediction is the label in " << file_right
              << ", the original's in " << original_right);
    CHECK(same >= n * 985 / 1000);
}

TEST_CASE("predict: an MNIST digit at its own size comes back nearly as it was") {
    const Trained &t = untrained();
    for (int i = 0; i < 20; i++) {
        kiln::GrayImage img{28, 28, std::vector<float>(t.test.pixels.begin() + i * 784, t.test.pixels.begin() + (i + 1) * 784)};
        const std::vector<float> out = kiln::mnist_style_input(img, t.model.net().input, "digit");
        double difference = 0;
        for (size_t j = 0; j < out.size(); j++) difference += std::abs(out[j] - img.pixels[j]);
        INFO("image " << i);
        CHECK(difference / 784 < 0.05);
    }
}

TEST_CASE("predict: bad files get one line each naming them, and the other images are still classified") {
    const Trained &t = untrained();
    TempDir dir("predict-bad");
    const std::string good = write_large(dir, t.test, 1), good2 = write_large(dir, t.test, 2);
    write_bytes(dir.file("empty.png"), "");
    write_bytes(dir.file("text.png"), "this is not an image\n");
    const std::string png = read_bytes(good);
    write_bytes(dir.file("truncated.png"), png.substr(0, png.size() / 2));
    std::string huge = png, huger = png;  // the IHDR's width and height (bytes 16-23) claim 30000 and 60000 a side
    for (int k : {16, 20}) huge.replace(size_t(k), 4, std::string("\x00\x00\x75\x30", 4));
    for (int k : {16, 20}) huger.replace(size_t(k), 4, std::string("\x00\x00\xea\x60", 4));
    write_bytes(dir.file("huge.png"), huge);
    write_bytes(dir.file("long.png"), png);
    std::filesystem::resize_file(dir.file("long.png"), 65 << 20);  // sparse: 65 MiB, mostly zeros
    write_bytes(dir.file("huger.png"), huger);
    const std::vector<uint8_t> white(100 * 80, 255);
    REQUIRE(stbi_write_png(dir.file("blank.png").c_str(), 100, 80, 1, white.data(), 100));

    const std::vector<std::string> files = {dir.file("empty.png"), good,  dir.file("missing.png"),
                                            dir.file("text.png"),  dir.file("truncated.png"),
                                            dir.file("huge.png"),  dir.file("huger.png"), dir.file("long.png"),
                                            dir.file("blank.png"), good2};
    std::ostringstream errors;
    const kiln::Predictions p = kiln::predict_files(t.model, t.params, files, errors);
    REQUIRE(p.classified.size() == 2);
    CHECK(p.classified[0].file == good);
    CHECK(p.classified[1].file == good2);
    CHECK(p.failed == 8);
    std::istringstream lines(errors.str());
    std::vector<std::string> got;
    for (std::string line; std::getline(lines, line);) got.push_back(line);
    const std::vector<std::pair<std::string, std::string>> want = {
        {"empty.png", "empty file"},          {"missing.png", "cannot open"},
        {"text.png", "not a PNG or JPEG"},    {"truncated.png", "cannot decode"},
        {"huge.png", "image too large (30000x30000 pixels"}, {"huger.png", "corrupt, or too large"},
        {"long.png", "file too large (68157440 bytes"},
        {"blank.png", "no digit found"}};
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); i++) {
        INFO(got[i]);
        CHECK(got[i].rfind(dir.file(want[i].first) + ": error: ", 0) == 0);
        CHECK(got[i].find(want[i].second) != std::string::npos);
    }
}

TEST_CASE("predict: a digit drawn on a transparent canvas is read as dark ink on white") {
    const Trained &t = untrained();
    TempDir dir("predict-alpha");
    const int i = 7, side = 28 * 5, w = side + 60, h = side + 60;
    std::vector<float> big(size_t(side) * side);
    stbir_resize_float(t.test.pixels.data() + size_t(i) * 784, 28, 28, 0, big.data(), side, side, 0, 1);
    std::vector<uint8_t> gray_alpha(size_t(w) * h * 2, 0), gray(size_t(w) * h, 255);  // transparent; white
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            const size_t at = size_t(y + 30) * w + x + 30;
            const uint8_t ink = uint8_t(std::lround(255 * std::clamp(big[size_t(y) * side + x], 0.0f, 1.0f)));
            gray_alpha[at * 2 + 1] = ink;  // black, as opaque as the ink is strong
            gray[at] = uint8_t(255 - ink);
        }
    REQUIRE(stbi_write_png(dir.file("canvas.png").c_str(), w, h, 2, gray_alpha.data(), w * 2));
    REQUIRE(stbi_write_png(dir.file("paper.png").c_str(), w, h, 1, gray.data(), w));
    const kiln::model::InputSpec &in = t.model.net().input;
    const std::vector<float> canvas = kiln::mnist_style_input(kiln::read_gray_image(dir.file("canvas.png")), in, "canvas"),
                             paper = kiln::mnist_style_input(kiln::read_gray_image(dir.file("paper.png")), in, "paper");
    REQUIRE(canvas.size() == paper.size());
    for (size_t j = 0; j < canvas.size(); j++) REQUIRE(std::abs(canvas[j] - paper[j]) < 1e-5f);
}

TEST_CASE("predict: kiln predict prints one JSON object per image and exits 1 after a bad file") {
    const Trained &t = untrained();
    TempDir dir("predict-cli");
    kiln::Checkpoint ck;
    ck.params = t.params;
    kiln::save_checkpoint(dir.file("lenet5.safetensors"), t.model.net(), ck);
    const std::string a = write_large(dir, t.test, 3), b = write_large(dir, t.test, 4);
    write_bytes(dir.file("bad.png"), "junk");
    const std::string predict = std::string(KILN_BINARY) + " predict lenet5 --checkpoint " + dir.file("lenet5.safetensors");
    std::string out;
    CHECK(run(predict + " --json " + a + " " + dir.file("bad.png") + " " + b + " 2> " + dir.file("stderr"), out) == 1);
    CHECK(read_bytes(dir.file("stderr")) == dir.file("bad.png") + ": error: not a PNG or JPEG image\n");
    std::istringstream lines(out);
    std::ostringstream ignored;
    const kiln::Predictions want = kiln::predict_files(t.model, t.params, {a, b}, ignored);
    REQUIRE(want.classified.size() == 2);
    int index = 0;
    for (std::string line; std::getline(lines, line); index++) {
        const nlohmann::json j = nlohmann::json::parse(line);
        REQUIRE(index < 2);
        const kiln::Prediction &w = want.classified[size_t(index)];
        CHECK(j.at("file") == w.file);
        CHECK(j.at("digit") == w.digit);
        CHECK(j.at("probabilities").get<std::vector<double>>() == w.probabilities);
    }
    CHECK(index == 2);

    // Text: "FILE: DIGIT (P%)  0 p0  1 p1 ..."; every file good, exit 0.
    CHECK(run(predict + " " + a + " " + b, out) == 0);
    const std::string first = a + ": " + std::to_string(want.classified[0].digit) + " (";
    CHECK(out.rfind(first, 0) == 0);
    CHECK(out.find("\n" + b + ": " + std::to_string(want.classified[1].digit) + " (") != std::string::npos);
}
