/* test_gguf_model.c — GGUF files as models (ft_model_load_gguf): the quantized matrices kept in their
 * ggml blocks (Q8_0, Q4_0, Q4_K), the gpt2 and llama tensor names, the vocabulary as a tokenizer.
 *
 *  - stories260K F32 GGUF vs the same model's Hugging Face directory (models/stories260K; q/k rows
 *    permuted from llama.cpp's interleaved rope order): logits within 1e-5, the same greedy tokens;
 *  - a random GPT-2 as an HF directory (Conv1D weights) and as the GGUF llama.cpp writes: logits within
 *    1e-5 through the full forward and the KV-cache decode;
 *  - quantized files (tests/fixtures/gguf, tests/parity/make_gguf_fixtures.py): which matrices stay
 *    quantized (dtype per parameter); logits of the quantized model vs the same file dequantized to f32
 *    (ft_model_load_gguf_f32): with f32 activations (ft_ggml_set_exact: prompt forward through dequantized
 *    tiles + sgemm, decode through the dequantize-in-register kernels) within 1e-5 of max |logit|; with int8
 *    activations (the default; prompt: the many-row integer kernels, decode: the matrix-vector ones) within
 *    4e-2, the measured difference printed, and the two int8 paths within 1e-4 of each other;
 *  - the tokenizer read from a GGUF file encodes like the HF tokenizer; errors name the file. */
#include "testutil.h"

#include "finetune/ggml_quant.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SEQ 12

static const int k_ids[T_SEQ] = {1, 403, 407, 261, 378, 275, 429, 291, 270, 261, 285, 474};

static float *forward_logits(ft_model *m, const int *ids, int T) {
    int V = ft_model_get_config(m)->vocab_size;
    assert_int_equal(ft_model_prepare(m, 1, T), FT_OK);
    float loss;
    assert_int_equal(ft_model_forward(m, ids, NULL, NULL, NULL, 1, T, &loss), FT_OK);
    float *out = malloc(sizeof(float) * (size_t)(T * V));
    memcpy(out, ft_model_logits(m), sizeof(float) * (size_t)(T * V));
    return out;
}

/* logits of every position through the KV-cache decode, one token at a time (batch 1: the direct kernels) */
static float *decode_logits(ft_model *m, const int *ids, int T) {
    int V = ft_model_get_config(m)->vocab_size;
    float *out = malloc(sizeof(float) * (size_t)(T * V));
    assert_int_equal(ft_model_kv_reset(m), FT_OK);
    for (int t = 0; t < T; t++) assert_int_equal(ft_model_decode(m, &ids[t], 1, t, out + (size_t)t * V), FT_OK);
    return out;
}

/* max |a - b| / max |b| (testutil's max-norm relative error) */
static double max_rel(const float *a, const float *b, size_t n) { return ft_compare_f32(a, b, n).max_rel; }

static int argmax(const float *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[k]) k = i;
    return k;
}

static void test_f32_gguf_matches_hf(void **state) {
    (void)state;
    if (!ft_fixture_present("convert/stories260K.gguf")) { skip(); return; }
    ft_model *g = NULL, *h = NULL;
    assert_int_equal(ft_model_load(&g, ft_fixture("convert/stories260K.gguf"), ft_backend_cpu()), FT_OK);   /* by magic */
    assert_int_equal(ft_model_load(&h, "models/stories260K", ft_backend_cpu()), FT_OK);
    int V = ft_model_get_config(h)->vocab_size;
    assert_int_equal(ft_model_get_config(g)->vocab_size, V);
    float *a = forward_logits(g, k_ids, T_SEQ), *b = forward_logits(h, k_ids, T_SEQ);
    double e = max_rel(a, b, (size_t)(T_SEQ * V));
    printf("  stories260K F32 GGUF vs HF directory: forward logits %.2e\n", e);
    assert_true(e <= 1e-5);
    for (int t = 0; t < T_SEQ; t++) assert_int_equal(argmax(a + t * V, V), argmax(b + t * V, V));
    free(a); free(b);
    a = decode_logits(g, k_ids, T_SEQ);
    b = decode_logits(h, k_ids, T_SEQ);
    assert_true(max_rel(a, b, (size_t)(T_SEQ * V)) <= 1e-5);
    free(a); free(b);
    ft_model_free(g);
    ft_model_free(h);
}

