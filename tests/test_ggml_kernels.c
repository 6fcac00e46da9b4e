/* test_ggml_kernels.c — the matmuls over ggml's quantized blocks (ggml_quant.h): Q8_0, Q4_0, Q4_K.
 *
 *  - dequantization: the scalar reference against gguf-py's dequantize on the same blocks
 *    (tests/fixtures/ggml/dequant.bin, tests/parity/make_ggml_fixtures.py): bit-identical; hand-made
 *    blocks with known values (Q4_K's packed 6-bit scales); every SIMD table bit-identical to the
 *    reference on random blocks;
 *  - forward on every path (direct with f32 activations, direct with int8 activations, tiled, full) and
 *    every instruction set this CPU has, odd shapes (OC not a multiple of 4, single blocks, N = 1..17),
 *    with and without bias, against "dequantize with _ref, then matmul in double":
 *      f32 paths <= 1e-5 of max |ref|; int8 activations <= 1e-2 of max_o sum_c |x_c w_oc| (the rounding
 *      of the activations to 8 bits bounds the error by that sum / 254; the measured error is printed) and every SIMD table within 1e-5 of the scalar
 *      int8 table (the same integer dot products, another float summation order);
 *  - the direct path gives the same bits on 1 and 2 threads; backward (input gradient) vs double;
 *  - the interleaved layout (groups of 16 rows) dequantizes to the same bits and multiplies within 1e-5 of
 *    the plain layout on every path, instruction set and row count (whole groups, tails, one partial group);
 *  - argument errors. Outputs are pre-filled with NaN so a kernel that does not assign fails. */
#include "testutil.h"

#include "finetune/ggml_quant.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "quant/ggml_blocks.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int k_types[3] = {FT_GGML_Q8_0, FT_GGML_Q4_0, FT_GGML_Q4_K};
static const char *type_name(int t) { return t == FT_GGML_Q8_0 ? "Q8_0" : t == FT_GGML_Q4_0 ? "Q4_0" : "Q4_K"; }

/* random blocks: random payload bytes, scales set to small positive halves (random bytes could be NaN) */
static void *random_blocks(ft_rng *r, int type, int64_t rows, int64_t cols) {
    size_t rb = ft_ggml_row_bytes(type, cols), n = rb * (size_t)rows;
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(ft_rng_u32(r) >> 24);
    int bb = ft_ggml_block_bytes(type);
    for (size_t off = 0; off < n; off += (size_t)bb) {
        uint16_t d = ft_f32_to_f16(1e-3f + 1e-2f * ft_rng_uniform(r)), dmin = ft_f32_to_f16(1e-3f * ft_rng_uniform(r));
        memcpy(p + off, &d, 2);
        if (type == FT_GGML_Q4_K) memcpy(p + off + 2, &dmin, 2);
    }
    return p;
}

static int set_isa(ft_quant_isa isa) { return ft_quant_isa_set(isa) == FT_OK; }

/* ------------------------------------------------------------------ dequantization */

static void test_dequant_vs_gguf_py(void **state) {
    (void)state;
    if (!ft_fixture_present("ggml/dequant.bin")) { skip(); return; }
    FILE *f = fopen(ft_fixture("ggml/dequant.bin"), "rb");
    assert_non_null(f);
    int nrec = 0;
    uint32_t h[4];
    while (fread(h, 4, 4, f) == 4) {
        int type = (int)h[0];
        int64_t rows = h[1], cols = h[2];
        assert_int_equal(h[3], ft_ggml_row_bytes(type, cols) * (size_t)rows);
        uint8_t *q = malloc(h[3]);
        float *want = malloc(sizeof(float) * (size_t)(rows * cols)), *got = malloc(sizeof(float) * (size_t)(rows * cols));
        assert_true(q && want && got);
        assert_int_equal(fread(q, 1, h[3], f), h[3]);
        assert_int_equal(fread(want, sizeof(float), (size_t)(rows * cols), f), (size_t)(rows * cols));
        for (int64_t r = 0; r < rows; r++)
            ft_ggml_dequantize_row_ref(type, q + (size_t)r * ft_ggml_row_bytes(type, cols), got + r * cols, cols);
        int bad = 0;
        for (int64_t i = 0; i < rows * cols; i++)
            if (memcmp(&got[i], &want[i], 4) != 0 && bad++ < 3)
                printf("  %s value %lld: got %.9g, gguf-py %.9g\n", type_name(type), (long long)i, got[i], want[i]);
        printf("  %s: %lld values bit-identical to gguf-py: %s\n", type_name(type), (long long)(rows * cols), bad ? "NO" : "yes");
        assert_int_equal(bad, 0);
        free(q); free(want); free(got);
        nrec++;
    }
    fclose(f);
    assert_int_equal(nrec, 3);
}

