/* tpe.c — the tpe strategy, behaving as Optuna's TPESampler with its defaults for one objective (Optuna >= 4:
 * multivariate TPE, constant liar, n_startup_trials 10, n_ei_candidates 24, prior_weight 1, magic clip on,
 * endpoints off):
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
 *   - multivariate: l and g are mixtures of products — component i is the product over parameters of the
 *     kernels of observation i (the prior: of the priors), with the one weight of observation i; a
 *     candidate picks a component, then draws each parameter from that component's kernel;
 *   - 24 candidates are drawn from l, and the one with the largest log l(x) - log g(x) is taken;
 *   - constant liar: trials decided but not finished yet (running, or not visible to this decision) join
 *     the "above" group, so that parallel trials spread out.
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

/* a draw from component i of mx in external units (choice index, integer, real) */
static double sample(const mixture *mx, int i, const ft_hpo_param *p, ft_rng *r) {
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

/* log density (log probability for integers and choices) of external value v under each component of mx,
 * added to acc[k] */
static void add_log_kernels(const mixture *mx, const ft_hpo_param *p, double v, double *acc) {
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
        acc[i] += lp;
    }
}

/* log of the mixture of products: logsumexp_i (log w_i + acc[i]) */
static double log_mix(const mixture *mx, const double *acc) {
    double m = -INFINITY, s = 0;
    for (int i = 0; i < mx->k; i++) if (log(mx->w[i]) + acc[i] > m) m = log(mx->w[i]) + acc[i];
    if (!isfinite(m)) return -INFINITY;
    for (int i = 0; i < mx->k; i++) s += exp(log(mx->w[i]) + acc[i] - m);
    return m + log(s);
}

int ft__hpo_tpe_suggest(const ft_hpo_spec *s, const double *xs, const double *ys, int n, const double *xs_run, int n_run,
                        ft_rng *r, double *x) {
    if (n < s->tpe_startup || n < 1) { ft__hpo_sample_random(s, r, x); return FT_OK; }
    /* below: the gamma(n) smallest losses (a stable sort: ties keep trial order), then both groups in trial
     * order; the running trials (constant liar) come last in the above group */
    int P = s->n_params, nb = gamma_n(n), na = n - nb + n_run;
    int *rank = malloc(sizeof *rank * (size_t)n), *below = calloc((size_t)n, sizeof *below);
    double *ob = malloc(sizeof *ob * (size_t)(n + n_run)), *oa = malloc(sizeof *oa * (size_t)(n + n_run));
    mixture *l = calloc((size_t)P, sizeof *l), *g = calloc((size_t)P, sizeof *g);
    double *cand = malloc(sizeof *cand * (size_t)P * (size_t)s->tpe_candidates);
    double *acc_l = malloc(sizeof *acc_l * (size_t)(nb + na + 2)), *acc_g = acc_l ? acc_l + nb + 1 : NULL;
    int rc = FT_OK;
    if (!rank || !below || !ob || !oa || !l || !g || !cand || !acc_l) { rc = ft_error(FT_ERR_NOMEM, "tpe: out of memory"); goto done; }
    for (int i = 0; i < n; i++) rank[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && ys[rank[j]] < ys[rank[j - 1]]; j--) { int t = rank[j]; rank[j] = rank[j - 1]; rank[j - 1] = t; }
    for (int i = 0; i < nb; i++) below[rank[i]] = 1;
    for (int j = 0; j < P; j++) {
        const ft_hpo_param *p = &s->params[j];
        int mb = 0, ma = 0;
        for (int i = 0; i < n + n_run; i++) {
            double v = i < n ? xs[(size_t)i * P + j] : xs_run[(size_t)(i - n) * P + j];
            double iv = p->kind == FT_HPO_CHOICE ? v : internal(p, v);
            if (i < n && below[i]) ob[mb++] = iv; else oa[ma++] = iv;
        }
        if (build(&l[j], p, ob, mb, s->tpe_prior_weight) < 0 || build(&g[j], p, oa, ma, s->tpe_prior_weight) < 0) {
            rc = ft_error(FT_ERR_NOMEM, "tpe: out of memory");
            goto done;
        }
    }
    /* candidates from l: a component, then every parameter from that component's kernels */
    for (int c = 0; c < s->tpe_candidates; c++) {
        int i = pick(&l[0], r);
        for (int j = 0; j < P; j++) cand[(size_t)c * P + j] = sample(&l[j], i, &s->params[j], r);
    }
    double best = -INFINITY;
    int bc = 0;
    for (int c = 0; c < s->tpe_candidates; c++) {
        memset(acc_l, 0, sizeof *acc_l * (size_t)l[0].k);
        memset(acc_g, 0, sizeof *acc_g * (size_t)g[0].k);
        for (int j = 0; j < P; j++) {
            add_log_kernels(&l[j], &s->params[j], cand[(size_t)c * P + j], acc_l);
            add_log_kernels(&g[j], &s->params[j], cand[(size_t)c * P + j], acc_g);
        }
        double score = log_mix(&l[0], acc_l) - log_mix(&g[0], acc_g);
        if (c == 0 || score > best) { best = score; bc = c; }
    }
    memcpy(x, cand + (size_t)bc * P, sizeof *x * (size_t)P);
done:
    for (int j = 0; l && g && j < P; j++) { free(l[j].w); free(g[j].w); }
    free(l); free(g); free(cand); free(acc_l);
    free(rank); free(below); free(ob); free(oa);
    return rc;
}
