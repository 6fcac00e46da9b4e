/* test_encoder_tasks.c — the encoder's tasks, pooling and saving (encoder.h "tasks, pooling, saving"):
 *  - parity with transformers (float64 references of tests/parity/make_encoder_fixtures.py): token
 *    classification, MLM (BERT, DistilBERT, RoBERTa; decoder tied to the word embeddings), regression
 *    (MSE, a NaN target skipped), class-weighted cross-entropy with and without label smoothing, mean
 *    pooling (BERT, DistilBERT): logits, loss, pooled vectors and every gradient, on the reference and the
 *    optimised CPU backends, bar 1e-5 relative (max|d| / max|ref|);
 *  - finite differences of the new backward paths (mean pooling, MSE, token head, MLM head with the
 *    tied decoder, weighted + smoothed cross-entropy);
 *  - save -> load_ex -> identical logits, load_weights, freezing patterns, head re-initialisation
 *    messages, task / pooling from config.json, option errors. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/ops.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-5

static const char *TASK_FIXTURES[] = {"bert_token", "bert_mlm", "distilbert_mlm", "roberta_mlm",
                                      "bert_regress", "bert_weighted", "bert_mean", "distilbert_mean"};
enum { N_TASK_FIXTURES = sizeof TASK_FIXTURES / sizeof *TASK_FIXTURES };

/* ------------------------------------------------------------ fixture data */

typedef struct batch {
    int B, T;
    int *ids, *tt, *mask, *labels;   /* labels [B] or [B*T] or NULL */
    float *targets, *weights;        /* or NULL */
    float smoothing;
} batch;

static void batch_read(batch *b, ft_safetensors *st) {
    int d0, d1;
    memset(b, 0, sizeof *b);
    b->ids = ft_test_read_i32(st, "input_ids", &b->B, &b->T);
    b->tt = ft_test_read_i32(st, "token_type_ids", &d0, &d1);
    b->mask = ft_test_read_i32(st, "attention_mask", &d0, &d1);
    b->labels = ft_test_read_i32(st, "labels", &d0, &d1);
    b->targets = ft_test_read_f32(st, "targets", NULL);
    b->weights = ft_test_read_f32(st, "class_weights", NULL);
    float *eps = ft_test_read_f32(st, "label_smoothing", NULL);
    if (eps) { b->smoothing = *eps; free(eps); }
}

static void batch_free(batch *b) {
    free(b->ids); free(b->tt); free(b->mask); free(b->labels); free(b->targets); free(b->weights);
}

static ft_encoder_inputs batch_inputs(const batch *b, const ft_encoder_model *m) {
    ft_encoder_inputs in = {b->ids, ft_encoder_get_config(m)->type_vocab_size > 0 ? b->tt : NULL, b->mask,
                            b->labels, b->targets, b->B, b->T};
    return in;
}

static ft_encoder_model *load_fixture(const char *name, const ft_backend *be) {
    char rel[256];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    ft_encoder_options o = ft_encoder_default_options();
    ft_encoder_model *m;
    int rc = ft_encoder_load_ex(&m, ft_fixture(rel), &o, be);
    if (rc < 0) printf("load %s: %s\n", name, ft_last_error());
    assert_int_equal(rc, 0);
    return m;
}

static ft_safetensors *open_ref(const char *name, const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "encoder/%s/%s", name, file);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, ft_fixture(rel)), 0);
    return st;
}

