/* linalg.c — the GP's dense linear algebra: Cholesky with jitter and triangular solves. The matrices are
 * small (one row per trial, a few hundred at most), so plain loops in double precision are enough and keep
 * the results independent of the BLAS build (bit-identical decisions on resume). */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

/* a[n][n] -> lower factor in place; 0 or -1 when a pivot is not positive */
static int chol_once(double *a, int n) {
    for (int j = 0; j < n; j++) {
        double *rj = a + (size_t)j * n;
        double d = rj[j];
        for (int k = 0; k < j; k++) d -= rj[k] * rj[k];
        if (!(d > 0) || !isfinite(d)) return -1;
        d = sqrt(d);
        rj[j] = d;
        for (int i = j + 1; i < n; i++) {
            double *ri = a + (size_t)i * n;
            double v = ri[j];
            for (int k = 0; k < j; k++) v -= ri[k] * rj[k];
            ri[j] = v / d;
        }
        for (int k = j + 1; k < n; k++) rj[k] = 0;
    }
    return 0;
}

int ft__hpo_cholesky(double *a, int n, double *jitter) {
    *jitter = 0;
    double *copy = malloc(sizeof *copy * (size_t)n * (size_t)n);
    if (!copy) return ft_error(FT_ERR_NOMEM, "gp: out of memory (%d x %d)", n, n);
    memcpy(copy, a, sizeof *copy * (size_t)n * (size_t)n);
    double mean_diag = 0;
    for (int i = 0; i < n; i++) mean_diag += copy[(size_t)i * n + i];
    mean_diag = n ? mean_diag / n : 1;
    if (!(mean_diag > 0)) mean_diag = 1;
    double jit = 0;
    for (int t = 0; t < 10; t++) {
        if (t > 0) {
            jit = mean_diag * pow(10.0, -11 + t);   /* 1e-10 .. 1e-2 */
            memcpy(a, copy, sizeof *copy * (size_t)n * (size_t)n);
            for (int i = 0; i < n; i++) a[(size_t)i * n + i] += jit;
        }
        if (chol_once(a, n) == 0) { *jitter = jit; free(copy); return FT_OK; }
    }
    memcpy(a, copy, sizeof *copy * (size_t)n * (size_t)n);
    free(copy);
    return ft_error(FT_ERR_RANGE, "gp: kernel matrix not positive definite even with jitter %g", jit);
}

void ft__hpo_solve_lower(const double *L, int n, double *b) {
    for (int i = 0; i < n; i++) {
        const double *ri = L + (size_t)i * n;
        double v = b[i];
        for (int k = 0; k < i; k++) v -= ri[k] * b[k];
        b[i] = v / ri[i];
    }
}

void ft__hpo_solve_upper_t(const double *L, int n, double *b) {
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++) v -= L[(size_t)k * n + i] * b[k];
        b[i] = v / L[(size_t)i * n + i];
    }
}
