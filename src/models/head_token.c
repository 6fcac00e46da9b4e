/* head_token.c — the token classifier (ft__enc_head, encoder_internal.h; TOKEN, *ForTokenClassification):
 * one label per position of the last hidden states x [B,T,C]:
 *
 *   logits = W drop(x) + b    [N,K]    (N = B*T; labels [N], FT_IGNORE_INDEX skips a position)
 *
 * The dropout is config.dropout in DistilBERT, classifier_dropout in BERT / RoBERTa (ft__enc_family);
 * the loss is the classifiers' cross-entropy (encoder_heads.c). */
#include "models/encoder_internal.h"
#include "finetune/ops.h"

static float token_p(const ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    return !s->training ? 0.0f : m->fam->token_hidden_dropout ? m->cfg.dropout : m->cfg.head_dropout;
}

static void token_forward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    int N = a->B * a->T, C = m->cfg.n_embd;
    float p = token_p(s);
    const float *x = ft__enc_last_hidden(s);
    if (p > 0) { m->be->dropout_forward(m->be->ctx, a->tokd, x, (size_t)N * C, p, ft__enc_site_seed(s, -1, 2)); x = a->tokd; }
    m->be->matmul_forward(m->be->ctx, a->logits, x, enc_gp(s, E_H2_W), enc_gp(s, E_H2_B), N, C, a->cols);
}

static void token_backward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    int N = a->B * a->T, C = m->cfg.n_embd;
    float p = token_p(s);
    m->be->matmul_backward(m->be->ctx, a->dx, enc_gg(s, E_H2_W), enc_gg(s, E_H2_B), a->dlogits, p > 0 ? a->tokd : ft__enc_last_hidden(s),
                           enc_gp(s, E_H2_W), N, C, a->cols);
    if (p > 0) m->be->dropout_backward(m->be->ctx, a->dx, a->dx, (size_t)N * C, p, ft__enc_site_seed(s, -1, 2));
}

/* the dropped hidden states [N,C]; logits [N,K] */
static void token_plan(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *ar) {
    size_t N = (size_t)B * T;
    a->tokd = ft_arena_alloc(ar, N * (size_t)m->cfg.n_embd * sizeof(float));
    ft__enc_head_plan_out(a, N, (size_t)m->cfg.num_labels, 1, ar);
}

static int token_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in) { return ft__enc_class_labels(s, in, in->B * in->T, "position"); }

static const char *token_module(const ft__enc_family *f, int g) { (void)g; return f->token_out; }

static int token_lora_keeps(const ft_encoder_model *m, int g) { (void)m; return g == E_H2_W || g == E_H2_B; }

const ft__enc_head ft__enc_head_token = {
    .task = FT_TASK_TOKEN, .what = "token-classification", .hf_suffix = "ForTokenClassification", .peft_task = "TOKEN_CLS",
    .problem_type = NULL, .pooled = 0,
    .n_tensors = 2, .tensors = {E_H2_W, E_H2_B},
    .n_groups = 1, .groups = {{E_H2_W, E_H2_B, 0}},
    .module = token_module, .lora_keeps = token_lora_keeps, .plan = token_plan,
    .labels = token_labels, .forward = token_forward, .loss = ft__enc_ce_loss, .backward = token_backward,
};