static int check_task(const char *name, const char *file, const ft_backend *be) {
    char rel[256];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    if (!ft_fixture_present(rel)) return 0;
    ft_safetensors *st = open_ref(name, file);
    batch b;
    batch_read(&b, st);
    ft_encoder_model *m = load_fixture(name, be);
    const ft_encoder_config *c = ft_encoder_get_config(m);
    printf("[%s/%s] backend %s: %s task %s pooling %s L=%d C=%d V=%d K=%d B=%d T=%d%s%s\n", name, file, be->name,
           c->model_type, ft_encoder_task_name(ft_encoder_get_task(m)),
           ft_encoder_get_pooling(m) == FT_POOL_MEAN ? "mean" : "cls", c->n_layer, c->n_embd, c->vocab_size,
           c->num_labels, b.B, b.T, b.weights ? " class-weighted" : "", b.smoothing > 0 ? " smoothed" : "");
    assert_int_equal(ft_encoder_head_reinitialised(m), 0);
    if (b.weights) assert_int_equal(ft_encoder_set_class_weights(m, b.weights), 0);
    ft_encoder_set_label_smoothing(m, b.smoothing);
    int fails = 0;
    float loss;
    ft_encoder_inputs in = batch_inputs(&b, m);
    assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), 0);
    size_t n = 0;
    float *ref = ft_test_read_f32(st, "logits", &n);
    assert_int_equal(n, (size_t)ft_encoder_logit_rows(m) * ft_encoder_logit_cols(m));
    printf("  logits [%d, %d], loss denominator %.4f\n", ft_encoder_logit_rows(m), ft_encoder_logit_cols(m),
           ft_encoder_loss_denominator(m));
    fails += !ft_check_close("logits", ft_encoder_logits(m), ref, n, TOL);
    free(ref);
    if ((ref = ft_test_read_f32(st, "pooled", &n))) {
        assert_int_equal(n, (size_t)b.B * c->n_embd);
        fails += !ft_check_close("pooled", ft_encoder_pooled(m), ref, n, TOL);
        free(ref);
    }
    ref = ft_test_read_f32(st, "loss", &n);
    fails += !ft_check_close("loss", &loss, ref, 1, TOL);
    free(ref);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    fails += ft_test_check_encoder_grads(m, st, TOL);
    ft_encoder_close(m);
    ft_st_close(st);
    batch_free(&b);
    return fails;
}

static int check_all(const ft_backend *be) {
    int fails = 0;
    for (int i = 0; i < N_TASK_FIXTURES; i++) fails += check_task(TASK_FIXTURES[i], "ref.safetensors", be);
    fails += check_task("bert_weighted", "ref_smooth.safetensors", be);
    return fails;
}

static void test_parity_ref(void **state) { (void)state; assert_int_equal(check_all(ft_backend_ref()), 0); }
static void test_parity_cpu(void **state) { (void)state; assert_int_equal(check_all(ft_backend_cpu()), 0); }

/* ------------------------------------------------------------ finite differences */

static float fwd_loss(ft_encoder_model *m, const ft_encoder_inputs *in) {
    float l;
    assert_int_equal(ft_encoder_forward_ex(m, in, &l), 0);
    return l;
}

/* d(mean loss)/dw at one entry vs the central difference; returns the relative error. A step of 1e-2
 * can straddle a ReLU kink (DistilBERT's pre_classifier and FFN): when it disagrees by more than 1e-3,
 * the step 1e-3 is tried too and the better agreement counts. */
static double fd_entry(ft_encoder_model *m, const ft_encoder_inputs *in, ft_param *p, size_t j) {
    double best = INFINITY;
    for (float step = 1e-2f; step > 5e-4f && best > 1e-3; step *= 0.1f) {
        float *w = p->t.data, keep = w[j], h = step * fmaxf(1.0f, fabsf(keep));
        w[j] = keep + h;
        float lp = fwd_loss(m, in);
        w[j] = keep - h;
        float lm = fwd_loss(m, in);
        w[j] = keep;
        double fd = ((double)lp - lm) / (2.0 * h), g = p->grad[j];
        best = fmin(best, fabs(fd - g) / fmax(fabs(g), 1e-3));
    }
    return best;
}

/* the largest-gradient entry of every tensor (and, for the tied MLM decoder, the largest entry of a
 * vocabulary row no input token uses: its gradient comes from the decoder alone) */
/* a copy of fixture `name` in dir with every dropout of config.json at 0.1 (weights symlinked) */
static void dropout_copy(const char *name, char *dir, size_t cap) {
    char rel[256], path[4400], abs_path[4096];
    assert_int_equal(ft_test_tmpdir_make(dir, cap, "ft_enc_drop"), 0);
    snprintf(rel, sizeof rel, "encoder/%s/config.json", name);
    char *text;
    size_t len;
    assert_int_equal(ft_file_read_all(ft_fixture(rel), &text, &len), 0);
    const char *keys[] = {"\"hidden_dropout_prob\": 0.0", "\"classifier_dropout\": 0.0", "\"dropout\": 0.0", "\"seq_classif_dropout\": 0.0"};
    int changed = 0;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *at = strstr(text, keys[i]);
        if (at) { at[strlen(keys[i]) - 1] = '1'; changed++; }
    }
    assert_true(changed > 0);
    assert_int_equal(ft_file_write_atomic(ft_test_path(dir, "config.json"), text, len), 0);
    free(text);
    snprintf(rel, sizeof rel, "encoder/%s/model.safetensors", name);
    assert_non_null(realpath(ft_fixture(rel), abs_path));
    snprintf(path, sizeof path, "%s", ft_test_path(dir, "model.safetensors"));
    assert_int_equal(symlink(abs_path, path), 0);
}

