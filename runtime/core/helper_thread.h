// Long-lived threads that run tasks beside the calling thread: the shards of a
// batch (compiled.cpp). Between tasks each spins for a while before it sleeps: on
// this virtual machine, waking a sleeping core (a new thread, or a condition
// variable) cost more than a small network's half training step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace kiln {

class HelperThread {
public:
    // The process's helper number `index` (0, 1, ...), started on first use.
    static HelperThread &instance(int index = 0);

    // Runs `task` on the helper while `mine` runs on the calling thread, and
    // returns when both are done; an exception from either is rethrown here.
    // While another caller has the helper, runs both on the calling thread.
    void run_beside(const std::function<void()> &task, const std::function<void()> &mine);

    // The two halves of run_beside: post() hands `task` (which must outlive the
    // wait) to the helper, or returns false if another caller has it; after a
    // post, wait() returns when the task is done, rethrowing its exception.
    bool post(const std::function<void()> &task);
    void wait();

    HelperThread();
    ~HelperThread();
    HelperThread(const HelperThread &) = delete;
    HelperThread &operator=(const HelperThread &) = delete;

private:
    void loop();

    std::mutex mutex_;
    std::condition_variable wake_;
    const std::function<void()> *task_ = nullptr;  // guarded by posted_ / done_
    std::exception_ptr failure_;
    std::atomic<bool> busy_{false}, posted_{false}, done_{false}, stop_{false};
    std::thread thread_;
};

// Runs work(0), ..., work(shards - 1) on up to `threads` threads: the calling
// thread and helpers 0, 1, ..., each thread a fixed stripe of shards (t, t +
// threads, ...). Returns when all are done; the first exception is rethrown.
void run_shards(int shards, int threads, const std::function<void(int shard)> &work);

}  // namespace kiln
