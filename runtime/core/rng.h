// A small deterministic random generator (SplitMix64): the same seed gives the
// same numbers on every platform, unlike std:: distributions.
#pragma once

#include <cstdint>

namespace kiln {

class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1), 53 random bits.
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }
    // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < 2^-40 for our n).
    uint64_t below(uint64_t n) { return uint64_t((unsigned __int128)next() * n >> 64); }

private:
    uint64_t state_;
};

// A stream for one purpose: distinct (seed, purpose, index) give unrelated streams.
inline Rng make_rng(uint64_t seed, uint64_t purpose, uint64_t index = 0) {
    Rng mix(seed * 0x9e3779b97f4a7c15ull ^ (purpose << 32) ^ index);
    return Rng(mix.next());
}

}  // namespace kiln
