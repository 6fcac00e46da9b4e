/* dq_report_html.c — the data-quality report as one self-contained HTML page: inline CSS, SVG bar charts
 * (score parts, length histograms, labels, scripts, languages), tables of fields, pairs and hits. No
 * scripts, nothing fetched. */
#include "data/dq_internal.h"
#include "core/strbuf.h"
#include "finetune/fileio.h"

#include <stdlib.h>
#include <string.h>

static void esc(ft__sb *o, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': ft__sb_puts(o, "&lt;"); break;
        case '>': ft__sb_puts(o, "&gt;"); break;
        case '&': ft__sb_puts(o, "&amp;"); break;
        case '"': ft__sb_puts(o, "&quot;"); break;
        case '\'': ft__sb_puts(o, "&#39;"); break;
        case '\n': ft__sb_puts(o, " &#8629; "); break;
        default: ft__sb_putc(o, *s);
        }
    }
}

/* A horizontal bar chart: one row per (label, value); values scaled to the largest (or to vmax > 0). */
static void bars(ft__sb *o, const char *title, const char *const *labels, const double *v, int n, double vmax,
                 const char *fmt) {
    if (n <= 0) return;
    double mx = vmax;
    for (int i = 0; i < n && vmax <= 0; i++) if (v[i] > mx) mx = v[i];
    if (mx <= 0) mx = 1;
    int rowh = 20, w = 680, lw = 210, bw = w - lw - 90;
    ft__sb_printf(o, "<figure><figcaption>");
    esc(o, title);
    ft__sb_printf(o, "</figcaption><svg width='%d' height='%d' role='img'>", w, rowh * n + 6);
    for (int i = 0; i < n; i++) {
        int y = i * rowh + 3;
        double frac = v[i] / mx;
        if (frac < 0) frac = 0;
        ft__sb_printf(o, "<text x='%d' y='%d' text-anchor='end' class='l'>", lw - 6, y + 14);
        esc(o, labels[i]);
        ft__sb_printf(o, "</text><rect x='%d' y='%d' width='%.1f' height='%d' class='b'/>", lw, y + 2, frac * bw, rowh - 5);
        ft__sb_printf(o, "<text x='%.1f' y='%d' class='v'>", lw + frac * bw + 4, y + 14);
        ft__sb_printf(o, fmt, v[i]);
        ft__sb_puts(o, "</text>");
    }
    ft__sb_puts(o, "</svg></figure>\n");
}

static void counts_chart(ft__sb *o, const char *title, const ft_dq_count *c, int n) {
    if (n > 30) n = 30;
    const char **l = calloc((size_t)(n ? n : 1), sizeof *l);
    double *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (l && v) {
        for (int i = 0; i < n; i++) { l[i] = c[i].name; v[i] = (double)c[i].count; }
        bars(o, title, l, v, n, 0, "%.0f");
    }
    free(l);
    free(v);
}

static void hist_chart(ft__sb *o, const char *title, const ft_dq_dist *d) {
    int last = 0;
    for (int b = 0; b < FT_DQ_HIST_BINS; b++) if (d->hist[b]) last = b;
    char names[FT_DQ_HIST_BINS][40];
    const char *l[FT_DQ_HIST_BINS];
    double v[FT_DQ_HIST_BINS];
    for (int b = 0; b <= last; b++) {
        if (b == 0) snprintf(names[b], sizeof names[b], "0");
        else if (b == 1) snprintf(names[b], sizeof names[b], "1");
        else snprintf(names[b], sizeof names[b], "%lld-%lld", (long long)1 << (b - 1), ((long long)1 << b) - 1);
        l[b] = names[b];
        v[b] = (double)d->hist[b];
    }
    char t[200];
    snprintf(t, sizeof t, "%s: mean %.1f, median %lld, p90 %lld, p99 %lld, max %lld", title, d->mean, (long long)d->p50,
             (long long)d->p90, (long long)d->p99, (long long)d->max);
    bars(o, t, l, v, last + 1, 0, "%.0f");
}

