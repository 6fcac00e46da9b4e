/* gguf.c — a bounds-checked GGUF v2/v3 reader (see convert.h).
 *
 * File layout (little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value },          string = u64 length + bytes (no NUL)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
 *   padding to `general.alignment` (default 32), then the data section; tensor offsets are
 *   relative to its start.
 * Every read goes through a cursor that checks the bytes are there, so a truncated or corrupt
 * file gives a message naming the file, the offset and the item being read. */
#include "finetune/convert.h"
#include "finetune/fileio.h"
#include "finetune/ggml_quant.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "core/strindex.h"
#include "quant/ggml_more.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 8

struct ft_gguf {
    char            path[4096];
    ft_mmap         map;
    uint32_t        version;
    uint64_t        alignment;
    size_t          data_start;
    int             n_kv;
    ft_gguf_kv     *kv;
    int             n_tensors;
    ft_gguf_tensor *tensors;
    void          **owned;      /* NUL-terminated string copies etc., freed at close */
    size_t          n_owned, cap_owned;
    ft__strindex    kv_index, tensor_index;   /* key / name -> position: duplicate checks and lookups in O(1) */
};

/* ---- ggml type table: block size (elements) and bytes per block ---- */
typedef struct { const char *name; int blck; int size; } ggml_type_info;
static const ggml_type_info k_ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98},[19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136},[24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES ((uint32_t)(sizeof k_ggml_types / sizeof k_ggml_types[0]))

const char *ft_ggml_type_name(uint32_t type) {
    static _Thread_local char buf[32];
    if (type < N_GGML_TYPES && k_ggml_types[type].name) return k_ggml_types[type].name;
    snprintf(buf, sizeof buf, "type %u", type);
    return buf;
}

const char *ft_gguf_type_name(ft_gguf_type t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case FT_GGUF_UINT8: case FT_GGUF_INT8: case FT_GGUF_BOOL: return 1;
    case FT_GGUF_UINT16: case FT_GGUF_INT16: return 2;
    case FT_GGUF_UINT32: case FT_GGUF_INT32: case FT_GGUF_FLOAT32: return 4;
    case FT_GGUF_UINT64: case FT_GGUF_INT64: case FT_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---- cursor ---- */
typedef struct { const uint8_t *p; size_t pos, size; const char *path; } cursor;

static int need(cursor *c, size_t n, const char *what) {
    if (c->size - c->pos < n)
        return ft_error(FT_ERR_FORMAT, "%s: truncated GGUF file: %s at offset %zu needs %zu bytes, only %zu left (file is %zu bytes)",
                        c->path, what, c->pos, n, c->size - c->pos, c->size);
    return FT_OK;
}
static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    FT_TRY(need(c, 4, what)); memcpy(v, c->p + c->pos, 4); c->pos += 4; return FT_OK;
}
static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    FT_TRY(need(c, 8, what)); memcpy(v, c->p + c->pos, 8); c->pos += 8; return FT_OK;
}

