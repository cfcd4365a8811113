#include "augment.h"

#include <cmath>

namespace kiln {

Warp random_warp(const model::AugmentSettings &s, Rng &rng) {
    auto symmetric = [&](double range) { return range > 0 ? (2 * rng.uniform() - 1) * range : 0.0; };
    const double angle = symmetric(s.rotate) * M_PI / 180;
    const double zoom_x = 1 + symmetric(s.scale);
    Warp w;
    w.shift_x = symmetric(s.shift);
    w.shift_y = symmetric(s.shift);
    // Drawn last, so that the other draws are those of a warp with one zoom.
    const double zoom_y = s.scale_per_axis ? 1 + symmetric(s.scale) : zoom_x;
    // Inverse of (rotate by angle, then zoom each axis): divide by the zooms, then
    // rotate by -angle: A = R(-angle) diag(1 / zoom_x, 1 / zoom_y).
    const double c = std::cos(angle), sn = std::sin(angle);
    w.a00 = c / zoom_x;
    w.a01 = sn / zoom_y;
    w.a10 = -sn / zoom_x;
    w.a11 = c / zoom_y;
    return w;
}

void warp_image(const float *src, float *dst, int width, int height, int channels, const Warp &w) {
    const double cx = (width - 1) / 2.0, cy = (height - 1) / 2.0;
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            const double dx = x - cx - w.shift_x, dy = y - cy - w.shift_y;
            const double sx = cx + w.a00 * dx + w.a01 * dy, sy = cy + w.a10 * dx + w.a11 * dy;
            const int x0 = int(std::floor(sx)), y0 = int(std::floor(sy));
            const float fx = float(sx - x0), fy = float(sy - y0);
            for (int c = 0; c < channels; c++) {
                const float *plane = src + size_t(c) * width * height;
                auto at = [&](int xx, int yy) {
                    return xx >= 0 && xx < width && yy >= 0 && yy < height ? plane[size_t(yy) * width + xx] : 0.0f;
                };
                const float top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
                const float bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
                dst[size_t(c) * width * height + size_t(y) * width + x] = top * (1 - fy) + bottom * fy;
            }
        }
    }
}

}  // namespace kiln
