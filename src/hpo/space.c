/* space.c — the search space: random samples, grid points, the GP's unit-cube encoding, and a
 * configuration as JSON or as command-line arguments. */
#include "hpo_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/strbuf.h"

void ft__hpo_trial_rng(ft_rng *r, uint64_t seed, int idx, uint64_t salt) {
    ft_rng_seed(r, ft__mix64(ft__mix64(seed ^ 0x68706f5f73656564ull) + (uint64_t)idx * FT__GOLDEN_GAMMA + salt));
}

double ft__hpo_normal(ft_rng *r) {
    double u1 = ft_rng_uniform_f64(r), u2 = ft_rng_uniform_f64(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* numeric parameter: position in [0,1] <-> value (log ranges in log; integers widened by 0.5 on each side
 * so that every integer has the same share of the unit interval) */
static void span(const ft_hpo_param *p, double *a, double *b) {
    double lo = p->low, hi = p->high;
    if (p->kind == FT_HPO_INT) { lo -= 0.5; hi += 0.5; }
    if (p->log) { lo = log(lo); hi = log(hi); }
    *a = lo; *b = hi;
}

static double from_unit(const ft_hpo_param *p, double u) {
    double a, b;
    if (u < 0) u = 0;
    if (u > 1) u = 1;
    span(p, &a, &b);
    double v = a + u * (b - a);
    if (p->log) v = exp(v);
    if (p->kind == FT_HPO_INT) {
        v = floor(v + 0.5);
        if (v < p->low) v = p->low;
        if (v > p->high) v = p->high;
    } else {
        if (v < p->low) v = p->low;
        if (v > p->high) v = p->high;
    }
    return v;
}

double ft__hpo_unit(const ft_hpo_param *p, double v) {
    if (p->kind == FT_HPO_CHOICE) return p->n_choices > 1 ? v / (p->n_choices - 1) : 0.5;
    double a, b;
    span(p, &a, &b);
    double t = p->log ? log(v) : v;
    return b > a ? (t - a) / (b - a) : 0.5;
}

void ft__hpo_sample_random(const ft_hpo_spec *s, ft_rng *r, double *x) {
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        if (p->kind == FT_HPO_CHOICE) x[j] = (double)ft_rng_below(r, (uint64_t)p->n_choices);
        else if (p->kind == FT_HPO_INT && !p->log) x[j] = p->low + (double)ft_rng_below(r, (uint64_t)(p->high - p->low) + 1);
        else x[j] = from_unit(p, ft_rng_uniform_f64(r));
    }
}

int ft__hpo_grid_count(const ft_hpo_param *p) {
    if (p->kind == FT_HPO_CHOICE) return p->n_choices;
    if (p->kind == FT_HPO_INT && p->high - p->low + 1 <= p->grid_points) return (int)(p->high - p->low + 1);
    return p->grid_points;
}

long ft_hpo_grid_size(const ft_hpo_spec *s) {
    long n = 1;
    for (int j = 0; j < s->n_params; j++) {
        n *= ft__hpo_grid_count(&s->params[j]);
        if (n > 2147483647L) return -1;
    }
    return n;
}

/* value number i of g grid values of a numeric parameter: the ends and evenly spaced points between
 * (in log for log ranges), integers rounded */
static double grid_value(const ft_hpo_param *p, int i, int g) {
    if (p->kind == FT_HPO_INT && p->high - p->low + 1 <= p->grid_points) return p->low + i;
    double t = g > 1 ? (double)i / (g - 1) : 0.5;
    double a = p->log ? log(p->low) : p->low, b = p->log ? log(p->high) : p->high;
    double v = a + t * (b - a);
    if (p->log) v = exp(v);
    if (i == 0) v = p->low;
    if (i == g - 1 && g > 1) v = p->high;
    if (p->kind == FT_HPO_INT) v = floor(v + 0.5);
    return v;
}

void ft__hpo_grid_point(const ft_hpo_spec *s, long k, double *x) {
    for (int j = s->n_params - 1; j >= 0; j--) {
        const ft_hpo_param *p = &s->params[j];
        int g = ft__hpo_grid_count(p);
        int i = (int)(k % g);
        k /= g;
        x[j] = p->kind == FT_HPO_CHOICE ? i : grid_value(p, i, g);
    }
}

int ft__hpo_enc_dims(const ft_hpo_spec *s) {
    int d = 0;
    for (int j = 0; j < s->n_params; j++) d += s->params[j].kind == FT_HPO_CHOICE ? s->params[j].n_choices : 1;
    return d;
}

void ft__hpo_encode(const ft_hpo_spec *s, const double *x, double *u) {
    int c = 0;
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        if (p->kind == FT_HPO_CHOICE) {
            for (int k = 0; k < p->n_choices; k++) u[c + k] = (int)x[j] == k ? 1.0 : 0.0;
            c += p->n_choices;
        } else {
            u[c++] = ft__hpo_unit(p, x[j]);
        }
    }
}

