/* ref/attention.c — the decoder's attention entry points (causal, packed segments, fused qkv rows) as thin
 * wrappers over the attention family (ref/attn.c), and the KV-cache inference kernel. Scores, softmax
 * sums and dot products accumulate in double. */
#include "finetune/backend.h"
#include "finetune/ops.h"

#include <math.h>

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* fused qkv[B,T,(NH+2*NKV)*HS] rows as the family's strided q, k, v views; causal (+ segments) */
#define FUSED_VIEWS(x) (x), R, (x) + (size_t)NH * HS, R, (x) + (size_t)(NH + NKV) * HS, R

void ft_ref_attention_dropout_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                                      int NKV, int HS, float pdrop, unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS;
    ft_attn_mask mask = {FT_ATTN_CAUSAL | (seg ? FT_ATTN_SEGMENTS : 0), NULL, seg};
    ft_ref_attn_forward(ctx, out, att, FUSED_VIEWS(qkv), &mask, B, T, NH, NKV, HS, pdrop, seed);
}

void ft_ref_attention_dropout_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                                       const int *seg, int B, int T, int NH, int NKV, int HS, float pdrop,
                                       unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS;
    ft_attn_mask mask = {FT_ATTN_CAUSAL | (seg ? FT_ATTN_SEGMENTS : 0), NULL, seg};
    ft_ref_attn_backward(ctx, dqkv, dqkv + (size_t)NH * HS, dqkv + (size_t)(NH + NKV) * HS, scratch, dout, FUSED_VIEWS(qkv), att,
                         &mask, B, T, NH, NKV, HS, pdrop, seed);
}

void ft_ref_attention_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                              int NKV, int HS) {
    ft_ref_attention_dropout_forward(ctx, out, att, qkv, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

void ft_ref_attention_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               const int *seg, int B, int T, int NH, int NKV, int HS) {
    ft_ref_attention_dropout_backward(ctx, dqkv, scratch, dout, qkv, att, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* KV-cache inference: q[T,NH*HS] at positions P..P+T-1, kc/vc rows 0..P+T-1 (stride kv_stride) */
void ft_ref_attention_cached_forward(void *ctx, float *out, const float *q, const float *kc, const float *vc, int kv_stride,
                                     int P, int T, int NH, int NKV, int HS) {
    int G = NH / NKV;
    double scale = 1.0 / sqrt((double)HS);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++) {
            const float *qh = q + (size_t)t * NH * HS + (size_t)h * HS;
            const float *kh = kc + (size_t)(h / G) * HS, *vh = vc + (size_t)(h / G) * HS;
            int L = P + t + 1;
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < L; j++) {
                double s = scale * dotd(qh, kh + (size_t)j * kv_stride, HS);
                if (s > m) m = s;
            }
            for (int j = 0; j < L; j++) sum += exp(scale * dotd(qh, kh + (size_t)j * kv_stride, HS) - m);
            float *o = out + (size_t)t * NH * HS + (size_t)h * HS;
            for (int d0 = 0; d0 < HS; d0 += 16) {
                double acc[16] = {0};
                int dn = HS - d0 < 16 ? HS - d0 : 16;
                for (int j = 0; j < L; j++) {
                    double p = exp(scale * dotd(qh, kh + (size_t)j * kv_stride, HS) - m) / sum;
                    for (int d = 0; d < dn; d++) acc[d] += p * vh[(size_t)j * kv_stride + d0 + d];
                }
                for (int d = 0; d < dn; d++) o[d0 + d] = (float)acc[d];
            }
        }
}
