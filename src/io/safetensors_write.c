/* safetensors_write.c — ft_st_write: one safetensors file, atomically and deterministically.
 *
 * The header is compact JSON built here (no key sorting, no floats), in this order:
 *   {"__metadata__":{"k":"v",...},"t0":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"t1":...}
 * ("__metadata__" only when there are pairs), then spaces up to a multiple of 8 bytes, so the data
 * section starts 8-byte aligned. Tensors are stored contiguously in the order given. Equal inputs
 * give byte-identical files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "core/strbuf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this writer assumes a little-endian host"
#endif

static void sb_u64(ft__sb *b, unsigned long long v) { ft__sb_printf(b, "%llu", v); }
static void sb_json_str(ft__sb *b, const char *s) { ft__sb_put_json(b, s, strlen(s), 0); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Sorted copy of names; the first adjacent pair that is equal is a duplicate. */
static const char *find_duplicate(const char **names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static int check_inputs(const char *path, const ft_st_tensor *t, int n, const char *const *metadata, int n_meta,
                        uint64_t *sizes) {
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !metadata))
        return ft_error(FT_ERR_INVALID, "%s: bad tensor or metadata count (%d tensors, %d metadata pairs)", path, n, n_meta);
    for (int i = 0; i < 2 * n_meta; i++)
        if (!metadata[i]) return ft_error(FT_ERR_INVALID, "%s: metadata pair %d has a NULL %s", path, i / 2, i % 2 ? "value" : "key");
    for (int i = 0; i < n; i++) {
        const ft_st_tensor *x = &t[i];
        if (!x->name || !*x->name) return ft_error(FT_ERR_INVALID, "%s: tensor %d has no name", path, i);
        if (strcmp(x->name, "__metadata__") == 0)
            return ft_error(FT_ERR_INVALID, "%s: tensor %d: the name \"__metadata__\" is reserved", path, i);
        ft_dtype d = x->dtype;
        if (d != FT_F32 && d != FT_F16 && d != FT_BF16 && d != FT_I32 && d != FT_I64 && d != FT_I8 && d != FT_U8)
            return ft_error(FT_ERR_DTYPE, "%s: tensor '%s': dtype %s cannot be stored in safetensors (F32, F16, BF16, I32, I64, I8, U8)",
                            path, x->name, ft_dtype_name(d));
        if (x->ndim < 0 || x->ndim > FT_ST_MAX_DIMS)
            return ft_error(FT_ERR_INVALID, "%s: tensor '%s': ndim %d outside 0..%d", path, x->name, x->ndim, FT_ST_MAX_DIMS);
        uint64_t bytes = ft_dtype_size(d);
        for (int k = 0; k < x->ndim; k++) {
            if (x->shape[k] < 0)
                return ft_error(FT_ERR_INVALID, "%s: tensor '%s': negative dimension %lld", path, x->name, (long long)x->shape[k]);
            if (__builtin_mul_overflow(bytes, (uint64_t)x->shape[k], &bytes))
                return ft_error(FT_ERR_INVALID, "%s: tensor '%s': size overflows", path, x->name);
        }
        if (bytes > 0 && !x->data) return ft_error(FT_ERR_INVALID, "%s: tensor '%s': data is NULL", path, x->name);
        sizes[i] = bytes;
    }
    int nn = n > n_meta ? n : n_meta;
    const char **names = malloc((size_t)(nn ? nn : 1) * sizeof *names);
    if (!names) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    const char *dup = find_duplicate(names, n);
    int rc = dup ? ft_error(FT_ERR_INVALID, "%s: tensor name '%s' is given more than once", path, dup) : FT_OK;
    if (rc == FT_OK) {
        for (int i = 0; i < n_meta; i++) names[i] = metadata[2 * i];
        dup = find_duplicate(names, n_meta);
        if (dup) rc = ft_error(FT_ERR_INVALID, "%s: metadata key '%s' is given more than once", path, dup);
    }
    free(names);
    return rc;
}

int ft_st_write(const char *path, const ft_st_tensor *t, int n, const char *const *metadata, int n_meta) {
    if (!path || !*path) return ft_error(FT_ERR_INVALID, "ft_st_write: empty path");
    uint64_t *sizes = malloc((size_t)(n > 0 ? n : 1) * sizeof *sizes);
    if (!sizes) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    int rc = check_inputs(path, t, n, metadata, n_meta, sizes);
    if (rc < 0) { free(sizes); return rc; }

    ft__sb h = {0};
    ft__sb_puts(&h, "{");
    if (n_meta > 0) {
        ft__sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) ft__sb_puts(&h, ",");
            sb_json_str(&h, metadata[2 * i]);
            ft__sb_puts(&h, ":");
            sb_json_str(&h, metadata[2 * i + 1]);
        }
        ft__sb_puts(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) ft__sb_puts(&h, ",");
        sb_json_str(&h, t[i].name);
        ft__sb_puts(&h, ":{\"dtype\":\"");
        ft__sb_puts(&h, ft_dtype_name(t[i].dtype));
        ft__sb_puts(&h, "\",\"shape\":[");
        for (int k = 0; k < t[i].ndim; k++) {
            if (k) ft__sb_puts(&h, ",");
            sb_u64(&h, (unsigned long long)t[i].shape[k]);
        }
        ft__sb_puts(&h, "],\"data_offsets\":[");
        sb_u64(&h, off);
        ft__sb_puts(&h, ",");
        off += sizes[i];
        sb_u64(&h, off);
        ft__sb_puts(&h, "]}");
    }
    ft__sb_puts(&h, "}");
    while (h.n % 8) ft__sb_puts(&h, " ");
    if (h.err) { ft__sb_free(&h); free(sizes); return ft_error(FT_ERR_NOMEM, "%s: out of memory building the header", path); }

    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    ft_atomic_file f;
    rc = ft_atomic_open(&f, path);
    if (rc == FT_OK) rc = ft_atomic_write(&f, len8, 8);
    if (rc == FT_OK) rc = ft_atomic_write(&f, h.p, h.n);
    for (int i = 0; rc == FT_OK && i < n; i++) rc = ft_atomic_write(&f, t[i].data, (size_t)sizes[i]);
    if (rc == FT_OK) rc = ft_atomic_commit(&f);
    else if (f.fp || f.tmp[0]) ft_atomic_abort(&f);
    ft__sb_free(&h);
    free(sizes);
    return rc;
}
