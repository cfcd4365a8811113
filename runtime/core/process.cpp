#include "process.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "HalideRuntime.h"

namespace kiln {

// compiled.cpp: the error handler that keeps Halide's message, and the
// parallel-for hook that runs loops of one task here.
void keep_halide_error(void *, const char *message);
int kiln_do_par_for(void *user_context, halide_task_t task, int min, int size, uint8_t *closure);

namespace {
std::atomic<bool> configured{false};
}  // namespace

void configure_process() {
    halide_set_error_handler(keep_halide_error);
    halide_set_custom_do_par_for(kiln_do_par_for);
    // The pipelines allocate their stages' buffers (megabytes) on every call. By
    // default glibc maps such blocks fresh and unmaps them on free, so every call
    // pays page faults on all of them: keep them in the heap instead.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    configured = true;
}

bool process_configured() { return configured; }

// glibc backs its heap with transparent huge pages only if told so before the
// process starts (the tunable below), hence the restart.
void restart_with_huge_pages(char **argv) {
    const char *tunables = std::getenv("GLIBC_TUNABLES");
    if (std::getenv("KILN_SMALL_PAGES") || (tunables && std::strstr(tunables, "glibc.malloc.hugetlb"))) return;
    const std::string saved = tunables ? tunables : "";
    const std::string value = saved + (saved.empty() ? "" : ":") + "glibc.malloc.hugetlb=1";
    if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
    execv("/proc/self/exe", argv);  // returns only on failure: then go on as we are
    unsetenv("GLIBC_TUNABLES");
    if (tunables) setenv("GLIBC_TUNABLES", saved.c_str(), 1);
}

}  // namespace kiln
