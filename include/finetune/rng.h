/* rng.h — explicit, reproducible random state (no hidden globals).
 * xoshiro256** seeded through splitmix64. The whole state is 4 words, so it can be saved in a
 * checkpoint and restored bit-exactly. Normal samples use Box–Muller on two uniforms. */
#ifndef FINETUNE_RNG_H
#define FINETUNE_RNG_H
#include <stdint.h>

typedef struct ft_rng { uint64_t s[4]; } ft_rng;

void     ft_rng_seed(ft_rng *r, uint64_t seed);
uint64_t ft_rng_u64(ft_rng *r);
uint32_t ft_rng_u32(ft_rng *r);
float    ft_rng_uniform(ft_rng *r);           /* [0, 1) with 24 random bits */
double   ft_rng_uniform_f64(ft_rng *r);       /* [0, 1) with 53 random bits */
float    ft_rng_normal(ft_rng *r);            /* N(0, 1) */
uint64_t ft_rng_below(ft_rng *r, uint64_t n); /* uniform in [0, n), n > 0, unbiased */
void     ft_rng_shuffle_int(ft_rng *r, int *v, int n);
#endif
