// The machine's peak single-precision FMA rate: each thread runs independent
// chains of vector fused multiply-adds held in registers (no memory traffic),
// for about half a second; prints the total GFLOP/s (2 FLOPs per lane per FMA).
// Built and run by bench/compare.py:  cc -O2 -march=native peak.c -lpthread
//   ./peak THREADS
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float vec __attribute__((vector_size(64)));  // 16 floats: one AVX-512 register, two AVX2 ones
enum { CHAINS = 12, LANES = 16, ITERATIONS = 1 << 24 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *run(void *out) {
    vec acc[CHAINS], a, b;
    for (int j = 0; j < LANES; j++) a[j] = 0.999999f, b[j] = 1e-7f;
    for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
    // Written out, so that the twelve chains stay in registers.
#define STEP(c) acc[c] = acc[c] * a + b;  // contracted to an FMA
    for (long i = 0; i < ITERATIONS; i++) {
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8) STEP(9) STEP(10) STEP(11)
    }
#undef STEP
    float sum = 0;
    for (int c = 0; c < CHAINS; c++)
        for (int j = 0; j < LANES; j++) sum += acc[c][j];
    *(float *)out = sum;  // keeps the work observable
    return NULL;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "peak: error: THREADS must be in [1, 1024]\n");
        return 1;
    }
    pthread_t *ids = malloc(sizeof(pthread_t) * threads);
    float *sums = malloc(sizeof(float) * threads);
    double best = 0;
    for (int round = 0; round < 5; round++) {
        const double start = now();
        for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, run, &sums[t]);
        for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
        const double gflops = 2.0 * LANES * CHAINS * (double)ITERATIONS * threads / (now() - start) / 1e9;
        if (gflops > best) best = gflops;
    }
    printf("%.1f\n", best);
    free(ids);
    free(sums);
    return 0;
}
