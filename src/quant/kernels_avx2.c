/* kernels_avx2.c — AVX2 + FMA kernel table. Compiled with a target attribute whatever the global
 * -march, and called only when the CPU has AVX2 and FMA (isa.c).
 *
 * NF4 decoding as in kernels_avx512.c, but with 8-lane vectors: the 16-entry codebook is two
 * registers; vpermps looks up both halves with the low 3 index bits and bit 3 (moved to the sign
 * bit) selects the half with vblendvps. Dequantization is bit-identical to the reference. */
#include "quant/quant_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

typedef struct { __m256 lo, hi; } tab16;

INLINE __m256 lookup(tab16 t, __m256i idx) {
    __m256 a = _mm256_permutevar8x32_ps(t.lo, idx);
    __m256 b = _mm256_permutevar8x32_ps(t.hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

/* 32 weights (16 bytes) -> w[4] of 8, dequantized with scale s */
INLINE void nf4_deq32(const uint8_t *p, tab16 t, __m256 s, __m256 w[4]) {
    const __m128i m = _mm_set1_epi8(0x0F);
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    __m128i lo = _mm_and_si128(v, m);
    __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
    w[0] = _mm256_mul_ps(lookup(t, _mm256_cvtepu8_epi32(a)), s);
    w[1] = _mm256_mul_ps(lookup(t, _mm256_cvtepu8_epi32(_mm_srli_si128(a, 8))), s);
    w[2] = _mm256_mul_ps(lookup(t, _mm256_cvtepu8_epi32(b)), s);
    w[3] = _mm256_mul_ps(lookup(t, _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8))), s);
}

INLINE tab16 load_tab(void) {
    tab16 t = {_mm256_loadu_ps(FT_NF4_CODEBOOK), _mm256_loadu_ps(FT_NF4_CODEBOOK + 8)};
    return t;
}

INLINE float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

static void nf4_span(float *out, const ft_nf4_block *blk, const float *scales, int64_t nb) {
    const tab16 t = load_tab();
    for (int64_t b = 0; b < nb; b++) {
        const __m256 s = _mm256_set1_ps(scales[b]);
        float *o = out + b * FT_NF4_BLOCK;
        for (int h = 0; h < 2; h++) {
            __m256 w[4];
            nf4_deq32(blk[b].qs + 16 * h, t, s, w);
            for (int k = 0; k < 4; k++) _mm256_storeu_ps(o + 32 * h + 8 * k, w[k]);
        }
    }
}

/* NR input rows against W row o; two accumulators per input row (16 registers in all) */
INLINE void nf4_fwd_row(float *out, int64_t ldo, const float *inp, int64_t C, const ft_nf4_tensor *w, const float *map,
                        tab16 t, int64_t o, const int NR) {
    const int64_t bpr = C / FT_NF4_BLOCK;
    __m256 acc[4][2];
    for (int n = 0; n < NR; n++) acc[n][0] = acc[n][1] = _mm256_setzero_ps();
    for (int64_t cb = 0; cb < bpr; cb++) {
        const int64_t b = o * bpr + cb;
        const __m256 s = _mm256_set1_ps(ft_nf4_scale_(w, map, b));
        for (int h = 0; h < 2; h++) {
            __m256 wv[4];
            nf4_deq32(w->blocks[b].qs + 16 * h, t, s, wv);
            for (int n = 0; n < NR; n++) {
                const float *x = inp + n * C + cb * FT_NF4_BLOCK + 32 * h;
                acc[n][0] = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(x), acc[n][0]);
                acc[n][1] = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(x + 8), acc[n][1]);
                acc[n][0] = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(x + 16), acc[n][0]);
                acc[n][1] = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(x + 24), acc[n][1]);
            }
        }
    }
    for (int n = 0; n < NR; n++) out[n * ldo + o] = hsum(_mm256_add_ps(acc[n][0], acc[n][1]));
}

static void nf4_fwd_rows(float *out, int64_t ldo, const float *inp, int N, const ft_nf4_tensor *w, const float *map,
                         int64_t o0, int64_t o1) {
    const tab16 t = load_tab();
    const int64_t C = w->cols;
    for (int64_t o = o0; o < o1; o++) {
        for (int n0 = 0; n0 < N; n0 += 4) {
            float *y = out + (int64_t)n0 * ldo;
            const float *x = inp + (int64_t)n0 * C;
            switch (N - n0 < 4 ? N - n0 : 4) {
            case 1: nf4_fwd_row(y, ldo, x, C, w, map, t, o, 1); break;
            case 2: nf4_fwd_row(y, ldo, x, C, w, map, t, o, 2); break;
            case 3: nf4_fwd_row(y, ldo, x, C, w, map, t, o, 3); break;
            default: nf4_fwd_row(y, ldo, x, C, w, map, t, o, 4); break;
            }
        }
    }
}

