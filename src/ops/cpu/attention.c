/* cpu/attention.c — the decoder's attention entry points (causal, packed segments, fused qkv rows) as thin
 * wrappers over the attention family (cpu/attn.c: blocked causal sgemm, OpenMP over heads, deterministic),
 * and the KV-cache inference kernel (online softmax over key chunks, no workspace). */
#include "finetune/backend.h"
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <math.h>
#include <string.h>

#define KV_CHUNK 256 /* keys per online-softmax chunk in the cached forward */

static inline int imin(int a, int b) { return a < b ? a : b; }

/* fused qkv[B,T,(NH+2*NKV)*HS] rows as the family's strided q, k, v views; causal (+ segments) */
#define FUSED_VIEWS(x) (x), R, (x) + (size_t)NH * HS, R, (x) + (size_t)(NH + NKV) * HS, R

void ft_cpu_attention_dropout_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                                      int NKV, int HS, float pdrop, unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS;
    ft_attn_mask mask = {FT_ATTN_CAUSAL | (seg ? FT_ATTN_SEGMENTS : 0), NULL, seg};
    ft_cpu_attn_forward(ctx, out, att, FUSED_VIEWS(qkv), &mask, B, T, NH, NKV, HS, pdrop, seed);
}

void ft_cpu_attention_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                              int NKV, int HS) {
    ft_cpu_attention_dropout_forward(ctx, out, att, qkv, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* dqkv assigned; scratch[B,NH,T,T] workspace */
void ft_cpu_attention_dropout_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                                       const int *seg, int B, int T, int NH, int NKV, int HS, float pdrop,
                                       unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS;
    ft_attn_mask mask = {FT_ATTN_CAUSAL | (seg ? FT_ATTN_SEGMENTS : 0), NULL, seg};
    ft_cpu_attn_backward(ctx, dqkv, dqkv + (size_t)NH * HS, dqkv + (size_t)(NH + NKV) * HS, scratch, dout, FUSED_VIEWS(qkv), att,
                         &mask, B, T, NH, NKV, HS, pdrop, seed);
}

void ft_cpu_attention_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               const int *seg, int B, int T, int NH, int NKV, int HS) {
    ft_cpu_attention_dropout_backward(ctx, dqkv, scratch, dout, qkv, att, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* KV-cache inference: q[T,NH*HS] at positions P..P+T-1; kc/vc rows 0..P+T-1 with row stride kv_stride.
 * One (query row, head) per task; keys in KV_CHUNK chunks with an online softmax (running max and sum,
 * the output row itself is the accumulator), so no workspace is needed. */
void ft_cpu_attention_cached_forward(void *ctx, float *out, const float *q, const float *kc, const float *vc, int kv_stride,
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
