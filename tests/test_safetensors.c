/* test_safetensors.c — safetensors reader and writer.
 *
 * Round trip of every dtype through ft_st_write / ft_st_open; F16/BF16 upcast against values
 * torch computed (tests/fixtures/safetensors/upcast.safetensors, made by
 * tests/parity/make_safetensors_fixtures.py) and against the scalar reference for all 65536 bit
 * patterns; sharded directories (hand-made and written by transformers); every corrupt input
 * built here under a temp dir must fail with the documented code and a message naming the file
 * (and tensor). FT_ST_KEEP=path also leaves the round-trip file there, for
 *   python3 tests/parity/make_safetensors_fixtures.py --verify path */
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

/* Until include/finetune/safetensors.h declares it (same signature). */
int ft_st_read_i32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, int32_t *dst);

static char g_tmp[256];

static const char *tmp(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ft_st_test_XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* 8-byte length field (hlen), then the header text, then data_len bytes of 0x11. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t data_len) {
    size_t hl = strlen(header), n = 8 + hl + data_len;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, 0x11, data_len);
    write_file(path, b, n);
    free(b);
}

static int contains(const char *s, const char *sub) { return sub == NULL || strstr(s, sub) != NULL; }

/* Open must fail with `code`; the message must contain each non-NULL string. */
static void expect_open_fail(const char *path, int code, const char *s1, const char *s2, const char *s3) {
    ft_safetensors *st = (ft_safetensors *)&st;
    ft_error_clear();
    int rc = ft_st_open(&st, path);
    const char *msg = ft_last_error();
    printf("  rc=%-3d %s\n", rc, msg);
    assert_int_equal(rc, code);
    assert_null(st);
    assert_true(contains(msg, s1));
    assert_true(contains(msg, s2));
    assert_true(contains(msg, s3));
}

static int read_bytes(const char *path, unsigned char **out, size_t *n) {
    char *p;
    int rc = ft_file_read_all(path, &p, n);
    *out = (unsigned char *)p;
    return rc;
}

/* ---- round trip ---- */

enum { RT_N = 11 };
/* Same list and values as ROUNDTRIP / roundtrip_value() in make_safetensors_fixtures.py. */
static const struct { const char *name; ft_dtype dt; int ndim; int64_t shape[FT_ST_MAX_DIMS]; } k_rt[RT_N] = {
    {"w.f32", FT_F32, 2, {3, 5}},
    {"w.f16", FT_F16, 2, {2, 9}},
    {"w.bf16", FT_BF16, 2, {4, 3}},
    {"ids.i32", FT_I32, 1, {7}},
    {"ids.i64", FT_I64, 2, {2, 3}},
    {"q.i8", FT_I8, 1, {10}},
    {"q.u8", FT_U8, 2, {3, 3}},
    {"scalar", FT_F32, 0, {0}},
    {"empty", FT_F32, 2, {0, 4}},
    {"deep", FT_F32, 8, {1, 2, 1, 2, 1, 2, 1, 2}},
    {"weird \"name\"\\x", FT_BF16, 1, {2}},
};

static double rt_value(ft_dtype dt, int64_t i, int k) {
    switch (dt) {
    case FT_F32: case FT_F16: case FT_BF16: return (double)((i % 17) - 8) * 0.5 + k;
    case FT_I32: return (double)((i % 23) * 100000 - 7 * k);
    case FT_I64: return (double)((i % 23) * 1000000000000LL - 7 * k);
    case FT_I8: return (double)((i % 23) - 11 - k);
    default: return (double)((i * 37 + k) % 256);
    }
}

