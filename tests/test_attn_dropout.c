/* test_attn_dropout.c — dropout on the attention probabilities (training mode; backend.h):
 *  - kernels: with V = identity the output rows ARE the dropped probabilities, so the fraction of zeros
 *    (binomial, 5 sigma) and the survivors' scale 1/(1-p) are read off directly, for the encoder and the
 *    causal kernels of both backends; the masks of ref and cpu are the same entries; p = 0 is the plain kernel
 *    bit for bit; ref vs cpu forward and backward agree with dropout on;
 *  - models: gradients against central finite differences of the training loss (fixed seed = fixed masks)
 *    for GPT-2 / Llama (random) and BERT / DistilBERT (fixtures) with only attention dropout on; evaluation
 *    mode bit-identical to a config without attention dropout; ref vs cpu backends with dropout on. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P_DROP 0.3f
#define TOL 1e-4

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static float *rnd(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = frand(&seed) * scale;
    return x;
}

/* out rows = dropped probability rows (V = identity): counts zeros among the probabilities > 0 and the
 * worst relative error of the survivors against P / (1-p) */
typedef struct { size_t n, zeros; double worst; } drop_stats;
static void tally(drop_stats *st, float pd, float p) {
    if (p <= 0) return;
    st->n++;
    if (pd == 0.0f) { st->zeros++; return; }
    double e = fabs((double)pd - (double)p / (1.0 - P_DROP)) / ((double)p / (1.0 - P_DROP));
    if (e > st->worst) st->worst = e;
}
static void check_stats(const char *what, const drop_stats *st) {
    double mu = st->n * (double)P_DROP, sd = sqrt(st->n * (double)P_DROP * (1.0 - P_DROP));
    double z = ((double)st->zeros - mu) / sd;
    printf("  %s: %zu of %zu probabilities zeroed (%.4f, p = %.2f, z = %+.2f), survivors vs P/(1-p) max rel error %.2e\n",
           what, st->zeros, st->n, (double)st->zeros / st->n, (double)P_DROP, z, st->worst);
    assert_true(fabs(z) < 5.0);
    assert_true(st->worst < 1e-5);
}

static void test_kernel_fraction_and_scale(void **s) {
    (void)s;
    /* encoder kernel: B=2, NH=4, T=HS=64, q, k random, v = identity per head */
    int B = 2, NH = 4, T = 64, HS = 64, C = NH * HS;
    size_t NC = (size_t)B * T * C, NA = (size_t)B * NH * T * T;
    float *q = rnd(NC, 1, 1.0f), *k = rnd(NC, 2, 1.0f), *v = calloc(NC, sizeof(float));
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T; j++)
            for (int h = 0; h < NH; h++) v[((size_t)b * T + j) * C + h * HS + j] = 1.0f;
    float *out[2], *att = malloc(NA * sizeof(float));
    void (*fw[2])(void *, float *, float *, const float *, const float *, const float *, const int *, int, int, int, int, float,
                  unsigned long long) = {ft_ref_enc_attention_dropout_forward, ft_cpu_enc_attention_dropout_forward};
    const char *names[2] = {"encoder ref", "encoder cpu"};
    for (int be = 0; be < 2; be++) {
        out[be] = malloc(NC * sizeof(float));
        fw[be](NULL, out[be], att, q, k, v, NULL, B, T, NH, HS, P_DROP, 1234);
        drop_stats st = {0};
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < T; j++)
                        tally(&st, out[be][((size_t)b * T + t) * C + h * HS + j], att[(((size_t)b * NH + h) * T + t) * T + j]);
        check_stats(names[be], &st);
    }
    size_t differ = 0;
    for (size_t i = 0; i < NC; i++) differ += (out[0][i] == 0.0f) != (out[1][i] == 0.0f);
    printf("  encoder: ref and cpu drop the same entries (%zu differ)\n", differ);
    assert_int_equal(differ, 0);
    free(out[0]); free(out[1]); free(att); free(q); free(k); free(v);

    /* causal kernel: NH = NKV = 4, T = HS = 64, v = identity per head; the j <= t entries */
    int R = 3 * NH * HS;
    size_t NQ = (size_t)B * T * R;
    float *qkv = rnd(NQ, 3, 1.0f);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T; j++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < HS; i++) qkv[((size_t)b * T + j) * R + (size_t)(2 * NH + h) * HS + i] = i == j ? 1.0f : 0.0f;
    att = malloc(NA * sizeof(float));
    void (*cw[2])(void *, float *, float *, const float *, const int *, int, int, int, int, int, float, unsigned long long) = {
        ft_ref_attention_dropout_forward, ft_cpu_attention_dropout_forward};
    const char *cnames[2] = {"causal ref", "causal cpu"};
    for (int be = 0; be < 2; be++) {
        out[be] = malloc(NC * sizeof(float));
        cw[be](NULL, out[be], att, qkv, NULL, B, T, NH, NH, HS, P_DROP, 99);
        drop_stats st = {0};
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++)
                    for (int j = 0; j <= t; j++)
                        tally(&st, out[be][((size_t)b * T + t) * C + h * HS + j], att[(((size_t)b * NH + h) * T + t) * T + j]);
        check_stats(cnames[be], &st);
    }
    differ = 0;
    for (size_t i = 0; i < NC; i++) differ += (out[0][i] == 0.0f) != (out[1][i] == 0.0f);
    printf("  causal: ref and cpu drop the same entries (%zu differ)\n", differ);
    assert_int_equal(differ, 0);
    free(out[0]); free(out[1]); free(att); free(qkv);
}

