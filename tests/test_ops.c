/* test_ops.c — the optimised CPU kernels (ft_cpu_*) against the scalar reference (ft_ref_*) on random
 * inputs of awkward sizes, the contract rules of ops.h (parameter gradients +=, activation gradients
 * assigned, dresid fusion with aliasing, NULL gradients skipped, dlogits aliasing logits), and
 * run-to-run bit-identity of every CPU kernel. Gradients against finite differences are in
 * test_ops_grad.c. With FT_OPS_TIMING=1 one extra case prints CPU kernel timings at GPT-2 124M shapes.
 *
 * Activation-gradient outputs are pre-filled with NaN: a kernel that accumulates instead of assigning
 * shows NaN and fails. Parameter gradients are pre-filled with random values G0 and checked as
 * G0 + (reference gradient from zero). */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/ops.h"
#include "finetune/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOL 1e-5 /* max |cpu - ref| / max |ref| per tensor */

/* ---- small allocation tracker: every buffer of one configuration is freed by mem_free_all() ---- */
static void *g_mem[256];
static int g_nmem;

static void *mem(size_t nbytes) {
    void *p = malloc(nbytes ? nbytes : 1);
    assert_non_null(p);
    assert_true(g_nmem < 256);
    g_mem[g_nmem++] = p;
    return p;
}
static void mem_free_all(void) {
    while (g_nmem > 0) free(g_mem[--g_nmem]);
}
static float *fmem(size_t n) { return mem(n * sizeof(float)); }
static float *randn(ft_rng *r, size_t n, float sd, float mu) {
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = mu + sd * ft_rng_normal(r);
    return x;
}
static float *nans(size_t n) {
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}
static float *zeros(size_t n) {
    float *x = fmem(n);
    memset(x, 0, n * sizeof(float));
    return x;
}
static float *copy(const float *src, size_t n) {
    float *x = fmem(n);
    memcpy(x, src, n * sizeof(float));
    return x;
}
static float *diff(const float *a, const float *b, size_t n) { /* a - b */
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = a[i] - b[i];
    return x;
}
static int *imem(size_t n) { return mem(n * sizeof(int)); }

/* exact bit equality, printed */
static int check_same(const char *name, const void *a, const void *b, size_t nbytes) {
    int ok = memcmp(a, b, nbytes) == 0;
    printf("  %-44s bytes=%-9zu %s\n", name, nbytes, ok ? "bit-identical OK" : "DIFFERENT FAIL");
    return ok;
}

/* segment ids for packed examples: 1-3 segments per batch row, boundaries at random */
static int *make_seg(ft_rng *r, int B, int T) {
    int *seg = imem((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int id = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && ft_rng_below(r, 100) < 8) id++;
            seg[b * T + t] = id;
        }
    }
    return seg;
}

/* ------------------------------------------------------------------ embedding */
static void check_embedding(int B, int T, int C, int V, int use_pos, int use_wpe, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    int N = B * T, maxT = T + 3;
    printf("embedding B=%d T=%d C=%d V=%d pos=%s wpe=%s\n", B, T, C, V, use_pos ? "given" : "NULL", use_wpe ? "yes" : "NULL");
    int *ids = imem(N), *pos = use_pos ? imem(N) : NULL;
    for (int n = 0; n < N; n++) {
        ids[n] = (int)ft_rng_below(&r, V); /* V small: many repeated ids */
        if (pos) pos[n] = (int)ft_rng_below(&r, maxT);
    }
    float *wte = randn(&r, (size_t)V * C, 1, 0), *wpe = use_wpe ? randn(&r, (size_t)maxT * C, 1, 0) : NULL;
    float *o_ref = nans((size_t)N * C), *o_cpu = nans((size_t)N * C);
    ft_ref_embedding_forward(NULL, o_ref, ids, pos, wte, wpe, N, T, C);
    ft_cpu_embedding_forward(NULL, o_cpu, ids, pos, wte, wpe, N, T, C);
    assert_true(ft_check_close("embedding_forward out", o_cpu, o_ref, (size_t)N * C, TOL));

    float *dout = randn(&r, (size_t)N * C, 1, 0);
    float *g0te = randn(&r, (size_t)V * C, 1, 0), *g0pe = randn(&r, (size_t)maxT * C, 1, 0);
    float *te_ref = copy(g0te, (size_t)V * C), *pe_ref = copy(g0pe, (size_t)maxT * C);
    float *te_cpu = copy(g0te, (size_t)V * C), *pe_cpu = copy(g0pe, (size_t)maxT * C);
    float *te_zero = zeros((size_t)V * C), *pe_zero = zeros((size_t)maxT * C);
    ft_ref_embedding_backward(NULL, te_ref, pe_ref, dout, ids, pos, N, T, C);
    ft_cpu_embedding_backward(NULL, te_cpu, pe_cpu, dout, ids, pos, N, T, C);
    ft_ref_embedding_backward(NULL, te_zero, pe_zero, dout, ids, pos, N, T, C);
    assert_true(ft_check_close("embedding_backward dwte (+= onto G0)", te_cpu, te_ref, (size_t)V * C, TOL));
    assert_true(ft_check_close("embedding_backward dwpe (+= onto G0)", pe_cpu, pe_ref, (size_t)maxT * C, TOL));
    assert_true(ft_check_close("embedding_backward dwte - G0 vs grad from 0", diff(te_cpu, g0te, (size_t)V * C), te_zero,
                               (size_t)V * C, TOL));
    /* NULL dwpe: dwte unchanged by skipping the other */
    float *te_cpu2 = copy(g0te, (size_t)V * C);
    ft_cpu_embedding_backward(NULL, te_cpu2, NULL, dout, ids, pos, N, T, C);
    assert_true(check_same("embedding_backward dwte with dwpe=NULL", te_cpu2, te_cpu, (size_t)V * C * 4));
    float *pe_cpu2 = copy(g0pe, (size_t)maxT * C);
    ft_cpu_embedding_backward(NULL, NULL, pe_cpu2, dout, ids, pos, N, T, C);
    assert_true(check_same("embedding_backward dwpe with dwte=NULL", pe_cpu2, pe_cpu, (size_t)maxT * C * 4));
    mem_free_all();
}

static void test_embedding(void **state) {
    (void)state;
    check_embedding(1, 1, 1, 1, 0, 1, 1);
    check_embedding(3, 5, 37, 11, 0, 1, 2);
    check_embedding(2, 9, 19, 4, 1, 1, 3);
    check_embedding(2, 7, 33, 13, 0, 0, 4);
    check_embedding(4, 64, 515, 50, 1, 1, 5); /* parallel path */
}