void ft__hpo_decode(const ft_hpo_spec *s, const double *u, double *x) {
    int c = 0;
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        if (p->kind == FT_HPO_CHOICE) {
            int best = 0;
            for (int k = 1; k < p->n_choices; k++)
                if (u[c + k] > u[c + best]) best = k;
            x[j] = best;
            c += p->n_choices;
        } else {
            x[j] = from_unit(p, u[c++]);
        }
    }
}

void ft__hpo_snap(const ft_hpo_spec *s, double *u) {
    double x[256];
    double *xs = s->n_params <= 256 ? x : malloc(sizeof *xs * (size_t)s->n_params);
    if (!xs) return;
    ft__hpo_decode(s, u, xs);
    int c = 0;
    for (int j = 0; j < s->n_params; j++) {
        const ft_hpo_param *p = &s->params[j];
        if (p->kind == FT_HPO_CHOICE) {
            for (int k = 0; k < p->n_choices; k++) u[c + k] = (int)xs[j] == k ? 1.0 : 0.0;
            c += p->n_choices;
        } else {
            if (p->kind == FT_HPO_INT) u[c] = ft__hpo_unit(p, xs[j]);
            else u[c] = u[c] < 0 ? 0 : u[c] > 1 ? 1 : u[c];
            c++;
        }
    }
    if (xs != x) free(xs);
}

/* a value as JSON / argument text: reals with %.17g (round-trip), integers without a point */
static void put_value(ft__sb *b, const ft_hpo_param *p, double v, int json) {
    if (p->kind == FT_HPO_CHOICE) {
        const char *c = p->choices[(int)v];
        if (!json && c[0] == '"') {
            /* the string itself, unescaped for the command line: cJSON escapes only \" \\ and controls */
            for (const char *q = c + 1; *q && !(q[0] == '"' && q[1] == 0); q++) {
                if (*q == '\\' && q[1]) q++;
                ft__sb_putc(b, *q);
            }
        } else {
            ft__sb_puts(b, c);
        }
    } else if (p->kind == FT_HPO_INT) {
        ft__sb_printf(b, "%.0f", v);
    } else {
        ft__sb_printf(b, "%.17g", v);
    }
}

char *ft_hpo_params_json(const ft_hpo_spec *s, const double *x) {
    ft__sb b = {0};
    ft__sb_putc(&b, '{');
    for (int j = 0; j < s->n_params; j++) {
        if (j) ft__sb_puts(&b, ", ");
        ft__sb_put_json(&b, s->params[j].name, strlen(s->params[j].name), 0);
        ft__sb_puts(&b, ": ");
        put_value(&b, &s->params[j], x[j], 1);
    }
    ft__sb_putc(&b, '}');
    return ft__sb_take(&b, NULL);
}

char *ft_hpo_params_args(const ft_hpo_spec *s, const double *x) {
    ft__sb b = {0}, v = {0};
    for (int j = 0; j < s->n_params; j++) {
        ft__sb_printf(&b, " --%s '", s->params[j].name);
        v.n = 0;
        put_value(&v, &s->params[j], x[j], 0);
        for (size_t i = 0; v.p && i < v.n; i++) {
            if (v.p[i] == '\'') ft__sb_puts(&b, "'\\''");
            else ft__sb_putc(&b, v.p[i]);
        }
        ft__sb_putc(&b, '\'');
    }
    if (v.err) b.err = v.err;
    ft__sb_free(&v);
    if (!b.p && !b.err) ft__sb_puts(&b, "");
    return ft__sb_take(&b, NULL);
}
