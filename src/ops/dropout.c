/* dropout.c — inverted dropout with a counter-based mask (see ops.h). The reference and the CPU
 * versions share the mask function, so they agree bit for bit; the CPU one runs on all cores. */
#include "finetune/ops.h"
#include "core/hash.h"

#include <stdint.h>

/* keep element i of the stream `seed` with probability 1-p */
static inline int keep(uint64_t seed, uint64_t i, uint32_t threshold) {
    return (uint32_t)(ft__mix64(seed + FT__GOLDEN_GAMMA * (i + 1)) >> 32) >= threshold;
}

static inline uint32_t threshold_of(float p) {
    double t = (double)p * 4294967296.0;
    return t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
}

void ft_ref_dropout_forward(void *ctx, float *out, const float *inp, size_t n, float p, unsigned long long seed) {
    uint32_t th = threshold_of(p);
    float s = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (size_t i = 0; i < n; i++) out[i] = keep(seed, i, th) ? inp[i] * s : 0.0f;
}

void ft_ref_dropout_backward(void *ctx, float *dinp, const float *dout, size_t n, float p, unsigned long long seed) {
    ft_ref_dropout_forward(ctx, dinp, dout, n, p, seed);
}

void ft_cpu_dropout_forward(void *ctx, float *out, const float *inp, size_t n, float p, unsigned long long seed) {
    uint32_t th = threshold_of(p);
    float s = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = keep(seed, i, th) ? inp[i] * s : 0.0f;
}

void ft_cpu_dropout_backward(void *ctx, float *dinp, const float *dout, size_t n, float p, unsigned long long seed) {
    ft_cpu_dropout_forward(ctx, dinp, dout, n, p, seed);
}
