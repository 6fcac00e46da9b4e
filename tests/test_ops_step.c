/* test_ops_step.c — the f32 kernels of the bf16 training step (issue 16's `fuse` work), against their
 * scalar references, at awkward sizes and at one and two threads:
 *   - bias_backward and the layernorm / rmsnorm parameter gradients (column blocks summing their rows in
 *     order): the bias gradient has the reference's bits exactly, all three the same bits for 1 and 2
 *     threads;
 *   - ft_vexp16 (src/ops/cpu/vmath_avx512.h), the exponential of the GELU, softmax and cross-entropy
 *     kernels, against double-precision exp over its range, and at -inf, NaN and beyond the clamps.
 * The kernels built on it (GELU, attention's softmax, cross-entropy) are checked against their references
 * in test_ops.c and test_ops_grad.c. Max abs / rel errors are printed per tensor. */
#include "testutil.h"

#include "finetune/ops.h"
#include "finetune/rng.h"
#include "ops/cpu/vmath.h"
#include "ops/cpu/vmath_avx512.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5 /* max |cpu - ref| / max |ref| per tensor (ft_check_close) */

static float *randn(ft_rng *r, size_t n, float sd, float mu) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = mu + sd * ft_rng_normal(r);
    return x;
}
static float *dup(const float *src, size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    memcpy(x, src, n * sizeof(float));
    return x;
}

/* ---- bias_backward: dbias += column sums of dout, bits of the reference ---- */
static void bias_case(int N, int OC) {
    ft_rng r;
    ft_rng_seed(&r, (unsigned long long)N * 7919 + OC);
    float *dout = randn(&r, (size_t)N * OC, 1.0f, 0.1f), *g0 = randn(&r, (size_t)OC, 1.0f, 0.0f);
    float *ref = dup(g0, OC), *one = dup(g0, OC), *two = dup(g0, OC);
    ft_ref_bias_backward(NULL, ref, dout, N, OC);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    ft_cpu_bias_backward(NULL, one, dout, N, OC);
    omp_set_num_threads(2);
    ft_cpu_bias_backward(NULL, two, dout, N, OC);
    omp_set_num_threads(nt);
    printf("bias_backward N=%d OC=%d\n", N, OC);
    assert_true(ft_check_close("bias_backward 1 thread", one, ref, (size_t)OC, 0.0));
    assert_int_equal(memcmp(one, ref, (size_t)OC * sizeof(float)), 0);
    assert_int_equal(memcmp(two, ref, (size_t)OC * sizeof(float)), 0);
    free(dout); free(g0); free(ref); free(one); free(two);
}

static void test_bias_backward(void **state) {
    (void)state;
    static const int shapes[][2] = {{1, 1}, {3, 17}, {64, 40}, {33, 769}, {300, 2304}, {129, 5000}, {1024, 3072}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) bias_case(shapes[i][0], shapes[i][1]);
}

