/* gemm_bf16.h — matrix products with bf16 inputs and f32 accumulation (mixed-precision training).
 *
 * Overview. bf16 keeps f32's 8 exponent bits and 7 of its 23 mantissa bits, so a product of two bf16
 * numbers is exact in f32 and a CPU with AVX512-BF16 does twice the multiply-adds per instruction of an
 * f32 FMA (`vdpbf16ps`: 16 lanes, each lane acc += a[2i+1] b[2i+1], then acc += a[2i] b[2i]). The
 * functions here take f32 operands, round them to bf16 (round to nearest even, as `vcvtneps2bf16`:
 * f32 subnormals become signed zeros, NaNs stay quiet NaNs), multiply, and accumulate in f32. Every
 * result is a fixed function of the inputs: the sum over k runs in pairs k = (0,1), (2,3), ...; within
 * a pair the odd term is added first (the order of `vdpbf16ps`); an odd K is padded with a zero term.
 * The scalar reference (ft_ref_gemm_bf16) and the CPU kernels (ft_cpu_gemm_bf16: AVX512-BF16, or the
 * AVX-512F fallback that converts to f32 and uses FMAs in the same order) give the SAME BITS for
 * inputs without subnormals (the hardware flushes subnormal products and sums to zero).
 *
 * The CPU kernel packs the operands into the pair layout `vdpbf16ps` reads (32-bit words holding the
 * bf16 of k = 2p and k = 2p+1) while it converts them: weights are cast inside the packing that the
 * product needs anyway, activations likewise, so no bf16 copy of a tensor outlives a call unless the
 * caller keeps one on purpose (a weight pack, below: a trained weight's layouts kept between steps). The
 * packing workspace of one call is ft_gemm_bf16_workspace_bytes; the buffer is kept for the next call
 * (allocating 5-26 MiB afresh per call cost page faults every time) until ft_gemm_bf16_trim.
 *
 * Example (a linear layer, nn.Linear layout W [OC, C]):
 *
 *   // out[N,OC] = bf16(inp)[N,C] @ bf16(W)[OC,C]^T + bias
 *   ft_cpu_gemm_bf16(out, OC, inp, C, 0, W, C, 1, N, OC, C, 0, bias);
 *   // the same as a backend member (backend.h: ft_backend_cpu_bf16(), the "cpu-bf16" table):
 *   ft_cpu_matmul_bf16_forward(NULL, out, inp, W, bias, N, C, OC);
 *
 * Ownership: the caller owns every buffer; the GEMM keeps only its packing workspace between calls.
 * Thread safety: stateless apart from the instruction-set choice (an atomic, set once) and the kept
 * workspace (an atomic slot: a call takes it or allocates its own); the CPU kernel runs OpenMP inside one
 * call, any number of threads may call at once. */
#ifndef FINETUNE_GEMM_BF16_H
#define FINETUNE_GEMM_BF16_H
#include <stddef.h>
#include <stdint.h>

struct ft_attn_mask; /* ops.h */

/* f32 -> bf16 bits exactly as vcvtneps2bf16 (RNE; subnormal -> signed zero; NaN -> quiet NaN): tensor.h's
 * ft_f32_to_bf16 (the conversion of weight files, which keeps subnormals as torch does) except for subnormals */
uint16_t ft_bf16_round(float x);
/* x rounded to bf16 and back (the value the kernels multiply) */
float ft_bf16_roundtrip(float x);

/* C[M,N] (row stride ldc) = (accumulate ? C : bias[n] or 0) + sum_k op(A)[m,k] op(B)[k,n], the operands
 * rounded to bf16, the sum in f32 in the order stated above.
 *   op(A)[m,k] = transA ? A[k*lda + m] : A[m*lda + k]        (A is [M,K], or [K,M] when transA)
 *   op(B)[k,n] = transB ? B[n*ldb + k] : B[k*ldb + n]        (B is [K,N], or [N,K] when transB)
 * bias[N] may be NULL (ignored when accumulate). M, N, K >= 0 (K = 0 leaves the initial value). */
void ft_ref_gemm_bf16(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, int transB,
                      int M, int N, int K, int accumulate, const float *bias);
void ft_cpu_gemm_bf16(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, int transB,
                      int M, int N, int K, int accumulate, const float *bias);
