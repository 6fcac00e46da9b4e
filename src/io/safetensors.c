/* safetensors.c — one safetensors file: header parsing and validation, name lookup, typed reads.
 *
 * Layout of a file:
 *   u64 LE  N            header length in bytes
 *   N bytes              JSON object (UTF-8, may be padded with trailing spaces):
 *                          {"__metadata__": {"k": "v", ...},              optional, string values
 *                           "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 *   rest                 data section; a tensor's bytes are data[begin, end), row-major, little-endian
 * Validation follows the reference implementation where it matters for safety: header length
 * bounded (100 MB) and inside the file, offsets ordered, inside the data section, consistent with
 * shape x dtype size and not overlapping. Gaps between tensors are tolerated. */
#include <sys/mman.h>
#include <unistd.h>
#include "io/safetensors_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

#ifdef __F16C__
#include <immintrin.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

/* ---- small helpers ---- */

static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static uint64_t read_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON number that is a non-negative integer exactly representable in a double. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0) return 0; /* also rejects NaN */
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *out = u;
    return 1;
}

/* Dtypes of the safetensors format that this library does not load (FT_ERR_DTYPE, not FORMAT). */
static int known_unsupported_dtype(const char *s) {
    static const char *k[] = {"F64", "I16", "U16", "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2",
                              "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(s, k[i]) == 0) return 1;
    return 0;
}

static int is_st_dtype(ft_dtype t) {
    return t == FT_F32 || t == FT_F16 || t == FT_BF16 || t == FT_I32 || t == FT_I64 || t == FT_I8 || t == FT_U8;
}

/* ---- growing the handle ---- */

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return FT_OK;
    int nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ft_error(FT_ERR_NOMEM, "safetensors: cannot grow a table to %d entries", nc);
    *p = q;
    *cap = nc;
    return FT_OK;
}

int ft__st_add_meta(ft_safetensors *st, const char *key, const char *value) {
    if (ft__strindex_get(&st->meta_index, key) >= 0) return FT_OK;
    FT_TRY(grow((void **)&st->meta, &st->cap_meta, 2 * (st->n_meta + 1), sizeof(char *)));
    char *k = st_strdup(key), *v = st_strdup(value);
    int prev;
    if (!k || !v || ft__strindex_put(&st->meta_index, k, st->n_meta, &prev) < 0) {
        free(k); free(v);
        return ft_error(FT_ERR_NOMEM, "safetensors: out of memory for metadata");
    }
    st->meta[2 * st->n_meta] = k;
    st->meta[2 * st->n_meta + 1] = v;
    st->n_meta++;
    return FT_OK;
}

/* ---- header parsing ---- */

typedef struct span { uint64_t begin, end; int entry; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry `j` of file `path` into e (name not set). */
static int parse_entry(ft_st_entry *e, span *sp, const cJSON *j, const char *path,
                       const unsigned char *data, uint64_t data_size) {
    const char *name = j->string;
    if (!cJSON_IsObject(j))
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': header entry is not a JSON object", path, name);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!jd) return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\"", path, name);
    if (!cJSON_IsString(jd))
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is not a string", path, name);
    if (!js) return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': missing \"shape\"", path, name);
    if (!jo) return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': missing \"data_offsets\"", path, name);

    const char *ds = jd->valuestring;
    ft_dtype dt;
    if (ft_dtype_from_name(ds, &dt) != FT_OK || !is_st_dtype(dt)) {
        if (known_unsupported_dtype(ds))
            return ft_error(FT_ERR_DTYPE, "%s: tensor '%s': dtype %s is not supported (supported: F32, F16, BF16, I32, I64, I8, U8)",
                            path, name, ds);
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name, ds);
    }
    e->dtype = dt;

    if (!cJSON_IsArray(js))
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", path, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > FT_ST_MAX_DIMS)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d are supported", path, name, nd, FT_ST_MAX_DIMS);
    e->ndim = nd;
    uint64_t numel = 1;
    int d = 0, overflow = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_u64(x, &v) || v > (uint64_t)INT64_MAX)
            return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        e->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(numel, v, &numel)) overflow = 1;
    }
    for (; d < FT_ST_MAX_DIMS; d++) e->shape[d] = 0;

    uint64_t off[2];
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_u64(jo->child, &off[0]) ||
        !json_u64(jo->child->next, &off[1]))
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative integers", path, name);
    if (off[0] > off[1])
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] are out of order (begin > end)",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1]);
    if (off[1] > data_size)
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data section (%llu bytes)",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1], (unsigned long long)data_size);
    uint64_t need;
    char sb[160];
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)ft_dtype_size(dt), &need) || need != off[1] - off[0])
        return ft_error(FT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape %s x %s (%zu bytes each) needs %s%llu",
                        path, name, (unsigned long long)off[0], (unsigned long long)off[1],
                        (unsigned long long)(off[1] - off[0]), ft_shape_str(e->shape, nd, sb, sizeof sb), ds,
                        ft_dtype_size(dt), overflow ? "more than " : "", overflow ? (unsigned long long)UINT64_MAX : (unsigned long long)need);
    e->data = data + off[0];
    e->nbytes = (size_t)need;
    sp->begin = off[0];
    sp->end = off[1];
    return FT_OK;
}

