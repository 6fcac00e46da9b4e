/* test_train_encoder.c — `finetune train --task classify|regress|token-classify|mlm`, `eval` and
 * `predict` end to end on a tiny BERT (tests/fixtures/train_encoder, made by
 * tests/parity/make_train_encoder_fixtures.py): metrics lines and their keys, the saved label map,
 * the 2 -> 3 class head change and its message, bit-exact resume from a checkpoint, k-fold mean/std,
 * freezing, class weights / resampling, and clear errors for bad input. */
#include "testutil.h"
#include "finetune/fileio.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char g_bin[1024], g_tmp[1024];



static const char *fx(const char *rel) {
    static char buf[8][4096];
    static int k = 0;
    char r[512];
    snprintf(r, sizeof r, "train_encoder/%s", rel);
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s", ft_fixture(r));
    return buf[k];
}

/* the JSON lines of RUN/metrics.jsonl with "type" == type; *n of them (caller frees with cJSON_Delete) */
static cJSON *lines_of(const char *run_dir, const char *type) {
    char path[4200], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
    cJSON *arr = cJSON_CreateArray();
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        const cJSON *t = j ? cJSON_GetObjectItem(j, "type") : NULL;
        if (cJSON_IsString(t) && !strcmp(t->valuestring, type)) cJSON_AddItemToArray(arr, j);
        else cJSON_Delete(j);
    }
    free(text);
    return arr;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static char *read_text(const char *dir, const char *name) {
    char path[4200], *text;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
    return text;
}

static void test_classify_end_to_end(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/cls", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --val-data %s --text-column sentence --epochs 10 "
                              "--batch-size 16 --lr 3e-3 --warmup-ratio 0 --seed 7 --out %s",
                        fx("tiny_bert"), fx("sst_train.tsv"), fx("sst_dev.tsv"), out_dir), 0);
    assert_non_null(strstr(out, "labels: 0=negative 1=positive"));
    free(out);
    cJSON *tr = lines_of(out_dir, "train"), *ev = lines_of(out_dir, "eval");
    int ntr = cJSON_GetArraySize(tr), nev = cJSON_GetArraySize(ev);
    double first = num(cJSON_GetArrayItem(tr, 0), "loss"), last = num(cJSON_GetArrayItem(tr, ntr - 1), "loss");
    cJSON *e = cJSON_GetArrayItem(ev, nev - 1);
    printf("  classify: %d steps, train loss %.4f -> %.4f, %d evaluations; last: accuracy %.4f f1_macro %.4f ece %.4f\n", ntr, first,
           last, nev, num(e, "accuracy"), num(e, "f1_macro"), num(e, "ece"));
    assert_true(ntr == 100 && nev == 11);
    assert_true(last < 0.5 * first);
    const char *keys[] = {"val_loss", "accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted", "ece", "log_loss", "roc_auc"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) (void)num(e, keys[i]);
    cJSON *cm = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "classification"), "confusion_matrix");
    assert_int_equal(cJSON_GetArraySize(cm), 2);
    int total = 0;
    for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) total += cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j)->valueint;
    assert_int_equal(total, 40);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "calibration")), 15);
    /* the saved model: label map and architecture */
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    char *cfg = read_text(final_dir, "config.json");
    cJSON *c = cJSON_Parse(cfg);
    free(cfg);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "id2label"), "0")->valuestring, "negative");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "id2label"), "1")->valuestring, "positive");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "architectures"), 0)->valuestring, "BertForSequenceClassification");
    cJSON_Delete(c);
    char *html = read_text(out_dir, "report.html");
    assert_non_null(strstr(html, "negative"));
    free(html);
    /* eval --json on the final model reproduces the last evaluation (--precision auto: the precision the run
     * trained and evaluated in by default; eval's own default is f32) */
    assert_int_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --json --precision auto", final_dir, fx("sst_dev.tsv")), 0);
    char *brace = strchr(out, '{');
    assert_non_null(brace);
    cJSON *j = cJSON_Parse(brace);
    assert_non_null(j);
    printf("  eval --json: accuracy %.4f f1_macro %.4f precision_macro %.4f recall_macro %.4f ece %.4f\n", num(j, "accuracy"),
           num(j, "f1_macro"), num(j, "precision_macro"), num(j, "recall_macro"), num(j, "ece"));
    assert_true(num(j, "accuracy") == num(e, "accuracy"));
    assert_true(fabs(num(j, "val_loss") - num(e, "val_loss")) < 1e-6);
    cJSON_Delete(j);
    free(out);
    /* predict: label and probabilities */
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'a charming , funny and moving film' --json", final_dir), 0);
    j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    const char *lab = cJSON_GetObjectItem(j, "label")->valuestring;
    cJSON *pr = cJSON_GetObjectItem(j, "probabilities");
    double ps = num(pr, "negative") + num(pr, "positive");
    printf("  predict: %s (negative %.4f, positive %.4f)\n", lab, num(pr, "negative"), num(pr, "positive"));
    assert_true(!strcmp(lab, "negative") || !strcmp(lab, "positive"));
    assert_true(fabs(ps - 1.0) < 1e-6);
    cJSON_Delete(j);
    free(out);
    /* stdin lines */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf 'good\\nbad movie\\n' | %s predict --model %s", g_bin, final_dir);
    assert_int_equal(ft_test_run(cmd, &out), 0);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(out, "positive="));
    free(out);
    cJSON_Delete(tr);
    cJSON_Delete(ev);
}