static int own(ft_gguf *g, void *p) {
    if (!p) return ft_error(FT_ERR_NOMEM, "%s: out of memory", g->path);
    if (g->n_owned == g->cap_owned) {
        size_t cap = g->cap_owned ? 2 * g->cap_owned : 64;
        void **n = realloc(g->owned, cap * sizeof *n);
        if (!n) { free(p); return ft_error(FT_ERR_NOMEM, "%s: out of memory", g->path); }
        g->owned = n; g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = p;
    return FT_OK;
}

/* Reads a string; *out (if out) is a NUL-terminated copy owned by g. */
static int rd_str(ft_gguf *g, cursor *c, const char **out, const char *what) {
    uint64_t n;
    FT_TRY(rd_u64(c, &n, what));
    if (n > c->size - c->pos)
        return ft_error(FT_ERR_FORMAT, "%s: truncated GGUF file: %s at offset %zu claims %llu bytes, only %zu left",
                        c->path, what, c->pos - 8, (unsigned long long)n, c->size - c->pos);
    if (out) {
        char *s = malloc((size_t)n + 1);
        FT_TRY(own(g, s));
        memcpy(s, c->p + c->pos, (size_t)n);
        s[n] = 0;
        *out = s;
    }
    c->pos += (size_t)n;
    return FT_OK;
}

/* Skips `count` elements of type t (validating nested arrays / strings). */
static int skip_values(ft_gguf *g, cursor *c, uint32_t t, uint64_t count, int depth, const char *key) {
    size_t es = scalar_size(t);
    if (es) {
        if (count > (c->size - c->pos) / es)
            return ft_error(FT_ERR_FORMAT, "%s: truncated GGUF file: array '%s' of %llu %s at offset %zu runs past the end (%zu bytes left)",
                            c->path, key, (unsigned long long)count, ft_gguf_type_name((ft_gguf_type)t), c->pos, c->size - c->pos);
        c->pos += (size_t)count * es;
        return FT_OK;
    }
    if (t == FT_GGUF_STRING) {
        if (count > (c->size - c->pos) / 8)
            return ft_error(FT_ERR_FORMAT, "%s: truncated GGUF file: string array '%s' of %llu elements at offset %zu cannot fit in %zu bytes",
                            c->path, key, (unsigned long long)count, c->pos, c->size - c->pos);
        for (uint64_t i = 0; i < count; i++) FT_TRY(rd_str(g, c, NULL, key));
        return FT_OK;
    }
    if (t == FT_GGUF_ARRAY) {
        if (depth >= GGUF_MAX_ARRAY_DEPTH)
            return ft_error(FT_ERR_FORMAT, "%s: key '%s': arrays nested deeper than %d", c->path, key, GGUF_MAX_ARRAY_DEPTH);
        if (count > (c->size - c->pos) / 12)
            return ft_error(FT_ERR_FORMAT, "%s: truncated GGUF file: array '%s' of %llu arrays at offset %zu cannot fit in %zu bytes",
                            c->path, key, (unsigned long long)count, c->pos, c->size - c->pos);
        for (uint64_t i = 0; i < count; i++) {
            uint32_t et; uint64_t n;
            FT_TRY(rd_u32(c, &et, key));
            FT_TRY(rd_u64(c, &n, key));
            if (et > FT_GGUF_FLOAT64)
                return ft_error(FT_ERR_FORMAT, "%s: key '%s': nested array has unknown element type %u", c->path, key, et);
            FT_TRY(skip_values(g, c, et, n, depth + 1, key));
        }
        return FT_OK;
    }
    return ft_error(FT_ERR_FORMAT, "%s: key '%s': unknown value type %u at offset %zu", c->path, key, t, c->pos);
}

static int read_kv(ft_gguf *g, cursor *c, ft_gguf_kv *kv, uint64_t idx) {
    char what[64];
    snprintf(what, sizeof what, "key of metadata entry %llu", (unsigned long long)idx);
    FT_TRY(rd_str(g, c, &kv->key, what));
    uint32_t t;
    FT_TRY(rd_u32(c, &t, kv->key));
    if (t > FT_GGUF_FLOAT64)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' has unknown value type %u (offset %zu)", c->path, kv->key, t, c->pos - 4);
    kv->type = (ft_gguf_type)t;
    size_t es = scalar_size(t);
    if (es) {
        FT_TRY(need(c, es, kv->key));
        const uint8_t *p = c->p + c->pos;
        switch (t) {
        case FT_GGUF_UINT8:  kv->v.u = p[0]; break;
        case FT_GGUF_INT8:   kv->v.i = (int8_t)p[0]; break;
        case FT_GGUF_BOOL:   kv->v.u = p[0] != 0; break;
        case FT_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); kv->v.u = x; break; }
        case FT_GGUF_INT16:  { int16_t x; memcpy(&x, p, 2); kv->v.i = x; break; }
        case FT_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); kv->v.u = x; break; }
        case FT_GGUF_INT32:  { int32_t x; memcpy(&x, p, 4); kv->v.i = x; break; }
        case FT_GGUF_FLOAT32:{ float x; memcpy(&x, p, 4); kv->v.f = x; break; }
        case FT_GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); kv->v.u = x; break; }
        case FT_GGUF_INT64:  { int64_t x; memcpy(&x, p, 8); kv->v.i = x; break; }
        case FT_GGUF_FLOAT64:{ double x; memcpy(&x, p, 8); kv->v.f = x; break; }
        }
        c->pos += es;
        return FT_OK;
    }
    if (t == FT_GGUF_STRING) return rd_str(g, c, &kv->str, kv->key);
    /* array */
    uint32_t et; uint64_t n;
    FT_TRY(rd_u32(c, &et, kv->key));
    FT_TRY(rd_u64(c, &n, kv->key));
    if (et > FT_GGUF_FLOAT64)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s': array of unknown element type %u", c->path, kv->key, et);
    kv->arr_type = (ft_gguf_type)et;
    kv->arr_n = n;
    kv->arr_data = c->p + c->pos;
    return skip_values(g, c, et, n, 1, kv->key);
}