static int parse_metadata(ft_safetensors *st, const cJSON *j, const char *path) {
    if (!cJSON_IsObject(j)) return ft_error(FT_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", path);
    for (const cJSON *x = j->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return ft_error(FT_ERR_FORMAT, "%s: \"__metadata__\" value for '%s' is not a string", path, x->string);
        FT_TRY(ft__st_add_meta(st, x->string, x->valuestring));
    }
    return FT_OK;
}

/* Rejects overlapping tensors (zero-size tensors overlap nothing). */
static int check_overlap(span *sp, int n, const ft_st_entry *entries, const char *path) {
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    int last = -1; /* index in sp of the non-empty span reaching furthest */
    for (int i = 0; i < n; i++) {
        if (sp[i].begin == sp[i].end) continue;
        if (last >= 0 && sp[i].begin < sp[last].end)
            return ft_error(FT_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap in the data section",
                            path, entries[sp[last].entry].name, (unsigned long long)sp[last].begin,
                            (unsigned long long)sp[last].end, entries[sp[i].entry].name,
                            (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end);
        if (last < 0 || sp[i].end > sp[last].end) last = i;
    }
    return FT_OK;
}

int ft__st_add_file(ft_safetensors *st, const char *path) {
    int nf = st->n_files; /* few files: the arrays grow by one */
    char **files = realloc(st->files, (size_t)(nf + 1) * sizeof *files);
    if (!files) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    st->files = files;
    ft_mmap *maps = realloc(st->maps, (size_t)(nf + 1) * sizeof *maps);
    if (!maps) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    st->maps = maps;
    char *fpath = st_strdup(path);
    if (!fpath) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    ft_mmap m;
    int rc = ft_file_map(&m, path);
    if (rc < 0) { free(fpath); return rc; }
    st->files[nf] = fpath;
    st->maps[nf] = m;
    st->n_files = nf + 1;
    path = fpath; /* entries point at the handle's copy */

    if (m.size < 8)
        return ft_error(FT_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte safetensors header length (truncated or not a safetensors file)",
                        path, m.size);
    const unsigned char *base = m.data;
    uint64_t hlen = read_le64(base);
    if (hlen > FT_ST_MAX_HEADER)
        return ft_error(FT_ERR_FORMAT, "%s: header length %llu is over the %llu-byte limit (corrupt or not a safetensors file)",
                        path, (unsigned long long)hlen, (unsigned long long)FT_ST_MAX_HEADER);
    if (hlen > m.size - 8)
        return ft_error(FT_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                        path, (unsigned long long)hlen, m.size);
    const unsigned char *data = base + 8 + hlen;
    uint64_t data_size = m.size - 8 - hlen;

    /* The parser gets a NUL-terminated copy: it can never run into the data section or off the map. */
    char *hdr = malloc((size_t)hlen + 1);
    if (!hdr) return ft_error(FT_ERR_NOMEM, "%s: cannot allocate %llu bytes for the header", path, (unsigned long long)hlen);
    memcpy(hdr, base + 8, (size_t)hlen);
    hdr[hlen] = 0;
    const char *end = NULL;
    span *sp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        long pos = end && end >= hdr ? (long)(end - hdr) : -1;
        rc = ft_error(FT_ERR_FORMAT, "%s: header is not valid JSON (error near header byte %ld of %llu)",
                      path, pos, (unsigned long long)hlen);
        goto done;
    }
    rc = FT_OK;
    for (const char *p = end; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = ft_error(FT_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at header byte %ld)", path, (long)(p - hdr));
            goto done;
        }
    if (!cJSON_IsObject(root)) { rc = ft_error(FT_ERR_FORMAT, "%s: header is not a JSON object", path); goto done; }

    int count = 0;
    for (const cJSON *j = root->child; j; j = j->next) count++;
    if ((rc = grow((void **)&st->entries, &st->cap, st->n + count, sizeof(ft_st_entry))) < 0) goto done;
    sp = malloc((size_t)(count ? count : 1) * sizeof *sp);
    if (!sp) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
    int ns = 0;
    for (const cJSON *j = root->child; j; j = j->next) {
        if (strcmp(j->string, "__metadata__") == 0) {
            if ((rc = parse_metadata(st, j, path)) < 0) goto done;
            continue;
        }
        ft_st_entry *e = &st->entries[st->n];
        memset(e, 0, sizeof *e);
        if ((rc = parse_entry(e, &sp[ns], j, path, data, data_size)) < 0) goto done;
        e->name = st_strdup(j->string);
        if (!e->name) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
        e->file = path;
        sp[ns].entry = st->n;
        ns++;
        st->n++;
    }
    rc = check_overlap(sp, ns, st->entries, path);
done:
    free(sp);
    cJSON_Delete(root);
    free(hdr);
    return rc;
}

/* ---- lookup ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

int ft__st_build_lookup(ft_safetensors *st) {
    if (st->slots) return FT_OK;
    uint32_t cap = 16;
    while (cap < (uint32_t)st->n * 2u) cap *= 2;
    st->slots = calloc(cap, sizeof *st->slots);
    if (!st->slots) return ft_error(FT_ERR_NOMEM, "%s: out of memory for the tensor index", st->path);
    st->slot_mask = cap - 1;
    for (int i = 0; i < st->n; i++) {
        const ft_st_entry *e = &st->entries[i];
        uint32_t k = (uint32_t)hash_name(e->name) & st->slot_mask;
        while (st->slots[k]) {
            const ft_st_entry *o = &st->entries[st->slots[k] - 1];
            if (strcmp(o->name, e->name) == 0) {
                free(st->slots);
                st->slots = NULL;
                if (o->file == e->file)
                    return ft_error(FT_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", e->file, e->name);
                return ft_error(FT_ERR_FORMAT, "%s: tensor '%s' is also in %s", e->file, e->name, o->file);
            }
            k = (k + 1) & st->slot_mask;
        }
        st->slots[k] = (uint32_t)i + 1;
    }
    return FT_OK;
}

const ft_st_entry *ft_st_find(const ft_safetensors *st, const char *name) {
    if (!st || !name || !st->slots) return NULL;
    uint32_t k = (uint32_t)hash_name(name) & st->slot_mask;
    while (st->slots[k]) {
        const ft_st_entry *e = &st->entries[st->slots[k] - 1];
        if (strcmp(e->name, name) == 0) return e;
        k = (k + 1) & st->slot_mask;
    }
    return NULL;
}

int ft_st_count(const ft_safetensors *st) { return st ? st->n : 0; }

const ft_st_entry *ft_st_at(const ft_safetensors *st, int i) {
    return st && i >= 0 && i < st->n ? &st->entries[i] : NULL;
}

const char *ft_st_metadata(const ft_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    int i = ft__strindex_get(&st->meta_index, key);
    return i >= 0 ? st->meta[2 * i + 1] : NULL;
}

void ft_st_close(ft_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free((char *)st->entries[i].name);
    for (int i = 0; i < st->n_files; i++) { ft_file_unmap(&st->maps[i]); free(st->files[i]); }
    for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->entries);
    free(st->files);
    free(st->maps);
    free(st->slots);
    free(st->meta);
    ft__strindex_free(&st->meta_index);
    free(st->path);
    free(st);
}

/* ---- typed reads ---- */

/* The entry `name` if it exists and has exactly the expected shape. */
static int find_shaped(const ft_safetensors *st, const char *name, const int64_t *expect, int ndim,
                       const ft_st_entry **out) {
    *out = NULL;
    if (!st || !name) return ft_error(FT_ERR_INVALID, "safetensors read: NULL handle or name");
    const ft_st_entry *e = ft_st_find(st, name);
    if (!e) return ft_error(FT_ERR_NOT_FOUND, "%s: tensor '%s' not found (%d tensors)", st->path, name, st->n);
    int same = ndim == e->ndim && (ndim == 0 || expect);
    for (int i = 0; same && i < ndim; i++) same = expect[i] == e->shape[i];
    if (!same) {
        char a[160], b[160];
        if (ndim < 0 || ndim > FT_ST_MAX_DIMS || (ndim > 0 && !expect)) snprintf(b, sizeof b, "(invalid, ndim %d)", ndim);
        else ft_shape_str(expect, ndim, b, sizeof b);
        return ft_error(FT_ERR_SHAPE, "%s: tensor '%s': shape %s in the file, expected %s", e->file, name,
                        ft_shape_str(e->shape, e->ndim, a, sizeof a), b);
    }
    *out = e;
    return FT_OK;
}

#define ST_BLOCK 65536 /* elements per parallel chunk */

static void f16_to_f32_n(float *dst, const unsigned char *src, size_t n) {
    size_t i = 0;
#ifdef __F16C__
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
#endif
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = ft_f16_to_f32(h);
    }
}

