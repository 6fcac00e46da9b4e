/* runs_compare.c — `finetune runs compare`: one self-contained HTML page (no scripts, no network) with
 * the runs' curves overlaid (one chart per metric key the runs log: train/loss, train/lr, the evaluation
 * metrics), their configs side by side with the differing keys highlighted, and the last value of every
 * metric (runs.h). */
#include "runs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/strbuf.h"
#include "finetune/status.h"
#include "report/report_internal.h"

static const char *k_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* the (step, value) points of one metric of one run, in step order */
static int load_series(ft_runs_db *db, int64_t id, const char *key, ft_rep_series *s) {
    sqlite3_stmt *st;
    memset(s, 0, sizeof *s);
    if (sqlite3_prepare_v2(db->db, "SELECT step, value FROM run_metrics WHERE run_id = ?1 AND key = ?2 ORDER BY step, id;", -1, &st, NULL) != SQLITE_OK)
        return ft__runs_fail(db, "select metric");
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) ft__rep_push(s, (double)sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1));
    sqlite3_finalize(st);
    return s->failed ? ft_error(FT_ERR_NOMEM, "out of memory") : FT_OK;
}

/* one SVG chart (640 x 260) of n series over steps */
static void chart(ft__sb *o, const char *title, ft_rep_series *s, char **names, int n) {
    const double W = 640, H = 260, L = 60, R = 16, T = 28, B = 36;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k].n; i++) {
            x0 = fmin(x0, s[k].x[i]); x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, s[k].y[i]); y1 = fmax(y1, s[k].y[i]);
        }
    ft__sb_printf(o, "<figure><svg xmlns='http://www.w3.org/2000/svg' width='%g' height='%g' viewBox='0 0 %g %g'>", W, H, W, H);
    ft__sb_printf(o, "<rect width='100%%' height='100%%' fill='#fff'/><text x='%g' y='18' font-size='14' font-weight='bold'>", L);
    ft__rep_escape(o, title);
    ft__sb_puts(o, "</text>\n");
    if (!(x1 >= x0) || !(y1 >= y0)) { ft__sb_printf(o, "<text x='%g' y='%g' fill='#888'>no data</text></svg></figure>\n", L, H / 2); return; }
    if (x1 == x0) { x0 -= 1; x1 += 1; }
    if (y1 == y0) { double d = y0 != 0 ? fabs(y0) * 0.1 : 0.5; y1 += d; y0 -= d; }
    double pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
#define SX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
#define SY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    ft__sb_puts(o, "<g font-size='11' fill='#444' stroke='none'>");
    for (int i = 0; i <= 4; i++) {
        double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
        ft__sb_printf(o, "<line x1='%g' x2='%g' y1='%.1f' y2='%.1f' stroke='#ddd'/>", L, W - R, SY(yv), SY(yv));
        ft__sb_printf(o, "<text x='%g' y='%.1f' text-anchor='end'>%.3g</text>", L - 4, SY(yv) + 4, yv);
        ft__sb_printf(o, "<text x='%.1f' y='%g' text-anchor='middle'>%.0f</text>", SX(xv), H - B + 16, xv);
    }
    ft__sb_printf(o, "<text x='%g' y='%g' text-anchor='middle'>step</text></g>\n", (L + W - R) / 2, H - 4);
    for (int k = 0; k < n; k++) {
        const char *c = k_colors[k % 10];
        if (s[k].n) {
            ft__sb_printf(o, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", c);
            for (int i = 0; i < s[k].n; i++) ft__sb_printf(o, "%.1f,%.1f ", SX(s[k].x[i]), SY(s[k].y[i]));
            ft__sb_puts(o, "'/>\n");
        }
        ft__sb_printf(o, "<rect x='%g' y='%d' width='10' height='10' fill='%s'/><text x='%g' y='%d' font-size='11'>", W - R - 150,
                      8 + 14 * k, c, W - R - 135, 17 + 14 * k);
        ft__rep_escape(o, names[k]);
        ft__sb_puts(o, "</text>\n");
    }
#undef SX
#undef SY
    ft__sb_puts(o, "</svg></figure>\n");
}

