/* vmath.h — private to src/ops/cpu: scalar math written so that gcc -O3 vectorises loops that
 * call it (no libm calls, no branches the vectoriser cannot turn into selects). Deterministic:
 * the same input gives the same bits on every thread. */
#ifndef FT_OPS_CPU_VMATH_H
#define FT_OPS_CPU_VMATH_H
#include <stdint.h>
#include <string.h>

/* exp(x) within ~1.5 ulp for x in [-87.33, 88.37]; 0 below (no subnormals, exp(-inf) = 0),
 * a large finite value (~2.4e38) above. Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2,
 * then a degree-7 polynomial for e^r (Cephes expf coefficients) and 2^n built in the exponent bits. */
static inline float ft_vexpf(float x) {
    float xc = x < -87.3365f ? -87.3365f : (x > 88.3762f ? 88.3762f : x);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return x < -87.3365f ? 0.0f : p * s;
}

/* 1 / (1 + exp(-x)) */
static inline float ft_vsigmoidf(float x) { return 1.0f / (1.0f + ft_vexpf(-x)); }

/* parallel regions below this many elements of work run on one thread (no fork/join cost) */
#define FT_PAR_MIN 32768
#endif
