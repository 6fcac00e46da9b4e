/* testutil.c — see testutil.h. */
#include "testutil.h"
#include "finetune/safetensors.h"

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

int ft_test_tmpdir_make(char *dir, size_t cap, const char *prefix) {
    snprintf(dir, cap, "/tmp/%s_XXXXXX", prefix);
    return mkdtemp(dir) ? 0 : -1;
}

int ft_test_tmpdir_remove(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *ft_test_path(const char *dir, const char *name) {
    static _Thread_local char buf[4][4400];
    static _Thread_local int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
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

int ft_check_grad(const char *name, const float *got, const float *ref, size_t n, double tol, double torch_l2, double torch_max) {
    ft_cmp c = ft_compare_f32(got, ref, n);
    int strict = c.max_rel <= tol && c.l2_rel <= tol;
    int floor = torch_l2 >= 0 && c.l2_rel <= 2 * torch_l2 && c.max_rel <= 2 * torch_max;
    char tb[64] = "";
    if (torch_l2 >= 0) snprintf(tb, sizeof tb, " torch32 l2=%.2e max=%.2e", torch_l2, torch_max);
    printf("  %-44s n=%-8zu max_abs=%.3e max_rel=%.3e l2_rel=%.3e%s %s\n", name, n, c.max_abs, c.max_rel, c.l2_rel, tb,
           strict ? "OK" : floor ? "OK (within 2x PyTorch-f32)" : "FAIL");
    return strict || floor;
}

void ft_torch_f32_floor(const char *dir, const char *key, double *l2, double *mx) {
    *l2 = *mx = -1;
    char path[4096], k[600];
    snprintf(path, sizeof path, "%s/f32_floor.safetensors", dir);
    ft_safetensors *st;
    if (ft_st_open(&st, path) < 0) return;
    float v;
    int64_t one = 1;
    snprintf(k, sizeof k, "l2.%s", key);
    if (ft_st_find(st, k) && ft_st_read_f32(st, k, &one, 1, &v) == 0) *l2 = v;
    snprintf(k, sizeof k, "max.%s", key);
    if (ft_st_find(st, k) && ft_st_read_f32(st, k, &one, 1, &v) == 0) *mx = v;
    ft_st_close(st);
}
