/* bench_util.h — what the step benchmarks of bench/ (grad_zero.c, fuse_step.c, lm_head_bf16.c) share: GPT-2
 * 124M's config.json (random weights of that shape, no download), a clock, and the median of a sample. Header-only,
 * included by each benchmark program (not part of the library). */
#ifndef FT_BENCH_UTIL_H
#define FT_BENCH_UTIL_H
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* GPT-2 124M (dropout off: every arm of an alternation computes the same thing) */
static const char *const k_bench_gpt2_124m =
    "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":50257,\"n_positions\":1024,"
    "\"n_embd\":768,\"n_layer\":12,\"n_head\":12,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";

/* seconds on clock c (CLOCK_MONOTONIC: wall; CLOCK_PROCESS_CPUTIME_ID: all threads' CPU time) */
static inline double bench_now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the median of v[0..n) (v is left as it is; 0 for n <= 0 or no memory) */
static inline double bench_median(const double *v, int n) {
    double *s = n > 0 ? malloc(sizeof(double) * (size_t)n) : NULL;
    if (!s) return 0;
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, bench_cmp);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}
#endif
