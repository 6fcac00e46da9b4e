/* test_bf16.c — bf16 weights (bf16.h): rounding, the matmul kernels against their scalar references, and
 * against f32 within bf16's rounding bound.
 *
 * Criteria (per output element, s = sum_c |x_c| |w_c| in double):
 *  - kernel vs its _ref (same products, f32 sums in another order): |got - ref| <= C * 2^-23 * s + 1e-30;
 *  - F32FMA / TILED vs the f32 weight: |got - f32| <= 2^-8 * s (each weight rounded by <= 2^-9 relative);
 *  - DPBF16 vs the f32 weight: |got - f32| <= 2^-7 * s (activations rounded too).
 * Shapes cover tails (C not a multiple of 16 / 32, OC not a multiple of 4), N = 1 (decoding), small N
 * (the DIRECT path's 4 x 4 blocks and their remainders) and N > FT_BF16_DIRECT_MAX_N (TILED, with a workspace
 * smaller than W so that several row blocks run). Outputs are pre-filled with NaN so that a kernel that does
 * not assign fails. Every instruction set this CPU has (scalar, AVX-512) and both dot products run. */
#include "testutil.h"

#include "finetune/bf16.h"
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "finetune/tensor.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static float *randn(ft_rng *r, size_t n, float sd) {
    float *x = malloc(n * sizeof(float) + 4);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}
static float *nans(size_t n) {
    float *x = malloc(n * sizeof(float) + 4);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

static void test_rounding(void **state) {
    (void)state;
    /* round-to-nearest-even on the 16 dropped bits, as vcvtneps2bf16 */
    float v[] = {1.0f, 1.00390625f /* 1 + 2^-8: a tie, to even (1.0) */, 1.01171875f /* 1 + 3*2^-8: tie, up */, -2.5f, 3.14159265f, 0.0f, -0.0f};
    uint16_t want[] = {0x3F80, 0x3F80, 0x3F82, 0xC020, 0x4049, 0x0000, 0x8000};
    uint16_t buf[7];
    ft_bf16_tensor t;
    assert_int_equal(ft_bf16_view(&t, 1, 7, buf), FT_OK);
    ft_bf16_from_f32(&t, v);
    for (int i = 0; i < 7; i++) assert_int_equal(buf[i], want[i]);
    float back[7];
    ft_bf16_rows_to_f32(back, &t, 0, 1);
    assert_true(back[0] == 1.0f && back[3] == -2.5f && back[4] == 3.140625f);
    assert_int_equal(ft_bf16_nbytes(3, 5), 30);
}

/* max over outputs of |got - ref| / bound, bound = k * s + 1e-30 */
static double worst(const float *got, const float *ref, const double *s, size_t n, double k) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (isnan(got[i])) return INFINITY;
        double r = d / (k * s[i] + 1e-30);
        if (r > w) w = r;
    }
    return w;
}

typedef struct shape { int N, OC, C; size_t wsn; } shape;

