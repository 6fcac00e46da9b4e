/* report.c — the sweep report: one self-contained HTML page (inline SVG, no scripts, no network), in the
 * style of the run report (src/report/):
 *   - summary: strategy, scheduler, counts, compute (the budget the trials trained), the best trial and its
 *     parameters;
 *   - optimisation history: every trial's value by trial number (colour = rung) and the best so far at
 *     the full budget;
 *   - parallel coordinates: one axis per parameter and one for the objective, one line per configuration
 *     (its value at the highest budget it reached), coloured from best (dark) to worst (light);
 *   - parameter importance (analysis.c: |Spearman| / correlation ratio, normalised);
 *   - values by budget: each configuration's value at every rung it reached, and where the scheduler
 *     stopped it (its last rung below the top of its bracket);
 *   - the trials table. */
#include "hpo_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "report/report_internal.h"

enum { W = 680, H = 300, ML = 64, MR = 16, MT = 28, MB = 40 };

static const char *k_rung_colors[] = {"#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b", "#252525"};

static const char *k_strategy[] = {"grid", "random", "bayes (GP, Matérn 5/2)", "tpe"};
static const char *k_sched[] = {"none", "successive halving", "hyperband", "asha"};
static const char *k_acq[] = {"EI", "PI", "UCB"};

/* a choice's value for display: a JSON string without its quotes (escapes left as they are) */
static void choice_text(ft__sb *o, const char *c, int max_chars) {
    size_t n = strlen(c);
    if (n >= 2 && c[0] == '"' && c[n - 1] == '"') {
        char *u = strndup(c + 1, n - 2);
        if (!u) { o->err = FT_ERR_NOMEM; return; }
        ft__rep_escape_trunc(o, u, max_chars);
        free(u);
    } else {
        ft__rep_escape_trunc(o, c, max_chars);
    }
}

/* colour from good (t = 0, dark blue) to bad (t = 1, light orange) */
static void ramp(char *buf, size_t cap, double t) {
    if (!isfinite(t)) t = 1;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int r = (int)(8 + t * (253 - 8)), g = (int)(48 + t * (174 - 48)), b = (int)(107 + t * (97 - 107));
    snprintf(buf, cap, "#%02x%02x%02x", r, g, b);
}

/* the top rung of bracket b (what a configuration there could reach) */
static int top_rung(const ft_hpo_spec *s, int bracket) {
    if (s->sched == FT_HPO_SCHED_NONE) return 0;
    int smax = ft__hpo_smax(s->max_resource / s->min_resource, s->eta);
    if (s->sched == FT_HPO_SCHED_ASHA) return smax;
    if (s->sched == FT_HPO_SCHED_SH) {
        if (s->sh_configs <= 0) return smax;
        int top = 0;
        for (int i = 0; i <= smax; i++) if (floor(s->sh_configs * pow(s->eta, -i) + 1e-9) >= 1) top = i;
        return top;
    }
    return smax - bracket % (smax + 1);
}

static double yscale(double v, double lo, double hi, int logy) {
    if (logy) { v = log10(v); lo = log10(lo); hi = log10(hi); }
    return MT + (H - MT - MB) * (1 - (hi > lo ? (v - lo) / (hi - lo) : 0.5));
}

static void axis_frame(ft__sb *o, const char *title, const char *xl, const char *yl, double ylo, double yhi, int logy) {
    ft__sb_printf(o, "<figure><svg width='%d' height='%d' viewBox='0 0 %d %d' font-size='11'>", W, H, W, H);
    ft__sb_printf(o, "<text x='%d' y='16' font-size='13' font-weight='bold'>", ML);
    ft__rep_escape(o, title);
    ft__sb_printf(o, "</text><rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>", ML, MT, W - ML - MR, H - MT - MB);
    for (int k = 0; k <= 4; k++) {
        double v = logy ? pow(10, log10(ylo) + (log10(yhi) - log10(ylo)) * k / 4) : ylo + (yhi - ylo) * k / 4;
        double y = yscale(v, ylo, yhi, logy);
        ft__sb_printf(o, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/><text x='%d' y='%.1f' text-anchor='end'>%.4g</text>",
                      ML, W - MR, y, y, ML - 4, y + 4, v);
    }
    ft__sb_printf(o, "<text x='%d' y='%d' text-anchor='middle'>", (ML + W - MR) / 2, H - 6);
    ft__rep_escape(o, xl);
    ft__sb_printf(o, "</text><text x='12' y='%d' transform='rotate(-90 12 %d)' text-anchor='middle'>", (MT + H - MB) / 2, (MT + H - MB) / 2);
    ft__rep_escape(o, yl);
    ft__sb_printf(o, "</text>");
}

