/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *ft_fixture(const char *rel) {
    static _Thread_local char buf[4096];
    const char *root = getenv("FT_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : "tests/fixtures", rel);
    return buf;
}

int ft_fixture_present(const char *rel) {
    struct stat st;
    const char *p = ft_fixture(rel);
    if (stat(p, &st) == 0) return 1;
    printf("SKIP: fixture %s is absent\n", p);
    return 0;
}

ft_cmp ft_compare_f32(const float *got, const float *ref, size_t n) {
    ft_cmp c = {0, 0, 0, 0};
    double refmax = 0, d2 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) if (fabs(ref[i]) > refmax) refmax = fabs(ref[i]);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (isnan(got[i]) != isnan(ref[i])) d = INFINITY;
        if (d > c.max_abs) c.max_abs = d;
        double er = d / (fabs(ref[i]) + 1e-6 * refmax + 1e-30);
        if (er > c.max_elem_rel) c.max_elem_rel = er;
        d2 += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        r2 += (double)ref[i] * ref[i];
    }
    c.l2_rel = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    c.max_rel = refmax > 0 ? c.max_abs / refmax : c.max_abs;
    return c;
}

int ft_check_close(const char *name, const float *got, const float *ref, size_t n, double tol) {
    ft_cmp c = ft_compare_f32(got, ref, n);
    int ok = c.max_rel <= tol;
    printf("  %-44s n=%-9zu max_abs=%.3e max_rel=%.3e l2_rel=%.3e %s\n", name, n, c.max_abs, c.max_rel, c.l2_rel, ok ? "OK" : "FAIL");
    return ok;
}

int ft_check_close_l2(const char *name, const float *got, const float *ref, size_t n, double tol) {
    ft_cmp c = ft_compare_f32(got, ref, n);
    int ok = c.l2_rel <= tol;
    printf("  %-44s n=%-9zu max_abs=%.3e max_rel=%.3e l2_rel=%.3e %s\n", name, n, c.max_abs, c.max_rel, c.l2_rel, ok ? "OK" : "FAIL");
    return ok;
}
