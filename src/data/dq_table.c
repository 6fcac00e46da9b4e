/* dq_table.c — a data file as records of named fields (ft_dq_table), read byte for byte (nothing is
 * cleaned or validated here) and written back in the same format. See dataquality.h, part 1. */
#include "data/data_internal.h"
#include "data/dq_internal.h"
#include "core/strbuf.h"
#include "finetune/fileio.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_format_names[] = {"auto", "csv", "tsv", "jsonl", "json", "text", "dailydialog"};

const char *ft_dq_format_name(ft_dq_format f) {
    return (unsigned)f < sizeof k_format_names / sizeof *k_format_names ? k_format_names[f] : "?";
}

int ft_dq_format_from_name(const char *name, ft_dq_format *out) {
    for (unsigned i = 0; i < sizeof k_format_names / sizeof *k_format_names; i++)
        if (name && !strcmp(name, k_format_names[i])) { *out = (ft_dq_format)i; return FT_OK; }
    if (name && !strcmp(name, "txt")) { *out = FT_DQ_TEXT; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown data format '%s' (expected auto, csv, tsv, jsonl, json, text, dailydialog)",
                    name ? name : "(null)");
}

ft_dq_table_options ft_dq_table_default_options(void) {
    ft_dq_table_options o = {FT_DQ_AUTO, NULL, NULL};
    return o;
}

/* ---- building: (record, field, value) entries first, the matrix at the end ---- */
typedef struct dq_entry { int64_t rec; int field; char *val; } dq_entry;
typedef struct dq_build {
    ft_dq_table *t;
    dq_entry *e; int64_t ne, e_cap;
    int64_t lines_cap, fields_cap, json_cap;
} dq_build;

static int field_index(dq_build *b, const char *name, size_t len) {
    ft_dq_table *t = b->t;
    for (int i = 0; i < t->nfields; i++)
        if (strlen(t->fields[i]) == len && !memcmp(t->fields[i], name, len)) return i;
    FT_TRY(ft__data_reserve((void **)&t->fields, sizeof *t->fields, t->nfields + 1, &b->fields_cap));
    char *c = strndup(name, len);
    if (!c) return ft_error(FT_ERR_NOMEM, "%s: out of memory", t->path);
    t->fields[t->nfields] = c;
    return t->nfields++;
}

static int new_record(dq_build *b, int line) {
    ft_dq_table *t = b->t;
    FT_TRY(ft__data_reserve((void **)&t->line, sizeof *t->line, t->n + 1, &b->lines_cap));
    t->line[t->n++] = line;
    return FT_OK;
}

/* val is taken over (freed on failure) */
static int add_entry(dq_build *b, int field, char *val) {
    if (!val) return ft_error(FT_ERR_NOMEM, "%s: out of memory", b->t->path);
    if (ft__data_reserve((void **)&b->e, sizeof *b->e, b->ne + 1, &b->e_cap) < 0) { free(val); return FT_ERR_NOMEM; }
    b->e[b->ne++] = (dq_entry){b->t->n - 1, field, val};
    return FT_OK;
}

static int finish(dq_build *b) {
    ft_dq_table *t = b->t;
    size_t cells = (size_t)t->n * (size_t)(t->nfields ? t->nfields : 1);
    t->cell = calloc(cells ? cells : 1, sizeof *t->cell);
    if (!t->cell) return ft_error(FT_ERR_NOMEM, "%s: out of memory", t->path);
    for (int64_t k = 0; k < b->ne; k++) {
        char **c = &t->cell[b->e[k].rec * t->nfields + b->e[k].field];
        free(*c);                  /* a repeated JSON key: the last one counts */
        *c = b->e[k].val;
    }
    free(b->e);
    b->e = NULL;
    b->ne = 0;
    return FT_OK;
}

/* ---- JSON values as text ---- */
static int skip_key(const char *k) {
    return k && (!strcmp(k, "role") || !strcmp(k, "from") || !strcmp(k, "speaker") || !strcmp(k, "name") ||
                 !strcmp(k, "type"));
}