/* dropout: the fixture's config with dropout 0.1 in training mode (seeded masks, the same every forward) */
static int fd_check_ex(const char *name, const char *file, int dropout) {
    char rel[256], tmp[256];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    if (!ft_fixture_present(rel)) return 0;
    ft_safetensors *st = open_ref(name, file);
    batch b;
    batch_read(&b, st);
    ft_encoder_model *m;
    if (dropout) {
        dropout_copy(name, tmp, sizeof tmp);
        ft_encoder_options o = ft_encoder_default_options();
        assert_int_equal(ft_encoder_load_ex(&m, tmp, &o, ft_backend_ref()), 0);
        ft_encoder_set_training(m, 1, 42);
    } else {
        m = load_fixture(name, ft_backend_ref());
    }
    if (b.weights) assert_int_equal(ft_encoder_set_class_weights(m, b.weights), 0);
    ft_encoder_set_label_smoothing(m, b.smoothing);
    ft_encoder_inputs in = batch_inputs(&b, m);
    fwd_loss(m, &in);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    /* grads are kept: the forwards below do not touch them */
    int fails = 0, checked = 0;
    double worst = 0;
    int C = ft_encoder_get_config(m)->n_embd;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (strstr(p->name, "key.bias") || strstr(p->name, "k_lin.bias")) continue;
        size_t cnt = (size_t)ft_tensor_numel(&p->t), best = 0;
        for (size_t j = 1; j < cnt; j++) if (fabsf(p->grad[j]) > fabsf(p->grad[best])) best = j;
        size_t picks[2] = {best, (size_t)-1};
        if (ft_encoder_get_task(m) == FT_TASK_MLM && strstr(p->name, "word_embeddings")) {
            float top = 0;
            for (size_t j = 0; j < cnt; j++) {
                int row = (int)(j / (size_t)C), used = 0;
                for (int t = 0; t < b.B * b.T && !used; t++) used = b.ids[t] == row;
                if (!used && fabsf(p->grad[j]) > top) { top = fabsf(p->grad[j]); picks[1] = j; }
            }
            assert_true(picks[1] != (size_t)-1 && top > 0);
        }
        for (int k = 0; k < 2 && picks[k] != (size_t)-1; k++) {
            double rel_err = fd_entry(m, &in, p, picks[k]);
            if (rel_err > worst) worst = rel_err;
            if (rel_err > 5e-3) { printf("  %-44s [%zu] grad %.6e rel %.2e FAIL\n", p->name, picks[k], p->grad[picks[k]], rel_err); fails++; }
            checked++;
        }
    }
    printf("  [%s/%s] %s%s: %d entries vs central differences, worst rel %.2e\n", name, file,
           ft_encoder_task_name(ft_encoder_get_task(m)), dropout ? " (training, dropout 0.1)" : "", checked, worst);
    ft_encoder_close(m);
    ft_st_close(st);
    batch_free(&b);
    if (dropout) ft_test_tmpdir_remove(tmp);
    return fails;
}

static int fd_check(const char *name, const char *file) { return fd_check_ex(name, file, 0); }

static void test_finite_differences(void **state) {
    (void)state;
    int fails = fd_check("bert_mean", "ref.safetensors") + fd_check("distilbert_mean", "ref.safetensors") +
                fd_check("bert_regress", "ref.safetensors") + fd_check("bert_token", "ref.safetensors") +
                fd_check("bert_mlm", "ref.safetensors") + fd_check("roberta_mlm", "ref.safetensors") +
                fd_check("bert_weighted", "ref_smooth.safetensors");
    /* in training mode with dropout: the token head, the MLM head over dropped hidden states, mean pooling
     * with the head dropout (BERT after tanh, DistilBERT after ReLU) */
    fails += fd_check_ex("bert_token", "ref.safetensors", 1) + fd_check_ex("roberta_mlm", "ref.safetensors", 1) +
             fd_check_ex("bert_mean", "ref.safetensors", 1) + fd_check_ex("distilbert_mean", "ref.safetensors", 1);
    assert_int_equal(fails, 0);
}

/* ------------------------------------------------------------ warnings (captured from stderr) */

