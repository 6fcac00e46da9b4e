/* gguf_quantize.h — ggml's tensor types as finetune writes them into GGUF files: F32, F16, BF16 and the
 * block-quantized Q8_0, Q4_0, Q4_K (and Q5_0, the type llama.cpp's quantize falls back to when a Q4_K
 * row is not a multiple of 256 values).
 *
 * The quantizers are bit-identical to ggml's reference ones (quantize_row_q8_0_ref, _q4_0_ref,
 * _q5_0_ref, _q4_K_ref with make_qkx2_quants), which llama.cpp's `llama-quantize` uses when no
 * importance matrix is given: a file we quantize and one llama.cpp quantizes from the same f32
 * weights hold the same bytes (tests/gguf/llama_cpp_check.py checks it against llama.cpp itself).
 * Half-precision scales are rounded to nearest-even, as ggml's GGML_FP32_TO_FP16. The block
 * layouts are the static-asserted structs of src/quant/ggml_blocks.h.
 *
 *   size_t row = ft_gguf_type_row_bytes(FT_GGML_Q4_0, 4096);        // 128 blocks x 18 bytes
 *   void *q = malloc(row * rows);
 *   ft_gguf_quantize(FT_GGML_Q4_0, w, rows, 4096, q);         // w: [rows, 4096] f32
 *   ft_gguf_dequantize(FT_GGML_Q4_0, q, rows * 4096, back);   // back: [rows * 4096] f32
 *
 * Q8_0 and Q4_0 have a scalar reference and an AVX-512 version (picked at run time like the other
 * quantized kernels, FT_QUANT_ISA=scalar forces the reference); both give the same bytes (tested).
 * Every function is reentrant (ft_gguf_quantize splits large tensors over OpenMP threads); callers own
 * every buffer. */
#ifndef FINETUNE_GGUF_QUANTIZE_H
#define FINETUNE_GGUF_QUANTIZE_H
#include <stddef.h>
#include <stdint.h>

/* ggml type ids (FT_GGML_F32, ..., FT_GGML_Q5_0 for Q4_K's fallback): ggml_types.h */
#include "finetune/ggml_types.h"

/* Values per block (1 for F32/F16/BF16), bytes per block; 0 for a type this file does not write. */
int    ft_gguf_type_block_size(uint32_t type);
size_t ft_gguf_type_block_bytes(uint32_t type);
/* Bytes of one row of ncols values; 0 when the type is unknown or ncols is not a multiple of its block. */
size_t ft_gguf_type_row_bytes(uint32_t type, int64_t ncols);
/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_0" -> the type id; -1 if unknown (case-insensitive). */
int    ft_gguf_type_from_name(const char *name);

/* src [nrows, ncols] f32 -> dst (nrows * ft_gguf_type_row_bytes bytes). F32 copies, F16 / BF16 round to
 * nearest-even. FT_ERR_UNSUPPORTED for another type, FT_ERR_SHAPE when ncols is not a multiple of
 * the block size. */
int ft_gguf_quantize(uint32_t type, const float *src, int64_t nrows, int64_t ncols, void *dst);
/* n values (a multiple of the block size) of type back to f32 (ggml's dequantize_row_*). */
int ft_gguf_dequantize(uint32_t type, const void *src, int64_t n, float *dst);
#endif
