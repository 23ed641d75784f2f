/* Achievable f32 FMA throughput with 256-bit vectors (AVX2 + FMA): the peak an AVX2-only CPU
 * (or the AVX2 tier forced on an AVX-512 one) can reach, beside ../shared/bench-peers/cpu_peak.c,
 * which needs AVX-512 to build and run.
 * build: gcc -O2 -mavx2 -mfma -pthread benches/cpu_peak_avx2.c -o /tmp/cpu_peak_avx2
 * run:   /tmp/cpu_peak_avx2 [threads]   (one JSON line per measurement, 1..threads threads)
 * 12 independent ymm FMA accumulators per thread cover a 4-cycle latency on 2 pipes (Zen 2-4,
 * Skylake and later); flops = 2 per lane per FMA.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct { long iters; float sink; } job_t;

static void *worker(void *p) {
    job_t *j = (job_t *)p;
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < j->iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    }
    float o[8];
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(o, s);
    j->sink = o[0];
    return NULL;
}

static double gflops(int threads, long iters) {
    pthread_t th[64];
    job_t jobs[64];
    double t = now();
    for (int i = 0; i < threads; i++) {
        jobs[i].iters = iters;
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    return threads * 12.0 * 8 * 2.0 * iters / (now() - t) / 1e9;
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    if (max_threads < 1 || max_threads > 64) {
        fprintf(stderr, "threads: expected 1 to 64, found %s\n", argv[1]);
        return 2;
    }
    gflops(1, 20000000); /* warm up: let the clock ramp */
    for (int r = 0; r < 3; r++)
        for (int th = 1; th <= max_threads; th++)
            printf("{\"what\":\"fma256_gflops\",\"threads\":%d,\"value\":%.1f}\n", th, gflops(th, 100000000));
    return 0;
}
