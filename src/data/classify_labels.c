/* classify_labels.c — ft_label_map: id <-> name, JSON as HF config.json's id2label / label2id. */
#include "finetune/classify_data.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_label_map_init(ft_label_map *m, const char *const *names, int n) {
    m->n = 0;
    m->names = NULL;
    if (n < 0) return ft_error(FT_ERR_INVALID, "label map: negative size %d", n);
    if (n == 0) return FT_OK;
    m->names = calloc((size_t)n, sizeof *m->names);
    if (!m->names) return ft_error(FT_ERR_NOMEM, "label map: out of memory");
    for (int i = 0; i < n; i++) {
        if (!names[i]) { ft_label_map_free(m); return ft_error(FT_ERR_INVALID, "label map: label %d has no name", i); }
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0) {
                ft_label_map_free(m);
                return ft_error(FT_ERR_INVALID, "label map: label '%s' appears twice (ids %d and %d)", names[i], j, i);
            }
        m->names[i] = strdup(names[i]);
        m->n = i + 1;
        if (!m->names[i]) { ft_label_map_free(m); return ft_error(FT_ERR_NOMEM, "label map: out of memory"); }
    }
    return FT_OK;
}

int ft_label_map_copy(ft_label_map *dst, const ft_label_map *src) {
    return ft_label_map_init(dst, (const char *const *)src->names, src->n);
}

void ft_label_map_free(ft_label_map *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    m->names = NULL;
    m->n = 0;
}

int ft_label_map_id(const ft_label_map *m, const char *name) {
    for (int i = 0; i < m->n; i++) if (strcmp(m->names[i], name) == 0) return i;
    return -1;
}

const char *ft_label_map_name(const ft_label_map *m, int id) {
    return id >= 0 && id < m->n ? m->names[id] : NULL;
}

int ft_label_map_to_json(const ft_label_map *m, char **out) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject(), *i2l = cJSON_CreateObject(), *l2i = cJSON_CreateObject();
    int ok = root && i2l && l2i;
    if (ok) { cJSON_AddItemToObject(root, "id2label", i2l); i2l = NULL; }
    if (ok) { cJSON_AddItemToObject(root, "label2id", l2i); l2i = NULL; }
    cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "id2label"), *b = cJSON_GetObjectItemCaseSensitive(root, "label2id");
    for (int i = 0; ok && i < m->n; i++) {
        char key[24];
        snprintf(key, sizeof key, "%d", i);
        ok = cJSON_AddStringToObject(a, key, m->names[i]) && cJSON_AddNumberToObject(b, m->names[i], i);
    }
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    cJSON_Delete(i2l);
    cJSON_Delete(l2i);
    if (!s) return ft_error(FT_ERR_NOMEM, "label map: out of memory");
    *out = s;
    return FT_OK;
}

static int parse_id(const char *s, int n) {
    if (!*s) return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
        if (v > 100000000) return -1;
    }
    return v < n ? (int)v : -1;
}

int ft_label_map_from_json(ft_label_map *m, const char *json, size_t len, const char *what) {
    m->n = 0;
    m->names = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return ft_error(FT_ERR_FORMAT, "%s: not valid JSON", what);
    cJSON *i2l = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    cJSON *l2i = cJSON_GetObjectItemCaseSensitive(root, "label2id");
    cJSON *src = cJSON_IsObject(i2l) ? i2l : cJSON_IsObject(l2i) ? l2i : NULL;
    int rc = FT_OK;
    if (!src) { rc = ft_error(FT_ERR_NOT_FOUND, "%s: no \"id2label\" or \"label2id\" object", what); goto done; }
    int n = cJSON_GetArraySize(src);
    const char **names = calloc((size_t)(n ? n : 1), sizeof *names);
    if (!names) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", what); goto done; }
    cJSON *it;
    cJSON_ArrayForEach(it, src) {
        int id;
        const char *name;
        if (src == i2l) {
            id = parse_id(it->string, n);
            name = cJSON_GetStringValue(it);
        } else {
            if (!ft__json_as_index(it, n, &id)) id = -1;
            name = it->string;
        }
        if (id < 0 || !name) {
            rc = ft_error(FT_ERR_FORMAT, "%s: %s entry '%s': ids must be 0..%d and names strings", what,
                          src == i2l ? "id2label" : "label2id", it->string ? it->string : "?", n - 1);
            break;
        }
        if (names[id]) { rc = ft_error(FT_ERR_FORMAT, "%s: id %d given twice", what, id); break; }
        names[id] = name;
    }
    if (rc == FT_OK) rc = ft_label_map_init(m, names, n);
    if (rc < 0 && rc != FT_ERR_FORMAT && rc != FT_ERR_NOMEM) ft_error_wrap(rc, "%s", what);
    free(names);
done:
    cJSON_Delete(root);
    return rc;
}

int ft_label_map_save(const ft_label_map *m, const char *path) {
    char *s;
    FT_TRY(ft_label_map_to_json(m, &s));
    size_t n = strlen(s);
    s[n] = 0;
    int rc = ft_file_write_atomic(path, s, n);
    free(s);
    return rc;
}

int ft_label_map_load(ft_label_map *m, const char *path) {
    char *buf;
    size_t len;
    m->n = 0;
    m->names = NULL;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    int rc = ft_label_map_from_json(m, buf, len, path);
    free(buf);
    return rc;
}
