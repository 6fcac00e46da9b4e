/* nelder_mead.c — Nelder–Mead simplex minimisation in a box (coefficients 1, 2, 0.5, 0.5 of the original
 * paper; points outside the box are clamped onto it). Used for the GP's marginal likelihood over
 * log-hyperparameters, where gradients are not worth the code. */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void clamp(double *x, int dim, const double *lo, const double *hi) {
    for (int i = 0; i < dim; i++) x[i] = x[i] < lo[i] ? lo[i] : x[i] > hi[i] ? hi[i] : x[i];
}

double ft__hpo_nelder_mead(double (*f)(const double *x, void *ud), void *ud, double *x, int dim,
                           const double *lo, const double *hi, double step, int max_evals) {
    int m = dim + 1;
    double *p = malloc(sizeof *p * (size_t)(m + 4) * (size_t)dim);  /* [m][dim] simplex + 4 scratch points */
    double *fv = malloc(sizeof *fv * (size_t)m);
    if (!p || !fv) { free(p); free(fv); return f(x, ud); }
    double *cen = p + (size_t)m * dim, *xr = cen + dim, *xe = xr + dim, *xc = xe + dim;
    int evals = 0;
    for (int i = 0; i < m; i++) {
        double *pi = p + (size_t)i * dim;
        memcpy(pi, x, sizeof *x * (size_t)dim);
        if (i > 0) {
            pi[i - 1] += step;
            if (pi[i - 1] > hi[i - 1]) pi[i - 1] -= 2 * step;
        }
        clamp(pi, dim, lo, hi);
        fv[i] = f(pi, ud);
        evals++;
    }
    while (evals < max_evals) {
        /* order: best first (insertion sort on the rows) */
        for (int i = 1; i < m; i++) {
            for (int j = i; j > 0 && (fv[j] < fv[j - 1] || (isnan(fv[j - 1]) && !isnan(fv[j]))); j--) {
                double t = fv[j]; fv[j] = fv[j - 1]; fv[j - 1] = t;
                for (int k = 0; k < dim; k++) {
                    double u = p[(size_t)j * dim + k];
                    p[(size_t)j * dim + k] = p[(size_t)(j - 1) * dim + k];
                    p[(size_t)(j - 1) * dim + k] = u;
                }
            }
        }
        if (fabs(fv[m - 1] - fv[0]) <= 1e-10 * (fabs(fv[0]) + 1e-10)) break;
        double *worst = p + (size_t)(m - 1) * dim;
        for (int k = 0; k < dim; k++) {
            double sum = 0;
            for (int i = 0; i < m - 1; i++) sum += p[(size_t)i * dim + k];
            cen[k] = sum / (m - 1);
        }
        for (int k = 0; k < dim; k++) xr[k] = cen[k] + (cen[k] - worst[k]);
        clamp(xr, dim, lo, hi);
        double fr = f(xr, ud); evals++;
        if (fr < fv[0]) {
            for (int k = 0; k < dim; k++) xe[k] = cen[k] + 2 * (cen[k] - worst[k]);
            clamp(xe, dim, lo, hi);
            double fe = f(xe, ud); evals++;
            if (fe < fr) { memcpy(worst, xe, sizeof *x * (size_t)dim); fv[m - 1] = fe; }
            else { memcpy(worst, xr, sizeof *x * (size_t)dim); fv[m - 1] = fr; }
        } else if (fr < fv[m - 2]) {
            memcpy(worst, xr, sizeof *x * (size_t)dim); fv[m - 1] = fr;
        } else {
            int outside = fr < fv[m - 1];
            for (int k = 0; k < dim; k++) xc[k] = outside ? cen[k] + 0.5 * (xr[k] - cen[k]) : cen[k] + 0.5 * (worst[k] - cen[k]);
            double fc = f(xc, ud); evals++;
            if (fc < (outside ? fr : fv[m - 1])) {
                memcpy(worst, xc, sizeof *x * (size_t)dim); fv[m - 1] = fc;
            } else {  /* shrink towards the best */
                for (int i = 1; i < m; i++) {
                    double *pi = p + (size_t)i * dim;
                    for (int k = 0; k < dim; k++) pi[k] = p[k] + 0.5 * (pi[k] - p[k]);
                    fv[i] = f(pi, ud); evals++;
                }
            }
        }
    }
    int best = 0;
    for (int i = 1; i < m; i++) if (fv[i] < fv[best] || isnan(fv[best])) best = i;
    memcpy(x, p + (size_t)best * dim, sizeof *x * (size_t)dim);
    double r = fv[best];
    free(p); free(fv);
    return r;
}
