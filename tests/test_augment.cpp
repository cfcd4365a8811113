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

TEST_CASE("scale_per_axis draws the zoom of x and y apart; the other draws stay as with one zoom", "[augment]") {
    kiln::model::AugmentSettings one;
    one.shift = 2;
    one.rotate = 10;
    one.scale = 0.1;
    kiln::model::AugmentSettings each = one;
    each.scale_per_axis = true;
    kiln::Rng a(11), b(11);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        const kiln::Warp w1 = kiln::random_warp(one, a), w2 = kiln::random_warp(each, b);
        b = a;  // the per-axis warp drew once more: realign the streams
        // One zoom: A = R(-angle) / zoom.
        CHECK(w1.a00 == w1.a11);
        CHECK(w1.a01 == -w1.a10);
        // Each axis: A = R(-angle) diag(1 / zoom_x, 1 / zoom_y), its columns 1 / zoom long.
        const double zoom_x = 1 / std::hypot(w2.a00, w2.a10), zoom_y = 1 / std::hypot(w2.a01, w2.a11);
        CHECK(zoom_x == Approx(1 / std::hypot(w1.a00, w1.a10)).epsilon(1e-12));  // the same first draws
        CHECK(zoom_y >= 0.9 - 1e-9);
        CHECK(zoom_y <= 1.1 + 1e-9);
        CHECK(std::atan2(-w2.a10, w2.a00) == Approx(std::atan2(-w1.a10, w1.a00)).margin(1e-12));
        CHECK(std::atan2(w2.a01, w2.a11) == Approx(std::atan2(-w2.a10, w2.a00)).margin(1e-12));  // one rotation
        CHECK(w2.shift_x == w1.shift_x);
        CHECK(w2.shift_y == w1.shift_y);
        differ += std::abs(zoom_x - zoom_y) > 1e-3;
    }
    CHECK(differ > 900);
}

TEST_CASE("a zoom of x alone stretches rows, not columns", "[augment]") {
    const std::vector<float> src = ramp();
    std::vector<float> dst(src.size());
    kiln::Warp w;
    w.a00 = 0.5;  // zoom_x = 2: dst(x, y) reads src(c + (x - c) / 2, y)
    kiln::warp_image(src.data(), dst.data(), W, H, 1, w);
    const int c = (W - 1) / 2;
    for (int y = 0; y < H; y++)
        for (int x = c - 2; x <= c + 2; x += 2) CHECK(dst[size_t(y * W + x)] == Approx(at(src, c + (x - c) / 2, y)));
}
