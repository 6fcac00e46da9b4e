/* ref/norm.c — scalar reference LayerNorm and RMSNorm, forward and backward.
 * Row statistics and column reductions are accumulated in double. */
#include "finetune/ops.h"

#include <math.h>

/* out[N,C] = (inp - mean) * rstd * w + b; mean[N], rstd[N] saved (may be NULL); b may be NULL */
void ft_ref_layernorm_forward(void *ctx, float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += ((double)x[c] - m) * ((double)x[c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + (double)eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (float)(((double)x[c] - m) * rs * w[c] + (b ? b[c] : 0.0f));
        if (mean) mean[n] = (float)m;
        if (rstd) rstd[n] = (float)rs;
    }
}

/* dinp[N,C] = dresid + d(layernorm)/dinp (dinp may alias dresid; dresid may be NULL);
 * dw[C], db[C] += (either may be NULL); dinp NULL skips the input gradient. */
void ft_ref_layernorm_backward(void *ctx, float *dinp, float *dw, float *db, const float *dout, const float *dresid,
                               const float *inp, const float *w, const float *mean, const float *rstd,
                               int N, int C) {
    for (int c = 0; c < C && (dw || db); c++) {
        double sw = 0, sb = 0;
        for (int n = 0; n < N; n++) {
            double norm = ((double)inp[(size_t)n * C + c] - mean[n]) * rstd[n];
            sw += dout[(size_t)n * C + c] * norm;
            sb += dout[(size_t)n * C + c];
        }
        if (dw) dw[c] += (float)sw;
        if (db) db[c] += (float)sb;
    }
    if (!dinp) return;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        double m = mean[n], rs = rstd[n], sd = 0, sdn = 0;
        for (int c = 0; c < C; c++) {
            double dn = (double)d[c] * w[c];
            sd += dn;
            sdn += dn * ((double)x[c] - m) * rs;
        }
        sd /= C;
        sdn /= C;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            double norm = ((double)x[c] - m) * rs;
            double g = rs * ((double)d[c] * w[c] - sd - norm * sdn);
            dinp[i] = (float)((dresid ? dresid[i] : 0.0) + g);
        }
    }
}

/* out[N,C] = inp * rstd * w, rstd[N] = 1/sqrt(mean(inp^2) + eps) saved (may be NULL) */
void ft_ref_rmsnorm_forward(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double rs = 1.0 / sqrt(ss / C + (double)eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (float)(x[c] * rs * w[c]);
        if (rstd) rstd[n] = (float)rs;
    }
}

/* dinp[N,C] = dresid + d(rmsnorm)/dinp (dinp may alias dresid); dw[C] += */
void ft_ref_rmsnorm_backward(void *ctx, float *dinp, float *dw, const float *dout, const float *dresid, const float *inp,
                             const float *w, const float *rstd, int N, int C) {
    for (int c = 0; c < C && dw; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
        dw[c] += (float)s;
    }
    if (!dinp) return;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        double rs = rstd[n], sdn = 0;
        for (int c = 0; c < C; c++) sdn += (double)d[c] * w[c] * x[c] * rs;
        sdn /= C;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            double g = rs * ((double)d[c] * w[c] - (double)x[c] * rs * sdn);
            dinp[i] = (float)((dresid ? dresid[i] : 0.0) + g);
        }
    }
}
