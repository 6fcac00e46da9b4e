/* strindex.c — string -> id index with linear probing (strindex.h). */
#include "core/strindex.h"
#include "core/hash.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a, then mixed: the low bits pick the slot */
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return ft__mix64(h);
}

/* slot of key, or of the empty slot where it would go */
static uint32_t find(const ft__strindex *x, const char *key) {
    uint32_t k = (uint32_t)hash_str(key) & x->mask;
    while (x->keys[k] && strcmp(x->keys[k], key) != 0) k = (k + 1) & x->mask;
    return k;
}

static int grow(ft__strindex *x) {
    uint32_t cap = x->mask ? (x->mask + 1) * 2 : 64;
    if (cap == 0 || cap > (1u << 31)) return FT_ERR_NOMEM;
    ft__strindex y = {calloc(cap, sizeof *y.keys), malloc(sizeof(int) * cap), cap - 1, x->n};
    if (!y.keys || !y.ids) { free(y.keys); free(y.ids); return FT_ERR_NOMEM; }
    for (uint32_t i = 0; x->mask && i <= x->mask; i++)
        if (x->keys[i]) {
            uint32_t k = find(&y, x->keys[i]);
            y.keys[k] = x->keys[i];
            y.ids[k] = x->ids[i];
        }
    ft__strindex_free(x);
    *x = y;
    return FT_OK;
}

int ft__strindex_put(ft__strindex *x, const char *key, int id, int *prev) {
    *prev = -1;
    /* at most half full: probes stay short */
    if ((uint64_t)(x->n + 1) * 2 > (uint64_t)x->mask + 1 || !x->keys) FT_TRY(grow(x));
    uint32_t k = find(x, key);
    if (x->keys[k]) { *prev = x->ids[k]; return FT_OK; }
    x->keys[k] = key;
    x->ids[k] = id;
    x->n++;
    return FT_OK;
}

int ft__strindex_get(const ft__strindex *x, const char *key) {
    if (!x->keys || !key) return -1;
    uint32_t k = find(x, key);
    return x->keys[k] ? x->ids[k] : -1;
}

void ft__strindex_free(ft__strindex *x) {
    free(x->keys);
    free(x->ids);
    memset(x, 0, sizeof *x);
}
