/* ggml_quantize_avx512.c — AVX-512F versions of the Q8_0 and Q4_0 row quantizers, bit-identical to
 * the scalar references in ggml_quantize.c (tested by tests/test_gguf_export.c). One 32-value block is
 * two 16-lane vectors. Compiled with a target attribute whatever the global -march, called only when
 * the CPU has AVX-512 (ft_quant_isa_get).
 *
 * Exactness: the block maximum is a max over the same floats (order does not matter); the scale and
 * its inverse are computed as scalars exactly as the reference; x * id is one rounding per lane, as
 * the reference. roundf (half away from zero) is built from truncation: t = trunc(v), and t + sign(v)
 * when |v - t| >= 0.5 (v - t is exact). Q4_0's truncation of x * id + 8.5 (a positive number) is
 * cvttps. */
#include "quant/ggml_quantize.h"
#include "finetune/tensor.h"

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
#endif
#include <immintrin.h>

static inline __m512 abs_ps(__m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

/* roundf of each lane (|v| <= 127 here, so the int conversion is exact) */
static inline __m512i round_away_epi32(__m512 v) {
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 frac = abs_ps(_mm512_sub_ps(v, t));
    __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512 sign1 = _mm512_or_ps(_mm512_set1_ps(1.0f),
                                _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000))));
    t = _mm512_mask_add_ps(t, up, t, sign1);
    return _mm512_cvttps_epi32(t);
}

void ft__quantize_row_q8_0_avx512(const float *x, ft_block_q8_0 *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK8_0; b++, x += FT_QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ft_f32_to_f16(d);
        __m512 vid = _mm512_set1_ps(id);
        __m512i q0 = round_away_epi32(_mm512_mul_ps(v0, vid)), q1 = round_away_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtepi32_epi8(q1));
    }
}

void ft__quantize_row_q4_0_avx512(const float *x, ft_block_q4_0 *y, int64_t k) {
    const __m512 half8 = _mm512_set1_ps(8.5f);
    const __m512i fifteen = _mm512_set1_epi32(15);
    for (int64_t b = 0; b < k / FT_QK4_0; b++, x += FT_QK4_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        __m512 a0 = abs_ps(v0), a1 = abs_ps(v1);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        /* the reference keeps the first value whose magnitude is the maximum */
        float m = 0.0f;
        if (amax > 0.0f) {
            __m512 va = _mm512_set1_ps(amax);
            uint32_t hit = (uint32_t)_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ) |
                           (uint32_t)_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ) << 16;
            m = x[__builtin_ctz(hit)];
        }
        const float d = m / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ft_f32_to_f16(d);
        __m512 vid = _mm512_set1_ps(id);
        /* (int8_t) of a value in [0.5, 16.5]: truncation; then min 15 */
        __m512i q0 = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(v0, vid), half8)), fifteen);
        __m512i q1 = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(v1, vid), half8)), fifteen);
        __m512i packed = _mm512_or_si512(q0, _mm512_slli_epi32(q1, 4));
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtepi32_epi8(packed));
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#else
void ft__quantize_row_q8_0_avx512(const float *x, ft_block_q8_0 *y, int64_t k) { ft__quantize_row_q8_0_ref(x, y, k); }
void ft__quantize_row_q4_0_avx512(const float *x, ft_block_q4_0 *y, int64_t k) { ft__quantize_row_q4_0_ref(x, y, k); }
#endif