static void check_shape(const shape *sh, ft_rng *rng) {
    int N = sh->N, OC = sh->OC, C = sh->C;
    float *x = randn(rng, (size_t)N * C, 1.0f), *wf = randn(rng, (size_t)OC * C, 0.05f), *bias = randn(rng, (size_t)OC, 0.1f);
    uint16_t *blob = malloc(ft_bf16_nbytes(OC, C));
    ft_bf16_tensor w;
    assert_int_equal(ft_bf16_view(&w, OC, C, blob), FT_OK);
    ft_bf16_from_f32(&w, wf);
    size_t wsn = sh->wsn ? sh->wsn : ft_bf16_workspace_floats(OC, C);
    float *ws = malloc(wsn * sizeof(float));
    float *ref = nans((size_t)N * OC), *ref_bact = nans((size_t)N * OC), *f32 = nans((size_t)N * OC), *got = nans((size_t)N * OC);
    double *s = malloc(sizeof(double) * (size_t)N * OC);
    ft_bf16_matmul_forward_ref(ref, x, &w, bias, N);
    ft_bf16_matmul_forward_bf16act_ref(ref_bact, x, &w, bias, N);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double a = bias[o], b = fabs(bias[o]);
            for (int c = 0; c < C; c++) {
                a += (double)x[(size_t)n * C + c] * wf[(size_t)o * C + c];
                b += fabs((double)x[(size_t)n * C + c] * wf[(size_t)o * C + c]);
            }
            f32[(size_t)n * OC + o] = (float)a;
            s[(size_t)n * OC + o] = b;
        }
    ft_quant_isa isas[] = {FT_QUANT_ISA_SCALAR, FT_QUANT_ISA_AVX512};
    for (int ii = 0; ii < 2; ii++) {
        if (ft_quant_isa_set(isas[ii]) != FT_OK) continue;
        for (int d = 0; d < 2; d++) {
            if (ft_bf16_set_dot((ft_bf16_dot)d) != FT_OK) continue;
            int bact = d == FT_BF16_DOT_DPBF16 && isas[ii] == FT_QUANT_ISA_AVX512 && N <= FT_BF16_DIRECT_MAX_N && wsn * 2 >= (size_t)N * C;
            for (size_t i = 0; i < (size_t)N * OC; i++) got[i] = NAN;
            assert_int_equal(ft_bf16_matmul_forward(got, x, &w, bias, N, ws, wsn), FT_OK);
            double e_ref = worst(got, bact ? ref_bact : ref, s, (size_t)N * OC, C * 0x1p-23);
            double e_f32 = worst(got, f32, s, (size_t)N * OC, bact ? 0x1p-7 : 0x1p-8);
            printf("  N %3d OC %4d C %4d ws %7zu  %-6s %-6s  vs ref %.3f of bound, vs f32 %.3f of bound\n", N, OC, C, wsn,
                   ft_quant_isa_name(isas[ii]), ft_bf16_dot_name((ft_bf16_dot)d), e_ref, e_f32);
            assert_true(e_ref <= 1.0);
            assert_true(e_f32 <= 1.0);
        }
    }
    /* backward: dinp = dout W */
    float *dout = randn(rng, (size_t)N * OC, 1.0f), *dref = nans((size_t)N * C), *dgot = nans((size_t)N * C);
    double *sd = malloc(sizeof(double) * (size_t)N * C);
    ft_bf16_matmul_backward_ref(dref, dout, &w, N);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double b = 0;
            for (int o = 0; o < OC; o++) b += fabs((double)dout[(size_t)n * OC + o] * ft_bf16_to_f32(blob[(size_t)o * C + c]));
            sd[(size_t)n * C + c] = b;
        }
    assert_int_equal(ft_bf16_matmul_backward(dgot, dout, &w, N, ws, wsn), FT_OK);
    assert_true(worst(dgot, dref, sd, (size_t)N * C, OC * 0x1p-23) <= 1.0);
    ft_quant_isa_set(ft_quant_isa_best());
    ft_bf16_set_dot(FT_BF16_DOT_F32FMA);
    free(x); free(wf); free(bias); free(blob); free(ws); free(ref); free(ref_bact); free(f32); free(got); free(s);
    free(dout); free(dref); free(dgot); free(sd);
}

