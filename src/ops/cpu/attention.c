/* cpu/attention.c — causal multi-head attention with grouped K/V heads.
 *
 * Training forward/backward run one (batch, head) — backward: one (batch, kv-head group) — per task
 * in an OpenMP loop. Inside a task the products QK^T, PV, dO V^T, dS K, dS^T Q and P^T dO are
 * cblas_sgemm calls on the causal part only: the T rows are cut into ATT_BLK-row blocks and a block
 * of rows [r0,r1) only touches keys [0,r1). OpenBLAS (OpenMP build) runs single-threaded when called
 * from inside a parallel region, and each task writes memory no other task touches, so the result is
 * the same bits for any thread count or schedule. The backward loops over the query heads of a group
 * inside its task (dK/dV of the shared K/V head are accumulated with beta = 1 after the first head):
 * no races, no atomics.
 *
 * Dropout on the probabilities (the _dropout_ variants, training; backend.h): the forward's PV product
 * reads a per-thread dropped copy of each row block, the backward drops its copy S of P and the dP rows.
 *
 * att layout: att[b,h,t,j] is the probability for j <= t and 0 for j > t (the forward writes the
 * zeros). The backward reads att only at j <= t. */
#include "finetune/backend.h"
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ATT_BLK 32    /* query rows per causal block (32 measured 2-6% faster than 64 at GPT-2 shapes) */
#define KV_CHUNK 256  /* keys per online-softmax chunk in the cached forward */

static inline int imin(int a, int b) { return a < b ? a : b; }

/* p[0..T): scaled scores at j <= t in, probabilities out (masked and j > t set to 0) */
static void softmax_causal_row(float *p, int t, int T, const int *segb) {
    int L = t + 1;
    if (segb) {
        int st = segb[t];
        for (int j = 0; j < L; j++) p[j] = segb[j] == st ? p[j] : -INFINITY;
    }
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < L; j++) m = p[j] > m ? p[j] : m;
    double s = 0.0; /* double sum: keeps the probabilities within an ulp of the exact softmax */
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < L; j++) {
        float e = ft_vexpf(p[j] - m);
        p[j] = e;
        s += e;
    }
    float inv = (float)(1.0 / s);
#pragma omp simd
    for (int j = 0; j < L; j++) p[j] *= inv;
    if (L < T) memset(p + L, 0, (size_t)(T - L) * sizeof(float));
}

/* rows [r0, r1) of the probabilities of pair bh (row stride T, first n columns) through the attention-
 * dropout mask (backend.h) into D (row stride T; may be P). The reference dropout is the single-threaded
 * mask function: this runs inside the (batch, head) parallel loop. */
static void drop_rows(float *D, const float *P, int r0, int r1, int n, int T, size_t bh, float p, unsigned long long seed) {
    for (int t = r0; t < r1; t++)
        ft_ref_dropout_forward(D + (size_t)(t - r0) * T, P + (size_t)(t - r0) * T, (size_t)n, p,
                               ft_attn_dropout_row_seed(seed, bh * (size_t)T + (size_t)t));
}

/* per-thread copy of a block of dropped probabilities [ATT_BLK, T], kept for the life of the thread */
static _Thread_local float *tl_drop;
static _Thread_local size_t tl_drop_n;

static float *drop_buf(size_t n) {
    if (n > tl_drop_n) {
        float *p = realloc(tl_drop, n * sizeof(float));
        if (!p) return NULL;
        tl_drop = p;
        tl_drop_n = n;
    }
    return tl_drop;
}

/* out[B,T,NH*HS], att[B,NH,T,T] from qkv[B,T,(NH+2*NKV)*HS]; seg[B,T] may be NULL. With dropout the PV
 * product of a row block reads a per-thread dropped copy of it; att keeps the undropped probabilities. */
