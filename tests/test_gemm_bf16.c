/* test_gemm_bf16.c — the bf16 GEMM (gemm_bf16.h):
 *  - ft_bf16_round against its definition (ties to even, NaN, infinities, subnormals) and, on a CPU with
 *    AVX512-BF16, against vcvtneps2bf16 itself on random bit patterns;
 *  - each CPU kernel (AVX512-BF16, AVX-512F fallback) against the scalar reference: the SAME BITS (the
 *    summation order is the same), on odd shapes and tails, every transpose, with and without
 *    accumulation and bias, single- and multi-threaded; the blocking of large products (K longer than a
 *    block, M or N cut into chunks) forced on small ones through a tiny pack budget;
 *  - the reference against the exact (double) product of the f32 inputs, within the bf16 bound
 *    sum_k |a||b| (2^-7 + 2^-16 + (K+1) 2^-24), and measurably different from f32 (it does round);
 *  - the linear layer of the "cpu-bf16" backend (forward, dinp assigned, dW and dbias accumulated, NULL
 *    gradients skipped) against the "ref-bf16" one, and its gradients against central finite
 *    differences of the f32 layer (bf16 tolerance: the bf16 forward itself is piecewise constant in
 *    its inputs, so its own finite differences mean nothing);
 *  - the attention of the "cpu-bf16" backend (ft_cpu_attn_bf16_*): the same bits with the AVX512-BF16 and
 *    the AVX-512F kernels (operands converted once per task) as with the scalar reference GEMM (causal with
 *    partial blocks, padding, segments, grouped K/V heads, dropout, with and without scratch), and within
 *    bf16 rounding of the f32 attention;
 *  - weight packs (ft_gemm_bf16_wpack_*): the layer on a pre-packed W has the bits of the layer on W, the
 *    fused AdamW those of AdamW, a stale pack is refilled;
 *  - ft_backend_for_precision. */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float *randv(ft_rng *r, size_t n, float sd) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}

static void test_round(void **state) {
    (void)state;
    assert_int_equal(ft_bf16_round(1.0f), 0x3f80);
    assert_int_equal(ft_bf16_round(-2.0f), 0xc000);
    /* 1 + 2^-8 is the tie between 0x3f80 and 0x3f81: even wins; 1 + 3*2^-8 ties up to 0x3f82 */
    assert_int_equal(ft_bf16_round(bits_f(0x3f808000u)), 0x3f80);
    assert_int_equal(ft_bf16_round(bits_f(0x3f818000u)), 0x3f82);
    assert_int_equal(ft_bf16_round(bits_f(0x3f808001u)), 0x3f81);
    assert_int_equal(ft_bf16_round(bits_f(0x7f800000u)), 0x7f80);           /* +inf */
    assert_int_equal(ft_bf16_round(bits_f(0x7f7fffffu)), 0x7f80);           /* FLT_MAX rounds to inf */
    assert_int_equal(ft_bf16_round(bits_f(0x00400000u)), 0x0000);           /* subnormal -> +0 */
    assert_int_equal(ft_bf16_round(bits_f(0x80400000u)), 0x8000);           /* -subnormal -> -0 */
    uint16_t qn = ft_bf16_round(bits_f(0x7f800001u));                        /* signalling NaN -> quiet */
    assert_true((qn & 0x7f80) == 0x7f80 && (qn & 0x40));
    assert_true(ft_bf16_roundtrip(3.14159f) == 3.140625f);
}

__attribute__((target("avx512f,avx512bf16"))) static int hw_round_mismatches(int n) {
    ft_rng r;
    ft_rng_seed(&r, 7);
    int bad = 0;
    for (int i = 0; i < n; i += 16) {
        uint32_t u[16];
        for (int j = 0; j < 16; j++) u[j] = ft_rng_u32(&r);
        u[0] = 0x00000001u; /* a subnormal */
        u[1] = 0x7fc00001u; /* a quiet NaN with payload */
        uint16_t h[16];
        __m256bh c = _mm512_cvtneps_pbh(_mm512_loadu_ps((const float *)u));
        memcpy(h, &c, sizeof h);
        for (int j = 0; j < 16; j++) bad += h[j] != ft_bf16_round(bits_f(u[j]));
    }
    return bad;
}