static void json_leaves(ft__sb *o, const cJSON *v) {
    if (cJSON_IsString(v)) {
        if (o->n) ft__sb_putc(o, '\n');
        ft__sb_puts(o, v->valuestring);
        return;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return;
    for (const cJSON *c = v->child; c; c = c->next)
        if (!skip_key(c->string)) json_leaves(o, c);
}

/* The text of a JSON value: a string as is, numbers / booleans printed, containers their string leaves;
 * null -> NULL (treated as absent). *err set when out of memory. */
static char *json_value_text(const cJSON *v, int *err) {
    char *s = NULL;
    if (cJSON_IsNull(v)) return NULL;
    if (cJSON_IsString(v)) s = strdup(v->valuestring ? v->valuestring : "");
    else if (cJSON_IsBool(v)) s = strdup(cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) {
        char buf[64];
        double d = v->valuedouble;
        if (d == (double)(long long)d && d > -1e15 && d < 1e15) snprintf(buf, sizeof buf, "%lld", (long long)d);
        else snprintf(buf, sizeof buf, "%.17g", d);
        s = strdup(buf);
    } else {
        ft__sb o = {0};
        json_leaves(&o, v);
        s = ft__sb_take(&o, NULL);
    }
    if (!s) *err = FT_ERR_NOMEM;
    return s;
}

static int add_json_object(dq_build *b, cJSON *obj, int line) {
    ft_dq_table *t = b->t;
    FT_TRY(new_record(b, line));
    if (ft__data_reserve((void **)&t->json, sizeof(cJSON *), t->n, &b->json_cap) < 0) { cJSON_Delete(obj); return FT_ERR_NOMEM; }
    ((cJSON **)t->json)[t->n - 1] = obj;
    for (cJSON *c = obj->child; c; c = c->next) {
        if (!c->string) continue;
        int f = field_index(b, c->string, strlen(c->string));
        if (f < 0) return f;
        int err = 0;
        char *s = json_value_text(c, &err);
        if (err) return ft_error(FT_ERR_NOMEM, "%s: out of memory", t->path);
        if (s) FT_TRY(add_entry(b, f, s));
    }
    return FT_OK;
}

static int count_lines(const char *s, size_t from, size_t to) {
    int k = 0;
    for (size_t i = from; i < to; i++) k += s[i] == '\n';
    return k;
}

static void malformed(ft_dq_table *t, int line) {
    if (!t->malformed++) t->malformed_line = line;
}

static int read_jsonl(dq_build *b, const char *s, size_t n) {
    size_t pos = 0;
    int line = 1;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t a = pos;
        while (a < end && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) a++;
        if (a < end) {
            cJSON *v = cJSON_ParseWithLength(s + a, end - a);
            if (!cJSON_IsObject(v)) { cJSON_Delete(v); malformed(b->t, line); }
            else FT_TRY(add_json_object(b, v, line));
        }
        pos = end + 1;
        line++;
    }
    return FT_OK;
}

/* A JSON list of objects, parsed element by element so that each record knows its line. */
static int read_json(dq_build *b, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && strchr(" \t\r\n", s[i])) i++;
    if (i >= n || s[i] != '[') {  /* one object: one record */
        cJSON *v = cJSON_ParseWithLength(s, n);
        if (!cJSON_IsObject(v)) {
            cJSON_Delete(v);
            return ft_error(FT_ERR_FORMAT, "%s: expected a JSON list of objects or one object", b->t->path);
        }
        return add_json_object(b, v, 1 + count_lines(s, 0, i));
    }
    i++;
    int line = 1 + count_lines(s, 0, i);
    for (;;) {
        size_t a = i;
        while (i < n && strchr(" \t\r\n,", s[i])) i++;
        line += count_lines(s, a, i);
        if (i >= n) return ft_error(FT_ERR_FORMAT, "%s: line %d: the JSON list is not closed", b->t->path, line);
        if (s[i] == ']') return FT_OK;
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(s + i, n - i, &end, 0);
        if (!v || !end) {
            cJSON_Delete(v);
            malformed(b->t, line);
            return ft_error(FT_ERR_FORMAT, "%s: line %d: invalid JSON in the list", b->t->path, line);
        }
        size_t next = (size_t)(end - s);
        if (!cJSON_IsObject(v)) { cJSON_Delete(v); malformed(b->t, line); }
        else FT_TRY(add_json_object(b, v, line));
        line += count_lines(s, i, next);
        i = next;
    }
}

