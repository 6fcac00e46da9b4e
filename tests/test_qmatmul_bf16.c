/* test_qmatmul_bf16.c — QLoRA's frozen base in bf16 (gemm_bf16.h, qmatmul_bf16.c):
 *  - ft_cpu_gemm_bf16_src (B produced block by block by a callback) gives the bits of ft_cpu_gemm_bf16 on
 *    the materialised B, both layouts of B, odd shapes, K over one 256-long block, with and without
 *    accumulation and bias, on every instruction set this CPU has (the scalar one included), and its
 *    callback sees only disjoint blocks whose columns start at multiples of 64;
 *  - the "cpu-bf16" table's qmatmul members (NF4 and int8 rows) against the "ref-bf16" ones: the SAME BITS,
 *    the reference with a whole-weight workspace, a small one (blocks of rows) and one of a single row; against
 *    ft_ref_gemm_bf16 on the dequantized weight; measurably not the f32 table's result (they do round);
 *    within the bf16 bound of the f32 result; at N <= FT_QUANT_DIRECT_MAX_N exactly the f32 member;
 *  - the f32 tables' qmatmul is untouched (cpu f32 = ft_nf4_matmul_forward's bits);
 *  - the f32 reference (ft_ref_qmatmul_*) with a workspace of blocks of rows, and with one under a single row
 *    (it used to loop forever there; now a row buffer of its own), equals it with the whole-weight workspace. */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "ops/cpu/gemm_bf16_internal.h"
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "finetune/tensor.h"

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *randv(ft_rng *r, size_t n, float sd) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}

/* ------------------------------------------------------------ the source-B GEMM */

typedef struct plain_src {
    const float *b;      /* B as stored, rows x cols */
    int cols;
    _Atomic long calls;  /* blocks asked for */
    _Atomic long values; /* values written */
    _Atomic int bad;     /* a block out of range or a c0 not a multiple of 64 */
} plain_src;

static void plain_rows(const void *ctx, float *dst, size_t ldd, int r0, int nr, int c0, int nc) {
    plain_src *s = (plain_src *)ctx;
    if (c0 % 64 || c0 + nc > s->cols || nr < 1 || nc < 1) atomic_store(&s->bad, 1);
    for (int i = 0; i < nr; i++) memcpy(dst + (size_t)i * ldd, s->b + (size_t)(r0 + i) * s->cols + c0, sizeof(float) * (size_t)nc);
    atomic_fetch_add(&s->calls, 1);
    atomic_fetch_add(&s->values, (long)nr * nc);
}

