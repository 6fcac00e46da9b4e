/* tpe.c — the tpe strategy, behaving as Optuna's TPESampler with its defaults (independent sampling per
 * parameter, n_startup_trials 10, n_ei_candidates 24, prior_weight 1, magic clip on, endpoints off):
 *
 *   - the finished trials are split into the gamma(n) = min(ceil(0.1 n), 25) best ("below", l) and the rest
 *     ("above", g); each group is taken in trial order and weighted by Optuna's default_weights (1 each
 *     for fewer than 25, else a linear ramp from 1/n for all but the newest 25), plus a prior component of
 *     weight prior_weight, normalised;
 *   - a numeric parameter (in log space for log ranges; integers widened by 0.5 and discrete) is a mixture
 *     of truncated normals: mu at each observation, sigma the larger gap to its sorted neighbours (the
 *     bounds count as neighbours, except that the smallest and largest observation use only their inner
 *     gap when there are two or more), clipped to [range / min(100, n + 2), range]; the prior is N(mid,
 *     range);
 *   - a choice parameter is a mixture of categoricals: each observation puts 1 + w/(n+1) on its value and
 *     w/(n+1) on every value (w = prior weight), normalised, plus a uniform prior;
 *   - 24 candidates are drawn from l, and the one with the largest log l(x) - log g(x) is taken.
 * Before n_startup_trials finished trials, parameters are sampled at random. */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

typedef struct mixture {
    int     k;          /* components (observations + prior) */
    double *w;          /* [k] weights, sum 1 */
    double *mu, *sd;    /* [k] numeric */
    double *cat;        /* [k][n_choices] choice probabilities */
    double  lo, hi;     /* internal bounds (numeric) */
} mixture;

static double ncdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

static int gamma_n(int n) { int g = (int)ceil(0.1 * n); return g < 25 ? g : 25; }

/* Optuna's default_weights(n) */
static void default_weights(int n, double *w) {
    if (n < 25) { for (int i = 0; i < n; i++) w[i] = 1; return; }
    int m = n - 25;
    for (int i = 0; i < m; i++) w[i] = m > 1 ? 1.0 / n + (1.0 - 1.0 / n) * i / (m - 1) : 1.0 / n;
    for (int i = m; i < n; i++) w[i] = 1;
}

/* internal value of parameter p (log space for log ranges) */
static double internal(const ft_hpo_param *p, double v) { return p->log ? log(v) : v; }