static void value_range(const ft_hpo_trial *t, int n, double *lo, double *hi, int *logy) {
    *lo = INFINITY; *hi = -INFINITY;
    for (int i = 0; i < n; i++) if (t[i].status == FT_HPO_FINISHED && isfinite(t[i].value)) { *lo = fmin(*lo, t[i].value); *hi = fmax(*hi, t[i].value); }
    if (!isfinite(*lo)) { *lo = 0; *hi = 1; }
    *logy = *lo > 0 && *hi / *lo > 50;
    if (!*logy) {
        double pad = (*hi - *lo) * 0.05 + (*hi == *lo ? fabs(*hi) * 0.1 + 1e-9 : 0);
        *lo -= pad; *hi += pad;
    }
}

static void history(ft__sb *o, const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int best) {
    double lo, hi;
    int logy;
    value_range(t, n, &lo, &hi, &logy);
    axis_frame(o, "Optimisation history", "trial", logy ? "objective (log scale)" : "objective", lo, hi, logy);
    double xw = W - ML - MR;
    int nn = n > 1 ? n - 1 : 1;
    for (int k = 0; k <= 5 && n > 1; k++) {
        int tr = (int)lround((double)nn * k / 5);
        ft__sb_printf(o, "<text x='%.1f' y='%d' text-anchor='middle'>%d</text>", ML + xw * tr / nn, H - MB + 14, tr);
    }
    /* best so far at the best trial's budget: a step line */
    double top = best >= 0 ? t[best].budget : 0, cur = INFINITY;
    ft__sb_printf(o, "<polyline fill='none' stroke='#d62728' stroke-width='1.5' points='");
    for (int i = 0; i < n; i++) {
        double l = t[i].status == FT_HPO_FINISHED && t[i].budget == top ? (s->maximize ? -t[i].value : t[i].value) : INFINITY;
        if (l < cur) {
            if (isfinite(cur)) ft__sb_printf(o, "%.1f,%.1f ", ML + xw * i / nn, yscale(s->maximize ? -cur : cur, lo, hi, logy));
            cur = l;
        }
        if (isfinite(cur)) ft__sb_printf(o, "%.1f,%.1f ", ML + xw * i / nn, yscale(s->maximize ? -cur : cur, lo, hi, logy));
    }
    ft__sb_printf(o, "'/>");
    for (int i = 0; i < n; i++) {
        if (t[i].status != FT_HPO_FINISHED || !isfinite(t[i].value)) continue;
        int r = t[i].rung < 6 ? t[i].rung : 6;
        ft__sb_printf(o, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'><title>trial %d: %.6g (budget %g)</title></circle>",
                      ML + xw * i / nn, yscale(t[i].value, lo, hi, logy), k_rung_colors[r], t[i].idx, t[i].value, t[i].budget);
    }
    ft__sb_printf(o, "</svg><figcaption class='meta'>dots: every finished trial (darker = higher rung); red: best so far%s</figcaption></figure>\n",
                  s->sched != FT_HPO_SCHED_NONE ? " at the full budget" : "");
}

