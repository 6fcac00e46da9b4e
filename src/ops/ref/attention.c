/* ref/attention.c — scalar reference causal multi-head attention with grouped K/V heads,
 * its backward, and the KV-cache inference variant. Scores, softmax sums and dot products
 * are accumulated in double; probabilities are stored in float (att). */
#include "finetune/ops.h"

#include <math.h>

/* query t may attend key j: causal, and within the same packed segment when seg is given */
static int att_valid(const int *segb, int t, int j) { return j <= t && (!segb || segb[j] == segb[t]); }

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* out[B,T,NH*HS], att[B,NH,T,T] (entries j > t and masked entries are written as 0) */
void ft_ref_attention_forward(float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH,
                              int NKV, int HS) {
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
                float *o = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                for (int d = 0; d < HS; d++) {
                    double acc = 0;
                    for (int j = 0; j <= t; j++) acc += (double)p[j] * vh[(size_t)j * R + d];
                    o[d] = (float)acc;
                }
            }
        }
    }
}

/* dqkv[B,T,(NH+2*NKV)*HS] assigned; scratch[B,NH,T,T] receives dpreatt (gradient of the scaled scores) */
void ft_ref_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               const int *seg, int B, int T, int NH, int NKV, int HS) {
    int R = (NH + 2 * NKV) * HS, G = NH / NKV, OC = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        const float *base = qkv + (size_t)b * T * R;
        float *dbase = dqkv + (size_t)b * T * R;
        const int *segb = seg ? seg + (size_t)b * T : NULL;
        /* dpreatt[t,j] = p[t,j] * (dp[t,j] - sum_j' p[t,j'] dp[t,j']), dp = dout . v */
        for (int h = 0; h < NH; h++) {
            int g = h / G;
            const float *vh = base + (size_t)(NH + NKV + g) * HS;
            for (int t = 0; t < T; t++) {
                const float *p = att + (((size_t)b * NH + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * OC + (size_t)h * HS;
                float *ds = scratch + (((size_t)b * NH + h) * T + t) * T;
                double s = 0;
                for (int j = 0; j < T; j++) {
                    ds[j] = att_valid(segb, t, j) ? (float)dotd(d, vh + (size_t)j * R, HS) : 0.0f;
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
        /* dk[j,g] = scale * sum_{h in g} sum_t dpreatt[t,j] q[t,h];  dv[j,g] = sum_{h in g} sum_t p[t,j] dout[t,h] */
        for (int j = 0; j < T; j++)
            for (int g = 0; g < NKV; g++)
                for (int d = 0; d < HS; d++) {
                    double ak = 0, av = 0;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int t = j; t < T; t++) {
                            if (!att_valid(segb, t, j)) continue;
                            size_t ij = (((size_t)b * NH + h) * T + t) * T + j;
                            ak += (double)scratch[ij] * base[(size_t)t * R + (size_t)h * HS + d];
                            av += (double)att[ij] * dout[((size_t)b * T + t) * OC + (size_t)h * HS + d];
                        }
                    dbase[(size_t)j * R + (size_t)(NH + g) * HS + d] = (float)(scale * ak);
                    dbase[(size_t)j * R + (size_t)(NH + NKV + g) * HS + d] = (float)av;
                }
    }
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
