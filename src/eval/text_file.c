/* text_file.c — the reader of `finetune score`'s inputs: one text per line, or JSONL with the text in a field
 * (a string, null, or a list of strings for several references on one line). The input is untrusted: every
 * line is checked for UTF-8 and NUL bytes, and every error names the file and the line
 * (textmetrics.h, "reading texts"). fuzz/fuzz_score.c runs it on arbitrary bytes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/textmetrics_internal.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

void ft_text_file_free(ft_text_file *f) {
    if (!f) return;
    if (f->text)
        for (size_t k = 0; k < (size_t)f->n * (size_t)f->n_cols; k++) free(f->text[k]);
    free(f->text);
    memset(f, 0, sizeof *f);
}

const char *const *ft_text_file_column(const ft_text_file *f, int c) {
    if (!f || !f->text || c < 0 || c >= f->n_cols) return NULL;
    return (const char *const *)(f->text + (size_t)c * (size_t)f->n);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* one line's values while parsing: up to n_vals strings (NULL = absent) */
typedef struct vals { char **v; int n, cap; } vals;

static int vals_push(vals *x, char *s) {
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 4;
        char **p = realloc(x->v, (size_t)cap * sizeof *p);
        if (!p) return FT_ERR_NOMEM;
        x->v = p;
        x->cap = cap;
    }
    x->v[x->n++] = s;
    return FT_OK;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

static int check_text(const char *s, size_t n, const char *name, int line) {
    if (memchr(s, 0, n)) return ft_error(FT_ERR_FORMAT, "%s:%d: contains a NUL byte", name, line);
    size_t bad = 0;
    if (!ft__tm_utf8_valid(s, n, &bad))
        return ft_error(FT_ERR_FORMAT, "%s:%d: not valid UTF-8 (byte 0x%02x at column %zu)", name, line,
                        (unsigned char)s[bad], bad + 1);
    return FT_OK;
}

/* the texts of one JSONL line into x */
static int jsonl_line(const char *s, size_t n, const char *name, int line, const char *const *fields, char *field,
                      size_t field_cap, vals *x) {
    char *tmp = dupn(s, n);
    if (!tmp) return FT_ERR_NOMEM;
    cJSON *o = cJSON_ParseWithLength(tmp, n);
    free(tmp);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ft_error(FT_ERR_FORMAT, "%s:%d: not a JSON object", name, line);
    }
    if (!field[0]) {  /* the first line decides the field */
        for (const char *const *f = fields; f && *f; f++)
            if (cJSON_GetObjectItemCaseSensitive(o, *f)) { snprintf(field, field_cap, "%s", *f); break; }
    }
    const cJSON *v = field[0] ? cJSON_GetObjectItemCaseSensitive(o, field) : NULL;
    int rc = FT_OK;
    if (!v) {
        char tried[256] = "";
        size_t w = 0;
        for (const char *const *f = fields; f && *f && w < sizeof tried; f++)
            w += (size_t)snprintf(tried + w, sizeof tried - w, "%s%s", w ? ", " : "", *f);
        rc = ft_error(FT_ERR_FORMAT, "%s:%d: no field \"%s\" (fields tried: %s)", name, line,
                      field[0] ? field : (fields && fields[0] ? fields[0] : ""), tried);
    } else if (cJSON_IsString(v)) {
        char *d = strdup(v->valuestring);
        rc = d ? vals_push(x, d) : FT_ERR_NOMEM;
        if (rc) free(d);
    } else if (cJSON_IsNull(v)) {
        rc = vals_push(x, NULL);
    } else if (cJSON_IsArray(v)) {
        int k = 0;
        for (const cJSON *e = v->child; e && rc == FT_OK; e = e->next, k++) {
            if (cJSON_IsNull(e)) { rc = vals_push(x, NULL); continue; }
            if (!cJSON_IsString(e)) {
                rc = ft_error(FT_ERR_FORMAT, "%s:%d: field \"%s\"[%d] is not a string", name, line, field, k);
                break;
            }
            char *d = strdup(e->valuestring);
            rc = d ? vals_push(x, d) : FT_ERR_NOMEM;
            if (rc) free(d);
        }
        if (rc == FT_OK && k == 0) rc = vals_push(x, NULL);
    } else {
        rc = ft_error(FT_ERR_FORMAT, "%s:%d: field \"%s\" is not a string, a list of strings or null", name, line, field);
    }
    cJSON_Delete(o);
    if (rc == FT_OK)
        for (int k = 0; k < x->n; k++)
            if (x->v[k]) FT_TRY(check_text(x->v[k], strlen(x->v[k]), name, line));
    return rc;
}