static void test_gpt2_gguf_matches_hf(void **state) {
    (void)state;
    if (!ft_fixture_present("gguf/tiny-gpt2.gguf")) { skip(); return; }
    ft_model *g = NULL, *h = NULL;
    assert_int_equal(ft_model_load_gguf(&g, ft_fixture("gguf/tiny-gpt2.gguf"), ft_backend_cpu()), FT_OK);
    assert_int_equal(ft_model_load(&h, ft_fixture("gguf/tiny-gpt2"), ft_backend_cpu()), FT_OK);
    const ft_model_config *c = ft_model_get_config(g);
    assert_int_equal(c->arch, FT_ARCH_GPT2);
    assert_int_equal(c->n_layer, 2);
    int V = c->vocab_size, ids[10] = {0, 5, 17, 63, 2, 9, 40, 41, 1, 30};
    float *a = forward_logits(g, ids, 10), *b = forward_logits(h, ids, 10);
    double e1 = max_rel(a, b, (size_t)(10 * V));
    free(a); free(b);
    a = decode_logits(g, ids, 10);
    b = decode_logits(h, ids, 10);
    double e2 = max_rel(a, b, (size_t)(10 * V));
    free(a); free(b);
    printf("  GPT-2 GGUF vs HF directory: forward %.2e, decode %.2e\n", e1, e2);
    assert_true(e1 <= 1e-5 && e2 <= 1e-5);
    ft_model_free(g);
    ft_model_free(h);
}

/* dtype of the internal parameter named name */
static ft_dtype dtype_of(ft_model *m, const char *name) {
    for (int i = 0; i < ft_model_num_params(m); i++)
        if (strcmp(ft_model_param(m, i)->name, name) == 0) return ft_model_param(m, i)->t.dtype;
    fail_msg("no parameter %s", name);
    return FT_F32;
}

typedef struct qcase { const char *file; ft_dtype q; int proj_quantized; } qcase;