/* A B operand that the GEMM asks for by blocks while it packs them, instead of reading it from memory: a
 * frozen quantized weight (NF4 / int8 rows) is dequantized straight into the packing, with no f32 copy of
 * the whole weight (the bf16 QLoRA step, ft_cpu_qmatmul_bf16_forward below).
 *   rows(ctx, dst, ldd, r0, nr, c0, nc): dst[i*ldd + j] = Bs[r0 + i][c0 + j] (f32) for i < nr, j < nc,
 *   where Bs is B as stored: [K, N] when transB is 0, [N, K] when it is 1.
 * The GEMM calls it from its OpenMP threads at once, on disjoint blocks, each value once per call; c0 is a
 * multiple of 64 and nc is a multiple of 64 or reaches the end of the row (whole rows when transB is 0, K
 * blocks when it is 1), so an NF4 block (64 values of a row) is never split. The result has the bits of
 * ft_cpu_gemm_bf16 on the materialised B. */
typedef struct ft_gemm_bf16_src {
    void (*rows)(const void *ctx, float *dst, size_t ldd, int r0, int nr, int c0, int nc);
    const void *ctx;
} ft_gemm_bf16_src;
void ft_cpu_gemm_bf16_src(float *C, int ldc, const float *A, int lda, int transA, const ft_gemm_bf16_src *B, int transB,
                          int M, int N, int K, int accumulate, const float *bias);

/* A given as bf16 bits (uint16_t: A's values as ft_bf16_round makes them; lda in bf16 elements, op(A) as above):
 * the same bits as ft_ref_gemm_bf16 / ft_cpu_gemm_bf16 on any f32 A whose values round to these. Packing such an
 * A only moves 16-bit values (no f32 read, no conversion): the LM head's logit gradients, which the cross-entropy
 * stores as bf16 once (ops.h, crossentropy_forward_backward_bf16), instead of 4 bytes read and converted by each
 * of the two products that take them. (The reference reads a subnormal bf16 value as 0, as the rounding would.) */
void ft_ref_gemm_bf16_a16(float *C, int ldc, const uint16_t *A, int lda, int transA, const float *B, int ldb, int transB,
                          int M, int N, int K, int accumulate, const float *bias);
void ft_cpu_gemm_bf16_a16(float *C, int ldc, const uint16_t *A, int lda, int transA, const float *B, int ldb, int transB,
                          int M, int N, int K, int accumulate, const float *bias);

/* bytes of packing workspace ft_cpu_gemm_bf16 needs for one call of these dimensions (with a source B,
 * plus a scratch of NR x 256 (transB) or 2 x N floats per thread for its blocks). The workspace is kept
 * for the next call (one buffer, as large as the largest call since the last trim needed). */
size_t ft_gemm_bf16_workspace_bytes(int M, int N, int K);
/* frees the kept workspace (the next call allocates a new one); safe at any time, from any thread */
void ft_gemm_bf16_trim(void);

/* The linear layer in bf16, with the contract of ops.h's matmul_forward / matmul_backward (backend.h):
 *   forward:  out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC]                                   (assigned)
 *   backward: dinp[N,C] = dout[N,OC] @ w (assigned); dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout
 * matmul products in bf16 (above), the bias gradient in f32/double exactly as the f32 kernels. */
void ft_ref_matmul_bf16_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
void ft_ref_matmul_bf16_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, int N, int C, int OC);
void ft_cpu_matmul_bf16_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
void ft_cpu_matmul_bf16_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, int N, int C, int OC);

/* Weights pre-packed for the linear layer (a weight pack). A linear layer's W [OC, C] is a B operand twice per
 * training step (forward: out = inp W^T; backward: dinp = dout W), in two different pair layouts, and packing it
 * reads all of W from memory each time. A weight pack keeps both layouts of bf16(W) in one block between steps:
 * the optimizer's pass over W, which reads it anyway, refreshes the pack in the same pass
 * (ft_cpu_adamw_update_wpack: rows updated NR at a time and packed from the cache), and the products read the
 * pack instead of W. The results have the bits of the products on W (ft_cpu_matmul_bf16_forward / _backward).
 *
 *   void *pk = aligned_alloc(64, ft_gemm_bf16_wpack_bytes(OC, C));   // about 4 bytes per weight
 *   ft_gemm_bf16_wpack_init(pk, OC, C);                               // stale: filled by its first use
 *   ft_cpu_matmul_bf16_wpack_forward(NULL, out, inp, W, pk, bias, N, C, OC);
 *   ft_cpu_matmul_bf16_wpack_backward(NULL, dinp, dW, dbias, dout, inp, W, pk, N, C, OC);
 *   ft_cpu_adamw_update_wpack(NULL, W, m, v, dW, (size_t)OC * C, &h, pk);   // W and its pack updated together
 *   // W changed any other way: ft_gemm_bf16_wpack_invalidate(pk) before its next product
 *
 * Ownership: the caller owns the block (64-byte aligned). Thread safety: a stale pack is filled by the product
 * that finds it stale, so products on one pack must not run concurrently while it may be stale (one model's
 * steps run one at a time); the validity flag is atomic. */