static int read_csv(dq_build *b, const char *s, size_t n, char delim) {
    ft_dq_table *t = b->t;
    csv_row row = {0};
    int line = 1, rc = FT_OK, ncol = 0;
    size_t pos = 0;
    const char *bad;
    int got;
    do {  /* the header: the first non-empty row */
        got = ft__csv_read_row(s, n, &pos, &line, delim, &row, &bad, NULL);
    } while (got == 1 && row.n == 1 && row.buf[0] == 0);
    if (got <= 0) { ft__csv_free(NULL, 0, &row); return got; }
    if (bad) { ft__csv_free(NULL, 0, &row); return ft_error(FT_ERR_FORMAT, "%s: malformed header row: %s", t->path, bad); }
    for (int64_t k = 0; k < row.n && rc == FT_OK; k++) {
        const char *name = row.buf + row.off[k];
        char tmp[32];
        if (!*name) { snprintf(tmp, sizeof tmp, "column%lld", (long long)k + 1); name = tmp; }
        int f = field_index(b, name, strlen(name));
        if (f < 0) rc = f;
        else if (f != (int)k) {   /* a repeated column name: made unique */
            snprintf(tmp, sizeof tmp, "column%lld", (long long)k + 1);
            rc = field_index(b, tmp, strlen(tmp)) < 0 ? FT_ERR_NOMEM : FT_OK;
        }
    }
    ncol = t->nfields;
    while (rc == FT_OK) {
        int start = line;
        got = ft__csv_read_row(s, n, &pos, &line, delim, &row, &bad, NULL);
        if (got <= 0) { rc = got; break; }
        if (row.n == 1 && row.buf[0] == 0) continue;   /* blank line */
        if (bad || row.n > ncol) { malformed(t, start); continue; }
        rc = new_record(b, start);
        for (int64_t k = 0; k < row.n && rc == FT_OK; k++) rc = add_entry(b, (int)k, strdup(row.buf + row.off[k]));
    }
    ft__csv_free(NULL, 0, &row);
    return rc;
}

static int read_lines(dq_build *b, const char *s, size_t n, int dailydialog) {
    FT_TRY(field_index(b, "text", 4));
    size_t pos = 0;
    int line = 1;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n, e = end;
        if (e > pos && s[e - 1] == '\r') e--;
        int blank = 1;
        for (size_t k = pos; k < e && blank; k++) blank = s[k] == ' ' || s[k] == '\t';
        if (!blank) {
            FT_TRY(new_record(b, line));
            if (!dailydialog) {
                FT_TRY(add_entry(b, 0, strndup(s + pos, e - pos)));
            } else {   /* turns separated by __eou__ -> joined by "\n", each trimmed */
                ft__sb o = {0};
                size_t k = pos;
                while (k < e) {
                    const char *m = memmem(s + k, e - k, "__eou__", 7);
                    size_t te = m ? (size_t)(m - s) : e, ts = k;
                    while (ts < te && (s[ts] == ' ' || s[ts] == '\t')) ts++;
                    size_t tz = te;
                    while (tz > ts && (s[tz - 1] == ' ' || s[tz - 1] == '\t')) tz--;
                    if (tz > ts) {
                        if (o.n) ft__sb_putc(&o, '\n');
                        ft__sb_put(&o, s + ts, tz - ts);
                    }
                    k = m ? te + 7 : e;
                }
                if (!o.p) ft__sb_puts(&o, "");
                FT_TRY(add_entry(b, 0, ft__sb_take(&o, NULL)));
            }
        }
        pos = end + 1;
        line++;
    }
    return FT_OK;
}

