/* test_model.c — model-level behaviour on small random models of both families:
 * save/load round trip, KV-cache decoding equal to the full forward, packed sequences equal to
 * separate ones, gradient accumulation equal to the large batch, and clear errors for bad input. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *k_gpt2 = "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":64,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
                            "\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0,\"initializer_range\":0.2}";
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":101,\"hidden_size\":32,"
                             "\"intermediate_size\":48,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"initializer_range\":0.2}";

static ft_model *make(const char *json) {
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, json, "test"), 0);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &c, 42, ft_backend_cpu()), 0);
    return m;
}

static char *tmpdir(void) {
    char *d = malloc(64);
    assert_int_equal(ft_test_tmpdir_make(d, 64, "ft_model"), 0);
    return d;
}

static void rmdir_all(const char *d) { assert_int_equal(ft_test_tmpdir_remove(d), 0); }

static void roundtrip(const char *json) {
    ft_model *m = make(json);
    char *d = tmpdir();
    assert_int_equal(ft_model_save(m, d), 0);
    ft_model *m2;
    int rc = ft_model_load(&m2, d, ft_backend_cpu());
    if (rc) printf("%s\n", ft_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(ft_model_num_params(m), ft_model_num_params(m2));
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *a = ft_model_param(m, i), *b = ft_model_param(m2, i);
        assert_int_equal(memcmp(a->t.data, b->t.data, ft_tensor_nbytes(&a->t)), 0);
    }
    printf("  %s: %d tensors saved and reloaded bit-identically\n", ft_model_get_config(m)->model_type, ft_model_num_params(m));
    ft_model_free(m2);
    ft_model_free(m);
    rmdir_all(d);
    free(d);
}

static void test_save_load_roundtrip(void **s) { (void)s; roundtrip(k_gpt2); roundtrip(k_llama); }

static void kv_cache(const char *json) {
    ft_model *m = make(json);
    const ft_model_config *c = ft_model_get_config(m);
    int T = 13, V = c->vocab_size;
    int ids[13];
    for (int i = 0; i < T; i++) ids[i] = (i * 31 + 7) % V;
    assert_int_equal(ft_model_forward(m, ids, NULL, NULL, NULL, 1, T, NULL), 0);
    float *full = malloc(sizeof(float) * (size_t)(T * V));
    memcpy(full, ft_model_logits(m), sizeof(float) * (size_t)(T * V));
    float *lg = malloc(sizeof(float) * (size_t)V);
    assert_int_equal(ft_model_kv_reset(m), 0);
    assert_int_equal(ft_model_decode(m, ids, 5, 0, lg), 0); /* prefill 5 */
    char name[64];
    snprintf(name, sizeof name, "%s prefill logits[4]", c->model_type);
    assert_true(ft_check_close(name, lg, full + 4 * V, (size_t)V, 1e-5));
    for (int t = 5; t < T; t++) {
        assert_int_equal(ft_model_decode(m, &ids[t], 1, t, lg), 0);
        snprintf(name, sizeof name, "%s cached decode logits[%d]", c->model_type, t);
        assert_true(ft_check_close(name, lg, full + (size_t)t * V, (size_t)V, 1e-5));
    }
    /* wrong position is an error, not a crash */
    assert_int_equal(ft_model_decode(m, ids, 1, 3, lg), FT_ERR_INVALID);
    free(full);
    free(lg);
    ft_model_free(m);
}

static void test_kv_cache_matches_forward(void **s) { (void)s; kv_cache(k_gpt2); kv_cache(k_llama); }

/* two examples packed into one row (segment ids, positions restarting) == each run alone */
static void packing(const char *json) {
    ft_model *m = make(json);
    const ft_model_config *c = ft_model_get_config(m);
    int V = c->vocab_size, A = 7, Bn = 9, T = A + Bn;
    int ids[16], pos[16], seg[16];
    for (int i = 0; i < T; i++) {
        ids[i] = (i * 13 + 5) % V;
        pos[i] = i < A ? i : i - A;
        seg[i] = i < A ? 0 : 1;
    }
    assert_int_equal(ft_model_forward(m, ids, NULL, pos, seg, 1, T, NULL), 0);
    float *packed = malloc(sizeof(float) * (size_t)(T * V));
    memcpy(packed, ft_model_logits(m), sizeof(float) * (size_t)(T * V));
    assert_int_equal(ft_model_forward(m, ids, NULL, NULL, NULL, 1, A, NULL), 0);
    char name[64];
    snprintf(name, sizeof name, "%s packed example 1", c->model_type);
    assert_true(ft_check_close(name, packed, ft_model_logits(m), (size_t)(A * V), 1e-5));
    assert_int_equal(ft_model_forward(m, ids + A, NULL, NULL, NULL, 1, Bn, NULL), 0);
    snprintf(name, sizeof name, "%s packed example 2", c->model_type);
    assert_true(ft_check_close(name, packed + (size_t)A * V, ft_model_logits(m), (size_t)(Bn * V), 1e-5));
    free(packed);
    ft_model_free(m);
}

