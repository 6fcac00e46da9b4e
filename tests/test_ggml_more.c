/* test_ggml_more.c — the ggml types read as f32 at load time (ggml_dequant_more.c: Q4_1, Q5_0, Q5_1, Q5_K,
 * Q6_K) against gguf-py's dequantizers on random blocks (tests/fixtures/ggml/dequant_more.bin, written by
 * tests/parity/make_ggml_more_fixture.py): the same float operations, so equal to 1e-6 of the value; a
 * Q5_0 block with hand-made values; and a model exported with --type q4_k (whose 64-value rows fall back to
 * Q5_0 / F16, as llama.cpp's quantize does) generating the same ids as the f32 export. */
#include "testutil.h"

#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "quant/ggml_more.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void test_against_gguf_py(void **state) {
    (void)state;
    if (!ft_fixture_present("ggml/dequant_more.bin")) return;
    char *text = NULL;
    size_t size = 0;
    assert_int_equal(ft_file_read_all(ft_fixture("ggml/dequant_more.bin"), &text, &size), FT_OK);
    uint8_t *buf = (uint8_t *)text;
    const uint8_t *p = buf;
    uint32_t n_rec = rd32(p);
    p += 4;
    assert_int_equal(n_rec, 5);
    for (uint32_t r = 0; r < n_rec; r++) {
        int type = (int)rd32(p), blocks = (int)rd32(p + 4), nb = (int)rd32(p + 8), nv = (int)rd32(p + 12);
        p += 16;
        int bv, bb;
        assert_true(ft__ggml_more_block(type, &bv, &bb));
        assert_int_equal(bv, nv);
        assert_int_equal(bb, nb);
        const uint8_t *raw = p;
        p += (size_t)blocks * nb;
        float *want = malloc(sizeof(float) * (size_t)blocks * nv), *got = malloc(sizeof(float) * (size_t)blocks * nv);
        assert_non_null(want);
        assert_non_null(got);
        memcpy(want, p, sizeof(float) * (size_t)blocks * nv);
        p += sizeof(float) * (size_t)blocks * nv;
        for (int i = 0; i < blocks * nv; i++) got[i] = NAN;
        assert_true(ft__ggml_more_dequantize(type, raw, got, (int64_t)blocks * nv));
        double worst = 0;
        for (int i = 0; i < blocks * nv; i++) {
            double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) > 1 ? fabs(want[i]) : 1);
            if (!(e <= worst)) worst = e;
        }
        printf("  ggml type %2d: %d blocks, max rel error vs gguf-py %.3g\n", type, blocks, worst);
        assert_true(worst <= 1e-6);
        free(want);
        free(got);
    }
    assert_true(p == buf + size);
    free(buf);
}

/* Q5_0 by hand: d = 0.5, value j = j - 16 for j < 16 (high bit clear) and value j+16 = j (high bit set) */
static void test_q5_0_by_hand(void **state) {
    (void)state;
    uint8_t b[22] = {0};
    uint16_t h = 0x3800;   /* 0.5 in f16 */
    memcpy(b, &h, 2);
    uint32_t qh = 0xFFFF0000u;   /* bits 16..31: the high bit of values 16..31 */
    for (int k = 0; k < 4; k++) b[2 + k] = (uint8_t)(qh >> (8 * k));
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | j << 4);
    float y[32];
    assert_true(ft__ggml_more_dequantize(FT_GGML_Q5_0, b, y, 32));
    for (int j = 0; j < 16; j++) {
        assert_float_equal(y[j], 0.5f * (float)(j - 16), 0);
        assert_float_equal(y[j + 16], 0.5f * (float)(j + 16 - 16), 0);
    }
    assert_false(ft__ggml_more_dequantize(FT_GGML_Q5_0, b, y, 31));   /* not a whole block */
    assert_false(ft__ggml_more_dequantize(2, b, y, 32));                   /* Q4_0 is not one of these */
}

/* the embedded model exported as q4_k (every matrix falls back to Q5_0 / F16) generates what the f32 export does */
static void test_q4_k_export_reads_back(void **state) {
    (void)state;
    char dir[512], cmd[2048], *out = NULL, *ids_f32 = NULL, *ids_q = NULL;
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "ggml_more"), 0);
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    assert_int_equal(ft_test_finetune(&out, "export --type f32 --out %s/f32.gguf", dir), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "export --type q4_k --out %s/q4k.gguf", dir), 0);
    assert_non_null(strstr(out, "Q5_0"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s/finetune generate --model %s/f32.gguf --prompt 'Once upon a time' --max-tokens 24 --temperature 0 --ids 2>/dev/null", build, dir);
    assert_int_equal(ft_test_run(cmd, &ids_f32), 0);
    snprintf(cmd, sizeof cmd, "%s/finetune generate --model %s/q4k.gguf --prompt 'Once upon a time' --max-tokens 24 --temperature 0 --ids 2>/dev/null", build, dir);
    assert_int_equal(ft_test_run(cmd, &ids_q), 0);
    printf("  f32:  %s  q4_k: %s", ids_f32, ids_q);
    assert_true(strlen(ids_q) > 10);
    /* Q5_0 weights are close, not equal: the first ids agree */
    assert_memory_equal(ids_f32, ids_q, 10);
    free(ids_f32);
    free(ids_q);
    ft_test_tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_gguf_py),
        cmocka_unit_test(test_q5_0_by_hand),
        cmocka_unit_test(test_q4_k_export_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
