/* roc.c — ROC-AUC of a binary task (trapezoid over the ROC curve, ties as sklearn). */
#include "finetune/metrics.h"
#include "finetune/status.h"
#include "eval/eval_util.h"

#include <math.h>
#include <stdlib.h>

typedef struct scored { double s; int32_t y; } scored;

/* Descending score; the order inside a tie does not matter (a tie is one ROC step). */
static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

int ft_metrics_roc_auc(double *out, const int32_t *y_true, const double *score, int64_t n) {
    const char *what = "ft_metrics_roc_auc";
    if (!out || !y_true || !score) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: no samples (n = %lld)", what, (long long)n);
    FT_TRY(ft__eval_check_labels(y_true, n, 2, what, "y_true"));
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(score[i])) return ft_error(FT_ERR_INVALID, "%s: score[%lld] is NaN", what, (long long)i);
        P += y_true[i];
    }
    int64_t N = n - P;
    if (P == 0 || N == 0) { *out = NAN; return FT_OK; } /* undefined: sklearn returns nan */

    scored *v = malloc((size_t)n * sizeof *v);
    if (!v) return ft_error(FT_ERR_NOMEM, "%s: %lld samples", what, (long long)n);
    for (int64_t i = 0; i < n; i++) { v[i].s = score[i]; v[i].y = y_true[i]; }
    qsort(v, (size_t)n, sizeof *v, by_score_desc);

    /* Lower the threshold one distinct score at a time; the ROC point moves from (fp, tp) to
     * (fp + dfp, tp + dtp) and the trapezoid under that segment is dfp * (2 tp + dtp) / 2
     * (in count units; divided by P N at the end). Each term is an integer, exact in double. */
    double area2 = 0.0;
    int64_t tp = 0, fp = 0;
    for (int64_t i = 0; i < n;) {
        int64_t dtp = 0, dfp = 0, j = i;
        for (; j < n && v[j].s == v[i].s; j++) { if (v[j].y) dtp++; else dfp++; }
        area2 += (double)dfp * (double)(2 * tp + dtp);
        tp += dtp; fp += dfp; i = j;
    }
    free(v);
    *out = area2 / (2.0 * (double)P * (double)N);
    return FT_OK;
}