/* ref vs cpu with dropout on (forward out, att; backward gradients), and p = 0 == the plain kernels bit for bit */
static void test_kernel_ref_vs_cpu(void **s) {
    (void)s;
    int B = 2, NH = 4, NKV = 2, T = 37, HS = 16, C = NH * HS, R = (NH + 2 * NKV) * HS;
    size_t NC = (size_t)B * T * C, NA = (size_t)B * NH * T * T, NQ = (size_t)B * T * R;
    int mask[2 * 37], seg[2 * 37];
    for (int i = 0; i < B * T; i++) { mask[i] = i < T || i % T < 29; seg[i] = (i % T) / 13; }
    /* encoder */
    float *q = rnd(NC, 4, 1.5f), *k = rnd(NC, 5, 1.5f), *v = rnd(NC, 6, 1.0f), *dout = rnd(NC, 7, 1.0f);
    float *o1 = malloc(NC * 4), *o2 = malloc(NC * 4), *a1 = malloc(NA * 4), *a2 = malloc(NA * 4);
    float *g1 = malloc(3 * NC * 4), *g2 = malloc(3 * NC * 4);
    ft_ref_enc_attention_dropout_forward(NULL, o1, a1, q, k, v, mask, B, T, NH, HS, P_DROP, 5);
    ft_cpu_enc_attention_dropout_forward(NULL, o2, a2, q, k, v, mask, B, T, NH, HS, P_DROP, 5);
    assert_true(ft_check_close("encoder dropout forward out", o2, o1, NC, TOL));
    assert_true(ft_check_close("encoder dropout forward att (undropped)", a2, a1, NA, TOL));
    ft_ref_enc_attention_dropout_backward(NULL, g1, g1 + NC, g1 + 2 * NC, dout, q, k, v, a1, B, T, NH, HS, P_DROP, 5);
    ft_cpu_enc_attention_dropout_backward(NULL, g2, g2 + NC, g2 + 2 * NC, dout, q, k, v, a2, B, T, NH, HS, P_DROP, 5);
    assert_true(ft_check_close("encoder dropout backward dq", g2, g1, NC, TOL));
    assert_true(ft_check_close("encoder dropout backward dk", g2 + NC, g1 + NC, NC, TOL));
    assert_true(ft_check_close("encoder dropout backward dv", g2 + 2 * NC, g1 + 2 * NC, NC, TOL));
    /* p = 0 variants are the plain kernels */
    for (int be = 0; be < 2; be++) {
        (be ? ft_cpu_enc_attention_forward : ft_ref_enc_attention_forward)(NULL, o1, a1, q, k, v, mask, B, T, NH, HS);
        (be ? ft_cpu_enc_attention_dropout_forward : ft_ref_enc_attention_dropout_forward)(NULL, o2, a2, q, k, v, mask, B, T, NH, HS, 0.0f, 5);
        assert_int_equal(memcmp(o1, o2, NC * 4), 0);
        assert_int_equal(memcmp(a1, a2, NA * 4), 0);
        (be ? ft_cpu_enc_attention_backward : ft_ref_enc_attention_backward)(NULL, g1, g1 + NC, g1 + 2 * NC, dout, q, k, v, a1, B, T, NH, HS);
        (be ? ft_cpu_enc_attention_dropout_backward : ft_ref_enc_attention_dropout_backward)(NULL, g2, g2 + NC, g2 + 2 * NC, dout, q, k, v, a1, B, T, NH, HS, 0.0f, 5);
        assert_int_equal(memcmp(g1, g2, 3 * NC * 4), 0);
    }
    printf("  encoder: p = 0 dropout variants bit-identical to the plain kernels (ref, cpu)\n");
    free(q); free(k); free(v); free(g1); free(g2);
    /* causal, grouped K/V heads, packed segments */
    float *qkv = rnd(NQ, 8, 1.5f), *d1 = malloc(NQ * 4), *d2 = malloc(NQ * 4), *sc = malloc(NA * 4);
    ft_ref_attention_dropout_forward(NULL, o1, a1, qkv, seg, B, T, NH, NKV, HS, P_DROP, 6);
    ft_cpu_attention_dropout_forward(NULL, o2, a2, qkv, seg, B, T, NH, NKV, HS, P_DROP, 6);
    assert_true(ft_check_close("causal dropout forward out", o2, o1, NC, TOL));
    assert_true(ft_check_close("causal dropout forward att (undropped)", a2, a1, NA, TOL));
    ft_ref_attention_dropout_backward(NULL, d1, sc, dout, qkv, a1, seg, B, T, NH, NKV, HS, P_DROP, 6);
    for (size_t i = 0; i < NA; i++) sc[i] = NAN;   /* junk workspace */
    ft_cpu_attention_dropout_backward(NULL, d2, sc, dout, qkv, a2, seg, B, T, NH, NKV, HS, P_DROP, 6);
    assert_true(ft_check_close("causal dropout backward dqkv", d2, d1, NQ, TOL));
    for (int be = 0; be < 2; be++) {
        (be ? ft_cpu_attention_forward : ft_ref_attention_forward)(NULL, o1, a1, qkv, seg, B, T, NH, NKV, HS);
        (be ? ft_cpu_attention_dropout_forward : ft_ref_attention_dropout_forward)(NULL, o2, a2, qkv, seg, B, T, NH, NKV, HS, 0.0f, 6);
        assert_int_equal(memcmp(o1, o2, NC * 4), 0);
        assert_int_equal(memcmp(a1, a2, NA * 4), 0);
        (be ? ft_cpu_attention_backward : ft_ref_attention_backward)(NULL, d1, sc, dout, qkv, a1, seg, B, T, NH, NKV, HS);
        (be ? ft_cpu_attention_dropout_backward : ft_ref_attention_dropout_backward)(NULL, d2, sc, dout, qkv, a1, seg, B, T, NH, NKV, HS, 0.0f, 6);
        assert_int_equal(memcmp(d1, d2, NQ * 4), 0);
    }
    printf("  causal: p = 0 dropout variants bit-identical to the plain kernels (ref, cpu)\n");
    free(qkv); free(d1); free(d2); free(sc); free(o1); free(o2); free(a1); free(a2); free(dout);
}