static int64_t numel_of(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Fills t[] (data malloc'd; free with free_tensors). */
static void make_rt_tensors(ft_st_tensor *t) {
    for (int k = 0; k < RT_N; k++) {
        ft_st_tensor *x = &t[k];
        memset(x, 0, sizeof *x);
        x->name = k_rt[k].name;
        x->dtype = k_rt[k].dt;
        x->ndim = k_rt[k].ndim;
        memcpy(x->shape, k_rt[k].shape, sizeof x->shape);
        int64_t n = numel_of(x->shape, x->ndim);
        unsigned char *d = malloc((size_t)n * ft_dtype_size(x->dtype) + 1);
        assert_non_null(d);
        for (int64_t i = 0; i < n; i++) {
            double v = rt_value(x->dtype, i, k);
            switch (x->dtype) {
            case FT_F32: ((float *)d)[i] = (float)v; break;
            case FT_F16: ((uint16_t *)d)[i] = ft_f32_to_f16((float)v); break;
            case FT_BF16: ((uint16_t *)d)[i] = ft_f32_to_bf16((float)v); break;
            case FT_I32: ((int32_t *)d)[i] = (int32_t)v; break;
            case FT_I64: ((int64_t *)d)[i] = (int64_t)v; break;
            case FT_I8: ((int8_t *)d)[i] = (int8_t)v; break;
            default: d[i] = (uint8_t)v; break;
            }
        }
        x->data = d;
    }
}

static void free_tensors(ft_st_tensor *t, int n) {
    for (int k = 0; k < n; k++) free((void *)t[k].data);
}

static const char *const k_meta[] = {"format", "pt", "note", "written by test_safetensors \"roundtrip\"\n"};

static void test_roundtrip_all_dtypes(void **state) {
    (void)state;
    ft_st_tensor t[RT_N];
    make_rt_tensors(t);
    const char *path = tmp("roundtrip.safetensors");
    assert_int_equal(ft_st_write(path, t, RT_N, k_meta, 2), FT_OK);
    const char *keep = getenv("FT_ST_KEEP");
    if (keep && *keep) {
        assert_int_equal(ft_st_write(keep, t, RT_N, k_meta, 2), FT_OK);
        printf("  kept a copy at %s\n", keep);
    }

    ft_safetensors *st;
    int rc = ft_st_open(&st, path);
    if (rc) printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    assert_int_equal(ft_st_count(st), RT_N);
    assert_string_equal(ft_st_metadata(st, "format"), "pt");
    assert_string_equal(ft_st_metadata(st, "note"), k_meta[3]);
    assert_null(ft_st_metadata(st, "absent"));
    for (int k = 0; k < RT_N; k++) {
        const ft_st_entry *e = ft_st_at(st, k);
        assert_non_null(e);
        assert_string_equal(e->name, t[k].name); /* header order = given order */
        assert_ptr_equal(ft_st_find(st, t[k].name), e);
        assert_int_equal(e->dtype, t[k].dtype);
        assert_int_equal(e->ndim, t[k].ndim);
        for (int d = 0; d < e->ndim; d++) assert_int_equal(e->shape[d], t[k].shape[d]);
        size_t nb = (size_t)numel_of(t[k].shape, t[k].ndim) * ft_dtype_size(t[k].dtype);
        assert_int_equal(e->nbytes, nb);
        assert_true(nb == 0 || memcmp(e->data, t[k].data, nb) == 0);
        assert_string_equal(e->file, path);

        int64_t n = numel_of(e->shape, e->ndim);
        int is_float = e->dtype == FT_F32 || e->dtype == FT_F16 || e->dtype == FT_BF16;
        float *f = malloc((size_t)(n + 1) * sizeof *f);
        int32_t *q = malloc((size_t)(n + 1) * sizeof *q);
        double worst = 0;
        if (is_float) {
            assert_int_equal(ft_st_read_f32(st, e->name, e->shape, e->ndim, f), FT_OK);
            for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(f[i] - rt_value(e->dtype, i, k)));
            assert_int_equal(ft_st_read_i32(st, e->name, e->shape, e->ndim, q), FT_ERR_DTYPE);
            assert_true(contains(ft_last_error(), e->name));
        } else {
            rc = ft_st_read_i32(st, e->name, e->shape, e->ndim, q);
            if (e->dtype == FT_I64) { /* values up to 2.2e13: must be refused, naming the tensor */
                printf("  %-18s read_i32 -> %d %s\n", e->name, rc, ft_last_error());
                assert_int_equal(rc, FT_ERR_RANGE);
                assert_true(contains(ft_last_error(), "ids.i64"));
            } else {
                assert_int_equal(rc, FT_OK);
                for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(q[i] - rt_value(e->dtype, i, k)));
            }
            assert_int_equal(ft_st_read_f32(st, e->name, e->shape, e->ndim, f), FT_ERR_DTYPE);
            assert_true(contains(ft_last_error(), e->name));
            assert_true(contains(ft_last_error(), ft_dtype_name(e->dtype)));
        }
        printf("  %-18s %-4s ndim=%d numel=%-4lld bytes identical, max abs err %.1e\n", e->name,
               ft_dtype_name(e->dtype), e->ndim, (long long)n, worst);
        assert_true(worst == 0);
        free(f);
        free(q);
    }
    assert_null(ft_st_at(st, RT_N));
    assert_null(ft_st_at(st, -1));

    /* shape mismatch prints both shapes; missing tensor is NOT_FOUND with the name */
    float buf[64];
    int64_t wrong[2] = {5, 3};
    rc = ft_st_read_f32(st, "w.f32", wrong, 2, buf);
    printf("  shape check: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_SHAPE);
    assert_true(contains(ft_last_error(), "[3, 5]") && contains(ft_last_error(), "[5, 3]"));
    assert_true(contains(ft_last_error(), "roundtrip.safetensors") && contains(ft_last_error(), "w.f32"));
    int64_t flat[1] = {15};
    assert_int_equal(ft_st_read_f32(st, "w.f32", flat, 1, buf), FT_ERR_SHAPE);
    assert_null(ft_st_find(st, "nope"));
    rc = ft_st_read_f32(st, "nope", flat, 1, buf);
    printf("  missing: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_NOT_FOUND);
    assert_true(contains(ft_last_error(), "nope") && contains(ft_last_error(), "roundtrip.safetensors"));
    ft_st_close(st);
    free_tensors(t, RT_N);
}

static void test_writer_deterministic(void **state) {
    (void)state;
    ft_st_tensor t[RT_N];
    make_rt_tensors(t);
    const char *a = tmp("det_a.safetensors"), *b = tmp("det_b.safetensors");
    assert_int_equal(ft_st_write(a, t, RT_N, k_meta, 2), FT_OK);
    assert_int_equal(ft_st_write(b, t, RT_N, k_meta, 2), FT_OK);
    unsigned char *x, *y;
    size_t nx, ny;
    assert_int_equal(read_bytes(a, &x, &nx), FT_OK);
    assert_int_equal(read_bytes(b, &y, &ny), FT_OK);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | x[i];
    printf("  two writes: %zu bytes each, identical; header %llu bytes (multiple of 8), data at offset %llu\n", nx,
           (unsigned long long)hlen, (unsigned long long)(8 + hlen));
    assert_int_equal(hlen % 8, 0);
    assert_memory_equal(x + 8, "{\"__metadata__\":{\"format\":\"pt\",", 31);
    assert_int_equal(x[8 + hlen - 1] == ' ' || x[8 + hlen - 1] == '}', 1);
    /* rewriting over an existing file replaces it atomically; no temp file is left behind */
    assert_int_equal(ft_st_write(a, t, 3, NULL, 0), FT_OK);
    char tmpname[1100];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", a, (long)getpid());
    assert_false(ft_path_exists(tmpname));
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, a), FT_OK);
    assert_int_equal(ft_st_count(st), 3);
    assert_null(ft_st_metadata(st, "format"));
    ft_st_close(st);
    /* no tensors at all is a valid file */
    assert_int_equal(ft_st_write(b, NULL, 0, NULL, 0), FT_OK);
    assert_int_equal(ft_st_open(&st, b), FT_OK);
    assert_int_equal(ft_st_count(st), 0);
    ft_st_close(st);
    free(x);
    free(y);
    free_tensors(t, RT_N);
}

