/* test_encoder_lora.c — LoRA on encoders against peft (tests/parity/make_encoder_lora_fixtures.py):
 * for BERT, RoBERTa and DistilBERT sequence classifiers with PEFT adapters (query,value / q_lin,v_lin,
 * r 4, alpha 8) and a perturbed trainable head, loaded from peft's save_pretrained directory: logits,
 * loss and the gradient of every trainable tensor (lora_A, lora_B, the head) on both backends; frozen
 * tensors get no gradient; save -> reload gives identical logits; merge gives peft's merged logits. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/encoder.h"
#include "finetune/lora.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

static float *read_f(ft_safetensors *st, const char *name, size_t *n) {
    const ft_st_entry *e = ft_st_find(st, name);
    if (!e) return NULL;
    size_t cnt = 1;
    for (int i = 0; i < e->ndim; i++) cnt *= (size_t)e->shape[i];
    float *buf = malloc(sizeof(float) * cnt);
    assert_int_equal(ft_st_read_f32(st, name, e->shape, e->ndim, buf), 0);
    *n = cnt;
    return buf;
}

static int *read_i(ft_safetensors *st, const char *name, int *B, int *T) {
    const ft_st_entry *e = ft_st_find(st, name);
    assert_non_null(e);
    *B = (int)e->shape[0];
    *T = e->ndim > 1 ? (int)e->shape[1] : 1;
    int *v = malloc(sizeof(int) * (size_t)(*B * *T));
    assert_int_equal(ft_st_read_i32(st, name, e->shape, e->ndim, v), 0);
    return v;
}

static int run_case(const char *name, const ft_backend *be, const char *tmp) {
    char base[4096], adapter[4096], rel[256], path[4200];
    snprintf(rel, sizeof rel, "encoder/%s", name);
    snprintf(base, sizeof base, "%s", ft_fixture(rel));
    snprintf(rel, sizeof rel, "encoder_lora/%s/adapter", name);
    snprintf(adapter, sizeof adapter, "%s", ft_fixture(rel));
    ft_safetensors *bst, *rst;
    snprintf(path, sizeof path, "%s/ref.safetensors", base);
    assert_int_equal(ft_st_open(&bst, path), 0);
    snprintf(rel, sizeof rel, "encoder_lora/%s/ref.safetensors", name);
    assert_int_equal(ft_st_open(&rst, ft_fixture(rel)), 0);
    int B, T, b1, t1;
    int *ids = read_i(bst, "input_ids", &B, &T), *tt = read_i(bst, "token_type_ids", &b1, &t1);
    int *mask = read_i(bst, "attention_mask", &b1, &t1), *labels = read_i(bst, "labels", &b1, &t1);
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, base, 0, be), 0);
    int rc = ft_encoder_load_adapter(m, adapter);
    if (rc < 0) printf("load adapter: %s\n", ft_last_error());
    assert_int_equal(rc, 0);
    const ft_encoder_config *c = ft_encoder_get_config(m);
    const int *types = c->type_vocab_size > 1 ? tt : NULL;
    printf("[%s / %s] %d adapters, %lld trainable of %lld\n", name, be->name, ft_encoder_lora_count(m),
           (long long)ft_encoder_trainable_count(m), (long long)ft_encoder_param_count(m));
    int fails = 0;
    float loss;
    assert_int_equal(ft_encoder_forward(m, ids, types, mask, labels, B, T, &loss), 0);
    size_t n;
    float *ref = read_f(rst, "logits", &n);
    fails += !ft_check_close("logits", ft_encoder_logits(m), ref, n, TOL);
    free(ref);
    ref = read_f(rst, "loss", &n);
    fails += !ft_check_close("loss", &loss, ref, 1, TOL);
    free(ref);
    assert_int_equal(ft_encoder_zero_grad(m), 0);
    assert_int_equal(ft_encoder_backward(m), 0);
    int compared = 0, trainable = 0;
    for (int i = 0; i < ft_encoder_num_params(m); i++) {
        ft_param *p = ft_encoder_param(m, i);
        if (!p->trainable) { assert_null(p->grad); continue; }
        trainable++;
        char key[320];
        snprintf(key, sizeof key, "grad.base_model.model.%s", p->name);
        ref = read_f(rst, key, &n);
        if (!ref) { printf("  no reference gradient %s\n", key); fails++; continue; }
        assert_int_equal(n, (size_t)ft_tensor_numel(&p->t));
        fails += !ft_check_close(p->name, p->grad, ref, n, TOL);
        free(ref);
        compared++;
    }
    int want = 0;
    for (int i = 0; i < ft_st_count(rst); i++) want += !strncmp(ft_st_at(rst, i)->name, "grad.", 5);
    printf("  %d trainable tensors, %d reference gradients\n", trainable, want);
    assert_int_equal(compared, want);
    /* save -> reload through the adapter directory alone */
    float *logits = malloc(sizeof(float) * (size_t)B * c->num_labels);
    memcpy(logits, ft_encoder_logits(m), sizeof(float) * (size_t)B * c->num_labels);
    char saved[4200];
    snprintf(saved, sizeof saved, "%s/%s-%s", tmp, name, be->name);
    assert_int_equal(ft_encoder_save_adapter(m, saved, base, NULL), 0);
    ft_encoder_model *m2;
    rc = ft_encoder_load_with_adapter(&m2, saved, NULL, be);
    if (rc < 0) printf("reload: %s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_encoder_forward(m2, ids, types, mask, NULL, B, T, NULL), 0);
    int same = memcmp(ft_encoder_logits(m2), logits, sizeof(float) * (size_t)B * c->num_labels) == 0;
    printf("  saved adapter reloaded: logits %s\n", same ? "bit-identical" : "DIFFERENT");
    fails += !same;
    ft_encoder_close(m2);
    /* merge */
    assert_int_equal(ft_encoder_merge_lora(m), 0);
    assert_int_equal(ft_encoder_lora_count(m), 0);
    assert_int_equal(ft_encoder_forward(m, ids, types, mask, NULL, B, T, NULL), 0);
    ref = read_f(rst, "merged_logits", &n);
    fails += !ft_check_close("merged logits", ft_encoder_logits(m), ref, n, TOL);
    free(ref);
    free(logits);
    ft_encoder_close(m);
    ft_st_close(bst);
    ft_st_close(rst);
    free(ids); free(tt); free(mask); free(labels);
    return fails;
}

