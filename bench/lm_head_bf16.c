/* lm_head_bf16.c — the LM head's backward with its logit gradients in f32 against bf16 (issue 16), at GPT-2 124M's
 * shapes, the two variants alternated in one process (a shared machine drifts by several percent per minute):
 *
 *   head: the cross-entropy (loss and gradient in place over the logits [N, V]) and the two products of the head's
 *         backward, dx = dlogits W and dW += dlogits^T x (W with its weight pack, as training keeps it): f32 dlogits
 *         (ft_cpu_crossentropy_forward_backward + ft_cpu_matmul_bf16_wpack_backward) against bf16 dlogits
 *         (ft_cpu_crossentropy_forward_backward_bf16 + ft_cpu_matmul_bf16_backward_dout16). Each rep copies the same
 *         logits in first (untimed); both variants' dx and dW must be the same bits (checked every rep).
 *   step: a whole bf16 training step (forward, zero_grad + backward, AdamW with weight packs) of a random GPT-2 124M,
 *         B x T tokens, FT_LM_HEAD_DLOGITS=f32 (the f32 path) and unset (bf16) alternating step by step.
 *
 * Pairs A B (the order swapped every pair), the first pair a warm-up; wall seconds per variant (--cpu: process CPU
 * seconds, for a loaded machine, with OMP_WAIT_POLICY=passive), every pair printed, then the medians and the median
 * of the per-pair ratios.
 *
 *   make build/bench/lm_head_bf16 && build/bench/lm_head_bf16 [--B 4] [--T 256] [--pairs 8] [--skip-step] [--skip-head] [--cpu]
 *   [--only 0|1: the head's f32 (0) or bf16 (1) variant only, for a profile] */
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/optim.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static int only = -1; /* --only 0|1: that variant in both slots of a pair (profiles) */
static int cpu_time; /* --cpu: process CPU seconds (a loaded machine; OMP_WAIT_POLICY=passive) instead of wall seconds */
static double now(void) { return bench_now(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC); }

static void report(const char *what, double *t32, double *t16, int n) {
    double *ratio = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) ratio[i] = t16[i] / t32[i];
    double r = bench_median(ratio, n), m32 = bench_median(t32, n), m16 = bench_median(t16, n);
    printf("%s: f32 dlogits median %.4f s, bf16 dlogits median %.4f s, median bf16/f32 of the pairs %.4f (%+.1f%%)\n", what, m32, m16,
           r, (r - 1) * 100);
    free(ratio);
}

static int bench_head(int N, int pairs) {
    const int V = 50257, C = 768;
    ft_rng r;
    ft_rng_seed(&r, 1);
    size_t nl = (size_t)N * V;
    float *logits0 = malloc(sizeof(float) * nl), *logits = malloc(sizeof(float) * nl), *x = malloc(sizeof(float) * (size_t)N * C);
    float *w = malloc(sizeof(float) * (size_t)V * C), *losses = malloc(sizeof(float) * (size_t)N);
    float *dx[2], *dw[2];
    int *tg = malloc(sizeof(int) * (size_t)N);
    void *pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(V, C) + 63) / 64 * 64);
    for (int i = 0; i < 2; i++) {
        dx[i] = malloc(sizeof(float) * (size_t)N * C);
        dw[i] = malloc(sizeof(float) * (size_t)V * C);
    }
    if (!logits0 || !logits || !x || !w || !losses || !tg || !pk || !dx[0] || !dx[1] || !dw[0] || !dw[1]) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nl; i++) logits0[i] = 2.0f * ft_rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] = ft_rng_normal(&r);
    for (size_t i = 0; i < (size_t)V * C; i++) w[i] = 0.02f * ft_rng_normal(&r);
    for (int i = 0; i < N; i++) tg[i] = (int)ft_rng_below(&r, (uint64_t)V);
    ft_gemm_bf16_wpack_init(pk, V, C);
    ft_gemm_bf16_wpack_fill(pk, w);
    double *t[2], *tce[2];
    for (int i = 0; i < 2; i++) {
        t[i] = malloc(sizeof(double) * (size_t)pairs);
        tce[i] = malloc(sizeof(double) * (size_t)pairs);
    }
    int mism = 0;
    for (int p = -1; p < pairs; p++) {
        for (int k = 0; k < 2; k++) {
            int v = only >= 0 ? only : (p & 1) ? 1 - k : k; /* 0: f32 dlogits, 1: bf16 */
            memcpy(logits, logits0, sizeof(float) * nl);
            memset(dw[v], 0, sizeof(float) * (size_t)V * C);
            double t0 = now();
            if (v == 0) ft_cpu_crossentropy_forward_backward(NULL, losses, logits, logits, tg, N, V, 1.0f / N, 0.0f, FT_IGNORE_INDEX);
            else ft_cpu_crossentropy_forward_backward_bf16(NULL, losses, logits, tg, N, V, 1.0f / N, 0.0f, FT_IGNORE_INDEX);
            double t1 = now();
            if (v == 0) ft_cpu_matmul_bf16_wpack_backward(NULL, dx[0], dw[0], NULL, logits, x, w, pk, N, C, V);
            else ft_cpu_matmul_bf16_backward_dout16(NULL, dx[1], dw[1], NULL, (const uint16_t *)(const void *)logits, 2 * V, x, w, pk, N, C, V);
            double t2 = now();
            if (p >= 0) {
                t[v][p] = t2 - t0;
                tce[v][p] = t1 - t0;
            }
            fprintf(stderr, "head pair %d %s: cross-entropy %.4f s, products %.4f s, total %.4f s\n", p, v ? "bf16" : "f32 ", t1 - t0,
                    t2 - t1, t2 - t0);
        }
        mism += memcmp(dx[0], dx[1], sizeof(float) * (size_t)N * C) || memcmp(dw[0], dw[1], sizeof(float) * (size_t)V * C);
    }
    printf("head: N %d, V %d, C %d: dx and dW %s\n", N, V, C, mism ? "DIFFER" : "the same bits");
    report("head cross-entropy", tce[0], tce[1], pairs);
    report("head cross-entropy + products", t[0], t[1], pairs);
    return mism != 0;
}

