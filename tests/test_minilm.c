/* test_minilm.c — the real all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2, linked by scripts/setup.sh) against
 * transformers' float64 BertModel (tests/parity/make_minilm_fixture.py -> tests/fixtures/encoder/
 * minilm_ref.safetensors): our WordPiece tokenizer gives the reference ids; ft_encoder_load_ex (classify,
 * mean pooling, 2 labels: the classifier is initialised, the body and pooler are the checkpoint's) gives
 * the last hidden states and the sentence-transformers mean-pooled embeddings within 1e-4 relative
 * (max|d| / max|ref|) on both backends; one training step runs with finite gradients.
 * Without the model directory the tests are skipped. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/classify_data.h"
#include "finetune/encoder.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_DIR "models/all-MiniLM-L6-v2"
#define TOL 1e-4

static int model_present(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", MODEL_DIR);
    if (ft_path_exists(path)) return 1;
    printf("SKIP: %s not found (run scripts/setup.sh)\n", MODEL_DIR);
    return 0;
}

typedef struct ref_batch {
    ft_safetensors *st;
    int B, T;
    int *ids, *mask, *tt;
} ref_batch;

static void ref_open(ref_batch *r) {
    assert_int_equal(ft_st_open(&r->st, ft_fixture("encoder/minilm_ref.safetensors")), 0);
    int b, t;
    r->ids = ft_test_read_i32(r->st, "input_ids", &r->B, &r->T);
    r->mask = ft_test_read_i32(r->st, "attention_mask", &b, &t);
    r->tt = ft_test_read_i32(r->st, "token_type_ids", &b, &t);
    assert_true(r->ids && r->mask && r->tt);
}

static void ref_close(ref_batch *r) {
    free(r->ids); free(r->mask); free(r->tt);
    ft_st_close(r->st);
}

static void test_tokenizer(void **state) {
    (void)state;
    if (!model_present() || !ft_fixture_present("encoder/minilm_ref.safetensors")) skip();
    ref_batch r;
    ref_open(&r);
    cJSON *sent = cJSON_Parse(ft_st_metadata(r.st, "sentences"));
    assert_true(cJSON_IsArray(sent) && cJSON_GetArraySize(sent) == r.B);
    ft_tokenizer *tok;
    int rc = ft_tokenizer_load(&tok, MODEL_DIR);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    int same = 0;
    for (int b = 0; b < r.B; b++) {
        const char *s = cJSON_GetArrayItem(sent, b)->valuestring;
        int *ids, *tt, n, trunc;
        assert_int_equal(ft_cls_encode_one(tok, s, NULL, 0, &ids, &tt, &n, &trunc), 0);
        int real = 0;
        for (int t = 0; t < r.T; t++) real += r.mask[b * r.T + t];
        int ok = n == real && trunc == 0;
        for (int t = 0; ok && t < n; t++) ok = ids[t] == r.ids[b * r.T + t] && tt[t] == r.tt[b * r.T + t];
        printf("  \"%s\": %d ids %s\n", s, n, ok ? "identical to BertTokenizerFast" : "DIFFER");
        same += ok;
        free(ids);
        free(tt);
    }
    ft_tokenizer_free(tok);
    cJSON_Delete(sent);
    ref_close(&r);
    assert_int_equal(same, r.B);
}

static void check_model(const ft_backend *be) {
    ref_batch r;
    ref_open(&r);
    ft_encoder_options o = {FT_TASK_CLASSIFY, 2, FT_POOL_MEAN};
    ft_encoder_model *m;
    int rc = ft_encoder_load_ex(&m, MODEL_DIR, &o, be);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    const ft_encoder_config *c = ft_encoder_get_config(m);
    printf("  [%s] %s L=%d C=%d NH=%d I=%d V=%d, %lld parameters, head re-initialised %d; batch %d x %d\n", be->name,
           c->model_type, c->n_layer, c->n_embd, c->n_head, c->ffn_hidden, c->vocab_size,
           (long long)ft_encoder_param_count(m), ft_encoder_head_reinitialised(m), r.B, r.T);
    assert_int_equal(ft_encoder_head_reinitialised(m), 1);
    int labels[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    assert_true(r.B <= 8);
    ft_encoder_inputs in = {r.ids, r.tt, r.mask, labels, NULL, r.B, r.T};
    float loss;
    assert_int_equal(ft_encoder_forward_ex(m, &in, &loss), 0);
    size_t n;
    float *h = ft_test_read_f32(r.st, "last_hidden_state", &n), *e;
    assert_non_null(h);
    assert_int_equal(n, (size_t)r.B * r.T * c->n_embd);
    int ok = ft_check_close("last_hidden_state", ft_encoder_hidden(m), h, n, TOL);
    e = ft_test_read_f32(r.st, "embeddings", &n);
    assert_non_null(e);
    assert_int_equal(n, (size_t)r.B * c->n_embd);
    ok &= ft_check_close("mean-pooled embeddings", ft_encoder_pooled(m), e, n, TOL);
    /* one training step on the real model: finite loss and gradients */
    assert_int_equal(ft_encoder_backward(m), 0);
    int finite = isfinite(loss);
    double gsum = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) { finite &= isfinite(p->grad[j]); gsum += fabs(p->grad[j]); }
    }
    printf("  loss %.6f with the fresh 2-label head, sum |grad| %.4e, all finite: %s\n", loss, gsum, finite ? "yes" : "NO");
    free(h);
    free(e);
    ft_encoder_close(m);
    ref_close(&r);
    assert_true(ok && finite && gsum > 0);
}

static void test_model_cpu(void **state) {
    (void)state;
    if (!model_present() || !ft_fixture_present("encoder/minilm_ref.safetensors")) skip();
    check_model(ft_backend_cpu());
}

static void test_model_ref(void **state) {
    (void)state;
    if (!model_present() || !ft_fixture_present("encoder/minilm_ref.safetensors")) skip();
    check_model(ft_backend_ref());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_model_cpu),
        cmocka_unit_test(test_model_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
