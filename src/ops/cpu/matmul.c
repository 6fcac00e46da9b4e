/* cpu/matmul.c — linear layer through OpenBLAS cblas_sgemm (row-major), bias through parallel
 * column-block reductions (deterministic: each column sums its rows in order, in double). */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <cblas.h>
#include <string.h>

/* columns per block of the bias-gradient reduction: 256 double accumulators (32 zmm) stay in registers;
 * one thread, 1024 x 3072: 64 columns 0.58-0.65 ms, 128 0.45-0.47, 256 0.37-0.40, 384 / 512 (spilled)
 * 0.9-1.0 ms */
#define BIAS_CB 256

/* A few rows (decoding several sequences together): out[N,OC] = inp[N,C] @ w[OC,C]^T + bias, streaming
 * the weights from memory once. Each weight row, loaded once into L1, is dotted with every input row (the
 * N input rows stay in L1/L2). OpenBLAS's sgemm packs the whole weight matrix for every call, which at
 * N <= 16 costs more than the products themselves; sgemv would stream the weights N times. */
#define SMALL_N 16
static void matmul_small_n(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
#pragma omp parallel for schedule(static) if ((size_t)OC * C >= FT_PAR_MIN)
    for (int o = 0; o < OC; o++) {
        const float *wr = w + (size_t)o * C;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int c = 0; c < C; c++) s += wr[c] * x[c];
            out[(size_t)n * OC + o] = bias ? bias[o] + s : s;
        }
    }
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC] (bias may be NULL) */
void ft_cpu_matmul_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (N > 1 && N <= SMALL_N) { matmul_small_n(out, inp, w, bias, N, C, OC); return; }
    if (bias) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= FT_PAR_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
    }
    if (N == 1) /* one row (generation): a matrix-vector product, memory bound — sgemv streams w once */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, w, C, inp, 1, bias ? 1.0f : 0.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, bias ? 1.0f : 0.0f, out, OC);
}

/* dinp[N,C] = dout @ w (assigned); dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout (any may be NULL) */
void ft_cpu_matmul_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                            const float *w, int N, int C, int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) ft_cpu_bias_backward(ctx, dbias, dout, N, OC);
}

void ft_cpu_matmul_backward_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                      const float *w, void *pack, int N, int C, int OC) {
    if (C <= 0 || OC <= 0) return;
    if (N <= 0) {
        if (dw) memset(dw, 0, sizeof(float) * (size_t)OC * C);
        return;
    }
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 0.0f, dw, C);
    if (dbias) ft_cpu_bias_backward(ctx, dbias, dout, N, OC);
}

/* out[N,OC] += bias[OC] */
void ft_cpu_bias_add_forward(void *ctx, float *out, const float *bias, int N, int OC) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
#pragma omp simd
        for (int j = 0; j < OC; j++) o[j] += bias[j];
    }
}

/* dbias[OC] += sum_n dout[N,OC]. Column blocks run in parallel; each column sums its rows in order in
 * double (vectorised across the columns of a block), so the bits equal the reference's for any thread
 * count. */
void ft_cpu_bias_backward(void *ctx, float *dbias, const float *dout, int N, int OC) {
    int nb = (OC + BIAS_CB - 1) / BIAS_CB;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= FT_PAR_MIN)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * BIAS_CB, cn = OC - c0 < BIAS_CB ? OC - c0 : BIAS_CB;
        double acc[BIAS_CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC + c0;
#pragma omp simd
            for (int c = 0; c < cn; c++) acc[c] += d[c];
        }
        for (int c = 0; c < cn; c++) dbias[c0 + c] += (float)acc[c];
    }
}
