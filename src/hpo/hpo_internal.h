/* hpo_internal.h — internals shared by the files of the hyperparameter search (not a public header).
 *
 * Files:
 *   spec.c        sweep.json -> ft_hpo_spec
 *   space.c       sampling, grid points, the unit-cube encoding of the GP, params as JSON / arguments
 *   linalg.c      Cholesky with jitter and triangular solves (double, row-major)
 *   nelder_mead.c a bounded Nelder-Mead minimiser (the GP's marginal-likelihood fit)
 *   gp.c          the Matérn-5/2 ARD Gaussian process and the acquisitions EI / PI / UCB
 *   bayes.c       the bayes strategy: GP fit, acquisition maximised by random candidates + pattern search
 *   tpe.c         the tpe strategy (Optuna's TPESampler behaviour, independent per parameter)
 *   schedule.c    Hyperband plan, the synchronous bracket engine (SH, Hyperband) and ASHA
 *   engine.c      ft_hpo_next: which trial comes next
 *   store.c       SQLite tables sweeps / trials
 *   runner.c      objective commands as child processes, the sweep loop
 *   trial_dir.c   train trials' run directories: the copy a continued trial starts from, checkpoint cleanup
 *   analysis.c    best trial, parameter importance
 *   report.c      the HTML report */
#ifndef FT_HPO_INTERNAL_H
#define FT_HPO_INTERNAL_H
#include <stdint.h>

#include "finetune/hpo.h"
#include "finetune/rng.h"

/* The rng of trial idx of a sweep with seed `seed` (independent streams per trial). */
void   ft__hpo_trial_rng(ft_rng *r, uint64_t seed, int idx, uint64_t salt);
double ft__hpo_normal(ft_rng *r);  /* N(0,1), double precision */

/* ---- space.c ---- */
/* Samples a configuration uniformly (as the parameters' distributions say) into x[n_params]. */
void ft__hpo_sample_random(const ft_hpo_spec *s, ft_rng *r, double *x);
/* Grid point number k (mixed radix, the first parameter varies slowest) into x; the number of values of
 * parameter j on the grid in ft__hpo_grid_count. */
int  ft__hpo_grid_count(const ft_hpo_param *p);
void ft__hpo_grid_point(const ft_hpo_spec *s, long k, double *x);
/* The unit-cube encoding of the GP: reals and integers one column each (linear or log, normalised to
 * [0,1]); a choice one column per value (one-hot). ft__hpo_enc_dims is the width D. */
int  ft__hpo_enc_dims(const ft_hpo_spec *s);
void ft__hpo_encode(const ft_hpo_spec *s, const double *x, double *u);
/* The other way: u[D] in [0,1] (any values) -> x; integers rounded, a choice is the argmax of its columns. */
void ft__hpo_decode(const ft_hpo_spec *s, const double *u, double *x);
/* decode + encode: the point the kernel sees (integers rounded, choices one-hot) — "rounding inside the
 * kernel" (Garrido-Merchán & Hernández-Lobato 2020). */
void ft__hpo_snap(const ft_hpo_spec *s, double *u);
/* Normalised position of a numeric value in its range (log ranges in log), for plots. */
double ft__hpo_unit(const ft_hpo_param *p, double v);

/* ---- linalg.c ---- */
/* In place: a[n][n] (symmetric, row-major) -> its lower Cholesky factor L (upper part zeroed). When it is
 * not positive definite, retries with jitter 1e-10, 1e-9, ... 1e-2 times the mean diagonal added; *jitter
 * receives what was added. Returns 0, or FT_ERR_RANGE when even the largest jitter fails (a restored). */
int  ft__hpo_cholesky(double *a, int n, double *jitter);
void ft__hpo_solve_lower(const double *L, int n, double *b);        /* b <- L^-1 b */
void ft__hpo_solve_upper_t(const double *L, int n, double *b);      /* b <- L^-T b */

/* ---- nelder_mead.c ---- */
/* Minimises f over x[dim] inside [lo, hi] per coordinate (points are clamped), starting at x, step `step`
 * per coordinate; at most max_evals evaluations. x receives the best point; returns its value. */
double ft__hpo_nelder_mead(double (*f)(const double *x, void *ud), void *ud, double *x, int dim,
                           const double *lo, const double *hi, double step, int max_evals);

/* ---- bayes.c / tpe.c: a new configuration from the observations (xs[n][n_params], ys[n], minimised) ---- */
int ft__hpo_bayes_suggest(const ft_hpo_spec *s, const double *xs, const double *ys, int n, ft_rng *r,
                          uint64_t seed, double *x);
/* tpe: xs_run[n_run] are the trials decided but not finished (the constant liar's "above" extras) */
int ft__hpo_tpe_suggest(const ft_hpo_spec *s, const double *xs, const double *ys, int n, const double *xs_run, int n_run,
                        ft_rng *r, double *x);

/* ---- schedule.c ---- */
/* The next trial of a scheduled sweep (SH, Hyperband, ASHA); new configurations come from new_config.
 * Returns FT_HPO_RUN / WAIT / DONE or < 0. */
typedef int (*ft__hpo_new_config_fn)(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, double *x);
int ft__hpo_sched_next(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out,
                       ft__hpo_new_config_fn new_config);
/* s_max: the largest s with eta^s <= R (integer arithmetic on the rounded powers). */
int ft__hpo_smax(double R, double eta);

/* ---- trial_dir.c ---- */
/* 1 when the run directory `dir` has a config.json and at least one checkpoints/step-N. */
int ft__hpo_dir_has_checkpoint(const char *dir);
/* dst (removed first when it exists) becomes a copy of the run directory src, without its lock and final/;
 * checkpoint files are hard links (copied where linking fails). src is not changed. */
int ft__hpo_dir_copy_for_continue(const char *src, const char *dst);
/* Removes dir/checkpoints (FT_OK when there is none). */
int ft__hpo_dir_drop_checkpoints(const char *dir);

/* ---- engine.c ---- */
/* A trial's result is visible to decision n when it is finished / failed and idx <= n - jobs. */
int ft__hpo_visible(const ft_hpo_trial *t, int n, int jobs);
/* Objective as minimised (negated for maximize; +inf for failed / unfinished). */
double ft__hpo_loss(const ft_hpo_spec *s, const ft_hpo_trial *t);
/* A new configuration for trial n with the spec's strategy (not grid with schedulers). */
int ft__hpo_new_config(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, double *x);
#endif
