/* test_encoder.c — BERT / DistilBERT / RoBERTa sequence classifiers vs PyTorch + transformers.
 * For every fixture in tests/fixtures/encoder/ (tests/parity/make_encoder_fixtures.py: float64
 * references over a padded batch): logits, loss and the gradient of every parameter, on the reference
 * and the optimised CPU backends, bar 1e-5 relative (max|d| / max|ref|). Then the new kernels:
 * finite-difference checks of each backward (attention with a padding mask, erf GELU, tanh, ReLU) and
 * the optimised versions against the reference ones; and head re-initialisation (2 labels asked of a
 * 3-label checkpoint; a BertModel-style checkpoint without prefix or classifier). */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/ops.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL 1e-5

static const char *FIXTURES[] = {"bert_tiny", "distilbert_tiny", "roberta_tiny"};

static int check_fixture(const char *name, const ft_backend *be) {
    char rel[256], dir[4096], path[4200];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    if (!ft_fixture_present(rel)) return 0;
    snprintf(dir, sizeof dir, "%s", ft_fixture(rel));
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, path), 0);
    int B, T, b1, t1;
    int *ids = ft_test_read_i32(st, "input_ids", &B, &T), *tt = ft_test_read_i32(st, "token_type_ids", &b1, &t1);
    int *mask = ft_test_read_i32(st, "attention_mask", &b1, &t1), *labels = ft_test_read_i32(st, "labels", &b1, &t1);
    assert_true(ids && tt && mask && labels);
    ft_encoder_model *m;
    int rc = ft_encoder_load(&m, dir, 0, be);
    if (rc < 0) printf("load %s: %s\n", dir, ft_last_error());
    assert_int_equal(rc, 0);
    const ft_encoder_config *c = ft_encoder_get_config(m);
    printf("[%s] backend %s: %s L=%d C=%d NH=%d I=%d V=%d K=%d B=%d T=%d\n", name, be->name, c->model_type, c->n_layer,
           c->n_embd, c->n_head, c->ffn_hidden, c->vocab_size, c->num_labels, B, T);
    assert_int_equal(ft_encoder_head_reinitialised(m), 0);
    int fails = 0;
    float loss;
    assert_int_equal(ft_encoder_forward(m, ids, c->type_vocab_size > 1 ? tt : NULL, mask, labels, B, T, &loss), 0);
    size_t n = 0;
    float *ref = ft_test_read_f32(st, "logits", &n);
    assert_int_equal(n, (size_t)B * c->num_labels);
    fails += !ft_check_close("logits", ft_encoder_logits(m), ref, n, TOL);
    free(ref);
    ref = ft_test_read_f32(st, "loss", &n);
    fails += !ft_check_close("loss", &loss, ref, 1, TOL);
    free(ref);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    fails += ft_test_check_encoder_grads(m, st, TOL);
    ft_encoder_close(m);
    ft_st_close(st);
    free(ids); free(tt); free(mask); free(labels);
    return fails;
}

static void test_parity_ref(void **state) {
    (void)state;
    int fails = 0;
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) fails += check_fixture(FIXTURES[i], ft_backend_ref());
    assert_int_equal(fails, 0);
}

static void test_parity_cpu(void **state) {
    (void)state;
    int fails = 0;
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) fails += check_fixture(FIXTURES[i], ft_backend_cpu());
    assert_int_equal(fails, 0);
}

/* ------------------------------------------------------------ kernels */

static void fill(float *x, size_t n, ft_rng *r, float s) { for (size_t i = 0; i < n; i++) x[i] = s * ft_rng_normal(r); }
static double dot(const float *a, const float *b, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i]; return s; }