static void expect_write_fail(const ft_st_tensor *t, int n, const char *const *meta, int n_meta, int code,
                              const char *s1) {
    const char *path = tmp("rejected.safetensors");
    int rc = ft_st_write(path, t, n, meta, n_meta);
    printf("  rc=%-3d %s\n", rc, ft_last_error());
    assert_int_equal(rc, code);
    assert_true(contains(ft_last_error(), "rejected.safetensors"));
    assert_true(contains(ft_last_error(), s1));
    assert_false(ft_path_exists(path));
}

static void test_writer_rejects(void **state) {
    (void)state;
    float v[4] = {1, 2, 3, 4};
    ft_st_tensor t[3] = {
        {.name = "a", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = v},
        {.name = "b", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = v + 2},
        {.name = "a", .dtype = FT_F32, .ndim = 1, .shape = {1}, .data = v},
    };
    expect_write_fail(t, 3, NULL, 0, FT_ERR_INVALID, "'a'");
    ft_st_tensor r = {.name = "__metadata__", .dtype = FT_F32, .ndim = 1, .shape = {1}, .data = v};
    expect_write_fail(&r, 1, NULL, 0, FT_ERR_INVALID, "__metadata__");
    ft_st_tensor q = {.name = "q", .dtype = FT_Q8_ROW, .ndim = 1, .shape = {4}, .data = v};
    expect_write_fail(&q, 1, NULL, 0, FT_ERR_DTYPE, "Q8_ROW");
    ft_st_tensor deep = {.name = "deep", .dtype = FT_F32, .ndim = 9, .data = v};
    expect_write_fail(&deep, 1, NULL, 0, FT_ERR_INVALID, "deep");
    ft_st_tensor neg = {.name = "neg", .dtype = FT_F32, .ndim = 1, .shape = {-2}, .data = v};
    expect_write_fail(&neg, 1, NULL, 0, FT_ERR_INVALID, "neg");
    ft_st_tensor nul = {.name = "nul", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = NULL};
    expect_write_fail(&nul, 1, NULL, 0, FT_ERR_INVALID, "nul");
    const char *const dupmeta[] = {"k", "1", "k", "2"};
    expect_write_fail(t, 2, dupmeta, 2, FT_ERR_INVALID, "'k'");
}

/* ---- Python-written fixture ---- */