void ft_cpu_attention_dropout_forward(float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                                      int NKV, int HS, float pdrop, unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS, G = NH / NKV, OC = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(|: failed) if ((size_t)B * NH * T * T * HS >= FT_PAR_MIN)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, g = h / G;
        const float *base = qkv + (size_t)b * T * R;
        const float *q = base + (size_t)h * HS, *k = base + (size_t)(NH + g) * HS, *v = base + (size_t)(NH + NKV + g) * HS;
        const int *segb = seg ? seg + (size_t)b * T : NULL;
        float *P = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * OC + (size_t)h * HS;
        for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
            int r1 = imin(T, r0 + ATT_BLK), M = r1 - r0;
            float *Pb = P + (size_t)r0 * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, r1, HS, scale, q + (size_t)r0 * R, R, k, R,
                        0.0f, Pb, T);
            for (int t = r0; t < r1; t++) softmax_causal_row(P + (size_t)t * T, t, T, segb);
            const float *Pv = Pb;
            if (pdrop > 0) {
                float *D = drop_buf((size_t)ATT_BLK * T);
                if (!D) { failed = 1; break; }
                drop_rows(D, Pb, r0, r1, r1, T, (size_t)bh, pdrop, seed);
                Pv = D;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, HS, r1, 1.0f, Pv, T, v, R, 0.0f,
                        o + (size_t)r0 * OC, OC);
        }
    }
    /* out of memory for the dropped copy: poison the output so the trainer's finite checks stop the run */
    if (failed) for (size_t i = 0; i < (size_t)B * T * OC; i++) out[i] = NAN;
}

void ft_cpu_attention_forward(float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                              int NKV, int HS) {
    ft_cpu_attention_dropout_forward(out, att, qkv, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* dqkv[B,T,(NH+2*NKV)*HS] assigned; scratch[B,NH,T,T] workspace. With dropout, dV reads the dropped
 * probabilities (S is the dropped copy of P) and d(dropped P) goes through the same mask before the
 * softmax backward, which reads the undropped P. */
void ft_cpu_attention_dropout_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                                       const int *seg, int B, int T, int NH, int NKV, int HS, float pdrop,
                                       unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS, G = NH / NKV, OC = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static) if ((size_t)B * NH * T * T * HS >= FT_PAR_MIN)
    for (int bg = 0; bg < B * NKV; bg++) {
        int b = bg / NKV, g = bg % NKV;
        const float *base = qkv + (size_t)b * T * R;
        float *dbase = dqkv + (size_t)b * T * R;
        const float *k = base + (size_t)(NH + g) * HS, *v = base + (size_t)(NH + NKV + g) * HS;
        float *dk = dbase + (size_t)(NH + g) * HS, *dv = dbase + (size_t)(NH + NKV + g) * HS;
        for (int h = g * G; h < (g + 1) * G; h++) {
            float beta = h == g * G ? 0.0f : 1.0f; /* first head of the group assigns dk/dv */
            const float *q = base + (size_t)h * HS, *dO = dout + (size_t)b * T * OC + (size_t)h * HS;
            float *dq = dbase + (size_t)h * HS;
            const float *P = att + ((size_t)b * NH + h) * T * T;
            float *S = scratch + ((size_t)b * NH + h) * T * T;
            /* S = P with exact zeros above the diagonal (up to the end of each row's block) */
            for (int t = 0; t < T; t++) {
                int r1 = imin(T, (t / ATT_BLK + 1) * ATT_BLK);
                memcpy(S + (size_t)t * T, P + (size_t)t * T, (size_t)(t + 1) * sizeof(float));
                memset(S + (size_t)t * T + t + 1, 0, (size_t)(r1 - t - 1) * sizeof(float));
                if (pdrop > 0) drop_rows(S + (size_t)t * T, S + (size_t)t * T, t, t + 1, t + 1, T, (size_t)b * NH + h, pdrop, seed);
            }
            /* dV[c0:c1] (+)= P[c0:T, c0:c1]^T dO[c0:T] */
            for (int c0 = 0; c0 < T; c0 += ATT_BLK) {
                int c1 = imin(T, c0 + ATT_BLK);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, HS, T - c0, 1.0f,
                            S + (size_t)c0 * T + c0, T, dO + (size_t)c0 * OC, OC, beta, dv + (size_t)c0 * R, R);
            }
            /* dP = dO V^T on the causal blocks, then dS = P * (dP - rowsum(P * dP)) in place */
            for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
                int r1 = imin(T, r0 + ATT_BLK);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, HS, 1.0f, dO + (size_t)r0 * OC, OC,
                            v, R, 0.0f, S + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) {
                    const float *p = P + (size_t)t * T;
                    float *ds = S + (size_t)t * T;
                    if (pdrop > 0) drop_rows(ds, ds, t, t + 1, t + 1, T, (size_t)b * NH + h, pdrop, seed);
                    double dd = 0.0;
#pragma omp simd reduction(+ : dd)
                    for (int j = 0; j <= t; j++) dd += (double)p[j] * ds[j];
                    float dot = (float)dd;
#pragma omp simd
                    for (int j = 0; j <= t; j++) ds[j] = p[j] * (ds[j] - dot);
                    memset(ds + t + 1, 0, (size_t)(r1 - t - 1) * sizeof(float));
                }
                /* dQ[r0:r1] = scale * dS[r0:r1, 0:r1] K[0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, HS, r1, scale, S + (size_t)r0 * T, T,
                            k, R, 0.0f, dq + (size_t)r0 * R, R);
            }
            /* dK[c0:c1] (+)= scale * dS[c0:T, c0:c1]^T Q[c0:T] */
            for (int c0 = 0; c0 < T; c0 += ATT_BLK) {
                int c1 = imin(T, c0 + ATT_BLK);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, HS, T - c0, scale,
                            S + (size_t)c0 * T + c0, T, q + (size_t)c0 * R, R, beta, dk + (size_t)c0 * R, R);
            }
        }
    }
}

