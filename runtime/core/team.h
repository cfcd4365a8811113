// The processes that train one network together, each computing some of every
// batch's shards (data parallelism). An interface with no MPI in it: the
// training step and loop call it, distributed.h implements it on MPI. Without
// a team (nullptr) a process computes every shard itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace kiln {

// An error that every process of a team raised together (a failed check, or a
// step that failed on some process): the first process reports it, the others
// end quietly, all with the same exit code.
struct TeamError : std::runtime_error {
    TeamError(const std::string &message, int exit_code) : std::runtime_error(message), exit_code(exit_code) {}
    int exit_code;  // 1 bad input, 2 bad command line
};

class ShardTeam {
public:
    virtual ~ShardTeam() = default;
    virtual int size() const = 0;  // processes
    virtual int rank() const = 0;  // this one, 0 .. size - 1: computes shards rank, rank + size, ...
    bool leader() const { return rank() == 0; }  // prints and writes files

    // `slots`: `shards` slots of `stride` floats, in shard order, this process's
    // own shards filled in. Fills in every other shard from the process that
    // computed it, so that every process ends with the same floats.
    virtual void share(float *slots, int shards, size_t stride) const = 0;

    // Every process passes its own `hash` of `what` (e.g. "the network file");
    // unless all are equal, throws a TeamError on every process.
    virtual void check_same(uint64_t hash, const std::string &what) const = 0;

    // Runs `step` on every process; if it threw on any, throws on every one a
    // TeamError with the message of the first process that failed.
    virtual void together(const std::function<void()> &step) const = 0;

    // Bytes this process received and seconds it spent in share(), since the start.
    virtual double shared_bytes() const = 0;
    virtual double shared_seconds() const = 0;
};

// A 64-bit fingerprint of `size` bytes, continuing from `hash` (FNV-1a's
// constants, 8 bytes a step: a data set of 200 MB takes tens of milliseconds):
// what check_same compares.
inline uint64_t fingerprint(const void *data, size_t size, uint64_t hash = 0xcbf29ce484222325ull) {
    const unsigned char *p = static_cast<const unsigned char *>(data);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        __builtin_memcpy(&word, p + i, 8);
        hash = (hash ^ word) * 0x100000001b3ull;
    }
    for (; i < size; i++) hash = (hash ^ p[i]) * 0x100000001b3ull;
    return hash;
}

}  // namespace kiln
