/* ggml_kernels_avx2.c — AVX2 + FMA kernels of the matmuls over ggml blocks (compiled with a target
 * attribute; used when the CPU has AVX2 but not AVX-512 VNNI, or when forced).
 *
 * int8 activations: one 256-bit register holds a 32-value block (or a Q4_K sub-block); vpmaddubsw
 * (u8 x s8, adjacent pairs summed to int16: at most 2 * 255 * 127, no overflow for |w| <= 128 or nibbles)
 * then vpmaddwd with ones gives 8 int32 lanes, converted and scaled by d_w * d_x in one FMA. Q8_0 moves
 * w's sign onto x (vpsignb) to make w unsigned; Q4_0 / Q4_K nibbles are unsigned already, their offset
 * and mins go through the activation block sums. */
#include "quant/ggml_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define NMAX FT_QUANT_DIRECT_MAX_N

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* u8 x s8 dot of 32 bytes as 8 float lanes */
INLINE __m256 dot_us(__m256i u, __m256i s) {
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(p);
}

INLINE __m256i q4_0_nibbles(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

static void fwd_q8(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb32 = C / 32;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *row = ft__ggml_row(w, o, rowbuf);
        __m256 acc[NMAX];
        float corr[NMAX] = {0};
        for (int n = 0; n < N; n++) acc[n] = _mm256_setzero_ps();
        if (w->type == FT_GGML_Q8_0) {
            const ft_block_q8_0 *b = (const ft_block_q8_0 *)row;
            for (int64_t j = 0; j < nb32; j++) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)b[j].qs), wa = _mm256_sign_epi8(wv, wv);
                float dw = h2f(b[j].d);
                for (int n = 0; n < N; n++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + (size_t)n * C + 32 * j));
                    acc[n] = _mm256_fmadd_ps(dot_us(wa, _mm256_sign_epi8(xv, wv)), _mm256_set1_ps(dw * a->d[n * nb32 + j]), acc[n]);
                }
            }
        } else if (w->type == FT_GGML_Q4_0) {
            const ft_block_q4_0 *b = (const ft_block_q4_0 *)row;
            for (int64_t j = 0; j < nb32; j++) {
                __m256i wv = q4_0_nibbles(b[j].qs);
                float dw = h2f(b[j].d);
                for (int n = 0; n < N; n++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + (size_t)n * C + 32 * j));
                    acc[n] = _mm256_fmadd_ps(dot_us(wv, xv), _mm256_set1_ps(dw * a->d[n * nb32 + j]), acc[n]);
                    corr[n] += 8.0f * dw * a->ds[n * nb32 + j];
                }
            }
        } else {
            const ft_block_q4_K *b = (const ft_block_q4_K *)row;
            for (int64_t i = 0; i < C / 256; i++) {
                float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
                float sc[8], mn[8];
                for (int j = 0; j < 8; j++) {
                    uint8_t s, m;
                    ft__q4k_scale_min(j, b[i].scales, &s, &m);
                    sc[j] = d * (float)s;
                    mn[j] = dmin * (float)m;
                }
                for (int c = 0; c < 4; c++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
                    __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    for (int n = 0; n < N; n++) {
                        const int8_t *x = a->qs + (size_t)n * C + 256 * i + 64 * c;
                        const float *xd = a->d + n * nb32 + 8 * i + 2 * c;
                        acc[n] = _mm256_fmadd_ps(dot_us(lo, _mm256_loadu_si256((const __m256i *)x)), _mm256_set1_ps(sc[2 * c] * xd[0]), acc[n]);
                        acc[n] = _mm256_fmadd_ps(dot_us(hi, _mm256_loadu_si256((const __m256i *)(x + 32))), _mm256_set1_ps(sc[2 * c + 1] * xd[1]),
                                                 acc[n]);
                    }
                }
                for (int n = 0; n < N; n++) {
                    const float *xds = a->ds + n * nb32 + 8 * i;
                    float s = 0;
                    for (int j = 0; j < 8; j++) s += mn[j] * xds[j];
                    corr[n] += s;
                }
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = hsum(acc[n]) - corr[n];
    }
}

/* ---------------------------------------------------------------- f32 activations */

/* 8 int8 -> 8 floats */
INLINE __m256 i8x8_ps(const void *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)));
}

static void fwd_f32(float *out, int64_t ldo, const float *inp, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = w->cols;
    float tmp[FT_QK_K] __attribute__((aligned(32)));
    const int bv = ft_ggml_block_values(w->type), bb = ft_ggml_block_bytes(w->type);
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *row = ft__ggml_row(w, o, rowbuf);
        __m256 acc[NMAX];
        for (int n = 0; n < N; n++) acc[n] = _mm256_setzero_ps();
        for (int64_t b = 0; b < C / bv; b++) {
            if (w->type == FT_GGML_Q8_0) {
                const ft_block_q8_0 *blk = (const ft_block_q8_0 *)(row + b * bb);
                __m256 d = _mm256_set1_ps(h2f(blk->d));
                for (int k = 0; k < 32; k += 8) {
                    __m256 v = _mm256_mul_ps(d, i8x8_ps(blk->qs + k));
                    for (int n = 0; n < N; n++) acc[n] = _mm256_fmadd_ps(v, _mm256_loadu_ps(inp + (size_t)n * C + 32 * b + k), acc[n]);
                }
                continue;
            }
            ft_ggml_dequantize_row_ref(w->type, row + b * bb, tmp, bv);
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + b * bv;
                for (int k = 0; k < bv; k += 8) acc[n] = _mm256_fmadd_ps(_mm256_load_ps(tmp + k), _mm256_loadu_ps(x + k), acc[n]);
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = hsum(acc[n]);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

const ft__ggml_kernels ft__ggml_kernels_avx2 = {"avx2", fwd_f32, fwd_q8, NULL, ft_ggml_dequantize_row_ref};
#else
const ft__ggml_kernels ft__ggml_kernels_avx2 = {"scalar", NULL, NULL, NULL, NULL};
#endif