static void test_round_hardware(void **state) {
    (void)state;
    if (ft_bf16_isa_best() != FT_BF16_ISA_AVX512BF16) skip();
    assert_int_equal(hw_round_mismatches(1 << 20), 0);
}

/* op(A) [M,K], op(B) [K,N] with the leading dimensions of the stored layouts (+ a few floats of padding) */
static int run_case(ft_rng *r, int M, int N, int K, int ta, int tb, int acc, int use_bias, int threads) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = randv(r, na, 1.0f), *B = randv(r, nb, 1.0f), *bias = randv(r, N, 1.0f);
    float *Cr = randv(r, nc, 1.0f), *Cc = malloc(nc * sizeof(float));
    memcpy(Cc, Cr, nc * sizeof(float));
    ft_ref_gemm_bf16(Cr, ldc, A, lda, ta, B, ldb, tb, M, N, K, acc, use_bias ? bias : NULL);
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    ft_cpu_gemm_bf16(Cc, ldc, A, lda, ta, B, ldb, tb, M, N, K, acc, use_bias ? bias : NULL);
    omp_set_num_threads(saved);
    int bad = memcmp(Cr, Cc, nc * sizeof(float)) != 0; /* the padding columns too: untouched on both */
    if (bad) {
        size_t i = 0;
        while (Cr[i] == Cc[i] || (isnan(Cr[i]) && isnan(Cc[i]))) i++;
        fprintf(stderr, "M=%d N=%d K=%d ta=%d tb=%d acc=%d bias=%d threads=%d: first difference at %zu: ref %.9g cpu %.9g\n",
                M, N, K, ta, tb, acc, use_bias, threads, i, Cr[i], Cc[i]);
    }
    free(A); free(B); free(bias); free(Cr); free(Cc);
    return bad;
}

static void check_kernel_vs_ref(ft_bf16_isa isa) {
    if (ft_bf16_isa_best() < isa) skip();
    ft_bf16_isa saved = ft_bf16_isa_get();
    assert_int_equal(ft_bf16_isa_set(isa), FT_OK);
    ft_rng r;
    ft_rng_seed(&r, 42);
    static const int dims[][3] = {{1, 1, 1}, {1, 33, 7}, {12, 32, 2}, {13, 31, 3}, {5, 70, 129}, {37, 45, 256},
                                  {25, 64, 257}, {100, 97, 300}, {96, 257, 513}, {130, 40, 17}};
    int bad = 0;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int v = 0; v < 16; v++)
            bad += run_case(&r, dims[d][0], dims[d][1], dims[d][2], v & 1, (v >> 1) & 1, (v >> 2) & 1, (v >> 3) & 1,
                            (d + v) % 2 ? 1 : 2);
    /* empty K: the initial value only */
    bad += run_case(&r, 7, 9, 0, 0, 1, 0, 1, 2);
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    assert_int_equal(bad, 0);
}
static void test_avx512bf16_vs_ref(void **state) { (void)state; check_kernel_vs_ref(FT_BF16_ISA_AVX512BF16); }
static void test_avx512f_vs_ref(void **state) { (void)state; check_kernel_vs_ref(FT_BF16_ISA_AVX512F); }

/* The blocking of large products on small ones: K longer than a block (three K blocks, the sum carried in
 * C between them), and with a pack budget of one byte (ft__gemm_bf16_set_pack_budget) the shortest K blocks,
 * M cut into chunks (the B pack reused by every chunk), N cut into chunks (A repacked per chunk and K
 * block), and an M too large with several K blocks (no chunks, short blocks): the same bits as the
 * reference, for both kernels, every transpose, accumulating or not, one and two threads. */
