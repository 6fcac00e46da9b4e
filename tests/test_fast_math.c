/* test_fast_math.c — the vectorisable exp / erf of src/ops/cpu/fast_math.h against double precision
 * on dense grids: max relative error of exp, max absolute error of erf, and GELU (exact, erf form)
 * built on them against the double-precision GELU. */
#include "testutil.h"
#include "../src/ops/cpu/fast_math.h"

#include <math.h>
#include <stdio.h>

static void test_exp(void **s) {
    (void)s;
    double worst = 0, at = 0;
    for (double x = -87.0; x <= 88.0; x += 1.0 / 4099) {
        float xf = (float)x;
        double ref = exp((double)xf), got = ft_expf_fast(xf);
        double rel = fabs(got - ref) / ref;
        if (rel > worst) { worst = rel; at = xf; }
    }
    printf("  expf_fast on [-87, 88]: max relative error %.3e (at %.4f)\n", worst, at);
    assert_true(worst <= 2e-7);
}

static void test_erf_and_gelu(void **s) {
    (void)s;
    double worst = 0, at = 0, gworst = 0, gat = 0;
    for (double x = -12.0; x <= 12.0; x += 1.0 / 8191) {
        float xf = (float)x;
        double ref = erf((double)xf), got = ft_erff_fast(xf);
        if (fabs(got - ref) > worst) { worst = fabs(got - ref); at = xf; }
        double g = 0.5 * xf * (1.0 + erf(xf / sqrt(2.0)));
        double gg = 0.5f * xf * (1.0f + ft_erff_fast(xf * 0.70710678118654752f));
        double scale = fabs(xf) > 1 ? fabs(xf) : 1.0; /* GELU errors relative to max(|x|, 1) */
        if (fabs(gg - g) / scale > gworst) { gworst = fabs(gg - g) / scale; gat = xf; }
    }
    printf("  erff_fast on [-12, 12]: max absolute error %.3e (at %.4f); GELU error / max(|x|, 1): %.3e (at %.4f)\n", worst, at, gworst, gat);
    assert_true(worst <= 2e-7);
    assert_true(gworst <= 3e-7);
    assert_true(ft_erff_fast(0.0f) == 0.0f || fabs(ft_erff_fast(0.0f)) < 1e-7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_erf_and_gelu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
