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
/* ---- the GEMM driver as the linear layer (cpu/matmul_bf16.c) uses it
 * Epilogues: what a product does besides C, after the last K block of each macro tile while its C is in L2
 * (gemm_bf16.c, "epilogues", says why there):
 *   act: act[m][n] = gelu(C[m][n]) (ft_cpu_gelu_forward's bits); C keeps the pre-activation, or (deriv) becomes
 *        gelu'(C[m][n]);
 *   pre: C[m][n] = C[m][n] gelu'(pre[m][n]) (ft_cpu_gelu_backward's bits), or (deriv: pre holds the forward's
 *        gelu') C[m][n] pre[m][n];
 *   dbias: while a transposed f32 A is packed (dW = dout^T inp), dbias[m] (+)= sum over k of op(A)[m][k]. */
typedef struct {
    float *act;       /* [M, N] row stride ldact, or NULL */
    size_t ldact;
    int deriv;        /* with act: C = gelu'(C) too (after act = gelu(C)); with pre: pre holds gelu'(x), C = C pre */
    const float *pre; /* [M, N] row stride ldpre, or NULL (not with act) */
    size_t ldpre;
    float *dbias;     /* [M], or NULL */
    int dbias_assign; /* dbias = the sums (else +=) */
} ft__gemm_epi;
/* transA | FT__GEMM_A16: A holds bf16 values (uint16_t, lda in bf16 elements), else f32 */
#define FT__GEMM_A16 2
/* ft_cpu_gemm_bf16 with B pre-packed (bpre: a weight pack's layout, kc_pre its K block; NULL: B from memory) and
 * epilogues (epi, NULL: none; an f32 A only) */
void ft__gemm_bf16_ex(float *C, int ldc, const void *A, int lda, int transA, const float *B, int ldb, const uint32_t *bpre, int kc_pre,
                      int transB, int M, int N, int K, int accumulate, const float *bias, const ft__gemm_epi *epi);
/* the GELU part of e (act or pre) as a separate pass over C [M, N] (row stride ldc): the unfused calls' bits */
void ft__gemm_bf16_epi_pass(const ft__gemm_epi *e, float *C, int ldc, int M, int N);
/* a weight pack's forward (backward 0: B of inp W^T) or backward (1: B of dout W) layout, packed from w first if
 * stale; *kc: its K block (ft__gemm_bf16_ex's kc_pre) */
const uint32_t *ft__gemm_bf16_wpack_layout(void *pack, const float *w, int backward, int *kc);
/* marks a weight pack current (after every row of it was packed: ft_gemm_bf16_wpack_fill, the fused AdamW) */
void ft__gemm_bf16_wpack_set_valid(void *pack);
#endif
