/* report_cls.c — classification and NER details of the run report: the confusion-matrix heat
 * map, per-class precision / recall / F1 bars, the reliability diagram, the per-class and per-type
 * tables (see report_internal.h). The objects are those of ft_metrics_report_json and
 * ft_ner_report_json (include/finetune/metrics.h) plus the trainer's "calibration" bins; any of
 * them may be missing, partial or mistyped, which leaves a piece out instead of failing.
 *
 * Sizes: drawings stay near 600 px wide up to K ~ 50 classes by shrinking cells, bars and
 * fonts; cell counts are written only where they fit (every cell has a tooltip with its count),
 * axis labels are cut to LABEL_CHARS characters, and beyond MAX_CLASSES a drawing is replaced by
 * a note (the tables still list every class). */
#include "report_internal.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_CHARS 18   /* characters of a label on an axis */
#define MAX_CLASSES 300  /* drawn at most */
#define MAX_BINS    1000 /* reliability bins drawn at most */

static const cJSON *item(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* Class i's label: labels[i] when present, else the index. */
static void label_text(ft__sb *o, const cJSON *lab, int i, int max_chars) {
    if (lab) ft__rep_escape_label(o, lab, max_chars);
    else ft__sb_printf(o, "%d", i);
}

static int label_width(const cJSON *lab, int i, int max_chars) {
    if (lab) return ft__rep_label_chars(lab, max_chars);
    char b[16];
    return snprintf(b, sizeof b, "%d", i);
}

/* v with 4 decimals into buf [32], or "n/a" when it is not finite */
static const char *num_text(char *buf, double v) {
    if (isfinite(v)) snprintf(buf, 32, "%.4f", v);
    else snprintf(buf, 32, "n/a");
    return buf;
}

static int digits(double v) {
    char b[40];
    return snprintf(b, sizeof b, "%.0f", v);
}

/* ------------------------------------------------------------------ confusion matrix */

void ft__rep_confusion_svg(ft__sb *o, const cJSON *cls) {
    const cJSON *cm = item(cls, "confusion_matrix"), *labels = item(cls, "labels");
    if (!cJSON_IsArray(cm)) return;
    int K = cJSON_GetArraySize(cm);
    if (K < 1) return;
    if (K > MAX_CLASSES) {
        ft__sb_printf(o, "<p>The confusion matrix has %d classes: too many to draw.</p>\n", K);
        return;
    }
    double *c = calloc((size_t)K * (size_t)K + (size_t)K, sizeof *c); /* [K, K] counts, then [K] row sums */
    const cJSON **lab = calloc((size_t)K, sizeof *lab);               /* [K] label items or NULL */
    if (!c || !lab) { free(c); free(lab); o->err = FT_ERR_NOMEM; return; }
    double *rs = c + (size_t)K * K, total = 0;
    int t = 0;
    for (const cJSON *row = cm->child; row && t < K; row = row->next, t++) {
        int p = 0;
        for (const cJSON *v = cJSON_IsArray(row) ? row->child : NULL; v && p < K; v = v->next, p++) {
            double x = cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e15 ? v->valuedouble : 0; /* counts */
            c[(size_t)t * K + p] = x;
            rs[t] += x;
            total += x;
        }
    }
    int i = 0;
    for (const cJSON *l = cJSON_IsArray(labels) ? labels->child : NULL; l && i < K; l = l->next, i++) lab[i] = l;

    const double cs = fmin(48, fmax(4, 560.0 / K)); /* cell side */
    const double lf = fmin(12, cs * 0.75);           /* label font */
    const double nf = fmin(13, cs * 0.42);           /* count font */
    const int draw_labels = lf >= 5;
    int maxc = 1;
    for (i = 0; i < K; i++) {
        int w = label_width(lab[i], i, LABEL_CHARS);
        if (w > maxc) maxc = w;
    }
    const double lab_w = draw_labels ? maxc * lf * 0.62 + 8 : 8;
    const double L = 26 + lab_w, T = 58 + lab_w, side = K * cs;
    const double W = fmax(L + side + 16, 400), H = T + side + 16;
    ft__sb_printf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' viewBox='0 0 %.0f %.0f' role='img' aria-label='Confusion matrix'>\n",
                  W, H, W, H);
    ft__sb_printf(o, "<rect width='100%%' height='100%%' fill='#fff'/><text x='8' y='18' font-size='14' font-weight='bold'>Confusion matrix (%.0f samples)</text>"
                  "<text x='8' y='33' font-size='11' fill='#666'>rows: true class; shade: share of the row; hover a cell for its count</text>\n", total);
    ft__sb_printf(o, "<g font-size='12' fill='#444' text-anchor='middle'><text x='%.1f' y='50'>predicted</text>"
                  "<text x='14' y='%.1f' transform='rotate(-90 14 %.1f)'>true</text></g>\n", L + side / 2, T + side / 2, T + side / 2);
    if (draw_labels) {
        ft__sb_printf(o, "<g font-size='%.1f' fill='#222'>", lf);
        for (i = 0; i < K; i++) {
            double y = T + (i + 0.5) * cs + lf * 0.35;
            ft__sb_printf(o, "<text x='%.1f' y='%.1f' text-anchor='end'>", L - 4, y);
            label_text(o, lab[i], i, LABEL_CHARS);
            double x = L + (i + 0.5) * cs + lf * 0.35;
            ft__sb_printf(o, "</text><text x='%.1f' y='%.1f' transform='rotate(-90 %.1f %.1f)'>", x, T - 4, x, T - 4);
            label_text(o, lab[i], i, LABEL_CHARS);
            ft__sb_printf(o, "</text>\n");
        }
        ft__sb_printf(o, "</g>\n");
    }
    ft__sb_printf(o, "<g font-size='%.1f' text-anchor='middle' stroke='#eee' stroke-width='0.5'>\n", nf);
    for (t = 0; t < K; t++) {
        for (int p = 0; p < K; p++) {
            double n = c[(size_t)t * K + p], v = rs[t] > 0 ? n / rs[t] : 0;
            double x = L + p * cs, y = T + t * cs;
            ft__sb_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='rgb(%d,%d,%d)'%s><title>true: ",
                          x, y, cs, cs, (int)lround(255 - 247 * v), (int)lround(255 - 174 * v), (int)lround(255 - 99 * v),
                          t == p ? " stroke='#555' stroke-width='1'" : "");
            label_text(o, lab[t], t, 0);
            ft__sb_printf(o, "&#10;predicted: ");
            label_text(o, lab[p], p, 0);
            ft__sb_printf(o, "&#10;count: %.0f (%.1f%% of the row)</title></rect>", n, 100 * v);
            /* a count is written when its digits fit the cell: glyphs are ~0.6 em wide */
            if (nf >= 6 && digits(n) * nf * 0.6 <= cs - 3)
                ft__sb_printf(o, "<text x='%.1f' y='%.1f' fill='%s' stroke='none'>%.0f</text>", x + cs / 2, y + cs / 2 + nf * 0.35, v > 0.55 ? "#fff" : "#222", n);
            ft__sb_printf(o, "\n");
        }
    }
    ft__sb_printf(o, "</g></svg></figure>\n");
    free(c);
    free(lab);
}

