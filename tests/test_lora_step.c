/* test_lora_step.c — the LoRA / QLoRA / partial fine-tuning step does no work for what does not train.
 *
 * The model runs on a counting backend (the CPU kernels, each call counted by what it is asked to compute),
 * so the test sees the work itself, not just its results:
 *  - LoRA on GPT-2 c_attn over a frozen base: no weight-gradient matmul at all (every matmul_backward has
 *    dw == NULL), no embedding backward, and no input-gradient matmul under the lowest adapter (the qkv
 *    matmul of layer 0 computes nothing; its adapter's A and B gradients still come); the same for QLoRA
 *    (int8 base: every quantized backward is an input gradient that something below needs);
 *  - --freeze embeddings,layers:0-1 (full fine-tuning of the top layer only): the backward stops at layer 2's
 *    first norm, and the gradients it does compute equal those of the same parameters in a run where every
 *    parameter trains, bit for bit (the pruned work was dead);
 *  - the LM head in training mode runs only over the rows with a target (half the rows masked here): its
 *    matmul sees n_targets rows, and the loss and every gradient (full fine-tuning, tied head trained) match
 *    evaluation mode, which runs the head over every row (no dropout in this model, so the two modes compute
 *    the same function). */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 2
#define T 16

static const char *k_gpt2 =
    "{\"model_type\":\"gpt2\",\"vocab_size\":96,\"n_positions\":64,\"n_embd\":64,\"n_layer\":3,\"n_head\":4,"
    "\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0.1,\"embd_pdrop\":0.1,\"attn_pdrop\":0.1}";

/* ---- the counting backend ---- */
typedef struct counts {
    int head_rows;                             /* rows of the last matmul_forward onto the vocabulary */
    int mm_dinp, mm_dw, mm_dbias, mm_calls;   /* matmul_backward: calls computing each output */
    int qmm_dinp;                              /* qmatmul_backward with an input gradient */
    int norm_bwd, emb_bwd;
} counts;
static counts g_n;
static ft_backend g_be;

static void count_matmul_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                                  int N, int C, int OC) {
    g_n.mm_calls++;
    g_n.mm_dinp += dinp != NULL;
    g_n.mm_dw += dw != NULL;
    g_n.mm_dbias += dbias != NULL;
    ft_backend_cpu()->matmul_backward(ctx, dinp, dw, dbias, dout, inp, w, N, C, OC);
}
static void count_qmatmul_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    g_n.qmm_dinp += dinp != NULL;
    ft_backend_cpu()->qmatmul_backward(ctx, dinp, dout, dt, qw, N, ws, wsn);
}
static void count_layernorm_backward(void *ctx, float *dinp, float *dw, float *db, const float *dout, const float *dresid, const float *inp,
                                     const float *w, const float *mean, const float *rstd, int N, int C) {
    g_n.norm_bwd++;
    ft_backend_cpu()->layernorm_backward(ctx, dinp, dw, db, dout, dresid, inp, w, mean, rstd, N, C);
}
static void count_embedding_backward(void *ctx, float *dwte, float *dwpe, const float *dout, const int *ids, const int *pos, int N, int T_,
                                     int C) {
    g_n.emb_bwd++;
    ft_backend_cpu()->embedding_backward(ctx, dwte, dwpe, dout, ids, pos, N, T_, C);
}

static int g_vocab;
static void count_matmul_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    if (OC == g_vocab) g_n.head_rows = N;
    ft_backend_cpu()->matmul_forward(ctx, out, inp, w, bias, N, C, OC);
}

static const ft_backend *counting_backend(void) {
    g_be = *ft_backend_cpu();
    g_be.name = "cpu-counting";
    g_be.matmul_backward = count_matmul_backward;
    g_be.matmul_forward = count_matmul_forward;
    g_be.qmatmul_backward = count_qmatmul_backward;
    g_be.layernorm_backward = count_layernorm_backward;
    g_be.embedding_backward = count_embedding_backward;
    return &g_be;
}

enum { FULL, LORA, QLORA };

static ft_model *make(int method, const char *freeze) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_gpt2, "test"), FT_OK);
    ft_model *m = NULL;
    assert_int_equal(ft_model_create_random_quantized(&m, &cfg, 42, counting_backend(), method == QLORA ? FT_Q8_ROW : FT_F32), FT_OK);
    if (freeze) assert_true(ft_model_freeze(m, freeze) > 0);
    if (method != FULL) {
        ft_lora_config lc = ft_lora_default_config();   /* GPT-2: c_attn, dropout 0.05 */
        assert_int_equal(ft_model_add_lora(m, &lc, 7), FT_OK);
    }
    return m;
}

/* one forward + backward with dropout on; the counts of the backward alone */
static counts step(ft_model *m) {
    int V = ft_model_get_config(m)->vocab_size, ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 7 + 3) % V; tg[i] = (i * 5 + 1) % V; }
    ft_model_set_training(m, 1, 5);
    float loss;
    assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, B, T, &loss), FT_OK);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    memset(&g_n, 0, sizeof g_n);
    assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
    return g_n;
}

static void print_counts(const char *what, const counts *c) {
    printf("  %-34s matmul backward: %2d calls, %2d input gradients, %2d weight gradients, %2d bias gradients; "
           "quantized input gradients %2d; norm backward %d; embedding backward %d\n",
           what, c->mm_calls, c->mm_dinp, c->mm_dw, c->mm_dbias, c->qmm_dinp, c->norm_bwd, c->emb_bwd);
}

