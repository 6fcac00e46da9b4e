/* eval_fairness.c — `finetune eval --group-column COL [--positive-label L]` on a classifier: the group of
 * every example read from the data file, the per-group table and the between-group gaps of fairness.h. */
#include "cli.h"
#include "finetune/encoder_task.h"
#include "finetune/fairness.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* copy of src with the first `from` replaced by `to` (the reader names the column it misses "label") */
static void replace_once(char *dst, size_t cap, const char *src, const char *from, const char *to) {
    const char *at = strstr(src, from);
    if (!at) { snprintf(dst, cap, "%s", src); return; }
    snprintf(dst, cap, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
}

/* The group id of every example of the file (the same rows as d): the column is read as a label column,
 * so groups are its distinct values (sorted names, or integers) and *names their names. */
static int read_groups(ft_cls_dataset *g, const char *data, const ft_opt *opts, const ft_enc_data *d) {
    ft_cls_options o = ft_cls_default_options();
    o.text_column = ft_opt_str(opts, "text-column", "text");
    o.pair_column = ft_opt_str(opts, "pair-column", NULL);
    o.label_column = ft_opt_str(opts, "group-column", NULL);
    o.header = !ft_opt_flag(opts, "no-header");
    int rc = ft_cls_dataset_load(g, data, &o);
    if (rc < 0) {
        char a[1024], b[1024];
        replace_once(a, sizeof a, ft_last_error(), "no label column", "no group column");
        replace_once(b, sizeof b, a, "empty label", "empty group");
        return ft_error(rc, "--group-column: %s", b);
    }
    if (g->n != d->n) return ft_error(FT_ERR_FORMAT, "%s: %lld rows with a group, %lld examples", data, (long long)g->n, (long long)d->n);
    for (int64_t i = 0; i < g->n; i++)
        if (g->line[i] != d->ds.line[i])
            return ft_error(FT_ERR_FORMAT, "%s: group rows and examples differ at line %d", data, g->line[i]);
    return FT_OK;
}

/* --positive-label as a class id: a label name, or an id; default 1 for two classes */
static int positive_label(const ft_opt *opts, const ft_label_map *names, int K, int *pos) {
    const char *s = ft_opt_str(opts, "positive-label", NULL);
    char list[512] = "";
    for (int k = 0, w = 0; k < K && w < (int)sizeof list - 1; k++)
        w += snprintf(list + w, sizeof list - (size_t)w, "%s%s", k ? ", " : "", ft_label_map_name(names, k) ? ft_label_map_name(names, k) : "?");
    if (!s) {
        if (K == 2) { *pos = 1; return FT_OK; }
        return ft_error(FT_ERR_INVALID, "the model has %d labels: name the positive (favourable) one with --positive-label "
                        "(fairness is computed one-vs-rest against it); labels: %s", K, list);
    }
    int id = ft_label_map_id(names, s);
    if (id < 0) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*s && !*end && v >= 0 && v < K) id = (int)v;
    }
    if (id < 0) return ft_error(FT_ERR_NOT_FOUND, "--positive-label '%s' is not a label of the model (labels: %s)", s, list);
    *pos = id;
    return FT_OK;
}

int ft_cli_eval_fairness(const ft_opt *opts, const char *data, const ft_enc_data *d, ft_enc_eval *ev, int json, FILE *text) {
    const ft_label_map *names = d->labels;
    int K = ev->report.num_classes, pos = 1;
    ft_cls_dataset g = {0};
    ft_fairness_report r = {0};
    int32_t *yt = NULL, *yp = NULL, *gid = NULL;
    int64_t n = 0;
    int rc = positive_label(opts, names, K, &pos);
    if (rc == FT_OK) rc = read_groups(&g, data, opts, d);
    if (rc == FT_OK) {
        yt = malloc(sizeof *yt * (size_t)d->n);
        yp = malloc(sizeof *yp * (size_t)d->n);
        gid = malloc(sizeof *gid * (size_t)d->n);
        if (!yt || !yp || !gid) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; rc == FT_OK && i < d->n; i++) {
        if (!ev->pred || ev->pred[i] < 0) continue;
        yt[n] = d->ds.label[i];
        yp[n] = ev->pred[i];
        gid[n] = g.label[i];
        n++;
    }
    if (rc == FT_OK) rc = ft_fairness_compute(&r, yt, yp, gid, n, pos);
    const char *gcol = ft_opt_str(opts, "group-column", "");
    const char *pname = ft_label_map_name(names, pos);
    if (rc == FT_OK && json) {
        char *fj = NULL;
        rc = ft_fairness_report_json(&fj, &r, (const char *const *)g.labels.names, g.labels.n, pname);
        cJSON *o = rc == FT_OK ? cJSON_Parse(ev->json) : NULL, *f = rc == FT_OK ? cJSON_Parse(fj) : NULL;
        free(fj);
        if (rc == FT_OK && (!o || !f)) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) {
            cJSON_AddStringToObject(f, "group_column", gcol);
            cJSON_AddItemToObject(o, "fairness", f);
            f = NULL;
            char *s = cJSON_PrintUnformatted(o);
            if (!s) rc = ft_error(FT_ERR_NOMEM, "out of memory");
            else { free(ev->json); ev->json = s; }
        }
        cJSON_Delete(o);
        cJSON_Delete(f);
    } else if (rc == FT_OK) {
        fprintf(text, "fairness by group (column '%s', positive label '%s', %d groups):\n", gcol, pname ? pname : "?", r.n_groups);
        fprintf(text, "%-20s %8s %9s %9s %8s %8s\n", "group", "count", "accuracy", "selection", "TPR", "FPR");
        for (int i = 0; i <= r.n_groups; i++) {
            const ft_fairness_group *x = i < r.n_groups ? &r.groups[i] : &r.overall;
            const char *gn = i < r.n_groups ? ft_label_map_name(&g.labels, x->group) : "(overall)";
            fprintf(text, "%-20s %8lld %9.4f %9.4f %8.4f %8.4f\n", gn ? gn : "?", (long long)x->count, x->accuracy, x->selection_rate,
                   x->tpr, x->fpr);
        }
        fprintf(text, "demographic parity difference %.4f  ratio %.4f (= disparate impact)\n", r.dp_difference, r.dp_ratio);
        fprintf(text, "equal opportunity difference %.4f (TPR gap)  ratio %.4f\n", r.eopp_difference, r.eopp_ratio);
        fprintf(text, "equalized odds difference %.4f  ratio %.4f\n", r.eqodds_difference, r.eqodds_ratio);
        fprintf(text, "accuracy difference %.4f\n", r.accuracy_difference);
    }
    ft_fairness_report_free(&r);
    ft_cls_dataset_free(&g);
    free(yt); free(yp); free(gid);
    return rc;
}
