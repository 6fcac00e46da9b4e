/* test_multitask.c — multi-task heads (multitask.h, `finetune train --task multi`) on the tiny BERT of
 * tests/fixtures/train_encoder: the gradient of the weighted multi-head loss against central finite
 * differences (body and both heads), the save / load round trip (every head's logits identical, the
 * plain encoder load = the first task), a tiny run on two synthetic tasks that learns both, with
 * predict returning every head and eval --head one, and the serving engine answering every head. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/multitask.h"
#include "finetune/serve.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_tmp[1024];

static const char *tiny(void) { return ft_fixture("train_encoder/tiny_bert"); }

/* two tasks over the tiny BERT: a (2 labels, the encoder's own head), b (3 labels) */
static ft_multitask *make_mt(void) {
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, tiny(), 2, NULL), FT_OK);
    const char *names[] = {"a", "b"};
    int K[] = {2, 3};
    ft_multitask *mt;
    assert_int_equal(ft_multitask_create(&mt, m, 2, names, K, NULL, 99), FT_OK);
    return mt;
}

typedef struct batch { int ids[4 * 7], mask[4 * 7], labels[4], B, T; } batch;

static void fill_batch(batch *b, int B, int T, int K, unsigned seed, int V) {
    b->B = B; b->T = T;
    for (int i = 0; i < B * T; i++) { seed = seed * 1103515245u + 12345u; b->ids[i] = 5 + (int)((seed >> 8) % (unsigned)(V - 5)); b->mask[i] = 1; }
    for (int r = 0; r < B; r++) { b->ids[r * T] = 2; b->labels[r] = r % K; }
    b->mask[B * T - 1] = 0;   /* one padding position */
}

/* the multi-task loss L = (wa * sum CE_a + wb * sum CE_b) / N, N = examples of both; grad != 0: its gradient too */
static double mt_loss(ft_multitask *mt, const batch *ba, const batch *bb, double wa, double wb, int grad) {
    ft_encoder_model *m = ft_multitask_encoder(mt);
    const batch *bs[2] = {ba, bb};
    double w[2] = {wa, wb}, N = ba->B + bb->B, L = 0;
    if (grad) assert_int_equal(ft_multitask_zero_grad(mt), FT_OK);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(ft_multitask_select(mt, t), FT_OK);
        ft_encoder_inputs in = {bs[t]->ids, NULL, bs[t]->mask, bs[t]->labels, NULL, bs[t]->B, bs[t]->T};
        float loss;
        assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), FT_OK);
        L += w[t] * (double)loss * ft_encoder_loss_denominator(m);
        if (grad) assert_int_equal(ft_encoder_backward_scaled(m, (float)(w[t] / N)), FT_OK);
    }
    return L / N;
}

static ft_param *find_param(ft_param *p, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(p[i].name, name)) return &p[i];
    fail_msg("no parameter %s", name);
    return NULL;
}

static void test_grad_check(void **s) {
    (void)s;
    ft_multitask *mt = make_mt();
    int V = ft_encoder_get_config(ft_multitask_encoder(mt))->vocab_size;
    batch ba, bb;
    fill_batch(&ba, 3, 6, 2, 11, V);
    fill_batch(&bb, 2, 7, 3, 23, V);
    ft_param *p;
    int np;
    assert_int_equal(ft_multitask_params(mt, &p, &np), FT_OK);
    /* every tensor once: the body plus 4 per head */
    assert_int_equal(np, ft_encoder_num_params(ft_multitask_encoder(mt)) - 4 + 8);
    double wa = 1.0, wb = 0.5;
    mt_loss(mt, &ba, &bb, wa, wb, 1);
    /* in each probed tensor, its largest gradient entry (the float32 finite difference resolves it) */
    struct { const char *name; int64_t idx; } probes[] = {
        {"bert.embeddings.word_embeddings.weight", 0},
        {"bert.embeddings.LayerNorm.weight", 0},
        {"bert.encoder.layer.0.attention.self.value.weight", 0},
        {"bert.encoder.layer.1.output.dense.weight", 0},
        {"a/bert.pooler.dense.weight", 0},
        {"a/classifier.weight", 0},
        {"a/classifier.bias", 0},
        {"b/bert.pooler.dense.weight", 0},
        {"b/classifier.weight", 0},
        {"b/classifier.bias", 0},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        ft_param *q = find_param(p, np, probes[i].name);
        for (int64_t j = 1; j < ft_tensor_numel(&q->t); j++)
            if (fabsf(q->grad[j]) > fabsf(q->grad[probes[i].idx])) probes[i].idx = j;
        float *w = (float *)q->t.data + probes[i].idx;
        double g = q->grad[probes[i].idx], h = 1e-2, w0 = *w;
        *w = (float)(w0 + h);
        double lp = mt_loss(mt, &ba, &bb, wa, wb, 0);
        *w = (float)(w0 - h);
        double lm = mt_loss(mt, &ba, &bb, wa, wb, 0);
        *w = (float)w0;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g);
        int ok = err <= 2e-2 * fabs(g) + 2e-5;
        printf("  %-52s [%5lld]  analytic %+.6e  finite-diff %+.6e  %s\n", probes[i].name, (long long)probes[i].idx, g, fd, ok ? "OK" : "FAIL");
        bad += !ok;
        /* every probe's gradient is non-zero: both heads and the body get the loss */
        assert_true(fabs(g) > 1e-5);
    }
    assert_int_equal(bad, 0);
    /* task b's weight 0: task b's head gets no gradient, a's does */
    mt_loss(mt, &ba, &bb, 1.0, 0.0, 1);
    assert_true(find_param(p, np, "b/classifier.weight")->grad[probes[8].idx] == 0.0f);
    assert_true(find_param(p, np, "a/classifier.weight")->grad[probes[5].idx] != 0.0f);
    ft_multitask_close(mt);
}

