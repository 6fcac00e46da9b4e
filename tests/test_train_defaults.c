/* test_train_defaults.c — the "auto" options (--lr, --warmup-ratio, --batch-size): the resolution
 * table for every task x method x model kind (train.h), explicit values winning, "auto" in the option
 * parser and in config.json, the "defaults:" line on stderr of real runs (decoder, encoder, LoRA,
 * --dry-run), the resolved numbers saved in RUN/config.json, and a resumed run keeping them bit-exactly. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_bin[1024], g_tmp[1024];


/* the "defaults: ..." line of a run's output (a static copy), or fails the test */
static const char *defaults_line(const char *out) {
    static char line[2048];
    const char *p = strstr(out, "defaults: ");
    assert_non_null(p);
    const char *e = strchr(p, '\n');
    snprintf(line, sizeof line, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
    printf("  %s\n", line);
    return line;
}

/* ------------------------------------------------------------------ the table */

typedef struct row {
    const char *task, *method, *init;
    ft_model_kind kind;
    int64_t n_params;
    float lr, warmup;
    int batch;
} row;

static void test_table(void **s) {
    (void)s;
    const row rows[] = {
        /* pretrained encoders: every task, full and LoRA (the real MiniLM is 22.7M, tiny_bert ~0.1M) */
        {"classify", "full", "pretrained", FT_MODEL_KIND_ENCODER, 22714371, 5e-5f, 0.1f, 16},
        {"regress", "full", "pretrained", FT_MODEL_KIND_ENCODER, 22714371, 5e-5f, 0.1f, 16},
        {"token-classify", "full", "pretrained", FT_MODEL_KIND_ENCODER, 110000000, 5e-5f, 0.1f, 16},
        {"mlm", "full", "pretrained", FT_MODEL_KIND_ENCODER, 100000, 5e-5f, 0.1f, 16},
        {"classify", "lora", "pretrained", FT_MODEL_KIND_ENCODER, 22714371, 1e-3f, 0.1f, 16},
        {"token-classify", "lora", "pretrained", FT_MODEL_KIND_ENCODER, 110000000, 1e-3f, 0.1f, 16},
        /* decoders, full fine-tuning by size: the embedded stories260K, GPT-2 124M, a 7B */
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 260000, 5e-4f, 0.05f, 8},
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 9999999, 5e-4f, 0.05f, 8},
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 10000000, 5e-5f, 0.05f, 8},
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 124439808, 5e-5f, 0.05f, 8},
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 6738415616LL, 2e-5f, 0.05f, 8},
        {"lm", "full", "pretrained", FT_MODEL_KIND_DECODER, 0, 2e-5f, 0.05f, 8}, /* size unknown: large */
        /* decoder LoRA / QLoRA */
        {"lm", "lora", "pretrained", FT_MODEL_KIND_DECODER, 260000, 5e-4f, 0.05f, 8},
        {"lm", "qlora", "pretrained", FT_MODEL_KIND_DECODER, 260000, 5e-4f, 0.05f, 8},
        {"lm", "lora", "pretrained", FT_MODEL_KIND_DECODER, 124439808, 2e-4f, 0.05f, 8},
        {"lm", "qlora", "pretrained", FT_MODEL_KIND_DECODER, 6738415616LL, 2e-4f, 0.05f, 8},
        {"lm", "qlora", "pretrained", FT_MODEL_KIND_DECODER, 65000000000LL, 1e-4f, 0.05f, 8},
        /* from random weights: any size, any method */
        {"lm", "full", "random", FT_MODEL_KIND_DECODER_RANDOM, 260000, 5e-4f, 0.05f, 8},
        {"lm", "full", "random", FT_MODEL_KIND_DECODER_RANDOM, 124439808, 5e-4f, 0.05f, 8},
        {"lm", "lora", "random", FT_MODEL_KIND_DECODER_RANDOM, 124439808, 5e-4f, 0.05f, 8},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const row *r = &rows[i];
        ft_train_config c;
        ft_train_config_defaults(&c);
        assert_true(c.lr == (float)FT_TRAIN_AUTO && c.warmup_ratio == (float)FT_TRAIN_AUTO && c.batch_size == FT_TRAIN_AUTO);
        assert_int_equal(ft_train_config_set(&c, "method", r->method), FT_OK);
        assert_int_equal(ft_train_config_set(&c, "init", r->init), FT_OK);
        ft_train_defaults_ctx x = {r->task, r->kind, r->n_params};
        char why[1024];
        assert_int_equal(ft_train_config_resolve(&c, &x, why, sizeof why), FT_OK);
        int ok = c.lr == r->lr && c.warmup_ratio == r->warmup && c.batch_size == r->batch && strstr(why, "lr ") == why;
        printf("  %-14s %-5s %-10s kind %d %12lld params: lr %-7g warmup %-5g batch %-3d (want %g %g %d) %s\n     why: %s\n", r->task,
               r->method, r->init, (int)r->kind, (long long)r->n_params, (double)c.lr, (double)c.warmup_ratio, c.batch_size,
               (double)r->lr, (double)r->warmup, r->batch, ok ? "OK" : "FAIL", why);
        bad += !ok;
        assert_int_equal(ft_train_config_validate(&c), FT_OK);
    }
    assert_int_equal(bad, 0);
}