static ft_dq_format detect(const char *path, const char *s, size_t n) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) {
        if (!strcasecmp(dot, ".csv")) return FT_DQ_CSV;
        if (!strcasecmp(dot, ".tsv")) return FT_DQ_TSV;
        if (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson")) return FT_DQ_JSONL;
    }
    size_t i = 0;
    while (i < n && strchr(" \t\r\n", s[i])) i++;
    if (i < n && s[i] == '[') return FT_DQ_JSON;
    if (i < n && s[i] == '{') {
        /* one object over several lines is a JSON file; one object per line is JSONL */
        const char *nl = memchr(s + i, '\n', n - i);
        if (!nl) return FT_DQ_JSONL;
        cJSON *v = cJSON_ParseWithLength(s + i, (size_t)(nl - (s + i)));
        int line_obj = cJSON_IsObject(v);
        cJSON_Delete(v);
        return line_obj ? FT_DQ_JSONL : FT_DQ_JSON;
    }
    size_t head = n < 65536 ? n : 65536;
    if (memmem(s, head, "__eou__", 7)) return FT_DQ_DAILYDIALOG;
    return FT_DQ_TEXT;
}

/* text_columns / label_column -> t->text, t->label */
static int choose_fields(ft_dq_table *t, const ft_dq_table_options *o) {
    t->label = -1;
    t->n_text = 0;
    const char *lc = o->label_column;
    if (!lc) lc = "label";
    else if (!*lc || !strcmp(lc, "none")) lc = NULL;
    if (lc) {
        for (int i = 0; i < t->nfields; i++) if (!strcmp(t->fields[i], lc)) t->label = i;
        if (t->label < 0 && o->label_column)
            return ft_error(FT_ERR_NOT_FOUND, "%s: no label field '%s' (fields: %s%s)", t->path, lc,
                            t->nfields ? t->fields[0] : "none", t->nfields > 1 ? ", ..." : "");
    }
    if (o->text_columns && *o->text_columns) {
        const char *p = o->text_columns;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int found = -1;
            for (int i = 0; i < t->nfields; i++)
                if (strlen(t->fields[i]) == len && !memcmp(t->fields[i], p, len)) found = i;
            if (found < 0) return ft_error(FT_ERR_NOT_FOUND, "%s: no text field '%.*s'", t->path, (int)len, p);
            if (t->n_text < FT_DQ_MAX_TEXT_FIELDS) t->text[t->n_text++] = found;
            p += len + (e != NULL);
        }
        return FT_OK;
    }
    static const char *const groups[][4] = {
        {"text"}, {"sentence"}, {"content"}, {"utterance"}, {"instruction", "input", "output"},
        {"prompt", "completion"}, {"question", "answer"}, {"messages"}, {"conversations"}, {"dialogue"},
    };
    for (unsigned g = 0; g < sizeof groups / sizeof *groups && !t->n_text; g++) {
        for (int k = 0; k < 4 && groups[g][k]; k++)
            for (int i = 0; i < t->nfields; i++)
                if (!strcmp(t->fields[i], groups[g][k]) && t->n_text < FT_DQ_MAX_TEXT_FIELDS) t->text[t->n_text++] = i;
    }
    for (int i = 0; i < t->nfields && !t->n_text; i++)  /* none known: every field but the label */
        for (int j = 0; j < t->nfields && t->n_text < FT_DQ_MAX_TEXT_FIELDS; j++)
            if (j != t->label) t->text[t->n_text++] = j;
    return FT_OK;
}

int ft_dq_table_parse(ft_dq_table *t, const char *path, const char *buf, size_t len, const ft_dq_table_options *opt) {
    ft_dq_table_options o = opt ? *opt : ft_dq_table_default_options();
    memset(t, 0, sizeof *t);
    t->label = -1;
    t->path = strdup(path ? path : "data");
    if (!t->path) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF) {
        buf += 3;
        len -= 3;
    }
    t->format = o.format != FT_DQ_AUTO ? o.format : detect(t->path, buf, len);
    dq_build b = {.t = t};
    int rc;
    switch (t->format) {
    case FT_DQ_CSV:   rc = read_csv(&b, buf, len, ','); break;
    case FT_DQ_TSV:   rc = read_csv(&b, buf, len, '\t'); break;
    case FT_DQ_JSONL: rc = read_jsonl(&b, buf, len); break;
    case FT_DQ_JSON:  rc = read_json(&b, buf, len); break;
    case FT_DQ_DAILYDIALOG: rc = read_lines(&b, buf, len, 1); break;
    default:          t->format = FT_DQ_TEXT; rc = read_lines(&b, buf, len, 0); break;
    }
    if (rc == FT_OK) rc = finish(&b);
    if (rc == FT_OK && t->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no records (%s)", t->path, ft_dq_format_name(t->format));
    if (rc == FT_OK) rc = choose_fields(t, &o);
    if (rc != FT_OK) {
        for (int64_t k = 0; k < b.ne; k++) free(b.e[k].val);
        free(b.e);
        ft_dq_table_free(t);
    }
    return rc;
}