static void pair_table(ft__sb *o, const ft_dq_pair *p, int64_t np, int64_t max, char **text, const int *line,
                       const char *an, const char *bn) {
    int64_t m = max >= 0 && np > max ? max : np;
    if (m > 50) m = 50;
    if (!m) return;
    ft__sb_printf(o, "<table><tr><th>Jaccard</th><th>%s line</th><th>text</th><th>%s line</th><th>text</th></tr>\n", an, bn);
    for (int64_t k = 0; k < m; k++) {
        ft__sb_printf(o, "<tr><td>%.3f</td><td>%d</td><td>", p[k].jaccard, line[2 * k]);
        esc(o, text[2 * k]);
        ft__sb_printf(o, "</td><td>%d</td><td>", line[2 * k + 1]);
        esc(o, text[2 * k + 1]);
        ft__sb_puts(o, "</td></tr>\n");
    }
    ft__sb_puts(o, "</table>\n");
    if (np > m) ft__sb_printf(o, "<p class='note'>%lld more pairs in the JSON report (or not listed).</p>\n", (long long)(np - m));
}

int ft_dq_report_write_html(const ft_dq_report *r, const char *path) {
    ft__sb o = {0};
    ft__sb_puts(&o, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Data quality: ");
    esc(&o, r->path);
    ft__sb_puts(&o, "</title><style>"
                    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}"
                    "h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}"
                    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;"
                    "vertical-align:top;max-width:420px;overflow-wrap:anywhere}th{background:#f4f4f4}"
                    ".score{font-size:32px;font-weight:600}.note{color:#666}"
                    "svg text{font-size:12px}.l{fill:#333}.v{fill:#555}.b{fill:#4a7bd0}"
                    "figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:4px}"
                    "</style></head><body>\n<h1>Data quality: ");
    esc(&o, r->path);
    ft__sb_printf(&o, "</h1>\n<p>%lld records, format %s", (long long)r->records, ft_dq_format_name(r->format));
    if (r->malformed) ft__sb_printf(&o, ", %lld rows could not be read", (long long)r->malformed);
    ft__sb_puts(&o, "; text fields: ");
    esc(&o, r->text_fields);
    ft__sb_puts(&o, "; label field: ");
    esc(&o, r->label_field ? r->label_field : "none");
    ft__sb_puts(&o, ".</p>\n");

    /* score */
    ft__sb_printf(&o, "<h2>Quality score</h2><p class='score'>%.1f / 100</p>\n", r->score);
    const char *pl[FT_DQ_PARTS];
    double pv[FT_DQ_PARTS];
    char pn[FT_DQ_PARTS][48];
    for (int k = 0; k < FT_DQ_PARTS; k++) {
        snprintf(pn[k], sizeof pn[k], "%s (weight %.2f)", ft_dq_part_name(k), ft_dq_part_weight[k]);
        pl[k] = pn[k];
        pv[k] = r->part[k];
    }
    bars(&o, "Parts (each 0..1); score = 100 x sum of weight x part", pl, pv, FT_DQ_PARTS, 1.0, "%.3f");
    ft__sb_puts(&o, "<p class='note'>completeness: share of records whose text and label fields are present and not blank; "
                    "uniqueness: 1 - (exact + near duplicates) / records; validity: 1 - records with invalid UTF-8, control "
                    "characters or an empty text (and unreadable rows) / all; consistency: 1 - records whose text carries "
                    "conflicting labels / records; balance: label entropy / log(classes).</p>\n");

    /* fields */
    ft__sb_puts(&o, "<h2>Fields</h2><table><tr><th>field</th><th>present</th><th>blank</th><th>complete</th></tr>\n");
    for (int f = 0; f < r->nfields; f++) {
        ft__sb_puts(&o, "<tr><td>");
        esc(&o, r->fields[f]);
        ft__sb_printf(&o, "</td><td>%lld</td><td>%lld</td><td>%.1f%%</td></tr>\n", (long long)r->present[f],
                      (long long)r->empty[f], r->records ? 100.0 * (double)(r->present[f] - r->empty[f]) / (double)r->records : 0);
    }
    ft__sb_printf(&o, "</table><p>Records with an empty text: %lld.</p>\n", (long long)r->empty_text);

    /* duplicates */
    ft__sb_printf(&o, "<h2>Duplicates</h2><p>%lld exact duplicates (same text as an earlier record), %lld near duplicates "
                      "(not exact; Jaccard &ge; %.2f with an earlier record); %lld pairs in all.</p>"
                      "<p class='note'>MinHash: %d permutations, %d bands of %d rows, %d-word shingles of lower-cased words; "
                      "LSH candidates confirmed by the exact Jaccard similarity of the shingle sets.</p>\n",
                  (long long)r->exact_dup, (long long)r->near_dup, r->minhash.threshold, (long long)r->npairs,
                  r->minhash.num_perm, r->minhash.bands, r->minhash.bands ? r->minhash.num_perm / r->minhash.bands : 0,
                  r->minhash.shingle);
    pair_table(&o, r->pairs, r->npairs, r->max_listed, r->pair_text, r->pair_line, "first", "second");

    /* lengths */
    ft__sb_puts(&o, "<h2>Lengths</h2>\n");
    hist_chart(&o, "Characters", &r->chars);
    hist_chart(&o, "Words", &r->words);
    if (r->has_tokens) hist_chart(&o, "Tokens", &r->tokens);

    /* labels */
    if (r->label_field) {
        ft__sb_printf(&o, "<h2>Labels</h2><p>%d classes, imbalance ratio (largest / smallest) %.2f; %lld texts carry "
                          "conflicting labels (%lld records).</p>\n", r->nlabels, r->imbalance,
                      (long long)r->conflict_texts, (long long)r->conflict_records);
        counts_chart(&o, "Records per label", r->labels, r->nlabels);
    }

    /* scripts and languages */
    ft__sb_puts(&o, "<h2>Scripts and languages</h2>\n");
    counts_chart(&o, "Letters per script", r->scripts, r->nscripts);
    if (r->nlangs) {
        counts_chart(&o, "Records per guessed language (stop-word profile; und = undetermined)", r->langs, r->nlangs);
    }

    /* issues */
    ft__sb_puts(&o, "<h2>Invalid text and personal data</h2><table><tr><th>kind</th><th>records</th><th>matches</th></tr>\n");
    for (int k = 0; k < FT_DQ_HIT_KINDS; k++)
        ft__sb_printf(&o, "<tr><td>%s</td><td>%lld</td><td>%lld</td></tr>\n", ft_dq_hit_kind_name((ft_dq_hit_kind)k),
                      (long long)r->hit_records[k], (long long)r->hit_count[k]);
    ft__sb_puts(&o, "</table>\n");
    if (r->nhits) {
        ft__sb_puts(&o, "<table><tr><th>kind</th><th>line</th><th>record</th><th>field</th><th>found</th></tr>\n");
        for (int64_t h = 0; h < r->nhits; h++) {
            ft__sb_printf(&o, "<tr><td>%s</td><td>%d</td><td>%lld</td><td>", ft_dq_hit_kind_name((ft_dq_hit_kind)r->hits[h].kind),
                          r->hits[h].line, (long long)r->hits[h].record);
            esc(&o, r->fields[r->hits[h].field]);
            ft__sb_puts(&o, "</td><td>");
            esc(&o, r->hits[h].text);
            ft__sb_puts(&o, "</td></tr>\n");
        }
        ft__sb_puts(&o, "</table>\n");
    }

    /* overlap */
    if (r->has_valid) {
        ft__sb_puts(&o, "<h2>Train / validation overlap</h2><p>");
        esc(&o, r->valid_path);
        ft__sb_printf(&o, ": %lld records; %lld have the exact text of a training record, %lld more a near duplicate.</p>\n",
                      (long long)r->valid_records, (long long)r->leak_exact, (long long)r->leak_near);
        pair_table(&o, r->leak_pairs, r->nleak_pairs, r->max_listed, r->leak_text, r->leak_line, "train", "validation");
    }
    ft__sb_puts(&o, "</body></html>\n");
    size_t n = 0;
    char *page = ft__sb_take(&o, &n);
    if (!page) return ft_error(FT_ERR_NOMEM, "%s: out of memory (HTML report)", path);
    int rc = ft_file_write_atomic(path, page, n);
    free(page);
    return rc;
}