/* packs 8 six-bit scales and mins the way ggml's Q4_K quantizer does */
static void pack_q4k_scales(uint8_t out[12], const uint8_t sc[8], const uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

static void test_dequant_known_values(void **state) {
    (void)state;
    float y[256];
    ft_block_q8_0 b8 = {ft_f32_to_f16(0.5f), {0}};
    for (int j = 0; j < 32; j++) b8.qs[j] = (int8_t)(j - 16);
    ft_ggml_dequantize_row_ref(FT_GGML_Q8_0, &b8, y, 32);
    for (int j = 0; j < 32; j++) assert_float_equal(y[j], 0.5f * (float)(j - 16), 0);
    ft_block_q4_0 b4 = {ft_f32_to_f16(2.0f), {0}};
    for (int j = 0; j < 16; j++) b4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    ft_ggml_dequantize_row_ref(FT_GGML_Q4_0, &b4, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_float_equal(y[j], 2.0f * (float)(j - 8), 0);
        assert_float_equal(y[16 + j], 2.0f * (float)(15 - j - 8), 0);
    }
    ft_block_q4_K bk;
    memset(&bk, 0, sizeof bk);
    bk.d = ft_f32_to_f16(0.25f);
    bk.dmin = ft_f32_to_f16(0.125f);
    uint8_t sc[8] = {1, 7, 63, 32, 17, 48, 5, 60}, m[8] = {0, 3, 62, 31, 16, 33, 63, 2};
    pack_q4k_scales(bk.scales, sc, m);
    for (int l = 0; l < 128; l++) bk.qs[l] = (uint8_t)((l % 16) | (((l / 2) % 16) << 4));
    ft_ggml_dequantize_row_ref(FT_GGML_Q4_K, &bk, y, 256);
    for (int i = 0; i < 256; i++) {
        int c = i / 64, hi = (i % 64) >= 32, l = i % 32, j = 2 * c + hi;
        uint8_t byte = bk.qs[32 * c + l];
        int nib = hi ? byte >> 4 : byte & 0xF;
        float want = 0.25f * (float)sc[j] * (float)nib - 0.125f * (float)m[j];
        assert_float_equal(y[i], want, 0);
    }
}

static void test_simd_dequant(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 7);
    for (int isa = FT_QUANT_ISA_SCALAR; isa <= (int)ft_quant_isa_best(); isa++) {
        assert_true(set_isa((ft_quant_isa)isa));
        for (int ti = 0; ti < 3; ti++) {
            int type = k_types[ti];
            int64_t rows = 5, cols = type == FT_GGML_Q4_K ? 768 : 96;
            void *q = random_blocks(&r, type, rows, cols);
            ft_ggml_tensor t;
            assert_int_equal(ft_ggml_tensor_init(&t, type, rows, cols, q), FT_OK);
            float *ref = malloc(sizeof(float) * (size_t)(rows * cols)), *got = malloc(sizeof(float) * (size_t)(rows * cols));
            for (int64_t i = 0; i < rows; i++) ft_ggml_dequantize_row_ref(type, (uint8_t *)q + i * t.row_bytes, ref + i * cols, cols);
            ft_ggml_dequantize(got, &t);
            assert_memory_equal(got, ref, sizeof(float) * (size_t)(rows * cols));
            ft_ggml_dequantize_rows(got, (size_t)cols, &t, 2, 3);
            assert_memory_equal(got, ref + 2 * cols, sizeof(float) * (size_t)(3 * cols));
            free(q); free(ref); free(got);
        }
        printf("  %s (%s): dequantization bit-identical to the reference\n", ft_quant_isa_name((ft_quant_isa)isa), ft_ggml_kernels_name());
    }
    assert_true(set_isa(ft_quant_isa_best()));
}