/* the trial holding each configuration's highest rung (finished), -1 elsewhere: last[i] for config ids */
static int *config_last(const ft_hpo_trial *t, int n) {
    int *last = malloc(sizeof *last * (size_t)(n ? n : 1));
    if (!last) return NULL;
    for (int i = 0; i < n; i++) last[i] = -1;
    for (int i = 0; i < n; i++) {
        int c = t[i].config;
        if (c < 0 || c >= n || t[i].status != FT_HPO_FINISHED) continue;
        if (last[c] < 0 || t[i].rung > t[last[c]].rung) last[c] = i;
    }
    return last;
}

static void parallel(ft__sb *o, const ft_hpo_spec *s, const ft_hpo_trial *t, int n) {
    int *last = config_last(t, n);
    if (!last) { o->err = FT_ERR_NOMEM; return; }
    int axes = s->n_params + 1, pw = W + 120;
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < n; c++) if (last[c] >= 0) { lo = fmin(lo, t[last[c]].value); hi = fmax(hi, t[last[c]].value); }
    ft__sb_printf(o, "<figure><svg width='%d' height='%d' viewBox='0 0 %d %d' font-size='11'>"
                     "<text x='%d' y='16' font-size='13' font-weight='bold'>Parallel coordinates</text>", pw, H, pw, H, ML);
    double gap = (double)(pw - 2 * ML) / (axes - 1 > 0 ? axes - 1 : 1);
    for (int a = 0; a < axes; a++) {
        double x = ML + gap * a;
        ft__sb_printf(o, "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#888'/><text x='%.1f' y='%d' text-anchor='middle' font-weight='bold'>",
                      x, x, MT, H - MB, x, H - MB + 16);
        if (a < s->n_params) ft__rep_escape(o, s->params[a].name);
        else ft__sb_puts(o, "objective");
        ft__sb_puts(o, "</text>");
        /* end labels */
        if (a < s->n_params) {
            const ft_hpo_param *p = &s->params[a];
            if (p->kind == FT_HPO_CHOICE) {
                for (int k = 0; k < p->n_choices; k++) {
                    double y = MT + (H - MT - MB) * (1 - ft__hpo_unit(p, k));
                    ft__sb_printf(o, "<text x='%.1f' y='%.1f'>", x + 4, y + 4);
                    choice_text(o, p->choices[k], 12);
                    ft__sb_puts(o, "</text>");
                }
            } else {
                ft__sb_printf(o, "<text x='%.1f' y='%d'>%.3g</text><text x='%.1f' y='%d'>%.3g</text>", x + 4, MT + 8, p->high, x + 4, H - MB - 2, p->low);
            }
        } else if (isfinite(lo)) {
            ft__sb_printf(o, "<text x='%.1f' y='%d'>%.4g</text><text x='%.1f' y='%d'>%.4g</text>", x + 4, MT + 8, hi, x + 4, H - MB - 2, lo);
        }
    }
    /* worst first, so that the best lines are drawn on top */
    int *ord = malloc(sizeof *ord * (size_t)(n ? n : 1)), m = 0;
    if (!ord) { free(last); o->err = FT_ERR_NOMEM; return; }
    for (int c = 0; c < n; c++) if (last[c] >= 0) ord[m++] = last[c];
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0 && ft__hpo_loss(s, &t[ord[j]]) > ft__hpo_loss(s, &t[ord[j - 1]]); j--) { int q = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = q; }
    for (int k = 0; k < m; k++) {
        const ft_hpo_trial *tr = &t[ord[k]];
        char col[16];
        ramp(col, sizeof col, m > 1 ? 1.0 - (double)k / (m - 1) : 0);
        ft__sb_printf(o, "<polyline fill='none' stroke='%s' stroke-opacity='0.8' points='", col);
        for (int a = 0; a < axes; a++) {
            double u = a < s->n_params ? ft__hpo_unit(&s->params[a], tr->x[a]) : (hi > lo ? (tr->value - lo) / (hi - lo) : 0.5);
            ft__sb_printf(o, "%.1f,%.1f ", ML + gap * a, MT + (H - MT - MB) * (1 - u));
        }
        ft__sb_printf(o, "'><title>config %d: %.6g</title></polyline>", tr->config, tr->value);
    }
    ft__sb_printf(o, "</svg><figcaption class='meta'>one line per configuration at the highest budget it reached; dark = best, light = worst;"
                     " log ranges on log axes</figcaption></figure>\n");
    free(ord);
    free(last);
}