static void test_explicit_wins(void **s) {
    (void)s;
    ft_train_config c;
    ft_train_config_defaults(&c);
    assert_int_equal(ft_train_config_set(&c, "lr", "1e-3"), FT_OK);
    assert_int_equal(ft_train_config_set(&c, "warmup-ratio", "0"), FT_OK);  /* 0 is a value, not "auto" */
    ft_train_defaults_ctx x = {"classify", FT_MODEL_KIND_ENCODER, 22714371};
    char why[1024];
    assert_int_equal(ft_train_config_resolve(&c, &x, why, sizeof why), FT_OK);
    printf("  --lr 1e-3 --warmup-ratio 0: %s\n", why);
    assert_true(c.lr == 1e-3f && c.warmup_ratio == 0.0f && c.batch_size == 16);
    assert_non_null(strstr(why, "lr 0.001 (set)"));
    assert_non_null(strstr(why, "warmup-ratio 0 (set)"));
    assert_non_null(strstr(why, "batch-size 16 (BERT"));
    /* resolving again changes nothing (a resumed run reads the resolved numbers) */
    ft_train_config d = c;
    assert_int_equal(ft_train_config_resolve(&d, &x, NULL, 0), FT_OK);
    assert_memory_equal(&c, &d, sizeof c);
    /* a JSON config's values win the same way, and "auto" there means auto */
    const char *json = ft_test_path(g_tmp, "opts.json");
    FILE *f = fopen(json, "w");
    assert_non_null(f);
    fputs("{\"lr\": 3e-5, \"batch_size\": \"auto\", \"warmup_ratio\": \"auto\"}\n", f);
    fclose(f);
    ft_train_config_defaults(&c);
    assert_int_equal(ft_train_config_load_json(&c, json), FT_OK);
    assert_int_equal(ft_train_config_resolve(&c, &x, why, sizeof why), FT_OK);
    printf("  JSON {lr 3e-5, batch_size auto}: %s\n", why);
    assert_true(c.lr == 3e-5f && c.batch_size == 16 && c.warmup_ratio == 0.1f);
    /* bad input */
    ft_train_config_defaults(&c);
    assert_int_equal(ft_train_config_set(&c, "lr", "-1"), FT_ERR_INVALID);
    assert_int_equal(ft_train_config_set(&c, "batch-size", "-3"), FT_ERR_INVALID);
    assert_int_equal(ft_train_config_set(&c, "lr", "fast"), FT_ERR_INVALID);
    assert_int_equal(ft_train_config_set(&c, "epochs", "auto"), FT_ERR_INVALID); /* only the "auto" options take it */
    x.task = "translate";
    assert_int_equal(ft_train_config_resolve(&c, &x, why, sizeof why), FT_ERR_INVALID);
    ft_error_clear();
}

static void test_config_json_auto(void **s) {
    (void)s;
    ft_train_config c, d;
    ft_train_config_defaults(&c);
    const char *path = ft_test_path(g_tmp, "cfg.json");
    assert_int_equal(ft_train_config_save_json(&c, path), FT_OK);
    char *text;
    assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    const char *keys[] = {"lr", "warmup_ratio", "batch_size"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, keys[i]);
        printf("  saved %s: %s\n", keys[i], cJSON_IsString(v) ? v->valuestring : "(not a string)");
        assert_true(cJSON_IsString(v) && !strcmp(v->valuestring, "auto"));
    }
    cJSON_Delete(j);
    ft_train_config_defaults(&d);
    assert_int_equal(ft_train_config_set(&d, "lr", "0.1"), FT_OK);
    assert_int_equal(ft_train_config_load_json(&d, path), FT_OK);
    assert_memory_equal(&c, &d, sizeof c);
}

/* ------------------------------------------------------------------ real runs */

static const char *k_dec = "--model models/stories260K --data tests/fixtures/train/basketball_coach.json --seq-len 32 --threads 1";

