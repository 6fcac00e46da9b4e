/* gp.c — Gaussian-process regression with a Matérn-5/2 ARD kernel on the unit cube, for the bayes strategy.
 *
 *   k(a, b) = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),   r^2 = sum_k ((a_k - b_k) / l_k)^2
 *   K = k(X, X) + n2 I                 (n2: the noise variance)
 *   L L^T = K,  alpha = K^-1 y          (y standardised: mean 0, population std 1)
 *   mean(x*) = k*^T alpha,  var(x*) = s2 - |L^-1 k*|^2
 *   log p(y | theta) = -1/2 y^T alpha - sum_i log L_ii - n/2 log(2 pi)
 *
 * theta = {log s2, log n2, log l_1 .. log l_d}; the fit maximises the log marginal likelihood plus a
 * Gamma(3, rate 6) log-prior on each lengthscale (mean 0.5 on the unit cube: the prior BoTorch's SingleTaskGP
 * used; a MAP fit, which keeps a few points from being explained by one huge or tiny lengthscale — on
 * Hartmann-6 it halved the sweeps stuck in a local minimum, see BENCHMARKS.md) with Nelder–Mead over the
 * log-parameters from the given start and 4 seeded random starts inside the box
 *   s2 in [0.05, 20], n2 in [1e-8, 1], l_k in [0.01, 10]. */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

struct ft_hpo_gp {
    int     n, d;
    double *x;      /* [n][d] inputs in [0,1]^d */
    double *y;      /* [n] standardised targets */
    double  ymean, ystd;
    double *theta;  /* [d + 2] */
    double *L;      /* [n][n] lower Cholesky factor of K */
    double *alpha;  /* [n] K^-1 y */
    double  lml;    /* log marginal likelihood at theta */
};

static double matern52(const double *a, const double *b, const double *theta, int d) {
    double r2 = 0;
    for (int k = 0; k < d; k++) {
        double t = (a[k] - b[k]) / exp(theta[2 + k]);
        r2 += t * t;
    }
    double r = sqrt(r2), s5 = sqrt(5.0) * r;
    return exp(theta[0]) * (1 + s5 + 5.0 / 3.0 * r2) * exp(-s5);
}

/* factor K at theta into gp->L, gp->alpha, gp->lml; < 0 when K cannot be factored */
static int factor(ft_hpo_gp *gp, const double *theta) {
    int n = gp->n, d = gp->d;
    double *K = gp->L, noise = exp(theta[1]);
    /* the lengthscales once, not per pair */
    double il[64], *inv = d <= 64 ? il : malloc(sizeof *inv * (size_t)d);
    if (!inv) return FT_ERR_NOMEM;
    for (int k = 0; k < d; k++) inv[k] = exp(-theta[2 + k]);
    double s2 = exp(theta[0]);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double r2 = 0;
            for (int k = 0; k < d; k++) {
                double t = (gp->x[(size_t)i * d + k] - gp->x[(size_t)j * d + k]) * inv[k];
                r2 += t * t;
            }
            double r = sqrt(r2), s5 = sqrt(5.0) * r;
            double v = s2 * (1 + s5 + 5.0 / 3.0 * r2) * exp(-s5);
            K[(size_t)i * n + j] = v;
            K[(size_t)j * n + i] = v;
        }
        K[(size_t)i * n + i] += noise;
    }
    if (inv != il) free(inv);
    double jit;
    if (ft__hpo_cholesky(K, n, &jit) < 0) return FT_ERR_RANGE;
    memcpy(gp->alpha, gp->y, sizeof *gp->y * (size_t)n);
    ft__hpo_solve_lower(gp->L, n, gp->alpha);
    double q = 0, logdet = 0;
    for (int i = 0; i < n; i++) { q += gp->alpha[i] * gp->alpha[i]; logdet += log(gp->L[(size_t)i * n + i]); }
    ft__hpo_solve_upper_t(gp->L, n, gp->alpha);
    gp->lml = -0.5 * q - logdet - 0.5 * n * log(2 * M_PI);
    return FT_OK;
}

static double neg_lml(const double *theta, void *ud) {
    ft_hpo_gp *gp = ud;
    if (factor(gp, theta) < 0) return 1e30;
    /* log Gamma(3, rate 6) density of each lengthscale, up to a constant: (3 - 1) log l - 6 l */
    double lp = 0;
    for (int k = 0; k < gp->d; k++) { double l = exp(theta[2 + k]); lp += 2 * log(l) - 6 * l; }
    return -gp->lml - lp;
}

void ft_hpo_gp_free(ft_hpo_gp *gp) {
    if (!gp) return;
    free(gp->x); free(gp->y); free(gp->theta); free(gp->L); free(gp->alpha);
    free(gp);
}

