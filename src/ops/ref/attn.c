/* ref/attn.c — scalar reference of the attention family (ops.h, attn_forward / attn_backward): every mask
 * kind (causal, padding, packed segments), strided q/k/v views, grouped K/V heads, dropout on the
 * probabilities. Scores, softmax sums and dot products accumulate in double; probabilities are stored in
 * float (att) and the output reads the stored floats. With the causal mask this is, operation for
 * operation, the former decoder reference (attention_forward / _backward). */
#include "finetune/backend.h"
#include "finetune/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the mask of one batch row */
typedef struct {
    int causal;
    const int *seg, *pad; /* [T] or NULL */
    const unsigned char *uni; /* [T]: query t attends uniformly (padding hid all its keys) */
} rowmask;

/* key j is allowed for query t by the causal and segment parts */
static int allowed(const rowmask *rm, int t, int j) { return (!rm->causal || j <= t) && (!rm->seg || rm->seg[j] == rm->seg[t]); }
/* key j is seen by query t (its probability may be nonzero) */
static int visible(const rowmask *rm, int t, int j) {
    return allowed(rm, t, j) && (!rm->pad || rm->uni[t] || rm->pad[j]);
}

/* rm for batch row b; uni[T] is filled */
static void row_mask(rowmask *rm, unsigned char *uni, const ft_attn_mask *mask, int b, int T) {
    int kind = mask ? mask->kind : 0;
    rm->causal = kind & FT_ATTN_CAUSAL;
    rm->seg = (kind & FT_ATTN_SEGMENTS) && mask->seg ? mask->seg + (size_t)b * T : NULL;
    rm->pad = (kind & FT_ATTN_PADDING) && mask->pad ? mask->pad + (size_t)b * T : NULL;
    rm->uni = uni;
    for (int t = 0; t < T; t++) {
        int any = !rm->pad;
        for (int j = 0; j < T && !any; j++) any = allowed(rm, t, j) && rm->pad[j];
        uni[t] = !any;
    }
}

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* mk[0..T) = the attention-dropout mask of probability row `row`: 1/(1-p) kept, 0 dropped (backend.h) */
static void drop_row(float *mk, int T, size_t row, float p, unsigned long long seed) {
    for (int j = 0; j < T; j++) mk[j] = 1.0f;
    ft_ref_dropout_forward(NULL, mk, mk, (size_t)T, p, ft_attn_dropout_row_seed(seed, row));
}

void ft_ref_attn_forward(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                         const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float pdrop,
                         unsigned long long seed) {
    int G = NH / NKV, OC = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    unsigned char uni[T > 0 ? T : 1];
    float mk[T > 0 ? T : 1];
    for (int b = 0; b < B; b++) {
        rowmask rm;
        row_mask(&rm, uni, mask, b, T);
        for (int h = 0; h < NH; h++) {
            int g = h / G;
            const float *kh = k + (size_t)b * T * ldk + (size_t)g * HS, *vh = v + (size_t)b * T * ldv + (size_t)g * HS;
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * ldq + (size_t)h * HS;
                float *p = att + (((size_t)b * NH + h) * T + t) * T;
                int L = rm.causal ? t + 1 : T;
                if (uni[t]) {
                    int cnt = 0;
                    for (int j = 0; j < L; j++) cnt += allowed(&rm, t, j);
                    for (int j = 0; j < T; j++) p[j] = j < L && allowed(&rm, t, j) ? (float)(1.0 / cnt) : 0.0f;
                } else {
                    double m = -INFINITY, sum = 0;
                    for (int j = 0; j < L; j++)
                        if (visible(&rm, t, j)) {
                            double s = scale * dotd(qt, kh + (size_t)j * ldk, HS);
                            if (s > m) m = s;
                        }
                    for (int j = 0; j < L; j++)
                        if (visible(&rm, t, j)) sum += exp(scale * dotd(qt, kh + (size_t)j * ldk, HS) - m);
                    for (int j = 0; j < T; j++)
                        p[j] = j < L && visible(&rm, t, j) ? (float)(exp(scale * dotd(qt, kh + (size_t)j * ldk, HS) - m) / sum) : 0.0f;
                }
                if (pdrop > 0) drop_row(mk, T, ((size_t)b * NH + h) * T + t, pdrop, seed);
                float *o = out + ((size_t)b * T + t) * OC + (size_t)h * HS;
                for (int d = 0; d < HS; d++) {
                    double acc = 0;
                    if (pdrop > 0)
                        for (int j = 0; j < L; j++) acc += (double)p[j] * mk[j] * vh[(size_t)j * ldv + d];
                    else
                        for (int j = 0; j < L; j++) acc += (double)p[j] * vh[(size_t)j * ldv + d];
                    o[d] = (float)acc;
                }
            }
        }
    }
}

