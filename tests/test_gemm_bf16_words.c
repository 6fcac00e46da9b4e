/* test_gemm_bf16_words.c — the bf16 GEMM's entry for operands converted once (ops/cpu/gemm_bf16_internal.h:
 * ft__bf16_pack_b, ft__bf16_row_words, ft__bf16_pair_words, ft__gemm_bf16_words), the path of the bf16
 * attention's products. Against the scalar reference ft_ref_gemm_bf16, the SAME BITS: random shapes with
 * tails (M not a multiple of the 12-row tile, N of the 32-column strip, odd K), A as rows of words, as
 * pairs of rows dealt out (a transposed A) and with strides of neither form, B plain and transposed, a K
 * range inside a longer B pack (prefix and suffix, as the causal blocks read them), assigned and
 * accumulated; called from both threads of an active 2-thread parallel region (the entry must not start
 * or join any OpenMP construct), with the AVX512-BF16 and the AVX-512F kernels. */
#include "testutil.h"

#include "finetune/gemm_bf16.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one random product through the words entry and the reference; returns 1 when their bits differ */
static int one_case(ft_rng *r, int layout) {
    int M = 1 + (int)(ft_rng_u32(r) % 40), N = 1 + (int)(ft_rng_u32(r) % 80), Kf = 1 + (int)(ft_rng_u32(r) % 300);
    int tb = (int)(ft_rng_u32(r) & 1), acc = (int)(ft_rng_u32(r) & 1);
    /* the K range [k0, k1): k0 even, k1 even or Kf */
    int k0 = 2 * (int)(ft_rng_u32(r) % (unsigned)((Kf + 1) / 2)), k1 = Kf;
    if (ft_rng_u32(r) & 1) {
        k1 = k0 + 2 * (int)(ft_rng_u32(r) % (unsigned)((Kf - k0) / 2 + 1));
        if (k1 > Kf) k1 = Kf;
    }
    int kk = k1 - k0, kpn = (kk + 1) / 2, kpf = (Kf + 1) / 2;
    int lda = Kf + 3, ldb = tb ? Kf + 1 : N + 2;
    float *A = malloc(sizeof(float) * (size_t)(layout == 1 ? Kf * (M + 2) : M * lda)); /* layout 1: A stored [K, M] */
    float *B = malloc(sizeof(float) * (size_t)(tb ? N * ldb : Kf * ldb));
    float *C0 = malloc(sizeof(float) * (size_t)M * N), *C1 = malloc(sizeof(float) * (size_t)M * N);
    size_t nbp = ft__bf16_bpack_words(N, Kf), sm = 0, sk = 0;
    uint32_t *bp = malloc(sizeof(uint32_t) * nbp), *aw = calloc((size_t)(M + 8) * (kpn + 8) * 2 + 1, sizeof(uint32_t));
    int na = layout == 1 ? Kf * (M + 2) : M * lda, nb = tb ? N * ldb : Kf * ldb;
    for (int i = 0; i < na; i++) A[i] = ft_rng_normal(r);
    for (int i = 0; i < nb; i++) B[i] = ft_rng_normal(r);
    for (int i = 0; i < M * N; i++) C0[i] = C1[i] = ft_rng_normal(r);
    ft__bf16_pack_b(bp, B, ldb, tb, N, Kf);
    if (layout == 0) { /* rows: row m's words at aw[m * sm] */
        sm = (size_t)kpn + 5, sk = 1;
        for (int m = 0; m < M; m++) ft__bf16_row_words(aw + m * sm, A + (size_t)m * lda + k0, kk);
    } else if (layout == 1) { /* columns: the words of rows k0 + 2p, k0 + 2p + 1 of the stored [K, M] */
        sm = 1, sk = (size_t)M + 3;
        for (int p = 0; p < kpn; p++) {
            const float *r0 = A + (size_t)(k0 + 2 * p) * (M + 2), *r1 = k0 + 2 * p + 1 < k1 ? r0 + (M + 2) : NULL;
            ft__bf16_pair_words(aw + p * sk, r0, r1, M);
        }
    } else { /* rows with every other word: neither stride 1 */
        uint32_t *row = malloc(sizeof(uint32_t) * (size_t)(kpn + 1));
        sm = 2 * (size_t)kpn + 3, sk = 2;
        for (int m = 0; m < M; m++) {
            ft__bf16_row_words(row, A + (size_t)m * lda + k0, kk);
            for (int p = 0; p < kpn; p++) aw[m * sm + 2 * p] = row[p], aw[m * sm + 2 * p + 1] = 0xffffffffu; /* NaN junk between */
        }
        free(row);
    }
    if (layout == 1) ft_ref_gemm_bf16(C0, N, A + (size_t)k0 * (M + 2), M + 2, 1, tb ? B + k0 : B + (size_t)k0 * ldb, ldb, tb, M, N, kk, acc, NULL);
    else ft_ref_gemm_bf16(C0, N, A + k0, lda, 0, tb ? B + k0 : B + (size_t)k0 * ldb, ldb, tb, M, N, kk, acc, NULL);
    ft__gemm_bf16_words(C1, N, aw, sm, sk, bp, (size_t)kpf, k0 / 2, M, N, kpn, acc);
    int bad = memcmp(C0, C1, sizeof(float) * (size_t)M * N) != 0;
    if (bad) printf("mismatch: layout %d M %d N %d K %d [%d,%d) transB %d accumulate %d\n", layout, M, N, Kf, k0, k1, tb, acc);
    free(A); free(B); free(C0); free(C1); free(bp); free(aw);
    return bad;
}

static void run_isa(ft_bf16_isa isa) {
    if (ft_bf16_isa_best() < isa) skip();
    ft_bf16_isa saved = ft_bf16_isa_get();
    assert_int_equal(ft_bf16_isa_set(isa), FT_OK);
    int bad = 0, active = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad, active)
    {
        ft_rng r;
        ft_rng_seed(&r, 40 + (uint64_t)omp_get_thread_num() + 10 * (uint64_t)isa);
        active += omp_in_parallel();
        for (int it = 0; it < 150; it++) bad += one_case(&r, it % 3);
    }
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    printf("%s: %d mismatches (%d threads in an active region)\n", ft_bf16_isa_name(isa), bad, active);
    assert_int_equal(bad, 0);
}

static void test_words_avx512bf16(void **state) { (void)state; run_isa(FT_BF16_ISA_AVX512BF16); }
static void test_words_avx512f(void **state) { (void)state; run_isa(FT_BF16_ISA_AVX512F); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_avx512bf16),
        cmocka_unit_test(test_words_avx512f),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