/* L(q, k, v) = sum(out * w); central differences in double over a few entries of each input */
static void test_attention_fd(void **state) {
    (void)state;
    enum { B = 2, T = 5, NH = 2, HS = 3, C = NH * HS, NC = B * T * C };
    int mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    ft_rng r;
    ft_rng_seed(&r, 7);
    float q[NC], k[NC], v[NC], w[NC], out[NC], att[B * NH * T * T], dq[NC], dk[NC], dv[NC];
    fill(q, NC, &r, 1); fill(k, NC, &r, 1); fill(v, NC, &r, 1); fill(w, NC, &r, 1);
    ft_ref_enc_attention_forward(NULL, out, att, q, k, v, mask, B, T, NH, HS);
    ft_ref_enc_attention_backward(NULL, dq, dk, dv, w, q, k, v, att, B, T, NH, HS);
    /* masked keys get no probability */
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) {
            const float *a = att + ((size_t)(1 * NH + h) * T + t) * T;
            assert_true(a[3] == 0.0f && a[4] == 0.0f);
        }
    float *xs[3] = {q, k, v}, *gs[3] = {dq, dk, dv};
    const char *nm[3] = {"d q", "d k", "d v"};
    for (int s = 0; s < 3; s++) {
        float fd[NC];
        for (int i = 0; i < NC; i++) {
            float keep = xs[s][i], h = 1e-2f;
            xs[s][i] = keep + h;
            ft_ref_enc_attention_forward(NULL, out, att, q, k, v, mask, B, T, NH, HS);
            double lp = dot(out, w, NC);
            xs[s][i] = keep - h;
            ft_ref_enc_attention_forward(NULL, out, att, q, k, v, mask, B, T, NH, HS);
            double lm = dot(out, w, NC);
            xs[s][i] = keep;
            fd[i] = (float)((lp - lm) / (2.0 * h));
        }
        char label[64];
        snprintf(label, sizeof label, "attention fd %s", nm[s]);
        assert_true(ft_check_close(label, gs[s], fd, NC, 2e-3));
    }
    /* gradients into masked keys / values are exactly zero */
    for (int t = 3; t < 5; t++)
        for (int i = 0; i < C; i++) assert_true(dk[(size_t)(T + t) * C + i] == 0.0f && dv[(size_t)(T + t) * C + i] == 0.0f);
}

typedef void (*fwd_fn)(void *, float *, const float *, size_t);
typedef void (*bwd_fn)(void *, float *, const float *, const float *, size_t);

static void elementwise_fd(const char *name, fwd_fn f, bwd_fn bw, int bwd_takes_out) {
    enum { n = 64 };
    ft_rng r;
    ft_rng_seed(&r, 11);
    float x[n], y[n], dy[n], dx[n], fd[n];
    fill(x, n, &r, 2);
    for (int i = 0; i < n; i++) if (fabsf(x[i]) < 0.05f) x[i] += 0.1f;  /* keep ReLU away from its kink */
    fill(dy, n, &r, 1);
    f(NULL, y, x, n);
    bw(NULL, dx, dy, bwd_takes_out ? y : x, n);
    for (int i = 0; i < n; i++) {
        float h = 1e-2f, a = x[i] + h, b = x[i] - h, ya, yb;
        f(NULL, &ya, &a, 1);
        f(NULL, &yb, &b, 1);
        fd[i] = (float)(dy[i] * ((double)ya - yb) / (2.0 * h));
    }
    char label[64];
    snprintf(label, sizeof label, "%s fd", name);
    assert_true(ft_check_close(label, dx, fd, n, 2e-3));
    /* dinp may alias dout */
    memcpy(fd, dy, sizeof dy);
    bw(NULL, fd, fd, bwd_takes_out ? y : x, n);
    assert_memory_equal(fd, dx, sizeof dx);
}

