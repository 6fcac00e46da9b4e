/* bf16.h — frozen weights stored in bfloat16 for generation and serving, with the matmuls that read them.
 *
 * Overview
 *   Decoding one token at a time (batch 1) is memory-bound: every weight is read once per token, so the
 *   bytes per weight set the speed (GPT-2 124M reads ~500 MB per token in f32). A bf16 weight is the f32
 *   value rounded to its upper 16 bits (round-to-nearest-even, as vcvtneps2bf16 and torch's .bfloat16()
 *   do): half the memory and half the traffic, 8 significant bits. The model converts its matmul weights
 *   once at load (`--precision bf16`, ft_model_load_quantized(.., FT_BF16)); embeddings, norms and biases
 *   stay f32, and so do the activations, the KV cache and every accumulation.
 *
 *   ft_bf16_tensor w;
 *   void *blob = aligned_alloc(64, ft_bf16_nbytes(OC, C));       // or an arena
 *   FT_TRY(ft_bf16_view(&w, OC, C, blob));
 *   ft_bf16_from_f32(&w, w_f32);                                   // w_f32 [OC, C], rounded RNE
 *   size_t nws = ft_bf16_workspace_floats(OC, C);
 *   float *ws = malloc(nws * sizeof(float));                       // per caller (per context), once
 *   FT_TRY(ft_bf16_matmul_forward(out, inp, &w, bias, N, ws, nws)); // out [N, OC] = inp [N, C] W^T (+ bias)
 *   FT_TRY(ft_bf16_matmul_backward(dinp, dout, &w, N, ws, nws));    // dinp [N, C] = dout [N, OC] W (frozen W)
 *
 * Paths (ft_bf16_matmul_forward)
 *   DIRECT  N <= FT_BF16_DIRECT_MAX_N (decoding, batched slots, short prefill): OpenMP over blocks of 4
 *           output rows; each weight chunk is loaded once and used for up to 4 activation rows at a time.
 *           Two dot products, picked by ft_bf16_set_dot (default FT_BF16_DOT_F32FMA, see BENCHMARKS.md):
 *           F32FMA  AVX-512F: 16 bf16 widened to f32 (a zero-extend and a shift), FMA with the f32
 *                   activations. Every product is exact in f32 (the f32 activation is not rounded).
 *           DPBF16  AVX512-BF16 vdpbf16ps: the activations are rounded to bf16 once per call, 32 pair
 *                   products per instruction. Needs the CPU flag avx512_bf16.
 *   TILED   larger N (prefill of a long prompt): blocks of W rows widened to f32 in the workspace, then
 *           cblas_sgemm (OpenBLAS, all threads). Exact products too.
 *   ft_bf16_matmul_backward widens blocks of rows likewise and accumulates dout W with sgemm.
 *
 * Ground truth: ft_bf16_matmul_forward_ref (f32 activation times the widened weight, summed in double),
 * ft_bf16_matmul_forward_bf16act_ref (the activation rounded to bf16 first: DPBF16's arithmetic) and
 * ft_bf16_matmul_backward_ref. The SIMD paths sum in f32 in another order: they agree with their
 * reference within a few f32 ulps of sum |x| |w| per output (the tests bound it by C * 2^-23 of that sum).
 *
 * Instruction sets: the SIMD paths run when the kernel table in use (src/quant/isa.c, FT_QUANT_ISA) is
 * AVX-512; otherwise the scalar loops of the references run (tests force them with ft_quant_isa_set).
 * ft_bf16_check_cpu says, as an error to show the user, when this CPU cannot run bf16 weights fast.
 *
 * Ownership: a view never owns its data. Thread safety: the matmuls only read w; ws is the caller's
 * scratch (one per concurrent caller). ft_bf16_set_dot is a process-wide switch for benchmarks/tests.
 * Errors: negative ft_status (status.h), nothing aborts. */
#ifndef FINETUNE_BF16_H
#define FINETUNE_BF16_H
#include <stddef.h>
#include <stdint.h>

typedef struct ft_bf16_tensor {
    int64_t   rows, cols;    /* W [rows, cols] = [OC, C], nn.Linear layout */
    uint16_t *data;          /* [rows, cols] bf16 bit patterns, row-major; not owned */
} ft_bf16_tensor;

/* the largest N of the DIRECT path (above it: TILED) */
#define FT_BF16_DIRECT_MAX_N 256

typedef enum ft_bf16_dot {
    FT_BF16_DOT_F32FMA = 0,  /* widen bf16 -> f32, FMA with the f32 activations (AVX-512F) */
    FT_BF16_DOT_DPBF16 = 1,  /* activations rounded to bf16, vdpbf16ps (AVX512-BF16) */
} ft_bf16_dot;

/* bytes of a [rows, cols] bf16 payload */
size_t ft_bf16_nbytes(int64_t rows, int64_t cols);
/* t describes data (ft_bf16_nbytes bytes, 2-byte aligned at least); FT_ERR_INVALID for bad sizes */
int ft_bf16_view(ft_bf16_tensor *t, int64_t rows, int64_t cols, void *data);
/* t's payload = w [rows, cols] rounded to bf16 (round-to-nearest-even, NaN kept NaN); OpenMP */
void ft_bf16_from_f32(ft_bf16_tensor *t, const float *w);
/* w [nr, cols] = rows [r0, r0 + nr) of t widened to f32 (exact) */
void ft_bf16_rows_to_f32(float *w, const ft_bf16_tensor *t, int64_t r0, int64_t nr);

/* floats of workspace the matmuls want for W [OC, C]: a block of up to 256 widened rows, and room for
 * FT_BF16_DIRECT_MAX_N activation rows in bf16 */
size_t ft_bf16_workspace_floats(int64_t OC, int64_t C);

/* out [N, OC] = inp [N, C] W^T (+ bias [OC], may be NULL), ASSIGNED. ws [wsn] scratch (a smaller ws
 * gives smaller tiles; wsn < C, or DPBF16 without room for its bf16 activations, falls back to
 * F32FMA / the scalar loop). FT_ERR_INVALID on bad sizes. */
int ft_bf16_matmul_forward(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N, float *ws, size_t wsn);
/* dinp [N, C] = dout [N, OC] W, ASSIGNED (W frozen: no weight gradient) */
int ft_bf16_matmul_backward(float *dinp, const float *dout, const ft_bf16_tensor *w, int N, float *ws, size_t wsn);

/* scalar references (single thread, double accumulation) */
void ft_bf16_matmul_forward_ref(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N);
void ft_bf16_matmul_forward_bf16act_ref(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N);
void ft_bf16_matmul_backward_ref(float *dinp, const float *dout, const ft_bf16_tensor *w, int N);

/* the DIRECT path's dot product (process-wide; FT_BF16_DOT env "f32fma" / "dpbf16" sets the start value).
 * FT_ERR_UNSUPPORTED when the CPU lacks the instructions. */
int ft_bf16_set_dot(ft_bf16_dot d);
ft_bf16_dot ft_bf16_get_dot(void);
const char *ft_bf16_dot_name(ft_bf16_dot d);

/* FT_OK when this CPU runs bf16 weights with SIMD kernels (AVX-512 F+BW); else FT_ERR_UNSUPPORTED with a
 * message naming what is missing and the way back (--precision f32). */
int ft_bf16_check_cpu(void);
/* 1 when the CPU has AVX512-BF16 (vdpbf16ps) */
int ft_bf16_cpu_has_dpbf16(void);
#endif