static char g_log[8192];
static int g_saved_fd = -1;
static char g_log_path[64];

static void capture_begin(void) {
    fflush(stderr);
    strcpy(g_log_path, "/tmp/ft_enc_logXXXXXX");
    int fd = mkstemp(g_log_path);
    assert_true(fd >= 0);
    g_saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
}

static const char *capture_end(void) {
    fflush(stderr);
    dup2(g_saved_fd, 2);
    close(g_saved_fd);
    FILE *f = fopen(g_log_path, "r");
    size_t n = f ? fread(g_log, 1, sizeof g_log - 1, f) : 0;
    g_log[n] = 0;
    if (f) fclose(f);
    unlink(g_log_path);
    fputs(g_log, stdout);   /* shown in the test output */
    return g_log;
}

/* ------------------------------------------------------------ save / load */

static int same_logits(ft_encoder_model *a, ft_encoder_model *b, const batch *bt) {
    ft_encoder_inputs ia = batch_inputs(bt, a), ib = batch_inputs(bt, b);
    ia.labels = ib.labels = bt->labels;   /* MLM: logits for the labelled rows */
    float la, lb;
    assert_int_equal(ft_encoder_forward_ex(a, &ia, &la), 0);
    assert_int_equal(ft_encoder_forward_ex(b, &ib, &lb), 0);
    size_t n = (size_t)ft_encoder_logit_rows(a) * ft_encoder_logit_cols(a);
    return ft_encoder_logit_rows(a) == ft_encoder_logit_rows(b) && ft_encoder_logit_cols(a) == ft_encoder_logit_cols(b) &&
           !memcmp(ft_encoder_logits(a), ft_encoder_logits(b), n * sizeof(float)) && la == lb;
}

/* every task saved, loaded back with AUTO options: same task, pooling, labels, logits; with
 * FT_ENCODER_SAVE_DIR set the directories are kept there for make_encoder_fixtures.py --check-saved */
static void test_save_roundtrip(void **state) {
    (void)state;
    const char *keep = getenv("FT_ENCODER_SAVE_DIR");
    char tmp[256];
    assert_int_equal(ft_test_tmpdir_make(tmp, sizeof tmp, "ft_enc_save"), 0);
    const char *names[] = {"bert_token", "bert_mlm", "distilbert_mlm", "roberta_mlm", "bert_regress", "bert_mean", "distilbert_mean", "roberta_tiny"};
    const char *labels5[] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char rel[256], dir[4400];
        snprintf(rel, sizeof rel, "encoder/%s", names[i]);
        if (!ft_fixture_present(rel)) continue;
        snprintf(dir, sizeof dir, "%s/%s", keep && *keep ? keep : tmp, names[i]);
        ft_encoder_model *a = load_fixture(names[i], ft_backend_cpu()), *b;
        int K = ft_encoder_get_config(a)->num_labels;
        assert_int_equal(ft_encoder_save(a, dir, K == 5 ? labels5 : NULL), 0);
        ft_encoder_options o = ft_encoder_default_options();
        assert_int_equal(ft_encoder_load_ex(&b, dir, &o, ft_backend_cpu()), 0);
        assert_int_equal(ft_encoder_get_task(b), ft_encoder_get_task(a));
        assert_int_equal(ft_encoder_get_pooling(b), ft_encoder_get_pooling(a));
        assert_int_equal(ft_encoder_head_reinitialised(b), 0);
        assert_int_equal(ft_encoder_num_params(b), ft_encoder_num_params(a));
        if (K == 5) assert_string_equal(ft_encoder_label_name(b, 3), "B-LOC");
        ft_safetensors *st = open_ref(names[i], "ref.safetensors");
        batch bt;
        batch_read(&bt, st);
        int same = same_logits(a, b, &bt);
        printf("  %-16s saved as %s (%s pooling), %d tensors: logits %s\n", names[i], ft_encoder_task_name(ft_encoder_get_task(b)),
               ft_encoder_get_pooling(b) == FT_POOL_MEAN ? "mean" : "cls", ft_encoder_num_params(b), same ? "identical" : "DIFFER");
        assert_true(same);
        /* load_weights: perturbed weights come back */
        ft_param *p = ft_encoder_param(b, 0);
        ((float *)p->t.data)[0] += 1.0f;
        assert_int_equal(ft_encoder_load_weights(b, dir), 0);
        assert_true(same_logits(a, b, &bt));
        /* MLM: the tied decoder is not stored twice */
        if (ft_encoder_get_task(a) == FT_TASK_MLM) {
            ft_safetensors *sv;
            assert_int_equal(ft_st_open(&sv, dir), 0);
            assert_int_equal(ft_st_count(sv), ft_encoder_num_params(a));
            for (int k = 0; k < ft_st_count(sv); k++) assert_null(strstr(ft_st_at(sv, k)->name, "decoder"));
            ft_st_close(sv);
        }
        ft_st_close(st);
        batch_free(&bt);
        ft_encoder_close(a);
        ft_encoder_close(b);
    }
    /* config.json keeps the source keys and has the new ones */
    char path[4400], *text;
    snprintf(path, sizeof path, "%s/bert_regress/config.json", keep && *keep ? keep : tmp);
    if (ft_path_exists(path)) {
        assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
        const char *want[] = {"\"BertForSequenceClassification\"", "\"problem_type\":\t\"regression\"", "\"finetune_task\":\t\"regress\"",
                              "\"finetune_pooling\":\t\"cls\"", "\"num_labels\":\t1", "\"layer_norm_eps\"", "\"transformers_version\""};
        for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
            if (!strstr(text, want[k])) printf("  config.json lacks %s\n", want[k]);
            assert_non_null(strstr(text, want[k]));
        }
        free(text);
    }
    ft_test_tmpdir_remove(tmp);
}

