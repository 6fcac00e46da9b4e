/* quant_internal.h — private to src/quant: the per-instruction-set kernel table and small inline
 * helpers shared by the scalar reference and the SIMD files. */
#ifndef FT_QUANT_INTERNAL_H
#define FT_QUANT_INTERNAL_H
#include "finetune/quant.h"

#include <stdint.h>

_Static_assert(sizeof(ft_nf4_block) * 2 == FT_NF4_BLOCK, "the SIMD decoders read a block as 4 x 8 bytes");

/* The scale of block b (see quant.h): float mul, then float add, as two roundings (bnb does the
 * multiplication in dequantize_blockwise and the addition in torch). Not contracted into an FMA:
 * -std=c11 makes gcc use -ffp-contract=off, and clang's default contracts only within one
 * statement. The parity test would catch a contraction (it changes the last bit). */
static inline float ft_nf4_scale_(const ft_nf4_tensor *t, const float *map, int64_t b) {
    if (!t->double_quant) return t->absmax[b];
    float s = map[t->absmax_q[b]] * t->absmax2[b >> 8];
    return s + t->offset;
}

/* One instruction set's kernels. Every function is single-threaded; the drivers in
 * nf4_matmul.c / q8row_matmul.c split the work. */
typedef struct ft_quant_kernels {
    /* out[64*nb] = blocks b0..b0+nb-1 of t dequantized, scales[nb] given */
    void (*nf4_span)(float *out, const ft_nf4_block *blk, const float *scales, int64_t nb);
    /* out[n*ldo + o] = dot(inp[n, :C], W[o, :]) for o in [o0, o1), n < N; W in NF4 */
    void (*nf4_fwd_rows)(float *out, int64_t ldo, const float *inp, int N, const ft_nf4_tensor *w, const float *map, int64_t o0, int64_t o1);
    /* dinp[n*C + c] = sum_o dout[n*OC + o] * W[o, c] for the 64-column blocks [cb0, cb1), n < N */
    void (*nf4_bwd_cols)(float *dinp, const float *dout, int N, const ft_nf4_tensor *w, const float *map, int64_t cb0, int64_t cb1);
    /* out[nc] = row r, columns [c0, c0+nc) of t dequantized */
    void (*q8_span)(float *out, const int8_t *q, float absmax, int64_t nc);
    void (*q8_fwd_rows)(float *out, int64_t ldo, const float *inp, int N, const ft_q8row_tensor *w, int64_t o0, int64_t o1);
    /* columns [c0, c1) */
    void (*q8_bwd_cols)(float *dinp, const float *dout, int N, const ft_q8row_tensor *w, int64_t c0, int64_t c1);
} ft_quant_kernels;

extern const ft_quant_kernels ft_quant_kernels_scalar;
extern const ft_quant_kernels ft_quant_kernels_avx2;
extern const ft_quant_kernels ft_quant_kernels_avx512;

/* The table of the instruction set in use (ft_quant_isa_get). */
const ft_quant_kernels *ft__quant_kernels_get(void);

/* int8 dequantization of one value, bnb's order: (q * absmax) * inv127 */
static inline float ft_q8_deq_(int8_t q, float absmax) {
    float t = (float)q * absmax;
    return t * FT_Q8ROW_INV127;
}

/* columns in the backward slices of the direct kernels (a multiple of 64) */
#define FT_QUANT_BWD_SLICE 64
#endif
