/* attn_bf16.c — the bf16 attention of the "cpu-bf16" backend (ft_cpu_attn_bf16_forward / _backward) at a
 * decoder's shapes, timed per layer the way the training step calls it: fused qkv rows (ld = 3 NH HS), causal,
 * a separate att buffer per layer (12 of them, so the backward reads att from memory as in the step), the
 * decoder's [B,NH,T,T] scratch passed to the backward. Prints the median and the minimum, in milliseconds of
 * process CPU time (a shared machine) or wall time, of the forward and of the backward of one layer, and a
 * checksum of the outputs (equal before and after a change that keeps the bits).
 *
 *   make build/bench/attn_bf16 && OMP_NUM_THREADS=1 build/bench/attn_bf16 [--B 4] [--T 256] [--NH 12] [--HS 64] [--reps 24] [--wall]
 *
 * Only public functions: the same source links against an older build/libfinetune.a for a before/after. */
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAYERS 12

static int wall;
static double now(void) {
    struct timespec ts;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int B = 4, T = 256, NH = 12, HS = 64, reps = 24;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--wall")) { wall = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]); return 2; }
        int v = atoi(argv[++i]);
        if (!strcmp(argv[i - 1], "--B")) B = v;
        else if (!strcmp(argv[i - 1], "--T")) T = v;
        else if (!strcmp(argv[i - 1], "--NH")) NH = v;
        else if (!strcmp(argv[i - 1], "--HS")) HS = v;
        else if (!strcmp(argv[i - 1], "--reps")) reps = v;
        else { fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i - 1]); return 2; }
    }
    if (B < 1 || T < 1 || NH < 1 || HS < 1 || reps < 1) { fprintf(stderr, "%s: sizes must be positive\n", argv[0]); return 2; }
    int OC = NH * HS, ld = 3 * OC;
    size_t nq = (size_t)B * T * ld, na = (size_t)B * NH * T * T, no = (size_t)B * T * OC;
    float *qkv = malloc(nq * sizeof(float)), *dqkv = malloc(nq * sizeof(float)), *out = malloc(no * sizeof(float));
    float *dout = malloc(no * sizeof(float)), *scratch = malloc(na * sizeof(float)), *att[LAYERS];
    double *tf = malloc(sizeof(double) * (size_t)reps), *tb = malloc(sizeof(double) * (size_t)reps);
    if (!qkv || !dqkv || !out || !dout || !scratch || !tf || !tb) { fprintf(stderr, "out of memory\n"); return 1; }
    for (int l = 0; l < LAYERS; l++) {
        att[l] = malloc(na * sizeof(float));
        if (!att[l]) { fprintf(stderr, "out of memory\n"); return 1; }
        memset(att[l], 1, na * sizeof(float)); /* touched (not 0: malloc + memset 0 may become calloc): no page faults in the timing */
    }
    unsigned s = 1;
    for (size_t i = 0; i < nq; i++) { s = s * 1664525u + 1013904223u; qkv[i] = ((float)(s >> 9) / 8388608.0f - 0.5f) * 2; }
    for (size_t i = 0; i < no; i++) { s = s * 1664525u + 1013904223u; dout[i] = ((float)(s >> 9) / 8388608.0f - 0.5f) * 0.1f; }
    ft_attn_mask m = {FT_ATTN_CAUSAL, NULL, NULL};
    for (int r = -2; r < reps; r++) { /* two untimed calls first */
        float *a = att[(r + LAYERS) % LAYERS];
        double t0 = now();
        ft_cpu_attn_bf16_forward(NULL, out, a, qkv, ld, qkv + OC, ld, qkv + 2 * OC, ld, &m, B, T, NH, NH, HS, 0.0f, 0);
        double t1 = now();
        ft_cpu_attn_bf16_backward(NULL, dqkv, dqkv + OC, dqkv + 2 * OC, scratch, dout, qkv, ld, qkv + OC, ld, qkv + 2 * OC, ld, a,
                                  &m, B, T, NH, NH, HS, 0.0f, 0);
        double t2 = now();
        if (r >= 0) { tf[r] = t1 - t0; tb[r] = t2 - t1; }
    }
    double cs = 0;
    for (size_t i = 0; i < nq; i++) cs += dqkv[i] * (double)(i % 7 + 1);
    for (size_t i = 0; i < no; i++) cs += out[i];
    qsort(tf, (size_t)reps, sizeof(double), cmp);
    qsort(tb, (size_t)reps, sizeof(double), cmp);
    printf("attn bf16 B %d T %d NH %d HS %d causal, ms of %s per layer: forward median %.3f min %.3f, backward median %.3f "
           "min %.3f, both %.3f (x%d layers %.1f); checksum %.9g\n",
           B, T, NH, HS, wall ? "wall time" : "CPU time", tf[reps / 2] * 1e3, tf[0] * 1e3, tb[reps / 2] * 1e3, tb[0] * 1e3,
           (tf[reps / 2] + tb[reps / 2]) * 1e3, LAYERS, (tf[reps / 2] + tb[reps / 2]) * 1e3 * LAYERS, cs);
    for (int l = 0; l < LAYERS; l++) free(att[l]);
    free(qkv); free(dqkv); free(out); free(dout); free(scratch); free(tf); free(tb);
    return 0;
}
