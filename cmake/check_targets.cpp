// Built and run by cmake/KilnNetwork.cmake at configure time: checks that each
// argument is a target string Halide knows; prints the first that is not and
// exits 1.
#include "Halide.h"

#include <cstdio>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!Halide::Target::validate_target_string(argv[i])) {
            std::printf("'%s' is not a Halide target string (arch-bits-os-feature..., e.g. "
                        "x86-64-linux-sse41-avx-f16c-fma-avx2, arm-64-linux, or host)\n",
                        argv[i]);
            return 1;
        }
    }
    return 0;
}
