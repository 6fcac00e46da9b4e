/* test_train_bf16.c — `finetune train --precision bf16` end to end (the bf16 matmuls of gemm_bf16.h in the
 * model's linear layers, everything else f32):
 *  - a 300-step fine-tune of a small GPT-2 (tests/fixtures/train_bf16/gpt2_small, random init) in bf16
 *    ends within 1% of the f32 run's validation loss, and is not the f32 run (the flag took effect);
 *  - the default job (the embedded stories260K on fun-dialogues, 3 epochs) in bf16 reaches the f32 run's
 *    perplexity band: within 3% of it and below 8 (README: "about 32 -> 6");
 *  - LoRA and QLoRA (int8 and NF4 bases, their matmuls in bf16) runs in bf16 end within 1% of their f32 runs;
 *  - a run started in f32 continues in bf16 (--resume RUN --precision bf16) and back in f32; the
 *    checkpoints and the final model stay f32;
 *  - --dry-run shows the bf16 packing workspace and its predicted peak RSS is within 10% of the run's;
 *    the default (--precision auto) is bf16 exactly where the CPU has AVX512-BF16;
 *  - a bad --precision fails with a message naming the option.
 * Every bf16 case skips on a CPU without AVX-512 (ft_backend_for_precision refuses bf16 there). */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/gemm_bf16.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "build"
#endif
#define TMP FT_BUILD_DIR "/tmp/ft_bf16_"

static const char *k_gpt2 = "--model tests/fixtures/train_bf16/gpt2_small --init random --data tests/fixtures/train/basketball_coach.json "
                            "--seq-len 64 --batch-size 8 --lr 1e-3 --seed 7 --threads 2 --samples 0";

static int have_bf16(void) {
    if (ft_bf16_isa_best() != FT_BF16_ISA_SCALAR) return 1;
    printf("SKIP: this CPU has no AVX-512: --precision bf16 is refused\n");
    return 0;
}

/* the value of "key": in the last {"type":"eval"} line of RUN/metrics.jsonl (NAN when absent) */
static double last_eval(const char *run, const char *key) {
    char path[512], *text = NULL;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    if (ft_file_read_all(path, &text, NULL) < 0) return NAN;
    double v = NAN;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"type\":\"eval\"")) continue;
        char *k = strstr(line, pat);
        if (k) v = atof(k + strlen(pat));
    }
    free(text);
    return v;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_gpt2_300_steps_within_1_percent(void **s) {
    (void)s;
    if (!have_bf16() || !ft_fixture_present("train_bf16/gpt2_small/config.json")) skip();
    const char *prec[2] = {"f32", "bf16"};
    double loss[2];
    for (int i = 0; i < 2; i++) {
        char run[256], *out = NULL;
        snprintf(run, sizeof run, TMP "gpt2_%s", prec[i]);
        rm_rf(run);
        int rc = ft_test_finetune(&out, "train %s --max-steps 300 --eval-every 300 --save-every 1000 --precision %s --out %s", k_gpt2,
                                  prec[i], run);
        assert_int_equal(rc, 0);
        if (i == 1) assert_non_null(strstr(out, "precision bf16 (use --precision f32 for full precision)"));
        else assert_null(strstr(out, "precision bf16"));
        free(out);
        loss[i] = last_eval(run, "val_loss");
        rm_rf(run);
    }
    double rel = fabs(loss[1] - loss[0]) / loss[0];
    printf("  300 steps of GPT-2 (2 x 128): validation loss f32 %.6f, bf16 %.6f (%.3f%% apart)\n", loss[0], loss[1], 100 * rel);
    assert_true(isfinite(loss[0]) && isfinite(loss[1]));
    assert_true(loss[0] < 4.0);          /* it learned (random init: ln 512 = 6.2) */
    assert_true(rel <= 0.01);
    assert_true(loss[1] != loss[0]);     /* the bf16 run really ran in bf16 */
}

/* LoRA (frozen f32 base: its matmuls and x A^T in bf16, the adapters' strided products in f32) and QLoRA
 * (int8 and NF4 bases: their matmuls in bf16 too, dequantized while the GEMM packs them; the tied LM head in
 * bf16): 80 steps end within 1% of f32's validation loss */
