// Image files to network inputs, MNIST's way (see digit_image.h).
#include "digit_image.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "idx.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS 65536
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>

namespace kiln {
namespace {

struct Box {  // columns [x0, x1), rows [y0, y1)
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    int width() const { return x1 - x0; }
    int height() const { return y1 - y0; }
};

ImageError error(const std::string &path, const std::string &what) {
    return ImageError(fmt::format("{}: error: {}", path, what));
}

float median_of_border(const GrayImage &img) {
    const auto at = [&](int x, int y) { return img.pixels[size_t(y) * img.width + x]; };
    std::vector<float> border;
    for (int x = 0; x < img.width; x++) border.insert(border.end(), {at(x, 0), at(x, img.height - 1)});
    for (int y = 1; y + 1 < img.height; y++) border.insert(border.end(), {at(0, y), at(img.width - 1, y)});
    std::nth_element(border.begin(), border.begin() + border.size() / 2, border.end());
    return border[border.size() / 2];
}

// Steps 1 and 2: light ink on 0, the strongest ink 1.
GrayImage ink_levels(const GrayImage &img, const std::string &source) {
    GrayImage ink = img;
    if (median_of_border(img) > 0.5f)
        for (float &v : ink.pixels) v = 1.0f - v;
    const float background = median_of_border(ink);
    const float peak = *std::max_element(ink.pixels.begin(), ink.pixels.end());
    if (peak - background < 1.0f / 64)
        throw error(source, "no digit found: nothing stands out from the background");
    for (float &v : ink.pixels) v = std::clamp((v - background) / (peak - background), 0.0f, 1.0f);
    return ink;
}

// Step 3: the smallest box holding every pixel above the threshold (never empty:
// the strongest ink is 1).
Box ink_box(const GrayImage &ink) {
    Box b{ink.width, ink.height, 0, 0};
    for (int y = 0; y < ink.height; y++)
        for (int x = 0; x < ink.width; x++)
            if (ink.pixels[size_t(y) * ink.width + x] > kInkThreshold) {
                b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x + 1);
                b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y + 1);
            }
    return b;
}

// Step 4: the box's pixels scaled to fit fit_w x fit_h, aspect ratio kept, with
// the interpolating Catmull-Rom filter (widened when shrinking; zero outside the
// box). On large MNIST digits it kept a few more predictions than the Mitchell
// filter (stb's default for shrinking), the box and the triangle filters.
GrayImage scale_to_fit(const GrayImage &ink, const Box &b, int fit_w, int fit_h) {
    const double scale = std::min(double(fit_w) / b.width(), double(fit_h) / b.height());
    GrayImage out;
    out.width = std::clamp(int(std::lround(b.width() * scale)), 1, fit_w);
    out.height = std::clamp(int(std::lround(b.height() * scale)), 1, fit_h);
    out.pixels.resize(size_t(out.width) * out.height);
    const float *first = ink.pixels.data() + size_t(b.y0) * ink.width + b.x0;
    stbir_resize_float_generic(first, b.width(), b.height(), int(ink.width * sizeof(float)), out.pixels.data(),
                               out.width, out.height, 0, 1, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_ZERO,
                               STBIR_FILTER_CATMULLROM, STBIR_COLORSPACE_LINEAR, nullptr);
    for (float &v : out.pixels) v = std::clamp(v, 0.0f, 1.0f);  // the filters overshoot a little
    return out;
}

// Step 5: where the scaled digit's top-left corner goes along one axis so that
// its centre of mass `mass_centre` lands on the field's centre pixel, size/2
// (14 of 28, as in MNIST), kept inside the field.
int placement(double mass_centre, int digit_size, int field_size) {
    const int at = int(std::lround(field_size / 2 - mass_centre));
    return std::clamp(at, 0, field_size - digit_size);
}

