// Process-wide settings: what the kiln command sets for its whole process, and
// what a program built on kiln's libraries gets only if it asks. Nothing in
// kiln's libraries changes the process on its own: without configure_process(),
// Halide's defaults and glibc's malloc settings stay as the program has them.
#pragma once

namespace kiln {

// Opts this process in to kiln's settings; call once, early, before any
// pipeline runs (the kiln command and kiln's tests do, first thing):
//  - Halide's error handler keeps a failing pipeline's message, and the call
//    that failed throws it as an exception (Halide's default prints it and
//    aborts the process);
//  - Halide's parallel loops of one task run on the calling thread, without
//    waking the thread pool; and while the shards of a training step or of
//    inference run on their own threads, each shard's loops run serially on
//    its thread (without this, the shards share Halide's pool, more slowly);
//  - glibc's malloc keeps blocks up to 32 MiB in its heap and trims it above
//    256 MiB (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD), so that the buffers
//    the pipelines allocate on every call are not mapped and page-faulted anew.
// These replace the program's own Halide error handler and parallel-for hook.
void configure_process();

// Whether configure_process() has run.
bool process_configured();

// Starts the program again, once, with glibc's tunable glibc.malloc.hugetlb=1
// (execv of /proc/self/exe with `argv`), so that its heap is backed by
// transparent huge pages: page faults took a fifth of a lenet5 epoch without.
// Returns, doing nothing, when the tunable is already set or KILN_SMALL_PAGES is
// set, and when the restart fails. Call it first thing in main, before threads
// or anything the restart would lose.
void restart_with_huge_pages(char **argv);

}  // namespace kiln