static void test_quantized_vs_dequantized(void **state) {
    (void)state;
    const qcase cases[3] = {{"gguf/stories260K-q8_0.gguf", FT_Q8_0, 0}, {"gguf/stories260K-q4_0.gguf", FT_Q4_0, 0},
                            {"gguf/tiny-q4_k.gguf", FT_Q4_K, 1}};
    for (int k = 0; k < 3; k++) {
        if (!ft_fixture_present(cases[k].file)) { skip(); return; }
        ft_model *q = NULL, *f = NULL;
        assert_int_equal(ft_model_load_gguf(&q, ft_fixture(cases[k].file), ft_backend_cpu()), FT_OK);
        assert_int_equal(ft_model_load_gguf_f32(&f, ft_fixture(cases[k].file), ft_backend_cpu()), FT_OK);
        /* storage: the block matrices and the head quantized (ffn_down of stories260K has 172-value rows: f32) */
        assert_int_equal(dtype_of(q, "h.0.qkv_w"), cases[k].q);
        assert_int_equal(dtype_of(q, "h.0.attn_w"), cases[k].q);
        assert_int_equal(dtype_of(q, "h.0.fc_w"), cases[k].q);
        assert_int_equal(dtype_of(q, "h.0.proj_w"), cases[k].proj_quantized ? cases[k].q : FT_F32);
        assert_int_equal(dtype_of(q, "lm_head"), cases[k].q);
        assert_int_equal(dtype_of(q, "wte"), FT_F32);
        assert_int_equal(dtype_of(f, "h.0.qkv_w"), FT_F32);
        assert_true(ft_model_weight_bytes(q) < ft_model_weight_bytes(f) + (k == 2 ? 0 : (size_t)1 << 20));
        int V = ft_model_get_config(q)->vocab_size;
        size_t n = (size_t)(T_SEQ * V);
        float *b = forward_logits(f, k_ids, T_SEQ);
        ft_ggml_set_exact(1);
        float *a = forward_logits(q, k_ids, T_SEQ);
        double e_fwd = max_rel(a, b, n);
        free(a);
        a = decode_logits(q, k_ids, T_SEQ);
        double e_exact = max_rel(a, b, n);
        free(a);
        ft_ggml_set_exact(0);
        float *fi = forward_logits(q, k_ids, T_SEQ);
        a = decode_logits(q, k_ids, T_SEQ);
        double e_int8 = max_rel(a, b, n), e_fwd_int8 = max_rel(fi, b, n), e_same = max_rel(fi, a, n);
        free(fi);
        int same = 0;
        for (int t = 0; t < T_SEQ; t++) same += argmax(a + t * V, V) == argmax(b + t * V, V);
        printf("  %s vs dequantized f32: f32 activations: forward %.2e, decode %.2e; int8 activations: forward %.2e, decode %.2e "
               "(argmax equal at %d/%d; int8 forward vs decode %.1e)\n", cases[k].file, e_fwd, e_exact, e_fwd_int8, e_int8, same, T_SEQ, e_same);
        assert_true(e_fwd <= 1e-5);
        assert_true(e_exact <= 1e-5);
        assert_true(e_int8 <= 4e-2 && e_fwd_int8 <= 4e-2);
        assert_true(e_same <= 1e-4);   /* the prompt kernels (many rows) and the decode ones agree */
        free(a); free(b);
        ft_model_free(q);
        ft_model_free(f);
    }
}

static void test_gguf_tokenizer(void **state) {
    (void)state;
    if (!ft_fixture_present("convert/stories260K.gguf")) { skip(); return; }
    ft_tokenizer *a = NULL, *b = NULL;
    assert_int_equal(ft_tokenizer_load(&a, ft_fixture("convert/stories260K.gguf")), FT_OK);
    assert_int_equal(ft_tokenizer_load(&b, "models/stories260K"), FT_OK);
    const char *text = "Once upon a time, Lily saw a big red ball.";
    int *ia, *ib, na, nb;
    assert_int_equal(ft_tokenizer_encode(a, text, strlen(text), FT_TOK_ADD_SPECIAL, &ia, &na), FT_OK);
    assert_int_equal(ft_tokenizer_encode(b, text, strlen(text), FT_TOK_ADD_SPECIAL, &ib, &nb), FT_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, sizeof(int) * (size_t)na);
    free(ia); free(ib);
    ft_tokenizer_free(a);
    ft_tokenizer_free(b);
    /* the GPT-2 fixture has no vocabulary: a clear error */
    assert_true(ft_tokenizer_load(&a, ft_fixture("gguf/tiny-gpt2.gguf")) < 0);
    assert_non_null(strstr(ft_last_error(), "tiny-gpt2.gguf"));
}

static void test_errors(void **state) {
    (void)state;
    char dir[4096];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "gguf_model"), FT_OK);
    const char *p = ft_test_path(dir, "trunc.gguf");
    /* a GGUF header cut short */
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite("GGUF\3\0\0\0\5\0", 1, 10, f);
    fclose(f);
    ft_model *m = NULL;
    assert_true(ft_model_path_is_gguf(p));
    assert_true(ft_model_load(&m, p, ft_backend_cpu()) < 0);
    assert_null(m);
    assert_non_null(strstr(ft_last_error(), "trunc.gguf"));
    assert_false(ft_model_path_is_gguf("models/stories260K"));
    ft_test_tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_gguf_matches_hf),
        cmocka_unit_test(test_gpt2_gguf_matches_hf),
        cmocka_unit_test(test_quantized_vs_dequantized),
        cmocka_unit_test(test_gguf_tokenizer),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
