/* vocab.c — the token table, its hash maps (string -> id, id pair -> merge) and finalize. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */
char *ft__tok_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

int ft__tok_reserve(void **p, size_t elem, int need, int *cap) {
    if (need <= *cap) return FT_OK;
    int nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ft_error(FT_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes", (size_t)nc * elem);
    *p = q; *cap = nc;
    return FT_OK;
}

int ft__tok_reserve_bytes(char **p, size_t need, size_t *cap) {
    if (need <= *cap) return FT_OK;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    char *q = realloc(*p, nc);
    if (!q) return ft_error(FT_ERR_NOMEM, "tokenizer: cannot allocate %zu bytes", nc);
    *p = q; *cap = nc;
    return FT_OK;
}

/* ---- UTF-8 and the GPT-2 byte table ---- */
int ft__byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256 + b;              /* 0..32    -> U+0100..U+0120 */
    if (b <= 160) return 256 + 33 + (b - 127); /* 127..160 -> U+0121..U+0142 */
    return 256 + 33 + 34;                      /* 173      -> U+0143 */
}

int ft__cp_to_byte(int cp) {
    if (cp < 0) return -1;
    if (cp < 256) return ft__byte_to_cp(cp) == cp ? cp : -1;
    if (cp <= 288) return cp - 256;
    if (cp <= 322) return cp - 289 + 127;
    if (cp == 323) return 173;
    return -1;
}

int ft__utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int ft__tok_utf8_next(const unsigned char *s, size_t len, int32_t *cp) {
    unsigned c = s[0];
    int n; uint32_t v, min;
    if (c < 0x80) { *cp = (int32_t)c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = -1; return 1; }
    if ((size_t)n > len) { *cp = -1; return 1; }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = -1; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) { *cp = -1; return 1; }
    *cp = (int32_t)v;
    return n;
}

/* ---- string -> id map ---- */
static uint32_t str_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;                 /* FNV-1a */
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

