/* gguf_write.c — the GGUF v3 writer (gguf_write.h). Key/values are serialized into one buffer as
 * they are set (a replaced key is re-serialized at its place when the file is written); tensors keep
 * a pointer to their data, which is streamed into the file after the header. */
#include "finetune/gguf_write.h"
#include "finetune/fileio.h"
#include "finetune/gguf_quantize.h"
#include "finetune/status.h"
#include "core/strbuf.h"
#include "core/strindex.h"

#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF is written little-endian; this writer assumes a little-endian host"
#endif

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct kv_entry {
    char  *key;
    ft__sb value;          /* u32 type + the serialized value */
} kv_entry;

typedef struct tensor_entry {
    char       *name;
    uint32_t    type;
    int         n_dims;
    int64_t     ne[4];
    const void *data;
    size_t      nbytes;
    int         own;
} tensor_entry;

struct ft_gguf_writer {
    kv_entry     *kv;      int n_kv, cap_kv;
    tensor_entry *t;       int n_t, cap_t;
    ft__strindex  kv_index, t_index;
};

int ft_gguf_writer_create(ft_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "gguf writer: out of memory");
}

void ft_gguf_writer_free(ft_gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) { free(w->kv[i].key); ft__sb_free(&w->kv[i].value); }
    for (int i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].own) free((void *)w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    ft__strindex_free(&w->kv_index);
    ft__strindex_free(&w->t_index);
    free(w);
}

static void sb_u32(ft__sb *b, uint32_t v) { ft__sb_put(b, &v, 4); }
static void sb_u64(ft__sb *b, uint64_t v) { ft__sb_put(b, &v, 8); }
static void sb_gstr(ft__sb *b, const char *s, size_t n) { sb_u64(b, n); ft__sb_put(b, s, n); }

/* The entry for key: the existing one emptied, or a new one at the end. */
static int kv_slot(ft_gguf_writer *w, const char *key, ft__sb **out) {
    if (!key || !*key) return ft_error(FT_ERR_INVALID, "gguf writer: empty metadata key");
    int at = ft__strindex_get(&w->kv_index, key);
    if (at >= 0) {
        w->kv[at].value.n = 0;
        *out = &w->kv[at].value;
        return FT_OK;
    }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? 2 * w->cap_kv : 32;
        kv_entry *n = realloc(w->kv, (size_t)cap * sizeof *n);
        if (!n) return ft_error(FT_ERR_NOMEM, "gguf writer: out of memory");
        w->kv = n;
        w->cap_kv = cap;
    }
    kv_entry *e = &w->kv[w->n_kv];
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    int prev;
    if (!e->key || ft__strindex_put(&w->kv_index, e->key, w->n_kv, &prev) < 0) {
        free(e->key);
        return ft_error(FT_ERR_NOMEM, "gguf writer: out of memory");
    }
    w->n_kv++;
    *out = &e->value;
    return FT_OK;
}

static int kv_done(const ft__sb *b, const char *key) {
    return b->err ? ft_error(FT_ERR_NOMEM, "gguf writer: out of memory setting '%s'", key) : FT_OK;
}