static void test_elementwise_fd(void **state) {
    (void)state;
    elementwise_fd("gelu_erf", ft_ref_gelu_erf_forward, ft_ref_gelu_erf_backward, 0);
    elementwise_fd("tanh", ft_ref_tanh_forward, ft_ref_tanh_backward, 1);
    elementwise_fd("relu", ft_ref_relu_forward, ft_ref_relu_backward, 0);
    /* exact GELU values */
    float x[3] = {-1.0f, 0.5f, 2.0f}, y[3];
    ft_ref_gelu_erf_forward(NULL, y, x, 3);
    float want[3] = {-0.15865525393145707f, 0.34573123063700656f, 1.9544997361036416f};
    assert_true(ft_check_close("gelu_erf values", y, want, 3, 1e-7));
}

static void test_cpu_vs_ref(void **state) {
    (void)state;
    enum { B = 3, T = 17, NH = 4, HS = 8, C = NH * HS, NC = B * T * C, NA = B * NH * T * T };
    int mask[B * T];
    for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) mask[b * T + t] = t < T - 5 * b;
    mask[2 * T + 0] = 1;
    ft_rng r;
    ft_rng_seed(&r, 3);
    float *buf = malloc(sizeof(float) * (size_t)(14 * NC + 2 * NA));
    float *q = buf, *k = q + NC, *v = k + NC, *dout = v + NC, *o1 = dout + NC, *o2 = o1 + NC;
    float *dq1 = o2 + NC, *dk1 = dq1 + NC, *dv1 = dk1 + NC, *dq2 = dv1 + NC, *dk2 = dq2 + NC, *dv2 = dk2 + NC;
    float *e1 = dv2 + NC, *e2 = e1 + NC, *a1 = e2 + NC, *a2 = a1 + NA;
    fill(q, NC, &r, 1.5f); fill(k, NC, &r, 1.5f); fill(v, NC, &r, 1); fill(dout, NC, &r, 1);
    ft_ref_enc_attention_forward(NULL, o1, a1, q, k, v, mask, B, T, NH, HS);
    ft_cpu_enc_attention_forward(NULL, o2, a2, q, k, v, mask, B, T, NH, HS);
    int ok = ft_check_close("attention out cpu/ref", o2, o1, NC, TOL);
    ok &= ft_check_close("attention probs cpu/ref", a2, a1, NA, TOL);
    ft_ref_enc_attention_backward(NULL, dq1, dk1, dv1, dout, q, k, v, a1, B, T, NH, HS);
    ft_cpu_enc_attention_backward(NULL, dq2, dk2, dv2, dout, q, k, v, a2, B, T, NH, HS);
    ok &= ft_check_close("attention dq cpu/ref", dq2, dq1, NC, TOL);
    ok &= ft_check_close("attention dk cpu/ref", dk2, dk1, NC, TOL);
    ok &= ft_check_close("attention dv cpu/ref", dv2, dv1, NC, TOL);
    /* no mask = all real */
    ft_ref_enc_attention_forward(NULL, o1, a1, q, k, v, NULL, B, T, NH, HS);
    ft_cpu_enc_attention_forward(NULL, o2, a2, q, k, v, NULL, B, T, NH, HS);
    ok &= ft_check_close("attention out (no mask) cpu/ref", o2, o1, NC, TOL);
    struct { const char *n; fwd_fn rf, cf; bwd_fn rb, cb; int out; } el[] = {
        {"gelu_erf", ft_ref_gelu_erf_forward, ft_cpu_gelu_erf_forward, ft_ref_gelu_erf_backward, ft_cpu_gelu_erf_backward, 0},
        {"tanh", ft_ref_tanh_forward, ft_cpu_tanh_forward, ft_ref_tanh_backward, ft_cpu_tanh_backward, 1},
        {"relu", ft_ref_relu_forward, ft_cpu_relu_forward, ft_ref_relu_backward, ft_cpu_relu_backward, 0},
    };
    for (int i = 0; i < 3; i++) {
        char label[64];
        el[i].rf(NULL, e1, q, NC);
        el[i].cf(NULL, e2, q, NC);
        snprintf(label, sizeof label, "%s forward cpu/ref", el[i].n);
        ok &= ft_check_close(label, e2, e1, NC, TOL);
        el[i].rb(NULL, o1, dout, el[i].out ? e1 : q, NC);
        el[i].cb(NULL, o2, dout, el[i].out ? e1 : q, NC);
        snprintf(label, sizeof label, "%s backward cpu/ref", el[i].n);
        ok &= ft_check_close(label, o2, o1, NC, TOL);
    }
    free(buf);
    assert_true(ok);
}

