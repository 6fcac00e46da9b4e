/* prom.c — Prometheus metric families and the text exposition format 0.0.4 (see prom.h). */
#include "serve/prom.h"
#include "finetune/status.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct prom_series {
    char    *values[FT__PROM_MAX_LABELS];   /* label values, malloc'd */
    double   value;                         /* counter / gauge */
    uint64_t *buckets;                      /* [n_bounds + 1] histogram counts per bucket (not cumulative) */
    double   sum;                           /* histogram */
    uint64_t count;                         /* histogram */
} prom_series;

struct ft__prom_family {
    char *name, *help;
    ft__prom_kind kind;
    int n_labels;
    char *label_names[FT__PROM_MAX_LABELS];
    double bounds[FT__PROM_MAX_BUCKETS];    /* [n_bounds] histogram upper bounds */
    int n_bounds;
    int max_series;
    prom_series *s;                         /* [n] in creation order */
    int n, cap;
    pthread_mutex_t mu;
};

static char *dup_str(const char *s) {
    size_t n = strlen(s ? s : "");
    char *p = malloc(n + 1);
    if (p) memcpy(p, s ? s : "", n + 1);
    return p;
}

int ft__prom_family_create(ft__prom_family **out, const char *name, const char *help, ft__prom_kind kind,
                           int n_labels, const char *const *label_names, const double *bounds, int n_bounds,
                           int max_series) {
    *out = NULL;
    if (!name || n_labels < 0 || n_labels > FT__PROM_MAX_LABELS || n_bounds < 0 || n_bounds > FT__PROM_MAX_BUCKETS
        || (kind == FT__PROM_HISTOGRAM && n_bounds == 0) || max_series < 1)
        return ft_error(FT_ERR_INVALID, "metric family %s: invalid definition", name ? name : "(null)");
    for (int i = 1; i < n_bounds; i++)
        if (!(bounds[i] > bounds[i - 1])) return ft_error(FT_ERR_INVALID, "metric %s: bucket bounds must increase", name);
    ft__prom_family *f = calloc(1, sizeof *f);
    if (!f) return ft_error(FT_ERR_NOMEM, "metric family %s: out of memory", name);
    f->name = dup_str(name);
    f->help = dup_str(help);
    f->kind = kind;
    f->n_labels = n_labels;
    f->n_bounds = n_bounds;
    f->max_series = max_series;
    int bad = !f->name || !f->help;
    for (int i = 0; i < n_labels; i++) bad |= !(f->label_names[i] = dup_str(label_names[i]));
    for (int i = 0; i < n_bounds; i++) f->bounds[i] = bounds[i];
    pthread_mutex_init(&f->mu, NULL);
    if (bad) {
        ft__prom_family_free(f);
        return ft_error(FT_ERR_NOMEM, "metric family %s: out of memory", name);
    }
    *out = f;
    return FT_OK;
}

static void series_clear(ft__prom_family *f, prom_series *s) {
    for (int i = 0; i < f->n_labels; i++) free(s->values[i]);
    free(s->buckets);
}

void ft__prom_family_free(ft__prom_family *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) series_clear(f, &f->s[i]);
    free(f->s);
    for (int i = 0; i < f->n_labels; i++) free(f->label_names[i]);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int values_match(const ft__prom_family *f, const prom_series *s, const char *const *values) {
    for (int i = 0; i < f->n_labels; i++)
        if (strcmp(s->values[i], values && values[i] ? values[i] : "")) return 0;
    return 1;
}

/* The series for values, created when new (the overflow series once max_series are held); NULL when out of
 * memory (the observation is then dropped: metrics never fail a request). Called with f->mu held. */
static prom_series *series_get(ft__prom_family *f, const char *const *values) {
    for (int i = 0; i < f->n; i++)
        if (values_match(f, &f->s[i], values)) return &f->s[i];
    const char *other[FT__PROM_MAX_LABELS];
    if (f->n >= f->max_series) {
        for (int i = 0; i < f->n_labels; i++) other[i] = "other";
        values = other;
        for (int i = f->max_series; i < f->n; i++)
            if (values_match(f, &f->s[i], values)) return &f->s[i];
        if (f->n > f->max_series) return NULL;
    }
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        prom_series *s = realloc(f->s, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        f->s = s;
        f->cap = cap;
    }
    prom_series *s = &f->s[f->n];
    memset(s, 0, sizeof *s);
    int bad = 0;
    for (int i = 0; i < f->n_labels; i++) bad |= !(s->values[i] = dup_str(values ? values[i] : ""));
    if (f->kind == FT__PROM_HISTOGRAM) bad |= !(s->buckets = calloc((size_t)f->n_bounds + 1, sizeof *s->buckets));
    if (bad) {
        series_clear(f, s);
        return NULL;
    }
    f->n++;
    return s;
}

void ft__prom_add(ft__prom_family *f, const char *const *values, double v) {
    if (!f || f->kind == FT__PROM_HISTOGRAM || isnan(v) || (f->kind == FT__PROM_COUNTER && v < 0)) return;
    pthread_mutex_lock(&f->mu);
    prom_series *s = series_get(f, values);
    if (s) s->value += v;
    pthread_mutex_unlock(&f->mu);
}