/* ------------------------------------------------------------------ layernorm / rmsnorm */
static void check_layernorm(int N, int C, int use_b, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    size_t NC = (size_t)N * C;
    printf("layernorm N=%d C=%d bias=%s\n", N, C, use_b ? "yes" : "NULL");
    float *inp = randn(&r, NC, 2.0f, 0.5f), *w = randn(&r, C, 1, 1), *b = use_b ? randn(&r, C, 1, 0) : NULL;
    float *o_ref = nans(NC), *m_ref = nans(N), *s_ref = nans(N);
    float *o_cpu = nans(NC), *m_cpu = nans(N), *s_cpu = nans(N), *o_cpu2 = nans(NC);
    ft_ref_layernorm_forward(NULL, o_ref, m_ref, s_ref, inp, w, b, N, C, 1e-5f);
    ft_cpu_layernorm_forward(NULL, o_cpu, m_cpu, s_cpu, inp, w, b, N, C, 1e-5f);
    assert_true(ft_check_close("layernorm_forward out", o_cpu, o_ref, NC, TOL));
    assert_true(ft_check_close("layernorm_forward mean", m_cpu, m_ref, N, TOL));
    assert_true(ft_check_close("layernorm_forward rstd", s_cpu, s_ref, N, TOL));
    ft_cpu_layernorm_forward(NULL, o_cpu2, NULL, NULL, inp, w, b, N, C, 1e-5f);
    assert_true(check_same("layernorm_forward out with mean/rstd NULL", o_cpu2, o_cpu, NC * 4));

    float *dout = randn(&r, NC, 1, 0), *dres = randn(&r, NC, 1, 0);
    float *g0w = randn(&r, C, 1, 0), *g0b = randn(&r, C, 1, 0);
    float *di_ref = nans(NC), *dw_ref = copy(g0w, C), *db_ref = copy(g0b, C);
    float *di_cpu = nans(NC), *dw_cpu = copy(g0w, C), *db_cpu = copy(g0b, C);
    ft_ref_layernorm_backward(NULL, di_ref, dw_ref, db_ref, dout, dres, inp, w, m_ref, s_ref, N, C);
    ft_cpu_layernorm_backward(NULL, di_cpu, dw_cpu, db_cpu, dout, dres, inp, w, m_ref, s_ref, N, C);
    assert_true(ft_check_close("layernorm_backward dinp (dresid + ..)", di_cpu, di_ref, NC, TOL));
    assert_true(ft_check_close("layernorm_backward dw (+= onto G0)", dw_cpu, dw_ref, C, TOL));
    assert_true(ft_check_close("layernorm_backward db (+= onto G0)", db_cpu, db_ref, C, TOL));
    /* accumulation: (dw - G0) equals the gradient computed from zero */
    float *dw0 = zeros(C), *db0 = zeros(C), *di0 = nans(NC);
    ft_ref_layernorm_backward(NULL, di0, dw0, db0, dout, NULL, inp, w, m_ref, s_ref, N, C);
    assert_true(ft_check_close("layernorm_backward dw - G0 vs grad from 0", diff(dw_cpu, g0w, C), dw0, C, TOL));
    assert_true(ft_check_close("layernorm_backward db - G0 vs grad from 0", diff(db_cpu, g0b, C), db0, C, TOL));
    /* dresid NULL: dinp assigned (NaN pre-fill must vanish) */
    float *di_cpu0 = nans(NC);
    ft_cpu_layernorm_backward(NULL, di_cpu0, NULL, NULL, dout, NULL, inp, w, m_ref, s_ref, N, C);
    assert_true(ft_check_close("layernorm_backward dinp, dresid=NULL", di_cpu0, di0, NC, TOL));
    /* fused residual: dinp aliasing dresid gives the same bits as separate buffers */
    float *alias = copy(dres, NC), *dw_a = copy(g0w, C);
    ft_cpu_layernorm_backward(NULL, alias, dw_a, NULL, dout, alias, inp, w, m_ref, s_ref, N, C);
    assert_true(check_same("layernorm_backward dinp aliasing dresid", alias, di_cpu, NC * 4));
    assert_true(check_same("layernorm_backward dw with db=NULL", dw_a, dw_cpu, (size_t)C * 4));
    /* run-to-run bit identity */
    float *di_2 = nans(NC), *dw_2 = copy(g0w, C), *db_2 = copy(g0b, C), *o_3 = nans(NC);
    ft_cpu_layernorm_backward(NULL, di_2, dw_2, db_2, dout, dres, inp, w, m_ref, s_ref, N, C);
    ft_cpu_layernorm_forward(NULL, o_3, NULL, NULL, inp, w, b, N, C, 1e-5f);
    assert_true(check_same("layernorm determinism (fwd out, bwd dinp/dw/db)", o_3, o_cpu, NC * 4) &&
                memcmp(di_2, di_cpu, NC * 4) == 0 && memcmp(dw_2, dw_cpu, (size_t)C * 4) == 0 &&
                memcmp(db_2, db_cpu, (size_t)C * 4) == 0);
    mem_free_all();
}

static void test_layernorm(void **state) {
    (void)state;
    check_layernorm(1, 1, 1, 11);
    check_layernorm(1, 7, 0, 12);
    check_layernorm(5, 37, 1, 13);
    check_layernorm(17, 515, 0, 14);
    check_layernorm(97, 768, 1, 15); /* parallel path */
}

static void check_rmsnorm(int N, int C, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    size_t NC = (size_t)N * C;
    printf("rmsnorm N=%d C=%d\n", N, C);
    float *inp = randn(&r, NC, 2.0f, 0.3f), *w = randn(&r, C, 1, 1);
    float *o_ref = nans(NC), *s_ref = nans(N), *o_cpu = nans(NC), *s_cpu = nans(N), *o_cpu2 = nans(NC);
    ft_ref_rmsnorm_forward(NULL, o_ref, s_ref, inp, w, N, C, 1e-6f);
    ft_cpu_rmsnorm_forward(NULL, o_cpu, s_cpu, inp, w, N, C, 1e-6f);
    assert_true(ft_check_close("rmsnorm_forward out", o_cpu, o_ref, NC, TOL));
    assert_true(ft_check_close("rmsnorm_forward rstd", s_cpu, s_ref, N, TOL));
    ft_cpu_rmsnorm_forward(NULL, o_cpu2, NULL, inp, w, N, C, 1e-6f);
    assert_true(check_same("rmsnorm_forward out with rstd NULL", o_cpu2, o_cpu, NC * 4));

    float *dout = randn(&r, NC, 1, 0), *dres = randn(&r, NC, 1, 0), *g0w = randn(&r, C, 1, 0);
    float *di_ref = nans(NC), *dw_ref = copy(g0w, C), *di_cpu = nans(NC), *dw_cpu = copy(g0w, C);
    ft_ref_rmsnorm_backward(NULL, di_ref, dw_ref, dout, dres, inp, w, s_ref, N, C);
    ft_cpu_rmsnorm_backward(NULL, di_cpu, dw_cpu, dout, dres, inp, w, s_ref, N, C);
    assert_true(ft_check_close("rmsnorm_backward dinp (dresid + ..)", di_cpu, di_ref, NC, TOL));
    assert_true(ft_check_close("rmsnorm_backward dw (+= onto G0)", dw_cpu, dw_ref, C, TOL));
    float *dw0 = zeros(C), *di0 = nans(NC), *di_cpu0 = nans(NC);
    ft_ref_rmsnorm_backward(NULL, di0, dw0, dout, NULL, inp, w, s_ref, N, C);
    assert_true(ft_check_close("rmsnorm_backward dw - G0 vs grad from 0", diff(dw_cpu, g0w, C), dw0, C, TOL));
    ft_cpu_rmsnorm_backward(NULL, di_cpu0, NULL, dout, NULL, inp, w, s_ref, N, C);
    assert_true(ft_check_close("rmsnorm_backward dinp, dresid=NULL", di_cpu0, di0, NC, TOL));
    float *alias = copy(dres, NC);
    ft_cpu_rmsnorm_backward(NULL, alias, NULL, dout, alias, inp, w, s_ref, N, C);
    assert_true(check_same("rmsnorm_backward dinp aliasing dresid", alias, di_cpu, NC * 4));
    float *dw_only = copy(g0w, C);
    ft_cpu_rmsnorm_backward(NULL, NULL, dw_only, dout, dres, inp, w, s_ref, N, C);
    assert_true(check_same("rmsnorm_backward dw with dinp=NULL (and repeat)", dw_only, dw_cpu, (size_t)C * 4));
    mem_free_all();
}

