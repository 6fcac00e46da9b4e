/* tensor.h — a typed, shaped view of memory.
 * A tensor never owns its data: data points into an arena (weights, grads, activations)
 * or into a memory-mapped file. Dimensions are row-major, shape[ndim-1] is contiguous.
 * Block-quantized dtypes (int8 rows, NF4 blocks) store whole blocks along the last dimension;
 * ft_tensor_nbytes accounts for that, so model code sizes buffers the same way for every dtype. */
#ifndef FINETUNE_TENSOR_H
#define FINETUNE_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#define FT_MAX_DIMS 4

typedef enum ft_dtype {
    FT_F32 = 0,
    FT_F16,
    FT_BF16,
    FT_I32,
    FT_I64,
    FT_I8,
    FT_U8,
    FT_Q8_ROW,  /* int8 values with one f32 absmax scale per row (reserved) */
    FT_NF4,     /* 4-bit normal-float, blocks of 64 with quantized scales (reserved) */
    FT_Q8_0,    /* ggml blocks as in GGUF files (ggml_quant.h): 32 int8 + f16 scale */
    FT_Q4_0,    /*   32 nibbles + f16 scale */
    FT_Q4_K,    /*   256 nibbles, 8 sub-blocks with 6-bit scales and mins, two f16 super-scales */
    FT_DTYPE_COUNT
} ft_dtype;

typedef struct ft_tensor {
    ft_dtype dtype;
    int      ndim;
    int64_t  shape[FT_MAX_DIMS];
    void    *data;
} ft_tensor;

const char *ft_dtype_name(ft_dtype t);       /* "F32", "BF16", ... (safetensors spelling) */
int         ft_dtype_from_name(const char *s, ft_dtype *out); /* FT_ERR_DTYPE if unknown */
size_t      ft_dtype_size(ft_dtype t);       /* bytes per element; 0 for block types */
int64_t     ft_tensor_numel(const ft_tensor *t);
size_t      ft_tensor_nbytes(const ft_tensor *t);
/* "[2, 768]" into buf */
const char *ft_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);

/* f16 / bf16 <-> f32 conversion (round-to-nearest-even on the way down; NaN stays a quiet NaN; f32
 * subnormals round like any value, as torch's .to(bfloat16)). The bf16 matmuls round with gemm_bf16.h's
 * ft_bf16_round instead: the same but subnormals -> signed zero, as the vcvtneps2bf16 instruction. */
float    ft_f16_to_f32(uint16_t h);
uint16_t ft_f32_to_f16(float f);
float    ft_bf16_to_f32(uint16_t h);
uint16_t ft_f32_to_bf16(float f);
#endif