static void logits_of(ft_encoder_model *m, const batch *b, float *out, int K) {
    ft_encoder_inputs in = {b->ids, NULL, b->mask, NULL, NULL, b->B, b->T};
    assert_int_equal(ft_encoder_forward_ex(m, &in, NULL), FT_OK);
    assert_int_equal(ft_encoder_logit_cols(m), K);
    memcpy(out, ft_encoder_logits(m), sizeof(float) * (size_t)(b->B * K));
}

static void test_save_load(void **s) {
    (void)s;
    ft_multitask *mt = make_mt();
    int V = ft_encoder_get_config(ft_multitask_encoder(mt))->vocab_size;
    batch b;
    fill_batch(&b, 4, 7, 2, 5, V);
    /* move both heads and the body away from what a fresh load would give */
    ft_param *p;
    int np;
    assert_int_equal(ft_multitask_params(mt, &p, &np), FT_OK);
    for (int i = 0; i < np; i++) {
        float *w = p[i].t.data;
        for (int64_t j = 0; j < ft_tensor_numel(&p[i].t); j++) w[j] += 0.01f * (float)((i * 7 + j) % 5 - 2);
    }
    float ref[2][4 * 3], got[2][4 * 3], plain[4 * 2];
    for (int t = 0; t < 2; t++) {
        assert_int_equal(ft_multitask_select(mt, t), FT_OK);
        logits_of(ft_multitask_encoder(mt), &b, ref[t], t ? 3 : 2);
    }
    const char *dir = ft_test_path(g_tmp, "saved");
    char d[1024];
    snprintf(d, sizeof d, "%s", dir);
    assert_int_equal(ft_multitask_save(mt, d), FT_OK);
    assert_int_equal(ft_multitask_selected(mt), 1);   /* the selection is kept */
    assert_true(ft_multitask_dir_is_multitask(d));
    assert_false(ft_multitask_dir_is_multitask(tiny()));
    ft_multitask *back;
    assert_int_equal(ft_multitask_load(&back, d, NULL), FT_OK);
    assert_int_equal(ft_multitask_count(back), 2);
    assert_string_equal(ft_multitask_name(back, 1), "b");
    assert_int_equal(ft_multitask_num_labels(back, 1), 3);
    assert_string_equal(ft_multitask_label_name(back, 1, 2), "LABEL_2");
    for (int t = 0; t < 2; t++) {
        assert_int_equal(ft_multitask_select(back, t), FT_OK);
        logits_of(ft_multitask_encoder(back), &b, got[t], t ? 3 : 2);
        assert_memory_equal(got[t], ref[t], sizeof(float) * (size_t)(4 * (t ? 3 : 2)));
    }
    /* the directory is an ordinary classifier of the first task too */
    ft_encoder_model *m0;
    assert_int_equal(ft_encoder_load(&m0, d, 0, NULL), FT_OK);
    logits_of(m0, &b, plain, 2);
    assert_memory_equal(plain, ref[0], sizeof plain);
    ft_encoder_close(m0);
    /* weights back into a fresh model (checkpoint resume) */
    ft_multitask *fresh = make_mt();
    assert_int_equal(ft_multitask_load_weights(fresh, d), FT_OK);
    assert_int_equal(ft_multitask_select(fresh, 1), FT_OK);
    logits_of(ft_multitask_encoder(fresh), &b, got[1], 3);
    assert_memory_equal(got[1], ref[1], sizeof(float) * 12);
    ft_multitask_close(fresh);
    ft_multitask_close(back);
    ft_multitask_close(mt);
    /* bad specifications */
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, tiny(), 2, NULL), FT_OK);
    const char *dup[] = {"x", "x"};
    int K[] = {2, 2};
    assert_int_equal(ft_multitask_create(&back, m, 2, dup, K, NULL, 1), FT_ERR_INVALID);   /* closes m */
    assert_non_null(strstr(ft_last_error(), "named twice"));
}

