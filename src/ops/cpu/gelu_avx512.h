/* gelu_avx512.h — private to src/ops/cpu: the tanh-GELU and its derivative for 16 lanes, shared by the
 * element-wise kernels (activation.c: ft_cpu_gelu_forward / _backward) and the bf16 GEMM's epilogues
 * (gemm_bf16.c: the GELU of a micro-tile of the MLP's fc product, the GELU derivative applied to a tile of
 * its input gradient), so that a fused product gives the bits of the product followed by the element-wise
 * kernel. GELU uses the identity 0.5 (1 + tanh(u)) = sigmoid(2u), which avoids the cancellation of
 * 1 + tanh(u) for negative u. Only with FT_VMATH_AVX512 (vmath_avx512.h); callers keep a C loop otherwise.
 * Deterministic: the same inputs give the same bits on every thread and in every caller. */
#ifndef FT_OPS_CPU_GELU_AVX512_H
#define FT_OPS_CPU_GELU_AVX512_H
#include "ops/cpu/vmath_avx512.h"

#define FT_GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define FT_GELU_A 0.044715f

#ifdef FT_VMATH_AVX512
/* -2u = x (c1 + c2 x^2), c1 = -2 sqrt(2/pi), c2 = c1 * 0.044715: the argument of exp in sigmoid(2u) */
static inline __m512 ft_vgelu_e16(__m512 x) {
    __m512 c1 = _mm512_set1_ps(-2.0f * FT_GELU_K), c2 = _mm512_set1_ps(-2.0f * FT_GELU_K * FT_GELU_A);
    return ft_vexp16(_mm512_mul_ps(x, _mm512_fmadd_ps(c2, _mm512_mul_ps(x, x), c1)));
}
/* s = sigmoid(2u) = 1 / (1 + e), e = ft_vgelu_e16(x) */
static inline __m512 ft_vgelu_s16(__m512 e) { return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e)); }
/* gelu(x) = x sigmoid(2u) = x / (1 + e) (not x s: s is subnormal for x below about -10, and subnormal results cost
 * a microcode assist each; x / (1 + e) stays normal down to x of about -20) */
static inline __m512 ft_vgelu16e(__m512 x, __m512 e) { return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)); }
static inline __m512 ft_vgelu16(__m512 x) { return ft_vgelu16e(x, ft_vgelu_e16(x)); }
/* gelu'(x) = s + 2 x s (1 - s) u' = s (1 + 2 x u' (1 - s)), s = sigmoid(2u) (ft_vgelu_s16: a caller computing gelu(x)
 * too shares it), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
static inline __m512 ft_vgelu_d16s(__m512 x, __m512 s) {
    __m512 one = _mm512_set1_ps(1.0f), k1 = _mm512_set1_ps(FT_GELU_K), k3 = _mm512_set1_ps(3.0f * FT_GELU_A * FT_GELU_K);
    __m512 t = _mm512_mul_ps(_mm512_add_ps(x, x), _mm512_fmadd_ps(k3, _mm512_mul_ps(x, x), k1));
    return _mm512_mul_ps(s, _mm512_fmadd_ps(t, _mm512_sub_ps(one, s), one));
}
/* g gelu'(x): the product with g last, so that g times a stored ft_vgelu_d16e(x) gives the same bits */
static inline __m512 ft_vgelu_bwd16(__m512 g, __m512 x) { return _mm512_mul_ps(g, ft_vgelu_d16s(x, ft_vgelu_s16(ft_vgelu_e16(x)))); }
#endif
#endif
