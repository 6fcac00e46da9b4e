/* encoder_heads.c — what the encoder's heads share (encoder_internal.h, ft__enc_head): the head of each
 * task, the classifiers' labels and cross-entropy, the part of every head's activation plan, and the loss
 * options (class weights, label smoothing). The heads themselves: head_seq.c (sequence classifier,
 * regression), head_token.c (token classifier), head_mlm.c (MLM head over the LM head, lm_head.c).
 *
 * Cross-entropy as torch's CrossEntropyLoss (ignore_index -100, label smoothing eps; class weights w:
 * item i = (1-eps) w[y] nll_i + eps/K sum_c w[c] (-log p_ic), denominator sum_i w[y_i]); without weights
 * the backend's kernel (crossentropy_forward_backward). */
#include "models/encoder_internal.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const ft__enc_head *ft__enc_head_of(ft_encoder_task t) {
    switch (t) {
    case FT_TASK_CLASSIFY: return &ft__enc_head_classify;
    case FT_TASK_REGRESS: return &ft__enc_head_regress;
    case FT_TASK_TOKEN: return &ft__enc_head_token;
    case FT_TASK_MLM: return &ft__enc_head_mlm;
    default: return NULL;
    }
}

void ft__enc_head_plan_out(enc_acts *a, size_t R, size_t cols, int own_dlogits, ft_arena *ar) {
    a->logits = ft_arena_alloc(ar, R * cols * sizeof(float));
    a->losses = ft_arena_alloc(ar, R * sizeof(float));
    a->dlogits = own_dlogits ? ft_arena_alloc(ar, R * cols * sizeof(float)) : a->logits;
    a->labels = ft_arena_alloc(ar, R * sizeof(int));
}

/* ------------------------------------------------------------ the classifiers' labels and loss */

/* labels [R] of R items (sequences or positions) in [0, K) or FT_IGNORE_INDEX; the denominator counts them,
 * or sums their class weights */
int ft__enc_class_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in, int R, const char *what) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    int K = m->cfg.num_labels;
    a->n_counted = 0;
    a->denom = 0;
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

void ft__enc_ce_loss(ft_encoder_train_state *s, float *dlogits, float scale) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    int R = a->rows, K = a->cols;
    if (R == 0) return;
    if (m->class_w) weighted_ce(a->losses, dlogits, a->logits, a->labels, m->class_w, R, K, scale, s->smoothing);
    else m->be->crossentropy_forward_backward(m->be->ctx, a->losses, dlogits, a->logits, a->labels, R, K, scale, s->smoothing, FT_IGNORE_INDEX);
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

void ft_encoder_set_label_smoothing(ft_encoder_model *m, float eps) { m->ts.smoothing = eps > 0 && eps < 1 ? eps : 0.0f; }