/* ------------------------------------------------------------------ per-class bars */

void ft__rep_per_class_svg(ft__sb *o, const cJSON *cls) {
    const cJSON *pc = item(cls, "per_class");
    if (!cJSON_IsArray(pc)) return;
    int K = cJSON_GetArraySize(pc);
    if (K < 1) return;
    if (K > MAX_CLASSES) {
        ft__sb_printf(o, "<p>%d classes: too many to draw per-class bars (see the table).</p>\n", K);
        return;
    }
    static const char *names[3] = {"precision", "recall", "F1"};
    static const char *keys[3] = {"precision", "recall", "f1"};
    static const char *colors[3] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
    const double gw = fmin(60, fmax(12, 600.0 / K)); /* group width */
    const double gap = fmax(2, gw * 0.2), bw = (gw - gap) / 3;
    const double lf = fmin(11, gw * 0.7), PH = 200, T = 46;
    int maxc = 1;
    for (const cJSON *e = pc->child; e; e = e->next) {
        int w = ft__rep_label_chars(item(e, "label"), LABEL_CHARS) + 5 + digits(fmin(1e15, fmax(0, ft__json_num(e, "support", NAN))));
        if (w > maxc) maxc = w;
    }
    const double text_len = maxc * lf * 0.6 * 0.72; /* extent of a label rotated by 45 degrees */
    const double L = fmax(44, text_len - gw / 2 + 6), R = 16;
    const double W = fmax(L + K * gw + R, 440), H = T + PH + text_len + 24;
    ft__sb_printf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' viewBox='0 0 %.0f %.0f' role='img' aria-label='Per-class scores'>\n",
                  W, H, W, H);
    ft__sb_printf(o, "<rect width='100%%' height='100%%' fill='#fff'/><text x='8' y='18' font-size='14' font-weight='bold'>Per-class precision, recall and F1 (n = support)</text>\n");
    for (int m = 0; m < 3; m++)
        ft__sb_printf(o, "<rect x='%.0f' y='28' width='10' height='10' fill='%s'/><text x='%.0f' y='37' font-size='11'>%s</text>",
                      L + 90.0 * m, colors[m], L + 90.0 * m + 14, names[m]);
    ft__sb_printf(o, "\n<g stroke='#ddd'>");
    for (int g = 0; g <= 4; g++) ft__sb_printf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f'/>", L, L + K * gw, T + PH * g / 4, T + PH * g / 4);
    ft__sb_printf(o, "</g><g font-size='11' fill='#444' text-anchor='end'>");
    for (int g = 0; g <= 4; g++) ft__sb_printf(o, "<text x='%.1f' y='%.1f'>%.2f</text>", L - 4, T + PH * (4 - g) / 4 + 4, g / 4.0);
    ft__sb_printf(o, "</g>\n");
    int i = 0;
    for (const cJSON *e = pc->child; e; e = e->next, i++) {
        const cJSON *lab = item(e, "label");
        for (int m = 0; m < 3; m++) {
            double v = ft__json_num(e, keys[m], NAN);
            if (!isfinite(v)) continue;
            v = fmin(1, fmax(0, v));
            ft__sb_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'><title>",
                          L + i * gw + gap / 2 + m * bw, T + PH * (1 - v), bw, PH * v, colors[m]);
            label_text(o, lab, i, 0);
            ft__sb_printf(o, ": %s %.4f</title></rect>", names[m], ft__json_num(e, keys[m], NAN));
        }
        double x = L + (i + 0.5) * gw, y = T + PH + 12;
        ft__sb_printf(o, "<text x='%.1f' y='%.1f' font-size='%.1f' text-anchor='end' transform='rotate(-45 %.1f %.1f)'>", x, y, lf, x, y);
        label_text(o, lab, i, LABEL_CHARS);
        double sup = ft__json_num(e, "support", NAN);
        if (fabs(sup) < 1e15) ft__sb_printf(o, " (n=%.0f)", sup);
        ft__sb_printf(o, "</text>\n");
    }
    ft__sb_printf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#888'/></svg></figure>\n", L, L + K * gw, T + PH, T + PH);
}

