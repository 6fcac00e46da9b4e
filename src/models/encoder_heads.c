/* encoder_heads.c — the encoder's heads over the last hidden states x [B,T,C], and their losses:
 *
 *   CLASSIFY / REGRESS   p = pool(x) [B,C]           CLS: x[:, 0]; MEAN: sum_t mask x[:, t] / sum_t mask
 *                        logits = W2 drop(act(W1 drop_r(p) + b1)) + b2   [B,K]  (K = 1 for REGRESS)
 *                        act: tanh (BERT pooler, RoBERTa dense), ReLU (DistilBERT pre_classifier);
 *                        drop_r: RoBERTa only
 *   TOKEN                logits = W drop(x) + b    [N,K]
 *   MLM                  g = x[rows] [M,C] (the labelled positions, in row order)
 *                        logits = LN(act(Wd g + bd)) wte^T + bias        [M,V]  (decoder tied to wte)
 *
 * Losses (per item, summed by the caller, divided by the denominator for the mean):
 *   cross-entropy as torch's CrossEntropyLoss (ignore_index -100, label smoothing eps; class weights w:
 *   item i = (1-eps) w[y] nll_i + eps/K sum_c w[c] (-log p_ic), denominator sum_i w[y_i]);
 *   REGRESS (logit - target)^2, a NaN target skips its row.
 * Backward assigns a->dx = d(x) for the body; parameter gradients accumulate. */
#include "models/encoder_internal.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_seq(const ft_encoder_model *m) { return m->task == FT_TASK_CLASSIFY || m->task == FT_TASK_REGRESS; }

int ft__enc_head_mlm_act(const ft_encoder_model *m) { return m->cfg.arch == FT_ENC_ROBERTA ? ACT_GELU_ERF : m->act; }

/* dropout before the token classifier: DistilBERT's config.dropout, BERT / RoBERTa classifier_dropout */
static float token_p(const ft_encoder_model *m) {
    return !m->training ? 0.0f : m->cfg.arch == FT_ENC_DISTILBERT ? m->cfg.dropout : m->cfg.head_dropout;
}

/* ------------------------------------------------------------ labels */