/* ------------------------------------------------------------------ matmul */

/* out_ref[N, OC] in double from the _ref-dequantized weight; mag (may be NULL): the largest sum of
 * |x_c w_oc| over the outputs, the scale of the int8 activations' rounding error */
static void ref_matmul(double *out, const float *inp, const ft_ggml_tensor *t, const float *bias, int N, double *mag) {
    int64_t OC = t->rows, C = t->cols;
    float *w = malloc(sizeof(float) * (size_t)(OC * C));
    for (int64_t o = 0; o < OC; o++) ft_ggml_dequantize_row_ref(t->type, (const uint8_t *)t->data + o * t->row_bytes, w + o * C, C);
    for (int n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0, a = 0;
            for (int64_t c = 0; c < C; c++) {
                s += (double)inp[n * C + c] * w[o * C + c];
                a += fabs((double)inp[n * C + c] * w[o * C + c]);
            }
            out[n * OC + o] = s;
            if (mag && a > *mag) *mag = a;
        }
    free(w);
}

static double rel_err(const float *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= num)) num = e;   /* NaN propagates */
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

static double rel_err_f(const float *got, const float *ref, size_t n) {
    double *r = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) r[i] = ref[i];
    double e = rel_err(got, r, n);
    free(r);
    return e;
}

static void test_forward(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 11);
    const int Ns[] = {1, 2, 3, 8, 9, 17};
    const int64_t OCs[] = {1, 37, 130};
    double worst_q8[3] = {0};
    for (int ti = 0; ti < 3; ti++) {
        int type = k_types[ti];
        const int64_t Cs[2] = {type == FT_GGML_Q4_K ? 256 : 32, type == FT_GGML_Q4_K ? 768 : 160};
        for (int ci = 0; ci < 2; ci++)
            for (int oi = 0; oi < 3; oi++)
                for (int ni = 0; ni < 6; ni++) {
                    int64_t C = Cs[ci], OC = OCs[oi];
                    int N = Ns[ni];
                    void *q = random_blocks(&r, type, OC, C);
                    ft_ggml_tensor t;
                    assert_int_equal(ft_ggml_tensor_init(&t, type, OC, C, q), FT_OK);
                    float *inp = malloc(sizeof(float) * (size_t)(N * C)), *bias = malloc(sizeof(float) * (size_t)OC);
                    for (int64_t i = 0; i < N * C; i++) inp[i] = ft_rng_normal(&r);
                    inp[0] = 9.0f;   /* an outlier in the first activation block */
                    for (int64_t i = 0; i < OC; i++) bias[i] = ft_rng_normal(&r);
                    const float *bs = (ni % 2) ? bias : NULL;
                    double *ref = malloc(sizeof(double) * (size_t)(N * OC));
                    double mag = 0;
                    ref_matmul(ref, inp, &t, bs, N, &mag);
                    size_t wsn = (size_t)(OC * C) + 64 * (size_t)C * 4;
                    float *ws = malloc(sizeof(float) * wsn), *out = malloc(sizeof(float) * (size_t)(N * OC));
                    float *q8_scalar = malloc(sizeof(float) * (size_t)(N * OC));
                    for (int isa = FT_QUANT_ISA_SCALAR; isa <= (int)ft_quant_isa_best(); isa++) {
                        assert_true(set_isa((ft_quant_isa)isa));
                        for (int exact = 1; exact >= 0; exact--) {
                            ft_ggml_set_exact(exact);
                            for (int64_t i = 0; i < N * OC; i++) out[i] = NAN;
                            assert_int_equal(ft_ggml_matmul_forward_path(out, inp, &t, bs, N, ws, wsn, FT_QUANT_PATH_DIRECT), FT_OK);
                            double e = rel_err(out, ref, (size_t)(N * OC));
                            if (exact) {
                                if (e > 1e-5) printf("  %s %s direct f32 C=%lld OC=%lld N=%d: %.3g\n", ft_quant_isa_name((ft_quant_isa)isa),
                                                     type_name(type), (long long)C, (long long)OC, N, e);
                                assert_true(e <= 1e-5);
                            } else {
                                double den = 0;   /* relative to the largest sum of |x_c w_oc| (see the header) */
                                for (int64_t i = 0; i < N * OC; i++) den = fmax(den, fabs(ref[i]));
                                e = e * den / mag;
                                if (e > worst_q8[ti]) worst_q8[ti] = e;
                                if (e > 1e-2) printf("  %s %s direct int8 C=%lld OC=%lld N=%d: %.3g\n", ft_quant_isa_name((ft_quant_isa)isa), type_name(type), (long long)C, (long long)OC, N, e);
                                assert_true(e <= 1e-2);
                                if (isa == FT_QUANT_ISA_SCALAR) memcpy(q8_scalar, out, sizeof(float) * (size_t)(N * OC));
                                else assert_true(rel_err_f(out, q8_scalar, (size_t)(N * OC)) <= 1e-5);
                            }
                        }
                        const ft_quant_path paths[2] = {FT_QUANT_PATH_TILED, FT_QUANT_PATH_FULL};
                        for (int p = 0; p < 2; p++) {
                            for (int64_t i = 0; i < N * OC; i++) out[i] = NAN;
                            assert_int_equal(ft_ggml_matmul_forward_path(out, inp, &t, bs, N, ws, wsn, paths[p]), FT_OK);
                            assert_true(rel_err(out, ref, (size_t)(N * OC)) <= 1e-5);
                        }
                    }
                    ft_ggml_set_exact(0);
                    assert_true(set_isa(ft_quant_isa_best()));
                    /* AUTO without a workspace (DIRECT for every N) */
                    for (int64_t i = 0; i < N * OC; i++) out[i] = NAN;
                    assert_int_equal(ft_ggml_matmul_forward(out, inp, &t, bs, N, NULL, 0), FT_OK);
                    {
                        double den = 0;
                        for (int64_t i = 0; i < N * OC; i++) den = fmax(den, fabs(ref[i]));
                        assert_true(rel_err(out, ref, (size_t)(N * OC)) * den / mag <= 1e-2);
                    }
                    free(q); free(inp); free(bias); free(ref); free(ws); free(out); free(q8_scalar);
                }
    }
    for (int ti = 0; ti < 3; ti++)
        printf("  %s: int8 activations vs f32 reference, worst max-norm relative error %.2e\n", type_name(k_types[ti]), worst_q8[ti]);
}