int ft_dq_table_load(ft_dq_table *t, const char *path, const ft_dq_table_options *o) {
    memset(t, 0, sizeof *t);
    char *buf = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    int rc = ft_dq_table_parse(t, path, buf, len, o);
    free(buf);
    return rc;
}

void ft_dq_table_free(ft_dq_table *t) {
    if (!t) return;
    if (t->cell)
        for (int64_t i = 0; i < t->n * t->nfields; i++) free(t->cell[i]);
    if (t->json)
        for (int64_t i = 0; i < t->n; i++) cJSON_Delete(((cJSON **)t->json)[i]);
    for (int i = 0; i < t->nfields; i++) free(t->fields[i]);
    free(t->fields);
    free(t->cell);
    free(t->line);
    free(t->json);
    free(t->path);
    memset(t, 0, sizeof *t);
    t->label = -1;
}

char *ft_dq_table_text(const ft_dq_table *t, int64_t i, size_t *len) {
    ft__sb o = {0};
    int first = 1;
    for (int k = 0; k < t->n_text; k++) {
        const char *c = t->cell[i * t->nfields + t->text[k]];
        if (!c) continue;
        if (!first) ft__sb_putc(&o, '\n');
        ft__sb_puts(&o, c);
        first = 0;
    }
    if (!o.p && !o.err) ft__sb_puts(&o, "");
    return ft__sb_take(&o, len);
}

const char *ft_dq_table_label(const ft_dq_table *t, int64_t i) {
    return t->label >= 0 ? t->cell[i * t->nfields + t->label] : NULL;
}

/* ---- editing ---- */
static int map_json(cJSON *v, ft_dq_map_fn fn, void *ctx, int *changed) {
    if (cJSON_IsString(v)) {
        int err = 0;
        char *r = fn(ctx, v->valuestring, strlen(v->valuestring), &err);
        if (err) return err;
        if (r) {
            if (strcmp(r, v->valuestring) != 0) {
                if (!cJSON_SetValuestring(v, r)) { free(r); return FT_ERR_NOMEM; }
                *changed = 1;
            }
            free(r);
        }
        return FT_OK;
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return FT_OK;
    for (cJSON *c = v->child; c; c = c->next)
        if (!skip_key(c->string)) FT_TRY(map_json(c, fn, ctx, changed));
    return FT_OK;
}

int ft__dq_table_map(ft_dq_table *t, int64_t i, int field, ft_dq_map_fn fn, void *ctx) {
    char **cell = &t->cell[i * t->nfields + field];
    if (!*cell) return 0;
    int changed = 0, err = 0;
    if (t->json) {
        cJSON *obj = ((cJSON **)t->json)[i];
        cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, t->fields[field]);
        if (!v) return 0;
        int rc = map_json(v, fn, ctx, &changed);
        if (rc < 0) return ft_error(rc, "%s: out of memory while cleaning", t->path);
        if (changed) {
            char *s = json_value_text(v, &err);
            if (err) return ft_error(FT_ERR_NOMEM, "%s: out of memory", t->path);
            free(*cell);
            *cell = s;
        }
        return changed;
    }
    if (t->format == FT_DQ_DAILYDIALOG) {   /* one unit per turn */
        ft__sb o = {0};
        const char *s = *cell;
        while (*s) {
            const char *e = strchr(s, '\n');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            char *r = fn(ctx, s, n, &err);
            if (err) { ft__sb_free(&o); return ft_error(err, "%s: out of memory while cleaning", t->path); }
            const char *u = r ? r : s;
            size_t un = r ? strlen(r) : n;
            if (r && (un != n || memcmp(r, s, n))) changed = 1;
            if (un) {
                if (o.n) ft__sb_putc(&o, '\n');
                ft__sb_put(&o, u, un);
            } else changed = 1;
            free(r);
            s += n + (e != NULL);
        }
        if (!o.p) ft__sb_puts(&o, "");
        char *nt = ft__sb_take(&o, NULL);
        if (!nt) return ft_error(FT_ERR_NOMEM, "%s: out of memory", t->path);
        if (changed) { free(*cell); *cell = nt; } else free(nt);
        return changed;
    }
    char *r = fn(ctx, *cell, strlen(*cell), &err);
    if (err) return ft_error(err, "%s: out of memory while cleaning", t->path);
    if (!r) return 0;
    if (!strcmp(r, *cell)) { free(r); return 0; }
    free(*cell);
    *cell = r;
    return 1;
}

