/* pcg64.c — numpy's default random generator, reproduced so that bootstrap resamples equal sacreBLEU's.
 *
 * numpy.random.default_rng(seed) is PCG64 (128-bit LCG, XSL-RR output) seeded through SeedSequence:
 *   entropy  = the seed as 32-bit words, least significant first ([0] for 0)
 *   pool[4]  = SeedSequence.mix_entropy (hashmix / mix with the published constants)
 *   words    = generate_state(4, uint64): 8 32-bit words from the pool, pairs read little-endian
 *   PCG64    = srandom(state = words[0] << 64 | words[1], sequence = words[2] << 64 | words[3])
 * Generator.integers(0, n) (and choice(n, replace=True)) for n <= 2^32 - 1 draws 32-bit halves of the 64-bit
 * outputs (low half first) and maps them with Lemire's multiply-and-reject method. */
#include "eval/textmetrics_internal.h"

#include <string.h>

typedef unsigned __int128 u128;

#define PCG_MULT ((u128)0x2360ED051FC65DA4ull << 64 | 0x4385DF649FCCF645ull)

enum { POOL = 4 };
static const uint32_t INIT_A = 0x43b0d7e5u, MULT_A = 0x931e8875u, INIT_B = 0x8b51f9ddu, MULT_B = 0x58f38dedu;
static const uint32_t MIX_L = 0xca01f9ddu, MIX_R = 0x4973f715u;

static uint32_t hashmix(uint32_t v, uint32_t *h) {
    v ^= *h;
    *h *= MULT_A;
    v *= *h;
    return v ^ (v >> 16);
}

static uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = MIX_L * x - MIX_R * y;
    return r ^ (r >> 16);
}

static u128 get(const ft__pcg64 *r) { return (u128)r->st_hi << 64 | r->st_lo; }
static void put(ft__pcg64 *r, u128 s) { r->st_hi = (uint64_t)(s >> 64); r->st_lo = (uint64_t)s; }
static u128 inc(const ft__pcg64 *r) { return (u128)r->inc_hi << 64 | r->inc_lo; }
static void step(ft__pcg64 *r) { put(r, get(r) * PCG_MULT + inc(r)); }

void ft__pcg64_seed(ft__pcg64 *r, uint64_t seed) {
    uint32_t ent[2];
    int ne = 0;
    if (seed == 0) ent[ne++] = 0;
    while (seed) { ent[ne++] = (uint32_t)seed; seed >>= 32; }
    uint32_t pool[POOL], h = INIT_A;
    for (int i = 0; i < POOL; i++) pool[i] = hashmix(i < ne ? ent[i] : 0, &h);
    for (int s = 0; s < POOL; s++)
        for (int d = 0; d < POOL; d++)
            if (s != d) pool[d] = mix(pool[d], hashmix(pool[s], &h));
    /* (an entropy longer than the pool would be folded in here; a 64-bit seed never is) */
    uint32_t words[8], hb = INIT_B;
    for (int i = 0; i < 8; i++) {
        uint32_t v = pool[i % POOL];
        v ^= hb;
        hb *= MULT_B;
        v *= hb;
        v ^= v >> 16;
        words[i] = v;
    }
    uint64_t v64[4];
    for (int i = 0; i < 4; i++) v64[i] = (uint64_t)words[2 * i] | (uint64_t)words[2 * i + 1] << 32;
    u128 initstate = (u128)v64[0] << 64 | v64[1], initseq = (u128)v64[2] << 64 | v64[3];
    memset(r, 0, sizeof *r);
    u128 i128 = initseq << 1 | 1u;
    r->inc_hi = (uint64_t)(i128 >> 64);
    r->inc_lo = (uint64_t)i128;
    step(r);
    put(r, get(r) + initstate);
    step(r);
}

uint64_t ft__pcg64_next64(ft__pcg64 *r) {
    step(r);
    u128 s = get(r);
    uint64_t x = (uint64_t)(s >> 64) ^ (uint64_t)s;
    unsigned rot = (unsigned)(s >> 122);
    return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t ft__pcg64_next32(ft__pcg64 *r) {
    if (r->has32) { r->has32 = 0; return r->u32; }
    uint64_t v = ft__pcg64_next64(r);
    r->has32 = 1;
    r->u32 = (uint32_t)(v >> 32);
    return (uint32_t)v;
}

uint32_t ft__pcg64_below(ft__pcg64 *r, uint32_t n) {
    uint32_t rng = n - 1;
    if (rng == 0) return 0;
    uint32_t excl = rng + 1;
    uint64_t m = (uint64_t)ft__pcg64_next32(r) * excl;
    uint32_t left = (uint32_t)m;
    if (left < excl) {
        uint32_t threshold = (UINT32_MAX - rng) % excl;
        while (left < threshold) {
            m = (uint64_t)ft__pcg64_next32(r) * excl;
            left = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