int ft_hpo_gp_fit(ft_hpo_gp **out, const double *x, const double *y, int n, int d, double *theta, int fit, uint64_t seed) {
    *out = NULL;
    if (n < 1 || d < 1) return ft_error(FT_ERR_INVALID, "gp: needs at least one point and one dimension (n %d, d %d)", n, d);
    ft_hpo_gp *gp = calloc(1, sizeof *gp);
    if (!gp) return ft_error(FT_ERR_NOMEM, "gp: out of memory");
    gp->n = n; gp->d = d;
    gp->x = malloc(sizeof *gp->x * (size_t)n * d);
    gp->y = malloc(sizeof *gp->y * (size_t)n);
    gp->theta = malloc(sizeof *gp->theta * (size_t)(d + 2));
    gp->L = malloc(sizeof *gp->L * (size_t)n * n);
    gp->alpha = malloc(sizeof *gp->alpha * (size_t)n);
    if (!gp->x || !gp->y || !gp->theta || !gp->L || !gp->alpha) { ft_hpo_gp_free(gp); return ft_error(FT_ERR_NOMEM, "gp: out of memory (%d points)", n); }
    memcpy(gp->x, x, sizeof *x * (size_t)n * d);
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += y[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (y[i] - m) * (y[i] - m);
    v = sqrt(v / n);
    if (!(v > 1e-12)) v = 1;
    gp->ymean = m; gp->ystd = v;
    for (int i = 0; i < n; i++) gp->y[i] = (y[i] - m) / v;
    int dim = d + 2;
    memcpy(gp->theta, theta, sizeof *theta * (size_t)dim);
    if (fit) {
        double *lo = malloc(sizeof *lo * (size_t)dim * 4), *hi = lo + dim, *t = hi + dim, *best = t + dim;
        if (!lo) { ft_hpo_gp_free(gp); return ft_error(FT_ERR_NOMEM, "gp: out of memory"); }
        lo[0] = log(0.05); hi[0] = log(20.0);
        lo[1] = log(1e-8); hi[1] = 0;
        for (int k = 0; k < d; k++) { lo[2 + k] = log(0.01); hi[2 + k] = log(10.0); }
        double fbest = INFINITY;
        ft_rng r;
        ft_rng_seed(&r, seed);
        for (int start = 0; start < 5; start++) {
            for (int k = 0; k < dim; k++) {
                t[k] = start == 0 ? theta[k] : lo[k] + ft_rng_uniform_f64(&r) * (hi[k] - lo[k]);
                if (start > 0 && k == 1) t[k] = log(1e-4) + ft_rng_uniform_f64(&r) * (log(1e-1) - log(1e-4));
                t[k] = t[k] < lo[k] ? lo[k] : t[k] > hi[k] ? hi[k] : t[k];
            }
            double f = ft__hpo_nelder_mead(neg_lml, gp, t, dim, lo, hi, 0.5, 100 * dim);
            if (f < fbest) { fbest = f; memcpy(best, t, sizeof *t * (size_t)dim); }
        }
        memcpy(gp->theta, best, sizeof *best * (size_t)dim);
        memcpy(theta, best, sizeof *best * (size_t)dim);
        free(lo);
    }
    if (factor(gp, gp->theta) < 0) {
        ft_hpo_gp_free(gp);
        return ft_error(FT_ERR_RANGE, "gp: the kernel matrix of %d points cannot be factored", n);
    }
    *out = gp;
    return FT_OK;
}

void ft_hpo_gp_predict(const ft_hpo_gp *gp, const double *xq, int std_units, double *mean, double *var) {
    int n = gp->n, d = gp->d;
    double kbuf[512], *k = n <= 512 ? kbuf : malloc(sizeof *k * (size_t)n);
    if (!k) { *mean = NAN; *var = NAN; return; }
    double mu = 0;
    for (int i = 0; i < n; i++) {
        k[i] = matern52(gp->x + (size_t)i * d, xq, gp->theta, d);
        mu += k[i] * gp->alpha[i];
    }
    ft__hpo_solve_lower(gp->L, n, k);
    double vv = 0;
    for (int i = 0; i < n; i++) vv += k[i] * k[i];
    double s2 = exp(gp->theta[0]) - vv;
    if (s2 < 1e-12) s2 = 1e-12;
    if (k != kbuf) free(k);
    if (std_units) { *mean = mu; *var = s2; }
    else { *mean = mu * gp->ystd + gp->ymean; *var = s2 * gp->ystd * gp->ystd; }
}

double ft_hpo_gp_log_marginal(const ft_hpo_gp *gp) { return gp->lml; }

double ft_hpo_gp_best(const ft_hpo_gp *gp) {
    double b = INFINITY;
    for (int i = 0; i < gp->n; i++) if (gp->y[i] < b) b = gp->y[i];
    return b;
}

static double norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
static double norm_pdf(double z) { return exp(-0.5 * z * z) / sqrt(2 * M_PI); }

double ft_hpo_ei(double mu, double sigma, double best, double xi) {
    double imp = best - mu - xi;
    if (!(sigma > 0)) return imp > 0 ? imp : 0;
    double z = imp / sigma;
    return imp * norm_cdf(z) + sigma * norm_pdf(z);
}

double ft_hpo_pi(double mu, double sigma, double best, double xi) {
    double imp = best - mu - xi;
    if (!(sigma > 0)) return imp > 0 ? 1 : 0;
    return norm_cdf(imp / sigma);
}

double ft_hpo_ucb(double mu, double sigma, double kappa) { return -(mu - kappa * sigma); }
