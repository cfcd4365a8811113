// Geometric augmentation: exact on shifts and quarter turns, bounded by its
// settings, and deterministic for a seed.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "augment.h"

namespace {

constexpr int W = 7, H = 7;

std::vector<float> ramp() {
    std::vector<float> img(W * H);
    for (int i = 0; i < W * H; i++) img[size_t(i)] = float(i + 1) / (W * H);
    return img;
}

float at(const std::vector<float> &img, int x, int y) {
    return x >= 0 && x < W && y >= 0 && y < H ? img[size_t(y * W + x)] : 0.0f;
}

}  // namespace

TEST_CASE("the identity warp copies the image", "[augment]") {
    const std::vector<float> src = ramp();
    std::vector<float> dst(src.size());
    kiln::warp_image(src.data(), dst.data(), W, H, 1, kiln::Warp{});
    CHECK(dst == src);
}

TEST_CASE("a whole-pixel shift moves the image and brings in zeros", "[augment]") {
    const std::vector<float> src = ramp();
    std::vector<float> dst(src.size());
    kiln::Warp w;
    w.shift_x = 2;
    w.shift_y = -1;
    kiln::warp_image(src.data(), dst.data(), W, H, 1, w);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            INFO("x " << x << " y " << y);
            CHECK(dst[size_t(y * W + x)] == at(src, x - 2, y + 1));
        }
}

TEST_CASE("a quarter turn permutes the pixels", "[augment]") {
    const std::vector<float> src = ramp();
    std::vector<float> dst(src.size());
    kiln::model::AugmentSettings turn;
    turn.rotate = 90;
    kiln::Warp w;  // exactly +90 degrees, as random_warp would build it
    w.a00 = 0;
    w.a01 = 1;
    w.a10 = -1;
    w.a11 = 0;
    kiln::warp_image(src.data(), dst.data(), W, H, 1, w);
    const int c = (W - 1) / 2;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) CHECK(dst[size_t(y * W + x)] == at(src, c + (y - c), c - (x - c)));
}

TEST_CASE("random warps stay within their settings and repeat for a seed", "[augment]") {
    kiln::model::AugmentSettings s;
    s.shift = 2;
    s.rotate = 10;
    s.scale = 0.1;
    kiln::Rng a(7), b(7);
    bool varied = false;
    kiln::Warp first = kiln::random_warp(s, a);
    kiln::random_warp(s, b);
    for (int i = 0; i < 1000; i++) {
        const kiln::Warp w = kiln::random_warp(s, a);
        const kiln::Warp again = kiln::random_warp(s, b);
        REQUIRE(w.a00 == again.a00);
        REQUIRE(w.shift_x == again.shift_x);
        CHECK(std::abs(w.shift_x) <= 2);
        CHECK(std::abs(w.shift_y) <= 2);
        const double zoom = 1 / std::hypot(w.a00, w.a01);  // the inverse carries 1 / zoom
        CHECK(zoom >= 0.9 - 1e-9);
        CHECK(zoom <= 1.1 + 1e-9);
        CHECK(std::abs(std::atan2(w.a01, w.a00)) <= 10 * M_PI / 180 + 1e-9);
        varied = varied || w.shift_x != first.shift_x;
    }
    CHECK(varied);
}