/* a 2-label checkpoint loaded with 3 labels: the warning names the tensors and both counts */
static void test_reinit_message(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_tiny")) skip();
    char tmp[256], dir[4400];
    assert_int_equal(ft_test_tmpdir_make(tmp, sizeof tmp, "ft_enc_reinit"), 0);
    snprintf(dir, sizeof dir, "%s/two", tmp);
    ft_encoder_model *m;
    capture_begin();
    int rc = ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 2, ft_backend_cpu());
    capture_end();
    assert_int_equal(rc, 0);
    assert_null(ft_encoder_label_name(m, 0));   /* the checkpoint's 3 names do not label 2 classes */
    ft_encoder_close(m);
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 0, ft_backend_cpu()), 0);
    assert_string_equal(ft_encoder_label_name(m, 2), "LABEL_2");
    assert_null(ft_encoder_label_name(m, 3));
    ft_encoder_close(m);
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 2, ft_backend_cpu()), 0);
    const char *names[] = {"negative", "positive"};
    assert_int_equal(ft_encoder_save(m, dir, names), 0);
    ft_encoder_close(m);
    ft_encoder_options o = {FT_TASK_CLASSIFY, 3, FT_POOL_AUTO};
    capture_begin();
    rc = ft_encoder_load_ex(&m, dir, &o, ft_backend_cpu());
    const char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_int_equal(ft_encoder_head_reinitialised(m), 1);
    assert_non_null(strstr(log, ": classifier.weight has 2 labels, 3 asked for: re-initialising the classification head "
                                "(classifier.weight, classifier.bias)"));
    assert_null(ft_encoder_label_name(m, 0));   /* the 2 names do not label 3 classes */
    ft_encoder_close(m);
    assert_int_equal(ft_encoder_load(&m, dir, 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_head_reinitialised(m), 0);
    assert_string_equal(ft_encoder_label_name(m, 1), "positive");
    assert_null(ft_encoder_label_name(m, 2));
    ft_encoder_close(m);
    ft_test_tmpdir_remove(tmp);
}

/* a checkpoint without an MLM head (bert_tiny is a sequence classifier): the head is initialised
 * (dense normal(0, initializer_range), LayerNorm 1 / 0, biases 0) with warnings naming the tensors */