static void importance(ft__sb *o, const ft_hpo_spec *s, const ft_hpo_trial *t, int n) {
    double *imp = calloc((size_t)s->n_params, sizeof *imp);
    if (!imp) { o->err = FT_ERR_NOMEM; return; }
    ft__sb_printf(o, "<h2>Parameter importance</h2>\n");
    if (ft_hpo_importance(s, t, n, imp) < 0) {
        ft__sb_printf(o, "<p class='meta'>fewer than 3 finished trials at one budget</p>\n");
        free(imp);
        return;
    }
    int h = 24 * s->n_params + 20;
    ft__sb_printf(o, "<svg width='%d' height='%d' font-size='11'>", W, h);
    for (int j = 0; j < s->n_params; j++) {
        double y = 10 + 24 * j;
        ft__sb_printf(o, "<text x='150' y='%.0f' text-anchor='end'>", y + 13);
        ft__rep_escape(o, s->params[j].name);
        ft__sb_printf(o, "</text><rect x='156' y='%.0f' width='%.1f' height='16' fill='#4292c6'/><text x='%.1f' y='%.0f'>%.2f</text>",
                      y, 400 * imp[j], 160 + 400 * imp[j], y + 13, imp[j]);
    }
    ft__sb_printf(o, "</svg><p class='meta'>How strongly each parameter alone orders the results at the highest budget with 3 or more"
                     " finished trials: |Spearman rank correlation| with the objective for numbers, the correlation ratio of the"
                     " objective's ranks for choices; normalised to sum 1. Interactions and U-shaped effects are not seen.</p>\n");
    free(imp);
}

static void by_budget(ft__sb *o, const ft_hpo_spec *s, const ft_hpo_trial *t, int n) {
    ft__sb_printf(o, "<h2>Values by budget</h2>\n");
    if (s->sched == FT_HPO_SCHED_NONE) {
        ft__sb_printf(o, "<p class='meta'>No scheduler: every configuration ran once%s.</p>\n", s->max_resource > 0 ? " at the full budget" : "");
        return;
    }
    double lo, hi;
    int logy;
    value_range(t, n, &lo, &hi, &logy);
    axis_frame(o, "Each configuration's value at every rung", "budget (log scale)", "objective", lo, hi, logy);
    double blo = s->max_resource * pow(s->eta, -ft__hpo_smax(s->max_resource / s->min_resource, s->eta)), bhi = s->max_resource;
    double xw = W - ML - MR;
#define BX(b) (ML + 10 + (xw - 20) * (bhi > blo ? (log((b)) - log(blo)) / (log(bhi) - log(blo)) : 0.5))
    for (double b = blo; b <= bhi * (1 + 1e-9); b *= s->eta)
        ft__sb_printf(o, "<text x='%.1f' y='%d' text-anchor='middle'>%g</text>", BX(b), H - MB + 14, b);
    int *last = config_last(t, n);
    if (!last) { o->err = FT_ERR_NOMEM; return; }
    int stopped = 0, completed = 0;
    for (int c = 0; c < n; c++) {
        if (last[c] < 0) continue;
        ft__sb_printf(o, "<polyline fill='none' stroke='#6baed6' stroke-opacity='0.7' points='");
        for (int i = 0; i < n; i++)
            if (t[i].config == c && t[i].status == FT_HPO_FINISHED) ft__sb_printf(o, "%.1f,%.1f ", BX(t[i].budget), yscale(t[i].value, lo, hi, logy));
        ft__sb_printf(o, "'/>");
        const ft_hpo_trial *e = &t[last[c]];
        int stop = e->rung < top_rung(s, e->bracket);
        stopped += stop;
        completed += !stop;
        ft__sb_printf(o, "<circle cx='%.1f' cy='%.1f' r='%d' fill='%s'><title>config %d: %s rung %d (budget %g): %.6g</title></circle>",
                      BX(e->budget), yscale(e->value, lo, hi, logy), stop ? 3 : 4, stop ? "#d62728" : "#08519c", c,
                      stop ? "stopped at" : "completed", e->rung, e->budget, e->value);
    }
#undef BX
    ft__sb_printf(o, "</svg><figcaption class='meta'>red dot: where the scheduler stopped a configuration (%d stopped at rung below the top);"
                     " blue: ran to the top of its bracket (%d)</figcaption></figure>\n", stopped, completed);
    free(last);
}