size_t ft_gemm_bf16_wpack_bytes(int OC, int C);
void   ft_gemm_bf16_wpack_init(void *pack, int OC, int C);
void   ft_gemm_bf16_wpack_shape(const void *pack, int *OC, int *C);
/* 1 when the pack holds bf16 of W as it is now; invalidate after changing W other than through the wpack AdamW */
int    ft_gemm_bf16_wpack_valid(const void *pack);
void   ft_gemm_bf16_wpack_invalidate(void *pack);
/* fills the whole pack from w [OC, C] (OpenMP) and marks it current */
void   ft_gemm_bf16_wpack_fill(void *pack, const float *w);
/* packs rows r0 .. r1 of w (r0 a multiple of ft_gemm_bf16_wpack_chunk_rows(), r1 the next multiple or OC); does
 * not change the validity flag (the fused updates pack every chunk, then mark it) */
int    ft_gemm_bf16_wpack_chunk_rows(void);
void   ft_gemm_bf16_wpack_rows(void *pack, const float *w, int r0, int r1);
/* the linear layer's contract (above) on W and its pack; a stale pack is filled from w first */
void ft_cpu_matmul_bf16_wpack_forward(void *ctx, float *out, const float *inp, const float *w, void *pack, const float *bias,
                                      int N, int C, int OC);
void ft_cpu_matmul_bf16_wpack_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                       const float *w, void *pack, int N, int C, int OC);
/* the backward above with dout given as bf16 bits [N, OC] (row stride ldd bf16 elements; the cross-entropy's bf16
 * logit gradients) and W's weight pack, or NULL for none: dinp and dw have the bits of ft_cpu_matmul_bf16_backward /
 * _wpack_backward on any f32 dout rounding to these values; dbias += the column sums of the bf16 values (in double
 * per column, as ft_cpu_bias_backward sums f32 values). The cpu-bf16 table's matmul_backward_dout16. */
void ft_cpu_matmul_bf16_backward_dout16(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd,
                                        const float *inp, const float *w, void *pack, int N, int C, int OC);
/* ft_cpu_matmul_bf16_backward (pack NULL) / _wpack_backward (pack set) with dw[OC,C] ASSIGNED = dout^T @ inp, the GEMM
 * with accumulate 0 (dw neither read nor needing initialised memory; zeros when N = 0): backend.h's
 * matmul_backward_assign_dw. The same values as accumulating into zeros (a -0.0 may stay -0.0 there). */
void ft_cpu_matmul_bf16_backward_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                           const float *w, void *pack, int N, int C, int OC);
/* ft_cpu_matmul_bf16_backward_dout16 with dw[OC,C] ASSIGNED = dout^T @ inp (as _assign_dw above): backend.h's
 * matmul_backward_dout16_assign_dw */
void ft_cpu_matmul_bf16_backward_dout16_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd,
                                                  const float *inp, const float *w, void *pack, int N, int C, int OC);
/* The GPT-2 MLP's GELU fused into its two products (the cpu-bf16 table's matmul_gelu_forward / _backward,
 * backend.h). pack: W's weight pack, or NULL (W packed at each use). x = inp @ w^T + bias, the pre-activation:
 *   forward:  act[N,OC] = gelu(x) and out[N,OC] = x (deriv 0), or gelu'(x) (deriv 1: all the backward needs of
 *             x, computed with the GELU, which shares its exponential, so that the backward's epilogue is one
 *             product per element instead of the derivative's exponential and division); the GELU of each macro
 *             tile computed after its last K block while its C is in L2;
 *   backward: dinp[N,C] = (dout @ w) * gelu'(pre), pre[N,C] the pre-activation of inp = gelu(pre) (deriv 0), or
 *             (dout @ w) * pre with pre holding gelu'(x) (deriv 1, the forward's out) (assigned: the gradient
 *             through the GELU, in the input-gradient product's epilogue); dw and dbias as
 *             ft_cpu_matmul_bf16_backward (assign_dw: dw assigned, as ft_cpu_matmul_bf16_backward_assign_dw).
 * Same bits as the product followed by ft_cpu_gelu_forward / ft_cpu_gelu_backward (ops.h): the same vector GELU
 * on the same f32 values, gelu' times the gradient last. ft_cpu_matmul_bf16_backward / _wpack_backward /
 * _assign_dw and these also sum the bias gradient while they pack dout for dW (same bits as
 * ft_cpu_bias_backward). FT_BF16_FUSE=0 in the environment turns every fusion off (the same results by separate
 * passes, for comparisons). */
