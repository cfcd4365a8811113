#include "distributed.h"

// The C interface only: no C++ bindings (a library of their own in OpenMPI).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

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

constexpr int kTaskTag = 12;

// Rank 0's counter, and the thread that answers the other ranks' requests.
struct MpiJob::TaskServer {
    std::mutex mutex;
    int64_t next = 0;
    std::thread thread;

    int64_t take(int64_t count) {
        std::lock_guard<std::mutex> lock(mutex);
        return next < count ? next++ : -1;
    }
    // Each request is the count; each answer a number, or -1 once a rank is done.
    void serve(int others) {
        while (others > 0) {
            int waiting = 0;
            MPI_Status status;
            MPI_Iprobe(MPI_ANY_SOURCE, kTaskTag, MPI_COMM_WORLD, &waiting, &status);
            if (!waiting) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            int64_t count = 0;
            MPI_Recv(&count, 1, MPI_INT64_T, status.MPI_SOURCE, kTaskTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            const int64_t task = take(count);
            MPI_Send(&task, 1, MPI_INT64_T, status.MPI_SOURCE, kTaskTag, MPI_COMM_WORLD);
            if (task < 0) others--;
        }
    }
};

MpiJob::MpiJob(int &argc, char **&argv) {
    if (!launched_by_mpi()) return;
    // Only the main thread calls MPI; the shards' helper threads never do.
    // Study tasks: rank 0's server thread calls MPI while its main thread trains
    // without it (it calls MPI again only after tasks_done): serialized.
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
        std::fprintf(stderr, "kiln: error: this MPI library cannot be called from two threads in turn\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    running_ = true;
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
}

MpiJob::~MpiJob() {
    // Rank 0 leaving while it still hands out tasks (an error): the others
    // would wait for it, so end them all.
    if (tasks_ && tasks_->thread.joinable()) abort(1);
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

int64_t MpiJob::next_task(int64_t count) const {
    if (rank_ != 0) {
        int64_t task = -1;
        MPI_Send(&count, 1, MPI_INT64_T, 0, kTaskTag, MPI_COMM_WORLD);
        MPI_Recv(&task, 1, MPI_INT64_T, 0, kTaskTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return task;
    }
    if (!tasks_) {
        tasks_ = std::make_unique<TaskServer>();
        if (size_ > 1) tasks_->thread = std::thread([this] { tasks_->serve(size_ - 1); });
    }
    return tasks_->take(count);
}

void MpiJob::tasks_done() const {
    if (tasks_ && tasks_->thread.joinable()) tasks_->thread.join();
}

void MpiJob::abort(int exit_code) const {
    if (running_) MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
}

}  // namespace kiln
