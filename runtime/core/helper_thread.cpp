#include "helper_thread.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

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

HelperThread &HelperThread::instance(int index) {
    static std::mutex mutex;
    static std::vector<std::unique_ptr<HelperThread>> helpers;
    std::lock_guard<std::mutex> lock(mutex);
    while (int(helpers.size()) <= index) helpers.push_back(std::make_unique<HelperThread>());
    return *helpers[size_t(index)];
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

bool HelperThread::post(const std::function<void()> &task) {
    if (busy_.exchange(true)) return false;  // another caller has the helper
    task_ = &task;
    failure_ = nullptr;
    done_.store(false, std::memory_order_relaxed);
    {
        std::lock_guard<std::mutex> lock(mutex_);  // a helper going to sleep sees it, or is woken
        posted_.store(true, std::memory_order_release);
    }
    wake_.notify_one();
    return true;
}

void HelperThread::wait() {
    spin_until([&] { return done_.load(std::memory_order_acquire); });  // a shard takes about as long as the caller's
    const std::exception_ptr failure = failure_;
    busy_.store(false);
    if (failure) std::rethrow_exception(failure);
}

void HelperThread::run_beside(const std::function<void()> &task, const std::function<void()> &mine) {
    if (!post(task)) {  // run both here
        mine();
        task();
        return;
    }
    std::exception_ptr mine_failure;
    try {
        mine();
    } catch (...) {
        mine_failure = std::current_exception();
    }
    wait();  // rethrows the helper's failure
    if (mine_failure) std::rethrow_exception(mine_failure);
}

void run_shards(int shards, int threads, const std::function<void(int shard)> &work) {
    const int lanes = std::max(1, std::min(shards, threads));
    auto stripe = [&](int lane) {
        for (int s = lane; s < shards; s += lanes) work(s);
    };
    std::vector<std::function<void()>> tasks;  // kept alive until every helper is waited for
    tasks.reserve(size_t(lanes));
    std::vector<HelperThread *> posted;
    std::vector<int> unposted;
    for (int lane = 1; lane < lanes; lane++) {
        tasks.emplace_back([&stripe, lane] { stripe(lane); });
        HelperThread &helper = HelperThread::instance(lane - 1);
        if (helper.post(tasks.back()))
            posted.push_back(&helper);
        else
            unposted.push_back(lane);  // busy (a nested call): run it here
    }
    std::exception_ptr failure;
    try {
        stripe(0);
        for (int lane : unposted) stripe(lane);
    } catch (...) {
        failure = std::current_exception();
    }
    for (HelperThread *helper : posted) {
        try {
            helper->wait();
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace kiln