/* ------------------------------------------------------------------ reliability diagram */

void ft__rep_reliability_svg(ft__sb *o, const cJSON *calib, double ece) {
    if (!cJSON_IsArray(calib)) return;
    int M = cJSON_GetArraySize(calib);
    if (M < 1) return;
    if (M > MAX_BINS) {
        ft__sb_printf(o, "<p>%d calibration bins: too many to draw.</p>\n", M);
        return;
    }
    double *cnt = malloc(sizeof(double) * 3 * (size_t)M); /* [M] counts, [M] accuracies, [M] confidences */
    if (!cnt) { o->err = FT_ERR_NOMEM; return; }
    double *acc = cnt + M, *conf = cnt + 2 * M, n = 0, maxn = 0, gap = 0;
    int b = 0;
    for (const cJSON *e = calib->child; e && b < M; e = e->next, b++) {
        double k = ft__json_num(e, "count", NAN);
        cnt[b] = k > 0 && k < 1e15 ? k : 0;
        acc[b] = ft__json_num(e, "accuracy", NAN);
        conf[b] = ft__json_num(e, "confidence", NAN);
        n += cnt[b];
        maxn = fmax(maxn, cnt[b]);
        if (cnt[b] > 0 && isfinite(acc[b]) && isfinite(conf[b])) gap += cnt[b] * fabs(acc[b] - conf[b]);
    }
    if (!isfinite(ece) && n > 0) ece = gap / n; /* the line had no "ece": the bins give it */
    const double P = 300, L = 56, R = 170, T = 40, SG = 36, HS = 64, B = 34;
    const double W = L + P + R, H = T + P + SG + HS + B, S0 = T + P + SG; /* S0: top of the count strip */
    const double bwid = P / M;
    ft__sb_printf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' viewBox='0 0 %.0f %.0f' role='img' aria-label='Reliability diagram'>\n",
                  W, H, W, H);
    ft__sb_printf(o, "<rect width='100%%' height='100%%' fill='#fff'/><text x='8' y='18' font-size='14' font-weight='bold'>Reliability diagram (ECE = ");
    if (isfinite(ece)) ft__sb_printf(o, "%.4f", ece);
    else ft__sb_printf(o, "n/a");
    ft__sb_printf(o, ", %d bins, %.0f samples)</text>\n", M, n);
    ft__sb_printf(o, "<g stroke='#e4e4e4'>");
    for (int g = 0; g <= 5; g++) {
        double f = g / 5.0;
        ft__sb_printf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f'/><line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f'/>",
                      L, L + P, T + P * (1 - f), T + P * (1 - f), L + P * f, L + P * f, T, T + P);
    }
    ft__sb_printf(o, "</g><g font-size='11' fill='#444'>");
    for (int g = 0; g <= 5; g++) {
        double f = g / 5.0;
        ft__sb_printf(o, "<text x='%.1f' y='%.1f' text-anchor='end'>%.1f</text><text x='%.1f' y='%.1f' text-anchor='middle'>%.1f</text>",
                      L - 4, T + P * (1 - f) + 4, f, L + P * f, T + P + 14, f);
    }
    ft__sb_printf(o, "<text x='14' y='%.1f' text-anchor='middle' transform='rotate(-90 14 %.1f)'>accuracy</text>", T + P / 2, T + P / 2);
    ft__sb_printf(o, "<text x='14' y='%.1f' text-anchor='middle' transform='rotate(-90 14 %.1f)'>count</text>", S0 + HS / 2, S0 + HS / 2);
    ft__sb_printf(o, "<text x='%.1f' y='%.1f' text-anchor='middle'>confidence (max probability)</text></g>\n", L + P / 2, H - 8);
    for (b = 0; b < M; b++) {
        if (cnt[b] <= 0) continue;
        double x = L + bwid * b + (bwid > 3 ? 0.5 : 0), w = bwid > 3 ? bwid - 1 : bwid;
        double a = isfinite(acc[b]) ? fmin(1, fmax(0, acc[b])) : 0;
        char as[32], cs[32];
        ft__sb_printf(o, "<rect x='%.2f' y='%.2f' width='%.2f' height='%.2f' fill='#1f77b4' fill-opacity='0.85'><title>bin (%.3f, %.3f]: %.0f samples, accuracy %s, mean confidence %s</title></rect>",
                      x, T + P * (1 - a), w, P * a, (double)b / M, (double)(b + 1) / M, cnt[b], num_text(as, acc[b]), num_text(cs, conf[b]));
        if (isfinite(conf[b])) {
            double cy = T + P * (1 - fmin(1, fmax(0, conf[b])));
            ft__sb_printf(o, "<line x1='%.2f' x2='%.2f' y1='%.2f' y2='%.2f' stroke='#d62728' stroke-width='2'/>", x, x + w, cy, cy);
        }
        double h = maxn > 0 ? HS * cnt[b] / maxn : 0;
        ft__sb_printf(o, "<rect x='%.2f' y='%.2f' width='%.2f' height='%.2f' fill='#999'><title>%.0f samples</title></rect>", x, S0 + HS - h, w, h, cnt[b]);
        if (digits(cnt[b]) * 9 * 0.6 <= bwid)
            ft__sb_printf(o, "<text x='%.2f' y='%.2f' font-size='9' text-anchor='middle' fill='#333'>%.0f</text>", x + w / 2, S0 + HS - h - 2, cnt[b]);
        ft__sb_printf(o, "\n");
    }
    ft__sb_printf(o, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#555' stroke-dasharray='4 3'/>\n", L, T + P, L + P, T);
    ft__sb_printf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#888'/>", L, T, P, P);
    ft__sb_printf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#888'/>\n", L, L + P, S0 + HS, S0 + HS);
    const double lx = L + P + 12;
    ft__sb_printf(o, "<g font-size='11'><rect x='%.1f' y='%.1f' width='12' height='10' fill='#1f77b4'/><text x='%.1f' y='%.1f'>accuracy in the bin</text>"
                  "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#d62728' stroke-width='2'/><text x='%.1f' y='%.1f'>mean confidence</text>"
                  "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#555' stroke-dasharray='4 3'/><text x='%.1f' y='%.1f'>perfect calibration</text>"
                  "<rect x='%.1f' y='%.1f' width='12' height='10' fill='#999'/><text x='%.1f' y='%.1f'>samples per bin</text></g>\n",
                  lx, T, lx + 18, T + 9, lx, lx + 12, T + 22, T + 22, lx + 18, T + 26, lx, lx + 12, T + 39, T + 39, lx + 18, T + 43,
                  lx, S0 + 4, lx + 18, S0 + 13);
    ft__sb_printf(o, "</svg></figure>\n");
    free(cnt);
}

