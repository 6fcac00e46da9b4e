/* classify_read.c — text classification files (CSV / TSV / JSONL, and plain text lines when there are no
 * labels) -> ft_cls_dataset, label resolution. */
#include "finetune/classify_data.h"
#include "data_internal.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ft_cls_options ft_cls_default_options(void) {
    ft_cls_options o;
    memset(&o, 0, sizeof o);
    o.format = FT_CLS_AUTO;
    o.text_column = "text";
    o.label_column = "label";
    o.header = 1;
    return o;
}

void ft_cls_dataset_free(ft_cls_dataset *ds) {
    if (!ds) return;
    for (int64_t i = 0; i < ds->n; i++) {
        if (ds->text) free(ds->text[i]);
        if (ds->pair) free(ds->pair[i]);
    }
    free(ds->text);
    free(ds->pair);
    free(ds->label);
    free(ds->line);
    ft_label_map_free(&ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* ---- raw rows: strings before label resolution ---- */
typedef struct raw_rows {
    int64_t n, cap;
    char **text, **pair, **label;
    int *line;
} raw_rows;

static void raw_free(raw_rows *r) {
    for (int64_t i = 0; i < r->n; i++) { free(r->text[i]); if (r->pair) free(r->pair[i]); free(r->label[i]); }
    free(r->text); free(r->pair); free(r->label); free(r->line);
}

static char *dup_trim(const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) { s++; len--; }
    while (len && isspace((unsigned char)s[len - 1])) len--;
    char *o = malloc(len + 1);
    if (o) { memcpy(o, s, len); o[len] = 0; }
    return o;
}

static int blank(const char *s) {
    for (; *s; s++) if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

static int raw_push(raw_rows *r, int with_pair, const char *t, size_t tl, const char *p, size_t pl,
                    const char *l, size_t ll, int line) {
    if (r->n == r->cap) {
        int64_t c = r->cap ? r->cap * 2 : 256;
        char **a = realloc(r->text, (size_t)c * sizeof *a);
        if (a) r->text = a;
        char **b = with_pair ? realloc(r->pair, (size_t)c * sizeof *b) : NULL;
        if (b) r->pair = b;
        char **d = realloc(r->label, (size_t)c * sizeof *d);
        if (d) r->label = d;
        int *e = realloc(r->line, (size_t)c * sizeof *e);
        if (e) r->line = e;
        if (!a || (with_pair && !b) || !d || !e) return ft_error(FT_ERR_NOMEM, "out of memory");
        r->cap = c;
    }
    int64_t i = r->n;
    r->text[i] = malloc(tl + 1);
    if (with_pair) r->pair[i] = malloc(pl + 1);
    r->label[i] = dup_trim(l, ll);
    r->line[i] = line;
    r->n++;
    if (!r->text[i] || (with_pair && !r->pair[i]) || !r->label[i]) return ft_error(FT_ERR_NOMEM, "out of memory");
    memcpy(r->text[i], t, tl); r->text[i][tl] = 0;
    if (with_pair) { memcpy(r->pair[i], p, pl); r->pair[i][pl] = 0; }
    return FT_OK;
}

/* ---- CSV: the RFC 4180 row reader of the data pipeline (data_internal.h) ---- */

/* One row from *pos. 1: a row, 0: end of input, < 0: error (named by path, line and column). */
static int csv_row_read(const char *path, const char *s, size_t n, size_t *pos, int *line, char delim, csv_row *r) {
    int start_line = *line;
    const char *bad;
    int64_t col;
    int got = ft__csv_read_row(s, n, pos, line, delim, r, &bad, &col);
    if (got <= 0 || !bad) return got;
    if (!strncmp(bad, "text after", 10))
        return ft_error(FT_ERR_FORMAT, "%s: line %d: column %lld: text after a closing quote (a quoted field "
                        "must end at the delimiter)", path, *line - 1 > start_line ? *line - 1 : start_line, (long long)col);
    return ft_error(FT_ERR_FORMAT, "%s: line %d: column %lld: %s", path, start_line, (long long)col, bad);
}

/* Column by header name (exact, then case-insensitive) or 1-based number; -1 if none. */
static int read_csv(raw_rows *rr, const char *path, const char *s, size_t n, const ft_cls_options *o, char delim) {
    csv_row row = {0};
    char **names = NULL;
    int ncol = 0, line = 1, rc = FT_OK;
    size_t pos = 0;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) pos = 3;
    if (o->header) {
        int got;
        do got = csv_row_read(path, s, n, &pos, &line, delim, &row);
        while (got == 1 && row.n == 1 && row.buf[0] == 0);
        if (got <= 0) { rc = got < 0 ? got : ft_error(FT_ERR_FORMAT, "%s: empty file", path); goto done; }
        ncol = (int)row.n;
        names = calloc((size_t)ncol, sizeof *names);
        if (!names) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
        for (int i = 0; i < ncol; i++)
            if (!(names[i] = dup_trim(row.buf + row.off[i], strlen(row.buf + row.off[i])))) {
                rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
    }
    const char *want[3] = {o->text_column, o->no_labels ? NULL : o->label_column, o->pair_column};
    const char *role[3] = {"text", "label", "pair"};
    int col[3] = {-1, -1, -1};
    for (int k = 0; k < 3; k++) {
        if (!want[k]) continue;
        col[k] = ft__csv_find_column(want[k], names, ncol, o->header);
        if (col[k] < 0) {
            char cols[512] = "";
            for (int i = 0, w = 0; i < ncol && w < (int)sizeof cols - 1; i++)
                w += snprintf(cols + w, sizeof cols - (size_t)w, "%s%s", i ? ", " : "", names[i]);
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: line 1: no %s column '%s' (columns: %s; or a 1-based column number)",
                          path, role[k], want[k], o->header ? cols : "no header row");
            goto done;
        }
    }
    int need = col[0] > col[1] ? col[0] : col[1];
    if (col[2] > need) need = col[2];
    need++;
    for (;;) {
        int row_line = line;
        int got = csv_row_read(path, s, n, &pos, &line, delim, &row);
        if (got < 0) { rc = got; goto done; }
        if (got == 0) break;
        if (row.n == 1 && row.buf[0] == 0) continue;  /* empty line */
        if (row.n < need) {
            int miss = row.n <= col[0] ? 0 : row.n <= col[1] ? 1 : 2;
            rc = ft_error(FT_ERR_FORMAT, "%s: line %d: column '%s' (%d) missing: the row has %lld fields", path, row_line,
                          o->header ? names[col[miss]] : want[miss], col[miss] + 1, (long long)row.n);
            goto done;
        }
        const char *t = row.buf + row.off[col[0]], *l = col[1] >= 0 ? row.buf + row.off[col[1]] : "";
        const char *p = col[2] >= 0 ? row.buf + row.off[col[2]] : "";
        rc = raw_push(rr, col[2] >= 0, t, strlen(t), p, strlen(p), l, strlen(l), row_line);
        if (rc < 0) goto done;
    }
done:
    ft__csv_free(names, ncol, &row);
    return rc;
}

/* ---- JSONL ---- */
static int json_field(const cJSON *obj, const char *key, const char *path, int line, const char *role,
                      int is_label, char *num, size_t numcap, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return ft_error(FT_ERR_FORMAT, "%s: line %d: column '%s' (%s) missing", path, line, key, role);
    if (cJSON_IsString(v)) { *out = v->valuestring; return FT_OK; }
    if (is_label && cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(num, numcap, "%lld", (long long)v->valuedouble);
        *out = num;
        return FT_OK;
    }
    if (is_label && cJSON_IsBool(v)) { snprintf(num, numcap, "%d", cJSON_IsTrue(v)); *out = num; return FT_OK; }
    return ft_error(FT_ERR_FORMAT, "%s: line %d: column '%s' (%s): expected a string%s", path, line, key, role,
                    is_label ? " or an integer" : "");
}

static int read_jsonl(raw_rows *rr, const char *path, const char *s, size_t n, const ft_cls_options *o) {
    size_t i = 0;
    int line = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        line++;
        size_t a = i;
        i = e + 1;
        while (a < e && isspace((unsigned char)s[a])) a++;
        if (a == e) continue;
        cJSON *obj = cJSON_ParseWithLength(s + a, e - a);
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            return ft_error(FT_ERR_FORMAT, "%s: line %d: not a JSON object", path, line);
        }
        const char *t = NULL, *p = "", *l = NULL;
        char num[32];
        int rc = json_field(obj, o->text_column, path, line, "text", 0, NULL, 0, &t);
        if (rc == FT_OK && o->pair_column) rc = json_field(obj, o->pair_column, path, line, "pair", 0, NULL, 0, &p);
        if (rc == FT_OK && !o->no_labels) rc = json_field(obj, o->label_column, path, line, "label", 1, num, sizeof num, &l);
        else if (rc == FT_OK) l = "";
        if (rc == FT_OK) rc = raw_push(rr, o->pair_column != NULL, t, strlen(t), p, strlen(p), l, strlen(l), line);
        cJSON_Delete(obj);
        FT_TRY(rc);
    }
    return FT_OK;
}

