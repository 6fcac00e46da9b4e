/* cpu/norm.c — LayerNorm and RMSNorm. Rows run in parallel; the dw/db reductions over rows run in
 * parallel over column blocks, each summing its rows in order 0..N-1 (race-free, no atomics, and the
 * same bits for any thread count or schedule). */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <math.h>

#define NORM_CB 64 /* columns per block of the parameter-gradient reduction */

/* out[N,C] = (inp - mean) * rstd * w + b; mean[N], rstd[N] saved (may be NULL); b may be NULL */
void ft_cpu_layernorm_forward(void *ctx, float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
        if (b) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rs * w[c] + b[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rs * w[c];
        }
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = rs;
    }
}

/* dinp[N,C] = dresid + d(layernorm)/dinp (dinp may alias dresid; dresid may be NULL); dw[C], db[C] += */
void ft_cpu_layernorm_backward(void *ctx, float *dinp, float *dw, float *db, const float *dout, const float *dresid,
                               const float *inp, const float *w, const float *mean, const float *rstd,
                               int N, int C) {
    if (dw || db) {
        int nb = (C + NORM_CB - 1) / NORM_CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
        for (int cb = 0; cb < nb; cb++) {
            int c0 = cb * NORM_CB, cn = C - c0 < NORM_CB ? C - c0 : NORM_CB;
            float aw[NORM_CB] = {0}, ab[NORM_CB] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + c0, *d = dout + (size_t)n * C + c0;
                float m = mean[n], rs = rstd[n];
#pragma omp simd
                for (int c = 0; c < cn; c++) {
                    aw[c] += d[c] * ((x[c] - m) * rs);
                    ab[c] += d[c];
                }
            }
            for (int c = 0; c < cn; c++) {
                if (dw) dw[c0 + c] += aw[c];
                if (db) db[c0 + c] += ab[c];
            }
        }
    }
    if (!dinp) return;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        float m = mean[n], rs = rstd[n], sd = 0.0f, sdn = 0.0f;
#pragma omp simd reduction(+ : sd, sdn)
        for (int c = 0; c < C; c++) {
            float dn = d[c] * w[c];
            sd += dn;
            sdn += dn * ((x[c] - m) * rs);
        }
        sd /= (float)C;
        sdn /= (float)C;
        if (dresid) {
            const float *dr = dresid + (size_t)n * C; /* may equal di: element-wise read then write */
#pragma omp simd
            for (int c = 0; c < C; c++) di[c] = dr[c] + rs * (d[c] * w[c] - sd - ((x[c] - m) * rs) * sdn);
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) di[c] = rs * (d[c] * w[c] - sd - ((x[c] - m) * rs) * sdn);
        }
    }
}

/* out[N,C] = inp * rstd * w, rstd[N] = 1/sqrt(mean(inp^2) + eps) saved (may be NULL) */
void ft_cpu_rmsnorm_forward(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    /* double arithmetic per element (vectorised 8-wide): the float32 product x * rstd * w rounds twice
     * with one rstd shared by the row, a correlated error that the q/k gradients amplify to ~1e-5 */
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double rs = 1.0 / sqrt(ss / C + (double)eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (float)((double)x[c] * rs * w[c]);
        if (rstd) rstd[n] = (float)rs;
    }
}

/* dinp[N,C] = dresid + d(rmsnorm)/dinp (dinp may alias dresid); dw[C] += ; double per element as the ref */
void ft_cpu_rmsnorm_backward(void *ctx, float *dinp, float *dw, const float *dout, const float *dresid, const float *inp,
                             const float *w, const float *rstd, int N, int C) {
    if (dw) {
        int nb = (C + NORM_CB - 1) / NORM_CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
        for (int cb = 0; cb < nb; cb++) {
            int c0 = cb * NORM_CB, cn = C - c0 < NORM_CB ? C - c0 : NORM_CB;
            double aw[NORM_CB] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + c0, *d = dout + (size_t)n * C + c0;
                double rs = rstd[n];
#pragma omp simd
                for (int c = 0; c < cn; c++) aw[c] += (double)d[c] * x[c] * rs;
            }
            for (int c = 0; c < cn; c++) dw[c0 + c] += (float)aw[c];
        }
    }
    if (!dinp) return;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        double rs = rstd[n], sdn = 0.0;
#pragma omp simd reduction(+ : sdn)
        for (int c = 0; c < C; c++) sdn += (double)d[c] * w[c] * x[c] * rs;
        sdn /= C;
        const float *dr = dresid ? dresid + (size_t)n * C : NULL;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            double g = rs * ((double)d[c] * w[c] - (double)x[c] * rs * sdn);
            di[c] = (float)((dr ? (double)dr[c] : 0.0) + g);
        }
    }
}
