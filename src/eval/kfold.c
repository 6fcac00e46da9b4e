/* kfold.c — aggregation of a metric over cross-validation folds. */
#include "finetune/metrics.h"
#include "finetune/status.h"

#include <math.h>

int ft_metrics_mean_std(double *mean, double *std, const double *values, int64_t n) {
    const char *what = "ft_metrics_mean_std";
    if (!mean || !std || !values) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: no values (n = %lld)", what, (long long)n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(values[i])) return ft_error(FT_ERR_INVALID, "%s: values[%lld] is NaN", what, (long long)i);
        s += values[i];
    }
    double m = s / (double)n;
    /* two passes, as numpy.std: sqrt(sum (x - mean)^2 / (n - ddof)), ddof = 1 */
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (values[i] - m) * (values[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
    return FT_OK;
}
