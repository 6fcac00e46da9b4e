/* report_evals.c — the evaluation rows of a run and the report sections built from them: the
 * evaluations table, the task's metric curves, the final-metrics table and the k-fold table
 * (see report_internal.h). */
#include "report_internal.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_info {
    const char *key;    /* in the metrics.jsonl line */
    const char *header; /* in the tables */
    const char *fmt;    /* printf format of a value */
} key_info;

static const key_info k_keys[FT_REP_NKEYS] = {
    [FT_REP_VAL_LOSS]        = {"val_loss", "val loss", "%.4f"},
    [FT_REP_PERPLEXITY]      = {"perplexity", "perplexity", "%.3f"},
    [FT_REP_MASKED_ACCURACY] = {"masked_accuracy", "masked accuracy", "%.4f"},
    [FT_REP_ACCURACY]        = {"accuracy", "accuracy", "%.4f"},
    [FT_REP_F1_MACRO]        = {"f1_macro", "F1 macro", "%.4f"},
    [FT_REP_F1_MICRO]        = {"f1_micro", "F1 micro", "%.4f"},
    [FT_REP_F1_WEIGHTED]     = {"f1_weighted", "F1 weighted", "%.4f"},
    [FT_REP_PRECISION_MACRO] = {"precision_macro", "precision macro", "%.4f"},
    [FT_REP_RECALL_MACRO]    = {"recall_macro", "recall macro", "%.4f"},
    [FT_REP_ROC_AUC]         = {"roc_auc", "ROC-AUC", "%.4f"},
    [FT_REP_ECE]             = {"ece", "ECE", "%.4f"},
    [FT_REP_LOG_LOSS]        = {"log_loss", "log loss", "%.4f"},
    [FT_REP_MSE]             = {"mse", "MSE", "%.5g"},
    [FT_REP_MAE]             = {"mae", "MAE", "%.5g"},
    [FT_REP_RMSE]            = {"rmse", "RMSE", "%.5g"},
    [FT_REP_PEARSON]         = {"pearson", "Pearson r", "%.4f"},
    [FT_REP_SPEARMAN]        = {"spearman", "Spearman &rho;", "%.4f"},
    [FT_REP_R2]              = {"r2", "R&sup2;", "%.4f"},
    [FT_REP_PRECISION]       = {"precision", "entity precision", "%.4f"},
    [FT_REP_RECALL]          = {"recall", "entity recall", "%.4f"},
    [FT_REP_F1]              = {"f1", "entity F1", "%.4f"},
    [FT_REP_TOKEN_ACCURACY]  = {"token_accuracy", "token accuracy", "%.4f"},
    [FT_REP_EXAMPLES]        = {"examples", "examples", "%.0f"},
    [FT_REP_MASKED_TOKENS]   = {"masked_tokens", "masked tokens", "%.0f"},
};

static void replace(cJSON **slot, cJSON *j) {
    cJSON_Delete(*slot);
    *slot = j;
}

int ft__rep_run_add(ft_rep_run *r, cJSON *j, const char *type) {
    int is_eval = !strcmp(type, "eval"), is_test = !strcmp(type, "test");
    if (is_eval || is_test) {
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(j, "task");
        if (cJSON_IsString(task) && task->valuestring) snprintf(r->task, sizeof r->task, "%s", task->valuestring);
    }
    if (is_test) { replace(&r->test, j); return 1; }
    if (!strcmp(type, "kfold")) { replace(&r->kfold, j); return 1; }
    if (!is_eval || !isfinite(ft__json_num(j, "step", NAN))) return 0; /* an eval line without a step is ignored */
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        ft_rep_eval_row *rows = realloc(r->rows, sizeof *rows * (size_t)cap);
        if (!rows) { r->failed = 1; return 0; }
        r->rows = rows;
        r->cap = cap;
    }
    ft_rep_eval_row *row = &r->rows[r->n++];
    row->step = ft__json_num(j, "step", NAN);
    row->epoch = ft__json_num(j, "epoch", NAN);
    for (int k = 0; k < FT_REP_NKEYS; k++) row->v[k] = ft__json_num(j, k_keys[k].key, NAN);
    int kept = 0;
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "classification"))) { replace(&r->cls_eval, j); kept = 1; }
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "ner"))) {
        cJSON *mine = kept ? cJSON_Duplicate(j, 1) : j;
        if (mine) { replace(&r->ner_eval, mine); kept = 1; }
        else r->failed = 1;
    }
    return kept;
}

