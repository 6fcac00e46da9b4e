/* test_wpack_train.c — bf16 training with the linear weights pre-packed (ft_optim_set_prepack, gemm_bf16.h's
 * weight packs): a few steps of a small random GPT-2 (tied LM head: the word embeddings' pack is refreshed by
 * AdamW while the embedding backward adds to their gradient) and of a small Llama (untied head, grouped K/V)
 * give the SAME losses and the same weights, bit for bit, as the same steps without packs, with AdamW (the
 * fused update) and with SGD (packs marked stale by the update, refilled by the next product); only the
 * linear weights get packs, and ft_optim_set_prepack(o, 0) / ft_optim_free take them away; weights loaded
 * into a model with packs (ft_model_load_weights) make them stale, and the next forward uses the loaded ones. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_gpt2 = "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":301,\"n_positions\":64,"
                            "\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":301,\"hidden_size\":64,"
                             "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false}";

/* steps of model (seed 3) with optimizer kind; losses[steps]; the model is returned for comparison */
static ft_model *train(const char *json, ft_optim_kind kind, int prepack, int steps, float *losses, int *packs) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, json, "test"), FT_OK);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &cfg, 3, ft_backend_cpu_bf16()), FT_OK);
    ft_optim_params op = ft_optim_default_params();
    op.kind = kind;
    op.lr = kind == FT_OPT_SGD ? 0.1f : 1e-2f;
    op.weight_decay = 0.01f;
    ft_optimizer *o;
    assert_int_equal(ft_optim_create(&o, m, &op), FT_OK);
    if (prepack) assert_int_equal(ft_optim_set_prepack(o, 1), FT_OK);
    *packs = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (p->pack) (*packs)++;
        assert_true(!p->pack || p->linear); /* only the linear layers' weights */
    }
    const int B = 2, T = 24;
    int ids[B * T + 1];
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i <= B * T; i++) ids[i] = (i * 37 + s * 11) % cfg.vocab_size;
        float loss;
        assert_int_equal(ft_model_forward(m, ids, ids + 1, NULL, NULL, B, T, &loss), FT_OK);
        assert_int_equal(ft_model_zero_grad(m), FT_OK);
        assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
        assert_int_equal(ft_optim_step(o, op.lr), FT_OK);
        losses[s] = loss;
    }
    assert_int_equal(ft_optim_set_prepack(o, 0), FT_OK);
    for (int i = 0; i < ft_model_num_params(m); i++) assert_null(ft_model_param(m, i)->pack);
    ft_optim_free(o);
    return m;
}

static void same_run(const char *json, ft_optim_kind kind, int want_packs) {
    enum { S = 4 };
    float l0[S], l1[S];
    int p0, p1;
    ft_model *a = train(json, kind, 0, S, l0, &p0), *b = train(json, kind, 1, S, l1, &p1);
    assert_int_equal(p0, 0);
    assert_int_equal(p1, want_packs);
    assert_memory_equal(l0, l1, sizeof l0);
    assert_true(l0[S - 1] != l0[0]); /* it trained */
    for (int i = 0; i < ft_model_num_params(a); i++) {
        const ft_param *pa = ft_model_param(a, i), *pb = ft_model_param(b, i);
        assert_memory_equal(pa->t.data, pb->t.data, ft_tensor_nbytes(&pa->t));
    }
    ft_model_free(a);
    ft_model_free(b);
}

static void test_gpt2_adamw(void **s) { (void)s; if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip(); same_run(k_gpt2, FT_OPT_ADAMW, 2 * 4 + 1); }
static void test_gpt2_sgd(void **s) { (void)s; if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip(); same_run(k_gpt2, FT_OPT_SGD, 2 * 4 + 1); }
static void test_llama_adamw(void **s) { (void)s; if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip(); same_run(k_llama, FT_OPT_ADAMW, 2 * 4 + 1); }

/* weights loaded into a model whose optimizer keeps packs (ft_model_load_weights): its packs go stale and are
 * refilled, so the next forward is the loaded weights' (those of another model, saved), not the packed ones' */
static void test_load_weights_invalidates(void **s) {
    (void)s;
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_gpt2, "test"), FT_OK);
    ft_model *a, *b;
    assert_int_equal(ft_model_create_random(&a, &cfg, 3, ft_backend_cpu_bf16()), FT_OK);
    assert_int_equal(ft_model_create_random(&b, &cfg, 5, ft_backend_cpu_bf16()), FT_OK);
    ft_optim_params op = ft_optim_default_params();
    ft_optimizer *o;
    assert_int_equal(ft_optim_create(&o, a, &op), FT_OK);
    assert_int_equal(ft_optim_set_prepack(o, 1), FT_OK);
    const int B = 2, T = 24;
    int ids[B * T + 1];
    for (int i = 0; i <= B * T; i++) ids[i] = (i * 37) % cfg.vocab_size;
    float la, lb;
    assert_int_equal(ft_model_forward(a, ids, ids + 1, NULL, NULL, B, T, &la), FT_OK); /* a's packs filled */
    assert_int_equal(ft_model_zero_grad(a), FT_OK);
    assert_int_equal(ft_model_backward(a, 0.0f), FT_OK);
    assert_int_equal(ft_optim_step(o, op.lr), FT_OK);                                  /* and refreshed */
    char dir[512];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "wpack_load"), 0);
    assert_int_equal(ft_model_save(b, dir), FT_OK);
    assert_int_equal(ft_model_load_weights(a, dir), FT_OK);
    assert_int_equal(ft_model_forward(a, ids, ids + 1, NULL, NULL, B, T, &la), FT_OK);
    assert_int_equal(ft_model_forward(b, ids, ids + 1, NULL, NULL, B, T, &lb), FT_OK);
    assert_memory_equal(&la, &lb, sizeof la);
    ft_test_tmpdir_remove(dir);
    ft_optim_free(o);
    ft_model_free(a);
    ft_model_free(b);
}

/* the f32 backend has no packs: set_prepack succeeds and makes none */
static void test_f32_none(void **s) {
    (void)s;
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_gpt2, "test"), FT_OK);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &cfg, 3, ft_backend_cpu()), FT_OK);
    ft_optim_params op = ft_optim_default_params();
    ft_optimizer *o;
    assert_int_equal(ft_optim_create(&o, m, &op), FT_OK);
    assert_int_equal(ft_optim_set_prepack(o, 1), FT_OK);
    for (int i = 0; i < ft_model_num_params(m); i++) assert_null(ft_model_param(m, i)->pack);
    assert_int_equal(ft_optim_prepack_bytes(ft_model_param(m, 0), ft_model_num_params(m), ft_backend_cpu()), 0);
    assert_true(ft_optim_prepack_bytes(ft_model_param(m, 0), ft_model_num_params(m), ft_backend_cpu_bf16()) > 0);
    ft_optim_free(o);
    ft_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_adamw),
        cmocka_unit_test(test_gpt2_sgd),
        cmocka_unit_test(test_llama_adamw),
        cmocka_unit_test(test_load_weights_invalidates),
        cmocka_unit_test(test_f32_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
