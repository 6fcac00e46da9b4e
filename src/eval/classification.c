/* classification.c — the classification accumulator (confusion matrix, calibration bins, scores
 * kept for ROC-AUC) and the report computed from it (definitions in include/finetune/metrics.h). */
#include "finetune/metrics.h"
#include "finetune/status.h"
#include "eval/eval_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ft_metrics {
    ft_metrics_params p;
    int64_t  n;             /* samples added */
    int64_t *confusion;     /* [K*K] rows = true */
    int      probs_mode;    /* -1: no non-empty batch yet, 0: batches without probs, 1: with */
    int64_t *bin_count;     /* [M] */
    ft_ksum *bin_correct;   /* [M] sum of [argmax == y] */
    ft_ksum *bin_conf;      /* [M] sum of max probability */
    ft_ksum  log_loss;      /* sum of -log(clip(p_true)) */
    ft_ksum  brier;         /* K = 2: sum of (p1 - y)^2 */
    double  *row;           /* [K] one probability row in double (scratch) */
    double  *roc_score;     /* K = 2: [roc_cap] p1 of every sample */
    int32_t *roc_y;         /* K = 2: [roc_cap] y_true of every sample */
    int64_t  roc_cap;
};

ft_metrics_params ft_metrics_default_params(int num_classes) {
    ft_metrics_params p = {num_classes, FT_METRICS_DEFAULT_ECE_BINS, 0};
    return p;
}

void ft_metrics_free(ft_metrics *m) {
    if (!m) return;
    free(m->confusion); free(m->bin_count); free(m->bin_correct); free(m->bin_conf);
    free(m->row); free(m->roc_score); free(m->roc_y);
    free(m);
}

void ft_metrics_reset(ft_metrics *m) {
    if (!m) return;
    int K = m->p.num_classes, M = m->p.ece_bins;
    m->n = 0;
    m->probs_mode = -1;
    memset(m->confusion, 0, (size_t)K * K * sizeof *m->confusion);
    memset(m->bin_count, 0, (size_t)M * sizeof *m->bin_count);
    memset(m->bin_correct, 0, (size_t)M * sizeof *m->bin_correct);
    memset(m->bin_conf, 0, (size_t)M * sizeof *m->bin_conf);
    m->log_loss = (ft_ksum){0, 0};
    m->brier = (ft_ksum){0, 0};
}

static int check_params(const ft_metrics_params *p, const char *what) {
    if (!p) return ft_error(FT_ERR_INVALID, "%s: NULL params", what);
    if (p->num_classes < 2)
        return ft_error(FT_ERR_INVALID, "%s: num_classes is %d, need at least 2", what, p->num_classes);
    if (p->num_classes > 65536)
        return ft_error(FT_ERR_INVALID, "%s: num_classes is %d, more than 65536", what, p->num_classes);
    if (p->ece_bins < 1 || p->ece_bins > 1000000)
        return ft_error(FT_ERR_INVALID, "%s: ece_bins is %d, need 1..1000000", what, p->ece_bins);
    return FT_OK;
}

int ft_metrics_init(ft_metrics **out, const ft_metrics_params *p) {
    const char *what = "ft_metrics_init";
    if (!out) return ft_error(FT_ERR_INVALID, "%s: NULL out", what);
    *out = NULL;
    FT_TRY(check_params(p, what));
    int K = p->num_classes, M = p->ece_bins;
    ft_metrics *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "%s", what);
    m->p = *p;
    m->p.all_labels = p->all_labels ? 1 : 0;
    m->confusion = calloc((size_t)K * K, sizeof *m->confusion);
    m->bin_count = calloc((size_t)M, sizeof *m->bin_count);
    m->bin_correct = calloc((size_t)M, sizeof *m->bin_correct);
    m->bin_conf = calloc((size_t)M, sizeof *m->bin_conf);
    m->row = calloc((size_t)K, sizeof *m->row);
    if (!m->confusion || !m->bin_count || !m->bin_correct || !m->bin_conf || !m->row) {
        ft_metrics_free(m);
        return ft_error(FT_ERR_NOMEM, "%s: %d classes, %d bins", what, K, M);
    }
    m->probs_mode = -1;
    *out = m;
    return FT_OK;
}

