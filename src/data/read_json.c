/* read_json.c — finds the records of a JSON / JSONL file and their line numbers.
 *
 * A small scanner walks the structure (strings, brackets, commas) without building a tree, so that
 * every record gets the line it starts on and one bad record does not hide the others; each record
 * is then parsed alone with cJSON. Layouts:
 *   [ rec, rec, ... ]                    a list of records
 *   { "topic": [ rec, ... ], ... }       an object whose array members hold records (fundialogues)
 *   { "messages": [...], ... }           one record (an object with a record key)
 *   rec \n rec \n ...                    JSONL: one record per non-empty line
 */
#include "data/data_internal.h"

#include <cjson/cJSON.h>
#include <string.h>

typedef struct jscan {
    const char *s;
    size_t n, i;
    int line;
} jscan;

static void js_ws(jscan *j) {
    while (j->i < j->n) {
        char ch = j->s[j->i];
        if (ch == '\n') j->line++;
        else if (ch != ' ' && ch != '\t' && ch != '\r') break;
        j->i++;
    }
}

/* at '"': moves past the closing quote */
static int js_string(jscan *j, const char *path) {
    int line0 = j->line;
    j->i++;
    while (j->i < j->n) {
        char ch = j->s[j->i++];
        if (ch == '\\') { if (j->i < j->n) j->i++; }
        else if (ch == '"') return FT_OK;
        else if (ch == '\n') j->line++;
    }
    return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: unterminated string", path, line0);
}

/* skips one value (balanced brackets, strings); stops after it */
static int js_value(jscan *j, const char *path) {
    js_ws(j);
    if (j->i >= j->n) return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: value expected, end of file", path, j->line);
    char ch = j->s[j->i];
    if (ch == '"') return js_string(j, path);
    if (ch == '{' || ch == '[') {
        int depth = 0, line0 = j->line;
        char opener = ch;
        while (j->i < j->n) {
            ch = j->s[j->i];
            if (ch == '"') { FT_TRY(js_string(j, path)); continue; }
            if (ch == '{' || ch == '[') depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0) { j->i++; return FT_OK; }
            } else if (ch == '\n') j->line++;
            j->i++;
        }
        return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: '%c' opened here is never closed", path, line0, opener);
    }
    if (ch == '}' || ch == ']' || ch == ',' || ch == ':')
        return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: unexpected '%c'", path, j->line, ch);
    while (j->i < j->n) {  /* number, true, false, null (validated by cJSON later) */
        ch = j->s[j->i];
        if (ch == ',' || ch == '}' || ch == ']' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') break;
        j->i++;
    }
    return FT_OK;
}

/* Parses s[a..b) as one record starting at `line`. A parse failure drops the record. */
static int one_record(ft_data_ctx *c, const char *s, size_t a, size_t b, int line, int64_t index) {
    c->st->read++;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s + a, b - a, &end, 0);
    if (!v) {
        int eline = line;
        if (end && end >= s + a && end <= s + b)
            for (const char *p = s + a; p < end; p++) eline += *p == '\n';
        if (eline != line)
            return ft__data_drop_record(c, FT_DROP_MALFORMED, line, index, NULL,
                                       "malformed JSON (parse error near line %d)", eline);
        return ft__data_drop_record(c, FT_DROP_MALFORMED, line, index, NULL, "malformed JSON");
    }
    int rc = ft__data_json_record(c, v, line, index);
    cJSON_Delete(v);
    return rc;
}

/* at '[': every element is a record */
static int read_array(ft_data_ctx *c, jscan *j, int64_t *index) {
    j->i++;
    js_ws(j);
    if (j->i < j->n && j->s[j->i] == ']') { j->i++; return FT_OK; }
    for (;;) {
        js_ws(j);
        size_t a = j->i;
        int line = j->line;
        FT_TRY(js_value(j, c->path));
        FT_TRY(one_record(c, j->s, a, j->i, line, (*index)++));
        js_ws(j);
        if (j->i >= j->n)
            return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: list not closed (']' expected)", c->path, j->line);
        char ch = j->s[j->i++];
        if (ch == ']') return FT_OK;
        if (ch != ',')
            return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: ',' or ']' expected after record %lld, found '%c'",
                            c->path, j->line, (long long)(*index - 1), ch);
    }
}