static void test_head_change_two_to_three(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/three", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --label-column topic --epochs 2 --batch-size 16 --lr 3e-3 --out %s",
                        fx("tiny_bert"), fx("topics3.csv"), out_dir), 0);
    const char *msg = strstr(out, "re-initialising");
    printf("  2 -> 3 labels: %.*s\n", msg ? (int)(strchr(msg, '\n') ? strchr(msg, '\n') - msg : 80) : 4, msg ? msg : "NONE");
    assert_non_null(msg);
    assert_non_null(strstr(out, "has 2 labels, 3 asked for"));
    free(out);
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    char *cfg = read_text(final_dir, "config.json");
    cJSON *c = cJSON_Parse(cfg);
    free(cfg);
    cJSON *id2 = cJSON_GetObjectItem(c, "id2label");
    assert_int_equal(cJSON_GetArraySize(id2), 3);
    assert_string_equal(cJSON_GetObjectItem(id2, "0")->valuestring, "Business");
    assert_string_equal(cJSON_GetObjectItem(id2, "2")->valuestring, "World");
    cJSON_Delete(c);
    cJSON *tr = lines_of(out_dir, "train");
    double first = num(cJSON_GetArrayItem(tr, 0), "loss"), last = num(cJSON_GetArrayItem(tr, cJSON_GetArraySize(tr) - 1), "loss");
    printf("  3-class training loss %.4f -> %.4f\n", first, last);
    assert_true(last < first);
    cJSON_Delete(tr);
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    assert_int_equal(ft_file_read_all(a, &x, &nx), 0);
    assert_int_equal(ft_file_read_all(b, &y, &ny), 0);
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_resume_bit_exact(void **s) {
    (void)s;
    char a[2048], b[2048], *out, cmd[16384];
    snprintf(a, sizeof a, "%s/resA", g_tmp);
    snprintf(b, sizeof b, "%s/resB", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --text-column sentence --epochs 2 --batch-size 16 --grad-accum 2 "
                              "--save-every 2 --keep 100 --out %s",
                        fx("tiny_bert"), fx("sst_train.tsv"), a), 0);
    free(out);
    /* a crash after step 4: only what was on disk then */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/checkpoints && cp %s/config.json %s/metrics.jsonl %s/ && cp -r %s/checkpoints/step-00000004 %s/checkpoints/",
             b, a, a, b, a, b);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ft_test_finetune(&out, "train --resume %s", b), 0);
    assert_non_null(strstr(out, "resuming from"));
    free(out);
    char fa[2200], fb[2200];
    snprintf(fa, sizeof fa, "%s/final/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/final/model.safetensors", b);
    int same = same_file(fa, fb);
    snprintf(fa, sizeof fa, "%s/metrics.jsonl", a);
    snprintf(fb, sizeof fb, "%s/metrics.jsonl", b);
    cJSON *ea = lines_of(a, "eval"), *eb = lines_of(b, "eval");
    cJSON *la = cJSON_GetArrayItem(ea, cJSON_GetArraySize(ea) - 1), *lb = cJSON_GetArrayItem(eb, cJSON_GetArraySize(eb) - 1);
    printf("  resume from step 4: final weights %s; last val_loss %.9f vs %.9f\n", same ? "bit-identical" : "DIFFERENT",
           num(la, "val_loss"), num(lb, "val_loss"));
    assert_true(same);
    assert_true(num(la, "val_loss") == num(lb, "val_loss"));
    cJSON_Delete(ea);
    cJSON_Delete(eb);
}

