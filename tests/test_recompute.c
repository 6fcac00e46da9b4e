/* test_recompute.c — activation recomputation (model.h ft_recompute, finetune train --recompute).
 *
 *  - gradients: one training step (forward + backward) under --recompute attention and block gives the loss,
 *    logits and EVERY gradient of --recompute none bit for bit (memcmp), for a GPT-2 and a Llama (GQA, RoPE,
 *    SwiGLU) shape, full fine-tuning, LoRA (all-linear, LoRA dropout) and QLoRA (int8 base), with every
 *    dropout on (embedding, residual, attention probabilities, LoRA input) and packed segments, on both
 *    backends. Dropout masks are regenerated from (seed, layer, site) streams, so the recomputed forward must
 *    draw the same masks: a mask that did not replay would change the gradients. Two steps with different
 *    seeds run on the same arena, so a stale buffer would show too.
 *  - memory: ft_model_activation_bytes shrinks by exactly what each mode leaves out — attention: L-1 layers
 *    of [B, NH, T, T] probabilities; block: L-1 layers of every per-block buffer on top — and
 *    ft_model_attention is NULL under a recompute mode.
 *  - training states (train_state.h): a LoRA state over a shared base under attention / block gives the adapter
 *    gradients of a state without recomputation, bit for bit;
 *  - names: ft_recompute_from_name / ft_recompute_name round trip, bad names rejected. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/train_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 2
#define T 16

static const char *k_gpt2 =
    "{\"model_type\":\"gpt2\",\"vocab_size\":96,\"n_positions\":64,\"n_embd\":64,\"n_layer\":3,\"n_head\":4,"
    "\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0.1,\"embd_pdrop\":0.1,\"attn_pdrop\":0.2}";
static const char *k_llama =
    "{\"model_type\":\"llama\",\"vocab_size\":80,\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":3,"
    "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"head_dim\":8,\"max_position_embeddings\":64,"
    "\"rms_norm_eps\":1e-5,\"attention_dropout\":0.2,\"tie_word_embeddings\":false,\"rope_theta\":10000.0}";

enum { FULL, LORA, QLORA };
static const char *k_method[] = {"full", "lora", "qlora-int8"};

typedef struct result {
    float loss[2];
    float *logits;            /* [B*T, V] of the last forward */
    float *grads;             /* every gradient, concatenated (after the second backward) */
    size_t n_logits, n_grads;
} result;

static void result_free(result *r) { free(r->logits); free(r->grads); }

static ft_model *make_model(const char *json, const ft_backend *be, int method) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, json, "test"), FT_OK);
    ft_model *m = NULL;
    if (method == QLORA) assert_int_equal(ft_model_create_random_quantized(&m, &cfg, 42, be, FT_Q8_ROW), FT_OK);
    else assert_int_equal(ft_model_create_random(&m, &cfg, 42, be), FT_OK);
    if (method != FULL) {
        ft_lora_config lc = ft_lora_default_config();
        lc.r = 4;
        lc.alpha = 8;
        lc.dropout = 0.1f;
        snprintf(lc.targets, sizeof lc.targets, "all-linear");
        assert_int_equal(ft_model_add_lora(m, &lc, 7), FT_OK);
        /* B starts at zero (PEFT): give it values so that the adapters shape the gradients below them */
        for (int i = 0; i < ft_model_num_params(m); i++) {
            ft_param *p = ft_model_param(m, i);
            if (!strstr(p->name, ".B")) continue;
            float *d = p->t.data;
            for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) d[j] = 0.01f * (float)((j * 37 + i) % 11 - 5);
        }
    }
    return m;
}