/* synthetic tasks the tiny BERT learns in a few epochs: sentiment from "good"/"bad", topic from sports /
 * market / film words, with filler words around them */
static void write_tasks(const char *sent, const char *topic) {
    FILE *a = fopen(sent, "w"), *b = fopen(topic, "w");
    assert_non_null(a);
    assert_non_null(b);
    static const char *filler[] = {"the", "was", "it", "a", "and", "this", "of", "in"};
    static const char *topics[3][2] = {{"team", "game"}, {"market", "stock"}, {"film", "film"}};
    static const char *tnames[3] = {"sports", "business", "cinema"};
    fprintf(a, "text\tlabel\n");
    fprintf(b, "text\tlabel\n");
    unsigned r = 7;
    for (int i = 0; i < 120; i++) {
        const char *f[4];
        for (int k = 0; k < 4; k++) { r = r * 1103515245u + 12345u; f[k] = filler[(r >> 10) % 8]; }
        fprintf(a, "%s %s %s %s %s\t%s\n", f[0], f[1], i % 2 ? "good" : "bad", f[2], f[3], i % 2 ? "positive" : "negative");
        fprintf(b, "%s %s %s %s\t%s\n", f[0], topics[i % 3][(r >> 20) & 1], f[1], f[3], tnames[i % 3]);
    }
    fclose(a);
    fclose(b);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* the last "eval" line of RUN/metrics.jsonl (and the first into *first) */
static cJSON *last_eval(const char *run, cJSON **first) {
    char path[2048], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    assert_int_equal(ft_file_read_all(path, &text, NULL), FT_OK);
    cJSON *last = NULL;
    *first = NULL;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(l);
        const cJSON *t = j ? cJSON_GetObjectItem(j, "type") : NULL;
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "eval")) { cJSON_Delete(j); continue; }
        if (!*first) *first = j;
        else { cJSON_Delete(last); last = j; }
    }
    free(text);
    assert_non_null(last);
    return last;
}

