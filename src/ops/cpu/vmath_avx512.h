/* vmath_avx512.h — private to src/ops/cpu: ft_vexpf (vmath.h) for 16 lanes in AVX-512 intrinsics, for the
 * element-wise kernels whose cost is the exponential (GELU, the 50257-wide cross-entropy). The C loops of
 * vmath.h vectorise, but this project compiles in ISO C mode (no FMA contraction) and the 2^n scaling, the
 * clamps and the zero select cost as much as the polynomial: here the same Cephes polynomial runs in FMAs
 * and vscalefps does the scaling, about half the instructions.
 *
 * ft_vexp16(x): exp(x) within ~1.5 ulp for x in [-87.33, 88.37] (tests/test_ops_step.c against double);
 * exactly 0 below (exp(-inf) = 0), exp(88.37) ~ 2.4e38 above (finite, as ft_vexpf); NaN stays NaN.
 * Deterministic: the same input gives the same bits on every thread. Only when the compiler targets
 * AVX-512F (FT_VMATH_AVX512 defined); callers keep their C loop for other targets. */
#ifndef FT_OPS_CPU_VMATH_AVX512_H
#define FT_OPS_CPU_VMATH_AVX512_H
#if defined(__AVX512F__)
#define FT_VMATH_AVX512 1
#include <immintrin.h>

static inline __m512 ft_vexp16(__m512 x) {
    /* min(c, x) returns x when x is NaN (the second operand), so NaN passes through */
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.3762f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    /* lanes below -87.3365 (and -inf) give exactly 0; "not less than" is true for NaN, which stays NaN */
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3365f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
}
#endif
#endif
