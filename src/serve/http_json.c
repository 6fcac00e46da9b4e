/* http_json.c — checking JSON request bodies: UTF-8, syntax, field types and ranges, with messages that
 * name the field ("'max_tokens' must be an integer >= 0, got a string"). */
#include "serve/http_internal.h"
#include "core/json_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft__utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

void ft__utf8_sanitize(ft__sb *b, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* the longest valid prefix of one character: try 1..4 bytes */
        size_t len = 0;
        unsigned char c = (unsigned char)s[i];
        size_t want = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (i + want <= n && ft__utf8_valid(s + i, want)) len = want;
        if (len) { ft__sb_put(b, s + i, len); i += len; }
        else { ft__sb_puts(b, "\xEF\xBF\xBD"); i++; }
    }
}

double ft__http_f32(float x) {
    if (!isfinite(x)) return (double)x;
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

int ft__name_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 127) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':'))
            return 0;
    }
    return s[0] != '.';
}

static int fail(ft__jerr *err, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ft__jerr *err, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->param = param;
    return -1;
}

/* The byte offset of the first \u escape inside a string that is not 4 hex digits or is \u0000, else -1.
 * cJSON reads a bad \u escape as U+0000 and a string ends at its first NUL, so "\uZZZZ" or "ab\u0000cd" would
 * silently become a shorter string (found by tests/serve/hostile.py): such bodies are refused instead. */
static long bad_unicode_escape(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"') in_str = 1;
            continue;
        }
        if (s[i] == '"') in_str = 0;
        else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u') {
                int ok = i + 5 < n, zero = 1;
                for (size_t k = i + 2; ok && k < i + 6; k++) {
                    ok = (s[k] >= '0' && s[k] <= '9') || ((s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'f');
                    zero &= s[k] == '0';
                }
                if (!ok || zero) return (long)i;
            }
            i++;   /* the escaped character */
        }
    }
    return -1;
}

int ft__json_body(const char *body, size_t n, cJSON **out, ft__jerr *err) {
    *out = NULL;
    if (n == 0) return fail(err, NULL, "the request body is empty: expected a JSON object");
    if (!ft__utf8_valid(body, n)) return fail(err, NULL, "the request body is not valid UTF-8");
    long bad = bad_unicode_escape(body, n);
    if (bad >= 0) return fail(err, NULL, "the request body is not valid JSON: a \\u escape that is not 4 hex digits, or \\u0000 (which would cut the string), at byte %ld", bad);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, n, &end, 0);
    if (!j) {
        size_t at = end && end >= body && end <= body + n ? (size_t)(end - body) : 0;
        return fail(err, NULL, "the request body is not valid JSON (error near byte %zu)", at);
    }
    /* only whitespace may follow the value */
    for (const char *p = end; p && p < body + n; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(j);
            return fail(err, NULL, "the request body is not valid JSON (extra data at byte %zu)", (size_t)(p - body));
        }
    if (!cJSON_IsObject(j)) {
        const char *t = ft__json_type_name(j);
        cJSON_Delete(j);
        return fail(err, NULL, "the request body must be a JSON object, got %s", t);
    }
    *out = j;
    return 0;
}

static const cJSON *get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static void range_text(char *buf, size_t cap, double lo, double hi, int integer) {
    if (integer) {
        if (hi >= (double)LONG_MAX) snprintf(buf, cap, ">= %.0f", lo);
        else snprintf(buf, cap, "between %.0f and %.0f", lo, hi);
    } else {
        if (isinf(hi)) snprintf(buf, cap, ">= %g", lo);
        else snprintf(buf, cap, "between %g and %g", lo, hi);
    }
}

int ft__jv_int(const cJSON *o, const char *key, long lo, long hi, long def, long *out, ft__jerr *err) {
    *out = def;
    const cJSON *v = get(o, key);
    if (!v) return 0;
    char rt[96];
    range_text(rt, sizeof rt, (double)lo, (double)hi, 1);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble))
        return fail(err, key, "'%s' must be an integer %s, got %s", key, rt,
                    cJSON_IsNumber(v) ? "a fraction" : ft__json_type_name(v));
    double d = v->valuedouble;
    /* (double)LONG_MAX rounds up to 2^63: compare against 2^63 itself so the cast below stays defined */
    if (d < (double)lo || d > (double)hi || d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return fail(err, key, "'%s' must be an integer %s, got %.0f", key, rt, d);
    *out = (long)d;
    return 0;
}

int ft__jv_num(const cJSON *o, const char *key, double lo, double hi, double def, double *out, ft__jerr *err) {
    *out = def;
    const cJSON *v = get(o, key);
    if (!v) return 0;
    char rt[96];
    range_text(rt, sizeof rt, lo, hi, 0);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(err, key, "'%s' must be a number %s, got %s", key, rt, ft__json_type_name(v));
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(err, key, "'%s' must be a number %s, got %g", key, rt, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

int ft__jv_bool(const cJSON *o, const char *key, int def, int *out, ft__jerr *err) {
    *out = def;
    const cJSON *v = get(o, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return fail(err, key, "'%s' must be true or false, got %s", key, ft__json_type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

int ft__jv_str(const cJSON *o, const char *key, int required, int nonempty, const char **out, ft__jerr *err) {
    *out = NULL;
    const cJSON *v = get(o, key);
    if (!v) return required ? fail(err, key, "'%s' is required (a string)", key) : 0;
    if (!cJSON_IsString(v)) return fail(err, key, "'%s' must be a string, got %s", key, ft__json_type_name(v));
    if (nonempty && v->valuestring[0] == '\0') return fail(err, key, "'%s' must not be empty", key);
    *out = v->valuestring;
    return 0;
}

int ft__jv_known(const cJSON *o, const char *const *known, int skip_null, ft__jerr *err) {
    for (const cJSON *c = o ? o->child : NULL; c; c = c->next) {
        if (skip_null && cJSON_IsNull(c)) continue;
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = c->string && strcmp(c->string, *k) == 0;
        if (!ok) return fail(err, c->string, "unknown field '%.100s'", c->string ? c->string : "");
    }
    return 0;
}
