/* test_quant.c — quantized frozen weights (quant.h): NF4 with double quantization, the 8-bit dynamic
 * map and blockwise quantizer, int8 rows.
 *
 *  - parity: codes, scales and dequantized values bit-identical to the Python re-implementation of
 *    bitsandbytes' algorithm (tests/parity/make_quant_fixtures.py, cross-checked there against the
 *    bitsandbytes package) on random normal weights and edge cases (all-zero block, one large outlier,
 *    values exactly on the decision thresholds and one ulp either side, subnormal/tiny/huge blocks);
 *  - every SIMD table (scalar, AVX2, AVX-512 — those this CPU has) dequantizes bit-identically to the
 *    _ref routines;
 *  - fused matmuls (forward with/without bias, input gradient) on every path (direct, tiled, full,
 *    auto) and table, against "dequantize with _ref, then matmul in double": max-norm relative
 *    error <= 1e-5; outputs are pre-filled with NaN so that a kernel that does not assign fails;
 *  - memory per weight (printed), argument errors.
 * FT_QUANT_TIMING=1 adds timings at [1024 x 768] @ [768 x 3072] and N = 1 against f32 sgemm. */
#include "testutil.h"

#include "finetune/quant.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tensor.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOL 1e-5 /* fused matmul vs double reference: max |got - ref| / max |ref| */