static void bf16_to_f32_n(float *dst, const unsigned char *src, size_t n) {
    for (size_t i = 0; i < n; i++) { /* vectorises: widen and shift */
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        memcpy(dst + i, &bits, 4);
    }
}

static void to_f32_n(ft_dtype dt, float *dst, const unsigned char *src, size_t n) {
    if (dt == FT_F32) memcpy(dst, src, n * 4);
    else if (dt == FT_F16) f16_to_f32_n(dst, src, n);
    else bf16_to_f32_n(dst, src, n);
}

int ft_st_read_f32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, float *dst) {
    const ft_st_entry *e;
    FT_TRY(find_shaped(st, name, expect_shape, ndim, &e));
    if (e->dtype != FT_F32 && e->dtype != FT_F16 && e->dtype != FT_BF16)
        return ft_error(FT_ERR_DTYPE, "%s: tensor '%s' has dtype %s; ft_st_read_f32 reads F32, F16 and BF16 (use ft_st_read_i32 for integers)",
                        e->file, name, ft_dtype_name(e->dtype));
    size_t n = e->nbytes / ft_dtype_size(e->dtype);
    const unsigned char *src = e->data;
    size_t es = ft_dtype_size(e->dtype);
    long nb = (long)((n + ST_BLOCK - 1) / ST_BLOCK);
    if (nb <= 4) { /* small: no thread start-up */
        if (n) to_f32_n(e->dtype, dst, src, n);
        return FT_OK;
    }
    /* Parallel chunks also spread the page faults of a cold mmap over the threads. */
    #pragma omp parallel for schedule(static)
    for (long b = 0; b < nb; b++) {
        size_t i0 = (size_t)b * ST_BLOCK, cnt = n - i0 < ST_BLOCK ? n - i0 : ST_BLOCK;
        to_f32_n(e->dtype, dst + i0, src + es * i0, cnt);
    }
    return FT_OK;
}