/* dq, dk, dv assigned. Per batch row, sc[NH,T,T] (scratch's, or a buffer of this call) first holds the
 * dropout masks (p > 0), then dpreatt, the gradient of the scaled scores: dv reads the dropped
 * probabilities, and d(dropped P) goes through the same mask before the softmax backward (undropped P). */
void ft_ref_attn_backward(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, int ldq,
                          const float *k, int ldk, const float *v, int ldv, const float *att, const ft_attn_mask *mask,
                          int B, int T, int NH, int NKV, int HS, float pdrop, unsigned long long seed) {
    int G = NH / NKV, OC = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    size_t per_b = (size_t)NH * T * T;
    float *own = scratch ? NULL : malloc((per_b ? per_b : 1) * sizeof(float));
    if (!scratch && !own) { /* out of memory: poison the gradient so the trainer's finite checks stop the run */
        for (size_t i = 0; i < (size_t)B * T; i++)
            for (int c = 0; c < OC; c++) dq[i * ldq + c] = NAN;
        return;
    }
    unsigned char uni[T > 0 ? T : 1];
    for (int b = 0; b < B; b++) {
        rowmask rm;
        row_mask(&rm, uni, mask, b, T);
        const float *qb = q + (size_t)b * T * ldq, *kb = k + (size_t)b * T * ldk, *vb = v + (size_t)b * T * ldv;
        float *dqb = dq + (size_t)b * T * ldq, *dkb = dk + (size_t)b * T * ldk, *dvb = dv + (size_t)b * T * ldv;
        const float *ab = att + (size_t)b * per_b;
        float *sc = scratch ? scratch + (size_t)b * per_b : own;
        if (pdrop > 0)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) drop_row(sc + ((size_t)h * T + t) * T, T, ((size_t)b * NH + h) * T + t, pdrop, seed);
        /* dv[j,g] = sum_{h in g} sum_t dropout(p)[t,j] dout[t,h] */
        for (int j = 0; j < T; j++)
            for (int g = 0; g < NKV; g++)
                for (int d = 0; d < HS; d++) {
                    double av = 0;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int t = rm.causal ? j : 0; t < T; t++) {
                            if (!visible(&rm, t, j)) continue;
                            size_t ij = ((size_t)h * T + t) * T + j;
                            double pij = ab[ij];
                            if (pdrop > 0) pij *= sc[ij];
                            av += pij * dout[((size_t)b * T + t) * OC + (size_t)h * HS + d];
                        }
                    dvb[(size_t)j * ldv + (size_t)g * HS + d] = (float)av;
                }
        /* dpreatt[t,j] = p[t,j] * (dp[t,j] - sum_j' p[t,j'] dp[t,j']), dp = mask * (dout . v) */
        for (int h = 0; h < NH; h++) {
            const float *vh = vb + (size_t)(h / G) * HS;
            for (int t = 0; t < T; t++) {
                const float *p = ab + ((size_t)h * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * OC + (size_t)h * HS;
                float *ds = sc + ((size_t)h * T + t) * T;
                double s = 0;
                for (int j = 0; j < T; j++) {
                    int vis = visible(&rm, t, j);
                    if (pdrop > 0) ds[j] = vis ? (float)(dotd(d, vh + (size_t)j * ldv, HS) * ds[j]) : 0.0f;
                    else ds[j] = vis ? (float)dotd(d, vh + (size_t)j * ldv, HS) : 0.0f;
                    if (vis) s += (double)p[j] * ds[j];
                }
                for (int j = 0; j < T; j++) ds[j] = visible(&rm, t, j) ? (float)(p[j] * ((double)ds[j] - s)) : 0.0f;
            }
        }
        /* dq[t,h] = scale * sum_j dpreatt[t,j] k[j] */
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const float *kh = kb + (size_t)(h / G) * HS;
                const float *ds = sc + ((size_t)h * T + t) * T;
                int L = rm.causal ? t + 1 : T;
                for (int d = 0; d < HS; d++) {
                    double acc = 0;
                    for (int j = 0; j < L; j++) acc += (double)ds[j] * kh[(size_t)j * ldk + d];
                    dqb[(size_t)t * ldq + (size_t)h * HS + d] = (float)(scale * acc);
                }
            }
        /* dk[j,g] = scale * sum_{h in g} sum_t dpreatt[t,j] q[t,h] */
        for (int j = 0; j < T; j++)
            for (int g = 0; g < NKV; g++)
                for (int d = 0; d < HS; d++) {
                    double ak = 0;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int t = rm.causal ? j : 0; t < T; t++) {
                            if (!visible(&rm, t, j)) continue;
                            ak += (double)sc[((size_t)h * T + t) * T + j] * qb[(size_t)t * ldq + (size_t)h * HS + d];
                        }
                    dkb[(size_t)j * ldk + (size_t)g * HS + d] = (float)(scale * ak);
                }
    }
    free(own);
}