/* ---- allocation tracker (freed per check) ---- */
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
static float *randn(ft_rng *r, size_t n, float sd) {
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}
static float *nans(size_t n) {
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* exact bit equality, printed with the first difference */
static int check_bits(const char *name, const void *got, const void *ref, size_t nbytes, size_t elem) {
    const unsigned char *a = got, *b = ref;
    size_t ndiff = 0, first = (size_t)-1;
    for (size_t i = 0; i < nbytes; i += elem)
        if (memcmp(a + i, b + i, elem) != 0) {
            if (first == (size_t)-1) first = i / elem;
            ndiff++;
        }
    printf("  %-46s n=%-8zu %s", name, nbytes / elem, ndiff ? "DIFFERENT FAIL" : "bit-identical OK");
    if (ndiff) {
        printf(" (%zu differ, first at %zu", ndiff, first);
        if (elem == 4) {
            float x, y;
            memcpy(&x, a + first * 4, 4);
            memcpy(&y, b + first * 4, 4);
            printf(": got %.9g ref %.9g", x, y);
        } else if (elem == 1) {
            printf(": got %u ref %u", a[first], b[first]);
        }
        printf(")");
    }
    printf("\n");
    return ndiff == 0;
}

/* ---- fixtures ---- */
static const ft_st_entry *fx(const ft_safetensors *st, const char *name, ft_dtype dt, size_t nbytes) {
    const ft_st_entry *e = ft_st_find(st, name);
    if (!e) fail_msg("fixture tensor %s missing", name);
    if (e->dtype != dt || e->nbytes != nbytes)
        fail_msg("fixture tensor %s: dtype %s, %zu bytes; expected %s, %zu", name, ft_dtype_name(e->dtype), e->nbytes, ft_dtype_name(dt), nbytes);
    return e;
}
static ft_safetensors *open_fixture(void) {
    if (!ft_fixture_present("quant/quant_ref.safetensors")) return NULL;
    ft_safetensors *st = NULL;
    if (ft_st_open(&st, ft_fixture("quant/quant_ref.safetensors")) < 0) fail_msg("%s", ft_last_error());
    return st;
}

static int isa_count(void) { return (int)ft_quant_isa_best() + 1; }

/* ------------------------------------------------------------------ constants */
static void test_nf4_codebook(void **state) {
    (void)state;
    /* the QLoRA / bitsandbytes NF4 values, written out here a second time */
    static const double want[16] = {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                                    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                                    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                                    0.7229568362236023, 1.0};
    for (int i = 0; i < 16; i++) {
        printf("  NF4[%2d] = %+.17g\n", i, (double)FT_NF4_CODEBOOK[i]);
        assert_true(FT_NF4_CODEBOOK[i] == (float)want[i]);
        if (i) assert_true(FT_NF4_CODEBOOK[i] > FT_NF4_CODEBOOK[i - 1]);
    }
    /* The thresholds are bnb's decimal literals rounded straight to float32 (as nvcc and gcc do).
     * 11 equal the float32 midpoints of the codebook; for k = 0, 8, 12, 14 the exact midpoint is a
     * float32 rounding tie and the literal rounds the other way: one ulp off (bnb's torch CPU
     * fallback bucketizes on the midpoints, so it differs from the CUDA kernel on those 4 values). */
    float mids[15];
    int mid_eq = 0, one_ulp = 0;
    for (int k = 0; k < 15; k++) {
        mids[k] = (FT_NF4_CODEBOOK[k] + FT_NF4_CODEBOOK[k + 1]) / 2.0f;
        mid_eq += FT_NF4_THRESHOLDS[k] == mids[k];
        one_ulp += FT_NF4_THRESHOLDS[k] != mids[k] && (nextafterf(mids[k], -2.0f) == FT_NF4_THRESHOLDS[k] || nextafterf(mids[k], 2.0f) == FT_NF4_THRESHOLDS[k]);
        if (FT_NF4_THRESHOLDS[k] != mids[k]) printf("  threshold %2d: %.9g, float32 midpoint %.9g (1 ulp apart)\n", k, FT_NF4_THRESHOLDS[k], mids[k]);
        if (k) assert_true(FT_NF4_THRESHOLDS[k] > FT_NF4_THRESHOLDS[k - 1]);
    }
    printf("  decision thresholds equal to the float32 codebook midpoints: %d of 15, one ulp off: %d\n", mid_eq, one_ulp);
    assert_int_equal(mid_eq, 11);
    assert_int_equal(one_ulp, 4);
    ft_safetensors *st = open_fixture();
    if (!st) return;
    assert_true(check_bits("codebook vs bitsandbytes get_4bit_type(nf4)", FT_NF4_CODEBOOK, fx(st, "nf4_codebook", FT_F32, 64)->data, 64, 4));
    assert_true(check_bits("thresholds vs dQuantizeNF4 literals", FT_NF4_THRESHOLDS, fx(st, "nf4_thresholds", FT_F32, 60)->data, 60, 4));
    assert_true(check_bits("float32 midpoints", mids, fx(st, "nf4_midpoints", FT_F32, 60)->data, 60, 4));
    ft_st_close(st);
}

static void test_dynamic_map(void **state) {
    (void)state;
    float code[256];
    assert_int_equal(ft_quant_dynamic_map_create(code, 1, 7, 8), FT_OK);
    assert_true(check_bits("create_dynamic_map(1,7,8) vs default", code, ft_quant_dynamic_map(), sizeof code, 4));
    printf("  map[0]=%.9g map[126]=%.9g map[127]=%g map[128]=%.9g map[254]=%.9g map[255]=%g\n", code[0], code[126], code[127],
           code[128], code[254], code[255]);
    for (int i = 1; i < 256; i++) assert_true(code[i] > code[i - 1]);
    assert_true(code[127] == 0.0f && code[255] == 1.0f && code[0] == -0.99296875f);
    /* the search returns the nearest entry (distances in double) */
    ft_rng r;
    ft_rng_seed(&r, 7);
    int not_nearest = 0;
    for (int i = 0; i < 20000; i++) {
        float x = (ft_rng_uniform(&r) < 0.5f ? -1.0f : 1.0f) * powf(10.0f, -8.0f * ft_rng_uniform(&r));
        int q = ft_quant_code8_nearest(code, x);
        double best = INFINITY;
        for (int k = 0; k < 256; k++) best = fmin(best, fabs((double)x - code[k]));
        not_nearest += fabs((double)x - code[q]) > best;
    }
    printf("  code8_nearest: %d of 20000 random values not at the nearest entry\n", not_nearest);
    assert_int_equal(not_nearest, 0);
    assert_int_equal(ft_quant_dynamic_map_create(code, 1, 7, 9), FT_ERR_INVALID);
    assert_int_equal(ft_quant_dynamic_map_create(code, 1, 6, 8), FT_OK); /* other valid parameters (256 values) */
    for (int i = 1; i < 256; i++) assert_true(code[i] >= code[i - 1]);
    ft_safetensors *st = open_fixture();
    if (!st) return;
    assert_true(check_bits("dynamic map vs bitsandbytes (torch float32)", ft_quant_dynamic_map(), fx(st, "dynamic_map", FT_F32, 1024)->data,
                           1024, 4));
    ft_st_close(st);
}

/* ------------------------------------------------------------------ parity with the oracle */
static void check_nf4_case(const ft_safetensors *st, const char *name) {
    char key[96];
    snprintf(key, sizeof key, "%s.w", name);
    const ft_st_entry *ew = ft_st_find(st, key);
    assert_non_null(ew);
    const int64_t rows = ew->shape[0], cols = ew->shape[1], n = rows * cols, nb = n / 64, nb2 = (nb + 255) / 256;
    printf("%s: [%lld, %lld], %lld blocks, %lld double-quant groups\n", name, (long long)rows, (long long)cols, (long long)nb, (long long)nb2);
    const float *w = ew->data;
#define FX(suffix, dt, bytes) (snprintf(key, sizeof key, "%s." suffix, name), fx(st, key, dt, bytes)->data)
    const void *qs = FX("qs", FT_U8, (size_t)n / 2), *absmax = FX("absmax", FT_F32, (size_t)nb * 4),
               *absmax_q = FX("absmax_q", FT_U8, (size_t)nb), *absmax2 = FX("absmax2", FT_F32, (size_t)nb2 * 4),
               *offset = FX("offset", FT_F32, 4), *deq = FX("deq", FT_F32, (size_t)n * 4), *deq_nodq = FX("deq_nodq", FT_F32, (size_t)n * 4);
#undef FX
    /* double quant, in caller memory (view) */
    ft_nf4_tensor t;
    void *m = mem(ft_nf4_nbytes(rows, cols, FT_NF4_DOUBLE_QUANT));
    assert_int_equal(ft_nf4_view(&t, rows, cols, FT_NF4_DOUBLE_QUANT, m), FT_OK);
    float *am = fmem((size_t)nb);
    assert_int_equal(ft_nf4_quantize_ref(&t, w, am), FT_OK);
    int ok = 1;
    ok &= check_bits("packed codes (high nibble first)", t.blocks, qs, (size_t)n / 2, 1);
    ok &= check_bits("first-level absmax", am, absmax, (size_t)nb * 4, 4);
    ok &= check_bits("double quant: offset (mean absmax)", &t.offset, offset, 4, 4);
    ok &= check_bits("double quant: 8-bit absmax codes", t.absmax_q, absmax_q, (size_t)nb, 1);
    ok &= check_bits("double quant: absmax2 per 256 blocks", t.absmax2, absmax2, (size_t)nb2 * 4, 4);
    float *out = nans((size_t)n);
    ft_nf4_dequantize_ref(out, &t);
    ok &= check_bits("dequantize_ref (double quant)", out, deq, (size_t)n * 4, 4);
    /* without double quant */
    ft_nf4_tensor u;
    assert_int_equal(ft_nf4_create(&u, rows, cols, 0), FT_OK);
    assert_int_equal(ft_nf4_quantize_ref(&u, w, NULL), FT_OK);
    ok &= check_bits("no double quant: packed codes", u.blocks, qs, (size_t)n / 2, 1);
    ok &= check_bits("no double quant: absmax", u.absmax, absmax, (size_t)nb * 4, 4);
    float *out2 = nans((size_t)n);
    ft_nf4_dequantize_ref(out2, &u);
    ok &= check_bits("no double quant: dequantize_ref", out2, deq_nodq, (size_t)n * 4, 4);
    /* quantization error, for information */
    double e_dq = 0, e_nodq = 0, wmax = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(w[i])) continue;
        e_dq = fmax(e_dq, fabs((double)out[i] - w[i]));
        e_nodq = fmax(e_nodq, fabs((double)out2[i] - w[i]));
        wmax = fmax(wmax, fabs(w[i]));
    }
    printf("  max |dequant - w| / max|w|: %.4f with double quant, %.4f without\n", e_dq / wmax, e_nodq / wmax);
    ft_nf4_destroy(&u);
    assert_true(ok);
}