int64_t ft_metrics_count(const ft_metrics *m) { return m ? m->n : 0; }

/* Row i of the batch's probabilities as doubles (into m->row for float input). */
static const double *prob_row(ft_metrics *m, const void *probs, int is_f32, int64_t i) {
    int K = m->p.num_classes;
    if (!is_f32) return (const double *)probs + i * K;
    const float *f = (const float *)probs + i * K;
    for (int k = 0; k < K; k++) m->row[k] = (double)f[k];
    return m->row;
}

static int grow_roc(ft_metrics *m, int64_t need) {
    if (need <= m->roc_cap) return FT_OK;
    int64_t cap = m->roc_cap ? m->roc_cap : 1024;
    while (cap < need) cap *= 2;
    double *s = realloc(m->roc_score, (size_t)cap * sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "ft_metrics_add: %lld scores", (long long)cap);
    m->roc_score = s;
    int32_t *y = realloc(m->roc_y, (size_t)cap * sizeof *y);
    if (!y) return ft_error(FT_ERR_NOMEM, "ft_metrics_add: %lld labels", (long long)cap);
    m->roc_y = y;
    m->roc_cap = cap;
    return FT_OK;
}

/* Validates the whole batch first, so that a failing add changes nothing. */
static int add_batch(ft_metrics *m, const int32_t *y_true, const int32_t *y_pred, const void *probs,
                     int is_f32, int64_t n, const char *what) {
    if (!m) return ft_error(FT_ERR_INVALID, "%s: NULL accumulator", what);
    if (n < 0) return ft_error(FT_ERR_INVALID, "%s: n = %lld", what, (long long)n);
    if (n == 0) return FT_OK;
    if (!y_true) return ft_error(FT_ERR_INVALID, "%s: NULL y_true", what);
    if (!y_pred && !probs) return ft_error(FT_ERR_INVALID, "%s: y_pred and probs are both NULL", what);
    int has = probs != NULL;
    if (m->probs_mode >= 0 && m->probs_mode != has)
        return ft_error(FT_ERR_INVALID, "%s: batch %s probabilities but earlier batches %s; give them "
                        "for every batch or for none", what, has ? "has" : "has no", has ? "had none" : "had them");
    int K = m->p.num_classes, M = m->p.ece_bins;
    char ctx[96];
    FT_TRY(ft__eval_check_labels(y_true, n, K, what, "y_true"));
    if (y_pred) FT_TRY(ft__eval_check_labels(y_pred, n, K, what, "y_pred"));
    if (has) {
        snprintf(ctx, sizeof ctx, "%s: batch starting at sample %lld", what, (long long)m->n);
        for (int64_t i = 0; i < n; i++) FT_TRY(ft__eval_check_prob_row(prob_row(m, probs, is_f32, i), K, i, ctx));
        if (K == 2) FT_TRY(grow_roc(m, m->n + n));
    }

    for (int64_t i = 0; i < n; i++) {
        int t = y_true[i];
        if (!has) { m->confusion[(int64_t)t * K + y_pred[i]]++; continue; }
        const double *p = prob_row(m, probs, is_f32, i);
        int a = ft__eval_argmax(p, K);
        m->confusion[(int64_t)t * K + (y_pred ? y_pred[i] : a)]++;
        int b = ft_metrics_ece_bin(p[a], M);
        m->bin_count[b]++;
        ft_ksum_add(&m->bin_correct[b], a == t ? 1.0 : 0.0);
        ft_ksum_add(&m->bin_conf[b], p[a]);
        ft_ksum_add(&m->log_loss, -ft__eval_clipped_log(p[t]));
        if (K == 2) {
            double d = p[1] - (double)t;
            ft_ksum_add(&m->brier, d * d);
            m->roc_score[m->n + i] = p[1];
            m->roc_y[m->n + i] = t;
        }
    }
    m->n += n;
    m->probs_mode = has;
    return FT_OK;
}