static void test_packing_matches_separate(void **s) { (void)s; packing(k_gpt2); packing(k_llama); }

/* two micro-batches with grad_scale = 1/total_targets == one batch of both */
static void accumulation(const char *json) {
    ft_model *m = make(json);
    const ft_model_config *c = ft_model_get_config(m);
    int V = c->vocab_size, T = 10;
    int ids[2 * 10], tg[2 * 10];
    for (int i = 0; i < 2 * T; i++) { ids[i] = (i * 17 + 3) % V; tg[i] = (i % 4 == 3) ? FT_IGNORE_INDEX : (i * 7 + 1) % V; }
    tg[T - 1] = FT_IGNORE_INDEX;
    for (int i = 0; i < 3; i++) tg[T + i] = FT_IGNORE_INDEX; /* unequal target counts per micro-batch */
    int total = 0;
    for (int i = 0; i < 2 * T; i++) total += tg[i] != FT_IGNORE_INDEX;
    assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 2, T, NULL), 0);
    assert_int_equal(ft_model_zero_grad(m), 0);
    assert_int_equal(ft_model_backward(m, 0.0f), 0);
    int np = ft_model_num_params(m);
    float **big = calloc((size_t)np, sizeof *big);
    for (int i = 0; i < np; i++) {
        ft_param *p = ft_model_param(m, i);
        big[i] = malloc(ft_tensor_nbytes(&p->t));
        memcpy(big[i], p->grad, ft_tensor_nbytes(&p->t));
    }
    assert_int_equal(ft_model_zero_grad(m), 0);
    for (int mb = 0; mb < 2; mb++) {
        assert_int_equal(ft_model_forward(m, ids + mb * T, tg + mb * T, NULL, NULL, 1, T, NULL), 0);
        assert_int_equal(ft_model_backward(m, 1.0f / (float)total), 0);
    }
    double worst = 0;
    for (int i = 0; i < np; i++) {
        ft_param *p = ft_model_param(m, i);
        ft_cmp cmp = ft_compare_f32(p->grad, big[i], (size_t)ft_tensor_numel(&p->t));
        if (cmp.max_rel > worst) worst = cmp.max_rel;
        free(big[i]);
    }
    free(big);
    printf("  %s: accumulated micro-batches vs large batch, max rel error over %d gradients %.3e\n", c->model_type, np, worst);
    assert_true(worst <= 1e-5);
    ft_model_free(m);
}

static void test_accumulation_equals_large_batch(void **s) { (void)s; accumulation(k_gpt2); accumulation(k_llama); }

/* model gradients (with dropout on: the masks must match between forward and backward) against
 * central finite differences of the loss, for a sample of elements of every parameter tensor */
static void finite_differences(const char *json) {
    char cfgjson[1024];
    snprintf(cfgjson, sizeof cfgjson, "%s", json);
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, cfgjson, "test"), 0);
    c.resid_dropout = 0.2f; c.embd_dropout = 0.1f;
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &c, 7, ft_backend_ref()), 0);
    int V = c.vocab_size, T = 6;
    int ids[6], tg[6];
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
        int64_t n = ft_tensor_numel(&p->t);
        for (int k = 0; k < 6; k++) {
            int64_t j = (k * 7919 + i * 104729) % n;
            float orig = w[j], h = 1e-2f, lp, lm;
            w[j] = orig + h; assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 1, T, &lp), 0);
            w[j] = orig - h; assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, 1, T, &lm), 0);
            w[j] = orig;
            double fd = ((double)lp - lm) / (2.0 * h), g = p->grad[j];
            double err = fabs(fd - g) / (fabs(fd) + fabs(g) + 1e-2); /* floor: f32 loss noise / 2h ~ 3e-5 */
            if (err > worst) worst = err;
            checked++;
        }
    }
    printf("  %s (dropout on): %d gradient elements vs central differences, max rel error %.3e\n", c.model_type, checked, worst);
    assert_true(worst < 2e-2);
    ft_model_free(m);
}