void ft_cpu_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               const int *seg, int B, int T, int NH, int NKV, int HS) {
    ft_cpu_attention_dropout_backward(dqkv, scratch, dout, qkv, att, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* KV-cache inference: q[T,NH*HS] at positions P..P+T-1; kc/vc rows 0..P+T-1 with row stride kv_stride.
 * One (query row, head) per task; keys in KV_CHUNK chunks with an online softmax (running max and sum,
 * the output row itself is the accumulator), so no workspace is needed. */
void ft_cpu_attention_cached_forward(float *out, const float *q, const float *kc, const float *vc, int kv_stride,
                                     int P, int T, int NH, int NKV, int HS) {
    int G = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2) schedule(dynamic) if ((size_t)T * NH * (P + T) * HS >= FT_PAR_MIN)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++) {
            const float *qh = q + (size_t)t * NH * HS + (size_t)h * HS;
            const float *kh = kc + (size_t)(h / G) * HS, *vh = vc + (size_t)(h / G) * HS;
            float *o = out + (size_t)t * NH * HS + (size_t)h * HS;
            float s[KV_CHUNK];
            float m = -INFINITY, l = 0.0f;
            int L = P + t + 1;
            memset(o, 0, (size_t)HS * sizeof(float));
            for (int j0 = 0; j0 < L; j0 += KV_CHUNK) {
                int jn = imin(KV_CHUNK, L - j0);
                float cm = -INFINITY;
                for (int j = 0; j < jn; j++) {
                    const float *kj = kh + (size_t)(j0 + j) * kv_stride;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int d = 0; d < HS; d++) dot += qh[d] * kj[d];
                    s[j] = dot * scale;
                    cm = s[j] > cm ? s[j] : cm;
                }
                float mn = cm > m ? cm : m;
                if (j0 > 0) {
                    float corr = ft_vexpf(m - mn);
                    l *= corr;
#pragma omp simd
                    for (int d = 0; d < HS; d++) o[d] *= corr;
                }
                float cs = 0.0f;
#pragma omp simd reduction(+ : cs)
                for (int j = 0; j < jn; j++) {
                    s[j] = ft_vexpf(s[j] - mn);
                    cs += s[j];
                }
                l += cs;
                for (int j = 0; j < jn; j++) {
                    const float *vj = vh + (size_t)(j0 + j) * kv_stride;
                    float w = s[j];
#pragma omp simd
                    for (int d = 0; d < HS; d++) o[d] += w * vj[d];
                }
                m = mn;
            }
            float inv = 1.0f / l;
#pragma omp simd
            for (int d = 0; d < HS; d++) o[d] *= inv;
        }
}
