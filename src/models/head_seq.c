/* head_seq.c — the sequence heads (ft__enc_head, encoder_internal.h): the classifier (CLASSIFY,
 * *ForSequenceClassification) and the regression head (REGRESS: the same wiring with one output and the
 * squared error). Over the last hidden states x [B,T,C]:
 *
 *   p = pool(x) [B,C]          CLS: x[:, 0]; MEAN: sum_t mask x[:, t] / sum_t mask
 *   logits = W2 drop(act(W1 drop_p(p) + b1)) + b2   [B,K]  (K = 1 for REGRESS)
 *
 * What the family decides (ft__enc_family): W1's module and activation (BERT pooler, tanh; DistilBERT
 * pre_classifier, ReLU; RoBERTa classifier.dense, tanh), W2's module, and drop_p (RoBERTa only). Losses:
 * the classifiers' cross-entropy (encoder_heads.c); regression (logit - target)^2, a NaN target skips its row. */
#include "models/encoder_internal.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ pooling */

/* p[B,C] = x[:, 0] (CLS) or the mean over the real tokens (MEAN; inv[b] = 1 / their count, 0 if none) */
static void pool_forward(float *p, float *inv, const float *x, const int *mask, int B, int T, int C, int mean) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * C;
        float *pb = p + (size_t)b * C;
        if (!mean) { memcpy(pb, xb, sizeof(float) * (size_t)C); continue; }
        int cnt = 0;
        for (int t = 0; t < T; t++) cnt += mask[b * T + t] != 0;
        inv[b] = cnt ? 1.0f / (float)cnt : 0.0f;
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int t = 0; t < T; t++) if (mask[b * T + t]) s += xb[(size_t)t * C + c];
            pb[c] = cnt ? (float)(s / cnt) : 0.0f;
        }
    }
}

/* dx[B,T,C] = d(x) from dp[B,C] (assigned) */
static void pool_backward(float *dx, const float *dp, const float *inv, const int *mask, int B, int T, int C, int mean) {
    memset(dx, 0, sizeof(float) * (size_t)B * T * C);
    for (int b = 0; b < B; b++) {
        const float *db = dp + (size_t)b * C;
        if (!mean) { memcpy(dx + (size_t)b * T * C, db, sizeof(float) * (size_t)C); continue; }
        for (int t = 0; t < T; t++) {
            if (!mask[b * T + t]) continue;
            float *d = dx + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) d[c] = db[c] * inv[b];
        }
    }
}

/* ------------------------------------------------------------ the wiring (both heads) */

/* the dense layer's activation: ReLU, or tanh (whose backward reads the output) */
static void dense_act_forward(const ft_encoder_model *m, float *out, const float *inp, size_t n) {
    if (m->fam->seq_act == ACT_RELU) m->be->relu_forward(m->be->ctx, out, inp, n);
    else m->be->tanh_forward(m->be->ctx, out, inp, n);
}

static void dense_act_backward(const ft_encoder_model *m, float *dinp, const float *dout, const float *inp, const float *out, size_t n) {
    if (m->fam->seq_act == ACT_RELU) m->be->relu_backward(m->be->ctx, dinp, dout, inp, n);
    else m->be->tanh_backward(m->be->ctx, dinp, dout, out, n);
}

static void seq_forward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int B = a->B, T = a->T, C = c->n_embd, K = a->cols;
    float pc = ft__enc_head_p(s);
    pool_forward(a->pool, a->pool_inv, ft__enc_last_hidden(s), a->mask, B, T, C, m->pooling == FT_POOL_MEAN);
    /* head dropout: some families drop the pooled vector before the dense layer; all drop the activated vector */
    int drop_pool = pc > 0 && m->fam->seq_drop_pooled;
    const float *cin = a->pool, *hin = a->h1a;
    if (drop_pool) { be->dropout_forward(be->ctx, a->poold, a->pool, (size_t)B * C, pc, ft__enc_site_seed(s, -1, 1)); cin = a->poold; }
    be->matmul_forward(be->ctx, a->h1, cin, enc_gp(s, E_H1_W), enc_gp(s, E_H1_B), B, C, C);
    dense_act_forward(m, a->h1a, a->h1, (size_t)B * C);
    if (pc > 0) { be->dropout_forward(be->ctx, a->h1d, a->h1a, (size_t)B * C, pc, ft__enc_site_seed(s, -1, 2)); hin = a->h1d; }
    be->matmul_forward(be->ctx, a->logits, hin, enc_gp(s, E_H2_W), enc_gp(s, E_H2_B), B, C, K);
}