static size_t scalar_bytes(ft_gguf_type t) {
    switch (t) {
    case FT_GGUF_UINT8: case FT_GGUF_INT8: case FT_GGUF_BOOL: return 1;
    case FT_GGUF_UINT16: case FT_GGUF_INT16: return 2;
    case FT_GGUF_UINT32: case FT_GGUF_INT32: case FT_GGUF_FLOAT32: return 4;
    case FT_GGUF_UINT64: case FT_GGUF_INT64: case FT_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int set_scalar(ft_gguf_writer *w, const char *key, ft_gguf_type t, const void *v) {
    ft__sb *b;
    FT_TRY(kv_slot(w, key, &b));
    sb_u32(b, (uint32_t)t);
    ft__sb_put(b, v, scalar_bytes(t));
    return kv_done(b, key);
}

#define SETTER(fn, ctype, gtype) \
    int fn(ft_gguf_writer *w, const char *key, ctype v) { return set_scalar(w, key, gtype, &v); }
SETTER(ft_gguf_writer_set_u8, uint8_t, FT_GGUF_UINT8)
SETTER(ft_gguf_writer_set_i8, int8_t, FT_GGUF_INT8)
SETTER(ft_gguf_writer_set_u16, uint16_t, FT_GGUF_UINT16)
SETTER(ft_gguf_writer_set_i16, int16_t, FT_GGUF_INT16)
SETTER(ft_gguf_writer_set_u32, uint32_t, FT_GGUF_UINT32)
SETTER(ft_gguf_writer_set_i32, int32_t, FT_GGUF_INT32)
SETTER(ft_gguf_writer_set_u64, uint64_t, FT_GGUF_UINT64)
SETTER(ft_gguf_writer_set_i64, int64_t, FT_GGUF_INT64)
SETTER(ft_gguf_writer_set_f32, float, FT_GGUF_FLOAT32)
SETTER(ft_gguf_writer_set_f64, double, FT_GGUF_FLOAT64)
#undef SETTER

int ft_gguf_writer_set_bool(ft_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return set_scalar(w, key, FT_GGUF_BOOL, &b);
}

int ft_gguf_writer_set_str(ft_gguf_writer *w, const char *key, const char *v) {
    if (!v) return ft_error(FT_ERR_INVALID, "gguf writer: NULL string for '%s'", key ? key : "?");
    ft__sb *b;
    FT_TRY(kv_slot(w, key, &b));
    sb_u32(b, FT_GGUF_STRING);
    sb_gstr(b, v, strlen(v));
    return kv_done(b, key);
}

int ft_gguf_writer_set_array(ft_gguf_writer *w, const char *key, ft_gguf_type elem_type, const void *data, uint64_t n) {
    size_t es = scalar_bytes(elem_type);
    if (!es) return ft_error(FT_ERR_INVALID, "gguf writer: '%s': arrays of %s are set with ft_gguf_writer_set_str_array or not at all",
                             key ? key : "?", ft_gguf_type_name(elem_type));
    if (n && !data) return ft_error(FT_ERR_INVALID, "gguf writer: '%s': NULL array data", key ? key : "?");
    if (n > (SIZE_MAX / 2) / es) return ft_error(FT_ERR_RANGE, "gguf writer: '%s': array too long", key ? key : "?");
    ft__sb *b;
    FT_TRY(kv_slot(w, key, &b));
    sb_u32(b, FT_GGUF_ARRAY);
    sb_u32(b, (uint32_t)elem_type);
    sb_u64(b, n);
    ft__sb_put(b, data, (size_t)n * es);
    return kv_done(b, key);
}

int ft_gguf_writer_set_str_array(ft_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens, uint64_t n) {
    if (n && !strs) return ft_error(FT_ERR_INVALID, "gguf writer: '%s': NULL string array", key ? key : "?");
    for (uint64_t i = 0; i < n; i++)
        if (!strs[i]) return ft_error(FT_ERR_INVALID, "gguf writer: '%s': string %llu is NULL", key ? key : "?", (unsigned long long)i);
    ft__sb *b;
    FT_TRY(kv_slot(w, key, &b));
    sb_u32(b, FT_GGUF_ARRAY);
    sb_u32(b, FT_GGUF_STRING);
    sb_u64(b, n);
    for (uint64_t i = 0; i < n; i++) sb_gstr(b, strs[i], lens ? lens[i] : strlen(strs[i]));
    return kv_done(b, key);
}

int ft_gguf_writer_add_tensor(ft_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                              const void *data, int own) {
    int rc = FT_OK;
    size_t nbytes = 0;
    if (!name || !*name) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor without a name"); goto fail; }
    if (strlen(name) >= 64) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor name '%s' is longer than ggml's 63 bytes", name); goto fail; }
    if (ft__strindex_get(&w->t_index, name) >= 0) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor '%s' added twice", name); goto fail; }
    if (n_dims < 1 || n_dims > 4 || !ne) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor '%s': %d dimensions (1..4)", name, n_dims); goto fail; }
    if (ft_gguf_type_block_size(type) <= 0) {
        rc = ft_error(FT_ERR_UNSUPPORTED, "gguf writer: tensor '%s': ggml type %u cannot be written (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K)", name, type);
        goto fail;
    }
    uint64_t rows = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor '%s': ne[%d] = %lld", name, d, (long long)ne[d]); goto fail; }
        if (d > 0) rows *= (uint64_t)ne[d];
    }
    size_t row = ft_gguf_type_row_bytes(type, ne[0]);
    if (!row) {
        rc = ft_error(FT_ERR_SHAPE, "gguf writer: tensor '%s': row length %lld is not a multiple of the block size %d",
                      name, (long long)ne[0], ft_gguf_type_block_size(type));
        goto fail;
    }
    nbytes = row * (size_t)rows;
    if (!data) { rc = ft_error(FT_ERR_INVALID, "gguf writer: tensor '%s': NULL data", name); goto fail; }
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        tensor_entry *n = realloc(w->t, (size_t)cap * sizeof *n);
        if (!n) { rc = ft_error(FT_ERR_NOMEM, "gguf writer: out of memory"); goto fail; }
        w->t = n;
        w->cap_t = cap;
    }
    tensor_entry *e = &w->t[w->n_t];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    int prev;
    if (!e->name || ft__strindex_put(&w->t_index, e->name, w->n_t, &prev) < 0) {
        free(e->name);
        rc = ft_error(FT_ERR_NOMEM, "gguf writer: out of memory");
        goto fail;
    }
    e->type = type;
    e->n_dims = n_dims;
    for (int d = 0; d < 4; d++) e->ne[d] = d < n_dims ? ne[d] : 1;
    e->data = data;
    e->nbytes = nbytes;
    e->own = own;
    w->n_t++;
    return FT_OK;
fail:
    if (own) free((void *)data);
    return rc;
}

