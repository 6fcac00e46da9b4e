/* bf16_kernels_avx512.c — the bf16-weight dot products (bf16_kernels.h). Compiled with a target attribute
 * whatever the global -march, called only when the CPU has the instructions (bf16_matmul.c checks).
 *
 * Register blocking: RB = 4 output rows (weight rows) by NB <= 4 activation rows, RB*NB accumulators.
 * Each weight chunk is loaded (and widened) once per NB activation rows; at N = 1 the four weight rows
 * are four independent memory streams, which is what a memory-bound matrix-vector product needs.
 *   F32FMA: 16 weights per step: vpmovzxwd (256 -> 512 bits), vpslld 16 = the f32 value, vfmadd231ps.
 *   DPBF16: 32 weights per step: vdpbf16ps, pairs of bf16 products added to f32 lanes.
 * Tails (C not a multiple of 16 / 32) use masked loads that read zeros past the end of the row. */
#include "quant/bf16_kernels.h"

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma")
#endif
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

INLINE __m512 widen16(const uint16_t *p, __mmask16 k) {
    __m256i h = _mm256_maskz_loadu_epi16(k, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* RB weight rows [o, o+RB) x NB activation rows [n0, n0+NB) */
INLINE void blk_f32fma(float *out, int64_t ldo, const float *inp, int64_t C, const uint16_t *w, int64_t o, int n0, int RB, int NB) {
    __m512 acc[4][4];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) {
        __m512 x[4];
        for (int j = 0; j < NB; j++) x[j] = _mm512_loadu_ps(inp + (size_t)(n0 + j) * C + c);
        for (int i = 0; i < RB; i++) {
            __m512 wv = widen16(w + (size_t)(o + i) * C + c, 0xFFFF);
            for (int j = 0; j < NB; j++) acc[i][j] = _mm512_fmadd_ps(wv, x[j], acc[i][j]);
        }
    }
    if (c < C) {
        __mmask16 k = (__mmask16)((1u << (C - c)) - 1);
        __m512 x[4];
        for (int j = 0; j < NB; j++) x[j] = _mm512_maskz_loadu_ps(k, inp + (size_t)(n0 + j) * C + c);
        for (int i = 0; i < RB; i++) {
            __m512 wv = widen16(w + (size_t)(o + i) * C + c, k);
            for (int j = 0; j < NB; j++) acc[i][j] = _mm512_fmadd_ps(wv, x[j], acc[i][j]);
        }
    }
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < NB; j++) out[(size_t)(n0 + j) * ldo + o + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* N = 1, four rows: two accumulators per row (32 weights per step) to cover the FMA latency */
INLINE void vec4_f32fma(float *out, const float *x, int64_t C, const uint16_t *w, int64_t o) {
    const uint16_t *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 xa = _mm512_loadu_ps(x + c), xb = _mm512_loadu_ps(x + c + 16);
        a0 = _mm512_fmadd_ps(widen16(w0 + c, 0xFFFF), xa, a0);
        a1 = _mm512_fmadd_ps(widen16(w1 + c, 0xFFFF), xa, a1);
        a2 = _mm512_fmadd_ps(widen16(w2 + c, 0xFFFF), xa, a2);
        a3 = _mm512_fmadd_ps(widen16(w3 + c, 0xFFFF), xa, a3);
        b0 = _mm512_fmadd_ps(widen16(w0 + c + 16, 0xFFFF), xb, b0);
        b1 = _mm512_fmadd_ps(widen16(w1 + c + 16, 0xFFFF), xb, b1);
        b2 = _mm512_fmadd_ps(widen16(w2 + c + 16, 0xFFFF), xb, b2);
        b3 = _mm512_fmadd_ps(widen16(w3 + c + 16, 0xFFFF), xb, b3);
    }
    for (; c < C; c += 16) {
        __mmask16 k = C - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c)) - 1);
        __m512 xa = _mm512_maskz_loadu_ps(k, x + c);
        a0 = _mm512_fmadd_ps(widen16(w0 + c, k), xa, a0);
        a1 = _mm512_fmadd_ps(widen16(w1 + c, k), xa, a1);
        a2 = _mm512_fmadd_ps(widen16(w2 + c, k), xa, a2);
        a3 = _mm512_fmadd_ps(widen16(w3 + c, k), xa, a3);
    }
    out[o] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[o + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[o + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[o + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
}

/* The blocking both kernels share, over weight rows [o0, o1): rows in fours (at N = 1 the matrix-vector
 * VEC4), activation rows in fours and the remainder as one block of 3, 2 or 1 (constant RB / NB, so each
 * call of the always-inline BLK compiles to its own fully unrolled block); the last o1 - o0 mod 4 weight
 * rows one at a time. X: the activations as BLK / VEC4 take them (f32 rows, or bf16 rows). */
#define FWD_ROWS(BLK, VEC4, X)                                                             \
    do {                                                                                   \
        int64_t C = w->cols, o = o0;                                                       \
        const uint16_t *wd = w->data;                                                      \
        for (; o + 4 <= o1; o += 4) {                                                      \
            if (N == 1) { VEC4(out, X, C, wd, o); continue; }                              \
            int n0 = 0;                                                                    \
            for (; n0 + 4 <= N; n0 += 4) BLK(out, ldo, X, C, wd, o, n0, 4, 4);             \
            switch (N - n0) {                                                              \
            case 3: BLK(out, ldo, X, C, wd, o, n0, 4, 3); break;                           \
            case 2: BLK(out, ldo, X, C, wd, o, n0, 4, 2); break;                           \
            case 1: BLK(out, ldo, X, C, wd, o, n0, 4, 1); break;                           \
            }                                                                              \
        }                                                                                  \
        for (; o < o1; o++) {                                                              \
            int n0 = 0;                                                                    \
            for (; n0 + 4 <= N; n0 += 4) BLK(out, ldo, X, C, wd, o, n0, 1, 4);             \
            for (; n0 < N; n0++) BLK(out, ldo, X, C, wd, o, n0, 1, 1);                     \
        }                                                                                  \
    } while (0)

void ft__bf16_fwd_rows_f32fma(float *out, int64_t ldo, const float *inp, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1) {
    FWD_ROWS(blk_f32fma, vec4_f32fma, inp);
}

/* ------------------------------------------------------------------ AVX512-BF16 */

INLINE __m512bh ld32(const uint16_t *p, __mmask32 k) { return (__m512bh)_mm512_maskz_loadu_epi16(k, p); }

INLINE void blk_dpbf16(float *out, int64_t ldo, const uint16_t *xb, int64_t C, const uint16_t *w, int64_t o, int n0, int RB, int NB) {
    __m512 acc[4][4];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c += 32) {
        __mmask32 k = C - c >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (C - c)) - 1);
        __m512bh x[4];
        for (int j = 0; j < NB; j++) x[j] = ld32(xb + (size_t)(n0 + j) * C + c, k);
        for (int i = 0; i < RB; i++) {
            __m512bh wv = ld32(w + (size_t)(o + i) * C + c, k);
            for (int j = 0; j < NB; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv, x[j]);
        }
    }
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < NB; j++) out[(size_t)(n0 + j) * ldo + o + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* N = 1, four rows: two accumulators per row (64 weights per step) to cover the vdpbf16ps latency */
INLINE void vec4_dpbf16(float *out, const uint16_t *xb, int64_t C, const uint16_t *w, int64_t o) {
    const uint16_t *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const __mmask32 all = (__mmask32)0xFFFFFFFFu;
    int64_t c = 0;
    for (; c + 64 <= C; c += 64) {
        __m512bh xa = ld32(xb + c, all), xc = ld32(xb + c + 32, all);
        a0 = _mm512_dpbf16_ps(a0, ld32(w0 + c, all), xa);
        a1 = _mm512_dpbf16_ps(a1, ld32(w1 + c, all), xa);
        a2 = _mm512_dpbf16_ps(a2, ld32(w2 + c, all), xa);
        a3 = _mm512_dpbf16_ps(a3, ld32(w3 + c, all), xa);
        b0 = _mm512_dpbf16_ps(b0, ld32(w0 + c + 32, all), xc);
        b1 = _mm512_dpbf16_ps(b1, ld32(w1 + c + 32, all), xc);
        b2 = _mm512_dpbf16_ps(b2, ld32(w2 + c + 32, all), xc);
        b3 = _mm512_dpbf16_ps(b3, ld32(w3 + c + 32, all), xc);
    }
    for (; c < C; c += 32) {
        __mmask32 k = C - c >= 32 ? all : (__mmask32)((1u << (C - c)) - 1);
        __m512bh xa = ld32(xb + c, k);
        a0 = _mm512_dpbf16_ps(a0, ld32(w0 + c, k), xa);
        a1 = _mm512_dpbf16_ps(a1, ld32(w1 + c, k), xa);
        a2 = _mm512_dpbf16_ps(a2, ld32(w2 + c, k), xa);
        a3 = _mm512_dpbf16_ps(a3, ld32(w3 + c, k), xa);
    }
    out[o] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[o + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[o + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[o + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
}

void ft__bf16_fwd_rows_dpbf16(float *out, int64_t ldo, const uint16_t *xb, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1) {
    FWD_ROWS(blk_dpbf16, vec4_dpbf16, xb);
}

void ft__bf16_round_avx512(uint16_t *xb, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(xb + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(xb + i, k, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

void ft__bf16_widen_avx512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen16(src + i, 0xFFFF));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, k, widen16(src + i, k));
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#else   /* not x86: never called (the dispatcher only picks these on AVX-512 CPUs) */
void ft__bf16_fwd_rows_f32fma(float *out, int64_t ldo, const float *inp, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1) {}
void ft__bf16_fwd_rows_dpbf16(float *out, int64_t ldo, const uint16_t *xb, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1) {}
void ft__bf16_round_avx512(uint16_t *xb, const float *x, int64_t n) {}
void ft__bf16_widen_avx512(float *dst, const uint16_t *src, int64_t n) {}
#endif