/* Bitwise, except that any NaN matches any NaN (torch upcasts an F16 NaN to 0x7fffffff, F16C and
 * the scalar path to 0x7fc00000; the payload carries no meaning). */
static int count_bit_mismatch(const float *a, const float *b, size_t n, size_t *nonfinite) {
    int bad = 0;
    *nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        int m = isnan(b[i]) ? !isnan(a[i]) : memcmp(&a[i], &b[i], 4) != 0;
        if (m) printf("  element %zu: got 0x%08x, torch 0x%08x\n", i, *(const uint32_t *)(const void *)&a[i],
                      *(const uint32_t *)(const void *)&b[i]);
        bad += m;
        *nonfinite += !isfinite(b[i]);
    }
    return bad;
}

static void test_python_upcast(void **state) {
    (void)state;
    if (!ft_fixture_present("safetensors/upcast.safetensors")) { skip(); return; }
    ft_safetensors *st;
    int rc = ft_st_open(&st, ft_fixture("safetensors/upcast.safetensors"));
    if (rc) printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    assert_string_equal(ft_st_metadata(st, "format"), "pt");
    const struct { const char *name, *expect; ft_dtype dt; int ndim; int64_t shape[3]; } c[] = {
        {"f32", "f32.expect", FT_F32, 2, {3, 4}},
        {"f16", "f16.expect", FT_F16, 3, {2, 3, 7}},
        {"bf16", "bf16.expect", FT_BF16, 2, {5, 9}},
    };
    float got[64], ref[64];
    for (int k = 0; k < 3; k++) {
        const ft_st_entry *e = ft_st_find(st, c[k].name);
        assert_non_null(e);
        assert_int_equal(e->dtype, c[k].dt);
        size_t n = (size_t)numel_of(c[k].shape, c[k].ndim);
        assert_int_equal(ft_st_read_f32(st, c[k].name, c[k].shape, c[k].ndim, got), FT_OK);
        assert_int_equal(ft_st_read_f32(st, c[k].expect, c[k].shape, c[k].ndim, ref), FT_OK);
        size_t nonfinite;
        int bad = count_bit_mismatch(got, ref, n, &nonfinite);
        float gf[64], rf[64]; /* finite values only for the error report */
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(ref[i])) { gf[m] = got[i]; rf[m] = ref[i]; m++; }
        ft_check_close(c[k].name, gf, rf, m, 0.0);
        printf("  %-5s -> f32 vs torch: %zu/%zu bit-identical, NaN as NaN (%zu inf/nan among them)\n", c[k].name, n - (size_t)bad, n,
               nonfinite);
        assert_int_equal(bad, 0);
    }
    /* A few values checked by hand: f16 1.0, 65504, 2^-24 (smallest subnormal), -0.0 */
    assert_int_equal(ft_st_read_f32(st, "f16", c[1].shape, 3, got), FT_OK);
    assert_true(got[2] == 1.0f && got[4] == 65504.0f && got[7] == 0x1p-24f && got[1] == 0.0f && signbit(got[1]));
    assert_true(isinf(got[10]) && isnan(got[40]));

    int64_t s_i64[2] = {2, 5}, s_i32[1] = {4}, s_big[1] = {3};
    int32_t qi[16], qr[16];
    assert_int_equal(ft_st_read_i32(st, "i64", s_i64, 2, qi), FT_OK);
    assert_int_equal(ft_st_read_i32(st, "i64.expect", s_i64, 2, qr), FT_OK);
    assert_memory_equal(qi, qr, 10 * sizeof(int32_t));
    assert_true(qi[3] == 50256 && qi[4] == INT32_MAX && qi[5] == INT32_MIN);
    assert_int_equal(ft_st_read_i32(st, "i32", s_i32, 1, qi), FT_OK);
    assert_true(qi[0] == 5 && qi[1] == -6 && qi[2] == INT32_MAX && qi[3] == INT32_MIN);
    rc = ft_st_read_i32(st, "i64_big", s_big, 1, qi);
    printf("  i64 -> i32: 10/10 equal to torch; i64_big: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_RANGE);
    assert_true(contains(ft_last_error(), "i64_big") && contains(ft_last_error(), "1099511627776") &&
                contains(ft_last_error(), "upcast.safetensors"));
    ft_st_close(st);
}

/* Every F16 and BF16 bit pattern, 5 times over (enough for the parallel path), against the scalar
 * conversions in tensor.c. */