static int bench_step(int B, int T, int pairs) {
    ft_model_config cfg;
    ft_model *m;
    int rc = ft_model_config_from_json(&cfg, k_bench_gpt2_124m, "GPT-2 124M");
    if (rc == FT_OK) rc = ft_model_create_random(&m, &cfg, 1234, ft_backend_cpu_bf16());
    if (rc < 0) {
        fprintf(stderr, "%s\n", ft_last_error());
        return 1;
    }
    int N = B * T;
    int *ids = malloc(sizeof(int) * (size_t)(N + 1));
    ft_rng r;
    ft_rng_seed(&r, 7);
    for (int i = 0; i <= N; i++) ids[i] = (int)ft_rng_below(&r, (uint64_t)cfg.vocab_size);
    ft_optimizer *o;
    ft_optim_params op = ft_optim_default_params();
    op.lr = 1e-4f;
    rc = ft_model_prepare(m, B, T);
    if (rc == FT_OK) rc = ft_optim_create(&o, m, &op);
    if (rc == FT_OK) rc = ft_optim_set_prepack(o, 1);
    double *t[2] = {malloc(sizeof(double) * (size_t)pairs), malloc(sizeof(double) * (size_t)pairs)};
    for (int p = -1; p < pairs && rc == FT_OK; p++)
        for (int k = 0; k < 2 && rc == FT_OK; k++) {
            int v = (p & 1) ? 1 - k : k;
            if (v == 0) setenv("FT_LM_HEAD_DLOGITS", "f32", 1);
            else unsetenv("FT_LM_HEAD_DLOGITS");
            float loss;
            double t0 = now();
            rc = ft_model_forward(m, ids, ids + 1, NULL, NULL, B, T, &loss);
            if (rc == FT_OK) rc = ft_model_zero_grad(m);
            if (rc == FT_OK) rc = ft_model_backward(m, 0.0f);
            if (rc == FT_OK) rc = ft_optim_step(o, op.lr);
            double dt = now() - t0;
            if (p >= 0) t[v][p] = dt;
            fprintf(stderr, "step pair %d %s: %.4f s, loss %.4f\n", p, v ? "bf16" : "f32 ", dt, loss);
        }
    unsetenv("FT_LM_HEAD_DLOGITS");
    if (rc < 0) {
        fprintf(stderr, "%s\n", ft_last_error());
        return 1;
    }
    char what[64];
    snprintf(what, sizeof what, "step (B %d x T %d)", B, T);
    report(what, t[0], t[1], pairs);
    ft_optim_free(o);
    ft_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int B = 4, T = 256, pairs = 8, head = 1, stepb = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--skip-step")) { stepb = 0; continue; }
        if (!strcmp(argv[i], "--skip-head")) { head = 0; continue; }
        if (!strcmp(argv[i], "--cpu")) { cpu_time = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]); return 2; }
        int v = atoi(argv[++i]);
        if (!strcmp(argv[i - 1], "--B")) B = v;
        else if (!strcmp(argv[i - 1], "--T")) T = v;
        else if (!strcmp(argv[i - 1], "--pairs")) pairs = v;
        else if (!strcmp(argv[i - 1], "--only")) only = v;
        else { fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i - 1]); return 2; }
    }
    if (B <= 0 || T <= 0 || pairs <= 0) return 2;
    int bad = 0;
    if (head) bad |= bench_head(B * T, pairs);
    if (stepb) bad |= bench_step(B, T, pairs);
    return bad;
}