static void test_nf4_parity(void **state) {
    (void)state;
    ft_safetensors *st = open_fixture();
    if (!st) return;
    check_nf4_case(st, "nf4_randn");
    check_nf4_case(st, "nf4_edge");
    /* the edge blocks, spelled out: block 0 all zeros -> NaN -> code 0 (-1.0) * 0 = -0.0 */
    ft_nf4_tensor t;
    const ft_st_entry *ew = ft_st_find(st, "nf4_edge.w");
    assert_int_equal(ft_nf4_create(&t, ew->shape[0], ew->shape[1], FT_NF4_DOUBLE_QUANT), FT_OK);
    assert_int_equal(ft_nf4_quantize_ref(&t, ew->data, NULL), FT_OK);
    printf("  edge block 0 (zeros): first byte 0x%02x; block 2 (thresholds +-1 ulp, absmax 1.0): bytes", t.blocks[0].qs[0]);
    for (int j = 0; j < 8; j++) printf(" %02x", t.blocks[2].qs[j]);
    printf(" ...\n");
    assert_int_equal(t.blocks[0].qs[0], 0x00);
    /* block 2 = [1.0, t0-ulp, t0, t0+ulp, t1-ulp, t1, t1+ulp, ...]: threshold k itself takes code k */
    assert_int_equal(t.blocks[2].qs[0] >> 4, 15);
    assert_int_equal(t.blocks[2].qs[0] & 15, 0);  /* t0 - ulp */
    assert_int_equal(t.blocks[2].qs[1] >> 4, 0);  /* t0: lower code */
    assert_int_equal(t.blocks[2].qs[1] & 15, 1);  /* t0 + ulp */
    ft_nf4_destroy(&t);
    ft_st_close(st);
    mem_free_all();
}

static void test_blockwise8_parity(void **state) {
    (void)state;
    ft_safetensors *st = open_fixture();
    if (!st) return;
    const ft_st_entry *ex = ft_st_find(st, "dq8.x");
    assert_non_null(ex);
    int64_t n = ex->shape[0], nb = (n + 255) / 256;
    printf("blockwise 8-bit: %lld values (near-midpoint values, zero block, constant block, partial block)\n", (long long)n);
    uint8_t *codes = mem((size_t)n);
    float *am = fmem((size_t)nb), *out = nans((size_t)n);
    ft_quant_blockwise8_ref(codes, am, ex->data, n, 256, ft_quant_dynamic_map());
    ft_quant_blockwise8_dequantize_ref(out, codes, am, n, 256, ft_quant_dynamic_map());
    int ok = check_bits("codes", codes, fx(st, "dq8.codes", FT_U8, (size_t)n)->data, (size_t)n, 1);
    ok &= check_bits("absmax", am, fx(st, "dq8.absmax", FT_F32, (size_t)nb * 4)->data, (size_t)nb * 4, 4);
    ok &= check_bits("dequantized", out, fx(st, "dq8.deq", FT_F32, (size_t)n * 4)->data, (size_t)n * 4, 4);
    assert_true(ok);
    ft_st_close(st);
    mem_free_all();
}

static void test_int8_parity(void **state) {
    (void)state;
    ft_safetensors *st = open_fixture();
    if (!st) return;
    const ft_st_entry *ew = ft_st_find(st, "int8.w");
    assert_non_null(ew);
    int64_t rows = ew->shape[0], cols = ew->shape[1], n = rows * cols;
    printf("int8 rows: [%lld, %lld] (zero row, outlier, exact .5 ties, tiny, constant)\n", (long long)rows, (long long)cols);
    ft_q8row_tensor t;
    assert_int_equal(ft_q8row_create(&t, rows, cols), FT_OK);
    assert_int_equal(ft_q8row_quantize_ref(&t, ew->data), FT_OK);
    float *out = nans((size_t)n);
    ft_q8row_dequantize_ref(out, &t);
    int ok = check_bits("int8 codes", t.q, fx(st, "int8.q", FT_I8, (size_t)n)->data, (size_t)n, 1);
    ok &= check_bits("row absmax", t.absmax, fx(st, "int8.absmax", FT_F32, (size_t)rows * 4)->data, (size_t)rows * 4, 4);
    ok &= check_bits("dequantized", out, fx(st, "int8.deq", FT_F32, (size_t)n * 4)->data, (size_t)n * 4, 4);
    printf("  row 2 (x = k + 0.5, absmax 127): q[0..8] =");
    for (int c = 0; c < 9; c++) printf(" %d", t.q[2 * cols + c]);
    printf("\n");
    ft_q8row_destroy(&t);
    assert_true(ok);
    ft_st_close(st);
    mem_free_all();
}