/* text of one column of run id (caller frees), NULL when null */
static char *column(ft_runs_db *db, int64_t id, const char *col) {
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM runs WHERE id = ?1;", col);
    sqlite3_stmt *st;
    char *v = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

int ft_runs_write_compare(ft_runs_db *db, const int64_t *ids, int n, FILE *f) {
    if (n < 1) return ft_error(FT_ERR_INVALID, "compare: no runs");
    ft__sb o = {0};
    char **names = calloc((size_t)n, sizeof *names);
    cJSON **cfg = calloc((size_t)n, sizeof *cfg);
    ft_rep_series *s = calloc((size_t)n, sizeof *s);
    int rc = names && cfg && s ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int k = 0; rc == FT_OK && k < n; k++) {
        char *nm = column(db, ids[k], "name"), *c = column(db, ids[k], "config");
        if (!nm) { free(c); rc = ft_error(FT_ERR_NOT_FOUND, "%s: no run %lld", db->path, (long long)ids[k]); break; }
        char buf[300];
        snprintf(buf, sizeof buf, "%lld %s", (long long)ids[k], nm);
        free(nm);
        names[k] = strdup(buf);
        cfg[k] = c ? cJSON_Parse(c) : NULL;
        free(c);
    }
    if (rc == FT_OK) {
        ft__sb_puts(&o, "<!DOCTYPE html><html><head><meta charset='utf-8'><title>finetune runs compare</title><style>"
                        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
                        "padding:3px 8px;font-size:13px;text-align:left}tr.diff td{background:#fff3c4}figure{display:inline-block;margin:0 1em 1em 0}"
                        "</style></head><body><h1>Runs compared</h1>\n<h2>Curves</h2>\n");
        /* the metric keys the runs share a chart each (epochs, token counts and speeds left out) */
        sqlite3_stmt *st;
        ft__sb q = {0};
        ft__sb_puts(&q, "SELECT DISTINCT key FROM run_metrics WHERE run_id IN (");
        for (int k = 0; k < n; k++) ft__sb_printf(&q, k ? ",%lld" : "%lld", (long long)ids[k]);
        ft__sb_puts(&q, ") AND key NOT LIKE '%/epoch' AND key NOT LIKE '%/tokens' AND key NOT LIKE '%_per_s' AND key NOT LIKE 'memory/%' ORDER BY key;");
        char *sql = ft__sb_take(&q, NULL);
        if (!sql || sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) rc = sql ? ft__runs_fail(db, "metric keys") : ft_error(FT_ERR_NOMEM, "out of memory");
        free(sql);
        while (rc == FT_OK && sqlite3_step(st) == SQLITE_ROW) {
            char key[256];
            snprintf(key, sizeof key, "%s", (const char *)sqlite3_column_text(st, 0));
            for (int k = 0; rc == FT_OK && k < n; k++) rc = load_series(db, ids[k], key, &s[k]);
            if (rc == FT_OK) chart(&o, key, s, names, n);
            for (int k = 0; k < n; k++) ft__rep_series_free(&s[k]);
        }
        if (rc == FT_OK || st) sqlite3_finalize(st);
    }
    if (rc == FT_OK) {
        /* configs: every key of any run, rows where the values differ highlighted */
        ft__sb_puts(&o, "<h2>Configuration (differences highlighted)</h2>\n<table><tr><th>key</th>");
        for (int k = 0; k < n; k++) { ft__sb_puts(&o, "<th>"); ft__rep_escape(&o, names[k]); ft__sb_puts(&o, "</th>"); }
        ft__sb_puts(&o, "</tr>\n");
        cJSON *keys = cJSON_CreateObject();
        for (int k = 0; k < n; k++)
            for (const cJSON *c = cfg[k] ? cfg[k]->child : NULL; c; c = c->next)
                if (c->string && !cJSON_GetObjectItemCaseSensitive(keys, c->string)) cJSON_AddNullToObject(keys, c->string);
        for (const cJSON *key = keys ? keys->child : NULL; key; key = key->next) {
            char **v = calloc((size_t)n, sizeof *v);
            if (!v) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            int differ = 0;
            for (int k = 0; k < n; k++) {
                const cJSON *it = cfg[k] ? cJSON_GetObjectItemCaseSensitive(cfg[k], key->string) : NULL;
                v[k] = it ? (cJSON_IsString(it) ? strdup(it->valuestring) : cJSON_PrintUnformatted(it)) : NULL;
                if (k && ((v[k] == NULL) != (v[0] == NULL) || (v[k] && v[0] && strcmp(v[k], v[0]) != 0))) differ = 1;
            }
            ft__sb_puts(&o, differ ? "<tr class='diff'><td>" : "<tr><td>");
            ft__rep_escape(&o, key->string);
            ft__sb_puts(&o, "</td>");
            for (int k = 0; k < n; k++) {
                ft__sb_puts(&o, "<td>");
                ft__rep_escape(&o, v[k] ? v[k] : "-");
                ft__sb_puts(&o, "</td>");
                free(v[k]);
            }
            free(v);
            ft__sb_puts(&o, "</tr>\n");
        }
        cJSON_Delete(keys);
        ft__sb_puts(&o, "</table>\n");
    }
    if (rc == FT_OK) {
        /* the last value of every metric */
        ft__sb_puts(&o, "<h2>Final metrics (last value)</h2>\n<table><tr><th>metric</th>");
        for (int k = 0; k < n; k++) { ft__sb_puts(&o, "<th>"); ft__rep_escape(&o, names[k]); ft__sb_puts(&o, "</th>"); }
        ft__sb_puts(&o, "</tr>\n");
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db->db, "SELECT DISTINCT key FROM run_metrics ORDER BY key;", -1, &st, NULL) != SQLITE_OK) rc = ft__runs_fail(db, "metric keys");
        while (rc == FT_OK && sqlite3_step(st) == SQLITE_ROW) {
            const char *key = (const char *)sqlite3_column_text(st, 0);
            ft__sb row = {0};
            int any = 0;
            ft__sb_puts(&row, "<tr><td>");
            ft__rep_escape(&row, key);
            ft__sb_puts(&row, "</td>");
            for (int k = 0; k < n; k++) {
                sqlite3_stmt *v;
                double x = NAN;
                if (sqlite3_prepare_v2(db->db, "SELECT value FROM run_metrics WHERE run_id = ?1 AND key = ?2 ORDER BY step DESC, id DESC LIMIT 1;",
                                       -1, &v, NULL) == SQLITE_OK) {
                    sqlite3_bind_int64(v, 1, ids[k]);
                    sqlite3_bind_text(v, 2, key, -1, SQLITE_TRANSIENT);
                    if (sqlite3_step(v) == SQLITE_ROW) { x = sqlite3_column_double(v, 0); any = 1; }
                    sqlite3_finalize(v);
                }
                ft__rep_num_cell(&row, x, "%.6g");
            }
            ft__sb_puts(&row, "</tr>\n");
            char *r = ft__sb_take(&row, NULL);
            if (any && r) ft__sb_puts(&o, r);
            free(r);
        }
        sqlite3_finalize(st);
        ft__sb_puts(&o, "</table>\n</body></html>\n");
    }
    for (int k = 0; k < n; k++) {
        if (names) free(names[k]);
        if (cfg) cJSON_Delete(cfg[k]);
    }
    free(names);
    free(cfg);
    free(s);
    size_t len = 0;
    char *page = ft__sb_take(&o, &len);
    if (rc == FT_OK && !page) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK && fwrite(page, 1, len, f) != len) rc = ft_error(FT_ERR_IO, "compare: write failed");
    free(page);
    return rc;
}
