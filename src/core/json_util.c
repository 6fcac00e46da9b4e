/* json_util.c — getters over cJSON objects (see json_util.h). */
#include "core/json_util.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *member(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

int ft__json_as_int(const cJSON *v, int def) {
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble)) return def;
    double d = v->valuedouble;   /* 1e300 would be undefined behaviour as an int */
    return d >= (double)INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
}

int ft__json_int(const cJSON *o, const char *key, int def) { return ft__json_as_int(member(o, key), def); }

int ft__json_as_index(const cJSON *v, int limit, int *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || !(d < (double)limit) || d != floor(d)) return 0;
    *out = (int)d;
    return 1;
}

double ft__json_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = member(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

const char *ft__json_str(const cJSON *o, const char *key, const char *def) {
    const cJSON *v = member(o, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

int ft__json_bool(const cJSON *o, const char *key, int def) {
    const cJSON *v = member(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

const char *ft__json_type_name(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "a list";
    return "an object";
}

const char *ft__json_token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    return ft__json_str(v, "content", NULL);
}

/* the member, NULL when absent or null */
static const cJSON *given(const cJSON *o, const char *key) {
    const cJSON *v = member(o, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* FT_OK when v is absent or of the wanted type, else the error naming the key */
static int check(const cJSON *v, int ok, const char *key, const char *want, const char *where) {
    if (!v || ok) return FT_OK;
    return ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be %s, got %s", where ? where : "JSON", key, want, ft__json_type_name(v));
}

int ft__json_get_int(const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = given(o, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
    int rc = check(v, cJSON_IsNumber(v), key, "an integer", where);
    if (rc == FT_OK && v && (d != floor(d) || d < (double)INT_MIN || d > (double)INT_MAX))
        rc = ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be an integer, got %.17g", where ? where : "JSON", key, d);
    *out = v && rc == FT_OK ? (int)d : def;
    return rc;
}

/* the shortest text that reads back as d (1e+300, not 1.0000000000000001e+300) */
static const char *num_text(char buf[32], double d) {
    if (d == floor(d) && fabs(d) < 1e15) { snprintf(buf, 32, "%.0f", d); return buf; }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return buf;
}

int ft__json_get_i64_in(const cJSON *o, const char *key, long long def, long long lo, long long hi, long long *out,
                        const char *where) {
    const cJSON *v = given(o, key);
    *out = def;
    if (!v) return FT_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    /* 2^63 is the first double past LLONG_MAX; the range test comes before the conversion */
    if (!cJSON_IsNumber(v) || d != floor(d) || !(d >= (double)lo) || !(d < 9223372036854775808.0) || (long long)d > hi) {
        if (!cJSON_IsNumber(v))
            return ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be an integer in [%lld, %lld], got %s", where ? where : "JSON", key, lo, hi,
                            ft__json_type_name(v));
        char nb[32];
        return ft_error(FT_ERR_FORMAT, "%s: \"%s\" is %s; it must be an integer in [%lld, %lld]", where ? where : "JSON", key,
                        num_text(nb, d), lo, hi);
    }
    *out = (long long)d;
    return FT_OK;
}

int ft__json_get_int_in(const cJSON *o, const char *key, int def, int lo, int hi, int *out, const char *where) {
    long long v;
    int rc = ft__json_get_i64_in(o, key, def, lo, hi, &v, where);
    *out = rc == FT_OK ? (int)v : def;
    return rc;
}

int ft__json_get_real_in(const cJSON *o, const char *key, double def, double lo, double hi, int open, double *out,
                         const char *where) {
    const cJSON *v = given(o, key);
    *out = def;
    if (!v) return FT_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    int lo_ok = (open & FT__JSON_LO_OPEN) ? d > lo : d >= lo, hi_ok = (open & FT__JSON_HI_OPEN) ? d < hi : d <= hi;
    if (!cJSON_IsNumber(v) || !isfinite(d) || !lo_ok || !hi_ok) {
        char range[96], nb[32], lb[32], hb[32];
        snprintf(range, sizeof range, "%c%s, %s%c", (open & FT__JSON_LO_OPEN) ? '(' : '[', num_text(lb, lo), num_text(hb, hi),
                 (open & FT__JSON_HI_OPEN) ? ')' : ']');
        if (!cJSON_IsNumber(v))
            return ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be a number in %s, got %s", where ? where : "JSON", key, range, ft__json_type_name(v));
        return ft_error(FT_ERR_FORMAT, "%s: \"%s\" is %s; it must be a finite number in %s", where ? where : "JSON", key, num_text(nb, d), range);
    }
    *out = d;
    return FT_OK;
}

int ft__json_get_num(const cJSON *o, const char *key, double def, double *out, const char *where) {
    const cJSON *v = given(o, key);
    int rc = check(v, cJSON_IsNumber(v), key, "a number", where);
    *out = v && rc == FT_OK ? v->valuedouble : def;
    return rc;
}

int ft__json_get_str(const cJSON *o, const char *key, const char *def, const char **out, const char *where) {
    const cJSON *v = given(o, key);
    int rc = check(v, cJSON_IsString(v), key, "a string", where);
    *out = v && rc == FT_OK ? v->valuestring : def;
    return rc;
}

int ft__json_get_bool(const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = given(o, key);
    int rc = check(v, cJSON_IsBool(v), key, "true or false", where);
    *out = v && rc == FT_OK ? cJSON_IsTrue(v) : def;
    return rc;
}
int ft__json_write_file(const cJSON *o, const char *path) {
    char *text = cJSON_Print(o);
    if (!text) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(text);
    text[n] = '\n';   /* over the NUL: the file ends with a newline */
    int rc = ft_file_write_atomic(path, text, n + 1);
    free(text);
    return rc;
}

int ft__json_parse_file(cJSON **out, const char *path) {
    *out = NULL;
    char *data;
    size_t n;
    FT_TRY(ft_file_read_all(path, &data, &n));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, n, &end, 0);
    if (!root) {
        size_t off = end && end >= data && end <= data + n ? (size_t)(end - data) : 0;
        int line = 1;
        for (size_t i = 0; i < off; i++) line += data[i] == '\n';
        free(data);
        return ft_error(FT_ERR_FORMAT, "%s: invalid JSON at line %d (byte %zu)", path, line, off);
    }
    free(data);
    *out = root;
    return FT_OK;
}