/* ------------------------------------------------------------------ SIMD dequantization == ref */
static void test_simd_dequant(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 11);
    const ft_quant_isa saved = ft_quant_isa_get();
    static const int64_t shapes[][2] = {{1, 64}, {3, 192}, {17, 640}, {64, 4096}, {300, 128}};
    for (int isa = 0; isa < isa_count(); isa++) {
        assert_int_equal(ft_quant_isa_set((ft_quant_isa)isa), FT_OK);
        printf("dequantize, %s kernels\n", ft_quant_isa_name((ft_quant_isa)isa));
        int ok = 1;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
            float *w = randn(&r, (size_t)n, 0.05f);
            for (int64_t i = 0; i < n; i += 97) w[i] *= 40.0f; /* outliers */
            for (int dq = 0; dq < 2; dq++) {
                ft_nf4_tensor t;
                assert_int_equal(ft_nf4_create(&t, rows, cols, dq ? FT_NF4_DOUBLE_QUANT : 0), FT_OK);
                assert_int_equal(ft_nf4_quantize_ref(&t, w, NULL), FT_OK);
                float *ref = nans((size_t)n), *got = nans((size_t)n);
                ft_nf4_dequantize_ref(ref, &t);
                ft_nf4_dequantize(got, &t);
                char name[96];
                snprintf(name, sizeof name, "nf4 [%lld,%lld]%s", (long long)rows, (long long)cols, dq ? " dq" : "");
                ok &= check_bits(name, got, ref, (size_t)n * 4, 4);
                /* an interior tile */
                if (rows >= 3 && cols >= 192) {
                    int64_t r0 = 1, nr = rows - 2, c0 = 64, nc = cols - 128;
                    float *tile = nans((size_t)(nr * nc)), *tref = fmem((size_t)(nr * nc));
                    for (int64_t i = 0; i < nr; i++) memcpy(tref + i * nc, ref + (r0 + i) * cols + c0, (size_t)nc * 4);
                    ft_nf4_dequantize_tile(tile, (size_t)nc, &t, r0, nr, c0, nc);
                    ok &= check_bits("  tile rows 1..-1, cols 64..-64", tile, tref, (size_t)(nr * nc) * 4, 4);
                }
                ft_nf4_destroy(&t);
            }
        }
        static const int64_t q8shapes[][2] = {{1, 1}, {5, 37}, {9, 100}, {33, 1000}};
        for (size_t s = 0; s < sizeof q8shapes / sizeof q8shapes[0]; s++) {
            int64_t rows = q8shapes[s][0], cols = q8shapes[s][1], n = rows * cols;
            float *w = randn(&r, (size_t)n, 1.0f);
            ft_q8row_tensor t;
            assert_int_equal(ft_q8row_create(&t, rows, cols), FT_OK);
            assert_int_equal(ft_q8row_quantize_ref(&t, w), FT_OK);
            float *ref = nans((size_t)n), *got = nans((size_t)n);
            ft_q8row_dequantize_ref(ref, &t);
            ft_q8row_dequantize(got, &t);
            char name[96];
            snprintf(name, sizeof name, "int8 [%lld,%lld]", (long long)rows, (long long)cols);
            ok &= check_bits(name, got, ref, (size_t)n * 4, 4);
            if (cols >= 3) {
                float *tile = nans((size_t)(rows * (cols - 2))), *tref = fmem((size_t)(rows * (cols - 2)));
                for (int64_t i = 0; i < rows; i++) memcpy(tref + i * (cols - 2), ref + i * cols + 1, (size_t)(cols - 2) * 4);
                ft_q8row_dequantize_tile(tile, (size_t)(cols - 2), &t, 0, rows, 1, cols - 2);
                ok &= check_bits("  tile cols 1..-1", tile, tref, (size_t)(rows * (cols - 2)) * 4, 4);
            }
            ft_q8row_destroy(&t);
        }
        mem_free_all();
        assert_true(ok);
    }
    assert_int_equal(ft_quant_isa_set(saved), FT_OK);
}

/* ------------------------------------------------------------------ fused matmuls */
/* out[N,OC] = inp @ W^T + bias and dinp[N,C] = dout @ W in double, W the _ref dequantization */
static void ref_matmuls(float *out, float *dinp, const float *inp, const float *dout, const float *W, const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * W[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)s;
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * W[(size_t)o * C + c];
            dinp[(size_t)n * C + c] = (float)s;
        }
}

typedef struct mm_case { int N, C, OC; } mm_case;

