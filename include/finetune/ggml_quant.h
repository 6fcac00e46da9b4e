/* ggml_quant.h — matmuls that read ggml's quantized blocks (Q8_0, Q4_0, Q4_K) as they lie in a GGUF
 * file, for inference on quantized GGUF models without dequantizing them to f32.
 *
 * Overview
 *   A weight W[OC, C] (nn.Linear layout: one GGUF tensor with ne = (C, OC)) is a row-major sequence of
 *   blocks along each row (src/quant/ggml_blocks.h has the layouts). An ft_ggml_tensor only describes
 *   such bytes (it never owns them: they are a model's arena or a mapped file). Then
 *     ft_ggml_matmul_forward   out[N,OC] = inp[N,C] @ W^T (+ bias)
 *     ft_ggml_matmul_backward  dinp[N,C] = dout[N,OC] @ W      (assigned; W is frozen)
 *
 *   ft_ggml_tensor w = {FT_GGML_Q4_0, OC, C, ft_ggml_row_bytes(FT_GGML_Q4_0, C), blocks};
 *   size_t nws = ft_quant_workspace_floats(FT_QUANT_WS_FAST, 0, C, OC, 0);    // quant.h, once at init
 *   FT_TRY(ft_ggml_matmul_forward(out, inp, &w, NULL, N, ws, nws));
 *
 * Dequantization (the GGUF formulas, scales are IEEE half):
 *   Q8_0  x = d * q                       Q4_0  x = d * (nibble - 8)
 *   Q4_K  x = d * sc_j * nibble - dmin * m_j   (sub-block j of 32 values, 6-bit sc_j / m_j)
 *   ft_ggml_dequantize_row_ref is the ground truth; every other path is tested against it.
 *
 * Paths (quant.h's ft_quant_path)
 *   DIRECT  the blocks decoded in registers (AVX-512 VNNI, AVX2, scalar reference), no f32 copy of W. Two flavours:
 *           - int8 activations (the default, as llama.cpp does): each input row is quantized once per call to
 *             int8 with one f32 scale per 32 values (round to nearest, scale = max|x| / 127) and the block dot
 *             products are integer, one float multiply-add per block. N <= FT_QUANT_DIRECT_MAX_N (decoding):
 *             each thread streams a contiguous range of W rows (vpdpbusd / vpmaddubsw per block pair). Larger
 *             N (prompts): tiles of 16 W rows over the threads; on AVX-512 VNNI a tile's blocks are transposed
 *             so that one vpdpbusd lane is one (row, input) pair and every input row costs 8 vpdpbusd per 32
 *             values for all 16 rows: by plain loads from the interleaved layout (ft_ggml_tensor_interleave,
 *             all three types; GGUF models are loaded so), by gathers from the plain one (Q8_0, Q4_0; plain
 *             Q4_K runs the row kernels 8 inputs at a time). Decoding reads interleaved groups the same way.
 *             The rounding of the activations to 8 bits bounds the error by max_o sum_c |x_c w_oc| / 254; on
 *             random data about 3e-3 to 8e-3 of it, on stories260K about 2e-2 of the largest logit
 *             (tests/test_ggml_kernels.c, tests/test_gguf_model.c print them).
 *           - f32 activations (ft_ggml_set_exact(1) or FT_GGML_EXACT=1): f32 FMAs on the dequantized values;
 *             agrees with the reference to float rounding (1e-5 relative).
 *   TILED / FULL  dequantize a tile / the whole W into the workspace, then OpenBLAS sgemm.
 *   AUTO: int8 activations: DIRECT for every N; f32 activations: DIRECT for N <= FT_QUANT_DIRECT_MAX_N, else FULL
 *   when the workspace holds OC*C floats, else TILED (FT_GGML_PATH=direct|tiled|full overrides AUTO for N > 8).
 *   Results do not depend on the thread count (each output is summed by one thread in a fixed order) and are
 *   deterministic.
 *
 * Threads: OpenMP (omp_get_max_threads()). Nothing here allocates except when ws is NULL or too small for
 * DIRECT's int8 activations (then one malloc per call). Errors: negative ft_status with a message. */
#ifndef FINETUNE_GGML_QUANT_H
#define FINETUNE_GGML_QUANT_H
#include <stddef.h>
#include <stdint.h>

#include "finetune/quant.h"

/* ggml type ids (FT_GGML_Q8_0, FT_GGML_Q4_0, FT_GGML_Q4_K here): ggml_types.h */
#include "finetune/ggml_types.h"

