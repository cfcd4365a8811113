// One long-lived thread that runs a task beside the calling thread: the second
// shard of a batch (compiled.cpp). Between tasks it spins for a while before it
// sleeps: on this virtual machine, waking a sleeping core (a new thread, or a
// condition variable) cost more than a small network's half training step.
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
    // The process's helper, started on first use.
    static HelperThread &instance();

    // Runs `task` on the helper while `mine` runs on the calling thread, and
    // returns when both are done; an exception from either is rethrown here.
    // While another caller has the helper, runs both on the calling thread.
    void run_beside(const std::function<void()> &task, const std::function<void()> &mine);

    ~HelperThread();

private:
    HelperThread();
    void loop();

    std::mutex mutex_;
    std::condition_variable wake_;
    const std::function<void()> *task_ = nullptr;  // guarded by posted_ / done_
    std::exception_ptr failure_;
    std::atomic<bool> busy_{false}, posted_{false}, done_{false}, stop_{false};
    std::thread thread_;
};

}  // namespace kiln
