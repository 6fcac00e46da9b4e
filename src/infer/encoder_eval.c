/* encoder_eval.c — loss and task metrics of an encoder on labelled data (encoder_task.h). */
#include "finetune/encoder_task.h"
#include "infer/encoder_eval_shared.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ft_enc_eval_free(ft_enc_eval *e) {
    if (!e) return;
    ft_metrics_report_free(&e->report);
    free(e->json);
    free(e->pred);
    memset(e, 0, sizeof *e);
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return best;
}

/* numerically safe softmax of one row into p (double accumulation) */
static void softmax_row(float *p, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)x[i] - mx) / s);
}

/* ---- regression metrics ---- */

static int cmp_by_value(const void *a, const void *b, void *ctx) {
    const double *v = ctx;
    double x = v[*(const int64_t *)a], y = v[*(const int64_t *)b];
    return x < y ? -1 : x > y;
}

/* average ranks (ties share the mean rank), as scipy.stats.rankdata */
static int ranks(double *r, const double *v, int64_t n) {
    int64_t *o = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) o[i] = i;
    qsort_r(o, (size_t)n, sizeof *o, cmp_by_value, (void *)v);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && v[o[j + 1]] == v[o[i]]) j++;
        double mean = 0.5 * (double)(i + j) + 1.0;
        for (int64_t k = i; k <= j; k++) r[o[k]] = mean;
        i = j + 1;
    }
    free(o);
    return FT_OK;
}

static double pearson(const double *x, const double *y, int64_t n) {
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n; my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int regress_json(cJSON *o, const double *pred, const double *y, int64_t n, double *main) {
    double se = 0, ae = 0, my = 0, st = 0;
    for (int64_t i = 0; i < n; i++) { se += (pred[i] - y[i]) * (pred[i] - y[i]); ae += fabs(pred[i] - y[i]); my += y[i]; }
    my /= (double)(n ? n : 1);
    for (int64_t i = 0; i < n; i++) st += (y[i] - my) * (y[i] - my);
    double mse = n ? se / (double)n : NAN;
    add_num(o, "mse", mse);
    add_num(o, "mae", n ? ae / (double)n : NAN);
    add_num(o, "rmse", sqrt(mse));
    add_num(o, "pearson", n > 1 ? pearson(pred, y, n) : NAN);
    double *rp = malloc(sizeof(double) * (size_t)(n ? n : 1)), *ry = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int rc = rp && ry ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) rc = ranks(rp, pred, n);
    if (rc == FT_OK) rc = ranks(ry, y, n);
    if (rc == FT_OK) add_num(o, "spearman", n > 1 ? pearson(rp, ry, n) : NAN);
    free(rp);
    free(ry);
    add_num(o, "r2", st > 0 ? 1.0 - se / st : NAN);
    *main = mse;
    return rc;
}

/* ---- the evaluation loop ---- */

typedef struct { const ft_enc_data *d; } len_ctx;
static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const ft_enc_data *d = ((len_ctx *)ctx)->d;
    int la = ft_enc_data_length(d, *(const int64_t *)a), lb = ft_enc_data_length(d, *(const int64_t *)b);
    if (la != lb) return lb - la;
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One batch's outcome, as a row of doubles (exact for the floats and ints stored): the loss x its
 * denominator and the denominator, then per task
 *   classify  probs [B][K], labels [B]                regress  predictions [B], targets [B]
 *   token     T, labels [B][Tmax], predictions [B][Tmax]   mlm  right, total
 * Batches are computed (by one process, or by ranks sharing them: ft__enc_evaluate_shared) into rows,
 * then every row is added to the metrics in batch order, so the sums are the same whoever computed them. */
static int64_t row_width(ft_encoder_task task, int B, int K, int Tmax) {
    switch (task) {
    case FT_TASK_CLASSIFY: return 2 + (int64_t)B * K + B;
    case FT_TASK_REGRESS: return 2 + 2 * (int64_t)B;
    case FT_TASK_TOKEN: return 3 + 2 * (int64_t)B * Tmax;
    default: return 4;
    }
}