/* I32 copied, I64 narrowed (FT_ERR_RANGE names the first element that does not fit), I8/U8 widened. */
int ft_st_read_i32(const ft_safetensors *st, const char *name, const int64_t *expect_shape, int ndim, int32_t *dst) {
    const ft_st_entry *e;
    FT_TRY(find_shaped(st, name, expect_shape, ndim, &e));
    const unsigned char *src = e->data;
    size_t n = e->nbytes / (ft_dtype_size(e->dtype) ? ft_dtype_size(e->dtype) : 1);
    switch (e->dtype) {
    case FT_I32:
        if (n) memcpy(dst, src, n * 4);
        return FT_OK;
    case FT_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return ft_error(FT_ERR_RANGE, "%s: tensor '%s': element %zu = %lld does not fit in int32",
                                e->file, name, i, (long long)v);
            dst[i] = (int32_t)v;
        }
        return FT_OK;
    case FT_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (int8_t)src[i];
        return FT_OK;
    case FT_U8:
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
        return FT_OK;
    default:
        return ft_error(FT_ERR_DTYPE, "%s: tensor '%s' has dtype %s; ft_st_read_i32 reads I32, I64, I8 and U8",
                        e->file, name, ft_dtype_name(e->dtype));
    }
}

void ft_st_release(const ft_st_entry *e) {
    if (!e || !e->data || e->nbytes == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)e->data + page - 1) & ~(page - 1), b = ((uintptr_t)e->data + e->nbytes) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