/* ---- writing ---- */
static void put_csv_field(ft__sb *o, const char *s, char delim) {
    int quote = *s == '"';
    for (const char *p = s; *p && !quote; p++) quote = *p == delim || *p == '"' || *p == '\n' || *p == '\r';
    if (!quote) { ft__sb_puts(o, s); return; }
    ft__sb_putc(o, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"') ft__sb_putc(o, '"');
        ft__sb_putc(o, *p);
    }
    ft__sb_putc(o, '"');
}

int ft__dq_table_render(const ft_dq_table *t, const uint8_t *keep, char **out, size_t *out_len) {
    const char *path = t->path;
    ft__sb o = {0};
    char delim = t->format == FT_DQ_TSV ? '\t' : ',';
    if (t->format == FT_DQ_CSV || t->format == FT_DQ_TSV) {
        for (int f = 0; f < t->nfields; f++) {
            if (f) ft__sb_putc(&o, delim);
            put_csv_field(&o, t->fields[f], delim);
        }
        ft__sb_putc(&o, '\n');
    }
    if (t->format == FT_DQ_JSON) ft__sb_puts(&o, "[\n");
    int first = 1;
    for (int64_t i = 0; i < t->n && !o.err; i++) {
        if (keep && !keep[i]) continue;
        if (t->format == FT_DQ_CSV || t->format == FT_DQ_TSV) {
            for (int f = 0; f < t->nfields; f++) {
                if (f) ft__sb_putc(&o, delim);
                const char *c = t->cell[i * t->nfields + f];
                if (c) put_csv_field(&o, c, delim);
            }
            ft__sb_putc(&o, '\n');
        } else if (t->format == FT_DQ_JSONL || t->format == FT_DQ_JSON) {
            char *js = cJSON_PrintUnformatted(((cJSON **)t->json)[i]);
            if (!js) { ft__sb_free(&o); return ft_error(FT_ERR_NOMEM, "%s: out of memory", path); }
            if (t->format == FT_DQ_JSON && !first) ft__sb_puts(&o, ",\n");
            ft__sb_puts(&o, js);
            if (t->format == FT_DQ_JSONL) ft__sb_putc(&o, '\n');
            free(js);
        } else {
            const char *c = t->cell[i * t->nfields];
            for (const char *p = c ? c : ""; *p; p++) {
                if (*p == '\n' && t->format == FT_DQ_DAILYDIALOG) ft__sb_puts(&o, " __eou__ ");
                else if (*p == '\n' || *p == '\r') ft__sb_putc(&o, ' ');
                else ft__sb_putc(&o, *p);
            }
            ft__sb_puts(&o, t->format == FT_DQ_DAILYDIALOG ? " __eou__\n" : "\n");
        }
        first = 0;
    }
    if (t->format == FT_DQ_JSON) ft__sb_puts(&o, "\n]\n");
    *out = ft__sb_take(&o, out_len);
    if (!*out) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    return FT_OK;
}

int ft_dq_table_write(const ft_dq_table *t, const uint8_t *keep, const char *path) {
    size_t n = 0;
    char *text = NULL;
    FT_TRY(ft__dq_table_render(t, keep, &text, &n));
    int rc = ft_file_write_atomic(path, text, n);
    free(text);
    return rc;
}