/* kind 0: NF4 (dq), 1: NF4 without dq, 2: int8 rows */
static int check_matmuls(int kind, mm_case mc, ft_rng *r) {
    const int N = mc.N, C = mc.C, OC = mc.OC;
    float *w = randn(r, (size_t)OC * C, 0.05f);
    float *inp = randn(r, (size_t)N * C, 1.0f), *dout = randn(r, (size_t)N * OC, 1.0f), *bias = randn(r, (size_t)OC, 0.5f);
    ft_nf4_tensor t4;
    ft_q8row_tensor t8;
    float *W = fmem((size_t)OC * C);
    if (kind < 2) {
        assert_int_equal(ft_nf4_create(&t4, OC, C, kind == 0 ? FT_NF4_DOUBLE_QUANT : 0), FT_OK);
        assert_int_equal(ft_nf4_quantize_ref(&t4, w, NULL), FT_OK);
        ft_nf4_dequantize_ref(W, &t4);
    } else {
        assert_int_equal(ft_q8row_create(&t8, OC, C), FT_OK);
        assert_int_equal(ft_q8row_quantize_ref(&t8, w), FT_OK);
        ft_q8row_dequantize_ref(W, &t8);
    }
    float *oref = fmem((size_t)N * OC), *obref = fmem((size_t)N * OC), *dref = fmem((size_t)N * C);
    ref_matmuls(oref, dref, inp, dout, W, NULL, N, C, OC);
    ref_matmuls(obref, dref, inp, dout, W, bias, N, C, OC);
    /* workspaces: FAST for full; a lean one of 2 threads x 16 rows or 64 columns to force several tiles */
    size_t ws_fast = ft_quant_workspace_floats(FT_QUANT_WS_FAST, N, C, OC, 0);
    size_t ws_small = 2 * (size_t)(16 * C > OC * 64 ? 16 * C : OC * 64);
    float *ws = fmem(ws_fast > ws_small ? ws_fast : ws_small);
    int ok = 1;
    const char *kname = kind == 0 ? "nf4-dq" : kind == 1 ? "nf4" : "int8";
    for (int p = FT_QUANT_PATH_AUTO; p <= FT_QUANT_PATH_FULL; p++) {
        for (int wsk = 0; wsk < (p == FT_QUANT_PATH_TILED ? 2 : 1); wsk++) {
            size_t nws = wsk ? ws_small : ws_fast;
            float *out = nans((size_t)N * OC), *outb = nans((size_t)N * OC), *dinp = nans((size_t)N * C);
            int rc1, rc2, rc3;
            if (kind < 2) {
                rc1 = ft_nf4_matmul_forward_path(out, inp, &t4, NULL, N, ws, nws, (ft_quant_path)p);
                rc2 = ft_nf4_matmul_forward_path(outb, inp, &t4, bias, N, ws, nws, (ft_quant_path)p);
                rc3 = ft_nf4_matmul_backward_path(dinp, dout, &t4, N, ws, nws, (ft_quant_path)p);
            } else {
                rc1 = ft_q8row_matmul_forward_path(out, inp, &t8, NULL, N, ws, nws, (ft_quant_path)p);
                rc2 = ft_q8row_matmul_forward_path(outb, inp, &t8, bias, N, ws, nws, (ft_quant_path)p);
                rc3 = ft_q8row_matmul_backward_path(dinp, dout, &t8, N, ws, nws, (ft_quant_path)p);
            }
            if (rc1 || rc2 || rc3) printf("  error: %s\n", ft_last_error());
            assert_int_equal(rc1, FT_OK);
            assert_int_equal(rc2, FT_OK);
            assert_int_equal(rc3, FT_OK);
            char name[128];
            snprintf(name, sizeof name, "%s %s%s fwd", kname, ft_quant_path_name((ft_quant_path)p), wsk ? "(small ws)" : "");
            ok &= ft_check_close(name, out, oref, (size_t)N * OC, TOL);
            snprintf(name, sizeof name, "%s %s%s fwd+bias", kname, ft_quant_path_name((ft_quant_path)p), wsk ? "(small ws)" : "");
            ok &= ft_check_close(name, outb, obref, (size_t)N * OC, TOL);
            snprintf(name, sizeof name, "%s %s%s dinp", kname, ft_quant_path_name((ft_quant_path)p), wsk ? "(small ws)" : "");
            ok &= ft_check_close(name, dinp, dref, (size_t)N * C, TOL);
        }
    }
    if (kind < 2) ft_nf4_destroy(&t4);
    else ft_q8row_destroy(&t8);
    return ok;
}

static void run_matmul_tests(int kind) {
    ft_rng r;
    ft_rng_seed(&r, 100 + (uint64_t)kind);
    const ft_quant_isa saved = ft_quant_isa_get();
    const mm_case nf4_cases[] = {{1, 64, 1}, {1, 192, 37}, {3, 128, 5}, {5, 64, 70}, {9, 320, 33}, {17, 576, 100}, {70, 256, 130}};
    const mm_case q8_cases[] = {{1, 1, 1}, {1, 37, 5}, {3, 100, 9}, {5, 200, 70}, {9, 333, 33}, {17, 576, 100}, {70, 130, 45}};
    const mm_case *cases = kind < 2 ? nf4_cases : q8_cases;
    int ok = 1;
    for (int isa = 0; isa < isa_count(); isa++) {
        assert_int_equal(ft_quant_isa_set((ft_quant_isa)isa), FT_OK);
        for (int i = 0; i < 7; i++) {
            printf("%s kernels: N=%d C=%d OC=%d\n", ft_quant_isa_name((ft_quant_isa)isa), cases[i].N, cases[i].C, cases[i].OC);
            ok &= check_matmuls(kind, cases[i], &r);
            mem_free_all();
        }
    }
    assert_int_equal(ft_quant_isa_set(saved), FT_OK);
    assert_true(ok);
}
static void test_nf4_matmul(void **state) { (void)state; run_matmul_tests(0); }
static void test_nf4_nodq_matmul(void **state) { (void)state; run_matmul_tests(1); }
static void test_int8_matmul(void **state) { (void)state; run_matmul_tests(2); }