static void test_rmsnorm(void **state) {
    (void)state;
    check_rmsnorm(1, 2, 21); /* C = 1 is degenerate: d(x/|x|)/dx ~ eps/|x|^3 is pure cancellation */
    check_rmsnorm(3, 37, 22);
    check_rmsnorm(19, 515, 23);
    check_rmsnorm(80, 1000, 24);
}

/* ------------------------------------------------------------------ matmul / bias */
static void check_matmul(int N, int C, int OC, int use_bias, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("matmul N=%d C=%d OC=%d bias=%s\n", N, C, OC, use_bias ? "yes" : "NULL");
    size_t NC = (size_t)N * C, NO = (size_t)N * OC, OCC = (size_t)OC * C;
    float *inp = randn(&r, NC, 1, 0), *w = randn(&r, OCC, 0.2f, 0), *bias = use_bias ? randn(&r, OC, 1, 0) : NULL;
    float *o_ref = nans(NO), *o_cpu = nans(NO), *o_cpu2 = nans(NO);
    ft_ref_matmul_forward(NULL, o_ref, inp, w, bias, N, C, OC);
    ft_cpu_matmul_forward(NULL, o_cpu, inp, w, bias, N, C, OC);
    assert_true(ft_check_close("matmul_forward out (assigned over NaN)", o_cpu, o_ref, NO, TOL));
    float *dout = randn(&r, NO, 1, 0), *g0w = randn(&r, OCC, 1, 0), *g0b = randn(&r, OC, 1, 0);
    float *di_ref = nans(NC), *dw_ref = copy(g0w, OCC), *db_ref = copy(g0b, OC);
    float *di_cpu = nans(NC), *dw_cpu = copy(g0w, OCC), *db_cpu = copy(g0b, OC);
    ft_ref_matmul_backward(NULL, di_ref, dw_ref, db_ref, dout, inp, w, N, C, OC);
    ft_cpu_matmul_backward(NULL, di_cpu, dw_cpu, db_cpu, dout, inp, w, N, C, OC);
    assert_true(ft_check_close("matmul_backward dinp (assigned over NaN)", di_cpu, di_ref, NC, TOL));
    assert_true(ft_check_close("matmul_backward dw (+= onto G0)", dw_cpu, dw_ref, OCC, TOL));
    assert_true(ft_check_close("matmul_backward dbias (+= onto G0)", db_cpu, db_ref, OC, TOL));
    float *dw0 = zeros(OCC), *db0 = zeros(OC);
    ft_ref_matmul_backward(NULL, NULL, dw0, db0, dout, inp, w, N, C, OC);
    assert_true(ft_check_close("matmul_backward dw - G0 vs grad from 0", diff(dw_cpu, g0w, OCC), dw0, OCC, TOL));
    assert_true(ft_check_close("matmul_backward dbias - G0 vs grad from 0", diff(db_cpu, g0b, OC), db0, OC, TOL));
    /* NULL gradients are skipped; the others are unchanged */
    float *dw_only = copy(g0w, OCC);
    ft_cpu_matmul_backward(NULL, NULL, dw_only, NULL, dout, inp, w, N, C, OC);
    assert_true(ft_check_close("matmul_backward dw only (dinp, dbias NULL)", dw_only, dw_ref, OCC, TOL));
    /* determinism */
    float *di_2 = nans(NC), *dw_2 = copy(g0w, OCC), *db_2 = copy(g0b, OC);
    ft_cpu_matmul_forward(NULL, o_cpu2, inp, w, bias, N, C, OC);
    ft_cpu_matmul_backward(NULL, di_2, dw_2, db_2, dout, inp, w, N, C, OC);
    assert_true(check_same("matmul determinism (out, dinp, dw, dbias)", o_cpu2, o_cpu, NO * 4) &&
                memcmp(di_2, di_cpu, NC * 4) == 0 && memcmp(dw_2, dw_cpu, OCC * 4) == 0 &&
                memcmp(db_2, db_cpu, (size_t)OC * 4) == 0);
    /* bias_add pair */
    float *ba_ref = copy(o_ref, NO), *ba_cpu = copy(o_ref, NO), *bb_ref = copy(g0b, OC), *bb_cpu = copy(g0b, OC);
    float *bias2 = randn(&r, OC, 1, 0);
    ft_ref_bias_add_forward(NULL, ba_ref, bias2, N, OC);
    ft_cpu_bias_add_forward(NULL, ba_cpu, bias2, N, OC);
    ft_ref_bias_backward(NULL, bb_ref, dout, N, OC);
    ft_cpu_bias_backward(NULL, bb_cpu, dout, N, OC);
    assert_true(ft_check_close("bias_add_forward out +=", ba_cpu, ba_ref, NO, TOL));
    assert_true(ft_check_close("bias_backward dbias (+= onto G0)", bb_cpu, bb_ref, OC, TOL));
    mem_free_all();
}

static void test_matmul(void **state) {
    (void)state;
    check_matmul(1, 1, 1, 1, 31);
    check_matmul(1, 17, 5, 0, 32);
    check_matmul(5, 17, 13, 1, 33);
    check_matmul(33, 70, 129, 0, 34);
    check_matmul(67, 131, 515, 1, 35); /* parallel bias reduction */
    check_matmul(16, 768, 300, 0, 36); /* the small-row kernel (2..16 rows), threaded */
    check_matmul(7, 100, 61, 1, 37);
}

