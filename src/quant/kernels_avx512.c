/* kernels_avx512.c — AVX-512 (F + BW) kernel table. Compiled with a target attribute whatever the
 * global -march, and called only when the CPU has AVX-512 (isa.c).
 *
 * NF4 decoding (nf4_codes16): 8 packed bytes -> 16 codes in element order with a broadcast load,
 * a rotate and a shift, looked up in the 16-entry codebook held in one register (vpermps).
 * Dequantized values are codebook[code] * scale, one multiplication: bit-identical to the scalar
 * reference. The dot-product kernels apply the scale once per block instead. */
#include "quant/quant_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma")
#endif
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* 16 codes (8 bytes) -> one vector of 16 lanes whose low 4 bits are the codes in element order,
 * without shuffles: the 8 bytes are broadcast to every 64-bit lane q (a load), rotated right by
 * 8q+4 (vprorvq), then odd 32-bit lanes shifted right by 28 (vpsrlvd). Lane 2q then holds the high
 * nibble of byte q (element 2q) in its low bits, lane 2q+1 the low nibble (element 2q+1). vpermps
 * reads only the low 4 index bits, so no masking is needed. Per 64 weights: 4 vpermps on the
 * shuffle port instead of 12 shuffles for the unpack/zero-extend decoding. */
typedef struct { __m512i rot, shr; } nf4_dec;

INLINE nf4_dec nf4_dec_init(void) {
    nf4_dec d = {_mm512_set_epi64(60, 52, 44, 36, 28, 20, 12, 4),
                 _mm512_set_epi32(28, 0, 28, 0, 28, 0, 28, 0, 28, 0, 28, 0, 28, 0, 28, 0)};
    return d;
}

INLINE __m512 nf4_codes16(const uint8_t *p, nf4_dec d, __m512 tab) {
    int64_t q;
    memcpy(&q, p, 8);
    __m512i v = _mm512_srlv_epi32(_mm512_rorv_epi64(_mm512_set1_epi64(q), d.rot), d.shr);
    return _mm512_permutexvar_ps(v, tab);
}

/* one block: c[4] = the 64 codebook values (unscaled) in element order */
INLINE void nf4_codes64(const ft_nf4_block *blk, nf4_dec d, __m512 tab, __m512 c[4]) {
    for (int k = 0; k < 4; k++) c[k] = nf4_codes16(blk->qs + 8 * k, d, tab);
}

/* codebook[code] * scale: one multiplication, as the reference */
static void nf4_span(float *out, const ft_nf4_block *blk, const float *scales, int64_t nb) {
    const __m512 tab = _mm512_loadu_ps(FT_NF4_CODEBOOK);
    const nf4_dec d = nf4_dec_init();
    for (int64_t b = 0; b < nb; b++) {
        __m512 c[4];
        nf4_codes64(blk + b, d, tab, c);
        const __m512 s = _mm512_set1_ps(scales[b]);
        float *o = out + b * FT_NF4_BLOCK;
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(o + 16 * k, _mm512_mul_ps(c[k], s));
    }
}

/* NR rows of inp against W row o. Per block: t = sum codes * x (unscaled), then acc += scale * t,
 * so the scale costs one FMA per block and input row instead of a multiplication per weight. */
INLINE void nf4_fwd_row(float *out, int64_t ldo, const float *inp, int64_t C, const ft_nf4_tensor *w, const float *map,
                        __m512 tab, nf4_dec d, int64_t o, const int NR) {
    const int64_t bpr = C / FT_NF4_BLOCK;
    __m512 acc[4];
    for (int n = 0; n < NR; n++) acc[n] = _mm512_setzero_ps();
    for (int64_t cb = 0; cb < bpr; cb++) {
        const int64_t b = o * bpr + cb;
        __m512 c[4];
        nf4_codes64(w->blocks + b, d, tab, c);
        const __m512 s = _mm512_set1_ps(ft_nf4_scale_(w, map, b));
        for (int n = 0; n < NR; n++) {
            const float *x = inp + n * C + cb * FT_NF4_BLOCK;
            __m512 t = _mm512_mul_ps(c[0], _mm512_loadu_ps(x));
            t = _mm512_fmadd_ps(c[1], _mm512_loadu_ps(x + 16), t);
            t = _mm512_fmadd_ps(c[2], _mm512_loadu_ps(x + 32), t);
            t = _mm512_fmadd_ps(c[3], _mm512_loadu_ps(x + 48), t);
            acc[n] = _mm512_fmadd_ps(s, t, acc[n]);
        }
    }
    for (int n = 0; n < NR; n++) out[n * ldo + o] = _mm512_reduce_add_ps(acc[n]);
}