static void check_src_gemm(ft_bf16_isa isa) {
    if (ft_bf16_isa_set(isa) != FT_OK) { printf("  (%s: not on this CPU)\n", ft_bf16_isa_name(isa)); return; }
    ft_rng r;
    ft_rng_seed(&r, 11 + (uint64_t)isa);
    /* the last two with a pack budget of one byte (gemm_bf16_internal.h): N cut into chunks (the source asked
     * for column blocks from c0 = 768), M cut into chunks (B packed once for all of them) */
    const int shapes[][4] = {{37, 45, 301, 0}, {100, 70, 512, 0}, {13, 33, 64, 0}, {5, 7, 3, 0}, {130, 260, 600, 0},
                             {20, 800, 130, 1}, {800, 20, 130, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int transB = 0; transB < 2; transB++)
            for (int acc = 0; acc < 2; acc++) {
                int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                ft__gemm_bf16_set_pack_budget(shapes[si][3] ? 1 : 0);
                float *A = randv(&r, (size_t)M * K, 1), *B = randv(&r, (size_t)K * N, 1), *bias = randv(&r, (size_t)N, 1);
                float *c0 = randv(&r, (size_t)M * N, 1), *c1 = malloc(sizeof(float) * M * N);
                memcpy(c1, c0, sizeof(float) * M * N);
                int ldb = transB ? K : N;
                ft_cpu_gemm_bf16(c0, N, A, K, 0, B, ldb, transB, M, N, K, acc, acc ? NULL : bias);
                plain_src ps = {.b = B, .cols = ldb};
                ft_gemm_bf16_src src = {plain_rows, &ps};
                ft_cpu_gemm_bf16_src(c1, N, A, K, 0, &src, transB, M, N, K, acc, acc ? NULL : bias);
                assert_memory_equal(c0, c1, sizeof(float) * M * N);
                assert_int_equal(atomic_load(&ps.bad), 0);
                assert_int_equal(atomic_load(&ps.values), (long)K * N); /* each value asked for once */
                free(A); free(B); free(bias); free(c0); free(c1);
            }
    ft__gemm_bf16_set_pack_budget(0);
    printf("  %s: source-B GEMM = GEMM, bit for bit\n", ft_bf16_isa_name(isa));
}

static void test_src_gemm(void **state) {
    (void)state;
    ft_bf16_isa best = ft_bf16_isa_best();
    check_src_gemm(FT_BF16_ISA_SCALAR);
    check_src_gemm(FT_BF16_ISA_AVX512F);
    check_src_gemm(FT_BF16_ISA_AVX512BF16);
    assert_int_equal(ft_bf16_isa_set(best), FT_OK);
}

/* ------------------------------------------------------------ the quantized base */

typedef struct qweight {
    int dt;
    ft_nf4_tensor nf4;
    ft_q8row_tensor q8;
    const void *qw;
    float *deq; /* [OC, C] dequantized by the _ref routine */
} qweight;

static void qweight_make(qweight *q, int dt, const float *w, int OC, int C) {
    memset(q, 0, sizeof *q);
    q->dt = dt;
    q->deq = malloc(sizeof(float) * (size_t)OC * C);
    if (dt == FT_NF4) {
        assert_int_equal(ft_nf4_create(&q->nf4, OC, C, FT_NF4_DOUBLE_QUANT), FT_OK);
        assert_int_equal(ft_nf4_quantize_ref(&q->nf4, w, NULL), FT_OK);
        ft_nf4_dequantize_ref(q->deq, &q->nf4);
        q->qw = &q->nf4;
    } else {
        assert_int_equal(ft_q8row_create(&q->q8, OC, C), FT_OK);
        assert_int_equal(ft_q8row_quantize_ref(&q->q8, w), FT_OK);
        ft_q8row_dequantize_ref(q->deq, &q->q8);
        q->qw = &q->q8;
    }
}

static void qweight_free(qweight *q) {
    if (q->dt == FT_NF4) ft_nf4_destroy(&q->nf4);
    else ft_q8row_destroy(&q->q8);
    free(q->deq);
}

static void check_qmatmul(int dt, int N, int OC, int C) {
    const ft_backend *cb = ft_backend_cpu_bf16(), *rb = ft_backend_by_name("ref-bf16"), *cf = ft_backend_cpu();
    ft_rng r;
    ft_rng_seed(&r, 23 + (uint64_t)N + (uint64_t)dt);
    float *w = randv(&r, (size_t)OC * C, 0.05f), *inp = randv(&r, (size_t)N * C, 1), *dout = randv(&r, (size_t)N * OC, 1);
    float *bias = randv(&r, (size_t)OC, 1);
    qweight q;
    qweight_make(&q, dt, w, OC, C);
    size_t wsn = ft_quant_workspace_floats(FT_QUANT_WS_FAST, N, C, OC, 0), small = (size_t)7 * C;
    float *ws = malloc(sizeof(float) * wsn);
    float *o_cpu = malloc(sizeof(float) * N * OC), *o_ref = malloc(sizeof(float) * N * OC), *o_blk = malloc(sizeof(float) * N * OC);
    float *o_f32 = malloc(sizeof(float) * N * OC), *o_exp = malloc(sizeof(float) * N * OC);
    float *d_cpu = malloc(sizeof(float) * N * C), *d_ref = malloc(sizeof(float) * N * C), *d_blk = malloc(sizeof(float) * N * C);
    float *d_f32 = malloc(sizeof(float) * N * C), *d_exp = malloc(sizeof(float) * N * C);
    for (int i = 0; i < N * C; i++) d_cpu[i] = d_ref[i] = d_blk[i] = NAN; /* assigned: the NaNs must go */

    cb->qmatmul_forward(cb->ctx, o_cpu, inp, dt, q.qw, bias, N, NULL, 0); /* the CPU path needs no workspace */
    rb->qmatmul_forward(rb->ctx, o_ref, inp, dt, q.qw, bias, N, ws, wsn);
    rb->qmatmul_forward(rb->ctx, o_blk, inp, dt, q.qw, bias, N, ws, small);
    if (N > FT_QUANT_DIRECT_MAX_N) { /* a workspace of one row: the reference uses its own two-row buffer */
        rb->qmatmul_forward(rb->ctx, o_exp, inp, dt, q.qw, bias, N, ws, (size_t)C);
        assert_memory_equal(o_blk, o_exp, sizeof(float) * N * OC);
    }
    cf->qmatmul_forward(cf->ctx, o_f32, inp, dt, q.qw, bias, N, ws, wsn);
    cb->qmatmul_backward(cb->ctx, d_cpu, dout, dt, q.qw, N, NULL, 0);
    rb->qmatmul_backward(rb->ctx, d_ref, dout, dt, q.qw, N, ws, wsn);
    rb->qmatmul_backward(rb->ctx, d_blk, dout, dt, q.qw, N, ws, small);
    if (N > FT_QUANT_DIRECT_MAX_N) {
        rb->qmatmul_backward(rb->ctx, d_exp, dout, dt, q.qw, N, ws, (size_t)C);
        assert_memory_equal(d_blk, d_exp, sizeof(float) * N * C);
    }
    cf->qmatmul_backward(cf->ctx, d_f32, dout, dt, q.qw, N, ws, wsn);

    if (N > FT_QUANT_DIRECT_MAX_N) {
        assert_memory_equal(o_cpu, o_ref, sizeof(float) * N * OC);
        assert_memory_equal(o_cpu, o_blk, sizeof(float) * N * OC);
        assert_memory_equal(d_cpu, d_ref, sizeof(float) * N * C);
        assert_memory_equal(d_cpu, d_blk, sizeof(float) * N * C);
        ft_ref_gemm_bf16(o_exp, OC, inp, C, 0, q.deq, C, 1, N, OC, C, 0, bias);
        ft_ref_gemm_bf16(d_exp, C, dout, OC, 0, q.deq, C, 0, N, C, OC, 0, NULL);
        assert_memory_equal(o_cpu, o_exp, sizeof(float) * N * OC);
        assert_memory_equal(d_cpu, d_exp, sizeof(float) * N * C);
        /* bf16 against the f32 product of the same dequantized weight: rounded (not equal), within bf16's bound */
        double worst = 0;
        int differ = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double mag = fabs(bias[o]);
                for (int c = 0; c < C; c++) mag += fabs((double)inp[n * C + c] * q.deq[o * C + c]);
                double e = fabs(o_cpu[n * OC + o] - o_f32[n * OC + o]) / (mag * (ldexp(1, -7) + ldexp(1, -16) + (C + 1) * ldexp(1, -23)));
                if (e > worst) worst = e;
                differ += o_cpu[n * OC + o] != o_f32[n * OC + o];
            }
        assert_true(worst <= 1.0);
        assert_true(differ > N * OC / 2);
        printf("  %s N=%d [%d x %d]: cpu-bf16 = ref-bf16 (both workspaces) = bf16 GEMM of the _ref dequantization; "
               "vs f32: %d of %d differ, worst error / bound %.3f\n", dt == FT_NF4 ? "nf4" : "int8", N, OC, C, differ, N * OC, worst);
    } else { /* a few rows: the f32 table's member, bit for bit */
        assert_memory_equal(o_cpu, o_f32, sizeof(float) * N * OC);
        assert_memory_equal(d_cpu, d_f32, sizeof(float) * N * C);
        printf("  %s N=%d: the f32 direct kernels, as the f32 table\n", dt == FT_NF4 ? "nf4" : "int8", N);
    }
    for (int i = 0; i < N * C; i++) assert_false(isnan(d_cpu[i]));
    /* the f32 table is untouched: its AUTO path's bits */
    if (dt == FT_NF4) ft_nf4_matmul_forward(o_exp, inp, &q.nf4, bias, N, ws, wsn);
    else ft_q8row_matmul_forward(o_exp, inp, &q.q8, bias, N, ws, wsn);
    assert_memory_equal(o_f32, o_exp, sizeof(float) * N * OC);
    qweight_free(&q);
    free(w); free(inp); free(dout); free(bias); free(ws);
    free(o_cpu); free(o_ref); free(o_blk); free(o_f32); free(o_exp);
    free(d_cpu); free(d_ref); free(d_blk); free(d_f32); free(d_exp);
}

