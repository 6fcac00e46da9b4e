/* rng.c — xoshiro256** (Blackman & Vigna) seeded by splitmix64. */
#include "finetune/rng.h"
#include "core/hash.h"
#include <math.h>

void ft_rng_seed(ft_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = ft__splitmix64(seed + (uint64_t)i * FT__GOLDEN_GAMMA);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ft_rng_u64(ft_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t ft_rng_u32(ft_rng *r) { return (uint32_t)(ft_rng_u64(r) >> 32); }
float ft_rng_uniform(ft_rng *r) { return (float)(ft_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }
double ft_rng_uniform_f64(ft_rng *r) { return (double)(ft_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float ft_rng_normal(ft_rng *r) {
    double u1 = ft_rng_uniform_f64(r), u2 = ft_rng_uniform_f64(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t ft_rng_below(ft_rng *r, uint64_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ft_rng_u64(r); while (x >= lim);
    return x % n;
}

void ft_rng_shuffle_int(ft_rng *r, int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ft_rng_below(r, (uint64_t)i + 1);
        int t = v[i]; v[i] = v[j]; v[j] = t;
    }
}
