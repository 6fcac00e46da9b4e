/* schedule.c — multi-fidelity schedulers.
 *
 * Budgets: with R = max_resource / min_resource and s_max = floor(log_eta R), rung i of a bracket s gets
 * max_resource * eta^(i - s) (so the top rung of every bracket is the full budget, as in Li et al.).
 *
 *   successive-halving  one bracket s = s_max with n configurations (scheduler.configs, default eta^s_max):
 *                       n_i = floor(n eta^-i) at rung i; a rung starts when the whole rung below is
 *                       finished and takes its best n_i (synchronous). Repeated while budget.trials allows.
 *   hyperband           the brackets s = s_max .. 0 of Li et al. (n = ceil((s_max+1)/(s+1) eta^s),
 *                       r = R eta^-s, n_i = floor(n eta^-i), r_i = r eta^i), each a successive halving;
 *                       one pass, or repeated while budget.trials allows.
 *   asha                asynchronous successive halving (Li et al. 2020): rungs k = 0 .. s_max; when a
 *                       slot is free, the highest rung k < s_max with a configuration in the top
 *                       floor(m_k / eta) of its m_k results that was not promoted yet promotes it to k + 1;
 *                       otherwise a new configuration starts at rung 0.
 * A failed trial ranks last. Ties rank by trial index.
 *
 * Continuation (scheduler.continue): a promoted trial names the trial of the rung below it continues from
 * (parent) and costs only the difference of the two budgets; the decisions themselves do not change. */
#include "hpo_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

int ft__hpo_smax(double R, double eta) {
    int s = 0;
    double p = 1;
    while (p * eta <= R * (1 + 1e-9) && s < 64) { p *= eta; s++; }
    return s;
}

int ft_hpo_hyperband_plan(double R, double eta, ft_hpo_bracket *out, int cap) {
    if (!(R >= 1) || !(eta >= 2) || !isfinite(R)) return ft_error(FT_ERR_INVALID, "hyperband: needs R >= 1 and eta >= 2 (got %g, %g)", R, eta);
    int smax = ft__hpo_smax(R, eta);
    if (smax + 1 > cap || smax + 1 > 32) return ft_error(FT_ERR_RANGE, "hyperband: %d brackets do not fit in %d", smax + 1, cap);
    for (int s = smax; s >= 0; s--) {
        ft_hpo_bracket *b = &out[smax - s];
        memset(b, 0, sizeof *b);
        b->s = s;
        b->n_rungs = s + 1;
        double n = ceil((double)(smax + 1) / (s + 1) * pow(eta, s) - 1e-9);
        double r = R * pow(eta, -s);
        for (int i = 0; i <= s; i++) {
            b->n[i] = (int)floor(n * pow(eta, -i) + 1e-9);
            b->r[i] = r * pow(eta, i);
        }
    }
    return smax + 1;
}

/* insertion sort (stable, no global state): the rung lists are short */
static void sort_by_loss(const ft_hpo_spec *s, const ft_hpo_trial **v, int m) {
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0; j--) {
            double a = ft__hpo_loss(s, v[j]), b = ft__hpo_loss(s, v[j - 1]);
            if (a < b || (a == b && v[j]->idx < v[j - 1]->idx)) { const ft_hpo_trial *t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
            else break;
        }
}

static int new_trial(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out,
                     int bracket, int bs, ft__hpo_new_config_fn new_config) {
    out->x = malloc(sizeof *out->x * (size_t)s->n_params);
    if (!out->x) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    int rc = new_config(s, t, n, jobs, out->x);
    if (rc != FT_HPO_RUN) { free(out->x); out->x = NULL; return rc; }
    out->config = n;
    out->bracket = bracket;
    out->rung = 0;
    out->budget = s->max_resource * pow(s->eta, -bs);
    out->cost = out->budget;
    return FT_HPO_RUN;
}