static int read_tensor_info(ft_gguf *g, cursor *c, ft_gguf_tensor *t, uint64_t idx) {
    char what[64];
    snprintf(what, sizeof what, "name of tensor info %llu", (unsigned long long)idx);
    FT_TRY(rd_str(g, c, &t->name, what));
    uint32_t nd;
    FT_TRY(rd_u32(c, &nd, t->name));
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (expected 1..%d)", c->path, t->name, nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        FT_TRY(rd_u64(c, &ne, t->name));
        if (ne == 0 || ne > (uint64_t)INT64_MAX / 2 || numel > ((uint64_t)1 << 62) / ne)
            return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': absurd dimension ne[%u] = %llu", c->path, t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        numel *= ne;
    }
    for (int d = (int)nd; d < 4; d++) t->ne[d] = 1;
    FT_TRY(rd_u32(c, &t->type, t->name));
    FT_TRY(rd_u64(c, &t->offset, t->name));
    if (t->type >= N_GGML_TYPES || !k_ggml_types[t->type].name)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown ggml type id %u", c->path, t->name, t->type);
    const ggml_type_info *ti = &k_ggml_types[t->type];
    if (t->ne[0] % ti->blck != 0)
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': row length %lld is not a multiple of the %s block size %d",
                        c->path, t->name, (long long)t->ne[0], ti->name, ti->blck);
    t->nbytes = (size_t)(numel / (uint64_t)ti->blck * (uint64_t)ti->size);
    return FT_OK;
}

int ft_gguf_open(ft_gguf **out, const char *path) {
    *out = NULL;
    ft_gguf *g = calloc(1, sizeof *g);
    if (!g) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(g->path, sizeof g->path, "%s", path);
    int rc = ft_file_map(&g->map, path);
    if (rc < 0) { free(g); return rc; }
    cursor c = {(const uint8_t *)g->map.data, 0, g->map.size, g->path};

    if (c.size < 4 || memcmp(c.p, "GGUF", 4) != 0) {
        rc = c.size < 4 ? ft_error(FT_ERR_FORMAT, "%s: not a GGUF file (only %zu bytes)", path, c.size)
                        : ft_error(FT_ERR_FORMAT, "%s: not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")",
                                   path, c.p[0], c.p[1], c.p[2], c.p[3]);
        goto fail;
    }
    c.pos = 4;
    if ((rc = rd_u32(&c, &g->version, "version")) < 0) goto fail;
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && (g->version >> 16) != 0)
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: big-endian GGUF (version field 0x%08x) is not supported", path, g->version);
        else
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: unsupported GGUF version %u (this reader handles versions 2 and 3)", path, g->version);
        goto fail;
    }
    uint64_t nt, nkv;
    if ((rc = rd_u64(&c, &nt, "tensor count")) < 0 || (rc = rd_u64(&c, &nkv, "metadata count")) < 0) goto fail;
    /* each kv takes >= 8+4+1 bytes, each tensor info >= 8+4+8+4+8 bytes */
    if (nkv > (c.size - c.pos) / 13 || nkv > INT32_MAX) {
        rc = ft_error(FT_ERR_FORMAT, "%s: truncated or corrupt GGUF file: header claims %llu metadata entries, which cannot fit in the %zu bytes of the file",
                      path, (unsigned long long)nkv, c.size);
        goto fail;
    }
    if (nt > (c.size - c.pos) / 32 || nt > INT32_MAX) {
        rc = ft_error(FT_ERR_FORMAT, "%s: truncated or corrupt GGUF file: header claims %llu tensors, which cannot fit in the %zu bytes of the file",
                      path, (unsigned long long)nt, c.size);
        goto fail;
    }
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail; }

    for (uint64_t i = 0; i < nkv; i++) {
        if ((rc = read_kv(g, &c, &g->kv[i], i)) < 0) goto fail;
        g->n_kv = (int)i + 1;
        int prev;
        if (ft__strindex_put(&g->kv_index, g->kv[i].key, (int)i, &prev) < 0) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
        if (prev >= 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: duplicate metadata key '%s'", path, g->kv[i].key);
            goto fail;
        }
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ft_gguf_kv *al = ft_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != FT_GGUF_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: general.alignment must be a power-of-two uint32 (got %s %llu)",
                          path, ft_gguf_type_name(al->type), (unsigned long long)al->v.u);
            goto fail;
        }
        g->alignment = al->v.u;
    }
    for (uint64_t i = 0; i < nt; i++) {
        if ((rc = read_tensor_info(g, &c, &g->tensors[i], i)) < 0) goto fail;
        g->n_tensors = (int)i + 1;
        int prev;
        if (ft__strindex_put(&g->tensor_index, g->tensors[i].name, (int)i, &prev) < 0) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
        if (prev >= 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, g->tensors[i].name);
            goto fail;
        }
    }
    g->data_start = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    for (int i = 0; i < g->n_tensors; i++) {
        ft_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                          path, t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        size_t avail = c.size > g->data_start ? c.size - g->data_start : 0;
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            rc = ft_error(FT_ERR_FORMAT, "%s: tensor '%s' data [%zu, %zu) lies past the end of the file (%zu bytes): truncated file?",
                          path, t->name, g->data_start + (size_t)t->offset,
                          g->data_start + (size_t)t->offset + t->nbytes, c.size);
            goto fail;
        }
        t->data = c.p + g->data_start + t->offset;
    }
    *out = g;
    return FT_OK;
