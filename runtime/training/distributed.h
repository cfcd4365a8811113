// Data-parallel training on MPI: `mpirun -np P kiln train NETWORK ...` runs P
// processes (ranks), rank r computing shards r, r + P, ... of every batch. The
// shards' gradients, losses and scores travel whole (MPI_Allgatherv), and every
// rank adds them up itself in shard order, as one process with the same shards
// does: the same weights, bit for bit, on every rank and as without MPI (a fixed
// order of additions, not whichever order MPI_Allreduce picks). See the README's
// "Training on several processes (MPI)".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "team.h"

namespace kiln {

class MpiJob : public ShardTeam {
public:
    // Joins the MPI job if mpirun (or Slurm's srun) started this process, as
    // their environment variables say; otherwise this is a job of one process
    // that never calls MPI: kiln runs without mpirun, and without the 0.7 s that
    // OpenMPI's singleton MPI_Init takes here.
    MpiJob(int &argc, char **&argv);
    ~MpiJob() override;  // MPI_Finalize
    MpiJob(const MpiJob &) = delete;
    MpiJob &operator=(const MpiJob &) = delete;

    bool running() const { return running_; }  // part of an MPI job
    int size() const override { return size_; }
    int rank() const override { return rank_; }
    int local_size() const { return local_size_; }  // ranks on this machine

    void share(float *slots, int shards, size_t stride) const override;
    void check_same(uint64_t hash, const std::string &what) const override;
    void together(const std::function<void()> &step) const override;
    double shared_bytes() const override { return shared_bytes_; }
    double shared_seconds() const override { return shared_seconds_; }
    int64_t shares() const { return shares_; }  // calls of share(): training steps
    // Seconds share() waited for the slowest rank (a barrier), apart from
    // shared_seconds(), the exchange itself.
    double waited_seconds() const { return waited_seconds_; }

    // Hands out the numbers 0 .. count - 1 to the ranks as they ask, each number
    // to one rank, then -1 (every rank passes the same count): the (network, seed)
    // runs of a study, taken as ranks free up. Rank 0 serves the others from a
    // thread of its own (polling every 2 ms) while it takes numbers itself.
    int64_t next_task(int64_t count) const;
    // Rank 0: returns when every rank has been told -1, so has finished its
    // tasks. The others return at once.
    void tasks_done() const;

    // Ends every process of the job now (MPI_Abort), after an error that this
    // process met alone: the others may be waiting for it.
    [[noreturn]] void abort(int exit_code) const;

private:
    bool running_ = false;
    int size_ = 1, rank_ = 0, local_size_ = 1;
    mutable std::vector<float> send_, receive_;
    mutable double shared_bytes_ = 0, shared_seconds_ = 0, waited_seconds_ = 0;
    mutable int64_t shares_ = 0;
    struct TaskServer;
    mutable std::unique_ptr<TaskServer> tasks_;  // rank 0, from the first next_task
};

}  // namespace kiln