int ft_metrics_add(ft_metrics *m, const int32_t *y_true, const int32_t *y_pred,
                   const double *probs, int64_t n) {
    return add_batch(m, y_true, y_pred, probs, 0, n, "ft_metrics_add");
}

int ft_metrics_add_f32(ft_metrics *m, const int32_t *y_true, const int32_t *y_pred,
                       const float *probs, int64_t n) {
    return add_batch(m, y_true, y_pred, probs, 1, n, "ft_metrics_add_f32");
}

void ft_metrics_report_free(ft_metrics_report *r) {
    if (!r) return;
    free(r->labels); free(r->per_class); free(r->confusion); free(r->calib);
    memset(r, 0, sizeof *r);
}

static double ratio0(double num, double den) { return den > 0 ? num / den : 0.0; }

/* Per-class scores and the averages over the label set, from the confusion matrix. */
static void scores_from_confusion(ft_metrics_report *r, int all_labels) {
    int K = r->num_classes;
    const int64_t *C = r->confusion;
    int64_t trace = 0;
    for (int c = 0; c < K; c++) {
        int64_t tp = C[(int64_t)c * K + c], pred = 0, sup = 0;
        for (int j = 0; j < K; j++) { pred += C[(int64_t)j * K + c]; sup += C[(int64_t)c * K + j]; }
        ft_class_scores *s = &r->per_class[c];
        s->support = sup;
        s->predicted = pred;
        s->precision = ratio0((double)tp, (double)pred);
        s->recall = ratio0((double)tp, (double)sup);
        s->f1 = ratio0(2.0 * (double)tp, (double)(sup + pred));
        trace += tp;
        if (all_labels || sup > 0 || pred > 0) r->labels[r->num_labels++] = c;
    }
    r->accuracy = (double)trace / (double)r->n;

    int64_t tp_sum = 0, pred_sum = 0, sup_sum = 0;
    double pm = 0, rm = 0, fm = 0, pw = 0, rw = 0, fw = 0;
    for (int l = 0; l < r->num_labels; l++) {
        int c = r->labels[l];
        const ft_class_scores *s = &r->per_class[c];
        tp_sum += C[(int64_t)c * K + c]; pred_sum += s->predicted; sup_sum += s->support;
        pm += s->precision; rm += s->recall; fm += s->f1;
        pw += s->precision * (double)s->support;
        rw += s->recall * (double)s->support;
        fw += s->f1 * (double)s->support;
    }
    double nl = (double)r->num_labels;
    r->precision_macro = pm / nl; r->recall_macro = rm / nl; r->f1_macro = fm / nl;
    r->precision_weighted = ratio0(pw, (double)sup_sum);
    r->recall_weighted = ratio0(rw, (double)sup_sum);
    r->f1_weighted = ratio0(fw, (double)sup_sum);
    r->precision_micro = ratio0((double)tp_sum, (double)pred_sum);
    r->recall_micro = ratio0((double)tp_sum, (double)sup_sum);
    r->f1_micro = ratio0(2.0 * (double)tp_sum, (double)(sup_sum + pred_sum));
}