/* ---- layernorm / rmsnorm parameter gradients: within TOL of the reference, same bits at 1 and 2 threads ---- */
static void norm_case(int N, int C) {
    ft_rng r;
    ft_rng_seed(&r, (unsigned long long)N * 31 + C);
    size_t NC = (size_t)N * C;
    float *x = randn(&r, NC, 1.0f, 0.3f), *w = randn(&r, (size_t)C, 0.2f, 1.0f), *b = randn(&r, (size_t)C, 0.2f, 0.0f);
    float *dout = randn(&r, NC, 1.0f, 0.0f), *out = malloc(NC * sizeof(float)), *mean = malloc((size_t)N * sizeof(float));
    float *rstd = malloc((size_t)N * sizeof(float));
    float *g0w = randn(&r, (size_t)C, 1.0f, 0.0f), *g0b = randn(&r, (size_t)C, 1.0f, 0.0f);
    assert_true(out && mean && rstd);
    printf("layernorm / rmsnorm parameter gradients N=%d C=%d\n", N, C);
    ft_ref_layernorm_forward(NULL, out, mean, rstd, x, w, b, N, C, 1e-5f);
    float *rw = dup(g0w, C), *rb = dup(g0b, C), *w1 = dup(g0w, C), *b1 = dup(g0b, C), *w2 = dup(g0w, C), *b2 = dup(g0b, C);
    ft_ref_layernorm_backward(NULL, NULL, rw, rb, dout, NULL, x, w, mean, rstd, N, C);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    ft_cpu_layernorm_backward(NULL, NULL, w1, b1, dout, NULL, x, w, mean, rstd, N, C);
    omp_set_num_threads(2);
    ft_cpu_layernorm_backward(NULL, NULL, w2, b2, dout, NULL, x, w, mean, rstd, N, C);
    omp_set_num_threads(nt);
    assert_true(ft_check_close("layernorm dw", w1, rw, (size_t)C, TOL));
    assert_true(ft_check_close("layernorm db", b1, rb, (size_t)C, TOL));
    assert_int_equal(memcmp(w1, w2, (size_t)C * sizeof(float)), 0);
    assert_int_equal(memcmp(b1, b2, (size_t)C * sizeof(float)), 0);

    ft_ref_rmsnorm_forward(NULL, out, rstd, x, w, N, C, 1e-5f);
    memcpy(rw, g0w, C * sizeof(float)); memcpy(w1, g0w, C * sizeof(float)); memcpy(w2, g0w, C * sizeof(float));
    ft_ref_rmsnorm_backward(NULL, NULL, rw, dout, NULL, x, w, rstd, N, C);
    omp_set_num_threads(1);
    ft_cpu_rmsnorm_backward(NULL, NULL, w1, dout, NULL, x, w, rstd, N, C);
    omp_set_num_threads(2);
    ft_cpu_rmsnorm_backward(NULL, NULL, w2, dout, NULL, x, w, rstd, N, C);
    omp_set_num_threads(nt);
    assert_true(ft_check_close("rmsnorm dw", w1, rw, (size_t)C, TOL));
    assert_int_equal(memcmp(w1, w2, (size_t)C * sizeof(float)), 0);
    free(x); free(w); free(b); free(dout); free(out); free(mean); free(rstd); free(g0w); free(g0b);
    free(rw); free(rb); free(w1); free(b1); free(w2); free(b2);
}

static void test_norm_param_grads(void **state) {
    (void)state;
    static const int shapes[][2] = {{1, 1}, {5, 33}, {64, 768}, {300, 1000}, {77, 2500}, {1024, 768}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) norm_case(shapes[i][0], shapes[i][1]);
}

/* ---- ft_vexp16: relative error against exp in double, special values ---- */
static void test_vexp16(void **state) {
    (void)state;
#ifdef FT_VMATH_AVX512
    double worst = 0.0, worst_x = 0.0;
    float xs[16], ys[16];
    for (int i = 0; i <= 2000000; i += 16) {
        for (int l = 0; l < 16; l++) xs[l] = -87.3f + (87.3f + 88.3f) * (float)(i + l) / 2000000.0f;
        _mm512_storeu_ps(ys, ft_vexp16(_mm512_loadu_ps(xs)));
        for (int l = 0; l < 16 && i + l <= 2000000; l++) {
            double e = exp((double)xs[l]), rel = fabs((double)ys[l] - e) / e;
            if (rel > worst) { worst = rel; worst_x = xs[l]; }
            /* and the scalar ft_vexpf of the C loops, the same polynomial: within 2 ulp of each other */
            float sc = ft_vexpf(xs[l]);
            assert_true(fabs((double)sc - ys[l]) <= 2.5e-7 * e);
        }
    }
    printf("ft_vexp16 on [-87.3, 88.3]: max rel error %.3e (at x = %g)\n", worst, worst_x);
    assert_true(worst < 3e-7);
    float sp[16] = {-INFINITY, -1000.0f, -87.4f, -88.0f, NAN, INFINITY, 1000.0f, 88.5f, 0.0f, -0.0f, 1.0f, -1.0f, 10.0f, -10.0f, 50.0f, -50.0f};
    _mm512_storeu_ps(ys, ft_vexp16(_mm512_loadu_ps(sp)));
    for (int l = 0; l < 4; l++) assert_true(ys[l] == 0.0f);                          /* below the range: exactly 0 */
    assert_true(isnan(ys[4]));                                                       /* NaN stays NaN */
    for (int l = 5; l < 8; l++) assert_true(isfinite(ys[l]) && ys[l] > 2e38f);       /* above: large, finite */
    assert_true(ys[8] == 1.0f && ys[9] == 1.0f);
    for (int l = 10; l < 16; l++) assert_true(fabs(ys[l] - exp((double)sp[l])) <= 3e-7 * exp((double)sp[l]));
#else
    printf("ft_vexp16: not built (no AVX-512F target)\n");
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias_backward),
        cmocka_unit_test(test_norm_param_grads),
        cmocka_unit_test(test_vexp16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