std::vector<float> place_by_mass(const GrayImage &digit, int field_w, int field_h) {
    double mass = 0, mx = 0, my = 0;
    for (int y = 0; y < digit.height; y++)
        for (int x = 0; x < digit.width; x++) {
            const double v = digit.pixels[size_t(y) * digit.width + x];
            mass += v, mx += v * x, my += v * y;
        }
    const int left = mass > 0 ? placement(mx / mass, digit.width, field_w) : (field_w - digit.width) / 2;
    const int top = mass > 0 ? placement(my / mass, digit.height, field_h) : (field_h - digit.height) / 2;
    std::vector<float> field(size_t(field_w) * field_h, 0.0f);
    for (int y = 0; y < digit.height; y++)
        std::copy_n(digit.pixels.begin() + ptrdiff_t(y) * digit.width, digit.width,
                    field.begin() + ptrdiff_t(top + y) * field_w + left);
    return field;
}

// "PNG" or "JPEG" by the file's signature, or null. (stb_image tells the formats
// apart the same way, but reports why a header failed only as "unknown image type".)
const char *image_format(const std::vector<uint8_t> &bytes) {
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, jpeg[] = {0xff, 0xd8, 0xff};
    if (bytes.size() >= sizeof png && std::equal(png, png + sizeof png, bytes.begin())) return "PNG";
    if (bytes.size() >= sizeof jpeg && std::equal(jpeg, jpeg + sizeof jpeg, bytes.begin())) return "JPEG";
    return nullptr;
}

}  // namespace

GrayImage read_gray_image(const std::string &path) {
    std::error_code unknown;  // then read_whole_file says why
    const uintmax_t size = std::filesystem::file_size(path, unknown);
    if (!unknown && size > uintmax_t(ImageLimits::max_file_bytes))
        throw error(path, fmt::format("file too large ({} bytes; the limit is {})", size, ImageLimits::max_file_bytes));
    std::vector<uint8_t> bytes;
    const std::string why = read_whole_file(path, bytes);
    if (!why.empty()) throw error(path, why);
    if (bytes.empty()) throw error(path, "empty file");
    const char *format = image_format(bytes);
    if (!format) throw error(path, "not a PNG or JPEG image");
    int w = 0, h = 0, channels = 0;
    if (!stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &channels))
        throw error(path, fmt::format("cannot read the {} header: corrupt, or too large to decode", format));
    if (int64_t(w) * h > ImageLimits::max_pixels)
        throw error(path, fmt::format("image too large ({}x{} pixels; the limit is {} pixels)", w, h,
                                      ImageLimits::max_pixels));
    std::unique_ptr<stbi_uc, void (*)(void *)> gray_alpha(
        stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &channels, 2), stbi_image_free);
    if (!gray_alpha) throw error(path, fmt::format("cannot decode the {} image ({})", format, stbi_failure_reason()));
    GrayImage img{w, h, std::vector<float>(size_t(w) * h)};
    for (size_t i = 0; i < img.pixels.size(); i++) {
        const float gray = gray_alpha.get()[2 * i] / 255.0f, alpha = gray_alpha.get()[2 * i + 1] / 255.0f;
        img.pixels[i] = alpha * gray + (1 - alpha);  // over white
    }
    return img;
}

std::vector<float> mnist_style_input(const GrayImage &image, const model::InputSpec &input,
                                     const std::string &source) {
    if (image.width < 1 || image.height < 1) throw error(source, "the image has no pixels");
    const GrayImage ink = ink_levels(image, source);
    const int field_w = int(input.width), field_h = int(input.height);
    const int fit_w = std::max(1, int(std::lround(field_w * 20.0 / 28))),
              fit_h = std::max(1, int(std::lround(field_h * 20.0 / 28)));
    const std::vector<float> field = place_by_mass(scale_to_fit(ink, ink_box(ink), fit_w, fit_h), field_w, field_h);
    std::vector<float> out;
    for (int64_t c = 0; c < input.channels; c++) out.insert(out.end(), field.begin(), field.end());
    return out;
}

}  // namespace kiln