static void test_blocking_vs_ref(void **state) {
    (void)state;
    static const int dims[][4] = { /* M, N, K, tiny budget */
        {13, 33, 3100, 0}, {790, 24, 200, 1}, {20, 790, 260, 1}, {790, 24, 300, 1}, {50, 70, 700, 1}};
    ft_bf16_isa saved = ft_bf16_isa_get();
    ft_rng r;
    ft_rng_seed(&r, 5);
    int bad = 0;
    for (int isa = FT_BF16_ISA_AVX512F; isa <= FT_BF16_ISA_AVX512BF16; isa++) {
        if (ft_bf16_isa_best() < (ft_bf16_isa)isa) continue;
        assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)isa), FT_OK);
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            ft__gemm_bf16_set_pack_budget(dims[d][3] ? 1 : 0);
            for (int v = 0; v < 8; v++)
                bad += run_case(&r, dims[d][0], dims[d][1], dims[d][2], v & 1, (v >> 1) & 1, (v >> 2) & 1, !((v >> 2) & 1),
                                (d + v) % 2 ? 1 : 2);
        }
    }
    ft__gemm_bf16_set_pack_budget(0);
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    assert_int_equal(bad, 0);
}

/* the packing workspace is kept between calls: a trim in between changes nothing */
static void test_workspace_trim(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 9);
    int bad = run_case(&r, 40, 50, 60, 0, 1, 0, 1, 2);
    ft_gemm_bf16_trim();
    bad += run_case(&r, 40, 50, 60, 1, 0, 1, 0, 2);
    ft_gemm_bf16_trim();
    ft_gemm_bf16_trim(); /* nothing kept: nothing to free */
    assert_int_equal(bad, 0);
}

static void test_ref_vs_exact(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 3);
    const int M = 17, N = 23, K = 301;
    float *A = randv(&r, (size_t)M * K, 1.0f), *B = randv(&r, (size_t)K * N, 1.0f), *C = malloc(sizeof(float) * M * N);
    ft_ref_gemm_bf16(C, N, A, K, 0, B, N, 0, M, N, K, 0, NULL);
    double worst = 0, maxdiff = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double ex = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                ex += (double)A[m * K + k] * B[k * N + n];
                mag += fabs((double)A[m * K + k] * B[k * N + n]);
            }
            double bound = mag * (ldexp(1, -7) + ldexp(1, -16) + (K + 1) * ldexp(1, -24));
            double e = fabs(C[m * N + n] - ex);
            if (e / bound > worst) worst = e / bound;
            if (e > maxdiff) maxdiff = e;
        }
    printf("bf16 vs exact: worst error / bound %.3f, max |error| %.3g\n", worst, maxdiff);
    assert_true(worst <= 1.0);
    assert_true(maxdiff > 1e-4); /* f32 would be ~1e-6 here: the inputs really are rounded */
    free(A); free(B); free(C);
}

