/* grad_zero.c — issue 16's gradient zeroing, before and after, in ONE process (a shared machine drifts by
 * several percent from minute to minute, so two builds are never compared minutes apart): the training step of
 * `finetune bench` (random GPT-2 124M, batch 4 x 256, AdamW with the bf16 weight packs) under the three ways
 * zero_grad can clear (src/models/model_internal.h, ft__grad_zero_mode_set):
 *
 *   memset1  one memset of the whole gradient arena on one thread, every product accumulates (before issue 16)
 *   memset   the same memset split over the OpenMP threads with streaming stores
 *   assign   the linear weights' gradients pending, assigned by the backward's products (the default)
 *
 * Each round runs every mode for two steps and keeps the second (the first, after a switch, is a warm-up);
 * the order of the modes rotates from round to round. Prints per mode the median over the rounds of: the
 * step, zero_grad, backward, the optimizer (wall ms), the step's and zero_grad + backward's process CPU seconds,
 * and the medians of the per-round ratios of each mode's step (wall, CPU) and zero_grad + backward (CPU) over assign's.
 *
 *   make build/bench/grad_zero && OMP_WAIT_POLICY=passive build/bench/grad_zero [--precision bf16|f32] [--rounds 8]
 *                                                           [--B 4] [--T 256] [--no-weight-packs]
 *   build/bench/grad_zero --clear     475 MiB cleared by one memset against the threads' streaming stores, alternating */
#include "finetune/backend.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/status.h"
#include "models/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

enum { MODES = 3, FIELDS = 6 };   /* step, zero_grad, backward, optimizer (wall), step CPU, zero_grad + backward CPU */
static const int k_mode[MODES] = {FT__GRAD_ZERO_MEMSET1, FT__GRAD_ZERO_MEMSET, FT__GRAD_ZERO_ASSIGN};
static const char *k_name[MODES] = {"memset1", "memset", "assign"};

#define CHECK(x) do { int rc_ = (x); if (rc_ < 0) { fprintf(stderr, "grad_zero: %s: %s\n", #x, ft_last_error()); return 1; } } while (0)

/* --clear: one memset of n bytes against the threads' streaming stores (ft_params_settle_grads on one pending
 * gradient of n bytes), alternating, reps times each; prints the medians (wall ms) */
