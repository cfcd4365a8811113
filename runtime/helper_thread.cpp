#include "helper_thread.h"

#include <chrono>

namespace kiln {
namespace {

// How long the helper spins for the next task before it sleeps: steps come every
// fraction of a millisecond while training; a checkpoint write between epochs
// may let it sleep.
constexpr auto kSpin = std::chrono::milliseconds(5);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Waits until ready(): a few hundred pauses, then yielding the core between
// checks. Yielding matters when the two threads share one core (other programs
// running, or a core the host took away): a thread that only spun would keep the
// one it waits for off that core until the next scheduler tick (4 ms here: a
// lenet5 step went from 1.8 ms to 8 ms).
template <class Ready>
void spin_until(const Ready &ready) {
    for (int i = 0; i < 256; i++) {
        if (ready()) return;
        cpu_relax();
    }
    while (!ready()) std::this_thread::yield();
}

}  // namespace

HelperThread &HelperThread::instance() {
    static HelperThread helper;
    return helper;
}

HelperThread::HelperThread() : thread_([this] { loop(); }) {}

HelperThread::~HelperThread() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void HelperThread::loop() {
    for (;;) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        spin_until([&] {
            return posted_.load(std::memory_order_acquire) || stop_.load() || std::chrono::steady_clock::now() >= until;
        });
        if (!posted_.load(std::memory_order_acquire)) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return posted_.load() || stop_.load(); });
        }
        if (stop_.load()) return;
        posted_.store(false, std::memory_order_relaxed);
        try {
            (*task_)();
        } catch (...) {
            failure_ = std::current_exception();
        }
        done_.store(true, std::memory_order_release);
    }
}

void HelperThread::run_beside(const std::function<void()> &task, const std::function<void()> &mine) {
    if (busy_.exchange(true)) {  // another caller has the helper: run both here
        mine();
        task();
        return;
    }
    struct Release {
        std::atomic<bool> &busy;
        ~Release() { busy.store(false); }
    } release{busy_};
    task_ = &task;
    failure_ = nullptr;
    done_.store(false, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mutex_);  // a helper going to sleep sees it, or is woken
        posted_.store(true, std::memory_order_release);
    }
    wake_.notify_one();
    std::exception_ptr mine_failure;
    try {
        mine();
    } catch (...) {
        mine_failure = std::current_exception();
    }
    spin_until([&] { return done_.load(std::memory_order_acquire); });  // the helper's half takes about as long
    if (mine_failure) std::rethrow_exception(mine_failure);
    if (failure_) std::rethrow_exception(failure_);
}

}  // namespace kiln
