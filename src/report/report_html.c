/* report_html.c — the report's HTML escaping, number cells, series and the SVG
 * line chart (see report_internal.h). */
#include "report_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Escapes bytes [s, s + n). Runs of plain bytes are copied in one piece. */
static void escape_n(ft__sb *o, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (!rep) continue;
        ft__sb_put(o, s + run, i - run);
        ft__sb_put(o, rep, strlen(rep));
        run = i + 1;
    }
    ft__sb_put(o, s + run, n - run);
}

void ft__rep_escape(ft__sb *o, const char *s) {
    if (s) escape_n(o, s, strlen(s));
}

/* Byte length of the first max_chars UTF-8 characters of s (continuation bytes 10xxxxxx do not
 * start a character); *more = 1 when s goes on after them. */
static size_t utf8_prefix(const char *s, int max_chars, int *more) {
    int chars = 0;
    size_t i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars) break;
            chars++;
        }
    }
    *more = s[i] != '\0';
    return i;
}

void ft__rep_escape_trunc(ft__sb *o, const char *s, int max_chars) {
    if (!s) return;
    if (max_chars <= 0) { ft__rep_escape(o, s); return; }
    int more;
    size_t n = utf8_prefix(s, max_chars, &more);
    escape_n(o, s, n);
    if (more) ft__sb_printf(o, "\xE2\x80\xA6"); /* … */
}

void ft__rep_escape_label(ft__sb *o, const cJSON *label, int max_chars) {
    if (cJSON_IsString(label) && label->valuestring) ft__rep_escape_trunc(o, label->valuestring, max_chars);
    else if (cJSON_IsNumber(label)) ft__sb_printf(o, "%.10g", label->valuedouble);
    else ft__sb_printf(o, "?");
}

int ft__rep_label_chars(const cJSON *label, int max_chars) {
    if (cJSON_IsString(label) && label->valuestring) {
        int chars = 0;
        for (const char *p = label->valuestring; *p; p++)
            if (((unsigned char)*p & 0xC0) != 0x80 && ++chars > max_chars) return max_chars + 1;
        return chars;
    }
    if (cJSON_IsNumber(label)) {
        char b[32];
        int n = snprintf(b, sizeof b, "%.10g", label->valuedouble);
        return n < max_chars + 1 ? n : max_chars + 1;
    }
    return 1;
}

void ft__rep_num_cell(ft__sb *o, double v, const char *fmt) {
    if (!isfinite(v)) { ft__sb_printf(o, "<td>&ndash;</td>"); return; }
    ft__sb_printf(o, "<td>");
    if (fabs(v) >= 1e15) ft__sb_printf(o, "%.4g", v); /* no 300-digit %.0f */
    else ft__sb_printf(o, fmt, v);
    ft__sb_printf(o, "</td>");
}

/* ---- series ---- */