static void test_linear_layer(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    const ft_backend *cb = ft_backend_cpu_bf16(), *rb = ft_backend_by_name("ref-bf16");
    assert_non_null(rb);
    assert_string_equal(cb->name, "cpu-bf16");
    ft_rng r;
    ft_rng_seed(&r, 5);
    const int N = 45, C = 70, OC = 33;
    float *inp = randv(&r, (size_t)N * C, 1), *w = randv(&r, (size_t)OC * C, 0.5f), *bias = randv(&r, OC, 1);
    float *dout = randv(&r, (size_t)N * OC, 1);
    float *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
    cb->matmul_forward(cb->ctx, o1, inp, w, bias, N, C, OC);
    rb->matmul_forward(rb->ctx, o2, inp, w, bias, N, C, OC);
    assert_memory_equal(o1, o2, sizeof(float) * N * OC);
    float *di1 = malloc(sizeof(float) * N * C), *di2 = malloc(sizeof(float) * N * C);
    for (int i = 0; i < N * C; i++) di1[i] = di2[i] = NAN; /* assigned: the NaN must go */
    float *g0 = randv(&r, (size_t)OC * C, 1), *dw1 = malloc(sizeof(float) * OC * C), *dw2 = malloc(sizeof(float) * OC * C);
    memcpy(dw1, g0, sizeof(float) * OC * C);
    memcpy(dw2, g0, sizeof(float) * OC * C);
    float db1[33] = {0}, db2[33] = {0};
    for (int i = 0; i < OC; i++) db1[i] = db2[i] = 1.0f;
    cb->matmul_backward(cb->ctx, di1, dw1, db1, dout, inp, w, N, C, OC);
    rb->matmul_backward(rb->ctx, di2, dw2, db2, dout, inp, w, N, C, OC);
    assert_memory_equal(di1, di2, sizeof(float) * N * C);
    assert_memory_equal(dw1, dw2, sizeof(float) * OC * C);
    assert_memory_equal(db1, db2, sizeof db1);
    for (int i = 0; i < N * C; i++) assert_false(isnan(di1[i]));
    /* dW accumulated onto g0: the bf16 dW from zero plus g0 */
    float *dz = calloc((size_t)OC * C, sizeof(float));
    cb->matmul_backward(cb->ctx, NULL, dz, NULL, dout, inp, w, N, C, OC);
    for (int i = 0; i < OC * C; i++) assert_true(fabsf(dw1[i] - (g0[i] + dz[i])) <= 1e-5f * (1 + fabsf(dw1[i])));
    /* NULL gradients: skipped, nothing written */
    cb->matmul_backward(cb->ctx, NULL, NULL, NULL, dout, inp, w, N, C, OC);
    /* the bias gradient is the f32 kernel's, bit for bit */
    float db3[33];
    for (int i = 0; i < OC; i++) db3[i] = 1.0f;
    ft_cpu_bias_backward(NULL, db3, dout, N, OC);
    assert_memory_equal(db1, db3, sizeof db1);

    /* gradients against central differences of the f32 layer L = sum(G * (inp W^T + b)) (double) */
    double worst_i = 0, worst_w = 0, scale_i = 0, scale_w = 0;
    const double h = 1e-2;
    for (int t = 0; t < 40; t++) {
        int n = (int)ft_rng_below(&r, N), c = (int)ft_rng_below(&r, C), o = (int)ft_rng_below(&r, OC);
        /* d L / d inp[n,c] = sum_o G[n,o] w[o,c]; the loss is linear, so the difference is exact up to rounding */
        double lp = 0, lm = 0, save = inp[n * C + c];
        for (int oo = 0; oo < OC; oo++) {
            double s = 0;
            for (int cc = 0; cc < C; cc++) s += (double)(cc == c ? save + h : inp[n * C + cc]) * w[oo * C + cc];
            lp += dout[n * OC + oo] * s;
            s = 0;
            for (int cc = 0; cc < C; cc++) s += (double)(cc == c ? save - h : inp[n * C + cc]) * w[oo * C + cc];
            lm += dout[n * OC + oo] * s;
        }
        double fd = (lp - lm) / (2 * h);
        if (fabs(di1[n * C + c] - fd) > worst_i) worst_i = fabs(di1[n * C + c] - fd);
        if (fabs(fd) > scale_i) scale_i = fabs(fd);
        /* d L / d w[o,c] = sum_n G[n,o] inp[n,c] */
        lp = lm = 0;
        for (int nn = 0; nn < N; nn++) {
            lp += dout[nn * OC + o] * (double)inp[nn * C + c] * (w[o * C + c] + h);
            lm += dout[nn * OC + o] * (double)inp[nn * C + c] * (w[o * C + c] - h);
        }
        fd = (lp - lm) / (2 * h);
        if (fabs(dz[o * C + c] - fd) > worst_w) worst_w = fabs(dz[o * C + c] - fd);
        if (fabs(fd) > scale_w) scale_w = fabs(fd);
    }
    printf("bf16 backward vs finite differences: max |dinp err| %.3g of %.3g, max |dW err| %.3g of %.3g\n", worst_i, scale_i,
           worst_w, scale_w);
    assert_true(worst_i <= 0.02 * scale_i);
    assert_true(worst_w <= 0.02 * scale_w);
    free(inp); free(w); free(bias); free(dout); free(o1); free(o2); free(di1); free(di2);
    free(g0); free(dw1); free(dw2); free(dz);
}

/* one forward + backward of the attention kernels of be-like functions; outputs into o (out, att, dq|dk|dv) */
typedef struct { float *out, *att, *dqkv; } attn_res;

