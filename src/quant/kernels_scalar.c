/* kernels_scalar.c — the portable kernel table (plain C loops). Used on CPUs without AVX2 and as
 * one more implementation the tests compare. Dequantization is bit-identical to the reference. */
#include "quant/quant_internal.h"

#include <string.h>

static void nf4_span(float *out, const ft_nf4_block *blk, const float *scales, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = blk[b].qs;
        const float s = scales[b];
        float *o = out + b * FT_NF4_BLOCK;
        for (int j = 0; j < FT_NF4_BLOCK / 2; j++) {
            o[2 * j] = FT_NF4_CODEBOOK[q[j] >> 4] * s;
            o[2 * j + 1] = FT_NF4_CODEBOOK[q[j] & 0x0F] * s;
        }
    }
}

/* 8 partial sums per (n), one block of 64 dequantized weights at a time */
static void nf4_fwd_rows(float *out, int64_t ldo, const float *inp, int N, const ft_nf4_tensor *w, const float *map,
                         int64_t o0, int64_t o1) {
    const int64_t C = w->cols, bpr = C / FT_NF4_BLOCK;
    float wb[FT_NF4_BLOCK];
    for (int64_t o = o0; o < o1; o++) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            int nn = N - n0 < 4 ? N - n0 : 4;
            float acc[4][8];
            memset(acc, 0, sizeof acc);
            for (int64_t cb = 0; cb < bpr; cb++) {
                int64_t b = o * bpr + cb;
                float s = ft_nf4_scale_(w, map, b);
                nf4_span(wb, w->blocks + b, &s, 1);
                for (int n = 0; n < nn; n++) {
                    const float *x = inp + (int64_t)(n0 + n) * C + cb * FT_NF4_BLOCK;
                    for (int k = 0; k < FT_NF4_BLOCK; k++) acc[n][k & 7] += wb[k] * x[k];
                }
            }
            for (int n = 0; n < nn; n++) {
                float s = ((acc[n][0] + acc[n][1]) + (acc[n][2] + acc[n][3])) + ((acc[n][4] + acc[n][5]) + (acc[n][6] + acc[n][7]));
                out[(int64_t)(n0 + n) * ldo + o] = s;
            }
        }
    }
}

static void nf4_bwd_cols(float *dinp, const float *dout, int N, const ft_nf4_tensor *w, const float *map, int64_t cb0, int64_t cb1) {
    const int64_t C = w->cols, OC = w->rows, bpr = C / FT_NF4_BLOCK;
    float wb[FT_NF4_BLOCK];
    for (int64_t cb = cb0; cb < cb1; cb++) {
        for (int n = 0; n < N; n++) memset(dinp + (int64_t)n * C + cb * FT_NF4_BLOCK, 0, FT_NF4_BLOCK * sizeof(float));
        for (int64_t o = 0; o < OC; o++) {
            int64_t b = o * bpr + cb;
            float s = ft_nf4_scale_(w, map, b);
            nf4_span(wb, w->blocks + b, &s, 1);
            for (int n = 0; n < N; n++) {
                const float d = dout[(int64_t)n * OC + o];
                float *y = dinp + (int64_t)n * C + cb * FT_NF4_BLOCK;
                for (int k = 0; k < FT_NF4_BLOCK; k++) y[k] += d * wb[k];
            }
        }
    }
}

static void q8_span(float *out, const int8_t *q, float absmax, int64_t nc) {
    for (int64_t c = 0; c < nc; c++) out[c] = ft_q8_deq_(q[c], absmax);
}

static void q8_fwd_rows(float *out, int64_t ldo, const float *inp, int N, const ft_q8row_tensor *w, int64_t o0, int64_t o1) {
    const int64_t C = w->cols;
    for (int64_t o = o0; o < o1; o++) {
        const int8_t *q = w->q + o * C;
        const float s = w->absmax[o] * FT_Q8ROW_INV127;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (int64_t)n * C;
            float acc[8] = {0};
            int64_t c = 0;
            for (; c + 8 <= C; c += 8)
                for (int k = 0; k < 8; k++) acc[k] += (float)q[c + k] * x[c + k];
            for (; c < C; c++) acc[c & 7] += (float)q[c] * x[c];
            float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            out[(int64_t)n * ldo + o] = sum * s;
        }
    }
}

static void q8_bwd_cols(float *dinp, const float *dout, int N, const ft_q8row_tensor *w, int64_t c0, int64_t c1) {
    const int64_t C = w->cols, OC = w->rows;
    for (int n = 0; n < N; n++) memset(dinp + (int64_t)n * C + c0, 0, (size_t)(c1 - c0) * sizeof(float));
    for (int64_t o = 0; o < OC; o++) {
        const int8_t *q = w->q + o * C;
        const float s = w->absmax[o] * FT_Q8ROW_INV127;
        for (int n = 0; n < N; n++) {
            const float d = dout[(int64_t)n * OC + o] * s;
            float *y = dinp + (int64_t)n * C;
            for (int64_t c = c0; c < c1; c++) y[c] += d * (float)q[c];
        }
    }
}

const ft_quant_kernels ft_quant_kernels_scalar = {
    .nf4_span = nf4_span,
    .nf4_fwd_rows = nf4_fwd_rows,
    .nf4_bwd_cols = nf4_bwd_cols,
    .q8_span = q8_span,
    .q8_fwd_rows = q8_fwd_rows,
    .q8_bwd_cols = q8_bwd_cols,
};