int ft_enc_evaluate(ft_enc_eval *out, ft_encoder_model *m, const ft_tokenizer *tok, const ft_enc_data *d,
                    const int64_t *idx, int64_t n, int B, float mlm_probability, uint64_t seed) {
    return ft__enc_evaluate_shared(out, m, tok, d, idx, n, B, mlm_probability, seed, 0, 1, NULL, NULL);
}

int ft__enc_evaluate_shared(ft_enc_eval *out, ft_encoder_model *m, const ft_tokenizer *tok, const ft_enc_data *d,
                            const int64_t *idx, int64_t n, int B, float mlm_probability, uint64_t seed, int rank, int world,
                            int (*gather)(void *ctx, double *rows, int64_t n_rows, int width), void *gather_ctx) {
    memset(out, 0, sizeof *out);
    ft_encoder_task task = ft_encoder_get_task(m);
    if (task != d->task)
        return ft_error(FT_ERR_INVALID, "evaluation: the model does %s, the data is for %s", ft_encoder_task_name(task), ft_encoder_task_name(d->task));
    if (n <= 0) return ft_error(FT_ERR_INVALID, "evaluation: no examples");
    const ft_encoder_config *c = ft_encoder_get_config(m);
    int K = c->num_labels;
    if ((task == FT_TASK_CLASSIFY || task == FT_TASK_TOKEN) && d->labels && d->labels->n > K)
        return ft_error(FT_ERR_INVALID, "evaluation: the data has %d labels, the model %d", d->labels->n, K);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
    float *probs = malloc(sizeof(float) * (size_t)B * (size_t)(K > 0 ? K : 1));
    int32_t *yt = malloc(sizeof(int32_t) * (size_t)B), *yp = malloc(sizeof(int32_t) * (2 * (size_t)d->max_len + (size_t)B + 1));
    double *rpred = task == FT_TASK_REGRESS ? malloc(sizeof(double) * (size_t)n) : NULL;
    double *rtrue = task == FT_TASK_REGRESS ? malloc(sizeof(double) * (size_t)n) : NULL;
    ft_enc_batch eb = {0};
    ft_metrics *acc = NULL;
    ft_ner *ner = NULL;
    int rc = order && probs && yt && yp && (task != FT_TASK_REGRESS || (rpred && rtrue)) ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) {
        for (int64_t i = 0; i < n; i++) order[i] = idx ? idx[i] : i;
        len_ctx lc = {d};
        qsort_r(order, (size_t)n, sizeof *order, cmp_len_desc, &lc);
        rc = ft_enc_batch_alloc(&eb, B, d->max_len > 0 ? d->max_len : 1);
    }
    if (rc == FT_OK && task == FT_TASK_CLASSIFY) {
        ft_metrics_params p = ft_metrics_default_params(K);
        rc = ft_metrics_init(&acc, &p);
        out->pred = malloc(sizeof *out->pred * (size_t)(d->n > 0 ? d->n : 1));
        if (rc == FT_OK && !out->pred) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; out->pred && i < d->n; i++) out->pred[i] = -1;
    }
    if (rc == FT_OK && task == FT_TASK_TOKEN) rc = ft_ner_init(&ner);
    const char **names = NULL;
    if (rc == FT_OK && (task == FT_TASK_TOKEN || task == FT_TASK_CLASSIFY)) {
        names = calloc((size_t)K, sizeof *names);
        if (!names) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int k = 0; names && k < K; k++) {
            names[k] = d->labels ? ft_label_map_name(d->labels, k) : NULL;
            if (!names[k]) names[k] = ft_encoder_label_name(m, k);
            if (!names[k]) names[k] = "O";
        }
    }
    ft_encoder_set_training(m, 0, 0);
    double loss_sum = 0, den_sum = 0;
    int64_t nreg = 0, mlm_total = 0, mlm_right = 0;
    /* 1. this rank's share of the batches (all of them for one process), each into its row */
    int Tmax = d->max_len > 0 ? d->max_len : 1;
    int64_t nbat = (n + B - 1) / B, width = row_width(task, B, K, Tmax), first = 0, count = nbat;
    if (world > 1) {
        int64_t base = nbat / world, extra = nbat % world;
        first = (int64_t)rank * base + (rank < extra ? rank : extra);
        count = base + (rank < extra ? 1 : 0);
    }
    double *rows_all = rc == FT_OK ? calloc((size_t)(nbat ? nbat : 1) * (size_t)width, sizeof *rows_all) : NULL;
    if (rc == FT_OK && !rows_all) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    for (int64_t bi = first; rc == FT_OK && bi < first + count; bi++) {
        int64_t s = bi * B;
        int nb = (int)(n - s < B ? n - s : B);
        double *row = rows_all + bi * width;
        rc = ft_enc_batch_fill(&eb, d, order + s, nb, tok, c->vocab_size, mlm_probability, seed ^ (0xE7A1ull * (uint64_t)(bi + 1)));
        if (rc < 0) break;
        ft_encoder_inputs in = ft_enc_batch_inputs(&eb, m);
        float loss;
        if ((rc = ft_encoder_forward_ex(m, &in, &loss)) < 0) break;
        double den = ft_encoder_loss_denominator(m);
        row[0] = (double)loss * den;
        row[1] = den;
        const float *lg = ft_encoder_logits(m);
        int rows = ft_encoder_logit_rows(m), cols = ft_encoder_logit_cols(m);
        if (task == FT_TASK_CLASSIFY) {
            for (int r = 0; r < nb; r++) {
                softmax_row(probs + (size_t)r * K, lg + (size_t)r * cols, K);
                for (int k = 0; k < K; k++) row[2 + (size_t)r * K + k] = probs[(size_t)r * K + k];
                row[2 + (size_t)B * K + r] = eb.b.labels[r];
            }
        } else if (task == FT_TASK_REGRESS) {
            for (int r = 0; r < nb; r++) { row[2 + r] = lg[r]; row[2 + B + r] = eb.targets[r]; }
        } else if (task == FT_TASK_TOKEN) {
            int T = eb.b.T;
            row[2] = T;
            for (int r = 0; r < nb; r++)
                for (int t = 0; t < T; t++) {
                    row[3 + (size_t)r * Tmax + t] = eb.b.labels[(size_t)r * T + t];
                    row[3 + (size_t)B * Tmax + (size_t)r * Tmax + t] = argmax(lg + ((size_t)r * T + t) * cols, cols);
                }
        } else {
            int T = eb.b.T, nrow = 0, right = 0;
            for (int i = 0; i < nb * T && nrow < rows; i++) {
                if (eb.b.labels[i] == FT_CLS_IGNORE) continue;
                right += argmax(lg + (size_t)nrow * cols, cols) == eb.b.labels[i];
                nrow++;
            }
            row[2] = right;
            row[3] = nrow;
        }
    }
    /* 2. every rank gets every row, then adds them up in batch order */
    if (rc == FT_OK && world > 1 && gather) rc = gather(gather_ctx, rows_all, nbat, (int)width);
    for (int64_t bi = 0; rc == FT_OK && bi < nbat; bi++) {
        int64_t s = bi * B;
        int nb = (int)(n - s < B ? n - s : B);
        const double *row = rows_all + bi * width;
        loss_sum += row[0];
        den_sum += row[1];
        if (task == FT_TASK_CLASSIFY) {
            for (int r = 0; r < nb; r++) {
                for (int k = 0; k < K; k++) probs[(size_t)r * K + k] = (float)row[2 + (size_t)r * K + k];
                yt[r] = (int32_t)row[2 + (size_t)B * K + r];
                if (order[s + r] >= 0 && order[s + r] < d->n) out->pred[order[s + r]] = argmax(probs + (size_t)r * K, K);  /* as the report: argmax of probs */
            }
            rc = ft_metrics_add_f32(acc, yt, NULL, probs, nb);
        } else if (task == FT_TASK_REGRESS) {
            for (int r = 0; r < nb; r++) { rpred[nreg] = row[2 + r]; rtrue[nreg] = row[2 + B + r]; nreg++; }
        } else if (task == FT_TASK_TOKEN) {
            int T = (int)row[2];
            for (int r = 0; r < nb && rc == FT_OK; r++) {
                int32_t *tt = yp, *pp = yp + T;
                for (int t = 0; t < T; t++) {
                    tt[t] = (int32_t)row[3 + (size_t)r * Tmax + t];
                    pp[t] = (int32_t)row[3 + (size_t)B * Tmax + (size_t)r * Tmax + t];
                }
                rc = ft_ner_add_ids(ner, names, K, tt, pp, T);
            }
        } else {
            mlm_right += (int64_t)row[2];
            mlm_total += (int64_t)row[3];
        }
    }
    free(rows_all);
    cJSON *o = rc == FT_OK ? cJSON_CreateObject() : NULL;
    if (rc == FT_OK && !o) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) {
        out->loss = den_sum > 0 ? loss_sum / den_sum : NAN;
        out->examples = n;
        cJSON_AddStringToObject(o, "task", ft_encoder_task_name(task));
        add_num(o, "val_loss", out->loss);
        cJSON_AddNumberToObject(o, "examples", (double)n);
    }
    if (rc == FT_OK && task == FT_TASK_CLASSIFY) {
        rc = ft_metrics_compute(acc, &out->report);
        char *rj = NULL;
        if (rc == FT_OK) rc = ft_metrics_report_json(&rj, &out->report, names);
        if (rc == FT_OK) {
            const ft_metrics_report *r = &out->report;
            add_num(o, "accuracy", r->accuracy);
            add_num(o, "precision_macro", r->precision_macro);
            add_num(o, "recall_macro", r->recall_macro);
            add_num(o, "f1_macro", r->f1_macro);
            add_num(o, "f1_micro", r->f1_micro);
            add_num(o, "f1_weighted", r->f1_weighted);
            add_num(o, "ece", r->ece);
            add_num(o, "log_loss", r->log_loss);
            if (K == 2) add_num(o, "roc_auc", r->roc_auc);
            cJSON *rep = cJSON_Parse(rj);
            if (rep) cJSON_AddItemToObject(o, "classification", rep);
            cJSON *cal = cJSON_AddArrayToObject(o, "calibration");
            for (int b = 0; r->calib && b < r->ece_bins; b++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "count", (double)r->calib[b].count);
                cJSON_AddNumberToObject(e, "accuracy", r->calib[b].accuracy);
                cJSON_AddNumberToObject(e, "confidence", r->calib[b].confidence);
                cJSON_AddItemToArray(cal, e);
            }
            out->main = r->accuracy;
        }
        free(rj);
    } else if (rc == FT_OK && task == FT_TASK_REGRESS) {
        rc = regress_json(o, rpred, rtrue, nreg, &out->main);
    } else if (rc == FT_OK && task == FT_TASK_TOKEN) {
        ft_ner_report nr;
        rc = ft_ner_compute(ner, &nr);
        char *nj = NULL;
        if (rc == FT_OK) rc = ft_ner_report_json(&nj, &nr);
        if (rc == FT_OK) {
            add_num(o, "precision", nr.precision_micro);
            add_num(o, "recall", nr.recall_micro);
            add_num(o, "f1", nr.f1_micro);
            add_num(o, "token_accuracy", nr.token_accuracy);
            cJSON *nrj = cJSON_Parse(nj);
            if (nrj) cJSON_AddItemToObject(o, "ner", nrj);
            out->main = nr.f1_micro;
        }
        free(nj);
        ft_ner_report_free(&nr);
    } else if (rc == FT_OK) {
        add_num(o, "perplexity", exp(out->loss));
        add_num(o, "masked_accuracy", mlm_total ? (double)mlm_right / (double)mlm_total : NAN);
        cJSON_AddNumberToObject(o, "masked_tokens", (double)mlm_total);
        out->main = exp(out->loss);
    }
    if (rc == FT_OK) {
        out->json = cJSON_PrintUnformatted(o);
        if (!out->json) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(o);
    free(names);
    ft_metrics_free(acc);
    ft_ner_free(ner);
    ft_enc_batch_free(&eb);
    free(order); free(probs); free(yt); free(yp); free(rpred); free(rtrue);
    if (rc < 0) ft_enc_eval_free(out);
    return rc;
}
