/* test_context.c — adapters as objects and multi-slot contexts over one shared model:
 *  - a decode batch mixing 4 LoRA adapters and base-only rows equals decoding each sequence alone with its
 *    adapter (<= 1e-6 relative), for GPT-2 and Llama shapes, f32 and int8 bases, in one step and split into
 *    small steps, over prefill and then single-token steps;
 *  - those logits equal the training forward of a model carrying that adapter (ft_model_add_lora + the
 *    same weights), and the base rows equal the base model's forward (<= 1e-5: another attention path);
 *  - ft_adapter_load of a saved PEFT directory == ft_adapter_from_model;
 *  - slots: clear / truncate / reuse, errors (bad slot, slot twice, overflow, token range, wrong shape)
 *    leave every slot as it was;
 *  - the KV cache grows with use: empty at creation, 64-token granules doubling, back to 256 tokens on clear;
 *    a sequence grown token by token through several reallocations == the same sequence prefilled at once;
 *  - ft_generate_ctx over a context slot == ft_generate over the model;
 *  - the same for encoder batches, with adapters that carry their own task head. */
#include "testutil.h"
#include "finetune/adapter.h"
#include "finetune/backend.h"
#include "finetune/context.h"
#include "finetune/encoder.h"
#include "finetune/generate.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[256];

static const char *k_gpt2 = "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":64,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
                            "\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0,\"initializer_range\":0.2}";
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":101,\"hidden_size\":64,"
                             "\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"initializer_range\":0.05}";

static const ft_backend *g_be;   /* the backend of the models made next */

static ft_model *make(const char *json, ft_dtype q) {
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, json, "test"), 0);
    ft_model *m;
    assert_int_equal(ft_model_create_random_quantized(&m, &c, 42, g_be ? g_be : ft_backend_cpu(), q), 0);
    return m;
}

static void randomize_lora(ft_model *m, unsigned seed, float s) {
    unsigned x = seed * 2654435761u + 1;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (strncmp(p->name, "lora.", 5)) continue;
        float *w = p->t.data;
        for (int64_t k = 0; k < ft_tensor_numel(&p->t); k++) { x = x * 1103515245u + 12345u; w[k] = s * ((float)(x >> 8) / 8388608.0f - 1.0f); }
    }
}

#define NAD 4
#define NSEQ 6

typedef struct fixture {
    ft_model *base, *with[NAD];     /* with[k]: the same base carrying adapter k for training */
    ft_adapter *ad[NAD];
    int V;
} fixture;

static void fixture_make(fixture *f, const char *json, ft_dtype q, const char *tag) {
    static const char *targets_gpt2[NAD] = {"c_attn", "all-linear", "c_fc,mlp.c_proj", "c_attn,attn.c_proj"};
    static const char *targets_llama[NAD] = {"q_proj,v_proj", "all-linear", "gate_proj,down_proj", "k_proj,o_proj,up_proj"};
    f->base = make(json, q);
    f->V = ft_model_get_config(f->base)->vocab_size;
    int gpt2 = ft_model_get_config(f->base)->arch == FT_ARCH_GPT2;
    for (int k = 0; k < NAD; k++) {
        f->with[k] = make(json, q);
        ft_lora_config lc = ft_lora_default_config();
        lc.r = 2 + 2 * k;
        lc.alpha = 8.0f + k;
        lc.rslora = k == 3;
        snprintf(lc.targets, sizeof lc.targets, "%s", gpt2 ? targets_gpt2[k] : targets_llama[k]);
        assert_int_equal(ft_model_add_lora(f->with[k], &lc, 100 + (uint64_t)k), 0);
        randomize_lora(f->with[k], (unsigned)k + 1, 0.3f);
        char name[64];
        snprintf(name, sizeof name, "%s_ad%d", tag, k);
        const char *dir = ft_test_path(g_dir, name);
        assert_int_equal(ft_model_save_adapter(f->with[k], dir, "base"), 0);
        assert_int_equal(ft_adapter_load(&f->ad[k], f->base, dir), 0);
        /* the loaded object equals a copy taken from the training model */
        ft_adapter *copy;
        assert_int_equal(ft_adapter_from_model(&copy, f->with[k]), 0);
        assert_int_equal(ft_adapter_module_count(copy), ft_adapter_module_count(f->ad[k]));
        assert_int_equal(ft_adapter_rank(copy), lc.r);
        assert_true(fabsf(ft_adapter_scale(copy) - ft_adapter_scale(f->ad[k])) == 0.0f);
        assert_int_equal((int)ft_adapter_bytes(copy), (int)ft_adapter_bytes(f->ad[k]));
        ft_adapter_free(copy);
    }
}