static void test_lora_skips_frozen_work(void **s) {
    (void)s;
    ft_model *m = make(LORA, NULL);
    counts c = step(m);
    print_counts("LoRA c_attn, f32 base:", &c);
    /* 3 layers x 4 linear layers + the (tied) head; input gradients everywhere but layer 0's qkv */
    assert_int_equal(c.mm_calls, 3 * 4 + 1);
    assert_int_equal(c.mm_dinp, 3 * 4 + 1 - 1);
    assert_int_equal(c.mm_dw, 0);
    assert_int_equal(c.mm_dbias, 0);
    assert_int_equal(c.norm_bwd, 1 + 3 + 2);   /* final norm, ln2 x 3, ln1 of layers 2 and 1 */
    assert_int_equal(c.emb_bwd, 0);
    /* the adapters of layer 0 still got their gradients */
    int nonzero = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (!strcmp(p->name, "lora.0.0.0.A") || !strcmp(p->name, "lora.0.0.0.B"))
            for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) nonzero += p->grad[j] != 0.0f;
    }
    assert_true(nonzero > 0);
    ft_model_free(m);

    m = make(QLORA, NULL);
    c = step(m);
    print_counts("QLoRA c_attn, int8 base:", &c);
    assert_int_equal(c.qmm_dinp, 3 * 4 - 1);    /* every quantized linear layer but layer 0's qkv */
    assert_int_equal(c.mm_dw, 0);
    assert_int_equal(c.emb_bwd, 0);
    ft_model_free(m);
}

/* the gradients of the trainable parameters under --freeze equal those of the same parameters when all train */
static void test_frozen_bottom_layers(void **s) {
    (void)s;
    ft_model *all = make(FULL, NULL);
    counts ca = step(all);
    print_counts("full fine-tuning:", &ca);
    assert_int_equal(ca.emb_bwd, 1);
    assert_int_equal(ca.mm_dw, 3 * 4 + 1);
    ft_model *top = make(FULL, "embeddings,layers:0-1");
    counts ct = step(top);
    print_counts("--freeze embeddings,layers:0-1:", &ct);
    assert_int_equal(ct.mm_calls, 1 + 4);        /* the head and layer 2 only */
    assert_int_equal(ct.mm_dw, 4);
    assert_int_equal(ct.norm_bwd, 1 + 2);        /* final norm, layer 2's ln2 and ln1 */
    assert_int_equal(ct.emb_bwd, 0);
    int compared = 0;
    for (int i = 0; i < ft_model_num_params(top); i++) {
        ft_param *p = ft_model_param(top, i), *q = ft_model_param(all, i);
        if (!p->grad) continue;
        assert_string_equal(p->name, q->name);
        assert_memory_equal(p->grad, q->grad, ft_tensor_nbytes(&p->t));
        compared++;
    }
    printf("  %d trainable tensors of the frozen run: gradients bit-identical to the all-trainable run's\n", compared);
    assert_true(compared >= 12);   /* layer 2: 12 tensors (ln1/ln2 w+b, 4 weights, 4 biases) */
    ft_model_free(top);
    ft_model_free(all);
}

/* a model without dropout: training and evaluation mode compute the same function */
static const char *k_gpt2_nodrop =
    "{\"model_type\":\"gpt2\",\"vocab_size\":96,\"n_positions\":64,\"n_embd\":64,\"n_layer\":2,\"n_head\":4,"
    "\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";

static void test_head_only_target_rows(void **s) {
    (void)s;
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_gpt2_nodrop, "test"), FT_OK);
    g_vocab = cfg.vocab_size;
    int V = cfg.vocab_size, ids[B * T], tg[B * T], n_tg = 0;
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + 3) % V;
        tg[i] = (i % T) < T / 2 ? FT_IGNORE_INDEX : (i * 5 + 1) % V;   /* a prompt half without targets */
        n_tg += tg[i] != FT_IGNORE_INDEX;
    }
    float loss[2];
    float *grads[2] = {NULL, NULL};
    size_t ng = 0;
    int rows[2];
    for (int training = 0; training < 2; training++) {
        ft_model *m = NULL;
        assert_int_equal(ft_model_create_random(&m, &cfg, 42, counting_backend()), FT_OK);
        ft_model_set_training(m, training, 9);
        memset(&g_n, 0, sizeof g_n);
        assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, B, T, &loss[training]), FT_OK);
        rows[training] = g_n.head_rows;
        assert_int_equal(ft_model_zero_grad(m), FT_OK);
        assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
        ng = 0;
        for (int i = 0; i < ft_model_num_params(m); i++) ng += (size_t)ft_tensor_numel(&ft_model_param(m, i)->t);
        grads[training] = malloc(sizeof(float) * ng);
        size_t o = 0;
        for (int i = 0; i < ft_model_num_params(m); i++) {
            ft_param *p = ft_model_param(m, i);
            memcpy(grads[training] + o, p->grad, ft_tensor_nbytes(&p->t));
            o += (size_t)ft_tensor_numel(&p->t);
        }
        ft_model_free(m);
    }
    printf("  LM head rows: evaluation %d, training %d (%d of %d rows have a target); loss %.7f vs %.7f\n", rows[0], rows[1], n_tg,
           B * T, (double)loss[0], (double)loss[1]);
    assert_int_equal(rows[0], B * T);
    assert_int_equal(rows[1], n_tg);
    assert_true(fabsf(loss[0] - loss[1]) <= 1e-6f * fabsf(loss[0]));
    assert_true(ft_check_close("every gradient, head over target rows vs over all rows", grads[1], grads[0], ng, 1e-5));
    free(grads[0]);
    free(grads[1]);
    g_vocab = 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_only_target_rows),
        cmocka_unit_test(test_lora_skips_frozen_work),
        cmocka_unit_test(test_frozen_bottom_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