static void test_direct_thread_invariance(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 3);
    int64_t OC = 1024, C = 512;
    for (int ti = 0; ti < 3; ti++) {
        void *q = random_blocks(&r, k_types[ti], OC, C);
        ft_ggml_tensor t;
        assert_int_equal(ft_ggml_tensor_init(&t, k_types[ti], OC, C, q), FT_OK);
        float inp[2 * 512], a[2 * 1024], b[2 * 1024];
        for (int i = 0; i < 2 * 512; i++) inp[i] = ft_rng_normal(&r);
        for (int exact = 0; exact < 2; exact++) {
            ft_ggml_set_exact(exact);
            int saved = omp_get_max_threads();
            omp_set_num_threads(1);
            assert_int_equal(ft_ggml_matmul_forward(a, inp, &t, NULL, 2, NULL, 0), FT_OK);
            omp_set_num_threads(2);
            assert_int_equal(ft_ggml_matmul_forward(b, inp, &t, NULL, 2, NULL, 0), FT_OK);
            omp_set_num_threads(saved);
            assert_memory_equal(a, b, sizeof a);
        }
        ft_ggml_set_exact(0);
        free(q);
    }
}

static void test_backward(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 5);
    for (int ti = 0; ti < 3; ti++) {
        int type = k_types[ti];
        int64_t OC = 70, C = type == FT_GGML_Q4_K ? 512 : 96;
        int N = 3;
        void *q = random_blocks(&r, type, OC, C);
        ft_ggml_tensor t;
        assert_int_equal(ft_ggml_tensor_init(&t, type, OC, C, q), FT_OK);
        float *w = malloc(sizeof(float) * (size_t)(OC * C)), dout[3 * 70], *dinp = malloc(sizeof(float) * (size_t)(N * C));
        double *ref = malloc(sizeof(double) * (size_t)(N * C));
        for (int64_t o = 0; o < OC; o++) ft_ggml_dequantize_row_ref(type, (uint8_t *)q + o * t.row_bytes, w + o * C, C);
        for (int i = 0; i < N * OC; i++) dout[i] = ft_rng_normal(&r);
        for (int n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t o = 0; o < OC; o++) s += (double)dout[n * OC + o] * w[o * C + c];
                ref[n * C + c] = s;
            }
        size_t wsns[3] = {0, (size_t)(7 * C), (size_t)(OC * C)};   /* none (row blocks on the heap), partial, whole */
        for (int k = 0; k < 3; k++) {
            float *ws = wsns[k] ? malloc(sizeof(float) * wsns[k]) : NULL;
            for (int64_t i = 0; i < N * C; i++) dinp[i] = NAN;
            assert_int_equal(ft_ggml_matmul_backward(dinp, dout, &t, N, ws, wsns[k]), FT_OK);
            assert_true(rel_err(dinp, ref, (size_t)(N * C)) <= 1e-5);
            free(ws);
        }
        free(q); free(w); free(dinp); free(ref);
    }
}