static char g_tmp[1024];

static void test_peft_parity(void **s) {
    (void)s;
    const char *cases[] = {"bert_tiny", "roberta_tiny", "distilbert_tiny"};
    int fails = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fails += run_case(cases[i], ft_backend_ref(), g_tmp);
        fails += run_case(cases[i], ft_backend_cpu(), g_tmp);
    }
    assert_int_equal(fails, 0);
}

static void test_targets_and_errors(void **s) {
    (void)s;
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load(&m, ft_fixture("encoder/bert_tiny"), 0, ft_backend_cpu()), 0);
    int64_t all = ft_encoder_param_count(m);
    ft_lora_config lc = ft_lora_default_config();
    snprintf(lc.targets, sizeof lc.targets, "nonexistent");
    assert_int_equal(ft_encoder_add_lora(m, &lc, 1), FT_ERR_NOT_FOUND);
    printf("  bad target: %s\n", ft_last_error());
    snprintf(lc.targets, sizeof lc.targets, "all-linear");
    lc.r = 2;
    assert_int_equal(ft_encoder_add_lora(m, &lc, 1), 0);
    const ft_encoder_config *c = ft_encoder_get_config(m);
    printf("  all-linear: %d adapters on %d layers; trainable %lld of %lld\n", ft_encoder_lora_count(m), c->n_layer,
           (long long)ft_encoder_trainable_count(m), (long long)ft_encoder_param_count(m));
    assert_int_equal(ft_encoder_lora_count(m), 6 * c->n_layer);
    assert_true(ft_encoder_param_count(m) > all);
    /* B = 0 at init: the adapted model equals the base */
    assert_int_equal(ft_encoder_add_lora(m, &lc, 1), FT_ERR_INVALID);
    ft_encoder_close(m);
}

int main(void) {
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft-enc-lora") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peft_parity),
        cmocka_unit_test(test_targets_and_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ft_test_tmpdir_remove(g_tmp);
    return rc;
}
