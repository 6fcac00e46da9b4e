/* test_bench_cli.c — `finetune bench` end to end ($BUILD/finetune) on stories260K's shape (tiny and fast): the
 * lines the bench scripts read (train:, train_gflops:, generate:, peak_rss:) with positive numbers; --precision bf16
 * switches both timings (the training step's bf16 matmuls and the generation's bf16 weights) where the CPU
 * has AVX512-BF16; --skip-train; --adapters (batched decoding gives the one-by-one ids); --model; the removed
 * --gen-precision and a bad --precision refused. No timing is asserted (a shared machine). */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE "--config models/stories260K/config.json --batch-size 2 --seq-len 32 --steps 1 --gen-tokens 8 --threads 2"

/* the number after "key: " in out, -1 when absent */
static double value(const char *out, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\n%s: ", key);
    const char *p = strstr(out, k);
    if (!p && !strncmp(out, k + 1, strlen(k + 1))) p = out - 1;
    return p ? atof(p + strlen(k)) : -1;
}

static int bf16_ok(void) {
    const ft_backend *be;
    return ft_backend_for_precision("bf16", &be) == FT_OK;
}

static void test_lines_and_precision(void **state) {
    (void)state;
    char *out;
    assert_int_equal(ft_test_finetune(&out, "bench " SHAPE), 0);
    printf("  f32: train %.1f tok/s, %.2f GFLOP/s, generate %.1f tok/s, peak RSS %.1f MB\n", value(out, "train"),
           value(out, "train_gflops"), value(out, "generate"), value(out, "peak_rss"));
    assert_true(value(out, "train") > 0 && value(out, "train_gflops") > 0 && value(out, "generate") > 0 && value(out, "peak_rss") > 0);
    assert_non_null(strstr(out, "precision f32"));
    assert_non_null(strstr(out, "generation with f32 weights"));
    free(out);
    /* one flag for both timings */
    int rc = ft_test_finetune(&out, "bench " SHAPE " --precision bf16");
    if (bf16_ok()) {
        assert_int_equal(rc, 0);
        assert_non_null(strstr(out, "precision bf16"));
        assert_non_null(strstr(out, "generation with bf16 weights"));
        assert_true(value(out, "train") > 0 && value(out, "generate") > 0);
        printf("  bf16: train %.1f tok/s, generate %.1f tok/s\n", value(out, "train"), value(out, "generate"));
    } else {
        printf("  this CPU has no AVX512-BF16: --precision bf16 refused\n");
        assert_int_not_equal(rc, 0);
    }
    free(out);
    /* generation only: the model is made in bf16 (needs only AVX-512, as finetune generate --precision bf16) */
    rc = ft_test_finetune(&out, "bench " SHAPE " --skip-train --precision bf16");
    if (rc == 0) {
        assert_non_null(strstr(out, "generation with bf16 weights"));
        assert_true(value(out, "train") < 0 && value(out, "generate") > 0);
    }
    free(out);
}

static void test_refused(void **state) {
    (void)state;
    char *out;
    assert_int_equal(ft_test_finetune(&out, "bench " SHAPE " --gen-precision bf16"), 2);
    assert_non_null(strstr(out, "--gen-precision"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "bench " SHAPE " --precision fp8"), 2);
    assert_non_null(strstr(out, "--precision must be f32, bf16 or auto (got 'fp8')"));
    free(out);
}

static void test_adapters_and_model(void **state) {
    (void)state;
    char *out;
    assert_int_equal(ft_test_finetune(&out, "bench --config models/stories260K/config.json --adapters 3 --gen-tokens 6 --threads 2"), 0);
    assert_non_null(strstr(out, "generated ids identical"));
    assert_true(value(out, "adapters_batched") > 0 && value(out, "adapters_sequential") > 0);
    free(out);
    /* a stored model: prefill, decode and the greedy ids */
    char *f32 = NULL;
    assert_int_equal(ft_test_finetune(&f32, "bench --model models/stories260K --prompt-len 8 --gen-tokens 8 --steps 1 --threads 2"), 0);
    assert_true(value(f32, "prefill") > 0 && value(f32, "decode") > 0);
    const char *ids = strstr(f32, "\nids: ");
    assert_non_null(ids);
    int n = 0;
    for (const char *p = ids + 6; *p && *p != '\n'; p++) n += (*p != ' ') && (p[-1] == ' ');
    printf("  --model stories260K: %d greedy ids\n", n);
    assert_int_equal(n, 8);
    free(f32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_precision),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_adapters_and_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