/* the interleaved layout (ft_ggml_tensor_interleave): the same values, the same products as the plain one */
static void test_interleaved(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 13);
    const int64_t OCs[3] = {16, 37, 130};
    for (int ti = 0; ti < 3; ti++)
        for (int oi = 0; oi < 3; oi++) {
            int type = k_types[ti];
            int64_t OC = OCs[oi], C = type == FT_GGML_Q4_K ? 512 : 96;
            void *q = random_blocks(&r, type, OC, C);
            size_t nbytes = ft_ggml_row_bytes(type, C) * (size_t)OC;
            void *qi = malloc(nbytes);
            memcpy(qi, q, nbytes);
            ft_ggml_tensor t, ti_;
            assert_int_equal(ft_ggml_tensor_init(&t, type, OC, C, q), FT_OK);
            assert_int_equal(ft_ggml_tensor_init(&ti_, type, OC, C, qi), FT_OK);
            assert_int_equal(ft_ggml_tensor_interleave(&ti_, qi), FT_OK);
            assert_int_equal(ti_.interleaved, 1);
            if (OC >= 16) assert_memory_not_equal(q, qi, nbytes);
            float *a = malloc(sizeof(float) * (size_t)(OC * C)), *b = malloc(sizeof(float) * (size_t)(OC * C));
            ft_ggml_dequantize_rows_ref(a, (size_t)C, &t, 0, OC);
            ft_ggml_dequantize_rows_ref(b, (size_t)C, &ti_, 0, OC);
            assert_memory_equal(a, b, sizeof(float) * (size_t)(OC * C));
            for (int isa = FT_QUANT_ISA_SCALAR; isa <= (int)ft_quant_isa_best(); isa++) {
                assert_true(set_isa((ft_quant_isa)isa));
                ft_ggml_dequantize(b, &ti_);
                assert_memory_equal(a, b, sizeof(float) * (size_t)(OC * C));
                const int Ns[4] = {1, 3, 9, 40};
                for (int ni = 0; ni < 4; ni++)
                    for (int exact = 0; exact < 2; exact++) {
                        int N = Ns[ni];
                        ft_ggml_set_exact(exact);
                        float *x = malloc(sizeof(float) * (size_t)(N * C)), *y0 = malloc(sizeof(float) * (size_t)(N * OC)),
                              *y1 = malloc(sizeof(float) * (size_t)(N * OC)), *bias = malloc(sizeof(float) * (size_t)OC);
                        for (int64_t i = 0; i < N * C; i++) x[i] = ft_rng_normal(&r);
                        for (int64_t i = 0; i < OC; i++) bias[i] = ft_rng_normal(&r);
                        for (int64_t i = 0; i < N * OC; i++) y1[i] = NAN;
                        assert_int_equal(ft_ggml_matmul_forward(y0, x, &t, bias, N, NULL, 0), FT_OK);
                        assert_int_equal(ft_ggml_matmul_forward(y1, x, &ti_, bias, N, NULL, 0), FT_OK);
                        double e = rel_err_f(y1, y0, (size_t)(N * OC));
                        if (e > 1e-5) printf("  interleaved %s OC=%lld N=%d exact=%d isa %d: %.3g\n", type_name(type), (long long)OC, N, exact, isa, e);
                        assert_true(e <= 1e-5);
                        free(x); free(y0); free(y1); free(bias);
                    }
                ft_ggml_set_exact(0);
            }
            assert_true(set_isa(ft_quant_isa_best()));
            /* backward and the sgemm paths read rows through the same accessor */
            float dout[3 * 130], d0[3 * 512], d1[3 * 512], *ws = malloc(sizeof(float) * (size_t)(OC * C));
            for (int64_t i = 0; i < 3 * OC; i++) dout[i] = ft_rng_normal(&r);
            assert_int_equal(ft_ggml_matmul_backward(d0, dout, &t, 3, ws, (size_t)(OC * C)), FT_OK);
            assert_int_equal(ft_ggml_matmul_backward(d1, dout, &ti_, 3, ws, (size_t)(OC * C)), FT_OK);
            assert_memory_equal(d0, d1, sizeof(float) * 3 * (size_t)C);
            free(q); free(qi); free(a); free(b); free(ws);
        }
}

