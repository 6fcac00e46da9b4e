/* ref/attention.c — scalar reference causal multi-head attention with grouped K/V heads,
 * its backward, and the KV-cache inference variant. Scores, softmax sums and dot products
 * are accumulated in double; probabilities are stored in float (att). The _dropout_ variants add the
 * training-mode dropout on the probabilities (backend.h); p = 0 is the plain kernel. */
#include "finetune/backend.h"
#include "finetune/ops.h"

#include <math.h>

/* query t may attend key j: causal, and within the same packed segment when seg is given */
static int att_valid(const int *segb, int t, int j) { return j <= t && (!segb || segb[j] == segb[t]); }

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* mk[0..T) = the attention-dropout mask of probability row `row`: 1/(1-p) kept, 0 dropped (backend.h) */
static void drop_row(float *mk, int T, size_t row, float p, unsigned long long seed) {
    for (int j = 0; j < T; j++) mk[j] = 1.0f;
    ft_ref_dropout_forward(mk, mk, (size_t)T, p, ft_attn_dropout_row_seed(seed, row));
}

/* out[B,T,NH*HS], att[B,NH,T,T] (entries j > t and masked entries are written as 0); with p > 0 the
 * output reads the dropped probabilities, att keeps the undropped ones */
void ft_ref_attention_dropout_forward(float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                                      int NKV, int HS, float pdrop, unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS, G = NH / NKV;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        const float *base = qkv + (size_t)b * T * R;
        const int *segb = seg ? seg + (size_t)b * T : NULL;
        for (int h = 0; h < NH; h++) {
            int g = h / G;
            const float *kh = base + (size_t)(NH + g) * HS, *vh = base + (size_t)(NH + NKV + g) * HS;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * R + (size_t)h * HS;
                float *p = att + (((size_t)b * NH + h) * T + t) * T;
                double m = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++)
                    if (att_valid(segb, t, j)) {
                        double s = scale * dotd(q, kh + (size_t)j * R, HS);
                        if (s > m) m = s;
                    }
                for (int j = 0; j <= t; j++)
                    if (att_valid(segb, t, j)) sum += exp(scale * dotd(q, kh + (size_t)j * R, HS) - m);
                for (int j = 0; j < T; j++)
                    p[j] = att_valid(segb, t, j) ? (float)(exp(scale * dotd(q, kh + (size_t)j * R, HS) - m) / sum)
                                                 : 0.0f;
                float mk[T > 0 ? T : 1];
                if (pdrop > 0) drop_row(mk, T, ((size_t)b * NH + h) * T + t, pdrop, seed);
                float *o = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                for (int d = 0; d < HS; d++) {
                    double acc = 0;
                    if (pdrop > 0)
                        for (int j = 0; j <= t; j++) acc += (double)p[j] * mk[j] * vh[(size_t)j * R + d];
                    else
                        for (int j = 0; j <= t; j++) acc += (double)p[j] * vh[(size_t)j * R + d];
                    o[d] = (float)acc;
                }
            }
        }
    }
}

/* dqkv[B,T,(NH+2*NKV)*HS] assigned; scratch[B,NH,T,T] receives dpreatt (gradient of the scaled scores).
 * With p > 0 scratch first holds the masks of batch row b: dv reads the dropped probabilities, and
 * d(dropped P) goes through the same mask before the softmax backward (which uses the undropped P). */
