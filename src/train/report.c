/* report.c — report.html from metrics.jsonl (see report.h). */
#include "finetune/report.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double *x, *y; int n, cap; } series;

static void push(series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->x = realloc(s->x, sizeof(double) * (size_t)s->cap);
        s->y = realloc(s->y, sizeof(double) * (size_t)s->cap);
    }
    s->x[s->n] = x; s->y[s->n] = y; s->n++;
}

typedef struct { char *buf; size_t len, cap; } out_t;

static void outf(out_t *o, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && o->len + (size_t)n < o->cap) { o->len += (size_t)n; return; }
        o->cap = (o->cap + (size_t)(n > 0 ? n : 0) + 1) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
}

static void html_escape(out_t *o, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': outf(o, "&lt;"); break;
        case '>': outf(o, "&gt;"); break;
        case '&': outf(o, "&amp;"); break;
        case '"': outf(o, "&quot;"); break;
        default: outf(o, "%c", *s);
        }
    }
}

/* one SVG line chart with up to two series */
static void chart(out_t *o, const char *title, const char *ylabel, const series *a, const char *an, const series *b, const char *bn, int logy) {
    const double W = 640, H = 260, L = 60, R = 16, T = 28, B = 36;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const series *ss[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        if (!ss[k]) continue;
        for (int i = 0; i < ss[k]->n; i++) {
            double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
            if (!isfinite(y)) continue;
            x0 = fmin(x0, ss[k]->x[i]); x1 = fmax(x1, ss[k]->x[i]);
            y0 = fmin(y0, y); y1 = fmax(y1, y);
        }
    }
    outf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' viewBox='0 0 %g %g' role='img' aria-label='%s'>\n", W, H, W, H, title);
    outf(o, "<rect width='100%%' height='100%%' fill='#fff'/><text x='%g' y='18' font-size='14' font-weight='bold'>%s</text>\n", L, title);
    if (!(x1 >= x0) || !(y1 >= y0)) { outf(o, "<text x='%g' y='%g' fill='#888'>no data</text></svg></figure>\n", L, H / 2); return; }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) { y1 += 0.5; y0 -= 0.5; }
    double pad = (y1 - y0) * 0.05, ymin = y0;
    y0 -= pad; y1 += pad;
    if (!logy && ymin >= 0 && y0 < 0) y0 = 0; /* non-negative quantities (lr, loss) start at 0 */
    #define SX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
    #define SY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    outf(o, "<g stroke='#ddd'>");
    for (int i = 0; i <= 4; i++) {
        double yv = y0 + (y1 - y0) * i / 4;
        outf(o, "<line x1='%g' x2='%g' y1='%.1f' y2='%.1f'/>", L, W - R, SY(yv), SY(yv));
    }
    outf(o, "</g><g font-size='11' fill='#444'>");
    for (int i = 0; i <= 4; i++) {
        double yv = y0 + (y1 - y0) * i / 4;
        outf(o, "<text x='%g' y='%.1f' text-anchor='end'>%.3g</text>", L - 4, SY(yv) + 4, logy ? pow(10, yv) : yv);
        double xv = x0 + (x1 - x0) * i / 4;
        outf(o, "<text x='%.1f' y='%g' text-anchor='middle'>%.0f</text>", SX(xv), H - B + 16, xv);
    }
    outf(o, "<text x='%g' y='%g' text-anchor='middle'>step</text>", (L + W - R) / 2, H - 4);
    outf(o, "<text x='12' y='%g' transform='rotate(-90 12 %g)' text-anchor='middle'>%s</text></g>\n", H / 2, H / 2, ylabel);
    static const char *colors[2] = {"#1f77b4", "#d62728"};
    const char *names[2] = {an, bn};
    for (int k = 0; k < 2; k++) {
        if (!ss[k] || ss[k]->n == 0) continue;
        outf(o, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", colors[k]);
        for (int i = 0; i < ss[k]->n; i++) {
            double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
            if (isfinite(y)) outf(o, "%.1f,%.1f ", SX(ss[k]->x[i]), SY(y));
        }
        outf(o, "'/>\n");
        if (ss[k]->n <= 60)
            for (int i = 0; i < ss[k]->n; i++) {
                double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
                if (isfinite(y)) outf(o, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>", SX(ss[k]->x[i]), SY(y), colors[k]);
            }
        outf(o, "<rect x='%g' y='%d' width='10' height='10' fill='%s'/><text x='%g' y='%d' font-size='11'>%s</text>\n",
             W - R - 150, 8 + 14 * k, colors[k], W - R - 135, 17 + 14 * k, names[k] ? names[k] : "");
    }
    #undef SX
    #undef SY
    outf(o, "</svg></figure>\n");
}

int ft_report_write(const char *run_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    char *text = NULL;
    size_t len;
    int rc = ft_file_read_all(path, &text, &len);
    if (rc < 0) return rc;
    series train = {0}, val = {0}, lr = {0}, gn = {0};
    out_t samples = {0}, evals = {0};
    outf(&samples, "");
    outf(&evals, "");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        const cJSON *type = cJSON_GetObjectItem(j, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        double step = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "step"));
        if (!strcmp(t, "train")) {
            push(&train, step, cJSON_GetNumberValue(cJSON_GetObjectItem(j, "loss")));
            push(&lr, step, cJSON_GetNumberValue(cJSON_GetObjectItem(j, "lr")));
            push(&gn, step, cJSON_GetNumberValue(cJSON_GetObjectItem(j, "grad_norm")));
        } else if (!strcmp(t, "eval")) {
            double vl = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "val_loss"));
            push(&val, step, vl);
            outf(&evals, "<tr><td>%.0f</td><td>%.2f</td><td>%.4f</td><td>%.3f</td></tr>\n", step,
                 cJSON_GetNumberValue(cJSON_GetObjectItem(j, "epoch")), vl, cJSON_GetNumberValue(cJSON_GetObjectItem(j, "perplexity")));
        } else if (!strcmp(t, "sample")) {
            const cJSON *pr = cJSON_GetObjectItem(j, "prompt"), *tx = cJSON_GetObjectItem(j, "text");
            outf(&samples, "<div class='sample'><div class='meta'>epoch %.0f, step %.0f</div><pre><b>",
                 cJSON_GetNumberValue(cJSON_GetObjectItem(j, "epoch")), step);
            html_escape(&samples, cJSON_IsString(pr) ? pr->valuestring : "");
            outf(&samples, "</b>");
            html_escape(&samples, cJSON_IsString(tx) ? tx->valuestring : "");
            outf(&samples, "</pre></div>\n");
        }
        cJSON_Delete(j);
    }
    free(text);
    out_t o = {0};
    outf(&o, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>finetune report: ");
    html_escape(&o, run_dir);
    outf(&o, "</title>\n<style>body{font-family:system-ui,sans-serif;max-width:1340px;margin:24px auto;padding:0 16px;color:#222}"
             "figure{display:inline-block;margin:8px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "pre{white-space:pre-wrap;background:#f6f6f6;padding:8px;border-radius:4px}.meta{color:#666;font-size:12px}"
             "td.k{text-align:left}</style></head><body>\n<h1>finetune run report</h1>\n<p>Run directory: <code>");
    html_escape(&o, run_dir);
    outf(&o, "</code></p>\n<h2>Curves</h2>\n");
    chart(&o, "Loss", "cross-entropy", &train, "train loss", &val, "validation loss", 0);
    chart(&o, "Learning rate", "lr", &lr, "learning rate", NULL, NULL, 0);
    chart(&o, "Gradient norm (before clipping)", "global norm", &gn, "grad norm", NULL, NULL, 1);
    outf(&o, "<h2>Evaluations</h2>\n<table><tr><th>step</th><th>epoch</th><th>val loss</th><th>perplexity</th></tr>\n%s</table>\n",
         evals.buf ? evals.buf : "");
    outf(&o, "<h2>Sample generations</h2>\n%s", samples.buf && samples.len ? samples.buf : "<p>none</p>\n");
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    char *cfg = NULL;
    if (ft_file_read_all(path, &cfg, NULL) == FT_OK) {
        cJSON *j = cJSON_Parse(cfg);
        outf(&o, "<h2>Configuration</h2>\n<table>\n");
        for (cJSON *it = j ? j->child : NULL; it; it = it->next) {
            char *v = cJSON_PrintUnformatted(it);
            outf(&o, "<tr><td class='k'>%s</td><td class='k'>", it->string);
            html_escape(&o, v ? v : "");
            outf(&o, "</td></tr>\n");
            free(v);
        }
        outf(&o, "</table>\n");
        cJSON_Delete(j);
        free(cfg);
    }
    outf(&o, "</body></html>\n");
    snprintf(path, sizeof path, "%s/report.html", run_dir);
    rc = ft_file_write_atomic(path, o.buf, o.len);
    free(o.buf); free(samples.buf); free(evals.buf);
    free(train.x); free(train.y); free(val.x); free(val.y); free(lr.x); free(lr.y); free(gn.x); free(gn.y);
    return rc;
}