static void trials_table(ft__sb *o, const ft_hpo_spec *s, const ft_hpo_trial *t, int n, int best) {
    static const char *st[] = {"pending", "running", "finished", "failed"};
    ft__sb_printf(o, "<h2>Trials</h2>\n<table><tr><th>trial</th><th>config</th><th>bracket</th><th>rung</th><th>budget</th><th>status</th>"
                     "<th>value</th><th>seconds</th><th>trained</th><th>from</th>");
    for (int j = 0; j < s->n_params; j++) { ft__sb_puts(o, "<th class='k'>"); ft__rep_escape(o, s->params[j].name); ft__sb_puts(o, "</th>"); }
    ft__sb_puts(o, "<th class='k'>scheduler</th></tr>\n");
    int *last = config_last(t, n);
    if (!last) { o->err = FT_ERR_NOMEM; return; }
    for (int i = 0; i < n; i++) {
        ft__sb_printf(o, "<tr%s><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%g</td><td>%s</td>", i == best ? " style='font-weight:bold'" : "",
                      t[i].idx, t[i].config, t[i].bracket, t[i].rung, t[i].budget, st[t[i].status & 3]);
        ft__rep_num_cell(o, t[i].value, "%.6g");
        ft__rep_num_cell(o, t[i].finished > 0 && t[i].started > 0 ? t[i].finished - t[i].started : NAN, "%.2f");
        ft__sb_printf(o, "<td>%g</td>", t[i].cost);   /* budget trained; a continued trial: what it added */
        if (t[i].parent >= 0) ft__sb_printf(o, "<td>trial %d</td>", t[i].parent);
        else ft__sb_puts(o, "<td></td>");
        for (int j = 0; j < s->n_params; j++) {
            const ft_hpo_param *p = &s->params[j];
            ft__sb_puts(o, "<td class='k'>");
            if (p->kind == FT_HPO_CHOICE) choice_text(o, p->choices[(int)t[i].x[j]], 40);
            else ft__sb_printf(o, p->kind == FT_HPO_INT ? "%.0f" : "%.6g", t[i].x[j]);
            ft__sb_puts(o, "</td>");
        }
        const char *note = "";
        int c = t[i].config;
        if (s->sched != FT_HPO_SCHED_NONE && c >= 0 && c < n && last[c] == i)
            note = t[i].rung < top_rung(s, t[i].bracket) ? "stopped at rung" : "completed";
        ft__sb_printf(o, "<td class='k'>%s", note);
        if (*note == 's') ft__sb_printf(o, " %d", t[i].rung);
        ft__sb_puts(o, "</td></tr>\n");
    }
    ft__sb_puts(o, "</table>\n");
    free(last);
}