static void test_qmatmul_nf4(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    check_qmatmul(FT_NF4, 45, 301, 320);   /* K blocks: C = 256 + 64 forward, OC = 301 (odd) backward */
    check_qmatmul(FT_NF4, 128, 96, 192);
    check_qmatmul(FT_NF4, 5, 64, 128);
}

static void test_qmatmul_int8(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    check_qmatmul(FT_Q8_ROW, 45, 301, 300);
    check_qmatmul(FT_Q8_ROW, 33, 70, 50);
    check_qmatmul(FT_Q8_ROW, 8, 40, 72);
}

/* the same bits on one thread as on all (the GEMM never splits a sum across threads) */
static void test_qmatmul_threads(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    const ft_backend *cb = ft_backend_cpu_bf16();
    ft_rng r;
    ft_rng_seed(&r, 99);
    const int N = 64, OC = 384, C = 256;
    float *w = randv(&r, (size_t)OC * C, 0.05f), *inp = randv(&r, (size_t)N * C, 1);
    qweight q;
    qweight_make(&q, FT_NF4, w, OC, C);
    float *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    cb->qmatmul_forward(cb->ctx, o1, inp, FT_NF4, q.qw, NULL, N, NULL, 0);
    omp_set_num_threads(nt > 1 ? nt : 2);
    cb->qmatmul_forward(cb->ctx, o2, inp, FT_NF4, q.qw, NULL, N, NULL, 0);
    omp_set_num_threads(nt);
    assert_memory_equal(o1, o2, sizeof(float) * N * OC);
    qweight_free(&q);
    free(w); free(inp); free(o1); free(o2);
}