/* the direct kernels do not depend on the thread count */
static void test_direct_thread_invariance(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 5);
    const int N = 3, C = 512, OC = 300;
    float *w = randn(&r, (size_t)OC * C, 0.05f), *inp = randn(&r, (size_t)N * C, 1), *dout = randn(&r, (size_t)N * OC, 1);
    ft_nf4_tensor t;
    assert_int_equal(ft_nf4_create(&t, OC, C, FT_NF4_DOUBLE_QUANT), FT_OK);
    assert_int_equal(ft_nf4_quantize_ref(&t, w, NULL), FT_OK);
    float *o1 = nans((size_t)N * OC), *o2 = nans((size_t)N * OC), *d1 = nans((size_t)N * C), *d2 = nans((size_t)N * C);
    int nt = omp_get_max_threads();
    assert_int_equal(ft_nf4_matmul_forward_path(o1, inp, &t, NULL, N, NULL, 0, FT_QUANT_PATH_DIRECT), FT_OK);
    assert_int_equal(ft_nf4_matmul_backward_path(d1, dout, &t, N, NULL, 0, FT_QUANT_PATH_DIRECT), FT_OK);
    omp_set_num_threads(1);
    assert_int_equal(ft_nf4_matmul_forward_path(o2, inp, &t, NULL, N, NULL, 0, FT_QUANT_PATH_DIRECT), FT_OK);
    assert_int_equal(ft_nf4_matmul_backward_path(d2, dout, &t, N, NULL, 0, FT_QUANT_PATH_DIRECT), FT_OK);
    omp_set_num_threads(nt);
    printf("direct kernels, %d threads vs 1:\n", nt);
    assert_true(check_bits("nf4 direct forward", o1, o2, sizeof(float) * N * OC, 4));
    assert_true(check_bits("nf4 direct backward", d1, d2, sizeof(float) * N * C, 4));
    ft_nf4_destroy(&t);
    mem_free_all();
}

/* ------------------------------------------------------------------ sizes and errors */
static void test_memory_sizes(void **state) {
    (void)state;
    static const int64_t shapes[][2] = {{3072, 768}, {11008, 4096}};
    for (int i = 0; i < 2; i++) {
        int64_t OC = shapes[i][0], C = shapes[i][1];
        double b_dq = ft_nf4_bits_per_weight(OC, C, FT_NF4_DOUBLE_QUANT), b_nodq = ft_nf4_bits_per_weight(OC, C, 0);
        double b_q8 = 8.0 * (double)(OC * C + 4 * OC) / (double)(OC * C);
        printf("  W [%lld, %lld]: NF4+double quant %.4f bits = %.4f bytes/weight (%zu bytes allocated); NF4 %.4f bytes/weight; "
               "int8 rows %.4f bytes/weight; f32 4 bytes\n",
               (long long)OC, (long long)C, b_dq, b_dq / 8, ft_nf4_nbytes(OC, C, FT_NF4_DOUBLE_QUANT), b_nodq / 8, b_q8 / 8);
        /* 0.5 + 1/64 + 4/(64*256) bytes per weight (+ 4 bytes of offset per tensor) */
        assert_true(fabs(b_dq / 8 - (0.5 + 1.0 / 64 + 4.0 / 16384)) < 1e-5);
        assert_true(fabs(b_nodq / 8 - 0.5625) < 1e-9);
        assert_true(ft_nf4_nbytes(OC, C, FT_NF4_DOUBLE_QUANT) >= (size_t)(OC * C / 2 + OC * C / 64 + 4 * ((OC * C / 64 + 255) / 256)));
        assert_true(ft_q8row_nbytes(OC, C) >= (size_t)(OC * C + 4 * OC));
    }
    /* a buffer sized by tensor.h's ft_tensor_nbytes holds the quant layouts (awkward shapes too) */
    static const int64_t more[][2] = {{1, 64}, {3, 64}, {5, 192}, {7, 320}, {1000, 64}, {3072, 768}};
    for (int i = 0; i < 6; i++) {
        ft_tensor t4 = {FT_NF4, 2, {more[i][0], more[i][1]}, NULL}, t8 = {FT_Q8_ROW, 2, {more[i][0], more[i][1]}, NULL};
        size_t a = ft_nf4_nbytes(more[i][0], more[i][1], FT_NF4_DOUBLE_QUANT), b = ft_tensor_nbytes(&t4);
        size_t c = ft_q8row_nbytes(more[i][0], more[i][1]), d = ft_tensor_nbytes(&t8);
        printf("  [%lld, %lld]: nf4+dq %zu bytes (ft_tensor_nbytes %zu), int8 rows %zu bytes (ft_tensor_nbytes %zu)\n", (long long)more[i][0],
               (long long)more[i][1], a, b, c, d);
        assert_true(a <= b);
        assert_true(c == d);
    }
}