int ft_hpo_report_write(const char *path, const ft_hpo_spec *s, const ft_hpo_trial *t, int n) {
    ft__sb o = {0};
    int best = ft_hpo_best(s, t, n), fin = 0, fail = 0;
    for (int i = 0; i < n; i++) { fin += t[i].status == FT_HPO_FINISHED; fail += t[i].status == FT_HPO_FAILED; }
    ft__sb_puts(&o, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>finetune sweep: ");
    ft__rep_escape(&o, s->name);
    ft__sb_puts(&o, "</title>\n<style>body{font-family:system-ui,sans-serif;max-width:1340px;margin:24px auto;padding:0 16px;color:#222}"
                    "figure{display:inline-block;margin:8px;vertical-align:top}figure svg{max-width:100%;height:auto}"
                    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                    "pre{white-space:pre-wrap;background:#f6f6f6;padding:8px;border-radius:4px}.meta{color:#666;font-size:12px}"
                    "td.k,th.k{text-align:left}</style></head><body>\n<h1>finetune sweep: ");
    ft__rep_escape(&o, s->name);
    ft__sb_printf(&o, "</h1>\n<table><tr><th class='k'>strategy</th><td class='k'>%s", k_strategy[s->strategy]);
    if (s->strategy == FT_HPO_BAYES) ft__sb_printf(&o, ", %s, %d random trials first", k_acq[s->acq], s->n_initial);
    if (s->strategy == FT_HPO_TPE) ft__sb_printf(&o, ", %d random trials first, %d EI candidates", s->tpe_startup, s->tpe_candidates);
    ft__sb_printf(&o, "</td></tr><tr><th class='k'>direction</th><td class='k'>%s</td></tr><tr><th class='k'>scheduler</th><td class='k'>%s",
                  s->maximize ? "maximize" : "minimize", k_sched[s->sched]);
    if (s->sched != FT_HPO_SCHED_NONE) {
        ft__sb_puts(&o, " over ");
        ft__rep_escape(&o, s->fidelity);
        ft__sb_printf(&o, " %g .. %g, eta %g", s->min_resource, s->max_resource, s->eta);
    }
    if (s->continue_trials) ft__sb_puts(&o, ", promoted trials continue their parent's checkpoint");
    ft__sb_printf(&o, "</td></tr><tr><th class='k'>trials</th><td class='k'>%d (%d finished, %d failed)</td></tr>", n, fin, fail);
    if (s->sched != FT_HPO_SCHED_NONE || s->max_resource > 0) {   /* compute: what the trials trained */
        double cost = 0, budget = 0;
        for (int i = 0; i < n; i++) { cost += t[i].cost; budget += t[i].budget; }
        ft__sb_puts(&o, "<tr><th class='k'>compute</th><td class='k'>");
        ft__sb_printf(&o, "%g ", cost);
        ft__rep_escape(&o, s->fidelity);
        ft__sb_puts(&o, " trained");
        if (cost != budget) ft__sb_printf(&o, " (%g had every trial trained from the start)", budget);
        ft__sb_puts(&o, "</td></tr>");
    }
    if (best >= 0) {
        ft__sb_printf(&o, "<tr><th class='k'>best</th><td class='k'>trial %d: <b>%.10g</b>", t[best].idx, t[best].value);
        if (t[best].budget > 0) ft__sb_printf(&o, " at budget %g", t[best].budget);
        char *pj = ft_hpo_params_json(s, t[best].x);
        ft__sb_puts(&o, "<br><code>");
        ft__rep_escape(&o, pj ? pj : "");
        ft__sb_puts(&o, "</code></td></tr>");
        free(pj);
    }
    ft__sb_puts(&o, "</table>\n<h2>Optimisation history</h2>\n");
    history(&o, s, t, n, best);
    ft__sb_puts(&o, "<h2>Parallel coordinates</h2>\n");
    parallel(&o, s, t, n);
    importance(&o, s, t, n);
    by_budget(&o, s, t, n);
    trials_table(&o, s, t, n, best);
    ft__sb_puts(&o, "<h2>Configuration</h2>\n<pre>");
    ft__rep_escape(&o, s->json);
    ft__sb_puts(&o, "</pre>\n</body></html>\n");
    if (o.err) { ft__sb_free(&o); return ft_error(FT_ERR_NOMEM, "%s: out of memory", path); }
    size_t len;
    char *text = ft__sb_take(&o, &len);
    int rc = ft_file_write_atomic(path, text, len);
    free(text);
    return rc;
}