/* ------------------------------------------------------------------ activations */
static void check_elementwise(size_t n, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("gelu/residual n=%zu\n", n);
    float *x = randn(&r, n, 3.0f, 0), *y = randn(&r, n, 1, 0), *dout = randn(&r, n, 1, 0);
    x[0] = -12.0f; /* far tails: gelu -> -0 and x */
    if (n > 1) x[1] = 12.0f;
    float *o_ref = nans(n), *o_cpu = nans(n), *d_ref = nans(n), *d_cpu = nans(n), *o2 = nans(n), *d2 = nans(n);
    ft_ref_gelu_forward(NULL, o_ref, x, n);
    ft_cpu_gelu_forward(NULL, o_cpu, x, n);
    assert_true(ft_check_close("gelu_forward out", o_cpu, o_ref, n, TOL));
    ft_ref_gelu_backward(NULL, d_ref, dout, x, n);
    ft_cpu_gelu_backward(NULL, d_cpu, dout, x, n);
    assert_true(ft_check_close("gelu_backward dinp (assigned over NaN)", d_cpu, d_ref, n, TOL));
    ft_cpu_gelu_forward(NULL, o2, x, n);
    ft_cpu_gelu_backward(NULL, d2, dout, x, n);
    assert_true(check_same("gelu determinism (fwd, bwd)", o2, o_cpu, n * 4) && memcmp(d2, d_cpu, n * 4) == 0);
    float *s_ref = nans(n), *s_cpu = nans(n);
    ft_ref_residual_forward(NULL, s_ref, x, y, n);
    ft_cpu_residual_forward(NULL, s_cpu, x, y, n);
    assert_true(ft_check_close("residual_forward out", s_cpu, s_ref, n, 0.0));
    mem_free_all();
}

static void test_gelu_residual(void **state) {
    (void)state;
    check_elementwise(1, 41);
    check_elementwise(1001, 42);
    check_elementwise(100003, 43);
    /* the exact formula at a few points (HF gelu_new) */
    float xs[5] = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}, o[5];
    ft_cpu_gelu_forward(NULL, o, xs, 5);
    for (int i = 0; i < 5; i++) {
        double x = xs[i], e = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        printf("  gelu(%g) = %.8g expected %.8g\n", x, o[i], e);
        assert_true(fabs(o[i] - e) <= 1e-6 * (1 + fabs(e)));
    }
}

static void check_swiglu(int N, int H, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("swiglu N=%d H=%d\n", N, H);
    size_t NH2 = (size_t)N * 2 * H, NH = (size_t)N * H;
    float *inp = randn(&r, NH2, 3.0f, 0), *dout = randn(&r, NH, 1, 0);
    float *o_ref = nans(NH), *o_cpu = nans(NH), *d_ref = nans(NH2), *d_cpu = nans(NH2), *d2 = nans(NH2);
    ft_ref_swiglu_forward(NULL, o_ref, inp, N, H);
    ft_cpu_swiglu_forward(NULL, o_cpu, inp, N, H);
    assert_true(ft_check_close("swiglu_forward out", o_cpu, o_ref, NH, TOL));
    ft_ref_swiglu_backward(NULL, d_ref, dout, inp, N, H);
    ft_cpu_swiglu_backward(NULL, d_cpu, dout, inp, N, H);
    assert_true(ft_check_close("swiglu_backward dinp (assigned over NaN)", d_cpu, d_ref, NH2, TOL));
    ft_cpu_swiglu_backward(NULL, d2, dout, inp, N, H);
    assert_true(check_same("swiglu_backward determinism", d2, d_cpu, NH2 * 4));
    mem_free_all();
}

static void test_swiglu(void **state) {
    (void)state;
    check_swiglu(1, 1, 51);
    check_swiglu(3, 37, 52);
    check_swiglu(65, 689, 53);
}

/* ------------------------------------------------------------------ rope */
static void check_rope(int N, int NH, int NKV, int HS, int maxpos, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("rope N=%d NH=%d NKV=%d HS=%d maxpos=%d\n", N, NH, NKV, HS, maxpos);
    size_t n = (size_t)N * (NH + 2 * NKV) * HS;
    float *x = randn(&r, n, 1, 0), *invf = fmem(HS / 2);
    int *pos = imem(N);
    for (int i = 0; i < HS / 2; i++) invf[i] = (float)pow(10000.0, -2.0 * i / HS);
    for (int i = 0; i < N; i++) pos[i] = (int)ft_rng_below(&r, maxpos);
    float *a_ref = copy(x, n), *a_cpu = copy(x, n);
    ft_ref_rope_forward(NULL, a_ref, pos, invf, N, NH, NKV, HS);
    ft_cpu_rope_forward(NULL, a_cpu, pos, invf, N, NH, NKV, HS);
    assert_true(ft_check_close("rope_forward qkv", a_cpu, a_ref, n, TOL));
    int vunchanged = 1, R = (NH + 2 * NKV) * HS;
    for (int i = 0; i < N; i++)
        vunchanged &= memcmp(a_cpu + (size_t)i * R + (size_t)(NH + NKV) * HS, x + (size_t)i * R + (size_t)(NH + NKV) * HS,
                             (size_t)NKV * HS * 4) == 0;
    printf("  rope_forward leaves v heads untouched: %s\n", vunchanged ? "OK" : "FAIL");
    assert_true(vunchanged);
    float *d = randn(&r, n, 1, 0), *d_ref = copy(d, n), *d_cpu = copy(d, n);
    ft_ref_rope_backward(NULL, d_ref, pos, invf, N, NH, NKV, HS);
    ft_cpu_rope_backward(NULL, d_cpu, pos, invf, N, NH, NKV, HS);
    assert_true(ft_check_close("rope_backward dqkv", d_cpu, d_ref, n, TOL));
    ft_cpu_rope_backward(NULL, a_cpu, pos, invf, N, NH, NKV, HS);
    assert_true(ft_check_close("rope_backward(rope_forward(x)) = x", a_cpu, x, n, TOL));
    mem_free_all();
}

static void test_rope(void **state) {
    (void)state;
    check_rope(1, 1, 1, 2, 1, 61);
    check_rope(7, 4, 2, 8, 50, 62);
    check_rope(5, 3, 3, 130, 4000, 63); /* HS/2 = 65: more than one cos/sin chunk */
    check_rope(128, 12, 4, 64, 2048, 64);
    /* HF rotate_half convention at one point: pos 3, HS 4, inv_freq {1, 0.5} */
    float q[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9}, invf[2] = {1.0f, 0.5f};
    int pos = 3;
    ft_cpu_rope_forward(NULL, q, &pos, invf, 1, 1, 1, 4);
    double c0 = cos(3.0), s0 = sin(3.0), c1 = cos(1.5), s1 = sin(1.5);
    double e[4] = {1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1};
    for (int i = 0; i < 4; i++) {
        printf("  rope q[%d] = %.7f expected %.7f\n", i, q[i], e[i]);
        assert_true(fabs(q[i] - e[i]) < 1e-6);
    }
}