static void test_lora_qlora_bf16(void **s) {
    (void)s;
    if (!have_bf16() || !ft_fixture_present("train_bf16/gpt2_small/config.json")) skip();
    const char *methods[3] = {"--method lora --lora-targets all-linear", "--method qlora --quant int8 --lora-targets all-linear",
                              "--method qlora --quant nf4 --lora-targets all-linear"};
    const char *prec[2] = {"f32", "bf16"};
    for (int m = 0; m < 3; m++) {
        double loss[2];
        for (int i = 0; i < 2; i++) {
            char run[256], *out = NULL;
            snprintf(run, sizeof run, TMP "peft_%s", prec[i]);
            rm_rf(run);
            assert_int_equal(ft_test_finetune(&out, "train %s %s --max-steps 80 --eval-every 80 --save-every 1000 --precision %s --out %s",
                                              k_gpt2, methods[m], prec[i], run), 0);
            free(out);
            loss[i] = last_eval(run, "val_loss");
            rm_rf(run);
        }
        double rel = fabs(loss[1] - loss[0]) / loss[0];
        printf("  %-52s validation loss f32 %.6f, bf16 %.6f (%.3f%% apart)\n", methods[m], loss[0], loss[1], 100 * rel);
        assert_true(isfinite(loss[0]) && isfinite(loss[1]));
        assert_true(rel <= 0.01);
        assert_true(loss[1] != loss[0]);
    }
}

static void test_default_job_perplexity_band(void **s) {
    (void)s;
    if (!have_bf16()) skip();
    const char *prec[2] = {"f32", "bf16"};
    double ppl[2];
    for (int i = 0; i < 2; i++) {
        char run[256], *out = NULL;
        snprintf(run, sizeof run, TMP "default_%s", prec[i]);
        rm_rf(run);
        assert_int_equal(ft_test_finetune(&out, "train --precision %s --threads 2 --samples 0 --out %s", prec[i], run), 0);
        free(out);
        ppl[i] = last_eval(run, "perplexity");
        rm_rf(run);
    }
    printf("  default job (stories260K, fun-dialogues, 3 epochs): final perplexity f32 %.4f, bf16 %.4f\n", ppl[0], ppl[1]);
    assert_true(isfinite(ppl[0]) && isfinite(ppl[1]));
    assert_true(ppl[0] < 8.0 && ppl[1] < 8.0);
    assert_true(fabs(ppl[1] - ppl[0]) <= 0.03 * ppl[0]);
}

/* sets RUN/config.json's max_steps (a run that is to go on for longer) */
static void set_max_steps(const char *run, int n) {
    char path[512], v[16];
    snprintf(path, sizeof path, "%s/config.json", run);
    snprintf(v, sizeof v, "%d", n);
    ft_train_config c;
    ft_train_config_defaults(&c);
    assert_int_equal(ft_train_config_load_json(&c, path), FT_OK);
    assert_int_equal(ft_train_config_set(&c, "max-steps", v), FT_OK);
    assert_int_equal(ft_train_config_save_json(&c, path), FT_OK);
}

static int file_has(const char *path, const char *needle) {
    char *text = NULL;
    size_t n = 0;
    if (ft_file_read_all(path, &text, &n) < 0) return 0;
    /* safetensors: the JSON header after the 8-byte length; search it as text */
    int found = 0;
    for (size_t i = 0; i + strlen(needle) <= n && !found; i++) found = memcmp(text + i, needle, strlen(needle)) == 0;
    free(text);
    return found;
}

