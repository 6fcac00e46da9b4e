/* report_gen.c — the report section of `finetune eval --generate` (report_internal.h): from the last
 * {"type": "generate"} line of metrics.jsonl, the decoding settings, the scores with their bootstrap 95%
 * intervals, the format and refusal checks, and from the predictions file it names (in the run directory)
 * the 20 best and the 20 worst in-scope examples by the line's "sort_metric", each as prompt / reference /
 * prediction side by side with the example's scores — for reading the outputs by hand. */
#include "report_internal.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SHOWN = 20, PROMPT_CHARS = 600, TEXT_CHARS = 1200 };

typedef struct pred { cJSON *j; double key; } pred;

static int by_key_desc(const void *a, const void *b) {
    double x = ((const pred *)a)->key, y = ((const pred *)b)->key;
    if (x > y) return -1;
    if (x < y) return 1;
    return (int)(ft__json_num(((const pred *)a)->j, "index", 0) - ft__json_num(((const pred *)b)->j, "index", 0));
}

static void scores_table(ft__sb *o, const cJSON *scores, int has_ci) {
    ft__sb_printf(o, "<table><tr><th class='k'>metric</th><th>score</th>%s</tr>\n",
                  has_ci ? "<th>95% interval (bootstrap)</th><th>&plusmn;</th>" : "");
    for (const cJSON *s = cJSON_IsObject(scores) ? scores->child : NULL; s; s = s->next) {
        ft__sb_printf(o, "<tr><td class='k'>");
        ft__rep_escape(o, s->string);
        ft__sb_printf(o, "</td>");
        ft__rep_num_cell(o, ft__json_num(s, "score", NAN), "%.4f");
        if (has_ci) {
            double lo = ft__json_num(s, "low", NAN), hi = ft__json_num(s, "high", NAN);
            if (isfinite(lo) && isfinite(hi)) ft__sb_printf(o, "<td>%.4f &ndash; %.4f</td>", lo, hi);
            else ft__sb_printf(o, "<td>-</td>");
            ft__rep_num_cell(o, ft__json_num(s, "ci", NAN), "%.4f");
        }
        ft__sb_printf(o, "</tr>\n");
    }
    ft__sb_printf(o, "</table>\n");
}

static void example_rows(ft__sb *o, const pred *p, int n, const char *metric) {
    ft__sb_printf(o, "<table class='ex'><tr><th>#</th><th>");
    ft__rep_escape(o, metric);
    ft__sb_printf(o, "</th><th class='k'>prompt</th><th class='k'>reference</th><th class='k'>prediction</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const cJSON *j = p[i].j;
        ft__sb_printf(o, "<tr><td>%.0f</td>", ft__json_num(j, "index", NAN));
        ft__rep_num_cell(o, p[i].key, "%.4f");
        ft__sb_printf(o, "<td class='t'><pre>");
        ft__rep_escape_trunc(o, ft__json_str(j, "prompt", ""), PROMPT_CHARS);
        ft__sb_printf(o, "</pre></td><td class='t'><pre>");
        ft__rep_escape_trunc(o, ft__json_str(j, "reference", ""), TEXT_CHARS);
        ft__sb_printf(o, "</pre></td><td class='t'><pre>");
        ft__rep_escape_trunc(o, ft__json_str(j, "prediction", ""), TEXT_CHARS);
        ft__sb_printf(o, "</pre></td></tr>\n");
    }
    ft__sb_printf(o, "</table>\n");
}

/* the in-scope predictions with a finite sort key, read from run_dir/<file>; *n of them */
static pred *read_preds(const char *run_dir, const char *file, const char *metric, int *n) {
    char path[4200];
    char *text = NULL;
    size_t len = 0;
    *n = 0;
    if (ft_path_join(path, sizeof path, run_dir, file) != FT_OK || ft_file_read_all(path, &text, &len) != FT_OK) {
        ft_error_clear();
        return NULL;
    }
    pred *p = NULL;
    int cap = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        cJSON *j = end > at ? cJSON_ParseWithLength(text + at, end - at) : NULL;
        at = end + 1;
        if (!j) continue;
        double key = ft__json_num(cJSON_GetObjectItem(j, "scores"), metric, NAN);
        if (strcmp(ft__json_str(j, "scope", "in"), "in") != 0 || !isfinite(key)) { cJSON_Delete(j); continue; }
        if (*n == cap) {
            int nc = cap ? 2 * cap : 64;
            pred *q = realloc(p, sizeof *q * (size_t)nc);
            if (!q) { cJSON_Delete(j); break; }
            p = q;
            cap = nc;
        }
        p[(*n)++] = (pred){j, key};
    }
    free(text);
    return p;
}