static void test_regress(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/reg", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --task regress --model %s --data %s --label-column score --epochs 4 --batch-size 16 --lr 3e-3 --out %s",
                        fx("tiny_bert"), fx("sst_score.csv"), out_dir), 0);
    free(out);
    cJSON *ev = lines_of(out_dir, "eval"), *tr = lines_of(out_dir, "train");
    cJSON *f = cJSON_GetArrayItem(ev, 0), *l = cJSON_GetArrayItem(ev, cJSON_GetArraySize(ev) - 1);
    printf("  regress: val mse %.4f -> %.4f, pearson %.4f, spearman %.4f, r2 %.4f\n", num(f, "mse"), num(l, "mse"), num(l, "pearson"),
           num(l, "spearman"), num(l, "r2"));
    assert_true(num(l, "mse") < num(f, "mse"));
    (void)num(l, "mae");
    (void)num(l, "rmse");
    cJSON_Delete(ev);
    cJSON_Delete(tr);
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'a wonderful film'", final_dir), 0);
    char *end;
    double v = strtod(out, &end);
    printf("  predict (regress): %g\n", v);
    assert_true(end != out && isfinite(v));
    free(out);
}

static void test_token_classify(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/ner", g_tmp);
    char conll[4096];
    snprintf(conll, sizeof conll, "%s", ft_fixture("classify/wnut17_dev.conll"));
    assert_int_equal(ft_test_finetune(&out, "train --task token-classify --model %s --data %s --val-split 0.25 --epochs 3 --batch-size 4 --lr 3e-3 --out %s",
                        fx("tiny_bert"), conll, out_dir), 0);
    free(out);
    cJSON *ev = lines_of(out_dir, "eval"), *tr = lines_of(out_dir, "train");
    cJSON *l = cJSON_GetArrayItem(ev, cJSON_GetArraySize(ev) - 1);
    double first = num(cJSON_GetArrayItem(tr, 0), "loss"), last = num(cJSON_GetArrayItem(tr, cJSON_GetArraySize(tr) - 1), "loss");
    printf("  token-classify: train loss %.4f -> %.4f; val entity f1 %.4f, token accuracy %.4f\n", first, last, num(l, "f1"), num(l, "token_accuracy"));
    assert_true(last < first);
    assert_non_null(cJSON_GetObjectItem(l, "ner"));
    cJSON_Delete(ev);
    cJSON_Delete(tr);
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    char *cfg = read_text(final_dir, "config.json");
    assert_non_null(strstr(cfg, "BertForTokenClassification"));
    free(cfg);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'I live in New York'", final_dir), 0);
    printf("  predict (tokens): %s", out);
    assert_non_null(strstr(out, "York/"));
    free(out);
}

static void test_mlm(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/mlm", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --task mlm --model %s --data %s --epochs 4 --batch-size 16 --lr 3e-3 --out %s",
                        fx("tiny_bert"), fx("mlm.txt"), out_dir), 0);
    free(out);
    cJSON *ev = lines_of(out_dir, "eval");
    cJSON *f = cJSON_GetArrayItem(ev, 0), *l = cJSON_GetArrayItem(ev, cJSON_GetArraySize(ev) - 1);
    printf("  mlm: val perplexity %.2f -> %.2f, masked accuracy %.4f -> %.4f\n", num(f, "perplexity"), num(l, "perplexity"),
           num(f, "masked_accuracy"), num(l, "masked_accuracy"));
    assert_true(num(l, "perplexity") < num(f, "perplexity"));
    cJSON_Delete(ev);
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    char *cfg = read_text(final_dir, "config.json");
    assert_non_null(strstr(cfg, "BertForMaskedLM"));
    free(cfg);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'the film is [MASK] .' --top-k 3", final_dir), 0);
    printf("  predict (mlm): %s", out);
    assert_non_null(strstr(out, "mask 1:"));
    free(out);
}

static void test_kfold_and_options(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/kfold", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --text-column sentence --folds 3 --fold -1 --epochs 1 --batch-size 16 --out %s",
                        fx("tiny_bert"), fx("sst_train.tsv"), out_dir), 0);
    free(out);
    char *k = read_text(out_dir, "kfold.json");
    cJSON *j = cJSON_Parse(k);
    free(k);
    cJSON *acc = cJSON_GetObjectItem(j, "accuracy");
    printf("  3-fold: accuracy %.4f +- %.4f over %d folds\n", num(acc, "mean"), num(acc, "std"), cJSON_GetArraySize(cJSON_GetObjectItem(acc, "values")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(acc, "values")), 3);
    cJSON_Delete(j);
    /* no --text-column and no "text" column: GLUE's "sentence" is taken, with a note */
    snprintf(out_dir, sizeof out_dir, "%s/autocol", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --max-steps 1 --batch-size 8 --out %s", fx("tiny_bert"), fx("sst_train.tsv"), out_dir), 0);
    assert_non_null(strstr(out, "using 'sentence'"));
    free(out);
    /* freezing, class weights, over-sampling */
    snprintf(out_dir, sizeof out_dir, "%s/opts", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --model %s --data %s --label-column topic --freeze embeddings,layers:0 --class-weights balanced "
                              "--resample over --max-steps 3 --batch-size 8 --out %s",
                        fx("tiny_bert"), fx("topics3.csv"), out_dir), 0);
    assert_non_null(strstr(out, "trainable parameters:"));
    assert_non_null(strstr(out, "class weights (balanced)"));
    assert_non_null(strstr(out, "over-sampling"));
    free(out);
}