void ft__prom_set(ft__prom_family *f, const char *const *values, double v) {
    if (!f || f->kind != FT__PROM_GAUGE) return;
    pthread_mutex_lock(&f->mu);
    prom_series *s = series_get(f, values);
    if (s) s->value = v;
    pthread_mutex_unlock(&f->mu);
}

void ft__prom_observe(ft__prom_family *f, const char *const *values, double x) {
    if (!f || f->kind != FT__PROM_HISTOGRAM || isnan(x)) return;
    pthread_mutex_lock(&f->mu);
    prom_series *s = series_get(f, values);
    if (s) {
        int b = 0;
        while (b < f->n_bounds && x > f->bounds[b]) b++;   /* le: x <= bound */
        s->buckets[b]++;
        s->sum += x;
        s->count++;
    }
    pthread_mutex_unlock(&f->mu);
}

double ft__prom_get(ft__prom_family *f, const char *const *values) {
    if (!f) return 0;
    double v = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n; i++)
        if (values_match(f, &f->s[i], values)) {
            v = f->kind == FT__PROM_HISTOGRAM ? (double)f->s[i].count : f->s[i].value;
            break;
        }
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* ---- the text format ---- */

void ft__prom_put_number(ft__sb *out, double v) {
    if (isnan(v)) ft__sb_puts(out, "NaN");
    else if (isinf(v)) ft__sb_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) ft__sb_printf(out, "%.0f", v);
    else {   /* the shortest of 15..17 significant digits that reads back as v ("0.005", not 0.0050000000000000001) */
        char buf[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        ft__sb_puts(out, buf);
    }
}

void ft__prom_put_label_value(ft__sb *out, const char *s) {
    size_t n = strlen(s ? s : "");
    ft__sb_putc(out, '"');
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int len = ft__utf8_next(s, n, i, &cp);
        if (len == 1 && (unsigned char)s[i] >= 0x80) ft__sb_puts(out, "\xEF\xBF\xBD");   /* invalid UTF-8: U+FFFD */
        else if (s[i] == '\\') ft__sb_puts(out, "\\\\");
        else if (s[i] == '"') ft__sb_puts(out, "\\\"");
        else if (s[i] == '\n') ft__sb_puts(out, "\\n");
        else ft__sb_put(out, s + i, (size_t)len);
        i += (size_t)len;
    }
    ft__sb_putc(out, '"');
}

void ft__prom_put_header(ft__sb *out, const char *name, const char *help, ft__prom_kind kind) {
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    ft__sb_printf(out, "# HELP %s ", name);
    for (const char *p = help ? help : ""; *p; p++) {
        if (*p == '\\') ft__sb_puts(out, "\\\\");
        else if (*p == '\n') ft__sb_puts(out, "\\n");
        else ft__sb_putc(out, *p);
    }
    ft__sb_printf(out, "\n# TYPE %s %s\n", name, kinds[kind]);
}

/* name{labels[,extra_name="extra"]} value */
static void put_line(ft__sb *out, const char *name, const char *suffix, int n_labels, const char *const *label_names,
                     const char *const *values, const char *extra_name, const char *extra, double value) {
    ft__sb_puts(out, name);
    if (suffix) ft__sb_puts(out, suffix);
    if (n_labels > 0 || extra_name) {
        ft__sb_putc(out, '{');
        for (int i = 0; i < n_labels; i++) {
            if (i) ft__sb_putc(out, ',');
            ft__sb_puts(out, label_names[i]);
            ft__sb_putc(out, '=');
            ft__prom_put_label_value(out, values ? values[i] : "");
        }
        if (extra_name) {
            if (n_labels > 0) ft__sb_putc(out, ',');
            ft__sb_printf(out, "%s=\"%s\"", extra_name, extra);
        }
        ft__sb_putc(out, '}');
    }
    ft__sb_putc(out, ' ');
    ft__prom_put_number(out, value);
    ft__sb_putc(out, '\n');
}

void ft__prom_put_sample(ft__sb *out, const char *name, int n_labels, const char *const *label_names,
                         const char *const *values, double value) {
    put_line(out, name, NULL, n_labels, label_names, values, NULL, NULL, value);
}

int ft__prom_render(ft__prom_family *f, ft__sb *out) {
    if (!f) return out->err;
    pthread_mutex_lock(&f->mu);
    ft__prom_put_header(out, f->name, f->help, f->kind);
    const char *const *ln = (const char *const *)f->label_names;
    for (int i = 0; i < f->n; i++) {
        const prom_series *s = &f->s[i];
        const char *const *v = (const char *const *)s->values;
        if (f->kind != FT__PROM_HISTOGRAM) {
            put_line(out, f->name, NULL, f->n_labels, ln, v, NULL, NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        for (int b = 0; b <= f->n_bounds; b++) {
            char le[64];
            ft__sb num = {0};
            if (b < f->n_bounds) ft__prom_put_number(&num, f->bounds[b]);
            snprintf(le, sizeof le, "%s", b < f->n_bounds ? (num.p ? num.p : "0") : "+Inf");
            ft__sb_free(&num);
            cum += s->buckets[b];
            put_line(out, f->name, "_bucket", f->n_labels, ln, v, "le", le, (double)cum);
        }
        put_line(out, f->name, "_sum", f->n_labels, ln, v, NULL, NULL, s->sum);
        put_line(out, f->name, "_count", f->n_labels, ln, v, NULL, NULL, (double)s->count);
    }
    pthread_mutex_unlock(&f->mu);
    return out->err;
}