static void test_mlm_head_init(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_tiny")) skip();
    ft_encoder_options o = {FT_TASK_MLM, 0, FT_POOL_AUTO};
    ft_encoder_model *m;
    capture_begin();
    int rc = ft_encoder_load_ex(&m, ft_fixture("encoder/bert_tiny"), &o, ft_backend_cpu());
    const char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_int_equal(ft_encoder_get_task(m), FT_TASK_MLM);
    assert_int_equal(ft_encoder_head_reinitialised(m), 1);
    assert_non_null(strstr(log, "checkpoint has no cls.predictions.transform.dense.weight (MLM head)"));
    assert_non_null(strstr(log, "cls.predictions.transform.LayerNorm.weight"));
    assert_non_null(strstr(log, "cls.predictions.bias"));
    const ft_encoder_config *c = ft_encoder_get_config(m);
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (strncmp(p->name, "cls.", 4)) continue;
        const float *w = p->t.data;
        size_t n = (size_t)ft_tensor_numel(&p->t);
        double s = 0, s2 = 0;
        for (size_t j = 0; j < n; j++) { s += w[j]; s2 += (double)w[j] * w[j]; }
        printf("  %-44s n=%-6zu mean %.4f rms %.4f\n", p->name, n, s / n, sqrt(s2 / n));
        if (strstr(p->name, "LayerNorm.weight")) assert_true(s == (double)n && s2 == (double)n);
        else if (strstr(p->name, "bias")) assert_true(s2 == 0);
        else assert_true(fabs(sqrt(s2 / n) - c->initializer_range) < 0.1 * c->initializer_range);
    }
    /* it trains: labels on two positions, no labels = logits for every position */
    int ids[6] = {5, 6, 7, 8, 9, 0}, mask[6] = {1, 1, 1, 1, 1, 0}, labels[6] = {-100, 17, -100, -100, 40, -100};
    ft_encoder_inputs in = {ids, NULL, mask, labels, NULL, 1, 6};
    float loss;
    assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), 0);
    assert_int_equal(ft_encoder_logit_rows(m), 2);
    assert_int_equal(ft_encoder_logit_cols(m), c->vocab_size);
    assert_true(loss > 0 && isfinite(loss));
    assert_int_equal(ft_encoder_backward(m), 0);
    assert_int_equal(ft_encoder_backward(m), FT_ERR_INVALID);   /* the logits became their gradient */
    printf("  %s\n", ft_last_error());
    labels[1] = c->vocab_size;
    assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), FT_ERR_RANGE);
    in.labels = NULL;
    assert_int_equal(ft_encoder_forward_ex(m, &in, NULL), 0);
    assert_int_equal(ft_encoder_logit_rows(m), 6);
    assert_int_equal(ft_encoder_backward(m), FT_ERR_INVALID);
    ft_encoder_close(m);
}

/* ------------------------------------------------------------ freezing */

static int64_t numel_matching(ft_encoder_model *m, const char *sub) {
    int64_t n = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++)
        if (strstr(ft_encoder_param(m, i)->name, sub)) n += ft_tensor_numel(&ft_encoder_param(m, i)->t);
    return n;
}

static void test_freeze(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_tiny")) skip();
    ft_safetensors *st = open_ref("bert_tiny", "ref.safetensors");
    batch b;
    batch_read(&b, st);
    ft_encoder_model *full, *m;
    full = load_fixture("bert_tiny", ft_backend_cpu());
    m = load_fixture("bert_tiny", ft_backend_cpu());
    int64_t total = ft_encoder_param_count(m), layers = numel_matching(m, ".encoder.layer.");
    assert_int_equal(ft_encoder_trainable_count(m), total);
    /* layers:0-1 (both blocks) */
    int rc = ft_encoder_freeze(m, "layers:0-1");
    assert_int_equal(rc, 2 * 16);
    assert_int_equal(ft_encoder_trainable_count(m), total - layers);
    printf("  layers:0-1 frozen: %d tensors, trainable %lld of %lld\n", rc, (long long)ft_encoder_trainable_count(m), (long long)total);
    ft_encoder_inputs in = batch_inputs(&b, m);
    float l1, l2;
    assert_int_equal(ft_encoder_forward_ex(full, &in, &l1), 0);
    assert_int_equal(ft_encoder_backward(full), 0);
    assert_int_equal(ft_encoder_forward_ex(m, &in, &l2), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    assert_true(l1 == l2);
    int with = 0, without = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i), *q = ft_encoder_param(full, i);
        if (strstr(p->name, ".encoder.layer.")) { assert_null(p->grad); assert_false(p->trainable); without++; continue; }
        assert_non_null(p->grad);
        assert_memory_equal(p->grad, q->grad, ft_tensor_nbytes(&p->t));   /* the same numbers, bit for bit */
        with++;
    }
    printf("  %d tensors without gradient, %d with the full model's gradients\n", without, with);
    assert_int_equal(ft_encoder_freeze(m, "head"), FT_ERR_INVALID);   /* gradients exist */
    ft_encoder_close(m);

    /* embeddings and block 0 frozen: the backward stops above block 0, the rest is unchanged */
    m = load_fixture("bert_tiny", ft_backend_cpu());
    assert_int_equal(ft_encoder_freeze(m, "embeddings, layers:0"), 5 + 16);
    assert_int_equal(ft_encoder_forward_ex(m, &in, &l2), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i), *q = ft_encoder_param(full, i);
        if (!p->trainable) { assert_null(p->grad); continue; }
        assert_memory_equal(p->grad, q->grad, ft_tensor_nbytes(&p->t));
    }
    ft_encoder_close(m);

    /* train_only, globs, errors */
    m = load_fixture("bert_tiny", ft_backend_cpu());
    assert_int_equal(ft_encoder_train_only(m, "head"), 4);
    int64_t head = numel_matching(m, "pooler.") + numel_matching(m, "classifier.");
    assert_int_equal(ft_encoder_trainable_count(m), head);
    ft_encoder_close(m);
    m = load_fixture("bert_tiny", ft_backend_cpu());
    assert_int_equal(ft_encoder_freeze(m, "*.attention.self.query.*"), 4);
    assert_int_equal(ft_encoder_freeze(m, "nothing*"), FT_ERR_NOT_FOUND);
    printf("  %s\n", ft_last_error());
    assert_int_equal(ft_encoder_freeze(m, "layers:x"), FT_ERR_INVALID);
    printf("  %s\n", ft_last_error());
    ft_encoder_close(m);
    /* MLM: "head" holds the tied word embeddings (as ft_model_freeze) */
    if (ft_fixture_present("encoder/bert_mlm")) {
        m = load_fixture("bert_mlm", ft_backend_cpu());
        assert_int_equal(ft_encoder_train_only(m, "head"), 6);
        assert_int_equal(ft_encoder_trainable_count(m), numel_matching(m, "cls.") + numel_matching(m, "word_embeddings"));
        ft_encoder_close(m);
    }
    ft_encoder_close(full);
    ft_st_close(st);
    batch_free(&b);
}