static void test_tiny_run_learns_both(void **s) {
    (void)s;
    char sent[1100], topic[1100], run[1100], *out;
    snprintf(sent, sizeof sent, "%s", ft_test_path(g_tmp, "sent.tsv"));
    snprintf(topic, sizeof topic, "%s", ft_test_path(g_tmp, "topic.tsv"));
    write_tasks(sent, topic);
    const char *mixes[] = {"proportional", "alternate", "mixed"};
    for (int k = 0; k < 3; k++) {
        snprintf(run, sizeof run, "%s/run-%s", g_tmp, mixes[k]);
        assert_int_equal(ft_test_finetune(&out, "train --task multi --model %s --tasks sentiment=%s,topic=%s --task-weights 1,0.5 "
                                                "--task-mix %s --epochs %d --batch-size 16 --lr 3e-3 --warmup-ratio 0 --seed 3 --no-db --out %s",
                                          tiny(), sent, topic, mixes[k], k ? 4 : 10, run), 0);
        free(out);
        cJSON *first, *e = last_eval(run, &first);
        const cJSON *tasks = cJSON_GetObjectItem(e, "tasks");
        double sa = num(cJSON_GetObjectItem(tasks, "sentiment"), "accuracy"), ta = num(cJSON_GetObjectItem(tasks, "topic"), "accuracy");
        printf("  %-12s step-0 accuracy %.3f (macro) -> sentiment %.3f, topic %.3f, macro %.3f\n", mixes[k], num(first, "accuracy"), sa, ta,
               num(e, "accuracy"));
        assert_true(fabs(num(e, "accuracy") - (sa + ta) / 2) < 1e-9);
        assert_true(num(e, "sentiment_accuracy") == sa);
        if (k == 0) {   /* the long run learns both tasks */
            assert_true(sa >= 0.9);
            assert_true(ta >= 0.9);
            assert_true(num(first, "accuracy") < 0.8);
        }
        cJSON_Delete(first);
        cJSON_Delete(e);
    }
    /* predict: every head; --head: one */
    snprintf(run, sizeof run, "%s/run-proportional/final", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'a was good it the' --json", run), 0);
    cJSON *j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    const cJSON *t = cJSON_GetObjectItem(j, "tasks");
    printf("  predict: %s", out);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "sentiment"), "label")->valuestring, "positive");
    cJSON_Delete(j);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --text 'the team was it a' --json", run), 0);
    j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tasks"), "topic"), "label")->valuestring, "sports");
    cJSON_Delete(j);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "predict --model %s --head topic --text 'the market was it a'", run), 0);
    assert_true(!strncmp(out, "business\t", 9));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "eval --model %s --head topic --data %s --json", run, topic), 0);
    j = cJSON_Parse(strchr(out, '{'));
    assert_non_null(j);
    assert_true(num(j, "accuracy") >= 0.9);
    cJSON_Delete(j);
    free(out);
    /* the serving engine: every head of each text, batched; the same as the head's own prediction */
    ft_engine_params ep = ft_engine_default_params();
    ft_engine *e;
    assert_int_equal(ft_engine_create(&e, &ep), FT_OK);
    assert_int_equal(ft_engine_load_model(e, "mt", run), FT_OK);
    char names[4][64];
    assert_int_equal(ft_engine_model_heads(e, "mt", names, 4), 2);
    assert_string_equal(names[0], "sentiment");
    assert_string_equal(names[1], "topic");
    const char *texts[] = {"a was good it the", "the team was it a", "the market was it a bad"};
    ft_prediction preds[3 * 2], one[3];
    assert_int_equal(ft_engine_predict_heads(e, "mt", texts, 3, preds, NULL, NULL), FT_OK);
    assert_int_equal(ft_engine_predict(e, "mt", texts, 3, one, NULL, NULL), FT_OK);   /* the first head */
    ft_multitask *mt;
    ft_tokenizer *tok;
    assert_int_equal(ft_multitask_load(&mt, run, NULL), FT_OK);
    assert_int_equal(ft_tokenizer_load(&tok, run), FT_OK);
    ft_predict_options po = ft_predict_default_options();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(one[i].label, preds[i * 2].label);
        for (int h = 0; h < 2; h++) {
            ft_prediction ref;
            assert_int_equal(ft_multitask_select(mt, h), FT_OK);
            assert_int_equal(ft_encoder_predict(&ref, ft_multitask_encoder(mt), tok, texts[i], NULL, &po), FT_OK);
            const ft_prediction *p = &preds[i * 2 + h];
            assert_int_equal(p->num_labels, h ? 3 : 2);
            assert_int_equal(p->label, ref.label);
            assert_string_equal(p->label_names[p->label], ref.label_names[ref.label]);
            for (int k = 0; k < p->num_labels; k++) assert_true(fabsf(p->probs[k] - ref.probs[k]) < 1e-5f);
            printf("  engine: '%s' %s -> %s (%.4f)\n", texts[i], names[h], p->label_names[p->label], (double)p->probs[p->label]);
            ft_prediction_free(&ref);
        }
        ft_prediction_free(&one[i]);
    }
    for (int i = 0; i < 6; i++) ft_prediction_free(&preds[i]);
    ft_tokenizer_free(tok);
    ft_multitask_close(mt);
    ft_engine_free(e);
    /* errors name the problem */
    assert_int_not_equal(ft_test_finetune(&out, "train --task multi --model %s --tasks sentiment=%s --task-weights 1,2 --no-db --out %s/bad",
                                          tiny(), sent, g_tmp), 0);
    assert_non_null(strstr(out, "--task-weights"));
    free(out);
    assert_int_not_equal(ft_test_finetune(&out, "train --task multi --model %s --no-db --out %s/bad2", tiny(), g_tmp), 0);
    assert_non_null(strstr(out, "--tasks"));
    free(out);
}

int main(void) {
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-multitask") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_check),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_tiny_run_learns_both),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
