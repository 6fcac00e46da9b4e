/* metrics_json.c — JSON text of a classification report, an NER report, and a k-fold summary
 * (key lists in include/finetune/metrics.h). Numbers are printed here, not by cJSON (whose
 * 15-digit form is only checked to read back within an epsilon): the shortest of %.15g, %.16g,
 * %.17g that strtod reads back to the same double, so every value round-trips exactly. NaN and
 * inf become null. */
#include "finetune/metrics.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON number that reads back as exactly v (null for NaN / inf); NULL on allocation failure. */
static cJSON *number(double v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}

/* Every cJSON call below can fail on allocation; `ok` collects that. */
static void add_num(cJSON *o, const char *key, double v, int *ok) {
    cJSON *x = number(v);
    if (!x || !cJSON_AddItemToObject(o, key, x)) { cJSON_Delete(x); *ok = 0; }
}

static int finish(char **out, cJSON *root, int ok, const char *what) {
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s) return ft_error(FT_ERR_NOMEM, "%s: building the JSON text", what);
    /* cJSON allocates with malloc by default; hand back a plain malloc'd copy to be sure. */
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    cJSON_free(s);
    if (!copy) return ft_error(FT_ERR_NOMEM, "%s: %zu bytes", what, n);
    *out = copy;
    return FT_OK;
}

static cJSON *label_value(const char *const *names, int c) {
    return names ? cJSON_CreateString(names[c]) : number(c);
}

int ft_metrics_report_json(char **out, const ft_metrics_report *r, const char *const *label_names) {
    const char *what = "ft_metrics_report_json";
    if (!out || !r) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    *out = NULL;
    int K = r->num_classes;
    if (K < 1 || !r->per_class || !r->confusion || !r->labels)
        return ft_error(FT_ERR_INVALID, "%s: the report is empty (not computed?)", what);
    if (label_names)
        for (int c = 0; c < K; c++)
            if (!label_names[c]) return ft_error(FT_ERR_INVALID, "%s: label_names[%d] is NULL", what, c);
    cJSON *root = cJSON_CreateObject();
    if (!root) return ft_error(FT_ERR_NOMEM, "%s", what);
    int ok = 1;
    add_num(root, "num_samples", (double)r->n, &ok);
    add_num(root, "num_classes", K, &ok);
    add_num(root, "accuracy", r->accuracy, &ok);
    add_num(root, "precision_macro", r->precision_macro, &ok);
    add_num(root, "recall_macro", r->recall_macro, &ok);
    add_num(root, "f1_macro", r->f1_macro, &ok);
    add_num(root, "precision_micro", r->precision_micro, &ok);
    add_num(root, "recall_micro", r->recall_micro, &ok);
    add_num(root, "f1_micro", r->f1_micro, &ok);
    add_num(root, "precision_weighted", r->precision_weighted, &ok);
    add_num(root, "recall_weighted", r->recall_weighted, &ok);
    add_num(root, "f1_weighted", r->f1_weighted, &ok);
    add_num(root, "ece", r->has_probs ? r->ece : NAN, &ok);
    if (r->has_probs) add_num(root, "log_loss", r->log_loss, &ok);
    if (K == 2) {
        add_num(root, "roc_auc", r->has_probs ? r->roc_auc : NAN, &ok);
        add_num(root, "brier", r->has_probs ? r->brier : NAN, &ok);
    }
    cJSON *pc = cJSON_AddArrayToObject(root, "per_class");
    if (!pc) ok = 0;
    for (int l = 0; ok && l < r->num_labels; l++) {
        int c = r->labels[l];
        const ft_class_scores *s = &r->per_class[c];
        cJSON *e = cJSON_CreateObject(), *lab = label_value(label_names, c);
        if (!e || !lab || !cJSON_AddItemToArray(pc, e)) { cJSON_Delete(e); cJSON_Delete(lab); ok = 0; break; }
        if (!cJSON_AddItemToObject(e, "label", lab)) { cJSON_Delete(lab); ok = 0; break; }
        add_num(e, "precision", s->precision, &ok);
        add_num(e, "recall", s->recall, &ok);
        add_num(e, "f1", s->f1, &ok);
        add_num(e, "support", (double)s->support, &ok);
    }
    cJSON *cm = ok ? cJSON_AddArrayToObject(root, "confusion_matrix") : NULL;
    if (!cm) ok = 0;
    for (int t = 0; ok && t < K; t++) {
        cJSON *row = cJSON_CreateArray();
        if (!row || !cJSON_AddItemToArray(cm, row)) { cJSON_Delete(row); ok = 0; break; }
        for (int p = 0; ok && p < K; p++) {
            cJSON *v = number((double)r->confusion[(int64_t)t * K + p]);
            if (!v || !cJSON_AddItemToArray(row, v)) { cJSON_Delete(v); ok = 0; }
        }
    }
    cJSON *labs = ok ? cJSON_AddArrayToObject(root, "labels") : NULL;
    if (!labs) ok = 0;
    for (int c = 0; ok && c < K; c++) {
        cJSON *v = label_value(label_names, c);
        if (!v || !cJSON_AddItemToArray(labs, v)) { cJSON_Delete(v); ok = 0; }
    }
    return finish(out, root, ok, what);
}

