// A digit from an image file, prepared as MNIST's digits were: LeCun, Cortes and
// Burges size-normalized each digit to fit a 20x20 box keeping its aspect ratio,
// then centred its centre of mass in a 28x28 field. Files are PNG or JPEG, read
// with stb_image (Debian's libstb-dev), scaled with stb_image_resize.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "model/network.h"

namespace kiln {

// An image that cannot be used: one line, "FILE: error: ...".
struct ImageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Gray levels row-major, 0 black to 1 white.
struct GrayImage {
    int width = 0, height = 0;
    std::vector<float> pixels;
};

// Files and images larger than these are refused before they are decoded.
struct ImageLimits {
    static constexpr long long max_file_bytes = 64ll << 20;
    static constexpr long long max_pixels = 40'000'000;  // a 40-megapixel photo
};

// Reads a PNG or JPEG file as gray levels: colour becomes luminance, and a
// transparent background becomes white (strokes drawn on a transparent canvas).
// Throws ImageError naming the file: unreadable, empty, not PNG or JPEG,
// truncated or corrupt, or beyond ImageLimits.
GrayImage read_gray_image(const std::string &path);

// The digit as the network's input (channels x height x width floats in [0, 1],
// ink 1 on a background of 0, the gray copied to every channel):
//  1. the background is the median of the border pixels; if it is light, the
//     image is inverted (dark ink on paper), so ink is always light;
//  2. levels are stretched so that the background is 0 and the strongest ink 1;
//  3. the image is cropped to the ink (levels above kInkThreshold);
//  4. the crop is scaled to fit a box of 20/28 of the input's size (20x20 for
//     MNIST's 28x28), keeping its aspect ratio;
//  5. the box is placed so that its centre of mass falls on the input's centre
//     (whole pixels, kept inside the field).
// Throws ImageError naming `source` if the image holds no ink (one level throughout).
std::vector<float> mnist_style_input(const GrayImage &image, const model::InputSpec &input,
                                     const std::string &source);

constexpr float kInkThreshold = 0.2f;

}  // namespace kiln