int ft__enc_head_check_labels(ft_encoder_model *m, const ft_encoder_inputs *in) {
    const ft_encoder_config *c = &m->cfg;
    enc_acts *a = &m->a;
    int B = in->B, N = in->B * in->T, K = c->num_labels;
    a->n_counted = 0;
    a->denom = 0;
    if (m->task == FT_TASK_REGRESS) {
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
    if (m->task == FT_TASK_MLM) {
        int V = c->vocab_size, M = 0;
        for (int i = 0; i < N; i++) {
            int y = in->labels ? in->labels[i] : 0;
            if (in->labels && y == FT_IGNORE_INDEX) continue;
            if (y < 0 || y >= V)
                return ft_error(FT_ERR_RANGE, "MLM label %d at position %d is outside the vocabulary [0, %d)", y, i, V);
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
    int R = m->task == FT_TASK_TOKEN ? N : B;
    const char *what = m->task == FT_TASK_TOKEN ? "position" : "sequence";
    a->rows = R;
    a->cols = K;
    for (int r = 0; r < R; r++) {
        int y = in->labels ? in->labels[r] : FT_IGNORE_INDEX;
        a->labels[r] = y;
        if (y == FT_IGNORE_INDEX) continue;
        if (y < 0 || y >= K) return ft_error(FT_ERR_RANGE, "label %d of %s %d is outside [0, %d)", y, what, r, K);
        a->n_counted++;
        a->denom += m->class_w ? m->class_w[y] : 1.0;
    }
    a->has_labels = in->labels != NULL;
    return FT_OK;
}

/* ------------------------------------------------------------ losses */

/* class-weighted, label-smoothed cross-entropy over logits [R,K] (torch's formula; see the top) */
static void weighted_ce(float *losses, float *dlogits, const float *logits, const int *labels, const float *w,
                        int R, int K, float scale, double eps) {
    double wsum = 0;
    for (int k = 0; k < K; k++) wsum += w[k];
    for (int r = 0; r < R; r++) {
        const float *z = logits + (size_t)r * K;
        float *d = dlogits ? dlogits + (size_t)r * K : NULL;
        int y = labels[r];
        if (y == FT_IGNORE_INDEX) {
            losses[r] = 0;
            if (d) memset(d, 0, sizeof(float) * (size_t)K);
            continue;
        }
        double mx = z[0], s = 0, sw = 0;
        for (int k = 1; k < K; k++) if (z[k] > mx) mx = z[k];
        for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
        double lse = mx + log(s);
        for (int k = 0; k < K; k++) sw += w[k] * (lse - z[k]);
        double wy = w[y];
        losses[r] = (float)((1 - eps) * wy * (lse - z[y]) + eps / K * sw);
        if (!d) continue;
        double pc = (1 - eps) * wy + eps / K * wsum;
        for (int k = 0; k < K; k++) {
            double p = exp((double)z[k] - lse);
            d[k] = (float)(scale * (p * pc - (k == y ? (1 - eps) * wy : 0.0) - eps / K * w[k]));
        }
    }
}

/* per-item losses into a->losses; with dlogits, also scale * d(item loss)/d(logits) */
static void head_loss(ft_encoder_model *m, float *dlogits, float scale) {
    enc_acts *a = &m->a;
    int R = a->rows, K = a->cols;
    if (R == 0) return;
    if (m->task == FT_TASK_REGRESS) {
        for (int b = 0; b < R; b++) {
            float t = a->targets[b];
            double diff = isnan(t) ? 0.0 : (double)a->logits[b] - t;
            a->losses[b] = (float)(diff * diff);
            if (dlogits) dlogits[b] = (float)(scale * 2.0 * diff);
        }
    } else if (m->class_w && m->task != FT_TASK_MLM) {
        weighted_ce(a->losses, dlogits, a->logits, a->labels, m->class_w, R, K, scale, m->smoothing);
    } else {
        m->be->crossentropy_forward_backward(m->be->ctx, a->losses, dlogits, a->logits, a->labels, R, K, scale, m->smoothing, FT_IGNORE_INDEX);
    }
}

/* ------------------------------------------------------------ forward */

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

static void head_act_fwd(const ft_encoder_model *m, float *out, const float *inp, size_t n) {
    if (m->cfg.arch == FT_ENC_DISTILBERT) m->be->relu_forward(m->be->ctx, out, inp, n);
    else m->be->tanh_forward(m->be->ctx, out, inp, n);
}

static void seq_forward(ft_encoder_model *m) {
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &m->a;
    int B = a->B, T = a->T, C = c->n_embd, K = a->cols;
    float pc = ft__enc_head_p(m);
    pool_forward(a->pool, a->pool_inv, ft__enc_last_hidden(m), a->mask, B, T, C, m->pooling == FT_POOL_MEAN);
    /* head dropout: RoBERTa drops the pooled vector before dense; all drop the activated vector before the last Linear */
    int drop_pool = pc > 0 && c->arch == FT_ENC_ROBERTA;
    const float *cin = a->pool, *hin = a->h1a;
    if (drop_pool) { be->dropout_forward(be->ctx, a->poold, a->pool, (size_t)B * C, pc, ft__enc_site_seed(m, -1, 1)); cin = a->poold; }
    be->matmul_forward(be->ctx, a->h1, cin, enc_gp(m, E_H1_W), enc_gp(m, E_H1_B), B, C, C);
    head_act_fwd(m, a->h1a, a->h1, (size_t)B * C);
    if (pc > 0) { be->dropout_forward(be->ctx, a->h1d, a->h1a, (size_t)B * C, pc, ft__enc_site_seed(m, -1, 2)); hin = a->h1d; }
    be->matmul_forward(be->ctx, a->logits, hin, enc_gp(m, E_H2_W), enc_gp(m, E_H2_B), B, C, K);
}

static void token_forward(ft_encoder_model *m) {
    enc_acts *a = &m->a;
    int N = a->B * a->T, C = m->cfg.n_embd;
    float p = token_p(m);
    const float *x = ft__enc_last_hidden(m);
    if (p > 0) { m->be->dropout_forward(m->be->ctx, a->tokd, x, (size_t)N * C, p, ft__enc_site_seed(m, -1, 2)); x = a->tokd; }
    m->be->matmul_forward(m->be->ctx, a->logits, x, enc_gp(m, E_H2_W), enc_gp(m, E_H2_B), N, C, a->cols);
}

static void mlm_forward(ft_encoder_model *m) {
    const ft_backend *be = m->be;
    enc_acts *a = &m->a;
    int M = a->rows, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    if (M == 0) return;
    const float *x = ft__enc_last_hidden(m);
    for (int j = 0; j < M; j++) memcpy(a->mg + (size_t)j * C, x + (size_t)a->rows_idx[j] * C, sizeof(float) * (size_t)C);
    be->matmul_forward(be->ctx, a->mh, a->mg, enc_gp(m, E_MD_W), enc_gp(m, E_MD_B), M, C, C);
    ft__enc_act_forward(m, ft__enc_head_mlm_act(m), a->mha, a->mh, (size_t)M * C);
    be->layernorm_forward(be->ctx, a->mln, a->mln_mean, a->mln_rstd, a->mha, enc_gp(m, E_MLN_W), enc_gp(m, E_MLN_B), M, C, m->cfg.norm_eps);
    be->matmul_forward(be->ctx, a->logits, a->mln, enc_gp(m, E_WTE), enc_gp(m, E_MB), M, C, V);
}

void ft__enc_head_forward(ft_encoder_model *m) {
    if (is_seq(m)) seq_forward(m);
    else if (m->task == FT_TASK_TOKEN) token_forward(m);
    else mlm_forward(m);
    if (m->a.has_labels) head_loss(m, NULL, 0.0f);
}

/* ------------------------------------------------------------ backward */

static void seq_backward(ft_encoder_model *m) {
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &m->a;
    int B = a->B, T = a->T, C = c->n_embd, K = a->cols;
    float pc = ft__enc_head_p(m);
    int drop_pool = pc > 0 && c->arch == FT_ENC_ROBERTA;
    be->matmul_backward(be->ctx, a->dh1a, enc_gg(m, E_H2_W), enc_gg(m, E_H2_B), a->dlogits, pc > 0 ? a->h1d : a->h1a, enc_gp(m, E_H2_W), B, C, K);
    if (pc > 0) be->dropout_backward(be->ctx, a->dh1a, a->dh1a, (size_t)B * C, pc, ft__enc_site_seed(m, -1, 2));
    if (c->arch == FT_ENC_DISTILBERT) m->be->relu_backward(m->be->ctx, a->dh1, a->dh1a, a->h1, (size_t)B * C);
    else m->be->tanh_backward(m->be->ctx, a->dh1, a->dh1a, a->h1a, (size_t)B * C);
    be->matmul_backward(be->ctx, a->dpool, enc_gg(m, E_H1_W), enc_gg(m, E_H1_B), a->dh1, drop_pool ? a->poold : a->pool, enc_gp(m, E_H1_W), B, C, C);
    if (drop_pool) be->dropout_backward(be->ctx, a->dpool, a->dpool, (size_t)B * C, pc, ft__enc_site_seed(m, -1, 1));
    pool_backward(a->dx, a->dpool, a->pool_inv, a->mask, B, T, C, m->pooling == FT_POOL_MEAN);
}

static void token_backward(ft_encoder_model *m) {
    enc_acts *a = &m->a;
    int N = a->B * a->T, C = m->cfg.n_embd;
    float p = token_p(m);
    m->be->matmul_backward(m->be->ctx, a->dx, enc_gg(m, E_H2_W), enc_gg(m, E_H2_B), a->dlogits, p > 0 ? a->tokd : ft__enc_last_hidden(m),
                           enc_gp(m, E_H2_W), N, C, a->cols);
    if (p > 0) m->be->dropout_backward(m->be->ctx, a->dx, a->dx, (size_t)N * C, p, ft__enc_site_seed(m, -1, 2));
}

/* scratch: the body's dq, dk, dv, datty [N,C] are free until the blocks' backward */
static void mlm_backward(ft_encoder_model *m) {
    const ft_backend *be = m->be;
    enc_acts *a = &m->a;
    int M = a->rows, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    memset(a->dx, 0, sizeof(float) * (size_t)a->B * a->T * C);
    if (M == 0) return;
    float *dln = a->dq, *dha = a->dk, *dh = a->datty, *dg = a->dv;
    /* a->dlogits == a->logits: the tied decoder's gradient adds to the word embeddings' */
    be->matmul_backward(be->ctx, dln, enc_gg(m, E_WTE), enc_gg(m, E_MB), a->dlogits, a->mln, enc_gp(m, E_WTE), M, C, V);
    be->layernorm_backward(be->ctx, dha, enc_gg(m, E_MLN_W), enc_gg(m, E_MLN_B), dln, NULL, a->mha, enc_gp(m, E_MLN_W),
                           a->mln_mean, a->mln_rstd, M, C);
    ft__enc_act_backward(m, ft__enc_head_mlm_act(m), dh, dha, a->mh, (size_t)M * C);
    be->matmul_backward(be->ctx, dg, enc_gg(m, E_MD_W), enc_gg(m, E_MD_B), dh, a->mg, enc_gp(m, E_MD_W), M, C, C);
    for (int j = 0; j < M; j++) memcpy(a->dx + (size_t)a->rows_idx[j] * C, dg + (size_t)j * C, sizeof(float) * (size_t)C);
}

void ft__enc_head_backward(ft_encoder_model *m, float grad_scale) {
    head_loss(m, m->a.dlogits, grad_scale);
    if (is_seq(m)) seq_backward(m);
    else if (m->task == FT_TASK_TOKEN) token_backward(m);
    else mlm_backward(m);
}

/* ------------------------------------------------------------ options */

int ft_encoder_set_class_weights(ft_encoder_model *m, const float *w) {
    if (m->task != FT_TASK_CLASSIFY && m->task != FT_TASK_TOKEN)
        return ft_error(FT_ERR_INVALID, "class weights need a classification task (this encoder is %s)", ft_encoder_task_name(m->task));
    if (!w) { free(m->class_w); m->class_w = NULL; return FT_OK; }
    int K = m->cfg.num_labels;
    for (int k = 0; k < K; k++)
        if (!(w[k] >= 0) || !isfinite(w[k])) return ft_error(FT_ERR_INVALID, "class weight %d is %g: must be finite and >= 0", k, (double)w[k]);
    if (!m->class_w && !(m->class_w = malloc(sizeof(float) * (size_t)K))) return ft_error(FT_ERR_NOMEM, "out of memory");
    memcpy(m->class_w, w, sizeof(float) * (size_t)K);
    return FT_OK;
}

void ft_encoder_set_label_smoothing(ft_encoder_model *m, float eps) { m->smoothing = eps > 0 && eps < 1 ? eps : 0.0f; }