int ft_gguf_writer_n_tensors(const ft_gguf_writer *w) { return w->n_t; }

uint64_t ft_gguf_writer_data_bytes(const ft_gguf_writer *w) {
    uint64_t n = 0;
    for (int i = 0; i < w->n_t; i++) n += w->t[i].nbytes;
    return n;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

int ft_gguf_writer_write(ft_gguf_writer *w, const char *path) {
    if (!path || !*path) return ft_error(FT_ERR_INVALID, "gguf writer: empty output path");
    uint64_t alignment = GGUF_DEFAULT_ALIGNMENT;
    int ai = ft__strindex_get(&w->kv_index, "general.alignment");
    if (ai >= 0) {
        const ft__sb *v = &w->kv[ai].value;
        uint32_t t, a = 0;
        memcpy(&t, v->p, 4);
        if (t == FT_GGUF_UINT32) memcpy(&a, v->p + 4, 4);
        if (t != FT_GGUF_UINT32 || a == 0 || (a & (a - 1)))
            return ft_error(FT_ERR_INVALID, "%s: general.alignment must be a power-of-two uint32", path);
        alignment = a;
    }
    ft__sb h = {0};
    ft__sb_put(&h, "GGUF", 4);
    sb_u32(&h, GGUF_VERSION);
    sb_u64(&h, (uint64_t)w->n_t);
    sb_u64(&h, (uint64_t)w->n_kv);
    for (int i = 0; i < w->n_kv; i++) {
        sb_gstr(&h, w->kv[i].key, strlen(w->kv[i].key));
        ft__sb_put(&h, w->kv[i].value.p, w->kv[i].value.n);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        const tensor_entry *e = &w->t[i];
        sb_gstr(&h, e->name, strlen(e->name));
        sb_u32(&h, (uint32_t)e->n_dims);
        for (int d = 0; d < e->n_dims; d++) sb_u64(&h, (uint64_t)e->ne[d]);
        sb_u32(&h, e->type);
        sb_u64(&h, off);
        off = align_up(off + e->nbytes, alignment);
    }
    static const uint8_t zeros[256];
    while (!h.err && h.n % alignment) {
        uint64_t gap = align_up(h.n, alignment) - h.n;
        ft__sb_put(&h, zeros, gap < sizeof zeros ? (size_t)gap : sizeof zeros);
    }
    if (h.err) { ft__sb_free(&h); return ft_error(FT_ERR_NOMEM, "%s: out of memory building the GGUF header", path); }

    ft_atomic_file f;
    int rc = ft_atomic_open(&f, path);
    if (rc == FT_OK) rc = ft_atomic_write(&f, h.p, h.n);
    for (int i = 0; rc == FT_OK && i < w->n_t; i++) {
        const tensor_entry *e = &w->t[i];
        rc = ft_atomic_write(&f, e->data, e->nbytes);
        uint64_t pad = align_up(e->nbytes, alignment) - e->nbytes;
        while (rc == FT_OK && pad > 0) {
            size_t chunk = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
            rc = ft_atomic_write(&f, zeros, chunk);
            pad -= chunk;
        }
    }
    if (rc == FT_OK) rc = ft_atomic_commit(&f);
    else if (f.fp || f.tmp[0]) ft_atomic_abort(&f);
    ft__sb_free(&h);
    return rc;
}
