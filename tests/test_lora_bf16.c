/* test_lora_bf16.c — the LoRA adapter's backward under the bf16 tables (adapter.c, ft__lora_module_backward):
 *  - with a contiguous output gradient (ldo == rows) the long-sum products (dxa = s dout B, dB += s dout^T xa,
 *    dA += dxa^T x) run in the table's bf16 linear backward: "cpu-bf16" and "ref-bf16" give the same dA and
 *    dB bits (and the same forward xa), dinp within f32 rounding (its K = r product stays f32 in both); all of
 *    them within bf16's tolerance of the f32 table's gradients, and dB measurably not f32's (it does round);
 *    with LoRA dropout too, and with gradients accumulated onto non-zero values;
 *  - with a strided one (a slice of a fused matrix, ldo > rows) the bf16 table keeps the f32 products: from
 *    the same xa, the gradients equal the f32 table's bit for bit. */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/rng.h"
#include "models/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *randv(ft_rng *r, size_t n, float sd) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}

static float *dup(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

typedef struct grads { float *dA, *dB, *dinp, *out, *xa; } grads;

/* one forward + backward of a module W [rows, in] += s B A over N rows, its output columns [0, rows) of a
 * [N, ldo] output; gradients accumulate onto the given starting values */
static grads run(const ft_backend *be, int N, int in, int r, int rows, int ldo, float s, float p, const float *x, const float *A,
                 const float *B, const float *dout, const float *dA0, const float *dB0, const float *dinp0, const float *xa_in) {
    grads g;
    g.dA = dup(dA0, (size_t)r * in);
    g.dB = dup(dB0, (size_t)rows * r);
    g.dinp = dup(dinp0, (size_t)N * in);
    g.out = calloc((size_t)N * ldo, sizeof(float));
    g.xa = malloc(sizeof(float) * (size_t)N * r);
    float *xd = malloc(sizeof(float) * (size_t)N * in), *dxa = malloc(sizeof(float) * (size_t)N * r), *dx = malloc(sizeof(float) * (size_t)N * in);
    const float *xf = x;
    if (p > 0) { be->dropout_forward(be->ctx, xd, x, (size_t)N * in, p, 77); xf = xd; }
    ft__lora_module_forward(be, g.out, ldo, xf, A, B, g.xa, N, in, r, rows, s);
    if (xa_in) memcpy(g.xa, xa_in, sizeof(float) * (size_t)N * r); /* another table's forward product */
    ft__lora_module_backward(be, g.dinp, g.dA, g.dB, dout, ldo, x, A, B, g.xa, N, in, r, rows, s, p, 77, xd, dxa, dx);
    free(xd); free(dxa); free(dx);
    return g;
}

static void grads_free(grads *g) { free(g->dA); free(g->dB); free(g->dinp); free(g->out); free(g->xa); }

/* relative L2 distance */
static double rel(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) { d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); m += (double)b[i] * b[i]; }
    return sqrt(d / (m > 0 ? m : 1));
}

static void check(int ldo_extra, float p) {
    const int N = 40, in = 96, r = 8, rows = 144, ldo = rows + ldo_extra;
    const float s = 2.5f; /* not a power of two: scaling is not exact in bf16 */
    ft_rng rg;
    ft_rng_seed(&rg, 31 + (uint64_t)ldo_extra);
    float *x = randv(&rg, (size_t)N * in, 1), *A = randv(&rg, (size_t)r * in, 0.1f), *B = randv(&rg, (size_t)rows * r, 0.1f);
    float *dout = randv(&rg, (size_t)N * ldo, 1);
    float *dA0 = randv(&rg, (size_t)r * in, 0.01f), *dB0 = randv(&rg, (size_t)rows * r, 0.01f), *dinp0 = randv(&rg, (size_t)N * in, 0.01f);
    const ft_backend *cb = ft_backend_cpu_bf16(), *rb = ft_backend_by_name("ref-bf16"), *cf = ft_backend_cpu();
    grads c = run(cb, N, in, r, rows, ldo, s, p, x, A, B, dout, dA0, dB0, dinp0, NULL);
    /* the f32 table; strided: its backward from the bf16 forward's xa (x A^T is bf16 in the bf16 table) */
    grads f = run(cf, N, in, r, rows, ldo, s, p, x, A, B, dout, dA0, dB0, dinp0, ldo_extra ? c.xa : NULL);
    if (ldo_extra == 0) {
        grads rf = run(rb, N, in, r, rows, ldo, s, p, x, A, B, dout, dA0, dB0, dinp0, NULL);
        assert_memory_equal(c.xa, rf.xa, sizeof(float) * N * r);
        assert_memory_equal(c.dA, rf.dA, sizeof(float) * r * in);
        assert_memory_equal(c.dB, rf.dB, sizeof(float) * rows * r);
        assert_true(rel(c.dinp, rf.dinp, (size_t)N * in) < 1e-6);
        assert_true(rel(c.out, rf.out, (size_t)N * ldo) < 1e-6);
        double eA = rel(c.dA, f.dA, (size_t)r * in), eB = rel(c.dB, f.dB, (size_t)rows * r), eI = rel(c.dinp, f.dinp, (size_t)N * in);
        printf("  p %.1f: cpu-bf16 = ref-bf16 (dA, dB bits); vs f32: dA %.2e, dB %.2e, dinp %.2e (relative L2)\n", p, eA, eB, eI);
        assert_true(eA < 1e-2 && eB < 1e-2 && eI < 1e-2);
        assert_true(eB > 1e-6); /* it did round */
        grads_free(&rf);
    } else {
        assert_memory_equal(c.dA, f.dA, sizeof(float) * r * in);
        assert_memory_equal(c.dB, f.dB, sizeof(float) * rows * r);
        assert_memory_equal(c.dinp, f.dinp, sizeof(float) * N * in);
        printf("  p %.1f, ldo %d > rows %d: the f32 products, bit for bit\n", p, ldo, rows);
    }
    grads_free(&c);
    grads_free(&f);
    free(x); free(A); free(B); free(dout); free(dA0); free(dB0); free(dinp0);
}

static void test_contiguous(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    check(0, 0.0f);
    check(0, 0.1f);
}

static void test_strided(void **state) {
    (void)state;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    check(48, 0.0f);
    check(48, 0.1f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contiguous),
        cmocka_unit_test(test_strided),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