void ft_ref_attention_dropout_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                                       const int *seg, int B, int T, int NH, int NKV, int HS, float pdrop,
                                       unsigned long long seed) {
    int R = (NH + 2 * NKV) * HS, G = NH / NKV, OC = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        const float *base = qkv + (size_t)b * T * R;
        float *dbase = dqkv + (size_t)b * T * R;
        const int *segb = seg ? seg + (size_t)b * T : NULL;
        if (pdrop > 0)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    size_t row = ((size_t)b * NH + h) * T + t;
                    drop_row(scratch + row * T, T, row, pdrop, seed);
                }
        /* dv[j,g] = sum_{h in g} sum_t dropout(p)[t,j] dout[t,h] */
        for (int j = 0; j < T; j++)
            for (int g = 0; g < NKV; g++)
                for (int d = 0; d < HS; d++) {
                    double av = 0;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int t = j; t < T; t++) {
                            if (!att_valid(segb, t, j)) continue;
                            size_t ij = (((size_t)b * NH + h) * T + t) * T + j;
                            double pij = att[ij];
                            if (pdrop > 0) pij *= scratch[ij];
                            av += pij * dout[((size_t)b * T + t) * OC + (size_t)h * HS + d];
                        }
                    dbase[(size_t)j * R + (size_t)(NH + NKV + g) * HS + d] = (float)av;
                }
        /* dpreatt[t,j] = p[t,j] * (dp[t,j] - sum_j' p[t,j'] dp[t,j']), dp = mask * (dout . v) */
        for (int h = 0; h < NH; h++) {
            int g = h / G;
            const float *vh = base + (size_t)(NH + NKV + g) * HS;
            for (int t = 0; t < T; t++) {
                const float *p = att + (((size_t)b * NH + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * OC + (size_t)h * HS;
                float *ds = scratch + (((size_t)b * NH + h) * T + t) * T;
                double s = 0;
                for (int j = 0; j < T; j++) {
                    if (pdrop > 0) ds[j] = att_valid(segb, t, j) ? (float)(dotd(d, vh + (size_t)j * R, HS) * ds[j]) : 0.0f;
                    else ds[j] = att_valid(segb, t, j) ? (float)dotd(d, vh + (size_t)j * R, HS) : 0.0f;
                    if (att_valid(segb, t, j)) s += (double)p[j] * ds[j];
                }
                for (int j = 0; j < T; j++)
                    ds[j] = att_valid(segb, t, j) ? (float)(p[j] * ((double)ds[j] - s)) : 0.0f;
            }
        }
        /* dq[t,h] = scale * sum_j dpreatt[t,j] k[j] */
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const float *kh = base + (size_t)(NH + h / G) * HS;
                const float *ds = scratch + (((size_t)b * NH + h) * T + t) * T;
                for (int d = 0; d < HS; d++) {
                    double acc = 0;
                    for (int j = 0; j <= t; j++) acc += (double)ds[j] * kh[(size_t)j * R + d];
                    dbase[(size_t)t * R + (size_t)h * HS + d] = (float)(scale * acc);
                }
            }
        /* dk[j,g] = scale * sum_{h in g} sum_t dpreatt[t,j] q[t,h] */
        for (int j = 0; j < T; j++)
            for (int g = 0; g < NKV; g++)
                for (int d = 0; d < HS; d++) {
                    double ak = 0;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int t = j; t < T; t++) {
                            if (!att_valid(segb, t, j)) continue;
                            size_t ij = (((size_t)b * NH + h) * T + t) * T + j;
                            ak += (double)scratch[ij] * base[(size_t)t * R + (size_t)h * HS + d];
                        }
                    dbase[(size_t)j * R + (size_t)(NH + g) * HS + d] = (float)(scale * ak);
                }
    }
}

void ft_ref_attention_forward(float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                              int NKV, int HS) {
    ft_ref_attention_dropout_forward(out, att, qkv, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

void ft_ref_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               const int *seg, int B, int T, int NH, int NKV, int HS) {
    ft_ref_attention_dropout_backward(dqkv, scratch, dout, qkv, att, seg, B, T, NH, NKV, HS, 0.0f, 0);
}

/* KV-cache inference: q[T,NH*HS] at positions P..P+T-1, kc/vc rows 0..P+T-1 (stride kv_stride) */
void ft_ref_attention_cached_forward(float *out, const float *q, const float *kc, const float *vc, int kv_stride,
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