/* ------------------------------------------------------------ head re-initialisation */

static void test_head_reinit_labels(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_tiny")) skip();
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 2, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_get_config(m)->num_labels, 2);
    assert_int_equal(ft_encoder_head_reinitialised(m), 1);
    int ids[2 * 4] = {5, 6, 7, 8, 9, 10, 0, 0}, mask[8] = {1, 1, 1, 1, 1, 1, 0, 0}, labels[2] = {1, 0};
    float loss;
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, 2, 4, &loss), 0);
    printf("  2-label head on a 3-label checkpoint: loss %.6f\n", loss);
    assert_true(isfinite(loss) && loss > 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    /* bad inputs */
    labels[0] = 2;
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, 2, 4, &loss), FT_ERR_RANGE);
    printf("  %s\n", ft_last_error());
    ids[0] = 100000;
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, NULL, 2, 4, &loss), FT_ERR_RANGE);
    printf("  %s\n", ft_last_error());
    ft_encoder_close(m);
}

/* a BertModel checkpoint: no "bert." prefix, no classifier -> classifier initialised, the rest loaded */
static void test_head_reinit_base_model(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/bert_tiny")) skip();
    const char *src = ft_fixture("encoder/bert_tiny");
    char srcdir[4096], dir[] = "/tmp/ft_enc_baseXXXXXX", path[4200];
    snprintf(srcdir, sizeof srcdir, "%s", src);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", srcdir);
    char *text;
    size_t len;
    assert_int_equal(ft_file_read_all(path, &text, &len), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(ft_file_write_atomic(path, text, len), 0);
    free(text);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, srcdir), 0);
    int n = ft_st_count(st), k = 0;
    ft_st_tensor *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        const ft_st_entry *e = ft_st_at(st, i);
        if (!strncmp(e->name, "classifier.", 11)) continue;
        t[k].name = !strncmp(e->name, "bert.", 5) ? e->name + 5 : e->name;
        t[k].dtype = e->dtype;
        t[k].ndim = e->ndim;
        memcpy(t[k].shape, e->shape, sizeof e->shape);
        t[k].data = e->data;
        k++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(ft_st_write(path, t, k, NULL, 0), 0);
    free(t);
    ft_encoder_model *full, *base;
    assert_int_equal(ft_encoder_load(&full, srcdir, 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_load(&base, dir, 3, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_head_reinitialised(base), 1);
    int same = 0, total = ft_encoder_num_params(full);
    for (int i = 0; i < total; i++) {
        ft_param *a = ft_encoder_param(full, i), *b = ft_encoder_param(base, i);
        assert_string_equal(a->name, b->name);
        int eq = !memcmp(a->t.data, b->t.data, ft_tensor_nbytes(&a->t));
        if (!strncmp(a->name, "classifier.", 11)) assert_false(eq && !strcmp(a->name, "classifier.weight"));
        else { assert_true(eq); same++; }
    }
    printf("  BertModel checkpoint: %d of %d tensors loaded, classifier initialised\n", same, total);
    ft_encoder_close(full);
    ft_encoder_close(base);
    ft_st_close(st);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------ dropout (training mode) */

/* copy of fixture `name` with dropout 0.1 everywhere: config rewritten, weights symlinked */
static void dropout_copy(const char *name, char *dir) {
    char rel[256], src[4096], path[4200], path2[4200];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    snprintf(src, sizeof src, "%s", ft_fixture(rel));
    strcpy(dir, "/tmp/ft_enc_dropXXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", src);
    char *text;
    size_t len;
    assert_int_equal(ft_file_read_all(path, &text, &len), 0);
    const char *keys[] = {"\"hidden_dropout_prob\": 0.0", "\"classifier_dropout\": 0.0"};
    for (int i = 0; i < 2; i++) {
        char *at = strstr(text, keys[i]);
        assert_non_null(at);
        at[strlen(keys[i]) - 1] = '1';  /* 0.0 -> 0.1 */
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(ft_file_write_atomic(path, text, len), 0);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    snprintf(path2, sizeof path2, "%s/model.safetensors", dir);
    char abs[4096];
    assert_non_null(realpath(path, abs));
    assert_int_equal(symlink(abs, path2), 0);
}

static void remove_copy(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

static void test_dropout(void **state) {
    (void)state;
    if (!ft_fixture_present("encoder/roberta_tiny")) skip();
    char dir[64];
    dropout_copy("roberta_tiny", dir);
    ft_safetensors *st;
    char path[4200];
    snprintf(path, sizeof path, "%s/ref.safetensors", ft_fixture("encoder/roberta_tiny"));
    assert_int_equal(ft_st_open(&st, path), 0);
    int B, T, b1, t1;
    int *ids = ft_test_read_i32(st, "input_ids", &B, &T), *mask = ft_test_read_i32(st, "attention_mask", &b1, &t1);
    int *labels = ft_test_read_i32(st, "labels", &b1, &t1);
    assert_true(ids && mask && labels);
    size_t n;
    float *ref_loss = ft_test_read_f32(st, "loss", &n);
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, dir, 0, ft_backend_ref()), 0);
    assert_true(ft_encoder_get_config(m)->dropout > 0.09f && ft_encoder_get_config(m)->head_dropout > 0.09f);
    float l_eval, l1, l2, l3;
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &l_eval), 0);
    int ok = ft_check_close("eval-mode loss (dropout off)", &l_eval, ref_loss, 1, TOL);
    ft_encoder_set_training(m, 1, 42);
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &l1), 0);
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &l2), 0);
    ft_encoder_set_training(m, 1, 43);
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &l3), 0);
    printf("  loss eval %.6f, train seed 42: %.6f %.6f, seed 43: %.6f\n", l_eval, l1, l2, l3);
    ok &= l1 == l2 && l1 != l_eval && l3 != l1;
    /* backward under dropout vs central differences of the training loss (same masks) */
    ft_encoder_set_training(m, 1, 42);
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &l1), 0);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    int checked = 0;
    double worst = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (strstr(p->name, "key.bias")) continue;
        float *w = p->t.data;
        size_t cnt = (size_t)ft_tensor_numel(&p->t), best = 0;
        for (size_t j = 1; j < cnt; j++) if (fabsf(p->grad[j]) > fabsf(p->grad[best])) best = j;
        float keep = w[best], h = 1e-2f * fmaxf(1.0f, fabsf(keep)), lp, lm;
        w[best] = keep + h;
        assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &lp), 0);
        w[best] = keep - h;
        assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &lm), 0);
        w[best] = keep;
        double fd = ((double)lp - lm) / (2.0 * h), g = p->grad[best];
        double rel = fabs(fd - g) / fmax(fabs(g), 1e-3);
        if (rel > worst) worst = rel;
        if (rel > 2e-2) { printf("  %-44s [%zu] grad %.6e fd %.6e rel %.2e FAIL\n", p->name, best, g, fd, rel); ok = 0; }
        checked++;
    }
    printf("  dropout backward vs finite differences: %d tensors (largest-gradient entry each), worst rel %.2e\n", checked, worst);
    ft_encoder_close(m);
    ft_st_close(st);
    free(ids); free(mask); free(labels); free(ref_loss);
    remove_copy(dir);
    assert_true(ok);
}