static void attn_run(int bf16, attn_res *res, const float *qkv, const float *dout, const ft_attn_mask *mk, int B, int T, int NH,
                     int NKV, int HS, float p, int use_scratch) {
    int R = (NH + 2 * NKV) * HS;
    size_t nt = (size_t)B * T;
    const float *q = qkv, *k = qkv + (size_t)NH * HS, *v = k + (size_t)NKV * HS;
    float *scratch = use_scratch ? malloc(sizeof(float) * (size_t)B * NH * T * T) : NULL;
    for (size_t i = 0; i < nt * R; i++) res->dqkv[i] = NAN; /* q/k/v gradients are assigned */
    float *dq = res->dqkv, *dk = dq + (size_t)NH * HS, *dv = dk + (size_t)NKV * HS;
    if (bf16) {
        ft_cpu_attn_bf16_forward(NULL, res->out, res->att, q, R, k, R, v, R, mk, B, T, NH, NKV, HS, p, 77);
        ft_cpu_attn_bf16_backward(NULL, dq, dk, dv, scratch, dout, q, R, k, R, v, R, res->att, mk, B, T, NH, NKV, HS, p, 77);
    } else {
        ft_cpu_attn_forward(NULL, res->out, res->att, q, R, k, R, v, R, mk, B, T, NH, NKV, HS, p, 77);
        ft_cpu_attn_backward(NULL, dq, dk, dv, scratch, dout, q, R, k, R, v, R, res->att, mk, B, T, NH, NKV, HS, p, 77);
    }
    free(scratch);
}

/* max |a - b| / max |b| over n */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? e / m : e;
}

static void test_attention_bf16(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    const ft_backend *cb = ft_backend_cpu_bf16();
    assert_ptr_equal(cb->attn_forward, ft_cpu_attn_bf16_forward);
    assert_ptr_equal(cb->attn_backward, ft_cpu_attn_bf16_backward);
    ft_bf16_isa saved = ft_bf16_isa_get();
    ft_rng r;
    ft_rng_seed(&r, 11);
    const int B = 2, T = 151, NH = 4, NKV = 2, HS = 18, R = (NH + 2 * NKV) * HS; /* T odd: a half pair at the end of every row and column; causal blocks, the last partial */
    size_t nt = (size_t)B * T, natt = (size_t)B * NH * T * T, nout = nt * NH * HS, nd = nt * R;
    float *qkv = randv(&r, nd, 1.0f), *dout = randv(&r, nout, 1.0f);
    int *pad = malloc(sizeof(int) * nt), *seg = malloc(sizeof(int) * nt);
    for (size_t i = 0; i < nt; i++) pad[i] = (int)(i % T) < T - 9 - 5 * (int)(i / T); /* trailing padding */
    for (size_t i = 0; i < nt; i++) seg[i] = (int)(i % T) / (37 + 20 * (int)(i / T)); /* packed sequences */
    const ft_attn_mask masks[4] = {{FT_ATTN_CAUSAL, NULL, NULL}, {FT_ATTN_PADDING, pad, NULL}, {FT_ATTN_CAUSAL | FT_ATTN_PADDING, pad, NULL},
                                   {FT_ATTN_CAUSAL | FT_ATTN_SEGMENTS, NULL, seg}};
    attn_res res[4];
    for (int i = 0; i < 4; i++) {
        res[i].out = malloc(sizeof(float) * nout);
        res[i].att = malloc(sizeof(float) * natt);
        res[i].dqkv = malloc(sizeof(float) * nd);
    }
    for (int m = 0; m < 4; m++)
        for (int d = 0; d < 2; d++) {
            float p = d ? 0.1f : 0.0f;
            /* 0: bf16 on AVX512-BF16, 1: bf16 on the scalar reference GEMM (through ft_cpu_gemm_bf16, where the
             * others convert their operands once per task), 2: f32, 3: bf16 on the AVX-512F kernel */
            assert_int_equal(ft_bf16_isa_set(FT_BF16_ISA_AVX512BF16), FT_OK);
            attn_run(1, &res[0], qkv, dout, &masks[m], B, T, NH, NKV, HS, p, m != 1);
            assert_int_equal(ft_bf16_isa_set(FT_BF16_ISA_AVX512F), FT_OK);
            attn_run(1, &res[3], qkv, dout, &masks[m], B, T, NH, NKV, HS, p, m == 1);
            assert_int_equal(ft_bf16_isa_set(FT_BF16_ISA_SCALAR), FT_OK);
            attn_run(1, &res[1], qkv, dout, &masks[m], B, T, NH, NKV, HS, p, m == 1);
            assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
            attn_run(0, &res[2], qkv, dout, &masks[m], B, T, NH, NKV, HS, p, 1);
            assert_memory_equal(res[0].out, res[1].out, sizeof(float) * nout);
            assert_memory_equal(res[0].att, res[1].att, sizeof(float) * natt);
            assert_memory_equal(res[0].dqkv, res[1].dqkv, sizeof(float) * nd);
            assert_memory_equal(res[3].out, res[1].out, sizeof(float) * nout);
            assert_memory_equal(res[3].att, res[1].att, sizeof(float) * natt);
            assert_memory_equal(res[3].dqkv, res[1].dqkv, sizeof(float) * nd);
            double eo = rel_err(res[0].out, res[2].out, nout), ea = rel_err(res[0].att, res[2].att, natt);
            double eg = rel_err(res[0].dqkv, res[2].dqkv, nd);
            printf("attention bf16 vs f32, mask %d, dropout %.1f: out %.2g, att %.2g, dqkv %.2g (max error / max value)\n",
                   masks[m].kind, p, eo, ea, eg);
            for (size_t i = 0; i < nd; i++) assert_false(isnan(res[0].dqkv[i]));
            assert_true(eo < 2e-2 && ea < 2e-2 && eg < 2e-2); /* measured <= 0.0093 */
            assert_true(eo > 0 && eg > 0); /* it does round */
        }
    for (int i = 0; i < 4; i++) { free(res[i].out); free(res[i].att); free(res[i].dqkv); }
    free(qkv); free(dout); free(pad); free(seg);
}

