/* ggml_blocks.h — the block layouts of ggml's quantized tensor types, as they lie in a GGUF file.
 *
 * These are facts of the GGUF format (ggml-common.h): a tensor of type Q8_0 / Q4_0 / Q4_K is a row-major
 * sequence of blocks along each row (ne[0], the innermost dimension, is a multiple of the block size), each
 * block self-contained with its scale(s) stored as IEEE half (uint16 bits here). The structs below are
 * static-asserted to the sizes llama.cpp reads, so a file we write and a file we read are the same bytes.
 *
 *   Q8_0  32 values:  d (f16), qs[32] int8                     x = d * qs[i]
 *   Q4_0  32 values:  d (f16), qs[16] nibbles                  x = d * (nibble - 8);
 *                     byte j holds value j in its LOW nibble and value j+16 in its HIGH nibble
 *   Q4_K  256 values: d, dmin (f16), scales[12], qs[128]       8 sub-blocks of 32 values, each with a 6-bit scale
 *                     sc and 6-bit min m packed in scales[12]: x = d*sc * nibble - dmin*m;
 *                     qs holds 4 chunks of 64 values: byte l of chunk c holds value c*64+l in its low nibble
 *                     and value c*64+32+l in its high nibble
 *   Q8_K  256 values: d (f32), qs[256] int8, bsums[16] int16   (activations of the K-quant dot products only;
 *                     never stored in a file)
 *
 * Owners: the quantizers that write these (bit-identical to ggml's reference quantizers) live with the
 * GGUF export; the dequantize-in-register dot products that read them live with the quantized matmul. */
#ifndef FT_GGML_BLOCKS_H
#define FT_GGML_BLOCKS_H
#include <stdint.h>

#define FT_QK8_0 32
#define FT_QK4_0 32
#define FT_QK_K 256
#define FT_K_SCALE_SIZE 12

/* the type ids: include/finetune/ggml_types.h */
#include "finetune/ggml_types.h"

typedef struct ft_block_q8_0 {
    uint16_t d;              /* f16 scale */
    int8_t   qs[FT_QK8_0];
} ft_block_q8_0;

typedef struct ft_block_q4_0 {
    uint16_t d;              /* f16 scale */
    uint8_t  qs[FT_QK4_0 / 2];
} ft_block_q4_0;

typedef struct ft_block_q4_K {
    uint16_t d;              /* f16 super-block scale of the sub-block scales */
    uint16_t dmin;           /* f16 super-block scale of the sub-block mins */
    uint8_t  scales[FT_K_SCALE_SIZE]; /* 8 scales and 8 mins, 6 bits each */
    uint8_t  qs[FT_QK_K / 2];
} ft_block_q4_K;

typedef struct ft_block_q8_K {
    float    d;
    int8_t   qs[FT_QK_K];
    int16_t  bsums[FT_QK_K / 16]; /* sum of each group of 16 qs */
} ft_block_q8_K;

_Static_assert(sizeof(ft_block_q8_0) == 34, "block_q8_0 is 34 bytes in GGUF");
_Static_assert(sizeof(ft_block_q4_0) == 18, "block_q4_0 is 18 bytes in GGUF");
_Static_assert(sizeof(ft_block_q4_K) == 144, "block_q4_K is 144 bytes in GGUF");
_Static_assert(sizeof(ft_block_q8_K) == 292, "block_q8_K is 292 bytes");
#endif