int ft_ner_report_json(char **out, const ft_ner_report *r) {
    const char *what = "ft_ner_report_json";
    if (!out || !r) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return ft_error(FT_ERR_NOMEM, "%s", what);
    int ok = 1;
    add_num(root, "precision_micro", r->precision_micro, &ok);
    add_num(root, "recall_micro", r->recall_micro, &ok);
    add_num(root, "f1_micro", r->f1_micro, &ok);
    add_num(root, "precision_macro", r->precision_macro, &ok);
    add_num(root, "recall_macro", r->recall_macro, &ok);
    add_num(root, "f1_macro", r->f1_macro, &ok);
    add_num(root, "precision_weighted", r->precision_weighted, &ok);
    add_num(root, "recall_weighted", r->recall_weighted, &ok);
    add_num(root, "f1_weighted", r->f1_weighted, &ok);
    add_num(root, "accuracy", r->token_accuracy, &ok);
    add_num(root, "num_true", (double)r->num_true, &ok);
    add_num(root, "num_pred", (double)r->num_pred, &ok);
    add_num(root, "num_correct", (double)r->num_correct, &ok);
    add_num(root, "num_sentences", (double)r->num_sentences, &ok);
    add_num(root, "num_tokens", (double)r->num_tokens, &ok);
    cJSON *pt = cJSON_AddArrayToObject(root, "per_type");
    if (!pt) ok = 0;
    for (int i = 0; ok && i < r->num_types; i++) {
        const ft_ner_type_scores *s = &r->per_type[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(pt, e)) { cJSON_Delete(e); ok = 0; break; }
        if (!cJSON_AddStringToObject(e, "type", s->type ? s->type : "")) ok = 0;
        add_num(e, "precision", s->precision, &ok);
        add_num(e, "recall", s->recall, &ok);
        add_num(e, "f1", s->f1, &ok);
        add_num(e, "support", (double)s->support, &ok);
    }
    return finish(out, root, ok, what);
}

/* ---- k-fold ---- */

typedef struct scalar_field { const char *name; size_t off; } scalar_field;
#define F(x) {#x, offsetof(ft_metrics_report, x)}
static const scalar_field k_fields[] = {
    F(accuracy),
    F(precision_macro), F(recall_macro), F(f1_macro),
    F(precision_micro), F(recall_micro), F(f1_micro),
    F(precision_weighted), F(recall_weighted), F(f1_weighted),
    F(ece), F(log_loss), F(roc_auc), F(brier),
};
#undef F

int ft_metrics_kfold_json(char **out, const ft_metrics_report *folds, int nfolds) {
    const char *what = "ft_metrics_kfold_json";
    if (!out || !folds) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    *out = NULL;
    if (nfolds < 1) return ft_error(FT_ERR_INVALID, "%s: nfolds is %d", what, nfolds);
    double *v = malloc((size_t)nfolds * sizeof *v);
    cJSON *root = cJSON_CreateObject();
    if (!v || !root) { free(v); cJSON_Delete(root); return ft_error(FT_ERR_NOMEM, "%s", what); }
    int ok = 1;
    add_num(root, "folds", nfolds, &ok);
    for (size_t f = 0; ok && f < sizeof k_fields / sizeof k_fields[0]; f++) {
        int defined = 1;
        for (int i = 0; i < nfolds; i++) {
            v[i] = *(const double *)((const char *)&folds[i] + k_fields[f].off);
            if (isnan(v[i])) defined = 0;
        }
        cJSON *o = cJSON_AddObjectToObject(root, k_fields[f].name);
        if (!o) { ok = 0; break; }
        double mean = NAN, sd = NAN;
        if (defined && ft_metrics_mean_std(&mean, &sd, v, nfolds) < 0) { ok = 0; break; }
        add_num(o, "mean", mean, &ok);
        add_num(o, "std", sd, &ok);
        cJSON *vals = cJSON_AddArrayToObject(o, "values");
        if (!vals) { ok = 0; break; }
        for (int i = 0; ok && i < nfolds; i++) {
            cJSON *x = number(v[i]);
            if (!x || !cJSON_AddItemToArray(vals, x)) { cJSON_Delete(x); ok = 0; }
        }
    }
    free(v);
    return finish(out, root, ok, what);
}