/* Weight packs (ft_gemm_bf16_wpack_*): the linear layer on W and its pack gives the bits of the layer on W
 * alone (forward, dinp, dW, dbias), for both kernels, on shapes whose layouts have several K blocks (C > 1536:
 * the forward's; OC > 1536: the backward's, with a pair that ends a block) and odd sizes, with the pack
 * budget at one byte (M cut into chunks over the pre-packed B); the fused AdamW leaves W, m, v with
 * ft_cpu_adamw_update's bits and the pack current (the products then match the ones on the updated W);
 * a pack marked stale is refilled by its next product; a fresh one starts stale. */
static int wpack_case(ft_rng *r, int N, int C, int OC, int tiny) {
    ft__gemm_bf16_set_pack_budget(tiny ? 1 : 0);
    float *inp = randv(r, (size_t)N * C, 1), *w = randv(r, (size_t)OC * C, 0.5f), *bias = randv(r, OC, 1);
    float *dout = randv(r, (size_t)N * OC, 1), *g = randv(r, (size_t)OC * C, 0.1f);
    size_t nw = (size_t)OC * C;
    void *pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64);
    assert_non_null(pk);
    ft_gemm_bf16_wpack_init(pk, OC, C);
    assert_int_equal(ft_gemm_bf16_wpack_valid(pk), 0);
    float *o1 = malloc(sizeof(float) * N * OC), *o2 = malloc(sizeof(float) * N * OC);
    float *d1 = malloc(sizeof(float) * N * C), *d2 = malloc(sizeof(float) * N * C);
    float *w1 = calloc(nw, sizeof(float)), *w2 = calloc(nw, sizeof(float)), b1[64] = {0}, b2[64] = {0};
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        ft_cpu_matmul_bf16_wpack_forward(NULL, o1, inp, w, pk, bias, N, C, OC);
        ft_cpu_matmul_bf16_forward(NULL, o2, inp, w, bias, N, C, OC);
        bad += memcmp(o1, o2, sizeof(float) * N * OC) != 0;
        bad += !ft_gemm_bf16_wpack_valid(pk);
        ft_cpu_matmul_bf16_wpack_backward(NULL, d1, w1, OC <= 64 ? b1 : NULL, dout, inp, w, pk, N, C, OC);
        ft_cpu_matmul_bf16_backward(NULL, d2, w2, OC <= 64 ? b2 : NULL, dout, inp, w, N, C, OC);
        bad += memcmp(d1, d2, sizeof(float) * N * C) != 0;
        bad += memcmp(w1, w2, sizeof(float) * nw) != 0;
        bad += memcmp(b1, b2, sizeof b1) != 0;
        if (round == 0) { /* the fused update: the same W, m, v as AdamW alone, and a current pack */
            float *m = calloc(nw, sizeof(float)), *v = calloc(nw, sizeof(float)), *wc = malloc(sizeof(float) * nw);
            float *mc = calloc(nw, sizeof(float)), *vc = calloc(nw, sizeof(float));
            memcpy(wc, w, sizeof(float) * nw);
            ft_update_params h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .wd = 0.1f, .bc1 = 0.1f, .bc2_sqrt = 0.0447f};
            ft_cpu_adamw_update_wpack(NULL, w, m, v, g, nw, &h, pk);
            ft_cpu_adamw_update(NULL, wc, mc, vc, g, nw, &h);
            bad += memcmp(w, wc, sizeof(float) * nw) != 0;
            bad += memcmp(m, mc, sizeof(float) * nw) != 0 || memcmp(v, vc, sizeof(float) * nw) != 0;
            bad += !ft_gemm_bf16_wpack_valid(pk);
            free(m); free(v); free(wc); free(mc); free(vc);
        } else if (round == 1) { /* W changed behind the pack's back: marked stale, refilled by the next product */
            for (size_t i = 0; i < nw; i += 7) w[i] = -w[i];
            ft_gemm_bf16_wpack_invalidate(pk);
        }
    }
    if (bad) fprintf(stderr, "wpack N=%d C=%d OC=%d tiny=%d: %d mismatches\n", N, C, OC, tiny, bad);
    free(inp); free(w); free(bias); free(dout); free(g); free(pk);
    free(o1); free(o2); free(d1); free(d2); free(w1); free(w2);
    ft__gemm_bf16_set_pack_budget(0);
    return bad;
}

