/* hash.h — the one 64-bit mixer (internal: src/core/ headers are not installed; names ft__*).
 *
 * ft__mix64 is the splitmix64 finaliser (Stafford's "variant 13"): a bijection on 64-bit words that
 * spreads every input bit over every output bit. ft__splitmix64 is one splitmix64 step from state x:
 * the finaliser of x + the golden-ratio increment. Everything that derives seeds, dropout masks or
 * shuffles mixes through these two, so changing them changes every reproducible run: keep them
 * bit-identical (resume and dropout tests compare against recorded streams). */
#ifndef FT_CORE_HASH_H
#define FT_CORE_HASH_H
#include <stdint.h>

#define FT__GOLDEN_GAMMA 0x9E3779B97F4A7C15ull   /* 2^64 / golden ratio, odd: splitmix64's increment */

static inline uint64_t ft__mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t ft__splitmix64(uint64_t x) { return ft__mix64(x + FT__GOLDEN_GAMMA); }
#endif
