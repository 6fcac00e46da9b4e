/* fairness.c — per-group rates and between-group gaps of a classifier's predictions (definitions and
 * fairlearn correspondence in include/finetune/fairness.h). */
#include "finetune/fairness.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUP_ID (1 << 20)

void ft_fairness_report_free(ft_fairness_report *r) {
    if (!r) return;
    free(r->groups);
    memset(r, 0, sizeof *r);
}

/* rates of one group from its counts (correct = examples with p == y) */
static void finish_group(ft_fairness_group *g, int64_t correct) {
    int64_t negatives = g->count - g->positives;
    g->accuracy = g->count ? (double)correct / (double)g->count : NAN;
    g->selection_rate = g->count ? (double)g->selected / (double)g->count : NAN;
    g->tpr = g->positives ? (double)g->true_pos / (double)g->positives : 0.0;   /* sklearn normalize="true": 0/0 -> 0 */
    g->fpr = negatives ? (double)g->false_pos / (double)negatives : 0.0;
}

/* min and max of one rate over the groups (field read through an offset) */
static void min_max(const ft_fairness_report *r, size_t off, double *mn, double *mx) {
    *mn = INFINITY;
    *mx = -INFINITY;
    for (int i = 0; i < r->n_groups; i++) {
        double v = *(const double *)((const char *)&r->groups[i] + off);
        if (v < *mn) *mn = v;
        if (v > *mx) *mx = v;
    }
}

/* min / max as pandas divides: 0 / 0 is NaN */
static double ratio(double mn, double mx) { return mx == 0 ? NAN : mn / mx; }

int ft_fairness_compute(ft_fairness_report *out, const int32_t *y_true, const int32_t *y_pred, const int32_t *group,
                        int64_t n, int32_t pos_label) {
    if (!out) return ft_error(FT_ERR_INVALID, "fairness: NULL report");
    memset(out, 0, sizeof *out);
    if (!y_true || !y_pred || !group || n <= 0) return ft_error(FT_ERR_INVALID, "fairness: no examples");
    int32_t G = 0;
    for (int64_t i = 0; i < n; i++) {
        if (group[i] < 0 || group[i] >= MAX_GROUP_ID)
            return ft_error(FT_ERR_RANGE, "fairness: group[%lld] = %d is outside 0..%d", (long long)i, group[i], MAX_GROUP_ID - 1);
        if (group[i] >= G) G = group[i] + 1;
    }
    ft_fairness_group *all = calloc((size_t)G, sizeof *all);
    int64_t *correct = calloc((size_t)G, sizeof *correct);
    if (!all || !correct) { free(all); free(correct); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    ft_fairness_group *o = &out->overall;
    int64_t correct_all = 0;
    for (int64_t i = 0; i < n; i++) {
        ft_fairness_group *g = &all[group[i]];
        int pos = y_true[i] == pos_label, sel = y_pred[i] == pos_label, ok = y_true[i] == y_pred[i];
        g->count++; o->count++;
        g->positives += pos; o->positives += pos;
        g->selected += sel; o->selected += sel;
        g->true_pos += pos && sel; o->true_pos += pos && sel;
        g->false_pos += !pos && sel; o->false_pos += !pos && sel;
        correct[group[i]] += ok; correct_all += ok;
    }
    /* keep the groups that occur, in id order (pandas groupby sorts the group values) */
    int ng = 0;
    for (int32_t k = 0; k < G; k++)
        if (all[k].count) {
            all[k].group = k;
            finish_group(&all[k], correct[k]);
            all[ng++] = all[k];
        }
    free(correct);
    o->group = -1;
    finish_group(o, correct_all);
    out->pos_label = pos_label;
    out->n_groups = ng;
    out->groups = all;

    double mn, mx, tmn, tmx, fmn, fmx;
    min_max(out, offsetof(ft_fairness_group, selection_rate), &mn, &mx);
    out->dp_difference = mx - mn;
    out->dp_ratio = out->disparate_impact = ratio(mn, mx);
    min_max(out, offsetof(ft_fairness_group, tpr), &tmn, &tmx);
    min_max(out, offsetof(ft_fairness_group, fpr), &fmn, &fmx);
    out->eopp_difference = tmx - tmn;
    out->eopp_ratio = ratio(tmn, tmx);
    /* fairlearn: max(eo.difference()) and min(eo.ratio()) over the columns [tpr, fpr], i.e. Python's
     * builtin max / min: the first item, replaced by a later one only when it compares greater / less */
    double tdiff = tmx - tmn, fdiff = fmx - fmn;
    out->eqodds_difference = fdiff > tdiff ? fdiff : tdiff;
    double tr = ratio(tmn, tmx), fr = ratio(fmn, fmx);
    out->eqodds_ratio = fr < tr ? fr : tr;
    min_max(out, offsetof(ft_fairness_group, accuracy), &mn, &mx);
    out->accuracy_difference = mx - mn;
    return FT_OK;
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *group_json(const ft_fairness_group *g, const char *const *names, int n_names) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (g->group >= 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", g->group);
        cJSON_AddStringToObject(o, "group", names && g->group < n_names && names[g->group] ? names[g->group] : buf);
    }
    cJSON_AddNumberToObject(o, "count", (double)g->count);
    cJSON_AddNumberToObject(o, "positives", (double)g->positives);
    cJSON_AddItemToObject(o, "accuracy", num(g->accuracy));
    cJSON_AddItemToObject(o, "selection_rate", num(g->selection_rate));
    cJSON_AddItemToObject(o, "tpr", num(g->tpr));
    cJSON_AddItemToObject(o, "fpr", num(g->fpr));
    return o;
}

int ft_fairness_report_json(char **out, const ft_fairness_report *r, const char *const *group_names, int n_names,
                            const char *pos_name) {
    if (!out || !r) return ft_error(FT_ERR_INVALID, "fairness json: NULL argument");
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (pos_name) cJSON_AddStringToObject(o, "positive_label", pos_name);
    else cJSON_AddNumberToObject(o, "positive_label", r->pos_label);
    cJSON *gs = cJSON_AddArrayToObject(o, "groups");
    for (int i = 0; gs && i < r->n_groups; i++) cJSON_AddItemToArray(gs, group_json(&r->groups[i], group_names, n_names));
    cJSON_AddItemToObject(o, "overall", group_json(&r->overall, NULL, 0));
    cJSON_AddItemToObject(o, "demographic_parity_difference", num(r->dp_difference));
    cJSON_AddItemToObject(o, "demographic_parity_ratio", num(r->dp_ratio));
    cJSON_AddItemToObject(o, "disparate_impact_ratio", num(r->disparate_impact));
    cJSON_AddItemToObject(o, "equal_opportunity_difference", num(r->eopp_difference));
    cJSON_AddItemToObject(o, "equal_opportunity_ratio", num(r->eopp_ratio));
    cJSON_AddItemToObject(o, "equalized_odds_difference", num(r->eqodds_difference));
    cJSON_AddItemToObject(o, "equalized_odds_ratio", num(r->eqodds_ratio));
    cJSON_AddItemToObject(o, "accuracy_difference", num(r->accuracy_difference));
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}