void ft_cpu_matmul_bf16_gelu_forward(void *ctx, float *out, float *act, const float *inp, const float *w, void *pack,
                                     const float *bias, int N, int C, int OC, int deriv);
void ft_cpu_matmul_bf16_gelu_backward(void *ctx, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                                      const float *inp, const float *pre, int deriv, const float *w, void *pack, int N, int C,
                                      int OC);
struct ft_update_params;
/* ft_cpu_adamw_update (ops.h) on W [OC, C] = w[n] (n = OC C) that also leaves its pack current */
void ft_cpu_adamw_update_wpack(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const struct ft_update_params *h,
                               void *pack);

/* The attention family (ops.h, attn_forward / attn_backward: same arguments and contract) with its six
 * products QK^T, PV, dO V^T, dS K, dS^T Q, P^T dO in bf16 with the bits of ft_cpu_gemm_bf16 (on an AVX-512
 * CPU, on operands each (batch, head) task converts once, on the task's own thread); softmax, its backward
 * and the reductions in f32. The 1/sqrt(HS) scale multiplies the scores after their product and dS before its
 * products (f32). The "cpu-bf16" backend's attention. */
void ft_cpu_attn_bf16_forward(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v,
                              int ldv, const struct ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop,
                              unsigned long long seed);
void ft_cpu_attn_bf16_backward(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                               int ldq, const float *k, int ldk, const float *v, int ldv, const float *att,
                               const struct ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop,
                               unsigned long long seed);

/* QLoRA's frozen base in bf16, with the contract of ops.h's qmatmul_forward / qmatmul_backward (the
 * qmatmul members of the cpu-bf16 / ref-bf16 tables):
 *   forward:  out[N,OC] = inp[N,C] @ W^T + bias (assigned);  backward: dinp[N,C] = dout[N,OC] @ W (assigned)
 * For an NF4 / int8-rows W (dt FT_NF4 / FT_Q8_ROW) and N > FT_QUANT_DIRECT_MAX_N: the bf16 GEMM on the
 * dequantized W (the same values as ft_nf4_dequantize_ref / ft_q8row_dequantize_ref give, rounded to bf16).
 * The CPU version dequantizes while it packs (ft_gemm_bf16_src) and does not touch ws; the reference
 * dequantizes into ws[wsn] (by blocks of rows when it is smaller than OC x C); both give the same bits.
 * Otherwise (fewer rows: the direct SIMD kernels; FT_BF16 / ggml weights) exactly the f32 table's member. */
void ft_ref_qmatmul_bf16_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws,
                                 size_t wsn);
void ft_ref_qmatmul_bf16_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn);
void ft_cpu_qmatmul_bf16_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws,
                                 size_t wsn);
void ft_cpu_qmatmul_bf16_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn);

/* Which CPU kernel ft_cpu_gemm_bf16 runs: the best this CPU has, or the one named by FT_BF16_ISA=
 * avx512bf16|avx512f|scalar in the environment (read once), or ft_bf16_isa_set (tests). "scalar" is the
 * reference loop (correct, slow): what a CPU without AVX-512 would get, which is why
 * ft_backend_for_precision (backend.h) refuses bf16 there. */
typedef enum ft_bf16_isa { FT_BF16_ISA_SCALAR = 0, FT_BF16_ISA_AVX512F = 1, FT_BF16_ISA_AVX512BF16 = 2 } ft_bf16_isa;
ft_bf16_isa ft_bf16_isa_best(void);
ft_bf16_isa ft_bf16_isa_get(void);
/* FT_ERR_UNSUPPORTED when the CPU lacks isa */
int         ft_bf16_isa_set(ft_bf16_isa isa);
const char *ft_bf16_isa_name(ft_bf16_isa isa);
#endif