static void test_gradients_finite_differences(void **s) { (void)s; finite_differences(k_gpt2); finite_differences(k_llama); }

static void write_file(const char *dir, const char *name, const char *text) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(ft_file_write_atomic(p, text, strlen(text)), 0);
}

static void expect_load_error(const char *dir, int code, const char *needle) {
    ft_model *m = NULL;
    int rc = ft_model_load(&m, dir, ft_backend_cpu());
    printf("  expected error: %s\n", ft_last_error());
    assert_int_equal(rc, code);
    assert_null(m);
    assert_non_null(strstr(ft_last_error(), needle));
}

static void test_bad_model_dirs(void **s) {
    (void)s;
    expect_load_error("/nonexistent/model", FT_ERR_NOT_FOUND, "/nonexistent/model");
    char *d = tmpdir();
    expect_load_error(d, FT_ERR_NOT_FOUND, "config.json");
    write_file(d, "config.json", "{\"model_type\":\"t5\",\"architectures\":[\"T5ForConditionalGeneration\"]}");
    expect_load_error(d, FT_ERR_UNSUPPORTED, "unknown architecture");
    write_file(d, "config.json", "{\"model_type\": gpt2}");
    expect_load_error(d, FT_ERR_FORMAT, "invalid JSON");
    write_file(d, "config.json", "{\"model_type\":\"mistral\",\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":8,"
                                 "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"max_position_embeddings\":64,\"sliding_window\":16}");
    expect_load_error(d, FT_ERR_UNSUPPORTED, "sliding");
    write_file(d, "config.json", k_gpt2);
    write_file(d, "pytorch_model.bin", "not really");
    expect_load_error(d, FT_ERR_UNSUPPORTED, "safetensors");
    rmdir_all(d);
    free(d);

    /* missing tensor and shape mismatch: write a checkpoint by hand */
    ft_model *m = make(k_gpt2);
    d = tmpdir();
    assert_int_equal(ft_model_save(m, d), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, path), 0);
    int n = ft_st_count(st);
    ft_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    int k = 0, bad_shape_done = 0;
    for (int i = 0; i < n; i++) {
        const ft_st_entry *e = ft_st_at(st, i);
        if (strcmp(e->name, "transformer.h.1.mlp.c_fc.bias") == 0) continue; /* drop one */
        ts[k].name = e->name; ts[k].dtype = e->dtype; ts[k].ndim = e->ndim; ts[k].data = e->data;
        memcpy(ts[k].shape, e->shape, sizeof e->shape);
        k++;
    }
    char path2[4200];
    snprintf(path2, sizeof path2, "%s/model.safetensors.new", d);
    assert_int_equal(ft_st_write(path2, ts, k, NULL, 0), 0);
    ft_st_close(st);
    assert_int_equal(rename(path2, path), 0);
    expect_load_error(d, FT_ERR_NOT_FOUND, "transformer.h.1.mlp.c_fc.bias");
    /* shape mismatch: a config that disagrees with the checkpoint */
    write_file(d, "config.json", "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":64,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,\"n_inner\":64}");
    expect_load_error(d, FT_ERR_SHAPE, "c_fc");
    (void)bad_shape_done;
    free(ts);
    rmdir_all(d);
    free(d);
    ft_model_free(m);
}

static void test_bad_tokens(void **s) {
    (void)s;
    ft_model *m = make(k_gpt2);
    int ids[4] = {1, 2, 500, 3};
    assert_int_equal(ft_model_forward(m, ids, NULL, NULL, NULL, 1, 4, NULL), FT_ERR_RANGE);
    printf("  expected error: %s\n", ft_last_error());
    int ok[4] = {1, 2, 3, 4};
    assert_int_equal(ft_model_forward(m, ok, NULL, NULL, NULL, 1, 65, NULL), FT_ERR_RANGE); /* > context */
    printf("  expected error: %s\n", ft_last_error());
    ft_model_free(m);
}

int main(void) {
    ft_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_kv_cache_matches_forward),
        cmocka_unit_test(test_packing_matches_separate),
        cmocka_unit_test(test_accumulation_equals_large_batch),
        cmocka_unit_test(test_gradients_finite_differences),
        cmocka_unit_test(test_bad_model_dirs),
        cmocka_unit_test(test_bad_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