/* ------------------------------------------------------------------ sections */

/* "<p>From the test set / from the validation set at step N.</p>" */
static void source_note(ft__sb *o, const cJSON *line, int is_test) {
    double step = ft__json_num(line, "step", NAN);
    if (is_test) ft__sb_printf(o, "<p>Evaluation of the best model on the held-out test set");
    else if (isfinite(step)) ft__sb_printf(o, fabs(step) < 1e15 ? "<p>Last evaluation on the validation set (step %.0f)" : "<p>Last evaluation on the validation set (step %.4g)", step);
    else ft__sb_printf(o, "<p>Last evaluation on the validation set");
    double ex = ft__json_num(line, "examples", NAN);
    if (isfinite(ex) && fabs(ex) < 1e15) ft__sb_printf(o, ", %.0f examples", ex);
    ft__sb_printf(o, ".</p>\n");
}

static void score_row(ft__sb *o, const cJSON *e, const char *name_key, int i, const char *p, const char *r, const char *f) {
    ft__sb_printf(o, "<tr><td class='k'>");
    label_text(o, item(e, name_key), i, 0);
    ft__sb_printf(o, "</td>");
    ft__rep_num_cell(o, ft__json_num(e, p, NAN), "%.4f");
    ft__rep_num_cell(o, ft__json_num(e, r, NAN), "%.4f");
    ft__rep_num_cell(o, ft__json_num(e, f, NAN), "%.4f");
}