static void test_upcast_all_patterns(void **state) {
    (void)state;
    enum { REP = 5, N = 65536 * REP };
    uint16_t *h = malloc(N * sizeof *h);
    float *got = malloc(N * sizeof *got);
    assert_true(h && got);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)(i * 40503u); /* odd multiplier: a permutation per 65536 block */
    ft_st_tensor t[2] = {
        {.name = "h", .dtype = FT_F16, .ndim = 2, .shape = {REP, 65536}, .data = h},
        {.name = "b", .dtype = FT_BF16, .ndim = 2, .shape = {REP, 65536}, .data = h},
    };
    const char *path = tmp("patterns.safetensors");
    assert_int_equal(ft_st_write(path, t, 2, NULL, 0), FT_OK);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, path), FT_OK);
    for (int k = 0; k < 2; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(ft_st_read_f32(st, t[k].name, t[k].shape, 2, got), FT_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int bad = 0, nan = 0;
        for (int i = 0; i < N; i++) {
            float r = k == 0 ? ft_f16_to_f32(h[i]) : ft_bf16_to_f32(h[i]);
            if (isnan(r)) { nan++; bad += !isnan(got[i]); }
            else bad += memcmp(&r, &got[i], 4) != 0;
        }
        printf("  %s: %d values (all 65536 patterns x %d): %d mismatches vs scalar reference (%d NaN patterns compared as NaN), %.2f ms\n",
               k == 0 ? "F16 " : "BF16", N, REP, bad, nan, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        assert_int_equal(bad, 0);
    }
    ft_st_close(st);
    free(h);
    free(got);
}

/* ---- sharded directories ---- */

/* Same list and values as SHARDED / shard_value() in make_safetensors_fixtures.py. */
static const struct { const char *name; ft_dtype dt; int ndim; int64_t shape[2]; int shard; } k_sh[] = {
    {"embed.weight", FT_F32, 2, {16, 8}, 1}, {"layers.0.w", FT_F16, 2, {8, 8}, 1},
    {"layers.0.b", FT_F32, 1, {8}, 1},       {"layers.1.w", FT_BF16, 2, {8, 8}, 2},
    {"layers.1.b", FT_F32, 1, {8}, 2},       {"norm.weight", FT_F32, 1, {8}, 2},
};

static void check_sharded(const char *path) {
    ft_safetensors *st;
    int rc = ft_st_open(&st, path);
    if (rc) printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    assert_int_equal(ft_st_count(st), 6);
    assert_string_equal(ft_st_metadata(st, "format"), "pt");
    assert_null(ft_st_metadata(st, "total_size")); /* a number in the index, not a string */
    float got[128], ref[128];
    for (int k = 0; k < 6; k++) {
        const ft_st_entry *e = ft_st_find(st, k_sh[k].name);
        assert_non_null(e);
        char shard[64];
        snprintf(shard, sizeof shard, "model-%05d-of-00002.safetensors", k_sh[k].shard);
        assert_true(contains(e->file, shard));
        assert_int_equal(e->dtype, k_sh[k].dt);
        int64_t n = numel_of(k_sh[k].shape, k_sh[k].ndim);
        assert_int_equal(ft_st_read_f32(st, k_sh[k].name, k_sh[k].shape, k_sh[k].ndim, got), FT_OK);
        for (int64_t i = 0; i < n; i++) ref[i] = (float)((double)(((i * 7 + k * 3) % 19) - 9) * 0.125);
        char label[96];
        snprintf(label, sizeof label, "%s (%s, %s)", k_sh[k].name, ft_dtype_name(e->dtype), shard);
        assert_true(ft_check_close(label, got, ref, (size_t)n, 0.0));
    }
    ft_st_close(st);
}

static void test_sharded_fixture(void **state) {
    (void)state;
    if (!ft_fixture_present("safetensors/sharded/model.safetensors.index.json")) { skip(); return; }
    printf("  directory:\n");
    check_sharded(ft_fixture("safetensors/sharded"));
    printf("  index.json path:\n");
    check_sharded(ft_fixture("safetensors/sharded/model.safetensors.index.json"));
}

/* transformers' own sharded output: every tensor of checksums.txt is found in its shard, with its sum. */
static void test_hf_sharded(void **state) {
    (void)state;
    if (!ft_fixture_present("safetensors/hf_tiny_gpt2/checksums.txt")) { skip(); return; }
    ft_safetensors *st;
    int rc = ft_st_open(&st, ft_fixture("safetensors/hf_tiny_gpt2"));
    if (rc) printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    FILE *f = fopen(ft_fixture("safetensors/hf_tiny_gpt2/checksums.txt"), "r");
    assert_non_null(f);
    char line[512], name[256], shard[128];
    long long numel;
    double sum, worst = 0;
    int lines = 0;
    float *buf = malloc(4096 * sizeof *buf);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        assert_int_equal(sscanf(line, "%255s %127s %lld %lf", name, shard, &numel, &sum), 4);
        const ft_st_entry *e = ft_st_find(st, name);
        assert_non_null(e);
        assert_true(contains(e->file, shard));
        assert_int_equal(numel_of(e->shape, e->ndim), numel);
        assert_true(numel <= 4096);
        assert_int_equal(ft_st_read_f32(st, name, e->shape, e->ndim, buf), FT_OK);
        double s = 0;
        for (long long i = 0; i < numel; i++) s += buf[i];
        worst = fmax(worst, fabs(s - sum));
        lines++;
    }
    fclose(f);
    const ft_st_entry *wte = ft_st_find(st, "transformer.wte.weight");
    assert_non_null(wte);
    assert_true(wte->ndim == 2 && wte->shape[0] == 32 && wte->shape[1] == 8);
    printf("  %d tensors across 3 shards written by transformers; sums max abs diff %.2e\n", lines, worst);
    assert_int_equal(lines, ft_st_count(st));
    assert_true(worst < 1e-9);
    free(buf);
    ft_st_close(st);
}