/* ------------------------------------------------------------------ attention */
static void check_attention(int B, int T, int NH, int NKV, int HS, int use_seg, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("attention B=%d T=%d NH=%d NKV=%d HS=%d seg=%s\n", B, T, NH, NKV, HS, use_seg ? "yes" : "NULL");
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HS, nout = (size_t)B * T * NH * HS, natt = (size_t)B * NH * T * T;
    float *qkv = randn(&r, nqkv, 1.5f, 0);
    int *seg = use_seg ? make_seg(&r, B, T) : NULL;
    float *o_ref = nans(nout), *a_ref = nans(natt), *o_cpu = nans(nout), *a_cpu = nans(natt);
    ft_ref_attention_forward(NULL, o_ref, a_ref, qkv, seg, B, T, NH, NKV, HS);
    ft_cpu_attention_forward(NULL, o_cpu, a_cpu, qkv, seg, B, T, NH, NKV, HS);
    assert_true(ft_check_close("attention_forward out", o_cpu, o_ref, nout, TOL));
    assert_true(ft_check_close("attention_forward att (incl. zeros j>t)", a_cpu, a_ref, natt, TOL));
    float *dout = randn(&r, nout, 1, 0);
    float *d_ref = nans(nqkv), *d_cpu = nans(nqkv), *sc_ref = nans(natt), *sc_cpu = nans(natt);
    ft_ref_attention_backward(NULL, d_ref, sc_ref, dout, qkv, a_ref, seg, B, T, NH, NKV, HS);
    ft_cpu_attention_backward(NULL, d_cpu, sc_cpu, dout, qkv, a_ref, seg, B, T, NH, NKV, HS);
    assert_true(ft_check_close("attention_backward dqkv (assigned over NaN)", d_cpu, d_ref, nqkv, TOL));
    /* with the cpu forward's att, and a garbage scratch */
    float *d_cpu2 = nans(nqkv), *sc2 = randn(&r, natt, 100, 0);
    ft_cpu_attention_backward(NULL, d_cpu2, sc2, dout, qkv, a_cpu, seg, B, T, NH, NKV, HS);
    assert_true(ft_check_close("attention_backward dqkv (cpu att, junk scratch)", d_cpu2, d_ref, nqkv, TOL));
    /* determinism */
    float *o_3 = nans(nout), *a_3 = nans(natt), *d_3 = nans(nqkv), *sc3 = nans(natt);
    ft_cpu_attention_forward(NULL, o_3, a_3, qkv, seg, B, T, NH, NKV, HS);
    ft_cpu_attention_backward(NULL, d_3, sc3, dout, qkv, a_cpu, seg, B, T, NH, NKV, HS);
    assert_true(check_same("attention determinism (out, att, dqkv)", o_3, o_cpu, nout * 4) &&
                memcmp(a_3, a_cpu, natt * 4) == 0 && memcmp(d_3, d_cpu2, nqkv * 4) == 0);
    mem_free_all();
}

static void test_attention(void **state) {
    (void)state;
    check_attention(1, 1, 1, 1, 8, 0, 71);
    check_attention(2, 1, 4, 2, 16, 1, 72);
    check_attention(2, 7, 4, 2, 16, 1, 73);
    check_attention(2, 37, 4, 2, 24, 0, 74);
    check_attention(1, 70, 3, 1, 8, 1, 75);  /* 3 query heads per K/V head, several row blocks */
    check_attention(2, 130, 2, 2, 64, 0, 76); /* T not a multiple of the block */
    check_attention(3, 129, 6, 2, 20, 1, 77);
}

static void check_attention_cached(int P, int T, int NH, int NKV, int HS, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    int L = P + T, R = (NH + 2 * NKV) * HS, OC = NH * HS;
    printf("attention_cached P=%d T=%d NH=%d NKV=%d HS=%d\n", P, T, NH, NKV, HS);
    /* a full sequence qkv[1, L, R]; the cache reads its K/V columns in place (kv_stride = R) */
    float *qkv = randn(&r, (size_t)L * R, 1.5f, 0), *q = fmem((size_t)T * OC);
    for (int t = 0; t < T; t++) memcpy(q + (size_t)t * OC, qkv + (size_t)(P + t) * R, (size_t)OC * 4);
    const float *kc = qkv + (size_t)NH * HS, *vc = qkv + (size_t)(NH + NKV) * HS;
    float *o_ref = nans((size_t)T * OC), *o_cpu = nans((size_t)T * OC), *o2 = nans((size_t)T * OC);
    ft_ref_attention_cached_forward(NULL, o_ref, q, kc, vc, R, P, T, NH, NKV, HS);
    ft_cpu_attention_cached_forward(NULL, o_cpu, q, kc, vc, R, P, T, NH, NKV, HS);
    assert_true(ft_check_close("attention_cached_forward out", o_cpu, o_ref, (size_t)T * OC, TOL));
    /* same as rows P.. of the training forward on the whole sequence */
    float *full = nans((size_t)L * OC), *att = nans((size_t)L * NH * L);
    ft_ref_attention_forward(NULL, full, att, qkv, NULL, 1, L, NH, NKV, HS);
    assert_true(ft_check_close("attention_cached_forward vs full forward", o_cpu, full + (size_t)P * OC, (size_t)T * OC, TOL));
    ft_cpu_attention_cached_forward(NULL, o2, q, kc, vc, R, P, T, NH, NKV, HS);
    assert_true(check_same("attention_cached_forward determinism", o2, o_cpu, (size_t)T * OC * 4));
    mem_free_all();
}

static void test_attention_cached(void **state) {
    (void)state;
    check_attention_cached(0, 1, 1, 1, 8, 81);
    check_attention_cached(5, 3, 4, 2, 16, 82);
    check_attention_cached(300, 2, 4, 2, 8, 83);   /* more than one key chunk */
    check_attention_cached(0, 40, 4, 1, 32, 84);   /* prefill */
    check_attention_cached(511, 1, 12, 12, 64, 85); /* decode step, GPT-2 head shape */
}

/* ------------------------------------------------------------------ attention family */
/* padding mask [B,T]: random holes, row 0 keeps its first key real; with all_pad_row the last batch
 * row is all padding (every query attends uniformly) */
static int *make_pad(ft_rng *r, int B, int T, int all_pad_row) {
    int *pad = imem((size_t)B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) pad[b * T + t] = ft_rng_below(r, 100) >= 30 || (b == 0 && t == 0);
    if (all_pad_row && B > 1)
        for (int t = 0; t < T; t++) pad[(B - 1) * T + t] = 0;
    return pad;
}

static const char *kind_name(int kind) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s%s", kind ? "" : "full", kind & FT_ATTN_CAUSAL ? "causal " : "",
             kind & FT_ATTN_PADDING ? "padding " : "", kind & FT_ATTN_SEGMENTS ? "segments" : "");
    return buf;
}