int ft_metrics_compute(const ft_metrics *m, ft_metrics_report *out) {
    const char *what = "ft_metrics_compute";
    if (!out) return ft_error(FT_ERR_INVALID, "%s: NULL out", what);
    memset(out, 0, sizeof *out);
    if (!m) return ft_error(FT_ERR_INVALID, "%s: NULL accumulator", what);
    if (m->n == 0) return ft_error(FT_ERR_INVALID, "%s: no samples were added", what);
    int K = m->p.num_classes, M = m->p.ece_bins;
    ft_metrics_report r = {0};
    r.num_classes = K;
    r.n = m->n;
    r.ece_bins = M;
    r.labels = malloc((size_t)K * sizeof *r.labels);
    r.per_class = calloc((size_t)K, sizeof *r.per_class);
    r.confusion = malloc((size_t)K * K * sizeof *r.confusion);
    r.has_probs = m->probs_mode == 1;
    if (r.has_probs) r.calib = calloc((size_t)M, sizeof *r.calib);
    if (!r.labels || !r.per_class || !r.confusion || (r.has_probs && !r.calib)) {
        ft_metrics_report_free(&r);
        return ft_error(FT_ERR_NOMEM, "%s: %d classes", what, K);
    }
    memcpy(r.confusion, m->confusion, (size_t)K * K * sizeof *r.confusion);
    scores_from_confusion(&r, m->p.all_labels);

    r.ece = r.log_loss = r.roc_auc = r.brier = NAN;
    if (r.has_probs) {
        double ece = 0.0, n = (double)m->n;
        for (int b = 0; b < M; b++) {
            ft_calib_bin *cb = &r.calib[b];
            cb->count = m->bin_count[b];
            if (!cb->count) continue;
            double c = (double)cb->count;
            cb->accuracy = ft_ksum_value(&m->bin_correct[b]) / c;
            cb->confidence = ft_ksum_value(&m->bin_conf[b]) / c;
            ece += c / n * fabs(cb->accuracy - cb->confidence);
        }
        r.ece = ece;
        r.log_loss = ft_ksum_value(&m->log_loss) / n;
        if (K == 2) {
            r.brier = ft_ksum_value(&m->brier) / n;
            int rc = ft_metrics_roc_auc(&r.roc_auc, m->roc_y, m->roc_score, m->n);
            if (rc < 0) { ft_metrics_report_free(&r); return ft_error_wrap(rc, "%s", what); }
        }
    }
    *out = r;
    return FT_OK;
}

int ft_metrics_classification(ft_metrics_report *out, const ft_metrics_params *p,
                              const int32_t *y_true, const int32_t *y_pred,
                              const double *probs, int64_t n) {
    if (out) memset(out, 0, sizeof *out);
    ft_metrics *m;
    FT_TRY(ft_metrics_init(&m, p));
    int rc = ft_metrics_add(m, y_true, y_pred, probs, n);
    if (rc == FT_OK) rc = ft_metrics_compute(m, out);
    ft_metrics_free(m);
    return rc;
}

int ft_metrics_accuracy(double *out, const int32_t *y_true, const int32_t *y_pred, int64_t n,
                        int num_classes) {
    const char *what = "ft_metrics_accuracy";
    if (!out || !y_true || !y_pred) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: no samples (n = %lld)", what, (long long)n);
    if (num_classes < 1) return ft_error(FT_ERR_INVALID, "%s: num_classes is %d", what, num_classes);
    FT_TRY(ft__eval_check_labels(y_true, n, num_classes, what, "y_true"));
    FT_TRY(ft__eval_check_labels(y_pred, n, num_classes, what, "y_pred"));
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) ok += y_true[i] == y_pred[i];
    *out = (double)ok / (double)n;
    return FT_OK;
}

int ft_metrics_confusion_matrix(int64_t *cm, const int32_t *y_true, const int32_t *y_pred,
                                int64_t n, int num_classes) {
    const char *what = "ft_metrics_confusion_matrix";
    if (!cm || (n > 0 && (!y_true || !y_pred))) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (num_classes < 1) return ft_error(FT_ERR_INVALID, "%s: num_classes is %d", what, num_classes);
    if (n < 0) return ft_error(FT_ERR_INVALID, "%s: n = %lld", what, (long long)n);
    FT_TRY(ft__eval_check_labels(y_true, n, num_classes, what, "y_true"));
    FT_TRY(ft__eval_check_labels(y_pred, n, num_classes, what, "y_pred"));
    memset(cm, 0, (size_t)num_classes * num_classes * sizeof *cm);
    for (int64_t i = 0; i < n; i++) cm[(int64_t)y_true[i] * num_classes + y_pred[i]]++;
    return FT_OK;
}
