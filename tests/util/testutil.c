/* testutil.c — see testutil.h. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

_Static_assert(sizeof(float) == sizeof(int32_t) && sizeof(int) == sizeof(int32_t), "4-byte elements");

/* tensor `name` of st read whole as F32 (i32 = 0) or I32 (i32 = 1) into a malloc'd buffer; NULL when absent */
static void *read_whole(const ft_safetensors *st, const char *name, int i32, const ft_st_entry **entry, size_t *n) {
    const ft_st_entry *e = ft_st_find(st, name);
    if (!e) return NULL;
    size_t cnt = 1;
    for (int i = 0; i < e->ndim; i++) cnt *= (size_t)e->shape[i];
    void *buf = malloc(sizeof(float) * (cnt ? cnt : 1));
    assert_non_null(buf);
    int rc = i32 ? ft_st_read_i32(st, name, e->shape, e->ndim, buf) : ft_st_read_f32(st, name, e->shape, e->ndim, buf);
    assert_int_equal(rc, 0);
    if (entry) *entry = e;
    if (n) *n = cnt;
    return buf;
}

float *ft_test_read_f32(const ft_safetensors *st, const char *name, size_t *n) {
    return read_whole(st, name, 0, NULL, n);
}

int *ft_test_read_i32(const ft_safetensors *st, const char *name, int *rows, int *cols) {
    const ft_st_entry *e;
    int *v = read_whole(st, name, 1, &e, NULL);
    if (!v) return NULL;
    *rows = e->ndim > 0 ? (int)e->shape[0] : 1;
    *cols = e->ndim > 1 ? (int)e->shape[1] : 1;
    return v;
}

int ft_test_check_encoder_grads(ft_encoder_model *m, const ft_safetensors *st, double tol) {
    int fails = 0, compared = 0, nref = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        char key[160];
        size_t n = 0;
        snprintf(key, sizeof key, "grad.%s", p->name);
        float *ref = ft_test_read_f32(st, key, &n);
        if (!ref) { printf("  missing reference gradient %s\n", key); fails++; continue; }
        assert_int_equal(n, (size_t)ft_tensor_numel(&p->t));
        ft_cmp cmp = ft_compare_f32(p->grad, ref, n);
        double ref_max = cmp.max_rel > 0 ? cmp.max_abs / cmp.max_rel : 0;
        if (ref_max < 1e-9) {
            int ok = cmp.max_abs <= 1e-6;
            printf("  %-44s n=%-9zu max_abs=%.3e (reference is zero: %.1e) %s\n", p->name, n, cmp.max_abs, ref_max, ok ? "OK" : "FAIL");
            fails += !ok;
        } else {
            fails += !ft_check_close(p->name, p->grad, ref, n, tol);
        }
        compared++;
        free(ref);
    }
    for (int i = 0; i < ft_st_count(st); i++) nref += !strncmp(ft_st_at(st, i)->name, "grad.", 5);
    printf("  %d of %d gradients compared, %d failures\n", compared, nref, fails);
    return fails + (compared != nref);
}

int ft_test_finetune(char **out, const char *fmt, ...) {
    char args[4096], cmd[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *b = getenv("BUILD");
    snprintf(cmd, sizeof cmd, "%s/finetune %s 2>&1", b && *b ? b : "build", args);
    int rc = ft_test_run(cmd, out);
    if (rc != 0) printf("command: %s\nexit %d, output:\n%s\n", cmd, rc, *out);
    return rc;
}

int ft_test_files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (ft_file_read_all(a, &x, &nx)) return 0;
    if (ft_file_read_all(b, &y, &ny)) { free(x); return 0; }
    int eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return eq;
}

double ft_test_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ft_test_children_cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_CHILDREN, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

int ft_test_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[len] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int ft_test_make_lora_dir(const char *model_dir, const char *out_dir, const char *targets, int r, uint64_t seed, float scale) {
    ft_model *m = NULL;
    int rc = ft_model_load(&m, model_dir, ft_backend_ref());
    if (rc < 0) return rc;
    ft_lora_config lc = ft_lora_default_config();
    lc.r = r;
    lc.alpha = 2.0f * (float)r;
    snprintf(lc.targets, sizeof lc.targets, "%s", targets);
    rc = ft_model_add_lora(m, &lc, seed);
    /* B != 0 (PEFT starts it at 0, the identity): a deterministic pattern in [-scale, scale] */
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; rc == FT_OK && i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (strncmp(p->name, "lora.", 5)) continue;
        float *w = p->t.data;
        for (int64_t e = 0; e < ft_tensor_numel(&p->t); e++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            w[e] = scale * ((float)(x >> 40) / 8388608.0f - 1.0f);
        }
    }
    if (rc == FT_OK) rc = ft_model_save_adapter(m, out_dir, model_dir);
    ft_model_free(m);
    return rc;
}

void ft_test_randomize_encoder_lora(ft_encoder_model *m, unsigned seed, int head) {
    unsigned x = seed * 2654435761u + 7;
    int first = ft_encoder_num_params(m) - 2 * ft_encoder_lora_count(m);   /* adapters are appended */
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        int lora = i >= first;
        if (!lora && !(head && p->trainable)) continue;
        float *w = p->t.data;
        for (int64_t k = 0; k < ft_tensor_numel(&p->t); k++) {
            x = x * 1103515245u + 12345u;
            float v = (float)(x >> 8) / 8388608.0f - 1.0f;
            if (lora) w[k] = 0.3f * v;
            else w[k] += 0.5f * v;
        }
    }
}

void ft_test_hpo_load(const char *db_path, const char *name, ft_hpo_spec **s, ft_hpo_trial **t, int *n) {
    ft_hpo_db *db;
    assert_int_equal(ft_hpo_db_open(db_path, &db), FT_OK);
    int rc = ft_hpo_sweep_load(db, name, s, t, n);
    if (rc < 0) print_error("load %s: %s\n", name, ft_last_error());
    assert_int_equal(rc, FT_OK);
    assert_true(ft_hpo_db_check(db));
    ft_hpo_db_close(db);
}