/* The decoder's kernels (fused qkv) against the family on strided views of the same buffer: the same bits. */
static void check_family_decoder(int B, int T, int NH, int NKV, int HS, int use_seg, float p, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    int R = (NH + 2 * NKV) * HS, OC = NH * HS;
    printf("attn family vs attention_dropout_* B=%d T=%d NH=%d NKV=%d HS=%d seg=%s p=%.2f\n", B, T, NH, NKV, HS, use_seg ? "yes" : "NULL", p);
    size_t nqkv = (size_t)B * T * R, nout = (size_t)B * T * OC, natt = (size_t)B * NH * T * T;
    float *qkv = randn(&r, nqkv, 1.5f, 0), *dout = randn(&r, nout, 1, 0);
    int *seg = use_seg ? make_seg(&r, B, T) : NULL;
    ft_attn_mask mk = {FT_ATTN_CAUSAL | (seg ? FT_ATTN_SEGMENTS : 0), NULL, seg};
    const float *q = qkv, *k = qkv + (size_t)NH * HS, *v = k + (size_t)NKV * HS;
    for (int be = 0; be < 2; be++) {
        const ft_backend *bk = be ? ft_backend_cpu() : ft_backend_ref();
        float *o_old = nans(nout), *a_old = nans(natt), *o_new = nans(nout), *a_new = nans(natt);
        (be ? ft_cpu_attention_dropout_forward : ft_ref_attention_dropout_forward)(NULL, o_old, a_old, qkv, seg, B, T, NH, NKV, HS, p, 99);
        bk->attn_forward(bk->ctx, o_new, a_new, q, R, k, R, v, R, &mk, B, T, NH, NKV, HS, p, 99);
        char name[96];
        snprintf(name, sizeof name, "%s attn_forward out, att", bk->name);
        assert_true(check_same(name, o_new, o_old, nout * 4) && memcmp(a_new, a_old, natt * 4) == 0);
        float *d_old = nans(nqkv), *d_new = nans(nqkv), *s_old = nans(natt), *s_new = nans(natt);
        (be ? ft_cpu_attention_dropout_backward : ft_ref_attention_dropout_backward)(NULL, d_old, s_old, dout, qkv, a_old, seg, B, T, NH, NKV, HS, p, 99);
        bk->attn_backward(bk->ctx, d_new, d_new + (size_t)NH * HS, d_new + (size_t)(NH + NKV) * HS, s_new, dout, q, R, k, R, v, R, a_new,
                          &mk, B, T, NH, NKV, HS, p, 99);
        snprintf(name, sizeof name, "%s attn_backward dq|dk|dv (strided into dqkv)", bk->name);
        assert_true(check_same(name, d_new, d_old, nqkv * 4));
        /* no scratch: per-thread buffers (cpu) / a buffer of the call (ref) */
        float *d_ns = nans(nqkv);
        bk->attn_backward(bk->ctx, d_ns, d_ns + (size_t)NH * HS, d_ns + (size_t)(NH + NKV) * HS, NULL, dout, q, R, k, R, v, R, a_new,
                          &mk, B, T, NH, NKV, HS, p, 99);
        snprintf(name, sizeof name, "%s attn_backward with scratch NULL", bk->name);
        assert_true(check_same(name, d_ns, d_old, nqkv * 4));
    }
    mem_free_all();
}

/* The encoder's kernels (separate q, k, v; padding mask) against the family: within 1e-6. */
static void check_family_encoder(int B, int T, int NH, int HS, int all_pad_row, float p, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    int C = NH * HS;
    printf("attn family vs enc_attention_dropout_* B=%d T=%d NH=%d HS=%d all-padding row=%s p=%.2f\n", B, T, NH, HS,
           all_pad_row ? "yes" : "no", p);
    size_t n = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *q = randn(&r, n, 1.5f, 0), *k = randn(&r, n, 1.5f, 0), *v = randn(&r, n, 1, 0), *dout = randn(&r, n, 1, 0);
    int *pad = make_pad(&r, B, T, all_pad_row);
    ft_attn_mask mk = {FT_ATTN_PADDING, pad, NULL};
    for (int be = 0; be < 2; be++) {
        const ft_backend *bk = be ? ft_backend_cpu() : ft_backend_ref();
        float *o_old = nans(n), *a_old = nans(natt), *o_new = nans(n), *a_new = nans(natt);
        (be ? ft_cpu_enc_attention_dropout_forward : ft_ref_enc_attention_dropout_forward)(NULL, o_old, a_old, q, k, v, pad, B, T, NH, HS, p, 7);
        bk->attn_forward(bk->ctx, o_new, a_new, q, C, k, C, v, C, &mk, B, T, NH, NH, HS, p, 7);
        char name[96];
        snprintf(name, sizeof name, "%s attn_forward out vs enc", bk->name);
        assert_true(ft_check_close(name, o_new, o_old, n, 1e-6));
        snprintf(name, sizeof name, "%s attn_forward att vs enc", bk->name);
        assert_true(ft_check_close(name, a_new, a_old, natt, 1e-6));
        float *g_old = nans(3 * n), *g_new = nans(3 * n);
        (be ? ft_cpu_enc_attention_dropout_backward : ft_ref_enc_attention_dropout_backward)(NULL, g_old, g_old + n, g_old + 2 * n, dout, q, k, v, a_old, B, T, NH, HS, p, 7);
        bk->attn_backward(bk->ctx, g_new, g_new + n, g_new + 2 * n, NULL, dout, q, C, k, C, v, C, a_new, &mk, B, T, NH, NH, HS, p, 7);
        const char *gn[3] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s attn_backward %s vs enc", bk->name, gn[i]);
            assert_true(ft_check_close(name, g_new + i * n, g_old + i * n, n, 1e-6));
        }
    }
    mem_free_all();
}