static void nf4_fwd_rows(float *out, int64_t ldo, const float *inp, int N, const ft_nf4_tensor *w, const float *map,
                         int64_t o0, int64_t o1) {
    const __m512 tab = _mm512_loadu_ps(FT_NF4_CODEBOOK);
    const nf4_dec d = nf4_dec_init();
    const int64_t C = w->cols;
    for (int64_t o = o0; o < o1; o++) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            float *y = out + (int64_t)n0 * ldo;
            const float *x = inp + (int64_t)n0 * C;
            switch (N - n0 < 4 ? N - n0 : 4) {
            case 1: nf4_fwd_row(y, ldo, x, C, w, map, tab, d, o, 1); break;
            case 2: nf4_fwd_row(y, ldo, x, C, w, map, tab, d, o, 2); break;
            case 3: nf4_fwd_row(y, ldo, x, C, w, map, tab, d, o, 3); break;
            default: nf4_fwd_row(y, ldo, x, C, w, map, tab, d, o, 4); break;
            }
        }
    }
}

/* one 64-column slice cb, NR rows of dout: dinp[n, slice] = sum_o (dout[n, o] * scale_o) * codes[o, slice] */
INLINE void nf4_bwd_slice(float *dinp, const float *dout, int64_t C, int64_t OC, const ft_nf4_tensor *w, const float *map,
                          __m512 tab, nf4_dec d, int64_t cb, const int NR) {
    const int64_t bpr = C / FT_NF4_BLOCK;
    __m512 acc[4][4];
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) acc[n][k] = _mm512_setzero_ps();
    for (int64_t o = 0; o < OC; o++) {
        const int64_t b = o * bpr + cb;
        __m512 c[4];
        nf4_codes64(w->blocks + b, d, tab, c);
        const float s = ft_nf4_scale_(w, map, b);
        for (int n = 0; n < NR; n++) {
            const __m512 ds = _mm512_set1_ps(dout[n * OC + o] * s);
            for (int k = 0; k < 4; k++) acc[n][k] = _mm512_fmadd_ps(ds, c[k], acc[n][k]);
        }
    }
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(dinp + n * C + cb * FT_NF4_BLOCK + 16 * k, acc[n][k]);
}

static void nf4_bwd_cols(float *dinp, const float *dout, int N, const ft_nf4_tensor *w, const float *map, int64_t cb0, int64_t cb1) {
    const __m512 tab = _mm512_loadu_ps(FT_NF4_CODEBOOK);
    const nf4_dec d = nf4_dec_init();
    const int64_t C = w->cols, OC = w->rows;
    for (int64_t cb = cb0; cb < cb1; cb++) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            float *y = dinp + (int64_t)n0 * C;
            const float *g = dout + (int64_t)n0 * OC;
            switch (N - n0 < 4 ? N - n0 : 4) {
            case 1: nf4_bwd_slice(y, g, C, OC, w, map, tab, d, cb, 1); break;
            case 2: nf4_bwd_slice(y, g, C, OC, w, map, tab, d, cb, 2); break;
            case 3: nf4_bwd_slice(y, g, C, OC, w, map, tab, d, cb, 3); break;
            default: nf4_bwd_slice(y, g, C, OC, w, map, tab, d, cb, 4); break;
            }
        }
    }
}

/* ---- int8 rows ---- */
INLINE __m512 q8_load16(const int8_t *q) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
}

static void q8_span(float *out, const int8_t *q, float absmax, int64_t nc) {
    const __m512 a = _mm512_set1_ps(absmax), inv = _mm512_set1_ps(FT_Q8ROW_INV127);
    int64_t c = 0;
    for (; c + 16 <= nc; c += 16) _mm512_storeu_ps(out + c, _mm512_mul_ps(_mm512_mul_ps(q8_load16(q + c), a), inv));
    for (; c < nc; c++) out[c] = ft_q8_deq_(q[c], absmax);
}

