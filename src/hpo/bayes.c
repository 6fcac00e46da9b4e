/* bayes.c — the bayes strategy: a GP (gp.c) on the unit-cube encoding of the observations (space.c: reals
 * and integers one column, choices one-hot; integers are rounded and choices made one-hot before every
 * kernel evaluation, so the acquisition is flat between the values the objective can take), then the
 * acquisition (EI, PI or UCB on standardised values) maximised over random candidates plus perturbations
 * of the 5 best observations, and refined from the 5 best candidates by a pattern search (coordinate
 * steps halving from 0.05 to 1e-3). */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

typedef struct acq_ctx {
    const ft_hpo_spec *s;
    const ft_hpo_gp   *gp;
    double             best;
} acq_ctx;

static double acquisition(const acq_ctx *c, const double *u) {
    double mu, var;
    ft_hpo_gp_predict(c->gp, u, 1, &mu, &var);
    double sd = sqrt(var);
    switch (c->s->acq) {
    case FT_HPO_PI: return ft_hpo_pi(mu, sd, c->best, c->s->xi);
    case FT_HPO_UCB: return ft_hpo_ucb(mu, sd, c->s->kappa);
    default: return ft_hpo_ei(mu, sd, c->best, c->s->xi);
    }
}

/* keeps the k best (score, point) pairs, best first */
static void keep_top(double *top_s, double *top_u, int k, int D, double sc, const double *u) {
    if (!(sc > top_s[k - 1])) return;
    int i = k - 1;
    while (i > 0 && sc > top_s[i - 1]) {
        top_s[i] = top_s[i - 1];
        memcpy(top_u + (size_t)i * D, top_u + (size_t)(i - 1) * D, sizeof *u * (size_t)D);
        i--;
    }
    top_s[i] = sc;
    memcpy(top_u + (size_t)i * D, u, sizeof *u * (size_t)D);
}

int ft__hpo_bayes_suggest(const ft_hpo_spec *s, const double *xs, const double *ys, int n, ft_rng *r,
                          uint64_t seed, double *x) {
    if (n < s->n_initial || n < 2) { ft__hpo_sample_random(s, r, x); return FT_OK; }
    int D = ft__hpo_enc_dims(s);
    enum { TOP = 5 };
    double *U = malloc(sizeof *U * ((size_t)n * D + (size_t)(TOP + 3) * D + D + 2));
    if (!U) return ft_error(FT_ERR_NOMEM, "bayes: out of memory");
    double *top_u = U + (size_t)n * D, *u = top_u + (size_t)TOP * D, *v = u + D, *w = v + D, *theta = w + D;
    for (int i = 0; i < n; i++) ft__hpo_encode(s, xs + (size_t)i * s->n_params, U + (size_t)i * D);
    theta[0] = 0; theta[1] = log(1e-3);
    for (int k = 0; k < D; k++) theta[2 + k] = log(0.5);
    ft_hpo_gp *gp;
    int rc = ft_hpo_gp_fit(&gp, U, ys, n, D, theta, 1, seed);
    if (rc < 0) {  /* degenerate data: fall back to a random point rather than stopping the sweep */
        free(U);
        ft__hpo_sample_random(s, r, x);
        return FT_OK;
    }
    acq_ctx c = {s, gp, ft_hpo_gp_best(gp)};
    double top_s[TOP];
    for (int i = 0; i < TOP; i++) top_s[i] = -INFINITY;
    for (int i = 0; i < s->n_candidates; i++) {
        for (int k = 0; k < D; k++) u[k] = ft_rng_uniform_f64(r);
        ft__hpo_snap(s, u);
        keep_top(top_s, top_u, TOP, D, acquisition(&c, u), u);
    }
    /* perturbations of the best observations (local exploitation the random candidates rarely hit) */
    int *ord = malloc(sizeof *ord * (size_t)n);
    if (ord) {
        for (int i = 0; i < n; i++) ord[i] = i;
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && ys[ord[j]] < ys[ord[j - 1]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
        for (int b = 0; b < n && b < TOP; b++) {
            for (int t = 0; t < 50; t++) {
                double sd = t < 25 ? 0.05 : 0.01;
                for (int k = 0; k < D; k++) u[k] = U[(size_t)ord[b] * D + k] + sd * ft__hpo_normal(r);
                ft__hpo_snap(s, u);
                keep_top(top_s, top_u, TOP, D, acquisition(&c, u), u);
            }
        }
        free(ord);
    }
    /* pattern search from each of the best candidates */
    double best_s = -INFINITY;
    for (int t = 0; t < TOP; t++) {
        if (!isfinite(top_s[t])) continue;
        memcpy(v, top_u + (size_t)t * D, sizeof *v * (size_t)D);
        double sv = top_s[t];
        int evals = 0;
        for (double step = 0.05; step >= 1e-3 && evals < 400 * D; ) {
            int improved = 0;
            for (int k = 0; k < D; k++) {
                for (int sgn = -1; sgn <= 1; sgn += 2) {
                    memcpy(w, v, sizeof *v * (size_t)D);
                    w[k] += sgn * step;
                    ft__hpo_snap(s, w);
                    double sw = acquisition(&c, w);
                    evals++;
                    if (sw > sv) { sv = sw; memcpy(v, w, sizeof *v * (size_t)D); improved = 1; }
                }
            }
            if (!improved) step *= 0.5;
        }
        if (sv > best_s) { best_s = sv; memcpy(u, v, sizeof *v * (size_t)D); }
    }
    ft_hpo_gp_free(gp);
    if (isfinite(best_s)) ft__hpo_decode(s, u, x);
    else ft__hpo_sample_random(s, r, x);
    free(U);
    return FT_OK;
}