/* Every mask kind, GQA, strided views with extra columns: cpu against ref, and cpu run to run. */
static void check_family(int kind, int B, int T, int NH, int NKV, int HS, float p, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    int OC = NH * HS, ldq = OC + 3, ldk = NKV * HS + 5, ldv = NKV * HS + 1;
    printf("attn family %s B=%d T=%d NH=%d NKV=%d HS=%d p=%.2f (ld %d/%d/%d)\n", kind_name(kind), B, T, NH, NKV, HS, p, ldq, ldk, ldv);
    size_t nq = (size_t)B * T * ldq, nk = (size_t)B * T * ldk, nv = (size_t)B * T * ldv, nout = (size_t)B * T * OC, natt = (size_t)B * NH * T * T;
    float *q = randn(&r, nq, 1.5f, 0), *k = randn(&r, nk, 1.5f, 0), *v = randn(&r, nv, 1, 0), *dout = randn(&r, nout, 1, 0);
    ft_attn_mask mk = {kind, kind & FT_ATTN_PADDING ? make_pad(&r, B, T, 1) : NULL, kind & FT_ATTN_SEGMENTS ? make_seg(&r, B, T) : NULL};
    float *o_ref = nans(nout), *a_ref = nans(natt), *o_cpu = nans(nout), *a_cpu = nans(natt);
    ft_ref_attn_forward(NULL, o_ref, a_ref, q, ldq, k, ldk, v, ldv, &mk, B, T, NH, NKV, HS, p, 5);
    ft_cpu_attn_forward(NULL, o_cpu, a_cpu, q, ldq, k, ldk, v, ldv, &mk, B, T, NH, NKV, HS, p, 5);
    assert_true(ft_check_close("attn_forward out", o_cpu, o_ref, nout, TOL));
    assert_true(ft_check_close("attn_forward att (every entry written)", a_cpu, a_ref, natt, TOL));
    /* gradients into buffers with the same strides; the padding columns must stay untouched */
    float *dq_r = randn(&r, nq, 1, 0), *dk_r = randn(&r, nk, 1, 0), *dv_r = randn(&r, nv, 1, 0);
    float *dq_c = copy(dq_r, nq), *dk_c = copy(dk_r, nk), *dv_c = copy(dv_r, nv);
    float *dq_0 = copy(dq_r, nq);
    ft_ref_attn_backward(NULL, dq_r, dk_r, dv_r, NULL, dout, q, ldq, k, ldk, v, ldv, a_ref, &mk, B, T, NH, NKV, HS, p, 5);
    ft_cpu_attn_backward(NULL, dq_c, dk_c, dv_c, NULL, dout, q, ldq, k, ldk, v, ldv, a_ref, &mk, B, T, NH, NKV, HS, p, 5);
    assert_true(ft_check_close("attn_backward dq", dq_c, dq_r, nq, TOL));
    assert_true(ft_check_close("attn_backward dk", dk_c, dk_r, nk, TOL));
    assert_true(ft_check_close("attn_backward dv", dv_c, dv_r, nv, TOL));
    int untouched = 1;
    for (size_t i = 0; i < (size_t)B * T; i++)
        for (int c = OC; c < ldq; c++) untouched &= dq_c[i * ldq + c] == dq_0[i * ldq + c] && dq_r[i * ldq + c] == dq_0[i * ldq + c];
    printf("  columns between the strided rows untouched: %s\n", untouched ? "yes OK" : "NO FAIL");
    assert_true(untouched);
    /* determinism */
    float *o2 = nans(nout), *a2 = nans(natt), *dq2 = copy(dq_0, nq), *dk2 = nans(nk), *dv2 = nans(nv);
    ft_cpu_attn_forward(NULL, o2, a2, q, ldq, k, ldk, v, ldv, &mk, B, T, NH, NKV, HS, p, 5);
    memcpy(dk2, dk_c, nk * 4);
    memcpy(dv2, dv_c, nv * 4);
    ft_cpu_attn_backward(NULL, dq2, dk2, dv2, NULL, dout, q, ldq, k, ldk, v, ldv, a_ref, &mk, B, T, NH, NKV, HS, p, 5);
    assert_true(check_same("attn determinism (out, att, dq, dk, dv)", o2, o_cpu, nout * 4) && memcmp(a2, a_cpu, natt * 4) == 0 &&
                memcmp(dq2, dq_c, nq * 4) == 0 && memcmp(dk2, dk_c, nk * 4) == 0 && memcmp(dv2, dv_c, nv * 4) == 0);
    mem_free_all();
}

static void test_attention_family(void **state) {
    (void)state;
    check_family_decoder(2, 7, 4, 2, 16, 1, 0.0f, 301);
    check_family_decoder(2, 70, 6, 2, 8, 1, 0.0f, 302);
    check_family_decoder(1, 37, 4, 4, 24, 0, 0.2f, 303);
    check_family_decoder(3, 129, 6, 3, 20, 1, 0.1f, 304);
    check_family_encoder(3, 9, 4, 16, 1, 0.0f, 311);
    check_family_encoder(2, 45, 2, 32, 0, 0.0f, 312);
    check_family_encoder(3, 33, 3, 8, 1, 0.25f, 313);
    int kinds[] = {0, FT_ATTN_CAUSAL, FT_ATTN_PADDING, FT_ATTN_SEGMENTS, FT_ATTN_CAUSAL | FT_ATTN_SEGMENTS,
                   FT_ATTN_CAUSAL | FT_ATTN_PADDING, FT_ATTN_PADDING | FT_ATTN_SEGMENTS,
                   FT_ATTN_CAUSAL | FT_ATTN_PADDING | FT_ATTN_SEGMENTS};
    for (int i = 0; i < 8; i++) {
        check_family(kinds[i], 2, 11, 4, 2, 8, 0.0f, 320 + i);
        check_family(kinds[i], 3, 67, 6, 3, 16, 0.15f, 330 + i);
    }
    check_family(FT_ATTN_CAUSAL, 1, 1, 1, 1, 8, 0.0f, 340);
    check_family(FT_ATTN_PADDING, 1, 1, 1, 1, 8, 0.0f, 341);
}

/* ------------------------------------------------------------------ cross-entropy */
static void check_crossentropy(int N, int V, float smoothing, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    size_t NV = (size_t)N * V;
    printf("crossentropy N=%d V=%d label_smoothing=%g\n", N, V, smoothing);
    float *logits = randn(&r, NV, 3.0f, 1.0f);
    int *tg = imem(N), valid = 0;
    for (int n = 0; n < N; n++) {
        uint64_t k = ft_rng_below(&r, 10);
        tg[n] = k == 0 ? FT_IGNORE_INDEX : k == 1 ? V : k == 2 ? -7 : (int)ft_rng_below(&r, V);
        valid += tg[n] >= 0 && tg[n] < V;
    }
    float scale = 1.0f / (valid ? valid : 1);
    float *l_ref = nans(N), *l_cpu = nans(N), *l_cpu2 = nans(N), *l_alias = nans(N);
    float *d_ref = nans(NV), *d_cpu = nans(NV);
    ft_ref_crossentropy_forward_backward(NULL, l_ref, d_ref, logits, tg, N, V, scale, smoothing, FT_IGNORE_INDEX);
    ft_cpu_crossentropy_forward_backward(NULL, l_cpu, d_cpu, logits, tg, N, V, scale, smoothing, FT_IGNORE_INDEX);
    assert_true(ft_check_close("crossentropy losses", l_cpu, l_ref, N, TOL));
    assert_true(ft_check_close("crossentropy dlogits (assigned over NaN)", d_cpu, d_ref, NV, TOL));
    int ign_ok = 1;
    for (int n = 0; n < N; n++)
        if (!(tg[n] >= 0 && tg[n] < V)) {
            ign_ok &= l_cpu[n] == 0.0f;
            for (int v = 0; v < V; v++) ign_ok &= d_cpu[(size_t)n * V + v] == 0.0f;
        }
    printf("  ignored / out-of-range rows: loss 0 and zero gradient: %s (%d of %d rows valid)\n", ign_ok ? "OK" : "FAIL", valid, N);
    assert_true(ign_ok);
    ft_cpu_crossentropy_forward_backward(NULL, l_cpu2, NULL, logits, tg, N, V, scale, smoothing, FT_IGNORE_INDEX);
    assert_true(check_same("crossentropy losses with dlogits=NULL", l_cpu2, l_cpu, (size_t)N * 4));
    float *inplace = copy(logits, NV);
    ft_cpu_crossentropy_forward_backward(NULL, l_alias, inplace, inplace, tg, N, V, scale, smoothing, FT_IGNORE_INDEX);
    assert_true(check_same("crossentropy dlogits aliasing logits", inplace, d_cpu, NV * 4) &&
                memcmp(l_alias, l_cpu, (size_t)N * 4) == 0);
    float *d_3 = nans(NV), *l_3 = nans(N);
    ft_cpu_crossentropy_forward_backward(NULL, l_3, d_3, logits, tg, N, V, scale, smoothing, FT_IGNORE_INDEX);
    assert_true(check_same("crossentropy determinism", d_3, d_cpu, NV * 4) && memcmp(l_3, l_cpu, (size_t)N * 4) == 0);
    mem_free_all();
}

