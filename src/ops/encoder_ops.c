/* encoder_ops.c — the kernels the encoders (src/models/encoder.c) add: bidirectional attention with
 * a key padding mask, exact (erf) GELU, tanh and ReLU, forward and backward. Contracts in encoder.h.
 * ft_ref_*: plain loops accumulating in double (the tests' ground truth); ft_cpu_*: float32, OpenMP
 * over (batch, head) pairs / elements, inner loops written for the vectoriser. */
#include "finetune/encoder.h"
#include "finetune/ops.h"

#include "cpu/fast_math.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ reference */

/* mk[0..T) = the attention-dropout mask of probability row `row` as dropout_forward applies it:
 * 1/(1-p) where the entry is kept, 0 where it drops (backend.h, ft_attn_dropout_row_seed) */
static void ref_drop_row(float *mk, int T, size_t row, float p, unsigned long long seed) {
    for (int j = 0; j < T; j++) mk[j] = 1.0f;
    ft_ref_dropout_forward(mk, mk, (size_t)T, p, ft_attn_dropout_row_seed(seed, row));
}

void ft_ref_enc_attention_dropout_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                          const int *mask, int B, int T, int NH, int HS, float p, unsigned long long seed) {
    int C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        const int *mb = mask ? mask + (size_t)b * T : NULL;
        int any = 0;
        for (int j = 0; j < T; j++) any |= !mb || mb[j];
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                double s[T > 0 ? T : 1], mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    if (any && mb && !mb[j]) { s[j] = -INFINITY; continue; }
                    const float *kj = k + ((size_t)b * T + j) * C + h * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)qt[i] * kj[i];
                    s[j] = any ? d * scale : 0.0;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < T; j++) { s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - mx); sum += s[j]; }
                for (int j = 0; j < T; j++) a[j] = (float)(s[j] / sum);
                float mk[T > 0 ? T : 1];
                if (p > 0) ref_drop_row(mk, T, ((size_t)b * NH + h) * T + t, p, seed);
                float *o = out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0;
                    if (p > 0)
                        for (int j = 0; j < T; j++) acc += s[j] / sum * mk[j] * v[((size_t)b * T + j) * C + h * HS + i];
                    else
                        for (int j = 0; j < T; j++) acc += s[j] / sum * v[((size_t)b * T + j) * C + h * HS + i];
                    o[i] = (float)acc;
                }
            }
    }
}

/* with dropout: dv from the dropped probabilities, and d(dropped P) -> dP through the same mask before
 * the softmax backward, which uses the undropped P */
void ft_ref_enc_attention_dropout_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                           const float *v, const float *att, int B, int T, int NH, int HS, float p,
                                           unsigned long long seed) {
    int C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    memset(dq, 0, sizeof(float) * (size_t)B * T * C);
    memset(dk, 0, sizeof(float) * (size_t)B * T * C);
    memset(dv, 0, sizeof(float) * (size_t)B * T * C);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                const float *dot = dout + ((size_t)b * T + t) * C + h * HS;
                float mk[T > 0 ? T : 1];
                if (p > 0) ref_drop_row(mk, T, ((size_t)b * NH + h) * T + t, p, seed);
                double da[T > 0 ? T : 1], dot_sum = 0;
                for (int j = 0; j < T; j++) {
                    const float *vj = v + ((size_t)b * T + j) * C + h * HS;
                    float *dvj = dv + ((size_t)b * T + j) * C + h * HS;
                    double d = 0;
                    if (p > 0) {
                        double pd = (double)a[j] * mk[j];
                        for (int i = 0; i < HS; i++) { d += (double)dot[i] * vj[i]; dvj[i] += (float)(pd * dot[i]); }
                        d *= mk[j];
                    } else {
                        for (int i = 0; i < HS; i++) { d += (double)dot[i] * vj[i]; dvj[i] += (float)((double)a[j] * dot[i]); }
                    }
                    da[j] = d;
                    dot_sum += a[j] * d;
                }
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *dqt = dq + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++)
                        acc += a[j] * (da[j] - dot_sum) * scale * k[((size_t)b * T + j) * C + h * HS + i];
                    dqt[i] = (float)acc;
                }
                for (int j = 0; j < T; j++) {
                    double ds = a[j] * (da[j] - dot_sum) * scale;
                    if (ds == 0) continue;
                    float *dkj = dk + ((size_t)b * T + j) * C + h * HS;
                    for (int i = 0; i < HS; i++) dkj[i] += (float)(ds * qt[i]);
                }
            }
}

