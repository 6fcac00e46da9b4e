/* engine.c — ft_hpo_next: the next trial of a sweep, a pure function of the spec, its seed and the trials
 * decided so far (see hpo.h). Model-based strategies (bayes, tpe) and schedulers wait until every trial
 * with idx <= n - jobs has ended, so that decision n always sees the same results however the processes
 * were timed; grid and random without a scheduler never wait (their decisions ignore results). */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

static int ended(const ft_hpo_trial *t) { return t->status == FT_HPO_FINISHED || t->status == FT_HPO_FAILED; }

int ft__hpo_visible(const ft_hpo_trial *t, int n, int jobs) { return ended(t) && t->idx <= n - jobs; }

double ft__hpo_loss(const ft_hpo_spec *s, const ft_hpo_trial *t) {
    if (t->status != FT_HPO_FINISHED || !isfinite(t->value)) return INFINITY;
    return s->maximize ? -t->value : t->value;
}

void ft_hpo_trial_free(ft_hpo_trial *t) {
    if (!t) return;
    free(t->x);
    t->x = NULL;
}

void ft_hpo_trials_free(ft_hpo_trial *t, int n) {
    for (int i = 0; t && i < n; i++) ft_hpo_trial_free(&t[i]);
    free(t);
}

/* observations for the model: the finished, visible trials of the largest budget that has at least
 * `need` of them, else of the budget that has the most */
static int observations(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, int need,
                        double *xs, double *ys) {
    double best_budget = NAN;
    int best_count = -1, found = 0;
    for (int i = 0; i < n; i++) {
        if (!ft__hpo_visible(&t[i], n, jobs) || !isfinite(ft__hpo_loss(s, &t[i]))) continue;
        double b = t[i].budget;
        int c = 0;
        for (int k = 0; k < n; k++)
            if (ft__hpo_visible(&t[k], n, jobs) && isfinite(ft__hpo_loss(s, &t[k])) && t[k].budget == b) c++;
        int ok = c >= need;
        if ((ok && (!found || b > best_budget)) || (!found && !ok && c > best_count)) {
            best_budget = b;
            best_count = c;
            found = ok;
        }
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!ft__hpo_visible(&t[i], n, jobs) || !isfinite(ft__hpo_loss(s, &t[i])) || t[i].budget != best_budget) continue;
        memcpy(xs + (size_t)m * s->n_params, t[i].x, sizeof *xs * (size_t)s->n_params);
        ys[m++] = ft__hpo_loss(s, &t[i]);
    }
    return m;
}

int ft__hpo_new_config(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, double *x) {
    ft_rng r;
    ft__hpo_trial_rng(&r, s->seed, n, 0);
    if (s->strategy == FT_HPO_RANDOM || s->strategy == FT_HPO_GRID) { ft__hpo_sample_random(s, &r, x); return FT_HPO_RUN; }
    for (int i = 0; i < n && i <= n - jobs; i++) if (!ended(&t[i])) return FT_HPO_WAIT;
    double *xs = malloc(sizeof *xs * ((size_t)2 * n * s->n_params + (size_t)n + 1));
    if (!xs) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    double *ys = xs + (size_t)n * s->n_params, *xr = ys + n;
    int need = s->strategy == FT_HPO_BAYES ? s->n_initial : s->tpe_startup;
    if (need < s->n_params + 1) need = s->n_params + 1;
    int m = observations(s, t, n, jobs, need, xs, ys);
    /* decided, not visible yet (running or pending): the constant liar's extras of tpe */
    int nr = 0;
    for (int i = 0; i < n; i++)
        if (!ft__hpo_visible(&t[i], n, jobs) && t[i].x) memcpy(xr + (size_t)nr++ * s->n_params, t[i].x, sizeof *xr * (size_t)s->n_params);
    int rc = s->strategy == FT_HPO_BAYES
                 ? ft__hpo_bayes_suggest(s, xs, ys, m, &r, ft_rng_u64(&r), x)
                 : ft__hpo_tpe_suggest(s, xs, ys, m, xr, nr, &r, x);
    free(xs);
    return rc < 0 ? rc : FT_HPO_RUN;
}

int ft_hpo_next(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out) {
    memset(out, 0, sizeof *out);
    out->idx = n;
    out->value = NAN;
    out->status = FT_HPO_PENDING;
    out->parent = -1;
    if (jobs < 1) jobs = 1;
    if (s->max_trials > 0 && n >= s->max_trials) return FT_HPO_DONE;
    if (s->sched != FT_HPO_SCHED_NONE) {
        for (int i = 0; i < n && i <= n - jobs; i++) if (!ended(&t[i])) return FT_HPO_WAIT;
        return ft__hpo_sched_next(s, t, n, jobs, out, ft__hpo_new_config);
    }
    out->x = malloc(sizeof *out->x * (size_t)s->n_params);
    if (!out->x) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    out->config = n;
    out->budget = s->max_resource;
    out->cost = s->max_resource;
    int rc;
    if (s->strategy == FT_HPO_GRID) {
        if (n >= ft_hpo_grid_size(s)) rc = FT_HPO_DONE;
        else { ft__hpo_grid_point(s, n, out->x); rc = FT_HPO_RUN; }
    } else {
        rc = ft__hpo_new_config(s, t, n, jobs, out->x);
    }
    if (rc != FT_HPO_RUN) { free(out->x); out->x = NULL; }
    return rc;
}