static void write_index(const char *dir, const char *weight_map_json) {
    char p[1200], text[2048];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 16}, \"weight_map\": %s}\n", weight_map_json);
    write_file(p, text, strlen(text));
}

static void test_index_errors(void **state) {
    (void)state;
    float v[4] = {1, 2, 3, 4};
    ft_st_tensor a = {.name = "a", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = v};
    ft_st_tensor b = {.name = "b", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = v + 2};
    const char *d = tmp("idx");
    char dir[1100], p[1200];
    snprintf(dir, sizeof dir, "%s", d);
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    snprintf(p, sizeof p, "%s/s1.safetensors", dir);
    assert_int_equal(ft_st_write(p, &a, 1, NULL, 0), FT_OK);
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    assert_int_equal(ft_st_write(p, &b, 1, NULL, 0), FT_OK);

    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}");
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, dir), FT_OK);
    assert_int_equal(ft_st_count(st), 2);
    ft_st_close(st);

    /* listed but absent from its shard: names the tensor and the shard */
    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", \"c\": \"s2.safetensors\"}");
    expect_open_fail(dir, FT_ERR_FORMAT, "'c'", "s2.safetensors", "index.json");
    /* in another shard than the index says */
    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"x\": \"s2.safetensors\"}");
    expect_open_fail(dir, FT_ERR_FORMAT, "'b'", "s1.safetensors", "s2.safetensors");
    /* missing shard file */
    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s3.safetensors\"}");
    expect_open_fail(dir, FT_ERR_NOT_FOUND, "s3.safetensors", "'b'", "index.json");
    /* escaping the directory */
    write_index(dir, "{\"a\": \"../s1.safetensors\"}");
    expect_open_fail(dir, FT_ERR_FORMAT, "'a'", "index.json", NULL);
    /* no weight_map / bad JSON */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_file(p, "{\"metadata\": {}}", 16);
    expect_open_fail(dir, FT_ERR_FORMAT, "weight_map", "index.json", NULL);
    write_file(p, "{\"weight_map\": {", 16);
    expect_open_fail(p, FT_ERR_FORMAT, "index.json", "JSON", NULL);
    /* the same tensor in two shards */
    snprintf(p, sizeof p, "%s/s2.safetensors", dir);
    ft_st_tensor ab[2] = {b, a};
    assert_int_equal(ft_st_write(p, ab, 2, NULL, 0), FT_OK);
    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}");
    expect_open_fail(dir, FT_ERR_FORMAT, "'a'", "s1.safetensors", "s2.safetensors");
}

static void test_directory_cases(void **state) {
    (void)state;
    char dir[1100], p[1200];
    /* only PyTorch pickle weights (and trainer state): UNSUPPORTED, says how to convert */
    snprintf(dir, sizeof dir, "%s", tmp("pickle_only"));
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    snprintf(p, sizeof p, "%s/pytorch_model.bin", dir);
    write_file(p, "PK\003\004 not really a zip", 22);
    snprintf(p, sizeof p, "%s/training_args.bin", dir);
    write_file(p, "x", 1);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_file(p, "{}", 2);
    expect_open_fail(dir, FT_ERR_UNSUPPORTED, "pytorch_model.bin", "safetensors", "save_pretrained");
    assert_true(contains(ft_last_error(), "pickle_only"));

    /* nothing usable: NOT_FOUND naming the directory and what was looked for */
    snprintf(dir, sizeof dir, "%s", tmp("empty_dir"));
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    snprintf(p, sizeof p, "%s/training_args.bin", dir);
    write_file(p, "x", 1);
    expect_open_fail(dir, FT_ERR_NOT_FOUND, "empty_dir", "model.safetensors", "index.json");
    expect_open_fail(tmp("does_not_exist"), FT_ERR_NOT_FOUND, "does_not_exist", NULL, NULL);

    /* a single differently named .safetensors (a PEFT adapter dir) opens */
    snprintf(dir, sizeof dir, "%s", tmp("adapter"));
    assert_int_equal(ft_mkdirs(dir), FT_OK);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    float v[2] = {1, 2};
    ft_st_tensor a = {.name = "lora_A", .dtype = FT_F32, .ndim = 1, .shape = {2}, .data = v};
    assert_int_equal(ft_st_write(p, &a, 1, NULL, 0), FT_OK);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, dir), FT_OK);
    assert_non_null(ft_st_find(st, "lora_A"));
    ft_st_close(st);
    /* model.safetensors wins over anything else */
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    a.name = "w";
    assert_int_equal(ft_st_write(p, &a, 1, NULL, 0), FT_OK);
    assert_int_equal(ft_st_open(&st, dir), FT_OK);
    assert_non_null(ft_st_find(st, "w"));
    assert_null(ft_st_find(st, "lora_A"));
    ft_st_close(st);
    printf("  adapter_model.safetensors-only directory opens; model.safetensors preferred\n");
}

