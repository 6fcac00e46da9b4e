/* test_ops_step.c — the f32 kernels of the bf16 training step that issue 16's `fuse` work rewrote, against
 * their scalar references, at awkward sizes and at one and two threads:
 *   - bias_backward and the layernorm / rmsnorm parameter gradients (row-streaming column strips): the
 *     bias gradient has the reference's bits exactly, all three the same bits for 1 and 2 threads;
 * Max abs / rel errors are printed per tensor. */
#include "testutil.h"

#include "finetune/ops.h"
#include "finetune/rng.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias_backward),
        cmocka_unit_test(test_norm_param_grads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