static void bounds(const ft_hpo_param *p, double *lo, double *hi) {
    double a = p->low, b = p->high;
    if (p->kind == FT_HPO_INT) { a -= 0.5; b += 0.5; }
    *lo = p->log ? log(a) : a;
    *hi = p->log ? log(b) : b;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the mixture of parameter p over observations obs[m] (internal values, choice indices), prior weight pw */
static int build(mixture *mx, const ft_hpo_param *p, const double *obs, int m, double pw) {
    memset(mx, 0, sizeof *mx);
    mx->k = m + 1;
    int C = p->kind == FT_HPO_CHOICE ? p->n_choices : 1;
    mx->w = calloc((size_t)mx->k * (3 + (size_t)C), sizeof *mx->w);
    if (!mx->w) return FT_ERR_NOMEM;
    mx->mu = mx->w + mx->k; mx->sd = mx->mu + mx->k; mx->cat = mx->sd + mx->k;
    if (m == 0) mx->w[0] = 1;
    else {
        default_weights(m, mx->w);
        mx->w[m] = pw;
        double sum = 0;
        for (int i = 0; i <= m; i++) sum += mx->w[i];
        for (int i = 0; i <= m; i++) mx->w[i] /= sum;
    }
    if (p->kind == FT_HPO_CHOICE) {
        if (m == 0) { for (int c = 0; c < C; c++) mx->cat[c] = 1.0 / C; return FT_OK; }
        for (int i = 0; i <= m; i++) {
            double *row = mx->cat + (size_t)i * C, sum = 0;
            for (int c = 0; c < C; c++) row[c] = pw / (m + 1);
            if (i < m) row[(int)obs[i]] += 1;
            for (int c = 0; c < C; c++) sum += row[c];
            for (int c = 0; c < C; c++) row[c] = sum > 0 ? row[c] / sum : 1.0 / C;
        }
        return FT_OK;
    }
    bounds(p, &mx->lo, &mx->hi);
    double range = mx->hi - mx->lo;
    if (m > 0) {
        /* sorted observations with the bounds at both ends: e[0] = lo, e[1..m] = sorted, e[m+1] = hi */
        double *e = malloc(sizeof *e * (size_t)(m + 2));
        if (!e) return FT_ERR_NOMEM;
        memcpy(e + 1, obs, sizeof *e * (size_t)m);
        qsort(e + 1, (size_t)m, sizeof *e, cmp_double);
        e[0] = mx->lo; e[m + 1] = mx->hi;
        double minsd = range / fmin(100.0, 1.0 + (m + 1)), maxsd = range;
        for (int i = 0; i < m; i++) {
            mx->mu[i] = obs[i];
            /* rank of obs[i] among the sorted (ties: the first equal position, as argsort is stable and
             * equal values get equal gaps on either side only up to ties; use the position of this
             * observation among equal ones by its index order) */
            int pos = 0, eq = 0;
            for (int j = 0; j < m; j++) {
                if (obs[j] < obs[i]) pos++;
                else if (obs[j] == obs[i] && j < i) eq++;
            }
            pos += eq;  /* 0-based rank among the sorted values */
            double sdv = fmax(e[pos + 1] - e[pos], e[pos + 2] - e[pos + 1]);
            if (m >= 2) {
                if (pos == 0) sdv = e[2] - e[1];
                if (pos == m - 1) sdv = e[m] - e[m - 1];
            }
            mx->sd[i] = fmin(fmax(sdv, minsd), maxsd);
        }
        free(e);
    }
    mx->mu[m] = 0.5 * (mx->lo + mx->hi);
    mx->sd[m] = range;
    return FT_OK;
}

static int pick(const mixture *mx, ft_rng *r) {
    double u = ft_rng_uniform_f64(r), c = 0;
    for (int i = 0; i < mx->k; i++) { c += mx->w[i]; if (u < c) return i; }
    return mx->k - 1;
}

/* a draw from l in external units (choice index, integer, real) */
static double sample(const mixture *mx, const ft_hpo_param *p, ft_rng *r) {
    int i = pick(mx, r);
    if (p->kind == FT_HPO_CHOICE) {
        const double *row = mx->cat + (size_t)i * p->n_choices;
        double u = ft_rng_uniform_f64(r), c = 0;
        for (int k = 0; k < p->n_choices; k++) { c += row[k]; if (u < c) return k; }
        return p->n_choices - 1;
    }
    double z = mx->mu[i];
    for (int t = 0; t < 1000; t++) {  /* rejection: the truncated normal keeps >= 1/3 of its mass in range */
        z = mx->mu[i] + mx->sd[i] * ft__hpo_normal(r);
        if (z >= mx->lo && z <= mx->hi) break;
        z = z < mx->lo ? mx->lo : mx->hi;
    }
    double v = p->log ? exp(z) : z;
    if (p->kind == FT_HPO_INT) v = floor(v + 0.5);
    if (v < p->low) v = p->low;
    if (v > p->high) v = p->high;
    return v;
}

/* log density (log probability for integers and choices) of external value v under mx */
static double log_pdf(const mixture *mx, const ft_hpo_param *p, double v) {
    double mx_log = -INFINITY, *terms = NULL, buf[64];
    terms = mx->k <= 64 ? buf : malloc(sizeof *terms * (size_t)mx->k);
    if (!terms) return -INFINITY;
    for (int i = 0; i < mx->k; i++) {
        double lp;
        if (p->kind == FT_HPO_CHOICE) {
            lp = log(mx->cat[(size_t)i * p->n_choices + (int)v]);
        } else {
            double mu = mx->mu[i], sd = mx->sd[i];
            double norm = ncdf((mx->hi - mu) / sd) - ncdf((mx->lo - mu) / sd);
            if (p->kind == FT_HPO_INT) {
                double a = internal(p, v - 0.5), b = internal(p, v + 0.5);
                lp = log(fmax(ncdf((b - mu) / sd) - ncdf((a - mu) / sd), 1e-300)) - log(norm);
            } else {
                double z = (internal(p, v) - mu) / sd;
                lp = -0.5 * z * z - log(sd * sqrt(2 * M_PI)) - log(norm);
            }
        }
        terms[i] = log(mx->w[i]) + lp;
        if (terms[i] > mx_log) mx_log = terms[i];
    }
    double s = 0;
    if (isfinite(mx_log)) for (int i = 0; i < mx->k; i++) s += exp(terms[i] - mx_log);
    if (terms != buf) free(terms);
    return isfinite(mx_log) ? mx_log + log(s) : -INFINITY;
}

int ft__hpo_tpe_suggest(const ft_hpo_spec *s, const double *xs, const double *ys, const int *order, int n,
                        ft_rng *r, double *x) {
    (void)order;
    if (n < s->tpe_startup || n < 1) { ft__hpo_sample_random(s, r, x); return FT_OK; }
    /* below: the gamma(n) smallest losses (a stable sort: ties keep trial order), then both groups in trial order */
    int nb = gamma_n(n);
    int *rank = malloc(sizeof *rank * (size_t)n), *below = calloc((size_t)n, sizeof *below);
    double *ob = malloc(sizeof *ob * (size_t)n), *oa = malloc(sizeof *oa * (size_t)n);
    int rc = FT_OK;
    if (!rank || !below || !ob || !oa) { rc = ft_error(FT_ERR_NOMEM, "tpe: out of memory"); goto done; }
    for (int i = 0; i < n; i++) rank[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ys[rank[j]] < ys[rank[j - 1]]; j--) { int t = rank[j]; rank[j] = rank[j - 1]; rank[j - 1] = t; }
    for (int i = 0; i < nb; i++) below[rank[i]] = 1;
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        int mb = 0, ma = 0;
        for (int i = 0; i < n; i++) {
            double v = xs[(size_t)i * s->n_params + j];
            double iv = p->kind == FT_HPO_CHOICE ? v : internal(p, v);
            if (below[i]) ob[mb++] = iv; else oa[ma++] = iv;
        }
        mixture l, g;
        if (build(&l, p, ob, mb, s->tpe_prior_weight) < 0 || build(&g, p, oa, ma, s->tpe_prior_weight) < 0) {
            free(l.w); free(g.w);
            rc = ft_error(FT_ERR_NOMEM, "tpe: out of memory");
            goto done;
        }
        double best = -INFINITY, bx = 0;
        for (int c = 0; c < s->tpe_candidates; c++) {
            double v = sample(&l, p, r);
            double score = log_pdf(&l, p, v) - log_pdf(&g, p, v);
            if (c == 0 || score > best) { best = score; bx = v; }
        }
        x[j] = bx;
        free(l.w); free(g.w);
    }
done:
    free(rank); free(below); free(ob); free(oa);
    return rc;
}