/* ---- corrupt single files ---- */

typedef struct bad_case {
    const char *file;     /* also what the message must name */
    const char *header;
    size_t      data_len;
    int         code;
    const char *s1, *s2;  /* more text the message must contain (tensor name, reason) */
} bad_case;

static void test_corrupt_headers(void **state) {
    (void)state;
    static const bad_case c[] = {
        {"bad_json.safetensors", "{\"t\": {\"dtype\": \"F32\",", 0, FT_ERR_FORMAT, "JSON", NULL},
        {"not_object.safetensors", "[1, 2]", 0, FT_ERR_FORMAT, "not a JSON object", NULL},
        {"trailing.safetensors", "{}  x", 0, FT_ERR_FORMAT, "after the JSON", NULL},
        {"no_dtype.safetensors", "{\"t1\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'t1'", "dtype"},
        {"no_shape.safetensors", "{\"t2\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'t2'", "shape"},
        {"no_offsets.safetensors", "{\"t3\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, FT_ERR_FORMAT, "'t3'", "data_offsets"},
        {"dtype_num.safetensors", "{\"t4\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'t4'", "dtype"},
        {"unknown_dtype.safetensors", "{\"t5\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'t5'", "F33"},
        {"quant_dtype.safetensors", "{\"t6\":{\"dtype\":\"Q8_ROW\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'t6'", "Q8_ROW"},
        {"f64.safetensors", "{\"t7\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, FT_ERR_DTYPE, "'t7'", "F64"},
        {"reversed.safetensors", "{\"t8\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, FT_ERR_FORMAT, "'t8'", "out of order"},
        {"past_end.safetensors", "{\"t9\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, FT_ERR_FORMAT, "'t9'", "end of the data"},
        {"size_mismatch.safetensors", "{\"ta\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'ta'", "[3]"},
        {"overflow.safetensors", "{\"tb\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8,
         FT_ERR_FORMAT, "'tb'", "needs"},
        {"negative_dim.safetensors", "{\"tc\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, FT_ERR_FORMAT, "'tc'", "shape[0]"},
        {"fraction.safetensors", "{\"td\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8, FT_ERR_FORMAT, "'td'", "data_offsets"},
        {"overlap.safetensors",
         "{\"first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, FT_ERR_FORMAT, "'first'", "'second'"},
        {"dup_name.safetensors",
         "{\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, FT_ERR_FORMAT, "'dup'", "twice"},
        {"meta_num.safetensors", "{\"__metadata__\":{\"epoch\":3}}", 0, FT_ERR_FORMAT, "__metadata__", "epoch"},
        {"meta_array.safetensors", "{\"__metadata__\":[1]}", 0, FT_ERR_FORMAT, "__metadata__", NULL},
        {"nine_dims.safetensors", "{\"te\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         FT_ERR_UNSUPPORTED, "'te'", "9 dimensions"},
        {"entry_string.safetensors", "{\"tf\":\"F32\"}", 0, FT_ERR_FORMAT, "'tf'", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char *p = tmp(c[i].file);
        write_raw(p, strlen(c[i].header), c[i].header, c[i].data_len);
        expect_open_fail(p, c[i].code, c[i].file, c[i].s1, c[i].s2);
    }
    printf("  %zu corrupt headers rejected with the file (and tensor) named\n", sizeof c / sizeof c[0]);
}

static void test_corrupt_framing(void **state) {
    (void)state;
    const char *p;
    p = tmp("empty.safetensors");
    write_file(p, "", 0);
    expect_open_fail(p, FT_ERR_FORMAT, "empty.safetensors", "0 bytes", NULL);
    p = tmp("short.safetensors");
    write_file(p, "\x10\0\0\0\0", 5);
    expect_open_fail(p, FT_ERR_FORMAT, "short.safetensors", "5 bytes", NULL);
    p = tmp("hlen_past_end.safetensors");
    write_raw(p, 1000, "{}", 0);
    expect_open_fail(p, FT_ERR_FORMAT, "hlen_past_end.safetensors", "past the end of the file", NULL);
    p = tmp("huge_header.safetensors");
    write_raw(p, 200000000ull, "{}", 0);
    expect_open_fail(p, FT_ERR_FORMAT, "huge_header.safetensors", "limit", NULL);
    p = tmp("hlen_max.safetensors");
    write_raw(p, UINT64_MAX, "{}", 0);
    expect_open_fail(p, FT_ERR_FORMAT, "hlen_max.safetensors", "limit", NULL);
    p = tmp("zero_header.safetensors");
    write_raw(p, 0, "", 16);
    expect_open_fail(p, FT_ERR_FORMAT, "zero_header.safetensors", "JSON", NULL);

    /* A good file cut short (in the data section, then in the header), and one with a flipped length byte. */
    ft_st_tensor t[RT_N];
    make_rt_tensors(t);
    const char *good = tmp("good.safetensors");
    assert_int_equal(ft_st_write(good, t, RT_N, k_meta, 2), FT_OK);
    unsigned char *b;
    size_t n;
    assert_int_equal(read_bytes(good, &b, &n), FT_OK);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    p = tmp("truncated_data.safetensors");
    write_file(p, b, n - 2); /* cuts into the last tensor only */
    expect_open_fail(p, FT_ERR_FORMAT, "truncated_data.safetensors", "'weird \"name\"\\x'", "end of the data section");
    p = tmp("truncated_header.safetensors");
    write_file(p, b, 8 + hlen / 2);
    expect_open_fail(p, FT_ERR_FORMAT, "truncated_header.safetensors", "past the end of the file", NULL);
    p = tmp("flipped_len.safetensors");
    b[3] ^= 0x40; /* header length + 1 GiB */
    write_file(p, b, n);
    expect_open_fail(p, FT_ERR_FORMAT, "flipped_len.safetensors", "limit", NULL);
    b[3] ^= 0x40;
    b[0] ^= 0x01; /* header length off by one: JSON ends early or a space goes missing */
    write_file(p, b, n);
    ft_safetensors *st = NULL;
    int rc = ft_st_open(&st, p);
    printf("  length off by one: rc=%d %s\n", rc, rc ? ft_last_error() : "(opened: padding absorbed it)");
    if (rc == FT_OK) ft_st_close(st);
    else assert_true(contains(ft_last_error(), "flipped_len.safetensors"));
    free(b);
    free_tensors(t, RT_N);
}

/* Many tensors: every name found through the hash table, lookups timed. */
static void test_many_tensors_lookup(void **state) {
    (void)state;
    enum { N = 4000 };
    ft_st_tensor *t = calloc(N, sizeof *t);
    float *v = malloc(N * sizeof *v);
    char (*names)[48] = malloc(N * sizeof *names);
    assert_true(t && v && names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%d.mlp.w%d.weight", i / 8, i % 8);
        v[i] = (float)i;
        t[i] = (ft_st_tensor){.name = names[i], .dtype = FT_F32, .ndim = 1, .shape = {1}, .data = &v[i]};
    }
    const char *p = tmp("many.safetensors");
    assert_int_equal(ft_st_write(p, t, N, NULL, 0), FT_OK);
    ft_safetensors *st;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ft_st_open(&st, p), FT_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int bad = 0;
    for (int r = 0; r < 10; r++)
        for (int i = 0; i < N; i++) {
            float x = -1;
            int64_t s[1] = {1};
            bad += ft_st_read_f32(st, names[i], s, 1, &x) != FT_OK || x != (float)i;
        }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    assert_null(ft_st_find(st, "model.layers.0.mlp.w8.weight"));
    double open_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    double look_ns = ((double)(t2.tv_sec - t1.tv_sec) * 1e9 + (double)(t2.tv_nsec - t1.tv_nsec)) / (10.0 * N);
    printf("  %d tensors: open %.2f ms, %.0f ns per find+read, %d wrong\n", N, open_ms, look_ns, bad);
    assert_int_equal(bad, 0);
    ft_st_close(st);
    free(t);
    free(v);
    free(names);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_dtypes),
        cmocka_unit_test(test_writer_deterministic),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_python_upcast),
        cmocka_unit_test(test_upcast_all_patterns),
        cmocka_unit_test(test_sharded_fixture),
        cmocka_unit_test(test_hf_sharded),
        cmocka_unit_test(test_index_errors),
        cmocka_unit_test(test_directory_cases),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_corrupt_framing),
        cmocka_unit_test(test_many_tensors_lookup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