void ft__rep_run_free(ft_rep_run *r) {
    free(r->rows);
    cJSON_Delete(r->cls_eval);
    cJSON_Delete(r->ner_eval);
    cJSON_Delete(r->test);
    cJSON_Delete(r->kfold);
    cJSON_Delete(r->gen);
    memset(r, 0, sizeof *r);
}

void ft__rep_run_series(ft_rep_series *s, const ft_rep_run *r, int k) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < r->n; i++) ft__rep_push(s, r->rows[i].step, r->rows[i].v[k]);
}

void ft__rep_evals_table(ft__sb *o, const ft_rep_run *r) {
    int show[FT_REP_NKEYS] = {0};
    if (!r->task[0]) show[FT_REP_VAL_LOSS] = show[FT_REP_PERPLEXITY] = 1; /* the decoder table's columns */
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < FT_REP_NKEYS; k++)
            if (isfinite(r->rows[i].v[k])) show[k] = 1;
    ft__sb_printf(o, "<h2>Evaluations</h2>\n<table><tr><th>step</th><th>epoch</th>");
    for (int k = 0; k < FT_REP_NKEYS; k++)
        if (show[k]) ft__sb_printf(o, "<th>%s</th>", k_keys[k].header);
    ft__sb_printf(o, "</tr>\n");
    for (int i = 0; i < r->n; i++) {
        const ft_rep_eval_row *row = &r->rows[i];
        ft__sb_printf(o, "<tr>");
        ft__rep_num_cell(o, row->step, "%.0f");
        ft__rep_num_cell(o, row->epoch, "%.2f");
        for (int k = 0; k < FT_REP_NKEYS; k++)
            if (show[k]) ft__rep_num_cell(o, row->v[k], k_keys[k].fmt);
        ft__sb_printf(o, "</tr>\n");
    }
    ft__sb_printf(o, "</table>\n");
}

/* One chart of one or two eval metrics (b < 0: one). */
static void metric_chart(ft__sb *o, const ft_rep_run *r, const char *title, const char *ylabel,
                         int a, const char *an, int b, const char *bn, int logy) {
    ft_rep_series sa, sb = {0};
    ft__rep_run_series(&sa, r, a);
    if (b >= 0) ft__rep_run_series(&sb, r, b);
    if (sa.failed || sb.failed) o->err = FT_ERR_NOMEM;
    ft__rep_line_chart(o, title, ylabel, &sa, an, b >= 0 ? &sb : NULL, bn, logy);
    ft__rep_series_free(&sa);
    ft__rep_series_free(&sb);
}

void ft__rep_task_curves(ft__sb *o, const ft_rep_run *r) {
    const char *t = r->task;
    if (!strcmp(t, "classify")) {
        metric_chart(o, r, "Accuracy and macro F1", "score", FT_REP_ACCURACY, "accuracy", FT_REP_F1_MACRO, "macro F1", 0);
    } else if (!strcmp(t, "regress")) {
        metric_chart(o, r, "Mean squared error", "MSE", FT_REP_MSE, "validation MSE", -1, NULL, 0);
        metric_chart(o, r, "Correlation", "correlation", FT_REP_PEARSON, "Pearson r", FT_REP_SPEARMAN, "Spearman rho", 0);
    } else if (!strcmp(t, "token-classify")) {
        metric_chart(o, r, "Entity F1 (micro)", "score", FT_REP_F1, "entity F1", FT_REP_TOKEN_ACCURACY, "token accuracy", 0);
    } else if (!strcmp(t, "mlm")) {
        metric_chart(o, r, "Perplexity", "perplexity", FT_REP_PERPLEXITY, "validation perplexity", -1, NULL, 1);
        metric_chart(o, r, "Masked-token accuracy", "accuracy", FT_REP_MASKED_ACCURACY, "masked accuracy", -1, NULL, 0);
    }
}

