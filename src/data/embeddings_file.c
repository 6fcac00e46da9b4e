/* embeddings_file.c — the embeddings + labels safetensors file of embeddings.h. */
#include "finetune/embeddings.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_embeddings_save(const char *path, const ft_embeddings *e, const char *const *metadata, int n_meta) {
    int64_t *src = e->source;
    if (!src) {
        src = malloc((size_t)(e->n ? e->n : 1) * sizeof *src);
        if (!src) return ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
        for (int64_t i = 0; i < e->n; i++) src[i] = i;
    }
    ft_st_tensor t[3] = {
        {"embeddings", FT_F32, 2, {e->n, e->C}, e->X},
        {"labels", FT_I32, 1, {e->n}, e->labels},
        {"source", FT_I64, 1, {e->n}, src},
    };
    const char **meta = calloc((size_t)(2 * n_meta + 2), sizeof *meta);
    char *id2label = NULL;
    int rc = meta ? FT_OK : ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
    int nm = 0;
    if (rc == FT_OK && e->label_map && e->label_map->n > 0) {
        rc = ft_label_map_to_json(e->label_map, &id2label);
        if (rc == FT_OK) { meta[0] = "id2label"; meta[1] = id2label; nm = 1; }
    }
    for (int i = 0; rc == FT_OK && i < n_meta; i++) {
        meta[2 * nm] = metadata[2 * i];
        meta[2 * nm + 1] = metadata[2 * i + 1];
        nm++;
    }
    if (rc == FT_OK) rc = ft_st_write(path, t, 3, meta, nm);
    free(id2label);
    free(meta);
    if (src != e->source) free(src);
    return rc;
}

void ft_embeddings_free(ft_embeddings *e) {
    free(e->X);
    free(e->labels);
    free(e->source);
    if (e->label_map) { ft_label_map_free(e->label_map); free(e->label_map); }
    memset(e, 0, sizeof *e);
}

int ft_embeddings_load(ft_embeddings *e, const char *path) {
    memset(e, 0, sizeof *e);
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, path));
    const ft_st_entry *x = ft_st_find(st, "embeddings"), *y = ft_st_find(st, "labels"), *s = ft_st_find(st, "source");
    int rc = FT_OK;
    if (!x || !y) rc = ft_error(FT_ERR_NOT_FOUND, "%s: no \"%s\" tensor (an embeddings file of finetune data balance)", path, x ? "labels" : "embeddings");
    else if (x->ndim != 2 || y->ndim != 1 || y->shape[0] != x->shape[0] || (s && (s->ndim != 1 || s->shape[0] != x->shape[0])) ||
             x->shape[1] <= 0 || x->shape[1] > 1 << 20)
        rc = ft_error(FT_ERR_SHAPE, "%s: embeddings [n, C], labels [n] and source [n] disagree", path);
    if (rc == FT_OK) {
        e->n = x->shape[0];
        e->C = (int)x->shape[1];
        size_t n = (size_t)(e->n ? e->n : 1);
        e->X = malloc(n * (size_t)e->C * sizeof *e->X);
        e->labels = malloc(n * sizeof *e->labels);
        e->source = malloc(n * sizeof *e->source);
        e->label_map = calloc(1, sizeof *e->label_map);
        if (!e->X || !e->labels || !e->source || !e->label_map) rc = ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
    }
    if (rc == FT_OK) rc = ft_st_read_f32(st, "embeddings", x->shape, 2, e->X);
    if (rc == FT_OK) rc = ft_st_read_i32(st, "labels", y->shape, 1, e->labels);
    if (rc == FT_OK) {
        if (s && s->dtype == FT_I64) memcpy(e->source, s->data, (size_t)e->n * sizeof *e->source);
        else for (int64_t i = 0; i < e->n; i++) e->source[i] = i;
    }
    int K = 0;
    for (int64_t i = 0; rc == FT_OK && i < e->n; i++) {
        if (e->labels[i] < 0 || e->labels[i] > 100000) rc = ft_error(FT_ERR_RANGE, "%s: row %lld has label %d", path, (long long)i, e->labels[i]);
        else if (e->labels[i] + 1 > K) K = e->labels[i] + 1;
    }
    if (rc == FT_OK) {
        const char *j = ft_st_metadata(st, "id2label");
        if (j) rc = ft_label_map_from_json(e->label_map, j, strlen(j), path);
        if (rc == FT_OK && (!j || e->label_map->n < K)) {
            ft_label_map_free(e->label_map);
            char **names = malloc((size_t)(K ? K : 1) * sizeof *names);
            char (*buf)[16] = malloc((size_t)(K ? K : 1) * sizeof *buf);
            if (!names || !buf) rc = ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
            for (int k = 0; rc == FT_OK && k < K; k++) { snprintf(buf[k], sizeof buf[k], "%d", k); names[k] = buf[k]; }
            if (rc == FT_OK) rc = ft_label_map_init(e->label_map, (const char *const *)names, K);
            free(names);
            free(buf);
        }
    }
    ft_st_close(st);
    if (rc != FT_OK) ft_embeddings_free(e);
    return rc;
}