static int promote(const ft_hpo_spec *s, const ft_hpo_trial *from, ft_hpo_trial *out, int bracket, int rung, int bs) {
    out->x = malloc(sizeof *out->x * (size_t)s->n_params);
    if (!out->x) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    memcpy(out->x, from->x, sizeof *out->x * (size_t)s->n_params);
    out->config = from->config;
    out->bracket = bracket;
    out->rung = rung;
    out->budget = s->max_resource * pow(s->eta, rung - bs);
    /* scheduler.continue: the configuration goes on from `from` (the runner falls back to a fresh start, and
     * the full cost, when from's checkpoint is gone) */
    out->parent = s->continue_trials ? from->idx : -1;
    out->cost = s->continue_trials ? out->budget - from->budget : out->budget;
    return FT_HPO_RUN;
}

static int sync_next(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out,
                     ft__hpo_new_config_fn new_config) {
    ft_hpo_bracket plan[32];
    int nb = ft_hpo_hyperband_plan(s->max_resource / s->min_resource, s->eta, plan, 32);
    if (nb < 0) return nb;
    const ft_hpo_trial **v = malloc(sizeof *v * (size_t)(n + 1));
    if (!v) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    int rc = FT_HPO_DONE;
    for (int b = 0;; b++) {
        ft_hpo_bracket br;
        if (s->sched == FT_HPO_SCHED_SH) {
            if (s->max_trials == 0 && b >= 1) break;
            br = plan[0];
            if (s->sh_configs > 0) {
                int rungs = 0;
                for (int i = 0; i < br.n_rungs; i++) {
                    br.n[i] = (int)floor(s->sh_configs * pow(s->eta, -i) + 1e-9);
                    if (br.n[i] >= 1) rungs = i + 1;
                }
                br.n_rungs = rungs;
            }
        } else {
            if (s->max_trials == 0 && b >= nb) break;
            br = plan[b % nb];
        }
        for (int i = 0; i < br.n_rungs; i++) {
            int m = 0;
            for (int k = 0; k < n; k++) if (t[k].bracket == b && t[k].rung == i) v[m++] = &t[k];
            if (m >= br.n[i]) continue;
            if (i == 0) { rc = new_trial(s, t, n, jobs, out, b, br.s, new_config); goto done; }
            int below = 0, waiting = 0;
            for (int k = 0; k < n; k++)
                if (t[k].bracket == b && t[k].rung == i - 1) {
                    v[below++] = &t[k];
                    if (t[k].status != FT_HPO_FINISHED && t[k].status != FT_HPO_FAILED) waiting = 1;
                }
            if (waiting || below < br.n[i - 1]) { rc = FT_HPO_WAIT; goto done; }
            sort_by_loss(s, v, below);
            rc = promote(s, v[m], out, b, i, br.s);
            goto done;
        }
    }
done:
    free(v);
    return rc;
}

static int asha_next(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out,
                     ft__hpo_new_config_fn new_config) {
    int K = ft__hpo_smax(s->max_resource / s->min_resource, s->eta);
    const ft_hpo_trial **v = malloc(sizeof *v * (size_t)(n + 1));
    if (!v) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    int rc;
    for (int k = K - 1; k >= 0; k--) {
        int m = 0;
        for (int i = 0; i < n; i++) if (t[i].rung == k && ft__hpo_visible(&t[i], n, jobs)) v[m++] = &t[i];
        sort_by_loss(s, v, m);
        int top = (int)floor(m / s->eta + 1e-9);
        for (int c = 0; c < top; c++) {
            if (v[c]->status != FT_HPO_FINISHED) continue;
            int promoted = 0;
            for (int i = 0; i < n && !promoted; i++) promoted = t[i].rung == k + 1 && t[i].config == v[c]->config;
            if (promoted) continue;
            rc = promote(s, v[c], out, 0, k + 1, K);
            free(v);
            return rc;
        }
    }
    free(v);
    return new_trial(s, t, n, jobs, out, 0, K, new_config);
}

int ft__hpo_sched_next(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int jobs, ft_hpo_trial *out,
                       ft__hpo_new_config_fn new_config) {
    if (s->sched == FT_HPO_SCHED_ASHA) return asha_next(s, t, n, jobs, out, new_config);
    return sync_next(s, t, n, jobs, out, new_config);
}