static void seq_backward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int B = a->B, T = a->T, C = c->n_embd, K = a->cols;
    float pc = ft__enc_head_p(s);
    int drop_pool = pc > 0 && m->fam->seq_drop_pooled;
    be->matmul_backward(be->ctx, a->dh1a, enc_gg(s, E_H2_W), enc_gg(s, E_H2_B), a->dlogits, pc > 0 ? a->h1d : a->h1a, enc_gp(s, E_H2_W), B, C, K);
    if (pc > 0) be->dropout_backward(be->ctx, a->dh1a, a->dh1a, (size_t)B * C, pc, ft__enc_site_seed(s, -1, 2));
    dense_act_backward(m, a->dh1, a->dh1a, a->h1, a->h1a, (size_t)B * C);
    be->matmul_backward(be->ctx, a->dpool, enc_gg(s, E_H1_W), enc_gg(s, E_H1_B), a->dh1, drop_pool ? a->poold : a->pool, enc_gp(s, E_H1_W), B, C, C);
    if (drop_pool) be->dropout_backward(be->ctx, a->dpool, a->dpool, (size_t)B * C, pc, ft__enc_site_seed(s, -1, 1));
    pool_backward(a->dx, a->dpool, a->pool_inv, a->mask, B, T, C, m->pooling == FT_POOL_MEAN);
}

/* [B,C] buffers, 1 / real tokens [B] (mean pooling); logits [B, K] */
static void seq_plan(const ft_encoder_model *m, enc_acts *a, int B, size_t K, ft_arena *ar) {
    size_t BC = (size_t)B * m->cfg.n_embd;
    float **bc[] = {&a->pool, &a->poold, &a->h1, &a->h1a, &a->h1d, &a->dpool, &a->dh1, &a->dh1a};
    for (size_t i = 0; i < sizeof bc / sizeof *bc; i++) *bc[i] = ft_arena_alloc(ar, BC * sizeof(float));
    a->pool_inv = ft_arena_alloc(ar, (size_t)B * sizeof(float));
    ft__enc_head_plan_out(a, (size_t)B, K, 1, ar);
}

static const char *seq_module(const ft__enc_family *f, int g) { return g == E_H1_W || g == E_H1_B ? f->seq_dense : f->seq_out; }

/* PEFT's modules_to_save: the label projection, and the dense layer unless it is the base's pooler */
static int seq_lora_keeps(const ft_encoder_model *m, int g) {
    if (g == E_H2_W || g == E_H2_B) return 1;
    return (g == E_H1_W || g == E_H1_B) && !m->fam->lora_pooler_frozen;
}

/* ------------------------------------------------------------ the classifier */

static void classify_plan(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *ar) { seq_plan(m, a, B, (size_t)m->cfg.num_labels, ar); }

static int classify_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in) { return ft__enc_class_labels(s, in, in->B, "sequence"); }

const ft__enc_head ft__enc_head_classify = {
    .task = FT_TASK_CLASSIFY, .what = "classification", .hf_suffix = "ForSequenceClassification", .peft_task = "SEQ_CLS",
    .problem_type = "single_label_classification", .pooled = 1,
    .n_tensors = 4, .tensors = {E_H1_W, E_H1_B, E_H2_W, E_H2_B},
    .n_groups = 2, .groups = {{E_H1_W, E_H1_B, 0}, {E_H2_W, E_H2_B, 0}},
    .module = seq_module, .lora_keeps = seq_lora_keeps, .plan = classify_plan,
    .labels = classify_labels, .forward = seq_forward, .loss = ft__enc_ce_loss, .backward = seq_backward,
};

/* ------------------------------------------------------------ regression */

/* the sequence buffers with one output, and the targets [B] */
static void regress_plan(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *ar) {
    seq_plan(m, a, B, 1, ar);
    a->targets = ft_arena_alloc(ar, (size_t)B * sizeof(float));
}

static int regress_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in) {
    enc_acts *a = &s->a;
    int B = in->B;
    a->n_counted = 0;
    a->rows = B;
    a->cols = 1;
    for (int b = 0; b < B && in->targets; b++) {
        a->targets[b] = in->targets[b];
        if (isnan(a->targets[b])) continue;
        if (!isfinite(a->targets[b])) return ft_error(FT_ERR_RANGE, "regression target of sequence %d is infinite", b);
        a->n_counted++;
    }
    a->denom = a->n_counted;
    a->has_labels = in->targets != NULL;
    return FT_OK;
}

/* (logit - target)^2 per sequence; dlogits = scale * 2 (logit - target) */
static void regress_loss(ft_encoder_train_state *s, float *dlogits, float scale) {
    enc_acts *a = &s->a;
    for (int b = 0; b < a->rows; b++) {
        float t = a->targets[b];
        double diff = isnan(t) ? 0.0 : (double)a->logits[b] - t;
        a->losses[b] = (float)(diff * diff);
        if (dlogits) dlogits[b] = (float)(scale * 2.0 * diff);
    }
}

const ft__enc_head ft__enc_head_regress = {
    .task = FT_TASK_REGRESS, .what = "regression", .hf_suffix = "ForSequenceClassification", .peft_task = "SEQ_CLS",
    .problem_type = "regression", .pooled = 1,
    .n_tensors = 4, .tensors = {E_H1_W, E_H1_B, E_H2_W, E_H2_B},
    .n_groups = 2, .groups = {{E_H1_W, E_H1_B, 0}, {E_H2_W, E_H2_B, 0}},
    .module = seq_module, .lora_keeps = seq_lora_keeps, .plan = regress_plan,
    .labels = regress_labels, .forward = seq_forward, .loss = regress_loss, .backward = seq_backward,
};