static void test_cli_decoder(void **s) {
    (void)s;
    if (!ft_path_is_dir("models/stories260K") || !ft_fixture_present("train/basketball_coach.json")) skip();
    char *out;
    assert_int_equal(ft_test_finetune(&out, "train %s --dry-run --out %s", k_dec, ft_test_path(g_tmp, "dec")), 0);
    const char *l = defaults_line(out);
    assert_non_null(strstr(l, "lr 0.0005 (full fine-tuning of a tiny pretrained decoder"));
    assert_non_null(strstr(l, "warmup-ratio 0.05"));
    assert_non_null(strstr(l, "batch-size 8"));
    assert_non_null(strstr(out, "steps of 1 x 8 x 32 tokens")); /* the dry-run plan uses the resolved batch */
    free(out);
    assert_int_equal(ft_test_finetune(&out, "train %s --method lora --dry-run --out %s", k_dec, ft_test_path(g_tmp, "dec-lora")), 0);
    assert_non_null(strstr(defaults_line(out), "lr 0.0005 (LoRA on a tiny pretrained decoder"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "train %s --init random --lr 2e-3 --batch-size 4 --dry-run --out %s", k_dec, ft_test_path(g_tmp, "dec-rnd")), 0);
    l = defaults_line(out);
    assert_non_null(strstr(l, "lr 0.002 (set)"));
    assert_non_null(strstr(l, "batch-size 4 (set)"));
    assert_non_null(strstr(l, "warmup-ratio 0.05 (decoder default"));
    free(out);
}

static void test_cli_encoder_and_resume(void **s) {
    (void)s;
    if (!ft_fixture_present("train_encoder/tiny_bert")) skip();
    char a[2048], b[2048], *out, cmd[16384], model[1024], data[1024];
    snprintf(model, sizeof model, "%s", ft_fixture("train_encoder/tiny_bert"));
    snprintf(data, sizeof data, "%s", ft_fixture("train_encoder/sst_train.tsv"));
    /* LoRA on an encoder, dry run */
    assert_int_equal(ft_test_finetune(&out, "train --task classify --method lora --model %s --data %s --text-column sentence --dry-run --out %s", model,
                        data, ft_test_path(g_tmp, "enc-lora")), 0);
    assert_non_null(strstr(defaults_line(out), "lr 0.001 (LoRA on a pretrained encoder"));
    free(out);
    /* full fine-tuning with defaults only: 5e-5, 0.1, 16, saved as numbers in config.json */
    snprintf(a, sizeof a, "%s/encA", g_tmp);
    snprintf(b, sizeof b, "%s/encB", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --text-column sentence --epochs 1 --save-every 2 --keep 100 --threads 1 --out %s",
                        model, data, a), 0);
    const char *l = defaults_line(out);
    assert_non_null(strstr(l, "lr 5e-05 (full fine-tuning of a pretrained encoder"));
    assert_non_null(strstr(l, "warmup-ratio 0.1 (BERT"));
    assert_non_null(strstr(l, "batch-size 16 (BERT"));
    assert_non_null(strstr(out, "batches of 16 per epoch"));
    free(out);
    char path[2200], *text;
    snprintf(path, sizeof path, "%s/config.json", a);
    assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    double lr = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "lr")), wr = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "warmup_ratio"));
    double bs = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch_size"));
    printf("  config.json: lr %g warmup_ratio %g batch_size %g\n", lr, wr, bs);
    assert_true((float)lr == 5e-5f && (float)wr == 0.1f && bs == 16);
    cJSON_Delete(j);
    /* the learning rates of the metrics follow 5e-5 with 10% warmup: peak at most 5e-5 */
    snprintf(path, sizeof path, "%s/metrics.jsonl", a);
    assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
    double peak = 0;
    for (char *p = strstr(text, "\"lr\": "); p; p = strstr(p + 1, "\"lr\": ")) { double v = strtod(p + 6, NULL); if (v > peak) peak = v; }
    free(text);
    printf("  peak logged lr %g\n", peak);
    assert_true(peak > 0 && peak <= 5e-5 * (1 + 1e-6));
    /* resume from step 2: the same values, the same final weights */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/checkpoints && cp %s/config.json %s/metrics.jsonl %s/ && cp -r %s/checkpoints/step-00000002 %s/checkpoints/",
             b, a, a, b, a, b);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ft_test_finetune(&out, "train --resume %s", b), 0);
    l = defaults_line(out);
    assert_non_null(strstr(l, "lr 5e-05"));
    assert_non_null(strstr(l, "batch-size 16"));
    assert_non_null(strstr(out, "resuming from"));
    free(out);
    char *x, *y;
    size_t nx, ny;
    snprintf(path, sizeof path, "%s/final/model.safetensors", a);
    assert_int_equal(ft_file_read_all(path, &x, &nx), 0);
    snprintf(path, sizeof path, "%s/final/model.safetensors", b);
    assert_int_equal(ft_file_read_all(path, &y, &ny), 0);
    int same = nx == ny && !memcmp(x, y, nx);
    printf("  resumed from step 2: final weights %s\n", same ? "bit-identical" : "DIFFERENT");
    free(x);
    free(y);
    assert_true(same);
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-train-defaults") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_explicit_wins),
        cmocka_unit_test(test_config_json_auto),
        cmocka_unit_test(test_cli_decoder),
        cmocka_unit_test(test_cli_encoder_and_resume),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