fail:
    ft_gguf_close(g);
    return rc;
}

void ft_gguf_close(ft_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    free(g->kv);
    free(g->tensors);
    ft__strindex_free(&g->kv_index);
    ft__strindex_free(&g->tensor_index);
    ft_file_unmap(&g->map);
    free(g);
}

const char *ft_gguf_path(const ft_gguf *g) { return g->path; }
uint32_t ft_gguf_version(const ft_gguf *g) { return g->version; }
int ft_gguf_n_kv(const ft_gguf *g) { return g->n_kv; }
const ft_gguf_kv *ft_gguf_kv_at(const ft_gguf *g, int i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }
int ft_gguf_n_tensors(const ft_gguf *g) { return g->n_tensors; }
const ft_gguf_tensor *ft_gguf_tensor_at(const ft_gguf *g, int i) { return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL; }

const ft_gguf_kv *ft_gguf_find_kv(const ft_gguf *g, const char *key) {
    int i = ft__strindex_get(&g->kv_index, key);
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const ft_gguf_tensor *ft_gguf_find_tensor(const ft_gguf *g, const char *name) {
    int i = ft__strindex_get(&g->tensor_index, name);
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

/* ---- typed getters ---- */
static int is_int_type(ft_gguf_type t) {
    return t == FT_GGUF_UINT8 || t == FT_GGUF_INT8 || t == FT_GGUF_UINT16 || t == FT_GGUF_INT16 ||
           t == FT_GGUF_UINT32 || t == FT_GGUF_INT32 || t == FT_GGUF_UINT64 || t == FT_GGUF_INT64 || t == FT_GGUF_BOOL;
}
static int is_unsigned(ft_gguf_type t) {
    return t == FT_GGUF_UINT8 || t == FT_GGUF_UINT16 || t == FT_GGUF_UINT32 || t == FT_GGUF_UINT64 || t == FT_GGUF_BOOL;
}

static int kv_int(const ft_gguf *g, const ft_gguf_kv *kv, int64_t *out) {
    if (!is_int_type(kv->type))
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is a %s, expected an integer", g->path, kv->key, ft_gguf_type_name(kv->type));
    if (is_unsigned(kv->type)) {
        if (kv->v.u > (uint64_t)INT64_MAX)
            return ft_error(FT_ERR_RANGE, "%s: metadata key '%s' = %llu is out of range", g->path, kv->key, (unsigned long long)kv->v.u);
        *out = (int64_t)kv->v.u;
    } else {
        *out = kv->v.i;
    }
    return FT_OK;
}

int ft_gguf_get_int(const ft_gguf *g, const char *key, int64_t *out) {
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) return ft_error(FT_ERR_NOT_FOUND, "%s: missing metadata key '%s'", g->path, key);
    return kv_int(g, kv, out);
}

int ft_gguf_get_int_opt(const ft_gguf *g, const char *key, int64_t def, int64_t *out) {
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) { *out = def; return FT_OK; }
    return kv_int(g, kv, out);
}