static void test_crossentropy(void **state) {
    (void)state;
    check_crossentropy(1, 1, 0.0f, 91);
    check_crossentropy(5, 17, 0.0f, 92);
    check_crossentropy(5, 17, 0.1f, 93);
    check_crossentropy(13, 1000, 0.0f, 94);
    check_crossentropy(13, 1025, 0.2f, 95);
    check_crossentropy(40, 50257, 0.1f, 96);
    check_crossentropy(3, 530000, 0.1f, 97); /* more than 256 chunks of 2048: longer chunks */
    /* one row by hand: logits {0, ln 2, ln 3} target 2: p = {1/6, 2/6, 3/6}, loss = ln 2 */
    float x[3] = {0.0f, logf(2.0f), logf(3.0f)}, l, d[3];
    int t = 2;
    ft_cpu_crossentropy_forward_backward(NULL, &l, d, x, &t, 1, 3, 1.0f, 0.0f, FT_IGNORE_INDEX);
    printf("  by hand: loss %.7f (ln 2 = %.7f), dlogits %.6f %.6f %.6f\n", l, log(2.0), d[0], d[1], d[2]);
    assert_true(fabs(l - log(2.0)) < 1e-6 && fabs(d[0] - 1 / 6.0) < 1e-6 && fabs(d[2] + 0.5) < 1e-6);
}

/* ------------------------------------------------------------------ backend tables */
static void test_backend_tables(void **state) {
    (void)state;
    const ft_backend *cpu = ft_backend_cpu(), *ref = ft_backend_ref();
    assert_ptr_equal(cpu->attn_forward, ft_cpu_attn_forward);
    assert_ptr_equal(cpu->crossentropy_forward_backward, ft_cpu_crossentropy_forward_backward);
    assert_ptr_equal(ref->layernorm_backward, ft_ref_layernorm_backward);
    assert_ptr_equal(ft_backend_by_name("ref"), ref);
    printf("  backends: %s, %s; threads %d\n", cpu->name, ref->name, ft_get_threads());
}

/* ------------------------------------------------------------------ timings (FT_OPS_TIMING=1) */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
#define TIME_IT(label, reps, stmt)                                                                   \
    do {                                                                                             \
        stmt; /* warm-up */                                                                          \
        double best = 1e30, tot = 0;                                                                 \
        for (int it_ = 0; it_ < (reps); it_++) {                                                     \
            double t0_ = now_s();                                                                    \
            stmt;                                                                                    \
            double dt_ = now_s() - t0_;                                                              \
            tot += dt_;                                                                              \
            if (dt_ < best) best = dt_;                                                              \
        }                                                                                            \
        printf("  %-52s best %8.3f ms  mean %8.3f ms\n", label, best * 1e3, tot / (reps) * 1e3);     \
    } while (0)

static void test_timing(void **state) {
    (void)state;
    const char *env = getenv("FT_OPS_TIMING");
    if (!env || strcmp(env, "1") != 0) {
        printf("  SKIP: set FT_OPS_TIMING=1 to print CPU kernel timings at GPT-2 124M shapes\n");
        return;
    }
    int B = 4, T = 256, C = 768, NH = 12, HS = 64, V = 50257, N = B * T;
    ft_rng r;
    ft_rng_seed(&r, 7);
    printf("  GPT-2 124M shapes: B=%d T=%d C=%d NH=%d HS=%d V=%d, %d threads\n", B, T, C, NH, HS, V, ft_get_threads());
    float *qkv = randn(&r, (size_t)N * 3 * C, 1, 0), *out = fmem((size_t)N * C), *att = fmem((size_t)B * NH * T * T);
    float *dqkv = fmem((size_t)N * 3 * C), *scratch = fmem((size_t)B * NH * T * T), *dout = randn(&r, (size_t)N * C, 1, 0);
    TIME_IT("attention_forward", 20, ft_cpu_attention_forward(NULL, out, att, qkv, NULL, B, T, NH, NH, HS));
    TIME_IT("attention_backward", 20, ft_cpu_attention_backward(NULL, dqkv, scratch, dout, qkv, att, NULL, B, T, NH, NH, HS));
    float *x = randn(&r, (size_t)N * C, 1, 0), *w = randn(&r, C, 1, 1), *b = randn(&r, C, 1, 0);
    float *mean = fmem(N), *rstd = fmem(N), *dx = fmem((size_t)N * C), *dw = zeros(C), *db = zeros(C);
    TIME_IT("layernorm_forward  [1024 x 768]", 50, ft_cpu_layernorm_forward(NULL, out, mean, rstd, x, w, b, N, C, 1e-5f));
    TIME_IT("layernorm_backward [1024 x 768] (dresid fused)", 50,
            ft_cpu_layernorm_backward(NULL, dx, dw, db, dout, dx, x, w, mean, rstd, N, C));
    float *h = randn(&r, (size_t)N * 4 * C, 1, 0), *gh = fmem((size_t)N * 4 * C), *dh = randn(&r, (size_t)N * 4 * C, 1, 0);
    TIME_IT("gelu_forward  [1024 x 3072]", 50, ft_cpu_gelu_forward(NULL, gh, h, (size_t)N * 4 * C));
    TIME_IT("gelu_backward [1024 x 3072]", 50, ft_cpu_gelu_backward(NULL, gh, dh, h, (size_t)N * 4 * C));
    float *logits = randn(&r, (size_t)N * V, 2, 0), *losses = fmem(N);
    int *tg = imem(N);
    for (int n = 0; n < N; n++) tg[n] = (int)ft_rng_below(&r, V);
    TIME_IT("crossentropy fwd+bwd [1024 x 50257], in place", 5,
            ft_cpu_crossentropy_forward_backward(NULL, losses, logits, logits, tg, N, V, 1.0f / N, 0.0f, -100));
    float *logits2 = randn(&r, (size_t)N * V, 2, 0), *dl = fmem((size_t)N * V);
    TIME_IT("crossentropy fwd+bwd [1024 x 50257], dlogits != logits", 5,
            ft_cpu_crossentropy_forward_backward(NULL, losses, dl, logits2, tg, N, V, 1.0f / N, 0.0f, -100));
    TIME_IT("crossentropy fwd only [1024 x 50257]", 5,
            ft_cpu_crossentropy_forward_backward(NULL, losses, NULL, logits2, tg, N, V, 1.0f / N, 0.0f, -100));
    float *wq = randn(&r, (size_t)3 * C * C, 0.02f, 0), *bq = randn(&r, 3 * C, 1, 0);
    TIME_IT("matmul_forward qkv [1024x768]@[2304x768]^T (context)", 10, ft_cpu_matmul_forward(NULL, qkv, x, wq, bq, N, C, 3 * C));
    mem_free_all();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_tables),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_gelu_residual),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_cached),
        cmocka_unit_test(test_attention_family),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