static int strmap_grow(ft_strmap *m) {
    uint32_t ncap = m->slots ? (m->mask + 1) * 2 : 1024;
    ft_strmap_slot *ns = malloc((size_t)ncap * sizeof *ns);
    if (!ns) return ft_error(FT_ERR_NOMEM, "tokenizer: cannot allocate the vocabulary map");
    for (uint32_t i = 0; i < ncap; i++) ns[i].id = -1;
    if (m->slots) {
        for (uint32_t i = 0; i <= m->mask; i++) {
            if (m->slots[i].id < 0) continue;
            uint32_t j = m->slots[i].hash & (ncap - 1);
            while (ns[j].id >= 0) j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
    }
    m->slots = ns; m->mask = ncap - 1;
    return FT_OK;
}

int ft__tok_lookup(const ft_tokenizer *tok, const char *s, size_t len) {
    const ft_strmap *m = &tok->vocab;
    if (!m->slots) return -1;
    uint32_t h = str_hash(s, len);
    for (uint32_t j = h & m->mask;; j = (j + 1) & m->mask) {
        const ft_strmap_slot *sl = &m->slots[j];
        if (sl->id < 0) return -1;
        if (sl->hash == h) {
            const ft_tok_token *t = &tok->tokens[sl->id];
            if (t->len == len && memcmp(tok->pool + t->off, s, len) == 0) return sl->id;
        }
    }
}

int ft__tok_lookup_model(const ft_tokenizer *tok, const char *s, size_t len) {
    int id = ft__tok_lookup(tok, s, len);
    return id >= 0 && (tok->tokens[id].flags & FT_TOKF_MODEL) ? id : -1;
}

static int strmap_insert(ft_tokenizer *tok, int id) {
    ft_strmap *m = &tok->vocab;
    if (!m->slots || (m->count + 1) * 2 > m->mask + 1) FT_TRY(strmap_grow(m));
    const ft_tok_token *t = &tok->tokens[id];
    const char *s = tok->pool + t->off;
    uint32_t h = str_hash(s, t->len);
    uint32_t j = h & m->mask;
    for (;; j = (j + 1) & m->mask) {
        ft_strmap_slot *sl = &m->slots[j];
        if (sl->id < 0) break;
        if (sl->hash == h) {
            const ft_tok_token *o = &tok->tokens[sl->id];
            if (o->len == t->len && memcmp(tok->pool + o->off, s, t->len) == 0) return FT_OK; /* first id wins */
        }
    }
    m->slots[j].hash = h; m->slots[j].id = id;
    m->count++;
    return FT_OK;
}

/* ---- pair -> merge map ---- */
static uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static uint32_t pair_hash(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; return (uint32_t)k; }
#define PAIR_EMPTY UINT64_MAX

static int pairmap_grow(ft_pairmap *m) {
    uint32_t ncap = m->slots ? (m->mask + 1) * 2 : 1024;
    ft_pairmap_slot *ns = malloc((size_t)ncap * sizeof *ns);
    if (!ns) return ft_error(FT_ERR_NOMEM, "tokenizer: cannot allocate the merge map");
    for (uint32_t i = 0; i < ncap; i++) ns[i].key = PAIR_EMPTY;
    if (m->slots) {
        for (uint32_t i = 0; i <= m->mask; i++) {
            if (m->slots[i].key == PAIR_EMPTY) continue;
            uint32_t j = pair_hash(m->slots[i].key) & (ncap - 1);
            while (ns[j].key != PAIR_EMPTY) j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
    }
    m->slots = ns; m->mask = ncap - 1;
    return FT_OK;
}

/* Inserts or overwrites (a later duplicate merge takes the later rank, as in HF tokenizers). */
static int pairmap_put(ft_pairmap *m, int a, int b, int rank, int id) {
    if (!m->slots || (m->count + 1) * 2 > m->mask + 1) FT_TRY(pairmap_grow(m));
    uint64_t k = pair_key(a, b);
    uint32_t j = pair_hash(k) & m->mask;
    while (m->slots[j].key != PAIR_EMPTY && m->slots[j].key != k) j = (j + 1) & m->mask;
    if (m->slots[j].key == PAIR_EMPTY) m->count++;
    m->slots[j].key = k; m->slots[j].rank = rank; m->slots[j].id = id;
    return FT_OK;
}

int ft__tok_pair_lookup(const ft_tokenizer *tok, int a, int b, int *rank) {
    const ft_pairmap *m = &tok->merges;
    if (!m->slots) return -1;
    uint64_t k = pair_key(a, b);
    for (uint32_t j = pair_hash(k) & m->mask;; j = (j + 1) & m->mask) {
        const ft_pairmap_slot *sl = &m->slots[j];
        if (sl->key == PAIR_EMPTY) return -1;
        if (sl->key == k) { *rank = sl->rank; return sl->id; }
    }
}

/* ---- building ---- */
int ft__tok_alloc(ft_tokenizer **out, const char *source) {
    *out = NULL;
    ft_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    snprintf(tok->source, sizeof tok->source, "%s", source ? source : "");
    tok->unk_id = -1; tok->bos = -1; tok->eos = -1; tok->pad = -1;
    tok->cls = -1; tok->sep = -1; tok->mask = -1; tok->unk_special = -1;
    for (int b = 0; b < 256; b++) { tok->byte_sym[b] = -1; tok->byte_tok[b] = -1; }
    *out = tok;
    return FT_OK;
}

static int pool_add(char **pool, size_t *len, size_t *cap, const char *s, size_t n, uint32_t *off) {
    if (*len + n + 1 > UINT32_MAX) return ft_error(FT_ERR_RANGE, "tokenizer: vocabulary strings exceed 4 GiB");
    FT_TRY(ft__tok_reserve_bytes(pool, *len + n + 1, cap));
    memcpy(*pool + *len, s, n);
    (*pool)[*len + n] = 0;
    *off = (uint32_t)*len;
    *len += n + 1;
    return FT_OK;
}

void ft__tok_allow_ids(ft_tokenizer *tok, int entries) {
    if (entries < 0) entries = 0;
    tok->n_entries = entries > (1 << 28) - tok->n_entries ? (1 << 28) : tok->n_entries + entries;
    /* tokens already there (a vocabulary whose ids are implied by position) count too */
    int base = tok->n_entries > tok->n_tokens ? tok->n_entries : tok->n_tokens;
    tok->id_limit = base >= (1 << 29) - 512 ? (1 << 30) : 2 * base + 1024;
}

int ft__tok_set_token(ft_tokenizer *tok, int id, const char *s, size_t len, int flags) {
    if (id < 0 || id >= (1 << 30)) return ft_error(FT_ERR_FORMAT, "%s: token id %d out of range", tok->source, id);
    if (tok->id_limit && id >= tok->id_limit)
        return ft_error(FT_ERR_FORMAT, "%s: token id %d is far beyond the %d tokens the file holds (ids may leave gaps, but stay below %d)",
                        tok->source, id, tok->n_entries, tok->id_limit);
    if (id >= tok->cap_tokens) {
        int old = tok->cap_tokens;
        FT_TRY(ft__tok_reserve((void **)&tok->tokens, sizeof *tok->tokens, id + 1, &tok->cap_tokens));
        memset(tok->tokens + old, 0, (size_t)(tok->cap_tokens - old) * sizeof *tok->tokens);
    }
    if (id >= tok->n_tokens) tok->n_tokens = id + 1;
    ft_tok_token *t = &tok->tokens[id];
    if (t->flags & FT_TOKF_PRESENT) {
        if (t->len == len && memcmp(tok->pool + t->off, s, len) == 0) { t->flags |= (uint8_t)flags; return FT_OK; }
        /* an added token that re-uses a model id with other content: the added content wins */
        FT_LOGW("%s: token id %d is '%s' in the vocabulary and '%.*s' as an added token; using the latter",
                tok->source, id, tok->pool + t->off, (int)len, s);
    }
    uint32_t off = 0;
    FT_TRY(pool_add(&tok->pool, &tok->pool_len, &tok->pool_cap, s, len, &off));
    t = &tok->tokens[id];
    t->off = off; t->len = (uint32_t)len;
    t->flags |= (uint8_t)(flags | FT_TOKF_PRESENT);
    return strmap_insert(tok, id);
}

int ft__tok_add_merge(ft_tokenizer *tok, int a, int b) {
    const ft_tok_token *ta = &tok->tokens[a], *tb = &tok->tokens[b];
    size_t n = (size_t)ta->len + tb->len;
    char stackbuf[512];
    char *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(buf, tok->pool + ta->off, ta->len);
    memcpy(buf + ta->len, tok->pool + tb->off, tb->len);
    int m = ft__tok_lookup_model(tok, buf, n);
    int rc = FT_OK;
    if (m < 0)
        rc = ft_error(FT_ERR_FORMAT, "%s: merge %d ('%s' '%s'): the merged token '%.*s' is not in the vocabulary",
                      tok->source, tok->n_merges + 1, tok->pool + ta->off, tok->pool + tb->off, (int)n, buf);
    if (buf != stackbuf) free(buf);
    if (rc < 0) return rc;
    FT_TRY(ft__tok_reserve((void **)&tok->merge_list, sizeof *tok->merge_list, tok->n_merges + 1, &tok->cap_merges));
    tok->merge_list[tok->n_merges][0] = a;
    tok->merge_list[tok->n_merges][1] = b;
    FT_TRY(pairmap_put(&tok->merges, a, b, tok->n_merges, m));
    tok->n_merges++;
    return FT_OK;
}

int ft__tok_add_merge_str(ft_tokenizer *tok, const char *a, size_t alen, const char *b, size_t blen) {
    int ia = ft__tok_lookup_model(tok, a, alen), ib = ft__tok_lookup_model(tok, b, blen);
    if (ia < 0 || ib < 0)
        return ft_error(FT_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s'): token '%.*s' is not in the vocabulary", tok->source,
                        tok->n_merges + 1, (int)alen, a, (int)blen, b, ia < 0 ? (int)alen : (int)blen, ia < 0 ? a : b);
    return ft__tok_add_merge(tok, ia, ib);
}

int ft__tok_add_added(ft_tokenizer *tok, int id, int special, int lstrip, int rstrip, int single_word, int normalized) {
    if (id < 0 || id >= tok->n_tokens || !(tok->tokens[id].flags & FT_TOKF_PRESENT))
        return ft_error(FT_ERR_FORMAT, "%s: added token id %d has no content", tok->source, id);
    if (tok->tokens[id].len == 0) return ft_error(FT_ERR_FORMAT, "%s: added token id %d is empty", tok->source, id);
    if (tok->tokens[id].flags & FT_TOKF_ADDED) {   /* again: only the special flag can be added */
        for (int i = 0; i < tok->n_added; i++)
            if (tok->added[i].id == id) tok->added[i].special |= (uint8_t)!!special;
    } else {
        FT_TRY(ft__tok_reserve((void **)&tok->added, sizeof *tok->added, tok->n_added + 1, &tok->cap_added));
        tok->added[tok->n_added++] = (ft_tok_added){ id, (uint8_t)!!lstrip, (uint8_t)!!rstrip, (uint8_t)!!single_word,
                                                     (uint8_t)!!normalized, (uint8_t)!!special };
    }
    tok->tokens[id].flags |= FT_TOKF_ADDED | (special ? FT_TOKF_SPECIAL : 0);
    return FT_OK;
}

/* ---- llama2.c scores -> merges ---- */
typedef struct { int32_t a, b, m; float score; } score_merge;

static int cmp_score_merge(const void *x, const void *y) {
    const score_merge *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;   /* higher score first */
    if (p->m != q->m) return p->m < q->m ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

int ft__tok_merges_from_scores(ft_tokenizer *tok) {
    score_merge *list = NULL;
    int n = 0, cap = 0, rc = FT_OK;
    for (int id = 0; id < tok->n_tokens; id++) {
        const ft_tok_token *t = &tok->tokens[id];
        if ((t->flags & (FT_TOKF_PRESENT | FT_TOKF_MODEL)) != (FT_TOKF_PRESENT | FT_TOKF_MODEL)) continue;
        if (t->flags & (FT_TOKF_SPECIAL | FT_TOKF_BYTE | FT_TOKF_ADDED)) continue;
        const char *s = tok->pool + t->off;
        for (uint32_t p = 1; p < t->len; p++) {
            int a = ft__tok_lookup_model(tok, s, p);
            if (a < 0) continue;
            int b = ft__tok_lookup_model(tok, s + p, t->len - p);
            if (b < 0) continue;
            if ((rc = ft__tok_reserve((void **)&list, sizeof *list, n + 1, &cap)) < 0) goto done;
            list[n++] = (score_merge){ a, b, id, t->score };
        }
    }
    if (n > 1) qsort(list, (size_t)n, sizeof *list, cmp_score_merge);
    if ((rc = ft__tok_reserve((void **)&tok->merge_list, sizeof *tok->merge_list, n, &tok->cap_merges)) < 0) goto done;
    int rank = -1;
    for (int i = 0; i < n; i++) {
        if (i == 0 || list[i].score != list[i - 1].score) rank++;   /* equal scores share a rank */
        tok->merge_list[i][0] = list[i].a;
        tok->merge_list[i][1] = list[i].b;
        if ((rc = pairmap_put(&tok->merges, list[i].a, list[i].b, rank, list[i].m)) < 0) goto done;
    }
    tok->n_merges = n;
    tok->merges_from_scores = 1;
done:
    free(list);
    return rc;
}

/* ---- finalize ---- */
static int cmp_added(const void *x, const void *y, void *ctx) {
    const ft_tokenizer *tok = ctx;
    const ft_tok_added *p = x, *q = y;
    unsigned char fp = (unsigned char)tok->pool[tok->tokens[p->id].off], fq = (unsigned char)tok->pool[tok->tokens[q->id].off];
    if (fp != fq) return fp < fq ? -1 : 1;
    uint32_t lp = tok->tokens[p->id].len, lq = tok->tokens[q->id].len;
    if (lp != lq) return lp > lq ? -1 : 1;
    return (p->id > q->id) - (p->id < q->id);
}

static int dec_add(ft_tokenizer *tok, const char *s, size_t n) {
    FT_TRY(ft__tok_reserve_bytes(&tok->dec_pool, tok->dec_len + n + 1, &tok->dec_cap));
    memcpy(tok->dec_pool + tok->dec_len, s, n);
    tok->dec_len += n;
    return FT_OK;
}

/* The bytes a token decodes to, following the tokenizer's decoder. */
static int build_decoded(ft_tokenizer *tok, int id) {
    ft_tok_token *t = &tok->tokens[id];
    const char *s = tok->pool + t->off;
    size_t start = tok->dec_len;
    t->dec_off = (uint32_t)start;
    if (tok->dec_byte_level) {
        /* every character must map back to a byte; otherwise the token's raw bytes (as HF does) */
        int ok = 1;
        for (size_t i = 0; i < t->len;) {
            int32_t cp;
            int k = ft__tok_utf8_next((const unsigned char *)s + i, t->len - i, &cp);
            int b = ft__cp_to_byte(cp);
            if (b < 0) { ok = 0; break; }
            char c = (char)b;
            FT_TRY(dec_add(tok, &c, 1));
            i += (size_t)k;
        }
        if (!ok) { tok->dec_len = start; FT_TRY(dec_add(tok, s, t->len)); }
    } else if (tok->dec_byte_fallback && (t->flags & FT_TOKF_BYTE)) {
        char c = (char)t->byte_val;
        FT_TRY(dec_add(tok, &c, 1));
    } else if (tok->dec_replace_from && *tok->dec_replace_from) {
        size_t fl = strlen(tok->dec_replace_from), tl = strlen(tok->dec_replace_to ? tok->dec_replace_to : "");
        for (size_t i = 0; i < t->len;) {
            if (i + fl <= t->len && memcmp(s + i, tok->dec_replace_from, fl) == 0) {
                FT_TRY(dec_add(tok, tok->dec_replace_to, tl));
                i += fl;
            } else {
                FT_TRY(dec_add(tok, s + i, 1));
                i++;
            }
        }
    } else {
        FT_TRY(dec_add(tok, s, t->len));
    }
    if (tok->dec_len - start > UINT32_MAX) return ft_error(FT_ERR_RANGE, "tokenizer: token too long");
    t->dec_len = (uint32_t)(tok->dec_len - start);
    return FT_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int ft__tok_finalize(ft_tokenizer *tok) {
    /* byte-fallback tokens: "<0xNN>" */
    for (int id = 0; id < tok->n_tokens; id++) {
        ft_tok_token *t = &tok->tokens[id];
        if (!(t->flags & FT_TOKF_PRESENT) || t->len != 6) continue;
        const char *s = tok->pool + t->off;
        if (s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') continue;
        int h = hexval((unsigned char)s[3]), l = hexval((unsigned char)s[4]);
        if (h < 0 || l < 0) continue;
        t->flags |= FT_TOKF_BYTE;
        t->byte_val = (uint8_t)(h * 16 + l);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_tok[b] = ft__tok_lookup_model(tok, name, 6);
        if (tok->byte_level) {
            char u[4];
            int k = ft__utf8_encode((uint32_t)ft__byte_to_cp(b), u);
            tok->byte_sym[b] = ft__tok_lookup_model(tok, u, (size_t)k);
        }
    }
    tok->dec_len = 0;
    for (int id = 0; id < tok->n_tokens; id++)
        if (tok->tokens[id].flags & FT_TOKF_PRESENT) FT_TRY(build_decoded(tok, id));

    if (tok->n_added > 1) qsort_r(tok->added, (size_t)tok->n_added, sizeof *tok->added, cmp_added, tok);
    for (int c = 0, i = 0; c <= 256; c++) {
        while (c < 256 && i < tok->n_added && (unsigned char)tok->pool[tok->tokens[tok->added[i].id].off] < c) i++;
        tok->added_start[c] = c < 256 ? i : tok->n_added;
    }
    if (tok->unk_id >= tok->n_tokens) tok->unk_id = -1;
    return FT_OK;
}