/* ------------------------------------------------------------ decoders */

static const char *k_gpt2 = "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":64,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
                            "\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":%g,\"initializer_range\":0.2}";
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":101,\"hidden_size\":32,"
                             "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"initializer_range\":0.2,\"attention_dropout\":%g}";

static ft_model *make_decoder(const char *fmt, double p, const ft_backend *be) {
    char json[1024];
    snprintf(json, sizeof json, fmt, p);
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, json, "test"), 0);
    assert_true(fabsf(c.attn_dropout - (float)p) < 1e-7f);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &c, 7, be), 0);
    return m;
}

static void decoder_fd(const char *fmt) {
    ft_model *m = make_decoder(fmt, P_DROP, ft_backend_ref());
    int V = ft_model_get_config(m)->vocab_size, T = 12;
    int ids[12], tg[12];
    for (int i = 0; i < T; i++) { ids[i] = (i * 11 + 2) % V; tg[i] = (i * 5 + 9) % V; }
    ft_model_set_training(m, 1, 99);
    float loss;
    assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 1, T, &loss), 0);
    assert_int_equal(ft_model_zero_grad(m), 0);
    assert_int_equal(ft_model_backward(m, 0.0f), 0);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        float *w = p->t.data;
        int64_t n = ft_tensor_numel(&p->t), best = 0;
        for (int64_t j = 1; j < n; j++) if (fabsf(p->grad[j]) > fabsf(p->grad[best])) best = j;
        for (int k = 0; k < 4; k++) {
            int64_t j = k == 0 ? best : (k * 7919 + i * 104729) % n;
            float orig = w[j], h = 1e-2f, lp, lm;
            w[j] = orig + h; assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 1, T, &lp), 0);
            w[j] = orig - h; assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 1, T, &lm), 0);
            w[j] = orig;
            double fd = ((double)lp - lm) / (2.0 * h), g = p->grad[j];
            double err = fabs(fd - g) / (fabs(fd) + fabs(g) + 1e-2);
            if (err > worst) worst = err;
            checked++;
        }
    }
    printf("  %s (attention dropout %.2f only): %d gradient elements vs central differences, max rel error %.3e\n",
           ft_model_get_config(m)->model_type, (double)P_DROP, checked, worst);
    assert_true(worst < 2e-2);
    ft_model_free(m);
}