static void test_matmul_shapes(void **state) {
    (void)state;
    ft_rng rng;
    ft_rng_seed(&rng, 16);
    shape shapes[] = {
        {1, 1, 1, 0}, {1, 7, 5, 0}, {1, 33, 17, 0}, {1, 64, 768, 0}, {1, 129, 100, 0}, {2, 13, 40, 0}, {3, 9, 33, 0},
        {5, 21, 64, 0}, {7, 12, 31, 0}, {16, 37, 65, 0}, {17, 21, 33, 0}, {40, 300, 96, 96 * 64 + 5}, {33, 50, 47, 47},
        {FT_BF16_DIRECT_MAX_N + 1, 301, 97, 97 * 64 + 5}, {FT_BF16_DIRECT_MAX_N + 7, 50, 47, 47}, {80, 1030, 33, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_shape(&shapes[i], &rng);
}

/* DIRECT sums each output in one thread in a fixed order: the same bits on 1 and on 2 threads */
static void test_thread_independent(void **state) {
    (void)state;
    ft_rng rng;
    ft_rng_seed(&rng, 3);
    int N = 1, OC = 1000, C = 300;
    float *x = randn(&rng, (size_t)N * C, 1.0f), *wf = randn(&rng, (size_t)OC * C, 0.05f);
    uint16_t *blob = malloc(ft_bf16_nbytes(OC, C));
    ft_bf16_tensor w;
    assert_int_equal(ft_bf16_view(&w, OC, C, blob), FT_OK);
    ft_bf16_from_f32(&w, wf);
    size_t wsn = ft_bf16_workspace_floats(OC, C);
    float *ws = malloc(wsn * sizeof(float)), *a = nans((size_t)OC), *b = nans((size_t)OC);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(ft_bf16_matmul_forward(a, x, &w, NULL, N, ws, wsn), FT_OK);
    omp_set_num_threads(2);
    assert_int_equal(ft_bf16_matmul_forward(b, x, &w, NULL, N, ws, wsn), FT_OK);
    omp_set_num_threads(nt);
    assert_memory_equal(a, b, sizeof(float) * (size_t)OC);
    free(x); free(wf); free(blob); free(ws); free(a); free(b);
}

static void test_errors(void **state) {
    (void)state;
    ft_bf16_tensor w;
    uint16_t buf[4];
    assert_int_equal(ft_bf16_view(&w, 0, 4, buf), FT_ERR_INVALID);
    assert_int_equal(ft_bf16_view(&w, 2, 2, NULL), FT_ERR_INVALID);
    assert_int_equal(ft_bf16_view(&w, 2, 2, buf), FT_OK);
    float x[2] = {1, 2}, out[2];
    assert_int_equal(ft_bf16_matmul_forward(out, NULL, &w, NULL, 1, NULL, 0), FT_ERR_INVALID);
    assert_int_equal(ft_bf16_matmul_forward(out, x, &w, NULL, -1, NULL, 0), FT_ERR_INVALID);
    assert_int_equal(ft_bf16_set_dot((ft_bf16_dot)7), FT_ERR_INVALID);
    /* the CPU check answers either way, with a message naming the way back when it fails */
    int rc = ft_bf16_check_cpu();
    if (rc != FT_OK) assert_non_null(strstr(ft_last_error(), "--precision f32"));
    printf("  this CPU: bf16 SIMD %s, AVX512-BF16 %s\n", rc == FT_OK ? "yes" : "no", ft_bf16_cpu_has_dpbf16() ? "yes" : "no");
}

/* FT_BF16_TIMING=1: best-of-reps times of the batch-1 / small-batch products on GPT-2 124M's shapes, f32 (OpenBLAS
 * sgemv / sgemm / its small-N kernel: ft_cpu_matmul_forward, what the f32 model runs) against both bf16 dot products and the TILED path; bytes of weight read per second.
 * Not a check (the machine is shared): numbers for BENCHMARKS.md. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_timing(void **state) {
    (void)state;
    if (!getenv("FT_BF16_TIMING") || ft_bf16_check_cpu() != FT_OK) { printf("  (FT_BF16_TIMING=1 to time)\n"); return; }
    struct { int OC, C; const char *name; } sh[] = {{2304, 768, "qkv"}, {768, 768, "attn.c_proj"}, {3072, 768, "mlp.c_fc"},
                                                  {768, 3072, "mlp.c_proj"}, {50257, 768, "lm_head"}};
    int Ns[] = {1, 4, 16, 64, 65, 256};
    ft_rng rng;
    ft_rng_seed(&rng, 9);
    printf("  threads %d; best of 20 (N=1) / 5 runs; GB/s = weight bytes read per second\n", omp_get_max_threads());
    for (size_t k = 0; k < sizeof sh / sizeof *sh; k++) {
        int OC = sh[k].OC, C = sh[k].C;
        float *wf = randn(&rng, (size_t)OC * C, 0.05f), *x = randn(&rng, (size_t)256 * C, 1.0f), *out = nans((size_t)256 * OC);
        uint16_t *blob = malloc(ft_bf16_nbytes(OC, C));
        ft_bf16_tensor w;
        ft_bf16_view(&w, OC, C, blob);
        ft_bf16_from_f32(&w, wf);
        size_t wsn = ft_bf16_workspace_floats(OC, C);
        float *ws = malloc(wsn * sizeof(float));
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
            int N = Ns[ni], reps = N == 1 ? 20 : 5;
            double best[4] = {1e9, 1e9, 1e9, 1e9};
            for (int r = 0; r < reps; r++) {
                double t0 = now_s();
                ft_cpu_matmul_forward(NULL, out, x, wf, NULL, N, C, OC);   /* the f32 model's matmul (sgemv at N = 1) */
                double t1 = now_s();
                if (t1 - t0 < best[0]) best[0] = t1 - t0;
                for (int d = 0; d < 2; d++) {
                    if (ft_bf16_set_dot((ft_bf16_dot)d) != FT_OK) continue;
                    t0 = now_s();
                    /* DIRECT (ws only for DPBF16's activations when N is above the DIRECT limit: forced direct) */
                    if (N <= FT_BF16_DIRECT_MAX_N) ft_bf16_matmul_forward(out, x, &w, NULL, N, ws, wsn);
                    else ft_bf16_matmul_forward(out, x, &w, NULL, N, NULL, 0);
                    t1 = now_s();
                    if (t1 - t0 < best[1 + d]) best[1 + d] = t1 - t0;
                }
                ft_bf16_set_dot(FT_BF16_DOT_F32FMA);
                t0 = now_s();
                if (N > FT_BF16_DIRECT_MAX_N) ft_bf16_matmul_forward(out, x, &w, NULL, N, ws, wsn);
                t1 = now_s();
                if (N > FT_BF16_DIRECT_MAX_N && t1 - t0 < best[3]) best[3] = t1 - t0;
            }
            double f32b = 4.0 * OC * C, b16 = 2.0 * OC * C;
            printf("  %-11s N %3d: f32 %7.3f ms (%5.1f GB/s) | bf16 f32fma %7.3f ms (%5.1f GB/s) | dpbf16 %7.3f ms (%5.1f GB/s)",
                   sh[k].name, N, best[0] * 1e3, f32b / best[0] / 1e9, best[1] * 1e3, b16 / best[1] / 1e9, best[2] * 1e3, b16 / best[2] / 1e9);
            if (N > FT_BF16_DIRECT_MAX_N) printf(" | tiled %7.3f ms", best[3] * 1e3);
            printf("\n");
        }
        free(wf); free(x); free(out); free(blob); free(ws);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_thread_independent),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
