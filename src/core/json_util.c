/* json_util.c — getters over cJSON objects (see json_util.h). */
#include "core/json_util.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

static const cJSON *member(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

int ft__json_int(const cJSON *o, const char *key, int def) {
    const cJSON *v = member(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
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