static int is_record_key(const char *k, size_t n) {
    static const char *keys[] = {"dialogue", "turns", "messages", "conversations", "instruction", "prompt",
                                 "completion", "text", "output"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strlen(keys[i]) == n && memcmp(keys[i], k, n) == 0) return 1;
    return 0;
}

/* at '{' at the top: one record, or a collection of record lists */
static int read_object(ft_data_ctx *c, jscan *j) {
    /* first pass: is any key a record key? */
    jscan k = *j;
    k.i++;
    int single = 0;
    for (;;) {
        js_ws(&k);
        if (k.i >= k.n) return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: object not closed", c->path, k.line);
        if (k.s[k.i] == '}') break;
        if (k.s[k.i] != '"')
            return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: key expected, found '%c'", c->path, k.line, k.s[k.i]);
        size_t ka = k.i + 1;
        FT_TRY(js_string(&k, c->path));
        if (is_record_key(k.s + ka, k.i - 1 - ka)) single = 1;
        js_ws(&k);
        if (k.i >= k.n || k.s[k.i] != ':')
            return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: ':' expected", c->path, k.line);
        k.i++;
        FT_TRY(js_value(&k, c->path));
        js_ws(&k);
        if (k.i < k.n && k.s[k.i] == ',') { k.i++; continue; }
        if (k.i < k.n && k.s[k.i] == '}') break;
        return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: ',' or '}' expected", c->path, k.line);
    }
    if (single) {
        size_t a = j->i;
        int line = j->line;
        FT_TRY(js_value(j, c->path));
        return one_record(c, j->s, a, j->i, line, 0);
    }
    int64_t index = 0, lists = 0;
    j->i++;
    for (;;) {
        js_ws(j);
        if (j->s[j->i] == '}') { j->i++; break; }
        FT_TRY(js_string(j, c->path));
        js_ws(j);
        j->i++; /* ':' (checked above) */
        js_ws(j);
        if (j->i < j->n && j->s[j->i] == '[') {
            FT_TRY(read_array(c, j, &index));
            lists++;
        } else {
            FT_TRY(js_value(j, c->path));
        }
        js_ws(j);
        if (j->s[j->i] == ',') j->i++;
    }
    if (lists == 0)
        return ft_error(FT_ERR_FORMAT, "%s: line 1: a JSON object with no record fields (dialogue, messages, "
                        "conversations, instruction, prompt, text) and no lists of records", c->path);
    return FT_OK;
}

static int read_jsonl(ft_data_ctx *c, const char *s, size_t n) {
    size_t i = 0;
    int line = 1;
    int64_t index = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        size_t a = i, b = e;
        while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) b--;
        if (b > a) FT_TRY(one_record(c, s, a, b, line, index++));
        i = e + 1;
        line++;
    }
    return FT_OK;
}

int ft__data_read_json(ft_data_ctx *c, const char *buf, size_t len, int jsonl) {
    jscan j = {buf, len, 0, 1};
    js_ws(&j);
    if (j.i >= len) return FT_OK;  /* empty file: no records (reported by the caller) */
    char ch = buf[j.i];
    if (!jsonl && ch == '{') {
        /* one object, or JSONL whose lines are objects: look past the first value */
        jscan k = j;
        if (js_value(&k, c->path) == FT_OK) {
            js_ws(&k);
            if (k.i < len) jsonl = 1;
        } else {
            jsonl = 1;  /* an unbalanced first line: read line by line to report it */
        }
    }
    if (jsonl) return read_jsonl(c, buf, len);
    if (ch == '[') {
        int64_t index = 0;
        FT_TRY(read_array(c, &j, &index));
    } else if (ch == '{') {
        FT_TRY(read_object(c, &j));
    } else {
        return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: a list '[' or an object '{' expected, found '%c'",
                        c->path, j.line, ch);
    }
    js_ws(&j);
    if (j.i < len)
        return ft_error(FT_ERR_FORMAT, "%s: line %d: malformed JSON: text after the end of the top-level value", c->path, j.line);
    return FT_OK;
}