void ft_ref_enc_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    ft_ref_enc_attention_dropout_forward(out, att, q, k, v, mask, B, T, NH, HS, 0.0f, 0);
}

void ft_ref_enc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    ft_ref_enc_attention_dropout_backward(dq, dk, dv, dout, q, k, v, att, B, T, NH, HS, 0.0f, 0);
}

#define FT_SQRT1_2 0.70710678118654752440
#define FT_INV_SQRT_2PI 0.39894228040143267794

void ft_ref_gelu_erf_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) { double x = inp[i]; out[i] = (float)(0.5 * x * (1.0 + erf(x * FT_SQRT1_2))); }
}

void ft_ref_gelu_erf_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double g = 0.5 * (1.0 + erf(x * FT_SQRT1_2)) + x * FT_INV_SQRT_2PI * exp(-0.5 * x * x);
        dinp[i] = (float)(dout[i] * g);
    }
}

void ft_ref_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)tanh((double)inp[i]);
}

void ft_ref_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = (float)(dout[i] * (1.0 - (double)out[i] * out[i]));
}

void ft_ref_relu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_ref_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}

/* ------------------------------------------------------------ optimised CPU */

/* per-thread scratch for a [T, T] matrix (dA in backward, the dropped probabilities in forward), kept
 * for the life of the thread (grown when T grows) */
static _Thread_local float *tl_scratch;
static _Thread_local size_t tl_scratch_n;

static float *scratch(size_t n) {
    if (n > tl_scratch_n) {
        float *p = realloc(tl_scratch, n * sizeof(float));
        if (!p) return NULL;
        tl_scratch = p;
        tl_scratch_n = n;
    }
    return tl_scratch;
}

/* rows [0, T) of the probabilities A[T, T] of pair bh through the attention-dropout mask (backend.h),
 * into D (D may be A: in place). The reference dropout is the single-threaded mask function: this runs
 * inside the (b, h) parallel loop. */
static void drop_rows(float *D, const float *A, int T, size_t bh, float p, unsigned long long seed) {
    for (int t = 0; t < T; t++)
        ft_ref_dropout_forward(D + (size_t)t * T, A + (size_t)t * T, (size_t)T, p, ft_attn_dropout_row_seed(seed, bh * T + t));
}

/* Per (batch, head) the attention is five small matrix products on strided views of q, k, v
 * ([T, HS] with row stride C), done by sgemm; the (b, h) pairs run in parallel (OpenBLAS runs
 * single-threaded inside an OpenMP region) and own disjoint columns of the outputs. With dropout the
 * PV product reads a per-thread copy of the dropped probabilities; att keeps the undropped ones. */
