/* adamw_bw.c — how close the AdamW update is to this machine's memory bandwidth. Over n = 124,439,808
 * floats (GPT-2 124M's parameters) it times:
 *   stream7  the same memory traffic as AdamW with trivial arithmetic (read w, m, v, g; write w, m, v:
 *            28 bytes per element): the bandwidth bound of the update;
 *   triad    STREAM's a = b + s c (12 bytes per element), for comparison with published STREAM numbers;
 *   adamw    ft_cpu_adamw_update (the "cpu" backend's AdamW: AVX-512, all threads);
 *   scalar   the loop ft_cpu_adamw_update ran before it was written out in AVX-512 (the same expression
 *            with sqrtf, which the compiler keeps scalar while errno is on), kept here as the baseline.
 * GB/s = bytes moved / time, best of R runs; each line also gives the time of one update of n elements.
 *
 *   make build/bench/adamw_bw && OMP_WAIT_POLICY=passive build/bench/adamw_bw [--n N] [--reps R] [--cpu] [--threads T]
 *
 * --cpu: seconds of process CPU time instead of wall time (a shared, loaded machine); with T threads the
 * CPU-time GB/s is per core, so multiply by T for the machine's. */
#include "finetune/backend.h"
#include "finetune/ops.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_cpu_clock;
static double now(void) {
    struct timespec ts;
    clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void stream7(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n, float s) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        w[i] = w[i] * s + g[i];
        m[i] = m[i] * s + g[i];
        v[i] = v[i] * s + g[i];
    }
}

static void triad(float *restrict a, const float *restrict b, const float *restrict c, size_t n, float s) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

/* the previous ft_cpu_adamw_update, verbatim in its arithmetic */
static void adamw_scalar(float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                         const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, b1 = h->beta1, b2 = h->beta2, eps = h->eps, bc2 = h->bc2_sqrt;
    const float step = lr / h->bc1;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * (1.0f - lr * wd);
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

static float *arr(size_t n, float x) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "adamw_bw: out of memory\n"); exit(1); }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) p[i] = x + 1e-9f * (float)(i % 1000);
    return p;
}

int main(int argc, char **argv) {
    size_t n = 124439808;
    int reps = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cpu")) g_cpu_clock = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    }
    ft_set_threads(threads);
    float *w = arr(n, 0.02f), *m = arr(n, 0.0f), *v = arr(n, 0.0f), *g = arr(n, 0.001f);
    ft_update_params h = {.lr = 1e-4f, .wd = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .bc1 = 0.1f,
                          .bc2_sqrt = 0.0316f};
    printf("n = %zu floats, %d threads, seconds of %s time, best of %d\n", n, ft_get_threads(),
           g_cpu_clock ? "process CPU" : "wall", reps);
    const char *names[4] = {"stream7 (AdamW's traffic)", "triad (STREAM)", "adamw (ft_cpu_adamw_update)", "scalar (the previous loop)"};
    const double bytes[4] = {28.0, 12.0, 28.0, 28.0};
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < reps + 1; r++) /* kernels interleaved: a change in the machine's load hits each alike */
        for (int k = 0; k < 4; k++) {
            double t0 = now();
            if (k == 0) stream7(w, m, v, g, n, 0.5f);
            if (k == 1) triad(w, m, v, n, 0.5f);
            if (k == 2) ft_cpu_adamw_update(NULL, w, m, v, g, n, &h);
            if (k == 3) adamw_scalar(w, m, v, g, n, &h);
            double dt = now() - t0;
            if (r > 0 && dt < best[k]) best[k] = dt; /* run 0 warms up (page faults) */
        }
    for (int k = 0; k < 4; k++)
        printf("%-30s %8.1f GB/s %9.1f ms\n", names[k], bytes[k] * (double)n / best[k] * 1e-9, best[k] * 1e3);
    printf("adamw at %.0f%% of stream7's bandwidth; %.2fx the previous loop\n", 100.0 * best[0] / best[2], best[3] / best[2]);
    free(w); free(m); free(v); free(g);
    return 0;
}
