// Geometric augmentation of training images: a random shift, rotation and scale
// about the image centre, sampled bilinearly, zero outside the image (the
// background of pixels in [0, 1]). Images are (c, y, x) row-major floats.
#pragma once

#include "model/network.h"
#include "rng.h"

namespace kiln {

// Output pixel (x, y) reads the input at (x, y) mapped by the inverse transform:
// src = centre + A (dst - centre - shift).
struct Warp {
    double a00 = 1, a01 = 0, a10 = 0, a11 = 1;  // A: inverse rotation and scale
    double shift_x = 0, shift_y = 0;             // pixels
};

// A random warp drawn from `settings`.
Warp random_warp(const model::AugmentSettings &settings, Rng &rng);

// dst = src warped; width x height pixels per channel, `channels` channels.
void warp_image(const float *src, float *dst, int width, int height, int channels, const Warp &w);

}  // namespace kiln
