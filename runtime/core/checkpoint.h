// Checkpoints as safetensors files (https://github.com/huggingface/safetensors),
// so that PyTorch's safetensors loader reads them as they are:
//   8-byte little-endian header length N, N bytes of JSON (space-padded to a
//   multiple of 8), then the tensors' little-endian F32 data back to back.
// The JSON's "__metadata__" holds "format": "kiln", "network", "hash" (of the
// network's architecture), "epoch" and the caller's own string metadata. The
// tensors are, in this order: one per model::ParamTensor, named and shaped as it
// is ("conv1.weight", PyTorch's layout); then for each optimizer state, one
// "optimizer.<state>.<param name>" per parameter tensor, with the same shape.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/network.h"

namespace kiln {

// A checkpoint that cannot be written or read: one line, "PATH: error: ...".
struct CheckpointError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Checkpoint {
    int64_t epoch = 0;                                          // epochs completed
    std::vector<float> params;                                  // flat, Network::params layout
    std::map<std::string, std::vector<float>> optimizer_state;  // e.g. "momentum" -> param_count floats
    std::map<std::string, std::string> metadata;                // extra strings: seed, rng state, lr, ...
};

// Writes atomically: the file is written to PATH.tmp-<pid> beside it, synced,
// and renamed over PATH, so a failure leaves any existing checkpoint intact and
// no temporary file behind. Creates no directories. Throws CheckpointError if the
// file cannot be written, std::invalid_argument if `ck` does not fit `net` (wrong
// vector sizes, negative epoch, a state name that is empty or holds '.', or a
// metadata key that the format reserves: format, network, hash, epoch; a
// string that is not UTF-8).
void save_checkpoint(const std::string &path, const model::Network &net, const Checkpoint &ck);

// Reads and checks a checkpoint for `net`: it must be a complete, well-formed
// safetensors file made for this network (same name and architecture hash) with
// exactly the expected tensors. `metadata` gets the entries other than the
// reserved ones. Throws CheckpointError.
Checkpoint load_checkpoint(const std::string &path, const model::Network &net);

}  // namespace kiln
