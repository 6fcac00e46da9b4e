/* prom.h — metric families in the Prometheus text exposition format 0.0.4 (internal: not installed).
 *
 * A family is one metric name with a fixed list of label names and any number of series (one per set of
 * label values), of one kind: counter, gauge or histogram (cumulative `le` buckets, `_sum`, `_count`).
 *
 *     static const char *const lbl[] = {"route", "status"};
 *     ft__prom_family *req;
 *     ft__prom_family_create(&req, "finetune_requests_total", "HTTP requests answered, by route and status.",
 *                            FT__PROM_COUNTER, 2, lbl, NULL, 0, 256);
 *     const char *v[] = {"/v1/completions", "200"};
 *     ft__prom_add(req, v, 1);                       // from any thread
 *     ft__sb out = {0};  ft__prom_render(req, &out); // # HELP, # TYPE, one line per series
 *     ft__prom_family_free(req);
 *
 * Bounded cardinality: a family holds at most max_series series; the values of a new series beyond that
 * are all replaced by "other" (one overflow series), so a client cannot grow memory or the scrape without
 * bound. Callers still map untrusted names to a known set before they become label values (metrics.c).
 *
 * Format: `# HELP name text` (text escapes \\ and \n), `# TYPE name counter|gauge|histogram`, then
 * `name{label="value",...} number`; label values escape \\, \" and \n, and bytes that are not valid
 * UTF-8 become U+FFFD. Numbers print as integers when they are integral (< 2^53), else with 17
 * significant digits; +Inf, -Inf and NaN as the format spells them.
 *
 * Thread safety: each family has its own mutex; add / set / observe / render may be called concurrently.
 * Errors: create returns FT_ERR_NOMEM / FT_ERR_INVALID; render returns the builder's sticky error. */
#ifndef FT_SERVE_PROM_H
#define FT_SERVE_PROM_H
#include "core/strbuf.h"

typedef enum ft__prom_kind { FT__PROM_COUNTER = 0, FT__PROM_GAUGE = 1, FT__PROM_HISTOGRAM = 2 } ft__prom_kind;

enum { FT__PROM_MAX_LABELS = 4, FT__PROM_MAX_BUCKETS = 32 };

typedef struct ft__prom_family ft__prom_family;

/* name and help are copied. label_names[n_labels] (n_labels <= FT__PROM_MAX_LABELS) are copied.
 * Histograms: bounds[n_bounds] strictly increasing upper bounds (the +Inf bucket is implicit). */
int  ft__prom_family_create(ft__prom_family **out, const char *name, const char *help, ft__prom_kind kind,
                            int n_labels, const char *const *label_names, const double *bounds, int n_bounds,
                            int max_series);
void ft__prom_family_free(ft__prom_family *f);

/* values[n_labels] (NULL entries read as ""). Counter / gauge: value += v (a counter ignores v < 0). */
void ft__prom_add(ft__prom_family *f, const char *const *values, double v);
/* Gauge: value = v. */
void ft__prom_set(ft__prom_family *f, const char *const *values, double v);
/* Histogram: one observation x (NaN ignored). */
void ft__prom_observe(ft__prom_family *f, const char *const *values, double x);
/* The value of a counter / gauge series, or a histogram's count; 0 when there is no such series. */
double ft__prom_get(ft__prom_family *f, const char *const *values);
/* Appends the family (HELP, TYPE, series in creation order). A family with no series writes its HELP and
 * TYPE only. */
int  ft__prom_render(ft__prom_family *f, ft__sb *out);

/* ---- pieces for values computed at scrape time (no family) ---- */
void ft__prom_put_header(ft__sb *out, const char *name, const char *help, ft__prom_kind kind);
/* name{l0="v0",...} value\n ; n_labels may be 0. */
void ft__prom_put_sample(ft__sb *out, const char *name, int n_labels, const char *const *label_names,
                         const char *const *values, double value);
void ft__prom_put_label_value(ft__sb *out, const char *s);
void ft__prom_put_number(ft__sb *out, double v);
#endif