static void fixture_free(fixture *f) {
    for (int k = 0; k < NAD; k++) { ft_adapter_free(f->ad[k]); ft_model_free(f->with[k]); }
    ft_model_free(f->base);
}

/* sequence i: adapter index (-1 = base) and tokens */
static const int k_which[NSEQ] = {0, -1, 1, 2, -1, 3};

static void seq_tokens(int i, int *ids, int *n, int V) {
    *n = 3 + (i * 5) % 8;
    for (int t = 0; t < *n; t++) ids[t] = (i * 31 + t * 17 + 5) % V;
}

/* max-norm relative error (max|a-b| / max|b|) */
static double rel_err(const float *a, const float *b, size_t n) { return ft_compare_f32(a, b, n).max_rel; }

typedef struct errs { double max_rel, l2_rel; } errs;
static void track(errs *e, const float *a, const float *b, size_t n) {
    ft_cmp c = ft_compare_f32(a, b, n);
    if (c.max_rel > e->max_rel) e->max_rel = c.max_rel;
    if (c.l2_rel > e->l2_rel) e->l2_rel = c.l2_rel;
}

/* mixed batch vs one sequence at a time, prefill then 3 single-token steps; returns the worst error */
static void check_mixed(fixture *f, int batch_tokens, const char *what) {
    int V = f->V;
    ft_context_params p = ft_context_default_params();
    p.n_slots = NSEQ;
    p.batch_tokens = batch_tokens;
    ft_context *mix, *one;
    assert_int_equal(ft_context_create(&mix, f->base, &p), 0);
    assert_int_equal(ft_context_create(&one, f->base, &p), 0);
    int ids[NSEQ][16], n[NSEQ];
    float *lm = malloc(sizeof(float) * NSEQ * 16 * (size_t)V), *l1 = malloc(sizeof(float) * NSEQ * 16 * (size_t)V);
    ft_decode_seq s[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        seq_tokens(i, ids[i], &n[i], V);
        s[i] = (ft_decode_seq){.slot = i, .adapter = k_which[i] >= 0 ? f->ad[k_which[i]] : NULL, .tokens = ids[i],
                               .n_tokens = n[i], .logits = lm + (size_t)i * 16 * V, .all_logits = 1};
    }
    errs worst = {0, 0}, worst_train = {0, 0};
    assert_int_equal(ft_context_decode(mix, s, NSEQ), 0);
    for (int i = 0; i < NSEQ; i++) {
        ft_decode_seq a = s[i];
        a.logits = l1 + (size_t)i * 16 * V;
        assert_int_equal(ft_context_decode(one, &a, 1), 0);
        track(&worst, lm + (size_t)i * 16 * V, l1 + (size_t)i * 16 * V, (size_t)n[i] * V);
        /* against the training forward of the model carrying the same adapter (or the bare base) */
        ft_model *tm = k_which[i] >= 0 ? f->with[k_which[i]] : f->base;
        assert_int_equal(ft_model_forward(tm, ids[i], NULL, NULL, NULL, 1, n[i], NULL), 0);
        track(&worst_train, lm + (size_t)i * 16 * V, ft_model_logits(tm), (size_t)n[i] * V);
        assert_int_equal(ft_context_slot_len(mix, i), n[i]);
    }
    /* single-token steps: every sequence advances by one token, each at its own position */
    for (int stp = 0; stp < 3; stp++) {
        int next[NSEQ];
        for (int i = 0; i < NSEQ; i++) {
            next[i] = (ids[i][0] + 7 * stp + i) % V;
            s[i].tokens = &next[i];
            s[i].n_tokens = 1;
            s[i].all_logits = 0;
        }
        assert_int_equal(ft_context_decode(mix, s, NSEQ), 0);
        for (int i = 0; i < NSEQ; i++) {
            ft_decode_seq a = s[i];
            a.logits = l1 + (size_t)i * 16 * V;
            assert_int_equal(ft_context_decode(one, &a, 1), 0);
            track(&worst, s[i].logits, a.logits, (size_t)V);
        }
    }
    /* The reference backend computes each row alone (float64 sums): the mixed batch is exact. OpenBLAS may
     * pick other sgemm kernels for other row counts, so single elements can differ by float32 rounding;
     * the tensor's relative error (L2) stays far below 1e-6. */
    int ref = ft_model_backend(f->base) == ft_backend_ref();
    printf("  %-4s %-16s %d sequences, %d adapters + base rows, steps of %2d rows: mixed vs alone max rel %.2e L2 rel %.2e; "
           "vs training forward max rel %.2e\n", ref ? "ref" : "cpu", what, NSEQ, NAD, batch_tokens, worst.max_rel, worst.l2_rel,
           worst_train.max_rel);
    if (ref) assert_true(worst.max_rel <= 1e-6);
    assert_true(worst.l2_rel <= 1e-6);
    assert_true(worst.max_rel <= 2e-6);
    assert_true(worst_train.max_rel <= 1e-5);
    free(lm);
    free(l1);
    ft_context_free(mix);
    ft_context_free(one);
}