typedef struct ft_ggml_tensor {
    int         type;       /* FT_GGML_Q8_0 / FT_GGML_Q4_0 / FT_GGML_Q4_K */
    int64_t     rows, cols; /* [OC, C]; cols a multiple of the block size (32, or 256 for Q4_K) */
    size_t      row_bytes;  /* ft_ggml_row_bytes(type, cols) */
    const void *data;       /* [rows * row_bytes] blocks, row-major (or interleaved); not owned */
    int         interleaved;/* 0: row-major blocks as in the file; 1: ft_ggml_tensor_interleave's layout */
} ft_ggml_tensor;

/* 1 for the three types above, 0 otherwise. */
int    ft_ggml_type_supported(int type);
/* values per block (32 / 32 / 256), bytes per block (34 / 18 / 144); 0 for other types */
int    ft_ggml_block_values(int type);
int    ft_ggml_block_bytes(int type);
/* bytes of one row of cols values (0 when cols is not a multiple of the block size or type unknown) */
size_t ft_ggml_row_bytes(int type, int64_t cols);
/* Fills t after checking the shape: FT_ERR_SHAPE when cols is not a multiple of the block size,
 * FT_ERR_UNSUPPORTED for other types. */
int    ft_ggml_tensor_init(ft_ggml_tensor *t, int type, int64_t rows, int64_t cols, const void *data);

/* Re-lays t's blocks in place (data is t->data, writable) for the AVX-512 VNNI kernels: rows in groups of
 * 16, the rows % 16 last rows left row-major after them. Block j of group g (bytes g * 16 * row_bytes +
 * j * 16 * block_bytes) holds the 16 rows' f16 fields (d; Q4_K: d, then dmin), then for each later dword k
 * of the block (Q4_K: 3 dwords of packed scales, then 32 of quants) the 16 rows' dword k: one 64-byte load
 * is the 4 weights 4k..4k+3 of 16 rows, so that a vpdpbusd lane is a row and a matrix-vector product needs
 * no horizontal sums. The same bytes, so every function here accepts either layout. Single-threaded;
 * mallocs 16 rows; FT_ERR_UNSUPPORTED for rows over 64 KiB. */
int ft_ggml_tensor_interleave(ft_ggml_tensor *t, void *data);

/* dst[n] = the n values of the blocks at src (n a multiple of the block size). Scalar reference. */
void ft_ggml_dequantize_row_ref(int type, const void *src, float *dst, int64_t n);
/* out[nr, cols] (row stride ldo) = rows [r0, r0 + nr) of t (either layout): scalar reference */
void ft_ggml_dequantize_rows_ref(float *out, size_t ldo, const ft_ggml_tensor *t, int64_t r0, int64_t nr);
/* out[nr, cols] (row stride ldo) = rows [r0, r0 + nr) of t; SIMD where available, single-threaded,
 * equal to the reference (the same float operations). ft_ggml_dequantize: all of t, multi-threaded. */
void ft_ggml_dequantize_rows(float *out, size_t ldo, const ft_ggml_tensor *t, int64_t r0, int64_t nr);
void ft_ggml_dequantize(float *out, const ft_ggml_tensor *t);

/* out[N,OC] = inp[N,C] @ W^T + bias (bias may be NULL), assigned. ws / ws_floats as quant.h. */
int ft_ggml_matmul_forward(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws, size_t ws_floats);
int ft_ggml_matmul_forward_path(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws,
                                size_t ws_floats, ft_quant_path path);
/* dinp[N,C] = dout[N,OC] @ W, assigned (dequantized tiles + sgemm; row by row when ws is too small). */
int ft_ggml_matmul_backward(float *dinp, const float *dout, const ft_ggml_tensor *w, int N, float *ws, size_t ws_floats);

/* DIRECT with f32 activations (1) or int8 activations (0, the default; FT_GGML_EXACT=1 in the
 * environment sets 1 at the first call). Process-wide; not thread-safe with concurrent matmuls. */
void ft_ggml_set_exact(int exact);
int  ft_ggml_get_exact(void);
/* The kernel set DIRECT uses: "avx512-vnni", "avx2" or "scalar" (follows ft_quant_isa_get: AVX-512
 * kernels need AVX-512 VNNI too, else the AVX2 ones run). */
const char *ft_ggml_kernels_name(void);
#endif
