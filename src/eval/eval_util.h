/* eval_util.h — helpers shared by the files of src/eval (not a public header). */
#ifndef FT_EVAL_UTIL_H
#define FT_EVAL_UTIL_H
#include <stdint.h>

/* Neumaier-compensated sum: long evaluations (1e6+ samples) keep full double precision. */
typedef struct ft_ksum { double s, c; } ft_ksum;

static inline void ft_ksum_add(ft_ksum *k, double x) {
    double t = k->s + x;
    if ((k->s >= 0 ? k->s : -k->s) >= (x >= 0 ? x : -x)) k->c += (k->s - t) + x;
    else k->c += (x - t) + k->s;
    k->s = t;
}
static inline double ft_ksum_value(const ft_ksum *k) { return k->s + k->c; }

/* Checks one probability row p [K]: finite, in [0, 1], sum within FT_METRICS_PROB_SUM_TOL of 1.
 * On failure records "<what>: row <row>: ..." and returns FT_ERR_INVALID. */
int ft__eval_check_prob_row(const double *p, int K, int64_t row, const char *what);

/* First index of the largest value of p [K]. */
int ft__eval_argmax(const double *p, int K);

/* log(clip(p, DBL_EPSILON, 1 - DBL_EPSILON)), sklearn's log_loss clipping for float64. */
double ft__eval_clipped_log(double p);

/* Checks that y [n] holds classes 0..K-1; records "<what>: <name>[i] = v ..." on failure. */
int ft__eval_check_labels(const int32_t *y, int64_t n, int K, const char *what, const char *name);
#endif