int ft_text_file_parse(ft_text_file *out, const char *data, size_t len, const char *name, ft_text_file_format fmt,
                       const char *const *fields) {
    if (!out) return ft_error(FT_ERR_INVALID, "text file: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && len) return ft_error(FT_ERR_INVALID, "text file: no data");
    if (!name) name = "<input>";
    /* line spans */
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += data[i] == '\n';
    if (len && data[len - 1] != '\n') n_lines++;
    if (n_lines > (size_t)INT32_MAX / 4) return ft_error(FT_ERR_RANGE, "%s: %zu lines (too many)", name, n_lines);
    int jsonl = fmt == FT_TEXT_FILE_JSONL;
    if (fmt == FT_TEXT_FILE_AUTO) {
        jsonl = ends_with(name, ".jsonl") || ends_with(name, ".ndjson");
        if (!jsonl && len) {
            const char *e = memchr(data, '\n', len);
            size_t l = e ? (size_t)(e - data) : len;
            size_t a = 0;
            while (a < l && (data[a] == ' ' || data[a] == '\t')) a++;
            if (a < l && data[a] == '{') {
                char *tmp = dupn(data, l);
                if (!tmp) return ft_error(FT_ERR_NOMEM, "%s: out of memory", name);
                cJSON *o = cJSON_ParseWithLength(tmp, l);
                jsonl = o && cJSON_IsObject(o);
                cJSON_Delete(o);
                free(tmp);
            }
        }
    }
    out->jsonl = jsonl;
    /* per line: its values, collected first (the column count is known at the end) */
    vals *lines = calloc(n_lines ? n_lines : 1, sizeof *lines);
    if (!lines) return ft_error(FT_ERR_NOMEM, "%s: out of memory for %zu lines", name, n_lines);
    int rc = FT_OK, cols = 1;
    size_t a = 0;
    for (size_t li = 0; li < n_lines && rc == FT_OK; li++) {
        const char *e = memchr(data + a, '\n', len - a);
        size_t b = e ? (size_t)(e - data) : len, l = b - a;
        if (l && data[a + l - 1] == '\r') l--;
        int line = (int)li + 1;
        if (jsonl) {
            rc = jsonl_line(data + a, l, name, line, fields, out->field, sizeof out->field, &lines[li]);
        } else {
            rc = check_text(data + a, l, name, line);
            if (rc == FT_OK) {
                char *d = dupn(data + a, l);
                rc = d ? vals_push(&lines[li], d) : FT_ERR_NOMEM;
                if (rc) free(d);
            }
        }
        if (rc == FT_OK && lines[li].n > cols) cols = lines[li].n;
        a = b + 1;
    }
    if (rc == FT_OK && (size_t)cols * (n_lines ? n_lines : 1) > (size_t)INT32_MAX) rc = FT_ERR_RANGE;
    if (rc == FT_OK) {
        out->text = calloc((size_t)cols * (n_lines ? n_lines : 1), sizeof *out->text);
        if (!out->text) rc = FT_ERR_NOMEM;
    }
    if (rc == FT_OK) {
        out->n = (int)n_lines;
        out->n_cols = cols;
        for (size_t li = 0; li < n_lines; li++)
            for (int c = 0; c < lines[li].n; c++) { out->text[(size_t)c * n_lines + li] = lines[li].v[c]; lines[li].v[c] = NULL; }
    }
    for (size_t li = 0; li < n_lines; li++) {
        for (int c = 0; c < lines[li].n; c++) free(lines[li].v[c]);
        free(lines[li].v);
    }
    free(lines);
    if (rc != FT_OK) {
        ft_text_file_free(out);
        if (rc == FT_ERR_NOMEM) return ft_error(rc, "%s: out of memory", name);
        if (rc == FT_ERR_RANGE) return ft_error(rc, "%s: too many texts", name);
        return rc;
    }
    return FT_OK;
}

int ft_text_file_read(ft_text_file *out, const char *path, ft_text_file_format fmt, const char *const *fields) {
    if (!out || !path) return ft_error(FT_ERR_INVALID, "text file: NULL argument");
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    if (!strcmp(path, "-")) {
        size_t cap = 1 << 16;
        data = malloc(cap);
        if (!data) return ft_error(FT_ERR_NOMEM, "stdin: out of memory");
        for (;;) {
            if (len == cap) {
                char *p = realloc(data, cap * 2);
                if (!p) { free(data); return ft_error(FT_ERR_NOMEM, "stdin: out of memory"); }
                data = p;
                cap *= 2;
            }
            ssize_t r = read(0, data + len, cap - len);
            if (r < 0) { free(data); return ft_error(FT_ERR_IO, "stdin: read failed"); }
            if (r == 0) break;
            len += (size_t)r;
        }
    } else {
        FT_TRY(ft_file_read_all(path, &data, &len));
    }
    int rc = ft_text_file_parse(out, data, len, !strcmp(path, "-") ? "<stdin>" : path, fmt, fields);
    free(data);
    return rc;
}