/* ---- plain text (no labels): one text per line that is not blank ---- */
static int read_lines(raw_rows *rr, const char *s, size_t n) {
    size_t i = 0;
    int line = 0;
    if (n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) i = 3;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        line++;
        size_t a = i, z = e;
        i = e + 1;
        if (z > a && s[z - 1] == '\r') z--;        /* CRLF */
        size_t k = a;
        while (k < z && isspace((unsigned char)s[k])) k++;
        if (k == z) continue;                      /* empty or whitespace-only line */
        FT_TRY(raw_push(rr, 0, s + a, z - a, "", 0, "", 0, line));
    }
    return FT_OK;
}

/* ---- labels ---- */
static int is_uint(const char *s, long *v) {
    if (!*s || strlen(s) > 9) return 0;
    for (const char *p = s; *p; p++) if (!isdigit((unsigned char)*p)) return 0;
    *v = atol(s);
    return 1;
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int resolve_labels(ft_cls_dataset *ds, const raw_rows *rr, const char *path, const char *col,
                          const ft_label_map *given) {
    if (given) {
        FT_TRY(ft_label_map_copy(&ds->labels, given));
        for (int64_t i = 0; i < rr->n; i++) {
            int id = ft_label_map_id(given, rr->label[i]);
            long v;
            if (id < 0 && is_uint(rr->label[i], &v) && v < given->n) id = (int)v;
            if (id < 0) {
                char known[256] = "";
                for (int k = 0, w = 0; k < given->n && w < (int)sizeof known - 1; k++)
                    w += snprintf(known + w, sizeof known - (size_t)w, "%s%s", k ? ", " : "", given->names[k]);
                return ft_error(FT_ERR_NOT_FOUND, "%s: line %d: column '%s': unknown label '%s' (the label map has: %s)",
                                path, rr->line[i], col, rr->label[i], known);
            }
            ds->label[i] = id;
        }
        return FT_OK;
    }
    int all_int = rr->n > 0;
    long mx = -1, v;
    for (int64_t i = 0; i < rr->n && all_int; i++) {
        all_int = is_uint(rr->label[i], &v);
        if (all_int && v > mx) mx = v;
    }
    if (all_int) {
        if (mx > 100000) return ft_error(FT_ERR_RANGE, "%s: column '%s': integer label %ld too large", path, col, mx);
        char **names = calloc((size_t)mx + 1, sizeof *names);
        int rc = names ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
        for (long k = 0; rc == FT_OK && k <= mx; k++) {
            names[k] = malloc(24);
            if (!names[k]) rc = ft_error(FT_ERR_NOMEM, "out of memory");
            else snprintf(names[k], 24, "%ld", k);
        }
        if (rc == FT_OK) rc = ft_label_map_init(&ds->labels, (const char *const *)names, (int)mx + 1);
        for (long k = 0; names && k <= mx; k++) free(names[k]);
        free(names);
        FT_TRY(rc);
        for (int64_t i = 0; i < rr->n; i++) { is_uint(rr->label[i], &v); ds->label[i] = (int)v; }
        return FT_OK;
    }
    char **sorted = malloc((size_t)(rr->n ? rr->n : 1) * sizeof *sorted);
    if (!sorted) return ft_error(FT_ERR_NOMEM, "out of memory");
    memcpy(sorted, rr->label, (size_t)rr->n * sizeof *sorted);
    qsort(sorted, (size_t)rr->n, sizeof *sorted, cmp_str);
    int64_t k = 0;
    for (int64_t i = 0; i < rr->n; i++) if (k == 0 || strcmp(sorted[k - 1], sorted[i]) != 0) sorted[k++] = sorted[i];
    int rc = ft_label_map_init(&ds->labels, (const char *const *)sorted, (int)k);
    for (int64_t i = 0; rc == FT_OK && i < rr->n; i++) {
        /* binary search in the sorted unique names */
        int64_t lo = 0, hi = k - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (strcmp(sorted[mid], rr->label[i]) < 0) lo = mid + 1; else hi = mid;
        }
        ds->label[i] = (int)lo;
    }
    free(sorted);
    return rc;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

int ft_cls_dataset_parse(ft_cls_dataset *out, const char *path, const char *buf, size_t len, const ft_cls_options *opt) {
    memset(out, 0, sizeof *out);
    ft_cls_options o = opt ? *opt : ft_cls_default_options();
    if (!o.text_column) o.text_column = "text";
    if (!o.label_column) o.label_column = "label";
    ft_cls_format fmt = o.format;
    if (fmt == FT_CLS_AUTO) fmt = ends_with(path, ".jsonl") || ends_with(path, ".json") ? FT_CLS_JSONL : FT_CLS_CSV;
    char delim = o.delimiter ? o.delimiter : ends_with(path, ".tsv") ? '\t' : ',';
    raw_rows rr = {0};
    int rc = o.no_labels && ends_with(path, ".txt") ? read_lines(&rr, buf, len)
           : fmt == FT_CLS_JSONL ? read_jsonl(&rr, path, buf, len, &o) : read_csv(&rr, path, buf, len, &o, delim);
    if (rc == FT_OK && rr.n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no rows", path);
    for (int64_t i = 0; rc == FT_OK && i < rr.n; i++) {
        const char *what = blank(rr.text[i]) ? o.text_column : rr.pair && blank(rr.pair[i]) ? o.pair_column
                         : !o.no_labels && !rr.label[i][0] ? o.label_column : NULL;
        if (what) rc = ft_error(FT_ERR_FORMAT, "%s: line %d: column '%s': empty %s", path, rr.line[i], what,
                                what == o.label_column ? "label" : "text");
    }
    if (rc == FT_OK) {
        out->label = calloc((size_t)rr.n, sizeof *out->label);   /* no_labels: all 0 */
        if (!out->label) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    if (rc == FT_OK && !o.no_labels) rc = resolve_labels(out, &rr, path, o.label_column, o.label_map);
    if (rc < 0) {
        raw_free(&rr);
        ft_cls_dataset_free(out);
        return rc;
    }
    out->n = rr.n;
    out->text = rr.text;
    out->pair = rr.pair;
    out->line = rr.line;
    for (int64_t i = 0; i < rr.n; i++) free(rr.label[i]);
    free(rr.label);
    return FT_OK;
}

int ft_cls_dataset_load(ft_cls_dataset *out, const char *path, const ft_cls_options *opt) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    FT_TRY(ft_file_read_all(path, &buf, &len));
    int rc = ft_cls_dataset_parse(out, path, buf, len, opt);
    free(buf);
    return rc;
}