/* two training steps (dropout seeds 11, 12) on packed batches: two segments per row */
static result train_steps(const char *json, const ft_backend *be, int method, ft_recompute mode) {
    ft_model *m = make_model(json, be, method);
    ft_model_set_recompute(m, mode);
    int V = ft_model_get_config(m)->vocab_size;
    int ids[B * T], tg[B * T], pos[B * T], seg[B * T];
    result r;
    memset(&r, 0, sizeof r);
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < B * T; i++) {
            int t = i % T, cut = 5 + (i / T) * 3;
            ids[i] = (i * 7 + step * 13 + 3) % V;
            tg[i] = i % 5 == 0 ? FT_IGNORE_INDEX : (i * 5 + step + 1) % V;
            seg[i] = t < cut ? 0 : 1;
            pos[i] = t < cut ? t : t - cut;
        }
        ft_model_set_training(m, 1, 11 + (uint64_t)step);
        assert_int_equal(ft_model_forward(m, ids, tg, pos, seg, B, T, &r.loss[step]), FT_OK);
        if (step == 1) {
            r.n_logits = (size_t)B * T * V;
            r.logits = malloc(sizeof(float) * r.n_logits);
            memcpy(r.logits, ft_model_logits(m), sizeof(float) * r.n_logits);
        }
        if (step == 0) assert_int_equal(ft_model_zero_grad(m), FT_OK);   /* the second backward accumulates */
        assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
        if (mode != FT_RECOMPUTE_NONE) assert_null(ft_model_attention(m));
    }
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (p->grad) r.n_grads += (size_t)ft_tensor_numel(&p->t);
    }
    r.grads = malloc(sizeof(float) * (r.n_grads ? r.n_grads : 1));
    size_t o = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (!p->grad) continue;
        memcpy(r.grads + o, p->grad, ft_tensor_nbytes(&p->t));
        o += (size_t)ft_tensor_numel(&p->t);
    }
    ft_model_free(m);
    return r;
}

static void check_family(const char *name, const char *json) {
    const ft_backend *bes[2] = {ft_backend_ref(), ft_backend_cpu()};
    const char *be_names[2] = {"ref", "cpu"};
    for (int b = 0; b < 2; b++)
        for (int method = FULL; method <= QLORA; method++) {
            result none = train_steps(json, bes[b], method, FT_RECOMPUTE_NONE);
            assert_true(none.n_grads > 0);
            for (int mode = FT_RECOMPUTE_ATTENTION; mode <= FT_RECOMPUTE_BLOCK; mode++) {
                result got = train_steps(json, bes[b], method, (ft_recompute)mode);
                int same_loss = !memcmp(got.loss, none.loss, sizeof got.loss);
                int same_logits = got.n_logits == none.n_logits && !memcmp(got.logits, none.logits, sizeof(float) * got.n_logits);
                int same_grads = got.n_grads == none.n_grads && !memcmp(got.grads, none.grads, sizeof(float) * got.n_grads);
                printf("  %-5s %-3s %-10s recompute %-9s: losses %.6f %.6f, %zu gradient values: %s\n", name, be_names[b],
                       k_method[method], ft_recompute_name((ft_recompute)mode), (double)got.loss[0], (double)got.loss[1],
                       got.n_grads, same_loss && same_logits && same_grads ? "bit-identical to none" : "DIFFERENT");
                assert_true(same_loss);
                assert_true(same_logits);
                assert_true(same_grads);
                result_free(&got);
            }
            result_free(&none);
        }
}

static void test_gpt2_bit_identical(void **s) { (void)s; check_family("gpt2", k_gpt2); }
static void test_llama_bit_identical(void **s) { (void)s; check_family("llama", k_llama); }

/* bytes each mode leaves out, counted from the shapes (N, B*NH*T*T multiples of 16 floats: no padding) */
static void test_activation_bytes(void **s) {
    (void)s;
    const char *js[2] = {k_gpt2, k_llama};
    for (int f = 0; f < 2; f++) {
        ft_model *m = make_model(js[f], ft_backend_cpu(), LORA);
        const ft_model_config *c = ft_model_get_config(m);
        size_t N = (size_t)B * T, L = (size_t)c->n_layer, C = (size_t)c->n_embd, AC = (size_t)c->n_head * c->head_dim;
        size_t QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim, I = (size_t)c->ffn_hidden;
        size_t F = c->arch == FT_ARCH_GPT2 ? I : 2 * I;
        size_t att = (size_t)B * c->n_head * T * T;
        size_t per_block = N * (C + QKV + AC + C + C + F + I) + 4 * N;   /* ln1, qkv, atty, res2, ln2, fch, act; 4 statistics */
        size_t bytes[3];
        for (int mode = 0; mode < 3; mode++) {
            ft_model_set_recompute(m, (ft_recompute)mode);
            bytes[mode] = ft_model_activation_bytes(m, B, T);
            assert_int_equal(ft_model_prepare(m, B, T), FT_OK);   /* the arena re-planned for the mode */
        }
        printf("  %s: activations none %zu, attention %zu, block %zu bytes\n", c->model_type, bytes[0], bytes[1], bytes[2]);
        assert_int_equal(bytes[0] - bytes[1], (L - 1) * att * sizeof(float));
        assert_int_equal(bytes[1] - bytes[2], (L - 1) * per_block * sizeof(float));
        ft_model_free(m);
    }
}