void ft_cpu_enc_attention_dropout_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                          const int *mask, int B, int T, int NH, int HS, float p, unsigned long long seed) {
    int C = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    int failed = 0;
#pragma omp parallel for collapse(2) schedule(static) reduction(|: failed)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int *mb = mask ? mask + (size_t)b * T : NULL;
            int any = 0;
            for (int j = 0; j < T; j++) any |= !mb || mb[j];
            size_t off = (size_t)b * T * C + (size_t)h * HS;
            float *A = att + ((size_t)b * NH + h) * T * T;
            /* S = scale Q K^T; a row with no real key attends uniformly (all scores 0) */
            if (any) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q + off, C, k + off, C, 0.0f, A, T);
            else memset(A, 0, sizeof(float) * (size_t)T * T);
            for (int t = 0; t < T; t++) {
                float *a = A + (size_t)t * T, mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if (any && mb && !mb[j]) a[j] = -INFINITY;
                    if (a[j] > mx) mx = a[j];
                }
                float sum = 0;
                for (int j = 0; j < T; j++) { a[j] = a[j] == -INFINITY ? 0.0f : expf(a[j] - mx); sum += a[j]; }
                float inv = 1.0f / sum;
                for (int j = 0; j < T; j++) a[j] *= inv;
            }
            /* O = dropout(A) V */
            const float *Pv = A;
            if (p > 0) {
                float *D = scratch((size_t)T * T);
                if (!D) { failed = 1; continue; }
                drop_rows(D, A, T, (size_t)b * NH + h, p, seed);
                Pv = D;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, Pv, T, v + off, C, 0.0f, out + off, C);
        }
    /* out of memory for the T x T copy: poison the output so the trainer's finite checks stop the run */
    if (failed) for (size_t i = 0; i < (size_t)B * T * C; i++) out[i] = NAN;
}

void ft_cpu_enc_attention_dropout_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                           const float *v, const float *att, int B, int T, int NH, int HS, float p,
                                           unsigned long long seed) {
    int C = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    int failed = 0;
#pragma omp parallel for collapse(2) schedule(static) reduction(|: failed)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C + (size_t)h * HS, bh = (size_t)b * NH + h;
            const float *A = att + bh * T * T;
            float *dA = scratch((size_t)T * T);
            if (!dA) { failed = 1; continue; }
            /* dV = dropout(A)^T dO (the dropped copy is built in dA's buffer, then overwritten);  dA = dO V^T */
            const float *Pv = A;
            if (p > 0) { drop_rows(dA, A, T, bh, p, seed); Pv = dA; }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, Pv, T, dout + off, C, 0.0f, dv + off, C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dout + off, C, v + off, C, 0.0f, dA, T);
            /* d(dropped A) -> dA through the same mask */
            if (p > 0) drop_rows(dA, dA, T, bh, p, seed);
            /* dS = scale * A (dA - rowsum(A dA)) */
            for (int t = 0; t < T; t++) {
                const float *a = A + (size_t)t * T;
                float *d = dA + (size_t)t * T, dot = 0;
                for (int j = 0; j < T; j++) dot += a[j] * d[j];
                for (int j = 0; j < T; j++) d[j] = scale * a[j] * (d[j] - dot);
            }
            /* dQ = dS K;  dK = dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, dA, T, k + off, C, 0.0f, dq + off, C);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, dA, T, q + off, C, 0.0f, dk + off, C);
        }
    /* out of memory for a T x T scratch: fall back to zero gradients is not acceptable; poison them so the
     * trainer's finite-gradient check stops the run with a message */
    if (failed) for (size_t i = 0; i < (size_t)B * T * C; i++) dq[i] = NAN;
}

void ft_cpu_enc_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    ft_cpu_enc_attention_dropout_forward(out, att, q, k, v, mask, B, T, NH, HS, 0.0f, 0);
}

void ft_cpu_enc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    ft_cpu_enc_attention_dropout_backward(dq, dk, dv, dout, q, k, v, att, B, T, NH, HS, 0.0f, 0);
}

void ft_cpu_gelu_erf_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { float x = inp[i]; out[i] = 0.5f * x * (1.0f + ft_erff_fast(x * (float)FT_SQRT1_2)); }
}

void ft_cpu_gelu_erf_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float g = 0.5f * (1.0f + ft_erff_fast(x * (float)FT_SQRT1_2)) + x * (float)FT_INV_SQRT_2PI * ft_expf_fast(-0.5f * x * x);
        dinp[i] = dout[i] * g;
    }
}

void ft_cpu_tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void ft_cpu_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

void ft_cpu_relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_cpu_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}