static void test_errors(void **state) {
    (void)state;
    ft_nf4_tensor t;
    assert_int_equal(ft_nf4_create(&t, 4, 100, FT_NF4_DOUBLE_QUANT), FT_ERR_SHAPE);
    printf("  cols %% 64: %s\n", ft_last_error());
    assert_int_equal(ft_nf4_create(&t, 0, 64, 0), FT_ERR_SHAPE);
    float buf[64];
    assert_int_equal(ft_nf4_view(&t, 1, 64, FT_NF4_DOUBLE_QUANT, (char *)buf + 1), FT_ERR_INVALID); /* floats need 4-byte alignment */
    assert_int_equal(ft_nf4_create(&t, 4, 128, FT_NF4_DOUBLE_QUANT), FT_OK);
    float w[4 * 128] = {0}, out[4 * 4], inp[3 * 128] = {0}, ws[64];
    assert_int_equal(ft_nf4_quantize_ref(&t, w, NULL), FT_OK);
    assert_int_equal(ft_nf4_matmul_forward_path(out, inp, &t, NULL, 3, ws, 64, FT_QUANT_PATH_FULL), FT_ERR_INVALID);
    printf("  full path, small workspace: %s\n", ft_last_error());
    assert_int_equal(ft_nf4_matmul_forward_path(out, inp, &t, NULL, 3, ws, 64, FT_QUANT_PATH_TILED), FT_ERR_INVALID);
    printf("  tiled path, small workspace: %s\n", ft_last_error());
    assert_int_equal(ft_nf4_matmul_backward_path(inp, out, &t, 3, NULL, 0, FT_QUANT_PATH_TILED), FT_ERR_INVALID);
    assert_int_equal(ft_nf4_matmul_forward(out, inp, &t, NULL, 0, NULL, 0), FT_ERR_SHAPE);
    assert_int_equal(ft_nf4_matmul_forward(NULL, inp, &t, NULL, 3, NULL, 0), FT_ERR_INVALID);
    /* AUTO with no workspace works for every N (direct kernels) */
    assert_int_equal(ft_nf4_matmul_forward(out, inp, &t, NULL, 3, NULL, 0), FT_OK);
    ft_nf4_destroy(&t);
    ft_nf4_destroy(&t); /* safe on a zeroed struct */
    ft_q8row_tensor q;
    assert_int_equal(ft_q8row_create(&q, 0, 5), FT_ERR_SHAPE);
    assert_int_equal(ft_quant_isa_set((ft_quant_isa)7), FT_ERR_INVALID);
}

/* ------------------------------------------------------------------ timing (FT_QUANT_TIMING=1) */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct tm_args {
    int what; /* 0 f32 fwd, 1 f32 bwd, 2 nf4 fwd, 3 nf4 bwd, 4 q8 fwd, 5 q8 bwd */
    ft_quant_path path;
    float *out, *inp, *dout, *dinp, *W, *ws;
    size_t nws;
    ft_nf4_tensor *t4;
    ft_q8row_tensor *t8;
    int N, C, OC;
} tm_args;

static void tm_run(const tm_args *a) {
    switch (a->what) {
    case 0: cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->N, a->OC, a->C, 1.0f, a->inp, a->C, a->W, a->C, 0.0f, a->out, a->OC); break;
    case 1: cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->N, a->C, a->OC, 1.0f, a->dout, a->OC, a->W, a->C, 0.0f, a->dinp, a->C); break;
    case 2: assert_int_equal(ft_nf4_matmul_forward_path(a->out, a->inp, a->t4, NULL, a->N, a->ws, a->nws, a->path), FT_OK); break;
    case 3: assert_int_equal(ft_nf4_matmul_backward_path(a->dinp, a->dout, a->t4, a->N, a->ws, a->nws, a->path), FT_OK); break;
    case 4: assert_int_equal(ft_q8row_matmul_forward_path(a->out, a->inp, a->t8, NULL, a->N, a->ws, a->nws, a->path), FT_OK); break;
    case 5: assert_int_equal(ft_q8row_matmul_backward_path(a->dinp, a->dout, a->t8, a->N, a->ws, a->nws, a->path), FT_OK); break;
    }
}

static double tm_best(const tm_args *a, double budget_s) {
    tm_run(a); /* warm-up */
    double best = INFINITY, t_end = now_s() + budget_s;
    int reps = 0;
    do {
        double t0 = now_s();
        tm_run(a);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        reps++;
    } while (now_s() < t_end || reps < 3);
    return best;
}