static void test_decoder_finite_differences(void **s) { (void)s; decoder_fd(k_gpt2); decoder_fd(k_llama); }

/* evaluation mode: the same bits as a config without attention dropout; training: the dropout acts, the same
 * seed gives the same loss; ref vs cpu in training mode */
static void decoder_modes(const char *fmt) {
    ft_model *m0 = make_decoder(fmt, 0.0, ft_backend_cpu()), *m1 = make_decoder(fmt, P_DROP, ft_backend_cpu());
    ft_model *mr = make_decoder(fmt, P_DROP, ft_backend_ref());
    int V = ft_model_get_config(m0)->vocab_size, B = 2, T = 24;
    int ids[48], tg[48];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 13 + 3) % V; tg[i] = (i * 7 + 1) % V; }
    float l0, l1, t0, t1, t1b, tr;
    assert_int_equal(ft_model_forward(m0, ids, tg, NULL, NULL, B, T, &l0), 0);
    assert_int_equal(ft_model_forward(m1, ids, tg, NULL, NULL, B, T, &l1), 0);
    size_t nl = (size_t)B * T * V;
    float *lg0 = malloc(nl * 4);
    memcpy(lg0, ft_model_logits(m0), nl * 4);
    assert_int_equal(memcmp(lg0, ft_model_logits(m1), nl * 4), 0);
    ft_model_set_training(m0, 1, 5);
    ft_model_set_training(m1, 1, 5);
    ft_model_set_training(mr, 1, 5);
    assert_int_equal(ft_model_forward(m0, ids, tg, NULL, NULL, B, T, &t0), 0);
    assert_int_equal(ft_model_forward(m1, ids, tg, NULL, NULL, B, T, &t1), 0);
    assert_int_equal(ft_model_forward(m1, ids, tg, NULL, NULL, B, T, &t1b), 0);
    assert_int_equal(ft_model_forward(mr, ids, tg, NULL, NULL, B, T, &tr), 0);
    printf("  %s: eval loss %.6f == %.6f (logits bit-identical to attention dropout 0); training loss p=0 %.6f, p=%.2f %.6f "
           "(again %.6f), ref %.6f\n", ft_model_get_config(m0)->model_type, l0, l1, t0, (double)P_DROP, t1, t1b, tr);
    assert_true(l0 == l1 && t1 == t1b && t1 != t0);
    assert_true(fabsf(t1 - tr) <= 1e-5f * fabsf(tr));
    assert_int_equal(ft_model_zero_grad(m1), 0);
    assert_int_equal(ft_model_backward(m1, 0.0f), 0);
    assert_int_equal(ft_model_zero_grad(mr), 0);
    assert_int_equal(ft_model_backward(mr, 0.0f), 0);
    double worst = 0;
    for (int i = 0; i < ft_model_num_params(m1); i++) {
        ft_param *a = ft_model_param(m1, i), *b = ft_model_param(mr, i);
        ft_cmp c = ft_compare_f32(a->grad, b->grad, (size_t)ft_tensor_numel(&a->t));
        if (c.max_rel > worst) worst = c.max_rel;
    }
    printf("  %s: cpu vs ref gradients with attention dropout on, max rel error over %d tensors %.3e\n",
           ft_model_get_config(m0)->model_type, ft_model_num_params(m1), worst);
    assert_true(worst < 1e-3);
    free(lg0);
    ft_model_free(m0); ft_model_free(m1); ft_model_free(mr);
}