static void test_weight_pack(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    static const int dims[][4] = { /* N, C, OC, tiny budget */
        {45, 70, 33, 0}, {7, 1601, 100, 0}, {37, 40, 1601, 0}, {800, 1601, 100, 1}, {800, 40, 1600, 1}, {3, 64, 1, 0}};
    ft_bf16_isa saved = ft_bf16_isa_get();
    ft_rng r;
    ft_rng_seed(&r, 21);
    int bad = 0;
    for (int isa = FT_BF16_ISA_AVX512F; isa <= FT_BF16_ISA_AVX512BF16; isa++) {
        if (ft_bf16_isa_best() < (ft_bf16_isa)isa) continue;
        assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)isa), FT_OK);
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) bad += wpack_case(&r, dims[d][0], dims[d][1], dims[d][2], dims[d][3]);
    }
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    assert_int_equal(bad, 0);
}

static void test_precision_names(void **state) {
    (void)state;
    const ft_backend *be = NULL;
    assert_int_equal(ft_backend_for_precision("f32", &be), FT_OK);
    assert_ptr_equal(be, ft_backend_cpu());
    assert_string_equal(ft_backend_precision(be), "f32");
    assert_int_equal(ft_backend_for_precision("fp8", &be), FT_ERR_INVALID);
    int rc = ft_backend_for_precision("bf16", &be);
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) {
        assert_int_equal(rc, FT_ERR_UNSUPPORTED);
        assert_non_null(strstr(ft_last_error(), "--precision f32"));
    } else {
        assert_int_equal(rc, FT_OK);
        assert_ptr_equal(be, ft_backend_cpu_bf16());
        assert_string_equal(ft_backend_precision(be), "bf16");
    }
    assert_ptr_equal(ft_backend_by_name("cpu-bf16"), ft_backend_cpu_bf16());
    assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)7), FT_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_round_hardware),
        cmocka_unit_test(test_avx512bf16_vs_ref),
        cmocka_unit_test(test_avx512f_vs_ref),
        cmocka_unit_test(test_blocking_vs_ref),
        cmocka_unit_test(test_workspace_trim),
        cmocka_unit_test(test_ref_vs_exact),
        cmocka_unit_test(test_linear_layer),
        cmocka_unit_test(test_attention_bf16),
        cmocka_unit_test(test_weight_pack),
        cmocka_unit_test(test_precision_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