static int kv_float(const ft_gguf *g, const ft_gguf_kv *kv, double *out) {
    if (kv->type == FT_GGUF_FLOAT32 || kv->type == FT_GGUF_FLOAT64) { *out = kv->v.f; return FT_OK; }
    int64_t i = 0;
    if (is_int_type(kv->type) && kv_int(g, kv, &i) == FT_OK) { *out = (double)i; return FT_OK; }
    return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is a %s, expected a number", g->path, kv->key, ft_gguf_type_name(kv->type));
}

int ft_gguf_get_float(const ft_gguf *g, const char *key, double *out) {
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) return ft_error(FT_ERR_NOT_FOUND, "%s: missing metadata key '%s'", g->path, key);
    return kv_float(g, kv, out);
}

int ft_gguf_get_float_opt(const ft_gguf *g, const char *key, double def, double *out) {
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) { *out = def; return FT_OK; }
    return kv_float(g, kv, out);
}

int ft_gguf_get_str(const ft_gguf *g, const char *key, const char **out) {
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) return ft_error(FT_ERR_NOT_FOUND, "%s: missing metadata key '%s'", g->path, key);
    if (kv->type != FT_GGUF_STRING)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is a %s, expected a string", g->path, key, ft_gguf_type_name(kv->type));
    *out = kv->str;
    return FT_OK;
}

static int find_array(const ft_gguf *g, const char *key, const ft_gguf_kv **out) {
    *out = NULL;
    const ft_gguf_kv *kv = ft_gguf_find_kv(g, key);
    if (!kv) return ft_error(FT_ERR_NOT_FOUND, "%s: missing metadata key '%s'", g->path, key);
    if (kv->type != FT_GGUF_ARRAY)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is a %s, expected an array", g->path, key, ft_gguf_type_name(kv->type));
    *out = kv;
    return FT_OK;
}

int ft_gguf_get_str_array(const ft_gguf *g, const char *key, const char ***out, int64_t *n) {
    *out = NULL; *n = 0;
    const ft_gguf_kv *kv;
    FT_TRY(find_array(g, key, &kv));
    if (kv->arr_type != FT_GGUF_STRING)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is an array of %s, expected strings", g->path, key, ft_gguf_type_name(kv->arr_type));
    const char **arr = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *arr);
    if (!arr) return ft_error(FT_ERR_NOMEM, "%s: out of memory", g->path);
    /* validated at open: every length is in bounds */
    cursor c = {(const uint8_t *)g->map.data, (size_t)((const uint8_t *)kv->arr_data - (const uint8_t *)g->map.data), g->map.size, g->path};
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int rc = rd_str((ft_gguf *)g, &c, &arr[i], key);
        if (rc < 0) { free(arr); return rc; }
    }
    *out = arr;
    *n = (int64_t)kv->arr_n;
    return FT_OK;
}

static double scalar_at(const void *base, ft_gguf_type t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)base + i * scalar_size(t);
    switch (t) {
    case FT_GGUF_UINT8: case FT_GGUF_BOOL: return p[0];
    case FT_GGUF_INT8: return (int8_t)p[0];
    case FT_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case FT_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case FT_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case FT_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case FT_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); return x; }
    case FT_GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    case FT_GGUF_INT64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case FT_GGUF_FLOAT64: { double x; memcpy(&x, p, 8); return x; }
    default: return 0;
    }
}

