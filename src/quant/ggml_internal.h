/* ggml_internal.h — private to src/quant: the kernel table of the matmuls over ggml blocks
 * (ggml_quant.h) and the int8 activation rows their DIRECT path multiplies with. */
#ifndef FT_GGML_INTERNAL_H
#define FT_GGML_INTERNAL_H
#include "finetune/ggml_quant.h"
#include "quant/ggml_blocks.h"

#include <stdint.h>

/* N input rows of C values quantized to int8, one scale per 32 values (C % 32 == 0):
 *   x[n, c] ~= d[n, c/32] * qs[n, c];   ds[n, j] = d[n, j] * sum of the 32 qs of block j */
typedef struct ft__ggml_act {
    const int8_t *qs;    /* [N, C] */
    const float  *d;     /* [N, C/32] */
    const float  *ds;    /* [N, C/32] */
    const uint8_t *qu;   /* [N, C] qs + 128 (qs XOR 0x80): the unsigned operand of vpdpbusd against signed weights */
    const int32_t *xs;   /* [N, C/32] sum of the 32 qs of each block */
    const float  *dxe;   /* [N, C/64, 16] d of block pair (2p, 2p+1) spread over 8 + 8 lanes (64-byte aligned, for
                            the AVX-512 kernels: one load gives the scales of a 64-value register) */
    int64_t       C;
} ft__ggml_act;

/* One instruction set's kernels, all single-threaded; ggml_matmul.c splits the rows. */
typedef struct ft__ggml_kernels {
    const char *name;
    /* out[n*ldo + o] = dot(inp[n, :C], W[o, :]) for o in [o0, o1), n < N (N <= FT_QUANT_DIRECT_MAX_N);
     * f32 activations, the blocks dequantized in registers */
    void (*fwd_f32)(float *out, int64_t ldo, const float *inp, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1);
    /* the same with int8 activations and integer block dot products */
    void (*fwd_q8)(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1);
    /* many rows (prompts): out[n*ldo + o] for o in [o0, o1) (at most 16 rows), all n < N; NULL: fwd_q8 in
     * groups of FT_QUANT_DIRECT_MAX_N rows. May leave a type to fwd_q8 (returns 0 when it did nothing). */
    int (*gemm_q8)(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1);
    /* dst[n] = the n values of the blocks at src, bit-identical to ft_ggml_dequantize_row_ref */
    void (*deq_row)(int type, const void *src, float *dst, int64_t n);
} ft__ggml_kernels;

extern const ft__ggml_kernels ft__ggml_kernels_scalar;
extern const ft__ggml_kernels ft__ggml_kernels_avx2;
extern const ft__ggml_kernels ft__ggml_kernels_avx512;

/* the table for ft_quant_isa_get() (AVX-512 needs VNNI too, else AVX2) */
const ft__ggml_kernels *ft__ggml_kernels_get(void);

/* Row o of t in the plain layout: a pointer into t->data, or (interleaved) buf [t->row_bytes] filled */
const uint8_t *ft__ggml_row(const ft_ggml_tensor *t, int64_t o, uint8_t *buf);
/* rows o with o < ft__ggml_groups(t) * 16 are interleaved (0 for a plain tensor) */
static inline int64_t ft__ggml_groups(const ft_ggml_tensor *t) { return t->interleaved ? t->rows / 16 : 0; }
/* the largest row that ft__ggml_row may copy (kernels keep a buffer of this on the stack) */
#define FT__GGML_ROWBUF 65536

/* Q4_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes */
static inline void ft__q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}
#endif