static void test_mixed_adapter_batch(void **st) {
    (void)st;
    struct { const char *json; ft_dtype q; const char *tag; } cases[] = {
        {k_gpt2, FT_F32, "gpt2 f32"}, {k_llama, FT_F32, "llama f32"}, {k_llama, FT_Q8_ROW, "llama int8 base"},
        {k_llama, FT_NF4, "llama nf4 base"},
    };
    const ft_backend *bes[2] = {ft_backend_ref(), ft_backend_cpu()};
    for (int b = 0; b < 2; b++)
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            g_be = bes[b];
            fixture f;
            char tag[32];
            snprintf(tag, sizeof tag, "b%dc%zu", b, c);
            fixture_make(&f, cases[c].json, cases[c].q, tag);
            check_mixed(&f, 64, cases[c].tag);
            check_mixed(&f, 5, cases[c].tag);
            fixture_free(&f);
        }
    g_be = NULL;
}

static void test_slots_and_errors(void **st) {
    (void)st;
    fixture f;
    fixture_make(&f, k_llama, FT_F32, "slots");
    int V = f.V;
    ft_context_params p = ft_context_default_params();
    p.n_slots = 2;
    p.slot_tokens = 16;
    ft_context *ctx;
    assert_int_equal(ft_context_create(&ctx, f.base, &p), 0);
    assert_int_equal(ft_context_slot_capacity(ctx), 16);
    int ids[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    ft_decode_seq s = {.slot = 0, .adapter = f.ad[1], .tokens = ids, .n_tokens = 6, .logits = a};
    assert_int_equal(ft_context_decode(ctx, &s, 1), 0);
    /* truncate to 3 and re-decode tokens 3..5: the same logits */
    assert_int_equal(ft_context_slot_truncate(ctx, 0, 3), 0);
    ft_decode_seq s2 = {.slot = 0, .adapter = f.ad[1], .tokens = ids + 3, .n_tokens = 3, .logits = b};
    assert_int_equal(ft_context_decode(ctx, &s2, 1), 0);
    printf("  truncate + re-decode: max rel %.2e\n", rel_err(a, b, (size_t)V));
    assert_true(rel_err(a, b, (size_t)V) <= 1e-6);
    /* errors leave every slot untouched */
    ft_decode_seq bad[2] = {{.slot = 1, .tokens = ids, .n_tokens = 2}, {.slot = 1, .tokens = ids, .n_tokens = 2}};
    assert_int_equal(ft_context_decode(ctx, bad, 2), FT_ERR_INVALID);
    printf("  slot twice: %s\n", ft_last_error());
    bad[0].slot = 2;
    assert_int_equal(ft_context_decode(ctx, bad, 1), FT_ERR_RANGE);
    printf("  bad slot: %s\n", ft_last_error());
    ft_decode_seq over = {.slot = 0, .tokens = ids, .n_tokens = 12};
    assert_int_equal(ft_context_decode(ctx, &over, 1), FT_ERR_RANGE);
    printf("  overflow: %s\n", ft_last_error());
    int badtok[2] = {1, V};
    ft_decode_seq bt[2] = {{.slot = 1, .tokens = ids, .n_tokens = 2}, {.slot = 0, .tokens = badtok, .n_tokens = 2}};
    assert_int_equal(ft_context_decode(ctx, bt, 2), FT_ERR_RANGE);
    printf("  token range: %s\n", ft_last_error());
    assert_int_equal(ft_context_slot_len(ctx, 0), 6);
    assert_int_equal(ft_context_slot_len(ctx, 1), 0);
    /* an adapter of another model shape */
    fixture g;
    fixture_make(&g, k_gpt2, FT_F32, "slots_gpt2");
    ft_decode_seq wrong = {.slot = 1, .adapter = g.ad[0], .tokens = ids, .n_tokens = 2};
    assert_int_equal(ft_context_decode(ctx, &wrong, 1), FT_ERR_INVALID);
    printf("  wrong shape: %s\n", ft_last_error());
    ft_adapter *x;
    assert_true(ft_adapter_load(&x, f.base, ft_test_path(g_dir, "slots_gpt2_ad0")) == FT_ERR_NOT_FOUND);
    printf("  GPT-2 adapter on a Llama base: %s\n", ft_last_error());
    fixture_free(&g);
    /* clear: a fresh start gives the first result again */
    assert_int_equal(ft_context_slot_clear(ctx, -1), 0);
    assert_int_equal(ft_context_decode(ctx, &s, 1), 0);
    assert_true(rel_err(a, b, (size_t)V) <= 1e-6);
    free(a);
    free(b);
    ft_context_free(ctx);
    fixture_free(&f);
}

/* a 1024-token GPT-2 shape: slot 0 grows token by token (64 -> 128 -> 256 -> 512 token buffers), slot 1 takes
 * the same 300 tokens in one prefill; the last logits agree and the cache holds what the slots use */
static void test_kv_grows_with_use(void **st) {
    (void)st;
    const char *json = "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":1024,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
                       "\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0,\"initializer_range\":0.2}";
    ft_model *m = make(json, FT_F32);
    ft_context_params p = ft_context_default_params();
    p.n_slots = 3;
    ft_context *ctx;
    assert_int_equal(ft_context_create(&ctx, m, &p), 0);
    size_t per_tok = 2 * 2 * 32 * sizeof(float);   /* k and v, 2 layers, KV 32 */
    assert_int_equal(ft_context_slot_capacity(ctx), 1024);
    assert_int_equal(ft_context_kv_bytes(ctx), 0);
    assert_true(ft_context_bytes(m, &p) >= 3 * 1024 * per_tok);
    enum { N = 300 };
    int ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 5) % 97;
    float a[97], b[97];
    for (int i = 0; i < N; i++) {
        ft_decode_seq s = {.slot = 0, .tokens = ids + i, .n_tokens = 1, .logits = a};
        assert_int_equal(ft_context_decode(ctx, &s, 1), 0);
        if (i == 9) assert_int_equal(ft_context_kv_bytes(ctx), 64 * per_tok);
        if (i == 64) assert_int_equal(ft_context_kv_bytes(ctx), 128 * per_tok);
    }
    assert_int_equal(ft_context_kv_bytes(ctx), 512 * per_tok);
    ft_decode_seq s1 = {.slot = 1, .tokens = ids, .n_tokens = N, .logits = b};
    assert_int_equal(ft_context_decode(ctx, &s1, 1), 0);
    assert_int_equal(ft_context_kv_bytes(ctx), (512 + 320) * per_tok);
    printf("  300 tokens grown one at a time vs one prefill: max rel %.2e; cache %zu bytes for 2 of 3 slots\n",
           rel_err(a, b, 97), ft_context_kv_bytes(ctx));
    assert_true(rel_err(a, b, 97) <= 1e-5);
    /* overflow is still refused at slot_tokens, and a clear keeps 256 tokens */
    int big[1024] = {0};
    ft_decode_seq over = {.slot = 1, .tokens = big, .n_tokens = 1024 - N + 1};
    assert_int_equal(ft_context_decode(ctx, &over, 1), FT_ERR_RANGE);
    assert_int_equal(ft_context_slot_len(ctx, 1), N);
    assert_int_equal(ft_context_slot_clear(ctx, 0), 0);
    assert_int_equal(ft_context_kv_bytes(ctx), (256 + 320) * per_tok);
    /* the cleared slot refilled: the same logits again */
    ft_decode_seq s0 = {.slot = 0, .tokens = ids, .n_tokens = N, .logits = a};
    assert_int_equal(ft_context_decode(ctx, &s0, 1), 0);
    assert_true(rel_err(a, b, 97) <= 1e-6);
    ft_decode_seq full = {.slot = 2, .tokens = big, .n_tokens = 1024};
    assert_int_equal(ft_context_decode(ctx, &full, 1), 0);
    assert_int_equal(ft_context_slot_clear(ctx, -1), 0);
    assert_int_equal(ft_context_kv_bytes(ctx), 3 * 256 * per_tok);
    ft_context_free(ctx);
    ft_model_free(m);
}