static void test_errors(void **state) {
    (void)state;
    ft_ggml_tensor t;
    uint8_t buf[144] = {0};
    assert_int_equal(ft_ggml_tensor_init(&t, 3 /* Q4_1 */, 1, 32, buf), FT_ERR_UNSUPPORTED);
    assert_int_equal(ft_ggml_tensor_init(&t, FT_GGML_Q4_K, 1, 32, buf), FT_ERR_SHAPE);
    assert_int_equal(ft_ggml_tensor_init(&t, FT_GGML_Q8_0, 1, 33, buf), FT_ERR_SHAPE);
    assert_int_equal(ft_ggml_row_bytes(FT_GGML_Q4_0, 64), 36);
    assert_int_equal(ft_ggml_row_bytes(FT_GGML_Q4_K, 100), 0);
    assert_int_equal(ft_ggml_tensor_init(&t, FT_GGML_Q8_0, 2, 32, buf), FT_OK);
    float x[32] = {0}, y[2];
    assert_int_equal(ft_ggml_matmul_forward(y, x, &t, NULL, 0, NULL, 0), FT_ERR_SHAPE);
    assert_int_equal(ft_ggml_matmul_forward(NULL, x, &t, NULL, 1, NULL, 0), FT_ERR_INVALID);
    assert_int_equal(ft_ggml_matmul_forward_path(y, x, &t, NULL, 1, NULL, 0, FT_QUANT_PATH_FULL), FT_ERR_INVALID);
    t.row_bytes = 7;
    assert_int_equal(ft_ggml_matmul_forward(y, x, &t, NULL, 1, NULL, 0), FT_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_vs_gguf_py),
        cmocka_unit_test(test_dequant_known_values),
        cmocka_unit_test(test_simd_dequant),
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_direct_thread_invariance),
        cmocka_unit_test(test_backward),
        cmocka_unit_test(test_interleaved),
        cmocka_unit_test(test_errors),
    };
    printf("ggml kernels: best instruction set %s, kernels %s\n", ft_quant_isa_name(ft_quant_isa_best()), ft_ggml_kernels_name());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
