/* text_util.c — UTF-8, Python whitespace and lowercasing, the token interner and the n-gram count map
 * shared by the text metrics (textmetrics_internal.h). */
#include "eval/textmetrics_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/hash.h"
#include "finetune/status.h"

/* ---------------------------------------------------------------- UTF-8 */

int ft__tm_utf8_valid(const char *str, size_t n, size_t *bad) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int len; uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF)      { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else goto fail;
        if (i + (size_t)len > n) goto fail;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) goto fail;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto fail;
        i += (size_t)len;
    }
    return 1;
fail:
    if (bad) *bad = i;
    return 0;
}

uint32_t ft__tm_utf8_next(const char *str, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c = s[*i];
    if (c < 0x80) { (*i)++; return c; }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (int k = 1; k < len && *i + (size_t)k < n; k++) cp = cp << 6 | (s[*i + (size_t)k] & 0x3F);
    *i += (size_t)len;
    return cp;
}

int ft__tm_utf8_put(char *buf, uint32_t cp) {
    unsigned char *b = (unsigned char *)buf;
    if (cp < 0x80) { b[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { b[0] = (unsigned char)(0xC0 | cp >> 6); b[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12); b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | cp >> 18); b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)); b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int ft__tm_is_pyspace(uint32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

int ft__tm_lower_cp(uint32_t cp, uint32_t out[2]) {
    if (cp < 0x80) { out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; return 1; }
    if (cp == 0x130) { out[0] = 'i'; out[1] = 0x307; return 2; }  /* SpecialCasing: İ -> i + combining dot */
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}

/* Python's final-sigma test: cased letter before (skipping case-ignorables), none after. */
static int is_cased(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->category == UTF8PROC_CATEGORY_LU || p->category == UTF8PROC_CATEGORY_LL ||
           p->category == UTF8PROC_CATEGORY_LT || utf8proc_tolower((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp ||
           utf8proc_toupper((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp;
}
static int is_case_ignorable(uint32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return cp == '\'' || cp == 0x2019 || cp == '.' || cp == ':' || cp == 0xB7 || p->category == UTF8PROC_CATEGORY_MN ||
           p->category == UTF8PROC_CATEGORY_ME || p->category == UTF8PROC_CATEGORY_CF ||
           p->category == UTF8PROC_CATEGORY_LM || p->category == UTF8PROC_CATEGORY_SK;
}

int ft__tm_lower(const char *s, size_t n, char **out, size_t *out_n) {
    /* lowering never needs more than 3 bytes per input byte (İ: 2 bytes -> 3) */
    char *o = malloc(n * 2 + 4);
    if (!o) return FT_ERR_NOMEM;
    size_t w = 0, i = 0;
    while (i < n) {
        size_t at = i;
        uint32_t cp = ft__tm_utf8_next(s, n, &i);
        if (cp == 0x3A3) {  /* capital sigma: final form after a cased letter not followed by one */
            int before = 0, after = 0;
            size_t j = at;
            while (j > 0) {
                size_t k = j - 1;
                while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                size_t kk = k;
                uint32_t c = ft__tm_utf8_next(s, n, &kk);
                j = k;
                if (is_case_ignorable(c)) continue;
                before = is_cased(c);
                break;
            }
            size_t k = i;
            while (k < n) {
                uint32_t c = ft__tm_utf8_next(s, n, &k);
                if (is_case_ignorable(c)) continue;
                after = is_cased(c);
                break;
            }
            w += (size_t)ft__tm_utf8_put(o + w, (before && !after) ? 0x3C2 : 0x3C3);
            continue;
        }
        uint32_t lo[2];
        int k = ft__tm_lower_cp(cp, lo);
        for (int t = 0; t < k; t++) w += (size_t)ft__tm_utf8_put(o + w, lo[t]);
    }
    o[w] = 0;
    *out = o;
    if (out_n) *out_n = w;
    return FT_OK;
}

/* ---------------------------------------------------------------- interner */

static uint64_t str_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return ft__mix64(h ^ n);
}

static int intern_grow(ft__tm_intern *t) {
    uint32_t cap = t->mask ? (t->mask + 1) * 2 : 256;
    int32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return FT_ERR_NOMEM;
    for (int id = 0; id < t->n; id++) {
        uint32_t h = (uint32_t)str_hash(t->pool + t->off[id], t->len[id]) & (cap - 1);
        while (slot[h]) h = (h + 1) & (cap - 1);
        slot[h] = id + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->mask = cap - 1;
    return FT_OK;
}

int ft__tm_intern_id(ft__tm_intern *t, const char *s, size_t len) {
    if ((size_t)(t->n + 1) * 2 > (size_t)t->mask + 1 || !t->slot) FT_TRY(intern_grow(t));
    uint32_t h = (uint32_t)str_hash(s, len) & t->mask;
    for (;;) {
        int32_t v = t->slot[h];
        if (!v) break;
        if (t->len[v - 1] == len && !memcmp(t->pool + t->off[v - 1], s, len)) return v - 1;
        h = (h + 1) & t->mask;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        size_t *off = realloc(t->off, (size_t)cap * sizeof *off);
        if (!off) return FT_ERR_NOMEM;
        t->off = off;
        uint32_t *ln = realloc(t->len, (size_t)cap * sizeof *ln);
        if (!ln) return FT_ERR_NOMEM;
        t->len = ln;
        t->cap = cap;
    }
    if (t->pool_n + len > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap * 2 : 4096;
        while (cap < t->pool_n + len) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return FT_ERR_NOMEM;
        t->pool = p;
        t->pool_cap = cap;
    }
    if (len) memcpy(t->pool + t->pool_n, s, len);
    t->off[t->n] = t->pool_n;
    t->len[t->n] = (uint32_t)len;
    t->pool_n += len;
    t->slot[h] = t->n + 1;
    return t->n++;
}

void ft__tm_intern_free(ft__tm_intern *t) {
    free(t->pool); free(t->off); free(t->len); free(t->slot);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- token lists */

int ft__tm_toks_push(ft__tm_toks *t, int32_t id) {
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 64;
        int32_t *p = realloc(t->id, (size_t)cap * sizeof *p);
        if (!p) return FT_ERR_NOMEM;
        t->id = p;
        t->cap = cap;
    }
    t->id[t->n++] = id;
    return FT_OK;
}

void ft__tm_toks_free(ft__tm_toks *t) { free(t->id); memset(t, 0, sizeof *t); }

int ft__tm_split_ws(ft__tm_intern *in, const char *s, size_t n, ft__tm_toks *out) {
    size_t i = 0, start = 0;
    int in_tok = 0;
    while (i < n) {
        size_t at = i;
        uint32_t cp = ft__tm_utf8_next(s, n, &i);
        if (ft__tm_is_pyspace(cp)) {
            if (in_tok) {
                int id = ft__tm_intern_id(in, s + start, at - start);
                if (id < 0) return id;
                FT_TRY(ft__tm_toks_push(out, id));
                in_tok = 0;
            }
        } else if (!in_tok) {
            in_tok = 1;
            start = at;
        }
    }
    if (in_tok) {
        int id = ft__tm_intern_id(in, s + start, n - start);
        if (id < 0) return id;
        FT_TRY(ft__tm_toks_push(out, id));
    }
    return FT_OK;
}

/* ---------------------------------------------------------------- n-gram map */

static uint32_t key_hash(ft__tm_key k) { return (uint32_t)ft__mix64(k.a ^ ft__mix64(k.b + 0x9E3779B97F4A7C15ull)); }

static int map_rehash(ft__tm_map *m, uint32_t cap) {
    ft__tm_key *keys = malloc((size_t)cap * sizeof *keys);
    int32_t *cnt = malloc((size_t)cap * FT__TM_COLS * sizeof *cnt);
    uint8_t *full = calloc(cap, 1);
    if (!keys || !cnt || !full) { free(keys); free(cnt); free(full); return FT_ERR_NOMEM; }
    for (int u = 0; u < m->n; u++) {
        int s = m->used[u];
        uint32_t h = key_hash(m->keys[s]) & (cap - 1);
        while (full[h]) h = (h + 1) & (cap - 1);
        full[h] = 1;
        keys[h] = m->keys[s];
        memcpy(cnt + (size_t)h * FT__TM_COLS, m->cnt + (size_t)s * FT__TM_COLS, FT__TM_COLS * sizeof *cnt);
        m->used[u] = (int32_t)h;
    }
    free(m->keys); free(m->cnt); free(m->full);
    m->keys = keys; m->cnt = cnt; m->full = full;
    m->mask = cap - 1;
    return FT_OK;
}

int ft__tm_map_reserve(ft__tm_map *m, int more) {
    size_t need = (size_t)m->n + (size_t)(more > 0 ? more : 0);
    if (need > (size_t)m->used_cap) {
        size_t cap = m->used_cap ? (size_t)m->used_cap : 64;
        while (cap < need) cap *= 2;
        if (cap > INT32_MAX) return FT_ERR_NOMEM;
        int32_t *u = realloc(m->used, cap * sizeof *u);
        if (!u) return FT_ERR_NOMEM;
        m->used = u;
        m->used_cap = (int)cap;
    }
    size_t cap = m->keys ? (size_t)m->mask + 1 : 0;
    if (need * 2 + 2 > cap) {
        size_t nc = cap ? cap : 128;
        while (need * 2 + 2 > nc) nc *= 2;
        if (nc > ((size_t)1 << 31)) return FT_ERR_NOMEM;
        FT_TRY(map_rehash(m, (uint32_t)nc));
    }
    return FT_OK;
}

int ft__tm_map_find(const ft__tm_map *m, ft__tm_key k) {
    if (!m->keys) return -1;
    uint32_t h = key_hash(k) & m->mask;
    while (m->full[h]) {
        if (m->keys[h].a == k.a && m->keys[h].b == k.b) return (int)h;
        h = (h + 1) & m->mask;
    }
    return -1;
}

int ft__tm_map_slot(ft__tm_map *m, ft__tm_key k) {
    uint32_t h = key_hash(k) & m->mask;
    while (m->full[h]) {
        if (m->keys[h].a == k.a && m->keys[h].b == k.b) return (int)h;
        h = (h + 1) & m->mask;
    }
    m->full[h] = 1;
    m->keys[h] = k;
    memset(m->cnt + (size_t)h * FT__TM_COLS, 0, FT__TM_COLS * sizeof *m->cnt);
    m->used[m->n++] = (int32_t)h;
    return (int)h;
}

void ft__tm_map_clear(ft__tm_map *m) {
    for (int u = 0; u < m->n; u++) m->full[m->used[u]] = 0;
    m->n = 0;
}

void ft__tm_map_free(ft__tm_map *m) {
    free(m->keys); free(m->cnt); free(m->full); free(m->used);
    memset(m, 0, sizeof *m);
}

ft__tm_key ft__tm_word_key(const int32_t *t, int n) {
    uint64_t s[4] = {0, 0, 0, 0};
    for (int i = 0; i < n && i < 4; i++) s[i] = (uint64_t)(uint32_t)t[i] + 1;
    ft__tm_key k = {s[0] << 32 | s[1], s[2] << 32 | s[3]};
    return k;
}

int ft__tm_word_key_order(ft__tm_key k) {
    return 1 + ((k.a & 0xFFFFFFFFu) != 0) + ((k.b >> 32) != 0) + ((k.b & 0xFFFFFFFFu) != 0);
}

/* ---------------------------------------------------------------- context */

int ft__tm_ctx_buf(ft__tm_ctx *cx, size_t n) {
    if (n <= cx->buf_cap) return FT_OK;
    size_t cap = cx->buf_cap ? cx->buf_cap : 1024;
    while (cap < n) cap *= 2;
    char *b = realloc(cx->buf, cap);
    if (!b) return FT_ERR_NOMEM;
    cx->buf = b;
    cx->buf_cap = cap;
    return FT_OK;
}

void ft__tm_ctx_free(ft__tm_ctx *cx) {
    ft__tm_intern_free(&cx->words);
    ft__tm_intern_free(&cx->rtoks);
    ft__tm_intern_free(&cx->rraw);
    ft__tm_map_free(&cx->map);
    ft__tm_map_free(&cx->map2);
    ft__tm_toks_free(&cx->t0);
    ft__tm_toks_free(&cx->t1);
    free(cx->buf);
    free(cx->stem_of);
    free(cx->dp);
    memset(cx, 0, sizeof *cx);
}