static void test_generate_ctx(void **st) {
    (void)st;
    fixture f;
    fixture_make(&f, k_gpt2, FT_F32, "gen");
    ft_generate_params gp = ft_generate_default_params();
    gp.temperature = 0;
    gp.max_new_tokens = 12;
    gp.stop_at_eos = 0;
    int prompt[4] = {3, 14, 15, 9};
    ft_generation g0, g1;
    assert_int_equal(ft_generate(f.with[2], NULL, prompt, 4, &gp, NULL, NULL, &g0), 0);
    ft_context_params p = ft_context_default_params();
    p.n_slots = 3;
    ft_context *ctx;
    assert_int_equal(ft_context_create(&ctx, f.base, &p), 0);
    assert_int_equal(ft_generate_ctx(ctx, 2, f.ad[2], NULL, prompt, 4, &gp, NULL, NULL, &g1), 0);
    assert_int_equal(g0.n_ids, g1.n_ids);
    assert_memory_equal(g0.ids, g1.ids, sizeof(int) * (size_t)g0.n_ids);
    printf("  greedy ids over a context slot with the adapter object == the model carrying it (%d tokens)\n", g0.n_ids);
    ft_generation_free(&g0);
    ft_generation_free(&g1);
    ft_context_free(ctx);
    fixture_free(&f);
}