INLINE void q8_fwd_row(float *out, int64_t ldo, const float *inp, int64_t C, const ft_q8row_tensor *w, int64_t o, const int NR) {
    const int8_t *q = w->q + o * C;
    __m512 acc[4][4];
    float tail[4] = {0, 0, 0, 0};
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) acc[n][k] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 64 <= C; c += 64) {
        __m512 wv[4];
        for (int k = 0; k < 4; k++) wv[k] = q8_load16(q + c + 16 * k);
        for (int n = 0; n < NR; n++)
            for (int k = 0; k < 4; k++) acc[n][k] = _mm512_fmadd_ps(wv[k], _mm512_loadu_ps(inp + n * C + c + 16 * k), acc[n][k]);
    }
    for (; c + 16 <= C; c += 16) {
        __m512 wv = q8_load16(q + c);
        for (int n = 0; n < NR; n++) acc[n][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(inp + n * C + c), acc[n][0]);
    }
    for (; c < C; c++)
        for (int n = 0; n < NR; n++) tail[n] += (float)q[c] * inp[n * C + c];
    const float s = w->absmax[o] * FT_Q8ROW_INV127;
    for (int n = 0; n < NR; n++) {
        __m512 t = _mm512_add_ps(_mm512_add_ps(acc[n][0], acc[n][1]), _mm512_add_ps(acc[n][2], acc[n][3]));
        out[n * ldo + o] = (_mm512_reduce_add_ps(t) + tail[n]) * s;
    }
}

static void q8_fwd_rows(float *out, int64_t ldo, const float *inp, int N, const ft_q8row_tensor *w, int64_t o0, int64_t o1) {
    const int64_t C = w->cols;
    for (int64_t o = o0; o < o1; o++) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            float *y = out + (int64_t)n0 * ldo;
            const float *x = inp + (int64_t)n0 * C;
            switch (N - n0 < 4 ? N - n0 : 4) {
            case 1: q8_fwd_row(y, ldo, x, C, w, o, 1); break;
            case 2: q8_fwd_row(y, ldo, x, C, w, o, 2); break;
            case 3: q8_fwd_row(y, ldo, x, C, w, o, 3); break;
            default: q8_fwd_row(y, ldo, x, C, w, o, 4); break;
            }
        }
    }
}

/* 64 columns starting at c, NR rows of dout */
INLINE void q8_bwd_slice64(float *dinp, const float *dout, int64_t C, int64_t OC, const ft_q8row_tensor *w, int64_t c, const int NR) {
    __m512 acc[4][4];
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) acc[n][k] = _mm512_setzero_ps();
    for (int64_t o = 0; o < OC; o++) {
        const int8_t *q = w->q + o * C + c;
        const float s = w->absmax[o] * FT_Q8ROW_INV127;
        __m512 wv[4];
        for (int k = 0; k < 4; k++) wv[k] = q8_load16(q + 16 * k);
        for (int n = 0; n < NR; n++) {
            const __m512 d = _mm512_set1_ps(dout[n * OC + o] * s);
            for (int k = 0; k < 4; k++) acc[n][k] = _mm512_fmadd_ps(d, wv[k], acc[n][k]);
        }
    }
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(dinp + n * C + c + 16 * k, acc[n][k]);
}

static void q8_bwd_cols(float *dinp, const float *dout, int N, const ft_q8row_tensor *w, int64_t c0, int64_t c1) {
    const int64_t C = w->cols, OC = w->rows;
    int64_t c = c0;
    for (; c + 64 <= c1; c += 64) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            float *y = dinp + (int64_t)n0 * C;
            const float *d = dout + (int64_t)n0 * OC;
            switch (N - n0 < 4 ? N - n0 : 4) {
            case 1: q8_bwd_slice64(y, d, C, OC, w, c, 1); break;
            case 2: q8_bwd_slice64(y, d, C, OC, w, c, 2); break;
            case 3: q8_bwd_slice64(y, d, C, OC, w, c, 3); break;
            default: q8_bwd_slice64(y, d, C, OC, w, c, 4); break;
            }
        }
    }
    if (c < c1) { /* remainder columns: memory accumulators */
        for (int n = 0; n < N; n++) memset(dinp + (int64_t)n * C + c, 0, (size_t)(c1 - c) * sizeof(float));
        for (int64_t o = 0; o < OC; o++) {
            const int8_t *q = w->q + o * C;
            const float s = w->absmax[o] * FT_Q8ROW_INV127;
            for (int n = 0; n < N; n++) {
                const float d = dout[(int64_t)n * OC + o] * s;
                float *y = dinp + (int64_t)n * C;
                for (int64_t j = c; j < c1; j++) y[j] += d * (float)q[j];
            }
        }
    }
}

const ft_quant_kernels ft_quant_kernels_avx512 = {
    .nf4_span = nf4_span,
    .nf4_fwd_rows = nf4_fwd_rows,
    .nf4_bwd_cols = nf4_bwd_cols,
    .q8_span = q8_span,
    .q8_fwd_rows = q8_fwd_rows,
    .q8_bwd_cols = q8_bwd_cols,
};

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#else  /* not x86: never selected */
const ft_quant_kernels ft_quant_kernels_avx512 = {0};
#endif