/* half a block (32 columns, half h of slice cb), NR rows of dout */
INLINE void nf4_bwd_half(float *dinp, const float *dout, int64_t C, int64_t OC, const ft_nf4_tensor *w, const float *map,
                         tab16 t, int64_t cb, int h, const int NR) {
    const int64_t bpr = C / FT_NF4_BLOCK;
    __m256 acc[2][4];
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) acc[n][k] = _mm256_setzero_ps();
    for (int64_t o = 0; o < OC; o++) {
        const int64_t b = o * bpr + cb;
        __m256 wv[4];
        nf4_deq32(w->blocks[b].qs + 16 * h, t, _mm256_set1_ps(ft_nf4_scale_(w, map, b)), wv);
        for (int n = 0; n < NR; n++) {
            const __m256 d = _mm256_set1_ps(dout[n * OC + o]);
            for (int k = 0; k < 4; k++) acc[n][k] = _mm256_fmadd_ps(d, wv[k], acc[n][k]);
        }
    }
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(dinp + n * C + cb * FT_NF4_BLOCK + 32 * h + 8 * k, acc[n][k]);
}

static void nf4_bwd_cols(float *dinp, const float *dout, int N, const ft_nf4_tensor *w, const float *map, int64_t cb0, int64_t cb1) {
    const tab16 t = load_tab();
    const int64_t C = w->cols, OC = w->rows;
    for (int64_t cb = cb0; cb < cb1; cb++)
        for (int h = 0; h < 2; h++)
            for (int n0 = 0; n0 < N; n0 += 2) {
                float *y = dinp + (int64_t)n0 * C;
                const float *d = dout + (int64_t)n0 * OC;
                if (N - n0 >= 2) nf4_bwd_half(y, d, C, OC, w, map, t, cb, h, 2);
                else nf4_bwd_half(y, d, C, OC, w, map, t, cb, h, 1);
            }
}

/* ---- int8 rows ---- */
INLINE __m256 q8_load8(const int8_t *q) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
}

static void q8_span(float *out, const int8_t *q, float absmax, int64_t nc) {
    const __m256 a = _mm256_set1_ps(absmax), inv = _mm256_set1_ps(FT_Q8ROW_INV127);
    int64_t c = 0;
    for (; c + 8 <= nc; c += 8) _mm256_storeu_ps(out + c, _mm256_mul_ps(_mm256_mul_ps(q8_load8(q + c), a), inv));
    for (; c < nc; c++) out[c] = ft_q8_deq_(q[c], absmax);
}

INLINE void q8_fwd_row(float *out, int64_t ldo, const float *inp, int64_t C, const ft_q8row_tensor *w, int64_t o, const int NR) {
    const int8_t *q = w->q + o * C;
    __m256 acc[4][2];
    float tail[4] = {0, 0, 0, 0};
    for (int n = 0; n < NR; n++) acc[n][0] = acc[n][1] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) {
        __m256 w0 = q8_load8(q + c), w1 = q8_load8(q + c + 8);
        for (int n = 0; n < NR; n++) {
            acc[n][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(inp + n * C + c), acc[n][0]);
            acc[n][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(inp + n * C + c + 8), acc[n][1]);
        }
    }
    for (; c < C; c++)
        for (int n = 0; n < NR; n++) tail[n] += (float)q[c] * inp[n * C + c];
    const float s = w->absmax[o] * FT_Q8ROW_INV127;
    for (int n = 0; n < NR; n++) out[n * ldo + o] = (hsum(_mm256_add_ps(acc[n][0], acc[n][1])) + tail[n]) * s;
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

/* 32 columns starting at c, NR rows of dout */
INLINE void q8_bwd_slice32(float *dinp, const float *dout, int64_t C, int64_t OC, const ft_q8row_tensor *w, int64_t c, const int NR) {
    __m256 acc[2][4];
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) acc[n][k] = _mm256_setzero_ps();
    for (int64_t o = 0; o < OC; o++) {
        const int8_t *q = w->q + o * C + c;
        const float s = w->absmax[o] * FT_Q8ROW_INV127;
        __m256 wv[4];
        for (int k = 0; k < 4; k++) wv[k] = q8_load8(q + 8 * k);
        for (int n = 0; n < NR; n++) {
            const __m256 d = _mm256_set1_ps(dout[n * OC + o] * s);
            for (int k = 0; k < 4; k++) acc[n][k] = _mm256_fmadd_ps(d, wv[k], acc[n][k]);
        }
    }
    for (int n = 0; n < NR; n++)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(dinp + n * C + c + 8 * k, acc[n][k]);
}

static void q8_bwd_cols(float *dinp, const float *dout, int N, const ft_q8row_tensor *w, int64_t c0, int64_t c1) {
    const int64_t C = w->cols, OC = w->rows;
    int64_t c = c0;
    for (; c + 32 <= c1; c += 32)
        for (int n0 = 0; n0 < N; n0 += 2) {
            float *y = dinp + (int64_t)n0 * C;
            const float *d = dout + (int64_t)n0 * OC;
            if (N - n0 >= 2) q8_bwd_slice32(y, d, C, OC, w, c, 2);
            else q8_bwd_slice32(y, d, C, OC, w, c, 1);
        }
    if (c < c1) {
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

const ft_quant_kernels ft_quant_kernels_avx2 = {
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
#else
const ft_quant_kernels ft_quant_kernels_avx2 = {0};
#endif
