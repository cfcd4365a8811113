#include "distributed.h"

// The C interface only: no C++ bindings (a library of their own in OpenMPI).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "compiled.h"  // UsageError

namespace kiln {
namespace {

// mpirun (OpenMPI), and srun or other PMI launchers, set these in every rank.
bool launched_by_mpi() {
    for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(name)) return true;
    return false;
}

// How many of `shards` shards rank `rank` of `size` computes: rank, rank + size, ...
int shards_of(int rank, int size, int shards) { return rank < shards ? (shards - 1 - rank) / size + 1 : 0; }

}  // namespace

MpiJob::MpiJob(int &argc, char **&argv) {
    if (!launched_by_mpi()) return;
    // Only the main thread calls MPI; the shards' helper threads never do.
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    running_ = true;
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
}

MpiJob::~MpiJob() {
    if (running_) MPI_Finalize();
}

// Rank q sends its shards q, q + P, ... packed, in that order; every rank unpacks
// everyone's into shard order.
void MpiJob::share(float *slots, int shards, size_t stride) const {
    const auto start = std::chrono::steady_clock::now();
    std::vector<int> counts(static_cast<size_t>(size_)), displacements(static_cast<size_t>(size_));
    size_t total = 0;
    for (int q = 0; q < size_; q++) {
        const size_t count = size_t(shards_of(q, size_, shards)) * stride;
        if (total + count > size_t(INT32_MAX))
            throw std::runtime_error("kiln: error: a training step's shards are too large to exchange over MPI");
        counts[size_t(q)] = int(count);
        displacements[size_t(q)] = int(total);
        total += count;
    }
    send_.resize(size_t(counts[size_t(rank_)]));
    for (int s = rank_, j = 0; s < shards; s += size_, j++)
        std::memcpy(send_.data() + size_t(j) * stride, slots + size_t(s) * stride, stride * sizeof(float));
    receive_.resize(total);
    // Waiting for the slowest rank apart from moving the bytes: a barrier first.
    MPI_Barrier(MPI_COMM_WORLD);
    const auto arrived = std::chrono::steady_clock::now();
    waited_seconds_ += std::chrono::duration<double>(arrived - start).count();
    MPI_Allgatherv(send_.data(), counts[size_t(rank_)], MPI_FLOAT, receive_.data(), counts.data(),
                   displacements.data(), MPI_FLOAT, MPI_COMM_WORLD);
    for (int q = 0; q < size_; q++) {
        if (q == rank_) continue;
        const float *from = receive_.data() + displacements[size_t(q)];
        for (int s = q, j = 0; s < shards; s += size_, j++)
            std::memcpy(slots + size_t(s) * stride, from + size_t(j) * stride, stride * sizeof(float));
    }
    shared_bytes_ += double(total - send_.size()) * sizeof(float);
    shares_++;
    shared_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count();
}

void MpiJob::check_same(uint64_t hash, const std::string &what) const {
    std::vector<uint64_t> all(static_cast<size_t>(size_));
    MPI_Allgather(&hash, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int q = 1; q < size_; q++)
        if (all[size_t(q)] != all[0])
            throw TeamError(fmt::format("kiln: error: rank {} of the MPI job has other {} than rank 0; start every rank "
                                        "with the same command, build and files",
                                        q, what),
                            1);
}

void MpiJob::together(const std::function<void()> &step) const {
    std::string message;
    int code = 0;
    try {
        step();
    } catch (const TeamError &e) {
        message = e.what(), code = e.exit_code;
    } catch (const UsageError &e) {
        message = e.what(), code = 2;
    } catch (const std::exception &e) {
        message = e.what(), code = 1;
    }
    std::vector<int> codes(static_cast<size_t>(size_));
    MPI_Allgather(&code, 1, MPI_INT, codes.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int first = 0;
    while (first < size_ && codes[size_t(first)] == 0) first++;
    if (first == size_) return;
    int length = int(message.size());
    MPI_Bcast(&length, 1, MPI_INT, first, MPI_COMM_WORLD);
    message.resize(size_t(length));
    MPI_Bcast(message.data(), length, MPI_CHAR, first, MPI_COMM_WORLD);
    throw TeamError(first == 0 ? message : fmt::format("rank {}: {}", first, message), codes[size_t(first)]);
}

void MpiJob::abort(int exit_code) const {
    if (running_) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
}

}  // namespace kiln