void ft__rep_final_table(ft__sb *o, const ft_rep_run *r) {
    const ft_rep_eval_row *last = r->n ? &r->rows[r->n - 1] : NULL;
    const cJSON *test = r->test;
    if (!last && !test) return;
    double tv[FT_REP_NKEYS];
    for (int k = 0; k < FT_REP_NKEYS; k++) tv[k] = ft__json_num(test, k_keys[k].key, NAN);
    ft__sb_printf(o, "<h2>Final metrics</h2>\n<table><tr><th>metric</th>");
    if (last) {
        ft__sb_printf(o, "<th>last validation");
        if (isfinite(last->step)) ft__sb_printf(o, fabs(last->step) < 1e15 ? " (step %.0f)" : " (step %.4g)", last->step);
        ft__sb_printf(o, "</th>");
    }
    if (test) ft__sb_printf(o, "<th>test</th>");
    ft__sb_printf(o, "</tr>\n");
    for (int k = 0; k < FT_REP_NKEYS; k++) {
        if (!(last && isfinite(last->v[k])) && !isfinite(tv[k])) continue;
        ft__sb_printf(o, "<tr><td class='k'>%s</td>", k_keys[k].header);
        if (last) ft__rep_num_cell(o, last->v[k], k_keys[k].fmt);
        if (test) ft__rep_num_cell(o, tv[k], k_keys[k].fmt);
        ft__sb_printf(o, "</tr>\n");
    }
    ft__sb_printf(o, "</table>\n");
}

void ft__rep_kfold_table(ft__sb *o, const cJSON *kfold) {
    if (!cJSON_IsObject(kfold)) return;
    double folds = ft__json_num(kfold, "folds", NAN);
    ft__sb_printf(o, "<h2>K-fold cross-validation</h2>\n");
    if (fabs(folds) < 1e15) ft__sb_printf(o, "<p>%.0f folds; mean &plusmn; sample standard deviation over the folds.</p>\n", folds);
    ft__sb_printf(o, "<table><tr><th>metric</th><th>mean &plusmn; std</th><th class='k'>per fold</th></tr>\n");
    for (const cJSON *it = kfold->child; it; it = it->next) {
        if (!cJSON_IsObject(it) || !it->string) continue;
        double mean = ft__json_num(it, "mean", NAN), sd = ft__json_num(it, "std", NAN);
        ft__sb_printf(o, "<tr><td class='k'>");
        ft__rep_escape(o, it->string);
        ft__sb_printf(o, "</td><td>");
        if (isfinite(mean)) {
            ft__sb_printf(o, "%.4f", mean);
            if (isfinite(sd)) ft__sb_printf(o, " &plusmn; %.4f", sd);
        } else {
            ft__sb_printf(o, "&ndash;");
        }
        ft__sb_printf(o, "</td><td class='k'>");
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(it, "values");
        int i = 0;
        for (const cJSON *v = cJSON_IsArray(vals) ? vals->child : NULL; v; v = v->next, i++) {
            if (i == 100) { ft__sb_printf(o, ", &hellip;"); break; }
            if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) ft__sb_printf(o, "%s%.4f", i ? ", " : "", v->valuedouble);
            else ft__sb_printf(o, "%s&ndash;", i ? ", " : "");
        }
        ft__sb_printf(o, "</td></tr>\n");
    }
    ft__sb_printf(o, "</table>\n");
}
