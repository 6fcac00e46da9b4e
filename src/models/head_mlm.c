/* head_mlm.c — the masked-LM head (ft__enc_head, encoder_internal.h; MLM, *ForMaskedLM): the transform of
 * the labelled positions, then the LM head that the decoders use too (lm_head.h), tied to the word
 * embeddings, with the vocabulary bias:
 *
 *   g = x[rows] [M,C]                 the M labelled positions in row order (without labels: every position)
 *   logits = LN(act(Wd g + bd)) wte^T + bias      [M,V]
 *
 * act: the config's hidden activation, RoBERTa the exact GELU (ft__enc_family.mlm_act). The loss is the LM
 * head's token cross-entropy; its gradient is written over the logits (the backward spends them). */
#include "models/encoder_internal.h"
#include "models/lm_head.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <string.h>

static int mlm_act(const ft_encoder_model *m) { return m->fam->mlm_act >= 0 ? m->fam->mlm_act : m->act; }

/* the LM head: tied to the word embeddings, with the vocabulary bias */
static ft__lm_head lm_head(const ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    ft__lm_head h = {&enc_params(s)[m->slot[E_WTE]], enc_gg(s, E_WTE), enc_gp(s, E_MB), enc_gg(s, E_MB), m->cfg.n_embd, m->cfg.vocab_size, 0};
    return h;
}

static int mlm_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    int N = in->B * in->T, V = m->cfg.vocab_size, M = 0;
    for (int i = 0; i < N; i++) {
        int y = in->labels ? in->labels[i] : 0;
        if (in->labels && y == FT_IGNORE_INDEX) continue;
        if (y < 0 || y >= V) return ft_error(FT_ERR_RANGE, "MLM label %d at position %d is outside the vocabulary [0, %d)", y, i, V);
        a->rows_idx[M] = i;
        a->labels[M++] = y;
    }
    /* without labels every position gets logits (fill-mask inference) */
    a->rows = M;
    a->cols = V;
    a->n_counted = in->labels ? M : 0;
    a->denom = a->n_counted;
    a->has_labels = in->labels != NULL;
    return FT_OK;
}

static void mlm_forward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int M = a->rows, C = m->cfg.n_embd;
    if (M == 0) return;
    const float *x = ft__enc_last_hidden(s);
    for (int j = 0; j < M; j++) memcpy(a->mg + (size_t)j * C, x + (size_t)a->rows_idx[j] * C, sizeof(float) * (size_t)C);
    be->matmul_forward(be->ctx, a->mh, a->mg, enc_gp(s, E_MD_W), enc_gp(s, E_MD_B), M, C, C);
    ft__enc_act_forward(m, mlm_act(m), a->mha, a->mh, (size_t)M * C);
    be->layernorm_forward(be->ctx, a->mln, a->mln_mean, a->mln_rstd, a->mha, enc_gp(s, E_MLN_W), enc_gp(s, E_MLN_B), M, C, m->cfg.norm_eps);
    ft__lm_head h = lm_head(s);
    ft__lm_head_forward(be, &h, a->logits, a->mln, M, NULL, 0);
}

static void mlm_loss(ft_encoder_train_state *s, float *dlogits, float scale) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    if (a->rows == 0) return;
    ft__lm_head_loss(m->be, a->losses, dlogits, a->logits, a->labels, a->rows, a->cols, scale, s->smoothing);
}

/* scratch: the body's dq, dk, dv, datty [N,C] are free until the blocks' backward */
static void mlm_backward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int M = a->rows, C = m->cfg.n_embd;
    memset(a->dx, 0, sizeof(float) * (size_t)a->B * a->T * C);
    if (M == 0) return;
    float *dln = a->dq, *dha = a->dk, *dh = a->datty, *dg = a->dv;
    /* a->dlogits == a->logits: the tied LM head's gradient adds to the word embeddings' */
    ft__lm_head h = lm_head(s);
    ft__lm_head_backward(be, &h, dln, a->dlogits, a->mln, M, NULL, 0);
    be->layernorm_backward(be->ctx, dha, enc_gg(s, E_MLN_W), enc_gg(s, E_MLN_B), dln, NULL, a->mha, enc_gp(s, E_MLN_W),
                           a->mln_mean, a->mln_rstd, M, C);
    ft__enc_act_backward(m, mlm_act(m), dh, dha, a->mh, (size_t)M * C);
    be->matmul_backward(be->ctx, dg, enc_gg(s, E_MD_W), enc_gg(s, E_MD_B), dh, a->mg, enc_gp(s, E_MD_W), M, C, C);
    for (int j = 0; j < M; j++) memcpy(a->dx + (size_t)a->rows_idx[j] * C, dg + (size_t)j * C, sizeof(float) * (size_t)C);
}

/* the worst case of M = N labelled rows: [N,C] transform buffers, LayerNorm statistics [N], gathered rows
 * [N]; logits [N,V] (the backward writes the logit gradient over them) */
static void mlm_plan(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *ar) {
    size_t N = (size_t)B * T, NC = N * (size_t)m->cfg.n_embd;
    float **nc[] = {&a->mg, &a->mh, &a->mha, &a->mln};
    for (size_t i = 0; i < sizeof nc / sizeof *nc; i++) *nc[i] = ft_arena_alloc(ar, NC * sizeof(float));
    a->mln_mean = ft_arena_alloc(ar, N * sizeof(float));
    a->mln_rstd = ft_arena_alloc(ar, N * sizeof(float));
    a->rows_idx = ft_arena_alloc(ar, N * sizeof(int));
    ft__enc_head_plan_out(a, N, (size_t)m->cfg.vocab_size, 0, ar);
}

static const char *mlm_module(const ft__enc_family *f, int g) {
    return g == E_MD_W || g == E_MD_B ? f->mlm_dense : g == E_MLN_W || g == E_MLN_B ? f->mlm_norm : f->mlm_bias;
}

static int mlm_lora_keeps(const ft_encoder_model *m, int g) { (void)m; (void)g; return 0; }

const ft__enc_head ft__enc_head_mlm = {
    .task = FT_TASK_MLM, .what = "MLM", .hf_suffix = "ForMaskedLM", .peft_task = "FEATURE_EXTRACTION",
    .problem_type = NULL, .pooled = 0,
    .n_tensors = 5, .tensors = {E_MD_W, E_MD_B, E_MLN_W, E_MLN_B, E_MB},
    .n_groups = 3, .groups = {{E_MD_W, E_MD_B, 0}, {E_MLN_W, E_MLN_B, 1}, {E_MB, -1, 0}},
    .module = mlm_module, .lora_keeps = mlm_lora_keeps, .plan = mlm_plan,
    .labels = mlm_labels, .forward = mlm_forward, .loss = mlm_loss, .backward = mlm_backward,
};