int ft_gguf_get_f32_array(const ft_gguf *g, const char *key, float **out, int64_t *n) {
    *out = NULL; *n = 0;
    const ft_gguf_kv *kv;
    FT_TRY(find_array(g, key, &kv));
    if (!scalar_size(kv->arr_type))
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is an array of %s, expected numbers", g->path, key, ft_gguf_type_name(kv->arr_type));
    float *a = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *a);
    if (!a) return ft_error(FT_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < kv->arr_n; i++) a[i] = (float)scalar_at(kv->arr_data, kv->arr_type, i);
    *out = a;
    *n = (int64_t)kv->arr_n;
    return FT_OK;
}

int ft_gguf_get_i32_array(const ft_gguf *g, const char *key, int32_t **out, int64_t *n) {
    *out = NULL; *n = 0;
    const ft_gguf_kv *kv;
    FT_TRY(find_array(g, key, &kv));
    if (!is_int_type(kv->arr_type))
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' is an array of %s, expected integers", g->path, key, ft_gguf_type_name(kv->arr_type));
    int32_t *a = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *a);
    if (!a) return ft_error(FT_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        double v = scalar_at(kv->arr_data, kv->arr_type, i);
        if (v < INT32_MIN || v > INT32_MAX) {
            free(a);
            return ft_error(FT_ERR_RANGE, "%s: metadata key '%s'[%llu] = %.0f does not fit in int32", g->path, key, (unsigned long long)i, v);
        }
        a[i] = (int32_t)v;
    }
    *out = a;
    *n = (int64_t)kv->arr_n;
    return FT_OK;
}

int ft_gguf_read_f32(const ft_gguf *g, const char *name, const int64_t *ne, int n_dims, float *dst) {
    const ft_gguf_tensor *t = ft_gguf_find_tensor(g, name);
    if (!t) return ft_error(FT_ERR_NOT_FOUND, "%s: missing tensor '%s'", g->path, name);
    int same = t->n_dims == n_dims;
    for (int d = 0; same && d < n_dims; d++) same = t->ne[d] == ne[d];
    if (!same) {
        char got[96] = "", exp[96] = "";
        for (int d = 0; d < t->n_dims; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        for (int d = 0; d < n_dims; d++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", d ? ", " : "", (long long)ne[d]);
        return ft_error(FT_ERR_SHAPE, "%s: tensor '%s' has ne = (%s), expected (%s)", g->path, name, got, exp);
    }
    size_t n = 1;
    for (int d = 0; d < n_dims; d++) n *= (size_t)ne[d];
    const uint8_t *src = t->data;
    switch (t->type) {
    case FT_GGML_F32:
        memcpy(dst, src, n * sizeof(float));
        return FT_OK;
    case FT_GGML_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = ft_f16_to_f32(h); }
        return FT_OK;
    case FT_GGML_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = ft_bf16_to_f32(h); }
        return FT_OK;
    case FT_GGML_Q8_0: case FT_GGML_Q4_0: case FT_GGML_Q4_K:
        if (ne[0] % ft_ggml_block_values((int)t->type))
            return ft_error(FT_ERR_FORMAT, "%s: tensor '%s' of type %s has rows of %lld values, not a multiple of its block", g->path, name,
                            ft_ggml_type_name(t->type), (long long)ne[0]);
        ft_ggml_dequantize_row_ref((int)t->type, src, dst, (int64_t)n);
        return FT_OK;
    default: {
        int bv, bb;
        if (ft__ggml_more_block((int)t->type, &bv, &bb)) {   /* Q4_1, Q5_0, Q5_1, Q5_K, Q6_K: read as f32 */
            if (ne[0] % bv)
                return ft_error(FT_ERR_FORMAT, "%s: tensor '%s' of type %s has rows of %lld values, not a multiple of its block", g->path, name,
                                ft_ggml_type_name(t->type), (long long)ne[0]);
            ft__ggml_more_dequantize((int)t->type, src, dst, (int64_t)n);
            return FT_OK;
        }
        return ft_error(FT_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; only F32, F16, BF16, Q8_0, Q4_0, Q4_K (multiplied in blocks) and "
                        "Q4_1, Q5_0, Q5_1, Q5_K, Q6_K (read as f32) tensors can be read (requantize the model to one of these)",
                        g->path, name, ft_ggml_type_name(t->type));
    }
    }
}
