/* analysis.c — the best trial and a correlation-based parameter importance.
 *
 * Importance: over the finished trials at the highest budget reached by at least 3 of them, the
 * absolute Spearman rank correlation between a numeric parameter and the objective, and for a choice the
 * correlation ratio eta = sqrt(between-group / total variance) of the objective's ranks grouped by the
 * chosen value; the scores are normalised to sum 1. It says how strongly a parameter alone orders the
 * results (a monotone trend for numbers, separated groups for choices); unlike fANOVA it does not see
 * interactions or non-monotone effects (a U-shape scores low). */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

int ft_hpo_best(const ft_hpo_spec *s, const ft_hpo_trial *t, int n) {
    double top = -INFINITY;
    for (int i = 0; i < n; i++) if (isfinite(ft__hpo_loss(s, &t[i])) && t[i].budget > top) top = t[i].budget;
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (!isfinite(ft__hpo_loss(s, &t[i])) || t[i].budget != top) continue;
        if (best < 0 || ft__hpo_loss(s, &t[i]) < ft__hpo_loss(s, &t[best])) best = i;
    }
    return best;
}

/* average ranks (ties share their mean rank) of v[m] into r */
static void ranks(const double *v, int m, double *r, int *ord) {
    for (int i = 0; i < m; i++) ord[i] = i;
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && v[ord[j]] < v[ord[j - 1]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
    for (int i = 0; i < m;) {
        int j = i;
        while (j + 1 < m && v[ord[j + 1]] == v[ord[i]]) j++;
        for (int k = i; k <= j; k++) r[ord[k]] = 0.5 * (i + j);
        i = j + 1;
    }
}

static double pearson(const double *a, const double *b, int m) {
    double ma = 0, mb = 0;
    for (int i = 0; i < m; i++) { ma += a[i]; mb += b[i]; }
    ma /= m; mb /= m;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < m; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb); }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

int ft_hpo_importance(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, double *imp) {
    for (int j = 0; j < s->n_params; j++) imp[j] = 0;
    /* the highest budget with >= 3 finished trials */
    double top = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(ft__hpo_loss(s, &t[i])) || !(t[i].budget > top)) continue;
        int c = 0;
        for (int k = 0; k < n; k++) c += isfinite(ft__hpo_loss(s, &t[k])) && t[k].budget == t[i].budget;
        if (c >= 3) top = t[i].budget;
    }
    if (!isfinite(top)) return FT_ERR_RANGE;
    double *y = malloc(sizeof *y * (size_t)n * 5);
    int *ord = malloc(sizeof *ord * (size_t)n);
    if (!y || !ord) { free(y); free(ord); return ft_error(FT_ERR_NOMEM, "importance: out of memory"); }
    double *v = y + n, *ry = v + n, *rv = ry + n, *tmp = rv + n;
    (void)tmp;
    int m = 0;
    for (int i = 0; i < n; i++) if (isfinite(ft__hpo_loss(s, &t[i])) && t[i].budget == top) y[m++] = ft__hpo_loss(s, &t[i]);
    ranks(y, m, ry, ord);
    double total = 0;
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        int k = 0;
        for (int i = 0; i < n; i++) if (isfinite(ft__hpo_loss(s, &t[i])) && t[i].budget == top) v[k++] = t[i].x[j];
        if (p->kind == FT_HPO_CHOICE) {
            double mean = 0, tot = 0, between = 0;
            for (int i = 0; i < m; i++) mean += ry[i];
            mean /= m;
            for (int i = 0; i < m; i++) tot += (ry[i] - mean) * (ry[i] - mean);
            for (int c = 0; c < p->n_choices; c++) {
                double sm = 0;
                int cnt = 0;
                for (int i = 0; i < m; i++) if ((int)v[i] == c) { sm += ry[i]; cnt++; }
                if (cnt) between += cnt * (sm / cnt - mean) * (sm / cnt - mean);
            }
            imp[j] = tot > 0 ? sqrt(between / tot) : 0;
        } else {
            ranks(v, m, rv, ord);
            imp[j] = fabs(pearson(rv, ry, m));
        }
        total += imp[j];
    }
    if (total > 0) for (int j = 0; j < s->n_params; j++) imp[j] /= total;
    free(y);
    free(ord);
    return FT_OK;
}