static void test_decoder_modes_and_backends(void **s) { (void)s; decoder_modes(k_gpt2); decoder_modes(k_llama); }

/* ------------------------------------------------------------ encoders */

/* a copy of fixture `name` (config with the attention dropout key set to p, weights linked) in a new temp dir */
static void encoder_copy(const char *name, const char *key, double p, char *dir, size_t cap) {
    char rel[256], pat[128], abs_path[4096];
    assert_int_equal(ft_test_tmpdir_make(dir, cap, "ft_adrop"), 0);
    snprintf(rel, sizeof rel, "encoder/%s/config.json", name);
    char *text;
    size_t len;
    assert_int_equal(ft_file_read_all(ft_fixture(rel), &text, &len), 0);
    snprintf(pat, sizeof pat, "\"%s\": 0.0", key);
    char *at = strstr(text, pat);
    assert_non_null(at);
    char *out = malloc(len + 64);
    int n = snprintf(out, len + 64, "%.*s\"%s\": %g%s", (int)(at - text), text, key, p, at + strlen(pat));
    assert_int_equal(ft_file_write_atomic(ft_test_path(dir, "config.json"), out, (size_t)n), 0);
    free(out);
    free(text);
    snprintf(rel, sizeof rel, "encoder/%s/model.safetensors", name);
    assert_non_null(realpath(ft_fixture(rel), abs_path));
    assert_int_equal(symlink(abs_path, ft_test_path(dir, "model.safetensors")), 0);
}

enum { EB = 2, ET = 10 };
static void encoder_batch(const ft_encoder_model *m, int *ids, int *mask, int *labels) {
    int V = ft_encoder_get_config(m)->vocab_size;
    for (int i = 0; i < EB * ET; i++) { ids[i] = (i * 17 + 5) % V; mask[i] = i < ET || i % ET < 7; }
    labels[0] = 1; labels[1] = 0;
}

static void encoder_fd(const char *name, const char *key) {
    char rel[64], dir[128];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    if (!ft_fixture_present(rel)) return;
    encoder_copy(name, key, P_DROP, dir, sizeof dir);
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, dir, 0, ft_backend_ref()), 0);
    int ids[EB * ET], mask[EB * ET], labels[EB];
    encoder_batch(m, ids, mask, labels);
    ft_encoder_set_training(m, 1, 42);
    float loss;
    assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, EB, ET, &loss), 0);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (strstr(p->name, "key.bias") || strstr(p->name, "k_lin.bias")) continue;  /* gradient 0 by symmetry */
        float *w = p->t.data;
        int64_t n = ft_tensor_numel(&p->t), best = 0;
        for (int64_t j = 1; j < n; j++) if (fabsf(p->grad[j]) > fabsf(p->grad[best])) best = j;
        if (p->grad[best] == 0.0f) continue;   /* unused (padding / token-type rows) */
        for (int k = 0; k < 2; k++) {
            int64_t j = k == 0 ? best : (k * 7919 + i * 104729) % n;
            float orig = w[j], h = 1e-2f, lp, lm;
            w[j] = orig + h; assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, EB, ET, &lp), 0);
            w[j] = orig - h; assert_int_equal(ft_encoder_forward(m, ids, NULL, mask, labels, EB, ET, &lm), 0);
            w[j] = orig;
            double fd = ((double)lp - lm) / (2.0 * h), g = p->grad[j];
            double err = fabs(fd - g) / (fabs(fd) + fabs(g) + 1e-2);
            if (err > worst) worst = err;
            checked++;
        }
    }
    printf("  %s (%s %.2f only, training): %d gradient elements vs central differences, max rel error %.3e\n",
           name, key, (double)P_DROP, checked, worst);
    assert_true(worst < 2e-2);
    ft_encoder_close(m);
    assert_int_equal(ft_test_tmpdir_remove(dir), 0);
}

