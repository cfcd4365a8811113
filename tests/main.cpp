// Catch2's main, built twice (tests/CMakeLists.txt): plain, and with
// KILN_CONFIGURE_PROCESS for the tests of the runtime, which then run with the
// kiln command's process-wide settings (runtime/core/process.h).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#ifdef KILN_CONFIGURE_PROCESS
#include "process.h"
#endif

int main(int argc, char **argv) {
#ifdef KILN_CONFIGURE_PROCESS
    kiln::configure_process();
#endif
    return Catch::Session().run(argc, argv);
}