static void test_timing(void **state) {
    (void)state;
    const char *env = getenv("FT_QUANT_TIMING");
    if (!env || strcmp(env, "1") != 0) {
        printf("SKIP: set FT_QUANT_TIMING=1 for timings\n");
        return;
    }
    const int C = 768, OC = 3072;
    ft_rng r;
    ft_rng_seed(&r, 3);
    float *w = randn(&r, (size_t)OC * C, 0.02f);
    ft_nf4_tensor t4;
    ft_q8row_tensor t8;
    assert_int_equal(ft_nf4_create(&t4, OC, C, FT_NF4_DOUBLE_QUANT), FT_OK);
    assert_int_equal(ft_nf4_quantize_ref(&t4, w, NULL), FT_OK);
    assert_int_equal(ft_q8row_create(&t8, OC, C), FT_OK);
    assert_int_equal(ft_q8row_quantize_ref(&t8, w), FT_OK);
    float *W = fmem((size_t)OC * C);
    ft_nf4_dequantize_ref(W, &t4);
    size_t nfast = ft_quant_workspace_floats(FT_QUANT_WS_FAST, 1024, C, OC, 0);
    size_t nlean = ft_quant_workspace_floats(FT_QUANT_WS_LEAN, 1024, C, OC, 0);
    float *ws = fmem(nfast);
    printf("timing: W [%d, %d] (nn.Linear 768 -> 3072), %d threads, %s kernels; best of repeated runs\n", OC, C, omp_get_max_threads(),
           ft_quant_isa_name(ft_quant_isa_get()));
    printf("  workspace: fast %zu floats (%.1f MB), lean %zu floats (%.1f MB); weights f32 %.1f MB, NF4+dq %.2f MB, int8 %.2f MB\n", nfast,
           nfast * 4e-6, nlean, nlean * 4e-6, OC * (double)C * 4e-6, ft_nf4_nbytes(OC, C, FT_NF4_DOUBLE_QUANT) * 1e-6,
           ft_q8row_nbytes(OC, C) * 1e-6);
    {
        float *out = fmem((size_t)OC * C);
        double t0 = now_s();
        for (int i = 0; i < 10; i++) ft_nf4_dequantize(out, &t4);
        double t_nf4 = (now_s() - t0) / 10;
        t0 = now_s();
        for (int i = 0; i < 10; i++) ft_nf4_dequantize_ref(out, &t4);
        double t_ref = (now_s() - t0) / 10;
        t0 = now_s();
        for (int i = 0; i < 10; i++) ft_q8row_dequantize(out, &t8);
        double t_q8 = (now_s() - t0) / 10;
        printf("  dequantize whole W: nf4 SIMD %.3f ms (%.2f Gweights/s), nf4 _ref %.3f ms, int8 SIMD %.3f ms\n", t_nf4 * 1e3,
               OC * (double)C / t_nf4 * 1e-9, t_ref * 1e3, t_q8 * 1e3);
    }
    static const int Ns[] = {1024, 1};
    for (int ni = 0; ni < 2; ni++) {
        const int N = Ns[ni];
        float *inp = randn(&r, (size_t)N * C, 1), *dout = randn(&r, (size_t)N * OC, 1);
        float *out = fmem((size_t)N * OC), *dinp = fmem((size_t)N * C);
        double flop = 2.0 * N * C * OC;
        printf("  N=%d: [%d x %d] @ [%d x %d]  (%.2f GFLOP)\n", N, N, C, C, OC, flop * 1e-9);
        struct {
            const char *name;
            int what;
            ft_quant_path path;
            size_t nws;
        } rows[] = {
            {"f32 cblas_sgemm            fwd", 0, FT_QUANT_PATH_AUTO, 0},
            {"nf4 auto                   fwd", 2, FT_QUANT_PATH_AUTO, nfast},
            {"nf4 direct                 fwd", 2, FT_QUANT_PATH_DIRECT, 0},
            {"nf4 tiled (lean ws)        fwd", 2, FT_QUANT_PATH_TILED, nlean},
            {"nf4 full                   fwd", 2, FT_QUANT_PATH_FULL, nfast},
            {"int8 direct                fwd", 4, FT_QUANT_PATH_DIRECT, 0},
            {"int8 full                  fwd", 4, FT_QUANT_PATH_FULL, nfast},
            {"f32 cblas_sgemm            dinp", 1, FT_QUANT_PATH_AUTO, 0},
            {"nf4 auto                   dinp", 3, FT_QUANT_PATH_AUTO, nfast},
            {"nf4 direct                 dinp", 3, FT_QUANT_PATH_DIRECT, 0},
            {"nf4 tiled (lean ws)        dinp", 3, FT_QUANT_PATH_TILED, nlean},
            {"nf4 full                   dinp", 3, FT_QUANT_PATH_FULL, nfast},
            {"int8 direct                dinp", 5, FT_QUANT_PATH_DIRECT, 0},
            {"int8 full                  dinp", 5, FT_QUANT_PATH_FULL, nfast},
        };
        double base_f = 0, base_b = 0;
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            tm_args a = {rows[k].what, rows[k].path, out, inp, dout, dinp, W, ws, rows[k].nws, &t4, &t8, N, C, OC};
            double t = tm_best(&a, N == 1 ? 0.3 : 1.0);
            if (rows[k].what == 0) base_f = t;
            if (rows[k].what == 1) base_b = t;
            double base = (rows[k].what & 1) ? base_b : base_f;
            printf("    %s %9.3f ms  %7.1f GFLOP/s  %5.2fx f32\n", rows[k].name, t * 1e3, flop / t * 1e-9, base / t);
        }
        if (N == 1) break;
    }
    /* where the direct kernels stop paying: AUTO switches at N > FT_QUANT_DIRECT_MAX_N */
    printf("  crossover (AUTO: direct for N <= %d): ms for N = 2, 4, 8, 16, 32\n", FT_QUANT_DIRECT_MAX_N);
    static const int sweep[] = {2, 4, 8, 16, 32};
    for (int what = 2; what <= 3; what++) {
        for (int pi = 0; pi < 3; pi++) {
            static const ft_quant_path ps[] = {FT_QUANT_PATH_DIRECT, FT_QUANT_PATH_FULL, FT_QUANT_PATH_AUTO};
            printf("    nf4 %-6s %-4s", ft_quant_path_name(ps[pi]), what == 2 ? "fwd" : "dinp");
            for (int si = 0; si < 5; si++) {
                const int N = sweep[si];
                float *inp = randn(&r, (size_t)N * C, 1), *dout = randn(&r, (size_t)N * OC, 1);
                float *out = fmem((size_t)N * OC), *dinp = fmem((size_t)N * C);
                tm_args a = {what, ps[pi], out, inp, dout, dinp, W, ws, nfast, &t4, &t8, N, C, OC};
                printf(" %8.3f", tm_best(&a, 0.2) * 1e3);
            }
            printf("\n");
        }
    }
    ft_nf4_destroy(&t4);
    ft_q8row_destroy(&t8);
    mem_free_all();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nf4_codebook),
        cmocka_unit_test(test_dynamic_map),
        cmocka_unit_test(test_nf4_parity),
        cmocka_unit_test(test_blockwise8_parity),
        cmocka_unit_test(test_int8_parity),
        cmocka_unit_test(test_simd_dequant),
        cmocka_unit_test(test_nf4_matmul),
        cmocka_unit_test(test_nf4_nodq_matmul),
        cmocka_unit_test(test_int8_matmul),
        cmocka_unit_test(test_direct_thread_invariance),
        cmocka_unit_test(test_memory_sizes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_timing),
    };
    printf("quant kernels: best instruction set %s\n", ft_quant_isa_name(ft_quant_isa_best()));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