/* ---- encoders: a batch whose sequences use 4 different adapters and the base, against each sequence run
 * alone through a model carrying its adapter (ft_encoder_add_lora + the saved weights); adapters 1 and 3 were
 * saved with a task head of their own (modules_to_save), which their sequences' logits must come from */
static void test_encoder_mixed_adapters(void **st) {
    (void)st;
    static const char *fx[] = {"encoder/bert_tiny", "encoder/distilbert_tiny", "encoder/roberta_tiny"};
    static const char *tg[3][NAD] = {{"query,value", "all-linear", "dense", "key,query"},
                                     {"q_lin,v_lin", "all-linear", "lin1,lin2", "k_lin,out_lin"},
                                     {"query,value", "all-linear", "dense", "key,query"}};
    const ft_backend *bes[2] = {ft_backend_ref(), ft_backend_cpu()};
    for (int b = 0; b < 2; b++)
        for (int f = 0; f < 3; f++) {
            if (!ft_fixture_present(fx[f])) continue;
            ft_encoder_model *base, *with[NAD];
            ft_adapter *ad[NAD];
            assert_int_equal(ft_encoder_load(&base, ft_fixture(fx[f]), 0, bes[b]), 0);
            for (int k = 0; k < NAD; k++) {
                assert_int_equal(ft_encoder_load(&with[k], ft_fixture(fx[f]), 0, bes[b]), 0);
                ft_lora_config lc = ft_lora_default_config();
                lc.r = 2 + 2 * k;
                lc.alpha = 8.0f + k;
                lc.rslora = k == 3;
                snprintf(lc.targets, sizeof lc.targets, "%s", tg[f][k]);
                assert_int_equal(ft_encoder_add_lora(with[k], &lc, 50 + (uint64_t)k), 0);
                ft_test_randomize_encoder_lora(with[k], (unsigned)(k + 1), k % 2);   /* adapters 1 and 3 carry their own head */
                char name[64];
                snprintf(name, sizeof name, "enc%d_%d_ad%d", b, f, k);
                const char *dir = ft_test_path(g_dir, name);
                assert_int_equal(ft_encoder_save_adapter(with[k], dir, ft_fixture(fx[f]), NULL), 0);
                assert_int_equal(ft_encoder_adapter_load(&ad[k], base, dir), 0);
            }
            const ft_encoder_config *c = ft_encoder_get_config(base);
            enum { B = NSEQ, T = 7 };
            int ids[B * T], mask[B * T];
            const ft_adapter *seq_ad[B];
            for (int i = 0; i < B; i++) {
                seq_ad[i] = k_which[i] >= 0 ? ad[k_which[i]] : NULL;
                int len = T - i % 3;   /* some padding */
                for (int t = 0; t < T; t++) {
                    ids[i * T + t] = t < len ? 4 + (i * 13 + t * 7) % (c->vocab_size - 4) : c->pad_token_id;
                    mask[i * T + t] = t < len;
                }
            }
            ft_encoder_inputs in = {.ids = ids, .mask = mask, .B = B, .T = T};
            assert_int_equal(ft_encoder_forward_adapters(base, &in, seq_ad, NULL), 0);
            int K = ft_encoder_logit_cols(base), C = c->n_embd;
            float *hid = malloc(sizeof(float) * B * T * (size_t)C), *lg = malloc(sizeof(float) * B * (size_t)K);
            memcpy(hid, ft_encoder_hidden(base), sizeof(float) * B * T * (size_t)C);
            memcpy(lg, ft_encoder_logits(base), sizeof(float) * B * (size_t)K);
            errs eh = {0, 0}, el = {0, 0};
            for (int i = 0; i < B; i++) {
                ft_encoder_model *m1 = k_which[i] >= 0 ? with[k_which[i]] : base;
                ft_encoder_inputs one = {.ids = ids + i * T, .mask = mask + i * T, .B = 1, .T = T};
                assert_int_equal(ft_encoder_forward_ex(m1, &one, NULL), 0);
                track(&eh, hid + (size_t)i * T * C, ft_encoder_hidden(m1), (size_t)T * C);
                track(&el, lg + (size_t)i * K, ft_encoder_logits(m1), (size_t)K);
            }
            printf("  %-4s %-24s %d sequences, %d adapters + base: hidden states max rel %.2e (L2 %.2e), logits max rel %.2e\n",
                   b ? "cpu" : "ref", fx[f], B, NAD, eh.max_rel, eh.l2_rel, el.max_rel);
            if (b == 0) { assert_true(eh.max_rel <= 1e-6); assert_true(el.max_rel <= 1e-6); }
            /* CPU: float32 rounding of other sgemm row counts; the few logits (K per row) are a small, noisy sample */
            assert_true(eh.l2_rel <= 1e-6);
            assert_true(eh.max_rel <= 2e-6 && el.max_rel <= 5e-6);
            /* an adapter of another encoder shape is refused */
            if (f == 0) {
                ft_encoder_model *other;
                assert_int_equal(ft_encoder_load(&other, ft_fixture("encoder/distilbert_tiny"), 0, bes[b]), 0);
                assert_int_equal(ft_encoder_forward_adapters(other, &in, seq_ad, NULL), FT_ERR_INVALID);
                printf("  wrong shape: %s\n", ft_last_error());
                ft_encoder_close(other);
            }
            free(hid);
            free(lg);
            for (int k = 0; k < NAD; k++) { ft_adapter_free(ad[k]); ft_encoder_close(with[k]); }
            ft_encoder_close(base);
        }
}

static int setup(void **st) { (void)st; return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_context"); }
static int teardown(void **st) { (void)st; return ft_test_tmpdir_remove(g_dir); }

int main(void) {
    ft_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_adapter_batch),
        cmocka_unit_test(test_slots_and_errors),
        cmocka_unit_test(test_kv_grows_with_use),
        cmocka_unit_test(test_generate_ctx),
        cmocka_unit_test(test_encoder_mixed_adapters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
