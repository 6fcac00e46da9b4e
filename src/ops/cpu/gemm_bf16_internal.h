/* gemm_bf16_internal.h — knobs of the CPU bf16 GEMM (cpu/gemm_bf16.c) for the tests, and its entry for
 * operands converted once (attention, cpu/attn.c). Not installed. */
#ifndef FINETUNE_GEMM_BF16_INTERNAL_H
#define FINETUNE_GEMM_BF16_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

/* bytes of packed A and B per chunk and K block above which the GEMM cuts K into shorter blocks and the
 * larger of M and N into chunks (default 16 MiB; 0 restores it). A tiny budget makes small products take
 * the paths of large ones (tests/test_gemm_bf16.c). Results do not depend on it. Not for concurrent use
 * with running GEMMs of other threads whose workspace it would change between the size and the use. */
void ft__gemm_bf16_set_pack_budget(size_t bytes);

/* Products on operands converted to bf16 once and read by many products (attention: per head, the same
 * Q, K, V, dO in up to 12 products of 1-4 MFLOP), run entirely on the calling thread: no OpenMP (callable
 * inside any parallel region, active or not), no allocation, no shared state. Same bits as ft_cpu_gemm_bf16
 * (gemm_bf16.h: words of the bf16 of k = 2p (low half) and 2p + 1 (high half), pairs summed in order, the
 * odd term first). Needs an AVX-512 kernel: ft_bf16_isa_get() != FT_BF16_ISA_SCALAR.
 *
 * A B operand: strips of 32 columns, bp[s][p][32] (kpn = ceil(K / 2) words per column, columns >= N
 * zero): op(B)[K, N] (transB as in ft_cpu_gemm_bf16) packed by ft__bf16_pack_b into
 * ft__bf16_bpack_words(N, K) words. A product may read steps p0 .. p0 + kpn of it (the rows k = 2 p0 ..
 * of op(B)): a range of K that starts even and ends even or at K.
 * An A operand is read in place: word (m, p) at a[m * sm + p * sk], where sk == 1 (rows of words, as
 * ft__bf16_row_words writes a row) or sm == 1 (pairs of rows dealt out, as ft__bf16_pair_words writes
 * them: the transpose of a row-major matrix); other strides work, slowly.
 *
 * ft__gemm_bf16_words: C[M,N] (row stride ldc) = (accumulate ? C : 0) + sum over p < kpn of A-word (m, p)
 * times the B words of step p0 + p, column n (kpb: the B pack's words per column, its ceil(K / 2)). */
size_t ft__bf16_bpack_words(int N, int K);
void ft__bf16_pack_b(uint32_t *bp, const float *B, int ldb, int transB, int N, int K);
/* dst[p] = bf16(src[2p]) | bf16(src[2p + 1]) << 16 for p < ceil(n / 2) (an odd n: the last high half 0) */
void ft__bf16_row_words(uint32_t *dst, const float *src, int n);
/* dst[j] = bf16(r0[j]) | bf16(r1[j]) << 16 for j < n (r1 NULL: high halves 0) */
void ft__bf16_pair_words(uint32_t *dst, const float *r0, const float *r1, int n);
void ft__gemm_bf16_words(float *C, int ldc, const uint32_t *a, size_t sm, size_t sk, const uint32_t *bp, size_t kpb, int p0,
                         int M, int N, int kpn, int accumulate);
/* the fused epilogues of the cpu-bf16 linear layer (gemm_bf16.h: the MLP's GELU, the bias gradient in dout's
 * pack) on (1, the default) or off (0: the unfused calls, same bits; FT_BF16_FUSE=0 in the environment does the
 * same at start). Read at each call: a test or a benchmark may alternate between steps. */
void ft__gemm_bf16_set_fuse(int on);
int ft__gemm_bf16_fuse(void);
/* marks a weight pack current (after every row of it was packed: ft_gemm_bf16_wpack_fill, the fused AdamW) */
void ft__gemm_bf16_wpack_set_valid(void *pack);
#endif