/* ------------------------------------------------------------ options, scaling, sizes */

static void test_options(void **state) {
    (void)state;
    ft_encoder_task t;
    const char *names[] = {"classify", "regress", "token-classify", "mlm"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ft_encoder_task_from_name(names[i], &t), 0);
        assert_int_equal(t, FT_TASK_CLASSIFY + i);
        assert_string_equal(ft_encoder_task_name(t), names[i]);
    }
    assert_int_equal(ft_encoder_task_from_name("summarize", &t), FT_ERR_INVALID);
    ft_encoder_options o = ft_encoder_default_options();
    assert_int_equal(o.task, FT_TASK_AUTO);
    assert_int_equal(o.pooling, FT_POOL_AUTO);
    assert_int_equal(o.num_labels, 0);
    if (!ft_fixture_present("encoder/bert_regress") || !ft_fixture_present("encoder/bert_tiny")) return;
    /* AUTO from config.json */
    struct { const char *name; ft_encoder_task task; ft_encoder_pooling pool; } autos[] = {
        {"bert_token", FT_TASK_TOKEN, FT_POOL_CLS}, {"distilbert_mlm", FT_TASK_MLM, FT_POOL_CLS},
        {"bert_regress", FT_TASK_REGRESS, FT_POOL_CLS}, {"bert_mean", FT_TASK_CLASSIFY, FT_POOL_MEAN},
        {"bert_tiny", FT_TASK_CLASSIFY, FT_POOL_CLS}};
    for (size_t i = 0; i < sizeof autos / sizeof *autos; i++) {
        ft_encoder_model *m = load_fixture(autos[i].name, ft_backend_cpu());
        assert_int_equal(ft_encoder_get_task(m), autos[i].task);
        assert_int_equal(ft_encoder_get_pooling(m), autos[i].pool);
        ft_encoder_close(m);
    }
    /* a regression head on a 3-label checkpoint; class weights need classification */
    ft_encoder_model *m;
    o.task = FT_TASK_REGRESS;
    capture_begin();
    int rc = ft_encoder_load_ex(&m, ft_fixture("encoder/bert_tiny"), &o, ft_backend_cpu());
    const char *log = capture_end();
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "classifier.weight has 3 labels, 1 asked for: re-initialising the regression head"));
    float w[1] = {1};
    assert_int_equal(ft_encoder_set_class_weights(m, w), FT_ERR_INVALID);
    int ids[4] = {5, 6, 7, 8};
    assert_int_equal(ft_encoder_forward(m, ids, NULL, NULL, ids, 1, 4, NULL), FT_ERR_INVALID);
    ft_encoder_close(m);
    o.num_labels = 3;
    assert_int_equal(ft_encoder_load_ex(&m, ft_fixture("encoder/bert_tiny"), &o, ft_backend_cpu()), FT_ERR_INVALID);
    printf("  %s\n", ft_last_error());
    /* bad class weights */
    m = load_fixture("bert_tiny", ft_backend_cpu());
    float bad[3] = {1, -1, 1};
    assert_int_equal(ft_encoder_set_class_weights(m, bad), FT_ERR_INVALID);
    ft_encoder_close(m);
}

