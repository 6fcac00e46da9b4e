/* calibration.c — metrics of predicted probabilities: ECE, log loss, Brier score, and the
 * input checks shared by src/eval (definitions in include/finetune/metrics.h). */
#include "finetune/metrics.h"
#include "finetune/status.h"
#include "eval/eval_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

int ft__eval_check_prob_row(const double *p, int K, int64_t row, const char *what) {
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        double v = p[k];
        if (isnan(v) || v < 0.0 || v > 1.0)
            return ft_error(FT_ERR_INVALID, "%s: row %lld: probability of class %d is %g, not in [0, 1]",
                            what, (long long)row, k, v);
        sum += v;
    }
    if (fabs(sum - 1.0) > FT_METRICS_PROB_SUM_TOL)
        return ft_error(FT_ERR_INVALID,
                        "%s: row %lld: probabilities sum to %.9g, not 1 (tolerance %g); pass softmax "
                        "probabilities, not logits", what, (long long)row, sum, FT_METRICS_PROB_SUM_TOL);
    return FT_OK;
}

int ft__eval_argmax(const double *p, int K) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

double ft__eval_clipped_log(double p) {
    if (p < DBL_EPSILON) p = DBL_EPSILON;
    if (p > 1.0 - DBL_EPSILON) p = 1.0 - DBL_EPSILON;
    return log(p);
}

int ft__eval_check_labels(const int32_t *y, int64_t n, int K, const char *what, const char *name) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K)
            return ft_error(FT_ERR_RANGE, "%s: %s[%lld] = %d is not a class in 0..%d", what, name,
                            (long long)i, (int)y[i], K - 1);
    return FT_OK;
}

/* Edges e_b = b * (1/M) as numpy.linspace(0, 1, M + 1) computes them, e_M = 1 exactly. */
static double bin_edge(int b, int bins) { return b == bins ? 1.0 : (double)b * (1.0 / (double)bins); }

int ft_metrics_ece_bin(double conf, int bins) {
    if (bins < 1) return 0;
    /* first guess from the product, then settle against the exact edges: e_b < conf <= e_{b+1} */
    int b = conf > 0.0 ? (int)(conf * bins) : 0;
    if (b > bins - 1) b = bins - 1;
    if (b < 0) b = 0;
    while (b > 0 && conf <= bin_edge(b, bins)) b--;
    while (b < bins - 1 && conf > bin_edge(b + 1, bins)) b++;
    return b;
}

static int check_common(const void *out, const int32_t *y_true, const void *probs, int64_t n,
                        int K, const char *what) {
    if (!out || !y_true || !probs) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (K < 2) return ft_error(FT_ERR_INVALID, "%s: num_classes is %d, need at least 2", what, K);
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: no samples (n = %lld)", what, (long long)n);
    FT_TRY(ft__eval_check_labels(y_true, n, K, what, "y_true"));
    for (int64_t i = 0; i < n; i++) FT_TRY(ft__eval_check_prob_row((const double *)probs + i * K, K, i, what));
    return FT_OK;
}

int ft_metrics_ece(double *out, const int32_t *y_true, const double *probs, int64_t n,
                   int num_classes, int bins) {
    const char *what = "ft_metrics_ece";
    FT_TRY(check_common(out, y_true, probs, n, num_classes, what));
    if (bins < 1) return ft_error(FT_ERR_INVALID, "%s: bins is %d, need at least 1", what, bins);
    int64_t *count = calloc((size_t)bins, sizeof *count);
    ft_ksum *correct = calloc((size_t)bins, sizeof *correct), *conf = calloc((size_t)bins, sizeof *conf);
    if (!count || !correct || !conf) {
        free(count); free(correct); free(conf);
        return ft_error(FT_ERR_NOMEM, "%s: %d bins", what, bins);
    }
    for (int64_t i = 0; i < n; i++) {
        const double *p = probs + i * num_classes;
        int a = ft__eval_argmax(p, num_classes);
        int b = ft_metrics_ece_bin(p[a], bins);
        count[b]++;
        ft_ksum_add(&correct[b], a == y_true[i] ? 1.0 : 0.0);
        ft_ksum_add(&conf[b], p[a]);
    }
    double ece = 0.0;
    for (int b = 0; b < bins; b++) {
        if (!count[b]) continue;
        double c = (double)count[b];
        ece += c / (double)n * fabs(ft_ksum_value(&correct[b]) / c - ft_ksum_value(&conf[b]) / c);
    }
    free(count); free(correct); free(conf);
    *out = ece;
    return FT_OK;
}

int ft_metrics_log_loss(double *out, const int32_t *y_true, const double *probs, int64_t n,
                        int num_classes) {
    FT_TRY(check_common(out, y_true, probs, n, num_classes, "ft_metrics_log_loss"));
    ft_ksum s = {0, 0};
    for (int64_t i = 0; i < n; i++) ft_ksum_add(&s, -ft__eval_clipped_log(probs[i * num_classes + y_true[i]]));
    *out = ft_ksum_value(&s) / (double)n;
    return FT_OK;
}

int ft_metrics_brier(double *out, const int32_t *y_true, const double *p1, int64_t n) {
    const char *what = "ft_metrics_brier";
    if (!out || !y_true || !p1) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: no samples (n = %lld)", what, (long long)n);
    FT_TRY(ft__eval_check_labels(y_true, n, 2, what, "y_true"));
    for (int64_t i = 0; i < n; i++)
        if (isnan(p1[i]) || p1[i] < 0.0 || p1[i] > 1.0)
            return ft_error(FT_ERR_INVALID, "%s: p1[%lld] = %g is not a probability in [0, 1]", what,
                            (long long)i, p1[i]);
    ft_ksum s = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        double d = p1[i] - (double)y_true[i];
        ft_ksum_add(&s, d * d);
    }
    *out = ft_ksum_value(&s) / (double)n;
    return FT_OK;
}