static void test_lora(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/lora", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --method lora --lora-r 4 --lora-alpha 8 --lora-dropout 0.1 --model %s --data %s --val-data %s "
                              "--text-column sentence --epochs 6 --batch-size 16 --lr 1e-2 --out %s",
                        fx("tiny_bert"), fx("sst_train.tsv"), fx("sst_dev.tsv"), out_dir), 0);
    const char *msg = strstr(out, "trainable parameters:");
    assert_non_null(msg);
    printf("  %.*s\n", (int)(strchr(msg, '\n') - msg), msg);
    assert_non_null(strstr(out, "LoRA adapters and the task head"));
    free(out);
    cJSON *tr = lines_of(out_dir, "train"), *ev = lines_of(out_dir, "eval");
    double first = num(cJSON_GetArrayItem(tr, 0), "loss"), last = num(cJSON_GetArrayItem(tr, cJSON_GetArraySize(tr) - 1), "loss");
    cJSON *e = cJSON_GetArrayItem(ev, cJSON_GetArraySize(ev) - 1);
    printf("  LoRA classify: train loss %.4f -> %.4f; last val accuracy %.4f\n", first, last, num(e, "accuracy"));
    assert_true(last < first);
    char final_dir[2100];
    snprintf(final_dir, sizeof final_dir, "%s/final", out_dir);
    char *cfg = read_text(final_dir, "adapter_config.json");
    assert_non_null(strstr(cfg, "\"finetune_labels\""));
    assert_non_null(strstr(cfg, "\"SEQ_CLS\""));
    free(cfg);
    /* the adapter directory is a model for eval and predict */
    assert_int_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --json --precision auto", final_dir, fx("sst_dev.tsv")), 0);
    cJSON *j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    printf("  eval --json on the adapter: accuracy %.4f (last evaluation %.4f)\n", num(j, "accuracy"), num(e, "accuracy"));
    assert_true(num(j, "accuracy") == num(e, "accuracy"));
    cJSON_Delete(j);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'a moving film' --json", final_dir), 0);
    j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    const char *lab = cJSON_GetObjectItem(j, "label")->valuestring;
    assert_true(!strcmp(lab, "negative") || !strcmp(lab, "positive"));
    cJSON_Delete(j);
    free(out);
    cJSON_Delete(tr);
    cJSON_Delete(ev);
}

static void test_errors(void **s) {
    (void)s;
    char out_dir[2048], *out;
    snprintf(out_dir, sizeof out_dir, "%s/err1", g_tmp);
    assert_int_not_equal(ft_test_finetune(&out, "train --model %s --data %s --text-column sentence --label-column nope --out %s", fx("tiny_bert"), fx("sst_train.tsv"), out_dir), 0);
    printf("  missing column: %s", out);
    assert_non_null(strstr(out, "sst_train.tsv"));
    assert_non_null(strstr(out, "nope"));
    free(out);
    snprintf(out_dir, sizeof out_dir, "%s/err2", g_tmp);
    assert_int_not_equal(ft_test_finetune(&out, "train --task regress --model %s --data %s --text-column sentence --out %s", fx("tiny_bert"), fx("sst_train.tsv"), out_dir), 0);
    printf("  regress on names: %s", out);
    assert_non_null(strstr(out, "not a number"));
    free(out);
    snprintf(out_dir, sizeof out_dir, "%s/err3", g_tmp);
    /* QLoRA on encoders works (tests/test_encoder_qlora.c); tiny_bert's width 32 needs int8 rows, not NF4 */
    assert_int_equal(ft_test_finetune(&out, "train --task classify --model %s --data %s --method qlora --quant int8 --max-steps 2 --text-column sentence --out %s", fx("tiny_bert"), fx("sst_train.tsv"), out_dir), 0);
    printf("  qlora (int8) on an encoder: trains\n");
    assert_non_null(strstr(out, "the base is frozen"));
    free(out);
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-train-enc") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_end_to_end),
        cmocka_unit_test(test_head_change_two_to_three),
        cmocka_unit_test(test_resume_bit_exact),
        cmocka_unit_test(test_regress),
        cmocka_unit_test(test_token_classify),
        cmocka_unit_test(test_mlm),
        cmocka_unit_test(test_kfold_and_options),
        cmocka_unit_test(test_lora),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