void ft__rep_push(ft_rep_series *s, double x, double y) {
    /* beyond 1e150 the chart's range arithmetic could overflow: such points count as missing */
    if (s->failed || !(fabs(x) < 1e150) || !(fabs(y) < 1e150)) return;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        double *nx = realloc(s->x, sizeof(double) * (size_t)cap);
        if (!nx) { s->failed = 1; return; }
        s->x = nx;
        double *ny = realloc(s->y, sizeof(double) * (size_t)cap);
        if (!ny) { s->failed = 1; return; }
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

void ft__rep_series_free(ft_rep_series *s) {
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* ---- the line chart ---- */

void ft__rep_line_chart(ft__sb *o, const char *title, const char *ylabel,
                       const ft_rep_series *a, const char *an,
                       const ft_rep_series *b, const char *bn, int logy) {
    const double W = 640, H = 260, L = 60, R = 16, T = 28, B = 36;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    const ft_rep_series *ss[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        if (!ss[k]) continue;
        for (int i = 0; i < ss[k]->n; i++) {
            double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
            if (!isfinite(y)) continue;
            x0 = fmin(x0, ss[k]->x[i]); x1 = fmax(x1, ss[k]->x[i]);
            y0 = fmin(y0, y); y1 = fmax(y1, y);
        }
    }
    ft__sb_printf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' viewBox='0 0 %g %g' role='img' aria-label='", W, H, W, H);
    ft__rep_escape(o, title);
    ft__sb_printf(o, "'>\n<rect width='100%%' height='100%%' fill='#fff'/><text x='%g' y='18' font-size='14' font-weight='bold'>", L);
    ft__rep_escape(o, title);
    ft__sb_printf(o, "</text>\n");
    if (!(x1 >= x0) || !(y1 >= y0)) { ft__sb_printf(o, "<text x='%g' y='%g' fill='#888'>no data</text></svg></figure>\n", L, H / 2); return; }
    if (x1 == x0) { x0 = x0 >= 2 ? x0 - 2 : x0; x1 = x0 + 4; } /* one step: whole-number ticks around it */
    if (y1 == y0) { double d = y0 != 0 ? fabs(y0) * 0.1 : 0.5; y1 += d; y0 -= d; } /* a constant: +-10% */
    double pad = (y1 - y0) * 0.05, ymin = y0;
    y0 -= pad; y1 += pad;
    if (!logy && ymin >= 0 && y0 < 0) y0 = 0; /* non-negative quantities (lr, loss) start at 0 */
    #define SX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
    #define SY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    ft__sb_printf(o, "<g stroke='#ddd'>");
    for (int i = 0; i <= 4; i++) {
        double yv = y0 + (y1 - y0) * i / 4;
        ft__sb_printf(o, "<line x1='%g' x2='%g' y1='%.1f' y2='%.1f'/>", L, W - R, SY(yv), SY(yv));
    }
    ft__sb_printf(o, "</g><g font-size='11' fill='#444'>");
    for (int i = 0; i <= 4; i++) {
        double yv = y0 + (y1 - y0) * i / 4;
        ft__sb_printf(o, "<text x='%g' y='%.1f' text-anchor='end'>%.3g</text>", L - 4, SY(yv) + 4, logy ? pow(10, yv) : yv);
        double xv = x0 + (x1 - x0) * i / 4;
        ft__sb_printf(o, fabs(xv) < 1e15 ? "<text x='%.1f' y='%g' text-anchor='middle'>%.0f</text>" : "<text x='%.1f' y='%g' text-anchor='middle'>%.3g</text>",
                      SX(xv), H - B + 16, xv);
    }
    ft__sb_printf(o, "<text x='%g' y='%g' text-anchor='middle'>step</text>", (L + W - R) / 2, H - 4);
    ft__sb_printf(o, "<text x='12' y='%g' transform='rotate(-90 12 %g)' text-anchor='middle'>", H / 2, H / 2);
    ft__rep_escape(o, ylabel);
    ft__sb_printf(o, "</text></g>\n");
    static const char *colors[2] = {"#1f77b4", "#d62728"};
    const char *names[2] = {an, bn};
    for (int k = 0; k < 2; k++) {
        if (!ss[k] || ss[k]->n == 0) continue;
        ft__sb_printf(o, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", colors[k]);
        for (int i = 0; i < ss[k]->n; i++) {
            double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
            if (isfinite(y)) ft__sb_printf(o, "%.1f,%.1f ", SX(ss[k]->x[i]), SY(y));
        }
        ft__sb_printf(o, "'/>\n");
        if (ss[k]->n <= 60)
            for (int i = 0; i < ss[k]->n; i++) {
                double y = logy ? log10(fmax(ss[k]->y[i], 1e-12)) : ss[k]->y[i];
                if (isfinite(y)) ft__sb_printf(o, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='%s'/>", SX(ss[k]->x[i]), SY(y), colors[k]);
            }
        ft__sb_printf(o, "<rect x='%g' y='%d' width='10' height='10' fill='%s'/><text x='%g' y='%d' font-size='11'>",
                      W - R - 150, 8 + 14 * k, colors[k], W - R - 135, 17 + 14 * k);
        ft__rep_escape(o, names[k] ? names[k] : "");
        ft__sb_printf(o, "</text>\n");
    }
    #undef SX
    #undef SY
    ft__sb_printf(o, "</svg></figure>\n");
}
