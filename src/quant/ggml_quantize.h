/* ggml_quantize.h — private to the GGUF quantizers (ggml_quantize*.c) and their tests: the scalar
 * reference row quantizers and the AVX-512 versions of Q8_0 / Q4_0, which must give the same bytes.
 * k (values in the row) is a multiple of the block size. */
#ifndef FT_GGML_QUANTIZE_H
#define FT_GGML_QUANTIZE_H
#include "quant/ggml_blocks.h"

#include <stdint.h>

#define FT_QK5_0 32
/* Q5_0 32 values: d (f16), qh (bit j = 5th bit of value j), qs[16] low nibbles as Q4_0;
 * x = d * (q - 16). Only the Q4_K fallback writes it. */
typedef struct ft_block_q5_0 {
    uint16_t d;
    uint8_t  qh[4];
    uint8_t  qs[FT_QK5_0 / 2];
} ft_block_q5_0;
_Static_assert(sizeof(ft_block_q5_0) == 22, "block_q5_0 is 22 bytes in GGUF");

void ft__quantize_row_q8_0_ref(const float *x, ft_block_q8_0 *y, int64_t k);
void ft__quantize_row_q4_0_ref(const float *x, ft_block_q4_0 *y, int64_t k);
void ft__quantize_row_q5_0_ref(const float *x, ft_block_q5_0 *y, int64_t k);
void ft__quantize_row_q4_K_ref(const float *x, ft_block_q4_K *y, int64_t k);
/* AVX-512F versions: call only when the CPU has it (ft_quant_isa_get() == FT_QUANT_ISA_AVX512). */
void ft__quantize_row_q8_0_avx512(const float *x, ft_block_q8_0 *y, int64_t k);
void ft__quantize_row_q4_0_avx512(const float *x, ft_block_q4_0 *y, int64_t k);
#endif