static void test_resume_switches_precision(void **s) {
    (void)s;
    if (!have_bf16() || !ft_fixture_present("train_bf16/gpt2_small/config.json")) skip();
    const char *run = TMP "resume";
    rm_rf(run);
    char *out = NULL;
    assert_int_equal(ft_test_finetune(&out, "train %s --max-steps 10 --eval-every 5 --save-every 5 --out %s", k_gpt2, run), 0);
    free(out);
    /* on in bf16 to step 20, then back in f32 to step 30 */
    const char *prec[2] = {"bf16", "f32"};
    for (int i = 0; i < 2; i++) {
        set_max_steps(run, 20 + 10 * i);
        assert_int_equal(ft_test_finetune(&out, "train --resume %s --precision %s", run, prec[i]), 0);
        assert_non_null(strstr(out, "resuming from"));
        assert_true((strstr(out, "precision bf16 (use --precision f32") != NULL) == (i == 0));
        free(out);
        char cfg[512], want[64];
        snprintf(cfg, sizeof cfg, "%s/config.json", run);
        snprintf(want, sizeof want, "\"%s\"", prec[i]);
        assert_true(file_has(cfg, want));
        double step = last_eval(run, "step");
        printf("  resumed in %s: last evaluation at step %.0f, val loss %.4f\n", prec[i], step, last_eval(run, "val_loss"));
        assert_true(step == 20 + 10 * i);
    }
    char model[512];
    snprintf(model, sizeof model, "%s/final/model.safetensors", run);
    assert_true(file_has(model, "\"F32\""));
    assert_false(file_has(model, "BF16"));
    rm_rf(run);
    assert_int_equal(ft_test_finetune(&out, "train %s --max-steps 1 --precision fp8 --out %s", k_gpt2, run), 1);
    assert_non_null(strstr(out, "--precision must be f32, bf16 or auto"));
    free(out);
    rm_rf(run);
}

/* the "key" number of a command's output */
static double value_after(const char *out, const char *key) {
    const char *k = strstr(out, key);
    return k ? atof(k + strlen(key)) : -1;
}

static void test_dry_run_bf16(void **s) {
    (void)s;
    if (!have_bf16()) skip();
#ifdef __SANITIZE_ADDRESS__
    printf("SKIP: under AddressSanitizer the resident set holds its shadow memory and quarantine, not the plan\n");
    skip();
#endif
    const char *run = TMP "dry";
    char *out = NULL;
    rm_rf(run);
    assert_int_equal(ft_test_finetune(&out, "train --precision bf16 --dry-run --threads 2 --out %s", run), 0);
    assert_non_null(strstr(out, "bf16 packing (largest matmul) "));
    assert_non_null(strstr(out, "; bf16 weight packs "));
    double pred = value_after(out, "predicted peak RSS: ");
    free(out);
    rm_rf(run);
    assert_int_equal(ft_test_finetune(&out, "train --precision bf16 --max-steps 2 --eval-batches 1 --threads 2 --out %s", run), 0);
    double got = value_after(out, "peak RSS: ");
    free(out);
    rm_rf(run);
    printf("  --precision bf16: predicted peak RSS %.1f MiB, measured %.1f MiB (%+.1f%%)\n", pred, got, 100.0 * (pred - got) / got);
    assert_true(pred > 0 && got > 0);
    assert_true(pred > 0.9 * got && pred < 1.1 * got);
    /* f32 has no packing line */
    assert_int_equal(ft_test_finetune(&out, "train --precision f32 --dry-run --threads 2 --out %s", run), 0);
    assert_null(strstr(out, "bf16 packing"));
    assert_null(strstr(out, "precision bf16"));
    free(out);
    rm_rf(run);
    /* the default (auto): bf16 where the CPU has AVX512-BF16, saying so with the way back; f32 elsewhere */
    int native = ft_bf16_isa_best() == FT_BF16_ISA_AVX512BF16;
    assert_int_equal(ft_test_finetune(&out, "train --dry-run --threads 2 --out %s", run), 0);
    assert_true((strstr(out, "precision bf16 (use --precision f32 for full precision)") != NULL) == native);
    assert_true((strstr(out, "bf16 packing") != NULL) == native);
    free(out);
    rm_rf(run);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_300_steps_within_1_percent),
        cmocka_unit_test(test_lora_qlora_bf16),
        cmocka_unit_test(test_resume_switches_precision),
        cmocka_unit_test(test_dry_run_bf16),
        cmocka_unit_test(test_default_job_perplexity_band),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