static void test_encoder_finite_differences(void **s) {
    (void)s;
    encoder_fd("bert_tiny", "attention_probs_dropout_prob");
    encoder_fd("distilbert_tiny", "attention_dropout");
}

static void encoder_modes(const char *name, const char *key) {
    char rel[64], d0[128], d1[128];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    if (!ft_fixture_present(rel)) return;
    encoder_copy(name, key, 0.0, d0, sizeof d0);
    encoder_copy(name, key, P_DROP, d1, sizeof d1);
    ft_encoder_model *m0, *m1, *mr;
    assert_int_equal(ft_encoder_load(&m0, d0, 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_load(&m1, d1, 0, ft_backend_cpu()), 0);
    assert_int_equal(ft_encoder_load(&mr, d1, 0, ft_backend_ref()), 0);
    int ids[EB * ET], mask[EB * ET], labels[EB];
    encoder_batch(m0, ids, mask, labels);
    float l0, l1, t0, t1, t1b, tr;
    assert_int_equal(ft_encoder_forward(m0, ids, NULL, mask, labels, EB, ET, &l0), 0);
    assert_int_equal(ft_encoder_forward(m1, ids, NULL, mask, labels, EB, ET, &l1), 0);
    size_t nh = (size_t)EB * ET * ft_encoder_get_config(m0)->n_embd;
    assert_int_equal(memcmp(ft_encoder_hidden(m0), ft_encoder_hidden(m1), nh * 4), 0);
    ft_encoder_set_training(m0, 1, 8);
    ft_encoder_set_training(m1, 1, 8);
    ft_encoder_set_training(mr, 1, 8);
    assert_int_equal(ft_encoder_forward(m0, ids, NULL, mask, labels, EB, ET, &t0), 0);
    assert_int_equal(ft_encoder_forward(m1, ids, NULL, mask, labels, EB, ET, &t1), 0);
    assert_int_equal(ft_encoder_forward(m1, ids, NULL, mask, labels, EB, ET, &t1b), 0);
    assert_int_equal(ft_encoder_forward(mr, ids, NULL, mask, labels, EB, ET, &tr), 0);
    printf("  %s: eval loss %.6f == %.6f (hidden states bit-identical to attention dropout 0); training loss p=0 %.6f, "
           "p=%.2f %.6f (again %.6f), ref %.6f\n", name, l0, l1, t0, (double)P_DROP, t1, t1b, tr);
    assert_true(l0 == l1 && t1 == t1b && t1 != t0);
    assert_true(fabsf(t1 - tr) <= 1e-5f * fabsf(tr));
    assert_int_equal(ft_encoder_zero_grad(m1), 0);
    assert_int_equal(ft_encoder_backward(m1), 0);
    assert_int_equal(ft_encoder_zero_grad(mr), 0);
    assert_int_equal(ft_encoder_backward(mr), 0);
    double worst = 0;
    for (int i = 0; i < ft_encoder_num_params(m1); i++) {
        ft_param *a = ft_encoder_param(m1, i), *b = ft_encoder_param(mr, i);
        if (strstr(a->name, "key.bias") || strstr(a->name, "k_lin.bias")) continue;  /* 0 up to rounding */
        ft_cmp c = ft_compare_f32(a->grad, b->grad, (size_t)ft_tensor_numel(&a->t));
        if (c.max_rel > worst) worst = c.max_rel;
    }
    printf("  %s: cpu vs ref gradients with attention dropout on, max rel error over %d tensors (key biases aside) %.3e\n",
           name, ft_encoder_num_params(m1), worst);
    assert_true(worst < 1e-3);
    ft_encoder_close(m0); ft_encoder_close(m1); ft_encoder_close(mr);
    assert_int_equal(ft_test_tmpdir_remove(d0), 0);
    assert_int_equal(ft_test_tmpdir_remove(d1), 0);
}

static void test_encoder_modes_and_backends(void **s) {
    (void)s;
    encoder_modes("bert_tiny", "attention_probs_dropout_prob");
    encoder_modes("distilbert_tiny", "attention_dropout");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_fraction_and_scale),
        cmocka_unit_test(test_kernel_ref_vs_cpu),
        cmocka_unit_test(test_decoder_finite_differences),
        cmocka_unit_test(test_decoder_modes_and_backends),
        cmocka_unit_test(test_encoder_finite_differences),
        cmocka_unit_test(test_encoder_modes_and_backends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