/* What each family file decides, seen from outside: the longest sequence (RoBERTa's positions start after
 * padding_idx), accepted up to it and refused one past it; the transformers class a saved model of every
 * task names (family stem + head suffix). */
static void test_families(void **state) {
    (void)state;
    static const char *stem[] = {"Bert", "DistilBert", "Roberta"};
    static const struct { ft_encoder_task task; const char *suffix; } heads[] = {
        {FT_TASK_CLASSIFY, "ForSequenceClassification"}, {FT_TASK_REGRESS, "ForSequenceClassification"},
        {FT_TASK_TOKEN, "ForTokenClassification"}, {FT_TASK_MLM, "ForMaskedLM"}};
    char tmp[4096];
    assert_int_equal(ft_test_tmpdir_make(tmp, sizeof tmp, "ft_enc_families"), 0);
    for (int f = 0; f < 3; f++) {
        char rel[256], dir[4096];
        snprintf(rel, sizeof rel, "encoder/%s", FIXTURES[f]);
        if (!ft_fixture_present(rel)) continue;
        snprintf(dir, sizeof dir, "%s", ft_fixture(rel));
        ft_encoder_config c;
        assert_int_equal(ft_encoder_config_load(&c, dir), 0);
        int want = c.max_pos - (c.arch == FT_ENC_ROBERTA ? c.pad_token_id + 1 : 0), got = ft_encoder_config_max_len(&c);
        printf("  %s: max_position_embeddings %d, padding id %d -> %d tokens at most\n", FIXTURES[f], c.max_pos, c.pad_token_id, got);
        assert_int_equal(got, want);
        for (size_t h = 0; h < sizeof heads / sizeof *heads; h++) {
            ft_encoder_options o = ft_encoder_default_options();
            o.task = heads[h].task;
            ft_encoder_model *m;
            ft_log_level lvl = ft_log_get_level();
            ft_log_set_level(FT_LOG_ERROR);   /* heads missing from the fixture are initialised with a warning */
            assert_int_equal(ft_encoder_load_ex(&m, dir, &o, ft_backend_ref()), 0);
            ft_log_set_level(lvl);
            int T = got, ids[64], *lab = NULL;
            float tgt = 0.5f;
            assert_true(T + 1 <= 64);
            for (int t = 0; t < T + 1; t++) ids[t] = 5 + t % 7;
            ft_encoder_inputs in = {ids, NULL, NULL, lab, heads[h].task == FT_TASK_REGRESS ? &tgt : NULL, 1, T};
            assert_int_equal(ft_encoder_forward_ex(m, &in, NULL), 0);
            in.T = T + 1;
            assert_int_equal(ft_encoder_forward_ex(m, &in, NULL), FT_ERR_RANGE);
            char out[4200], path[4300], want_cls[64], *text;
            snprintf(out, sizeof out, "%s/%s-%d", tmp, FIXTURES[f], (int)h);
            assert_int_equal(ft_encoder_save(m, out, NULL), 0);
            snprintf(path, sizeof path, "%s/config.json", out);
            assert_int_equal(ft_file_read_all(path, &text, NULL), 0);
            snprintf(want_cls, sizeof want_cls, "\"%s%s\"", stem[f], heads[h].suffix);
            if (!strstr(text, want_cls)) printf("  %s task %s: config.json lacks %s\n", FIXTURES[f], ft_encoder_task_name(heads[h].task), want_cls);
            assert_non_null(strstr(text, want_cls));
            free(text);
            ft_encoder_close(m);
        }
    }
    ft_test_tmpdir_remove(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_attention_fd),
        cmocka_unit_test(test_elementwise_fd),
        cmocka_unit_test(test_cpu_vs_ref),
        cmocka_unit_test(test_parity_ref),
        cmocka_unit_test(test_parity_cpu),
        cmocka_unit_test(test_head_reinit_labels),
        cmocka_unit_test(test_head_reinit_base_model),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