static void test_names(void **s) {
    (void)s;
    for (int i = 0; i < 3; i++) {
        ft_recompute r = FT_RECOMPUTE_NONE;
        assert_int_equal(ft_recompute_from_name(ft_recompute_name((ft_recompute)i), &r), FT_OK);
        assert_int_equal((int)r, i);
    }
    ft_recompute r;
    assert_int_equal(ft_recompute_from_name("layers", &r), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "none, attention or block"));
    assert_int_equal(ft_recompute_from_name(NULL, &r), FT_ERR_INVALID);
}

/* an extra training state's adapter gradients under each mode */
static void test_train_state_modes(void **s) {
    (void)s;
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_llama, "test"), FT_OK);
    ft_model *base = NULL;
    assert_int_equal(ft_model_create_random(&base, &cfg, 42, ft_backend_cpu()), FT_OK);
    int V = cfg.vocab_size, ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 3 + 1) % V; tg[i] = (i * 11 + 2) % V; }
    float *ref = NULL;
    size_t n = 0;
    for (int mode = 0; mode < 3; mode++) {
        ft_lora_config lc = ft_lora_default_config();
        lc.dropout = 0.2f;
        snprintf(lc.targets, sizeof lc.targets, "all-linear");
        ft_train_state *st;
        assert_int_equal(ft_train_state_create(&st, base, &lc, 5), FT_OK);
        for (int i = 0; i < ft_train_state_num_params(st); i++) {   /* B non-zero: gradients flow through every adapter */
            ft_param *p = ft_train_state_param(st, i);
            float *d = p->t.data;
            for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) if (strstr(p->name, ".B")) d[j] = 0.02f * (float)((j + i) % 7 - 3);
        }
        ft_train_state_set_recompute(st, mode);
        ft_train_state_set_training(st, 1, 77);
        float loss;
        assert_int_equal(ft_train_state_forward(st, ids, tg, NULL, NULL, B, T, &loss), FT_OK);
        assert_int_equal(ft_train_state_zero_grad(st), FT_OK);
        assert_int_equal(ft_train_state_backward(st, 0.0f), FT_OK);
        size_t k = 0;
        for (int i = 0; i < ft_train_state_num_params(st); i++) k += (size_t)ft_tensor_numel(&ft_train_state_param(st, i)->t);
        float *g = malloc(sizeof(float) * k);
        size_t o = 0;
        for (int i = 0; i < ft_train_state_num_params(st); i++) {
            ft_param *p = ft_train_state_param(st, i);
            memcpy(g + o, p->grad, ft_tensor_nbytes(&p->t));
            o += (size_t)ft_tensor_numel(&p->t);
        }
        if (mode == 0) { ref = g; n = k; }
        else {
            int same = k == n && !memcmp(g, ref, sizeof(float) * n);
            printf("  train state (llama, LoRA all-linear, dropout 0.2) recompute %-9s: %zu adapter gradient values %s\n",
                   ft_recompute_name((ft_recompute)mode), k, same ? "bit-identical to none" : "DIFFERENT");
            assert_true(same);
            free(g);
        }
        ft_train_state_free(st);
    }
    free(ref);
    ft_model_free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_activation_bytes),
        cmocka_unit_test(test_gpt2_bit_identical),
        cmocka_unit_test(test_llama_bit_identical),
        cmocka_unit_test(test_train_state_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