/* the rows "<avg> average": precision_<avg>, recall_<avg>, f1_<avg> of obj, and the support */
static void average_rows(ft__sb *o, const cJSON *obj, const char *const avg[3], double support) {
    for (int a = 0; a < 3; a++) {
        char p[32], rc[32], f[32];
        snprintf(p, sizeof p, "precision_%s", avg[a]);
        snprintf(rc, sizeof rc, "recall_%s", avg[a]);
        snprintf(f, sizeof f, "f1_%s", avg[a]);
        ft__sb_printf(o, "<tr><td class='k'><i>%s average</i></td>", avg[a]);
        ft__rep_num_cell(o, ft__json_num(obj, p, NAN), "%.4f");
        ft__rep_num_cell(o, ft__json_num(obj, rc, NAN), "%.4f");
        ft__rep_num_cell(o, ft__json_num(obj, f, NAN), "%.4f");
        ft__rep_num_cell(o, support, "%.0f");
        ft__sb_printf(o, "</tr>\n");
    }
}

void ft__rep_classification(ft__sb *o, const ft_rep_run *r) {
    int is_test = cJSON_IsObject(item(r->test, "classification"));
    const cJSON *line = is_test ? r->test : r->cls_eval;
    const cJSON *cls = item(line, "classification");
    if (!cJSON_IsObject(cls)) return;
    ft__sb_printf(o, "<h2>Classification</h2>\n");
    source_note(o, line, is_test);
    double ece = ft__json_num(line, "ece", NAN);
    if (!isfinite(ece)) ece = ft__json_num(cls, "ece", NAN);
    ft__rep_confusion_svg(o, cls);
    ft__rep_per_class_svg(o, cls);
    ft__rep_reliability_svg(o, item(line, "calibration"), ece);
    const cJSON *pc = item(cls, "per_class");
    if (!cJSON_IsArray(pc)) return;
    ft__sb_printf(o, "<table><tr><th class='k'>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n");
    int i = 0;
    for (const cJSON *e = pc->child; e; e = e->next, i++) {
        score_row(o, e, "label", i, "precision", "recall", "f1");
        ft__rep_num_cell(o, ft__json_num(e, "support", NAN), "%.0f");
        ft__sb_printf(o, "</tr>\n");
    }
    static const char *const avg[3] = {"macro", "micro", "weighted"};
    double n = ft__json_num(cls, "num_samples", NAN);
    average_rows(o, cls, avg, n);
    ft__sb_printf(o, "<tr><td class='k'><i>accuracy</i></td><td></td><td></td>");
    ft__rep_num_cell(o, ft__json_num(cls, "accuracy", NAN), "%.4f");
    ft__rep_num_cell(o, n, "%.0f");
    ft__sb_printf(o, "</tr>\n</table>\n");
}

