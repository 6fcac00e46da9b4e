/* ggml_more.h — ggml types read as f32 at load time only (ggml_dequant_more.c): Q4_1, Q5_0, Q5_1, Q5_K, Q6_K. */
#ifndef FT_GGML_MORE_H
#define FT_GGML_MORE_H
#include <stdint.h>
#include "quant/ggml_blocks.h"


/* 1 and the block's values / bytes when type is one of these, else 0 */
int ft__ggml_more_block(int type, int *values, int *bytes);
/* dst[n] = the n values of the blocks at src; 1 on success, 0 when type is not one of these or n is not a
 * multiple of its block */
int ft__ggml_more_dequantize(int type, const void *src, float *dst, int64_t n);
#endif
