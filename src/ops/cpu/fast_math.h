/* fast_math.h — branch-free float32 exp and erf that the compiler vectorises (glibc's expf / erff are
 * scalar calls without -ffast-math). Accuracy (tests/test_fast_math.c, against double precision):
 *   ft_expf_fast  relative error <= 2e-7 on [-87, 88] (results below 2^-126 flush to 0, above overflow to inf)
 *   ft_erff_fast  absolute error <= 2e-7 on the real line (Maclaurin series below |x| = 0.5)
 * exp: x = k ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), e^r by a degree-7 Taylor polynomial,
 * 2^k put into the exponent bits. erf: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), the classical
 * Chebyshev fit with fractional error < 1.2e-7 (Numerical Recipes' erfcc), erf = sign(x) (1 - erfc(|x|)). */
#ifndef FT_FAST_MATH_H
#define FT_FAST_MATH_H
#include <stdint.h>
#include <string.h>

static inline float ft_expf_fast(float x) {
    x = x > 88.0f ? 88.0f : x < -87.0f ? -87.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick (vectorises; roundf does not) */
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - k * 0.693145751953125f;        /* ln2 high part (exact product for |k| < 2^11) */
    r = r - k * 1.428606820309417232e-06f;         /* ln2 low part */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float ft_erff_fast(float x) {
    float z = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.5f * z);
    float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
                 t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    float erfc = t * ft_expf_fast(-z * z + poly);
    /* near 0, 1 - erfc cancels: the Maclaurin series 2/sqrt(pi) sum (-1)^n z^(2n+1) / (n! (2n+1)) instead */
    float z2 = z * z;
    float series = 1.12837916709551257f * z * (1.0f + z2 * (-1.0f / 3 + z2 * (1.0f / 10 + z2 * (-1.0f / 42 + z2 * (1.0f / 216 +
                   z2 * (-1.0f / 1320 + z2 * (1.0f / 9360)))))));
    float e = z < 0.5f ? series : 1.0f - erfc;
    return x < 0 ? -e : e;
}
#endif