/* the f32 reference by blocks: the same sums in the same order, so the same bits as the whole-weight path */
static void test_qmatmul_ref_small_ws(void **state) {
    (void)state;
    const int N = 5, OC = 37, C = 128;
    for (int dt = 0; dt < 2; dt++) {
        int t = dt ? FT_Q8_ROW : FT_NF4;
        ft_rng r;
        ft_rng_seed(&r, 71 + (uint64_t)dt);
        float *w = randv(&r, (size_t)OC * C, 0.05f), *inp = randv(&r, (size_t)N * C, 1), *dout = randv(&r, (size_t)N * OC, 1);
        float *bias = randv(&r, (size_t)OC, 1);
        qweight q;
        qweight_make(&q, t, w, OC, C);
        float *ws = malloc(sizeof(float) * (size_t)OC * C);
        float *o_full = malloc(sizeof(float) * N * OC), *o_blk = malloc(sizeof(float) * N * OC), *o_tiny = malloc(sizeof(float) * N * OC);
        float *d_full = malloc(sizeof(float) * N * C), *d_blk = malloc(sizeof(float) * N * C), *d_tiny = malloc(sizeof(float) * N * C);
        ft_ref_qmatmul_forward(NULL, o_full, inp, t, q.qw, bias, N, ws, (size_t)OC * C);
        ft_ref_qmatmul_forward(NULL, o_blk, inp, t, q.qw, bias, N, ws, (size_t)5 * C);
        ft_ref_qmatmul_forward(NULL, o_tiny, inp, t, q.qw, bias, N, ws, (size_t)C - 1); /* under one row */
        ft_ref_qmatmul_forward(NULL, o_tiny, inp, t, q.qw, bias, N, NULL, 0);           /* none at all */
        ft_ref_qmatmul_backward(NULL, d_full, dout, t, q.qw, N, ws, (size_t)OC * C);
        ft_ref_qmatmul_backward(NULL, d_blk, dout, t, q.qw, N, ws, (size_t)5 * C);
        ft_ref_qmatmul_backward(NULL, d_tiny, dout, t, q.qw, N, NULL, 0);
        /* blocks: out's elements are each one sum (same bits); dinp sums the blocks' partial sums (within rounding) */
        assert_memory_equal(o_full, o_blk, sizeof(float) * N * OC);
        assert_memory_equal(o_full, o_tiny, sizeof(float) * N * OC);
        double worst = 0;
        for (int i = 0; i < N * C; i++) {
            double e1 = fabs(d_blk[i] - d_full[i]), e2 = fabs(d_tiny[i] - d_full[i]);
            if (e1 > worst) worst = e1;
            if (e2 > worst) worst = e2;
        }
        printf("  f32 reference %s [%d x %d]: workspace of 5 rows / none = whole weight (out: same bits; dinp: max |diff| %.3g)\n",
               dt ? "int8" : "nf4", OC, C, worst);
        assert_true(worst <= 1e-5);
        free(o_full); free(o_blk); free(o_tiny); free(d_full); free(d_blk); free(d_tiny);
        free(ws); free(w); free(inp); free(dout); free(bias);
        qweight_free(&q);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_src_gemm),
        cmocka_unit_test(test_qmatmul_nf4),
        cmocka_unit_test(test_qmatmul_int8),
        cmocka_unit_test(test_qmatmul_threads),
        cmocka_unit_test(test_qmatmul_ref_small_ws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