void ft__rep_generation(ft__sb *o, const cJSON *g, const char *run_dir) {
    if (!g) return;
    ft__sb_printf(o, "<h2>Generation evaluation</h2>\n<p>");
    ft__sb_printf(o, "%.0f examples of <code>", ft__json_num(g, "examples", NAN));
    ft__rep_escape(o, ft__json_str(g, "data", "?"));
    ft__sb_printf(o, "</code>, model <code>");
    ft__rep_escape(o, ft__json_str(g, "model", "?"));
    if (cJSON_IsString(cJSON_GetObjectItem(g, "adapter"))) {
        ft__sb_printf(o, "</code> with adapter <code>");
        ft__rep_escape(o, ft__json_str(g, "adapter", "?"));
    }
    ft__sb_printf(o, "</code>; decoding:");
    const cJSON *dec = cJSON_GetObjectItem(g, "decoding");
    for (const cJSON *d = cJSON_IsObject(dec) ? dec->child : NULL; d; d = d->next) {
        char *v = cJSON_PrintUnformatted(d);
        ft__sb_printf(o, " %s=", d->string ? d->string : "?");
        ft__rep_escape(o, v ? v : "");
        cJSON_free(v);
    }
    ft__sb_printf(o, "</p>\n");
    double samples = ft__json_num(g, "bootstrap_samples", NAN);
    scores_table(o, cJSON_GetObjectItem(g, "scores"), isfinite(samples));
    if (isfinite(samples)) ft__sb_printf(o, "<p class='meta'>Intervals: %.0f bootstrap resamples of the examples (sacreBLEU's method).", samples);
    const char *sig = ft__json_str(g, "bleu_signature", NULL);
    if (sig) { ft__sb_printf(o, " BLEU signature <code>"); ft__rep_escape(o, sig); ft__sb_printf(o, "</code>."); }
    if (isfinite(samples) || sig) ft__sb_printf(o, "</p>\n");
    const cJSON *f = cJSON_GetObjectItem(g, "format");
    if (cJSON_IsObject(f)) {
        ft__sb_printf(o, "<p>Format: %.0f of %.0f predictions (%.1f%%) match <code>", ft__json_num(f, "matched", NAN),
                      ft__json_num(g, "examples", NAN), 100 * ft__json_num(f, "rate", NAN));
        ft__rep_escape(o, ft__json_str(f, "regex", ""));
        ft__sb_printf(o, "</code></p>\n");
    }
    const cJSON *r = cJSON_GetObjectItem(g, "refusal");
    if (cJSON_IsObject(r)) {
        ft__sb_printf(o, "<p>Refusals (<code>");
        ft__rep_escape_trunc(o, ft__json_str(r, "regex", ""), 160);
        ft__sb_printf(o, "</code>): ");
        if (isfinite(ft__json_num(r, "out_of_scope", NAN)))
            ft__sb_printf(o, "out-of-scope prompts refused %.0f of %.0f (%.1f%%); ", ft__json_num(r, "out_of_scope_refused", NAN),
                          ft__json_num(r, "out_of_scope", NAN), 100 * ft__json_num(r, "refusal_rate", NAN));
        ft__sb_printf(o, "in-scope prompts wrongly refused %.0f of %.0f (%.1f%%)</p>\n", ft__json_num(r, "in_scope_refused", NAN),
                      ft__json_num(r, "in_scope", NAN), 100 * ft__json_num(r, "false_refusal_rate", NAN));
    }
    const char *metric = ft__json_str(g, "sort_metric", NULL), *file = ft__json_str(g, "predictions", NULL);
    if (!metric || !file) return;
    int n;
    pred *p = read_preds(run_dir, file, metric, &n);
    if (n > 0) {
        qsort(p, (size_t)n, sizeof *p, by_key_desc);
        int k = n < SHOWN ? n : SHOWN;
        ft__sb_printf(o, "<h3>The %d best examples by %s</h3>\n", k, metric);
        example_rows(o, p, k, metric);
        /* the worst, worst first */
        pred *w = malloc(sizeof *w * (size_t)k);
        if (w) {
            for (int i = 0; i < k; i++) w[i] = p[n - 1 - i];
            ft__sb_printf(o, "<h3>The %d worst examples by %s</h3>\n", k, metric);
            example_rows(o, w, k, metric);
            free(w);
        }
    }
    for (int i = 0; i < n; i++) cJSON_Delete(p[i].j);
    free(p);
}