void ft__rep_ner(ft__sb *o, const ft_rep_run *r) {
    int is_test = cJSON_IsObject(item(r->test, "ner"));
    const cJSON *line = is_test ? r->test : r->ner_eval;
    const cJSON *ner = item(line, "ner");
    if (!cJSON_IsObject(ner)) return;
    ft__sb_printf(o, "<h2>Entities</h2>\n");
    source_note(o, line, is_test);
    double nt = ft__json_num(ner, "num_true", NAN), np = ft__json_num(ner, "num_pred", NAN), nc = ft__json_num(ner, "num_correct", NAN);
    double ta = ft__json_num(ner, "accuracy", NAN);
    if (fabs(nt) < 1e15 && fabs(np) < 1e15 && fabs(nc) < 1e15)
        ft__sb_printf(o, "<p>%.0f true entities, %.0f predicted, %.0f exactly right (span and type).", nt, np, nc);
    else
        ft__sb_printf(o, "<p>");
    if (isfinite(ta)) ft__sb_printf(o, " Token accuracy %.4f.", ta);
    ft__sb_printf(o, "</p>\n<table><tr><th class='k'>entity type</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n");
    const cJSON *pt = item(ner, "per_type");
    int i = 0;
    for (const cJSON *e = cJSON_IsArray(pt) ? pt->child : NULL; e; e = e->next, i++) {
        score_row(o, e, "type", i, "precision", "recall", "f1");
        ft__rep_num_cell(o, ft__json_num(e, "support", NAN), "%.0f");
        ft__sb_printf(o, "</tr>\n");
    }
    static const char *const avg[3] = {"micro", "macro", "weighted"};
    average_rows(o, ner, avg, nt);
    ft__sb_printf(o, "</table>\n");
}
