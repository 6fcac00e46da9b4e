/* bf16_kernels.h — private to src/quant: the SIMD kernels behind ft_bf16_matmul_* (bf16.h). Each is
 * single-threaded over the output rows it is given; bf16_matmul.c splits the rows between threads and
 * calls them only when the CPU has the instructions (AVX-512 F+BW; DPBF16 also avx512_bf16). */
#ifndef FT_QUANT_BF16_KERNELS_H
#define FT_QUANT_BF16_KERNELS_H
#include "finetune/bf16.h"

#include <stdint.h>

/* out[n*ldo + o] = dot(inp[n, :C], W[o, :]) for o in [o0, o1), n < N; inp f32 [N, C] (row stride C) */
void ft__bf16_fwd_rows_f32fma(float *out, int64_t ldo, const float *inp, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1);
/* the same with the activations already in bf16: xb [N, C] */
void ft__bf16_fwd_rows_dpbf16(float *out, int64_t ldo, const uint16_t *xb, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1);
/* xb[n] = x[n] rounded to bf16 (round-to-nearest-even, vcvtneps2bf16), n values */
void ft__bf16_round_avx512(uint16_t *xb, const float *x, int64_t n);
/* dst[n] = src[n] widened to f32 */
void ft__bf16_widen_avx512(float *dst, const uint16_t *src, int64_t n);
#endif