/* backward_scaled(s) = s * d(sum of losses); backward = backward_scaled(1 / denominator) */
static void test_backward_scaled(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_weighted")) skip();
    ft_safetensors *st = open_ref("bert_weighted", "ref.safetensors");
    batch b;
    batch_read(&b, st);
    ft_encoder_model *m1 = load_fixture("bert_weighted", ft_backend_ref()), *m2 = load_fixture("bert_weighted", ft_backend_ref());
    assert_int_equal(ft_encoder_set_class_weights(m1, b.weights), 0);
    assert_int_equal(ft_encoder_set_class_weights(m2, b.weights), 0);
    ft_encoder_inputs in = batch_inputs(&b, m1);
    float l;
    assert_int_equal(ft_encoder_forward_ex(m1, &in, &l), 0);
    double den = ft_encoder_loss_denominator(m1), want = 0;
    for (int i = 0; i < b.B; i++) if (b.labels[i] != -100) want += b.weights[b.labels[i]];
    printf("  weighted loss denominator %.4f (sum of the labels' weights %.4f)\n", den, want);
    assert_true(fabs(den - want) < 1e-6);
    assert_int_equal(ft_encoder_backward(m1), 0);
    assert_int_equal(ft_encoder_forward_ex(m2, &in, &l), 0);
    assert_int_equal(ft_encoder_backward_scaled(m2, (float)(2.0 / den)), 0);
    double worst = 0;
    for (int i = 0; i < ft_encoder_num_params(m1); i++) {
        ft_param *p = ft_encoder_param(m1, i), *q = ft_encoder_param(m2, i);
        for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) {
            double d = fabs(2.0 * p->grad[j] - q->grad[j]) / fmax(fabs(q->grad[j]), 1e-6);
            if (d > worst) worst = d;
        }
    }
    printf("  backward_scaled(2 / denominator) vs 2 x backward: worst rel %.2e\n", worst);
    assert_true(worst < 1e-5);
    ft_encoder_close(m1);
    ft_encoder_close(m2);
    ft_st_close(st);
    batch_free(&b);
}

static void test_sizes(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_mlm") || !ft_fixture_present("encoder/bert_token")) skip();
    ft_encoder_model *mlm = load_fixture("bert_mlm", ft_backend_cpu()), *tok = load_fixture("bert_token", ft_backend_cpu());
    const ft_encoder_config *c = ft_encoder_get_config(mlm);
    int B = 4, T = 10;
    size_t a_mlm = ft_encoder_activation_bytes(mlm, B, T), a_tok = ft_encoder_activation_bytes(tok, B, T);
    size_t logits = (size_t)B * T * c->vocab_size * sizeof(float);
    printf("  B=%d T=%d activations: mlm %zu bytes (logits [N,V] %zu), token %zu; weights %zu / %zu bytes\n", B, T, a_mlm,
           logits, a_tok, ft_encoder_weight_bytes(mlm), ft_encoder_weight_bytes(tok));
    assert_true(a_mlm > a_tok + logits);
    assert_true(ft_encoder_weight_bytes(mlm) >= (size_t)ft_encoder_param_count(mlm) * sizeof(float));
    /* the forward allocates exactly what was planned (the arena would fail otherwise) */
    ft_safetensors *st = open_ref("bert_mlm", "ref.safetensors");
    batch b;
    batch_read(&b, st);
    ft_encoder_inputs in = batch_inputs(&b, mlm);
    assert_int_equal(ft_encoder_forward_ex(mlm, &in, NULL), 0);
    ft_encoder_close(mlm);
    ft_encoder_close(tok);
    ft_st_close(st);
    batch_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_ref),
        cmocka_unit_test(test_parity_cpu),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_save_roundtrip),
        cmocka_unit_test(test_reinit_message),
        cmocka_unit_test(test_mlm_head_init),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_backward_scaled),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