static int clear_only(size_t n, int reps) {
    float *buf = aligned_alloc(64, n);
    if (!buf) return 1;
    memset(buf, 1, n);
    ft_param p;
    memset(&p, 0, sizeof p);
    p.t.dtype = FT_F32;
    p.t.ndim = 1;
    p.t.shape[0] = (int64_t)(n / sizeof(float));
    p.grad = buf;
    double *t = malloc(sizeof(double) * 2 * (size_t)reps);
    for (int r = -1; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            double t0 = bench_now(CLOCK_MONOTONIC);
            if (k == 0) memset(buf, 0, n);
            else { p.grad_pending = 1; ft_params_settle_grads(&p, 1); }
            double dt = bench_now(CLOCK_MONOTONIC) - t0;
            if (r >= 0) t[k * reps + r] = dt;
        }
    printf("clear %.0f MiB, %d threads: memset %.2f ms, threads + streaming stores %.2f ms (medians of %d)\n", (double)n / 1048576.0,
           ft_get_threads(), bench_median(t, reps) * 1e3, bench_median(t + reps, reps) * 1e3, reps);
    free(t);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    const char *precision = "bf16";
    int rounds = 8, B = 4, T = 256, packs = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-weight-packs")) { packs = 0; continue; }
        if (!strcmp(argv[i], "--clear")) return clear_only((size_t)475 << 20, 20);
        if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]); return 2; }
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--precision")) precision = v;
        else if (!strcmp(k, "--rounds")) rounds = atoi(v);
        else if (!strcmp(k, "--B")) B = atoi(v);
        else if (!strcmp(k, "--T")) T = atoi(v);
        else { fprintf(stderr, "%s: unknown option %s\n", argv[0], k); return 2; }
    }
    if (rounds < 1 || B < 1 || T < 2) return 2;
    const ft_backend *be;
    CHECK(ft_backend_for_precision(precision, &be));
    ft_model_config cfg;
    CHECK(ft_model_config_from_json(&cfg, k_bench_gpt2_124m, "GPT-2 124M"));
    ft_model *m;
    CHECK(ft_model_create_random(&m, &cfg, 1234, be));
    CHECK(ft_model_prepare(m, B, T));
    ft_optim_params op = ft_optim_default_params();
    op.lr = 1e-4f;
    ft_optimizer *o;
    CHECK(ft_optim_create(&o, m, &op));
    if (packs) CHECK(ft_optim_set_prepack(o, 1));
    int N = B * T, *ids = malloc(sizeof(int) * (size_t)(N + 1));
    for (int i = 0; i <= N; i++) ids[i] = (int)(((uint64_t)i * 2654435761u) % (uint64_t)cfg.vocab_size);
    fprintf(stderr, "grad_zero: GPT-2 124M, %s, batch %d x %d, %d threads, weight packs %s, gradients %.0f MiB, %d rounds\n",
            precision, B, T, ft_get_threads(), packs ? "on" : "off", (double)ft_model_grad_bytes(m) / 1048576.0, rounds);

    double *t = calloc((size_t)rounds * MODES * FIELDS, sizeof(double));   /* [rounds][MODES][FIELDS] */
    float loss = 0;
    for (int r = -1; r < rounds; r++) {   /* round -1: warm-up of everything */
        for (int j = 0; j < MODES; j++) {
            int k = (j + (r < 0 ? 0 : r)) % MODES;
            ft__grad_zero_mode_set(k_mode[k]);
            for (int rep = 0; rep < 2; rep++) {
                double c0 = bench_now(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now(CLOCK_MONOTONIC);
                CHECK(ft_model_forward(m, ids, ids + 1, NULL, NULL, B, T, &loss));
                double t1 = bench_now(CLOCK_MONOTONIC), cb0 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
                CHECK(ft_model_zero_grad(m));
                double t2 = bench_now(CLOCK_MONOTONIC);
                CHECK(ft_model_backward(m, 0.0f));
                double t3 = bench_now(CLOCK_MONOTONIC), cb1 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
                CHECK(ft_optim_step(o, op.lr));
                double t4 = bench_now(CLOCK_MONOTONIC), c1 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
                if (r < 0 || rep == 0) continue;
                double *f = t + ((size_t)r * MODES + k) * FIELDS;
                f[0] = t4 - t0; f[1] = t2 - t1; f[2] = t3 - t2; f[3] = t4 - t3; f[4] = c1 - c0; f[5] = cb1 - cb0;
            }
        }
        if (r >= 0) {
            const double *a = t + ((size_t)r * MODES + 2) * FIELDS;
            fprintf(stderr, "grad_zero: round %d: step ms", r + 1);
            for (int k = 0; k < MODES; k++) fprintf(stderr, " %s %.1f", k_name[k], t[((size_t)r * MODES + k) * FIELDS] * 1e3);
            fprintf(stderr, "  (/assign: memset1 %.4f, memset %.4f), loss %.4f\n", t[((size_t)r * MODES) * FIELDS] / a[0],
                    t[((size_t)r * MODES + 1) * FIELDS] / a[0], loss);
        }
    }
    ft__grad_zero_mode_set(FT__GRAD_ZERO_ASSIGN);
    printf("%-8s %9s %9s %9s %9s %9s %9s %12s %12s %12s\n", "mode", "step_ms", "zero_ms", "bwd_ms", "optim_ms", "cpu_s", "zbwd_cpu", "step/assign",
           "cpu/assign", "zbwd/assign");
    double *col = malloc(sizeof(double) * (size_t)rounds), *ra = malloc(sizeof(double) * (size_t)rounds), *rc = malloc(sizeof(double) * (size_t)rounds);
    double *rb = malloc(sizeof(double) * (size_t)rounds);
    for (int k = 0; k < MODES; k++) {
        double med[FIELDS];
        for (int f = 0; f < FIELDS; f++) {
            for (int r = 0; r < rounds; r++) col[r] = t[((size_t)r * MODES + k) * FIELDS + f];
            med[f] = bench_median(col, rounds);
        }
        for (int r = 0; r < rounds; r++) {
            ra[r] = t[((size_t)r * MODES + k) * FIELDS] / t[((size_t)r * MODES + 2) * FIELDS];
            rc[r] = t[((size_t)r * MODES + k) * FIELDS + 4] / t[((size_t)r * MODES + 2) * FIELDS + 4];
            rb[r] = t[((size_t)r * MODES + k) * FIELDS + 5] / t[((size_t)r * MODES + 2) * FIELDS + 5];
        }
        printf("%-8s %9.1f %9.2f %9.1f %9.1f %9.3f %9.3f %12.4f %12.4f %12.4f\n", k_name[k], med[0] * 1e3, med[1] * 1e3, med[2] * 1e3,
               med[3] * 1e3, med[4], med[5], bench_median(ra, rounds), bench_median(rc, rounds), bench_median(rb, rounds));
    }
    free(col); free(ra); free(rc); free(rb); free(t); free(ids);
    ft_optim_free(o);
    ft_model_free(m);
    return 0;
}
