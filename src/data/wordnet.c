/* wordnet.c — the WordNet database reader of wordnet.h: index files into a lemma -> synset offsets table,
 * data files kept whole and read at a synset's byte offset on demand, exception lists for morphy. */
#include "finetune/wordnet.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/strindex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const POS_FILE[FT_WN_NPOS] = {"noun", "verb", "adj", "adv"};

typedef struct wn_pos {
    char        *idx, *data, *exc;   /* owned copies; idx / exc are cut into NUL-terminated words */
    size_t       data_len;
    ft__strindex lemmas;             /* lemma -> id */
    uint32_t    *first;              /* [n_lemma] first offset in offs */
    uint32_t    *count;              /* [n_lemma] offsets of that lemma */
    uint32_t    *offs;               /* [n_offs] synset byte offsets into data */
    int          n_lemma;
    size_t       n_offs, cap_offs, cap_lemma;
    ft__strindex exc_index;          /* inflected form -> exception id */
    char       **exc_words;          /* [n_exc_words] the base forms, exception e is exc_words[exc_first[e] ..] */
    int         *exc_first, *exc_n;  /* [n_exc] */
    int          n_exc, n_exc_words;
    size_t       cap_exc, cap_exc_words;
} wn_pos;

struct ft_wordnet { wn_pos p[FT_WN_NPOS]; };

const char *ft_wordnet_default_dir(void) {
    const char *d = getenv("WNSEARCHDIR");
    return d && *d ? d : "/usr/share/wordnet";
}

static int grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return FT_OK;
    size_t c = *cap ? *cap * 2 : 1024;
    while (c < need) c *= 2;
    void *nv = realloc(*v, c * elem);
    if (!nv) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
    *v = nv;
    *cap = c;
    return FT_OK;
}

static char *dup_mem(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Cuts line [s, e) into space-separated words in place (NUL-terminated); up to cap of them. */
static int split_words(char *s, char *e, char **w, int cap) {
    int n = 0;
    while (s < e) {
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) *s++ = 0;
        if (s >= e) break;
        if (n == cap) return -1;
        w[n++] = s;
        while (s < e && *s != ' ' && *s != '\t' && *s != '\r') s++;
    }
    if (s == e) *e = 0;
    return n;
}

static int parse_uint(const char *s, int base, unsigned long *out) {
    if (!*s) return -1;
    char *end;
    unsigned long v = strtoul(s, &end, base);
    if (*end || !isxdigit((unsigned char)*s)) return -1;
    *out = v;
    return 0;
}

#define MAX_WORDS 4096

/* index.POS: "lemma pos synset_cnt p_cnt [ptr]*p_cnt sense_cnt tagsense_cnt offset*synset_cnt" */
static int parse_index(wn_pos *p, char **w) {
    char *s = p->idx;
    while (*s) {
        char *e = strchr(s, '\n');
        char *next = e ? e + 1 : s + strlen(s);
        if (!e) e = s + strlen(s);
        *e = 0;
        if (*s == ' ' || *s == 0) { s = next; continue; }   /* license header, blank */
        int n = split_words(s, e, w, MAX_WORDS);
        unsigned long ns, np;
        if (n < 4 || parse_uint(w[2], 10, &ns) || parse_uint(w[3], 10, &np) || np > (unsigned long)n ||
            ns > (unsigned long)n || 4 + np + 2 + ns != (unsigned long)n) { s = next; continue; }
        int base = 4 + (int)np + 2, ok = 1;
        for (unsigned long i = 0; i < ns && ok; i++) {
            unsigned long o;
            ok = !parse_uint(w[base + i], 10, &o) && o < p->data_len && o <= UINT32_MAX;
        }
        if (!ok || ns == 0) { s = next; continue; }
        int prev;
        size_t cf = p->cap_lemma, cc = p->cap_lemma;
        FT_TRY(grow((void **)&p->first, &cf, (size_t)p->n_lemma + 1, sizeof *p->first));
        FT_TRY(grow((void **)&p->count, &cc, (size_t)p->n_lemma + 1, sizeof *p->count));
        p->cap_lemma = cf;
        if (ft__strindex_put(&p->lemmas, w[0], p->n_lemma, &prev) < 0) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
        if (prev >= 0) { s = next; continue; }   /* a duplicate lemma line: the first wins */
        FT_TRY(grow((void **)&p->offs, &p->cap_offs, p->n_offs + ns, sizeof *p->offs));
        p->first[p->n_lemma] = (uint32_t)p->n_offs;
        p->count[p->n_lemma] = (uint32_t)ns;
        for (unsigned long i = 0; i < ns; i++) p->offs[p->n_offs++] = (uint32_t)strtoul(w[base + i], NULL, 10);
        p->n_lemma++;
        s = next;
    }
    return FT_OK;
}

/* POS.exc: "inflected base [base ...]" */
static int parse_exc(wn_pos *p, char **w) {
    char *s = p->exc;
    while (*s) {
        char *e = strchr(s, '\n');
        char *next = e ? e + 1 : s + strlen(s);
        if (!e) e = s + strlen(s);
        *e = 0;
        int n = split_words(s, e, w, MAX_WORDS);
        if (n >= 2) {
            int prev;
            if (ft__strindex_put(&p->exc_index, w[0], p->n_exc, &prev) < 0) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
            if (prev < 0) {
                size_t ce = p->cap_exc, cn = p->cap_exc;
                FT_TRY(grow((void **)&p->exc_first, &ce, (size_t)p->n_exc + 1, sizeof *p->exc_first));
                FT_TRY(grow((void **)&p->exc_n, &cn, (size_t)p->n_exc + 1, sizeof *p->exc_n));
                p->cap_exc = ce;
                FT_TRY(grow((void **)&p->exc_words, &p->cap_exc_words, (size_t)p->n_exc_words + (size_t)n - 1, sizeof *p->exc_words));
                p->exc_first[p->n_exc] = p->n_exc_words;
                p->exc_n[p->n_exc] = n - 1;
                for (int i = 1; i < n; i++) p->exc_words[p->n_exc_words++] = w[i];
                p->n_exc++;
            }
        }
        s = next;
    }
    return FT_OK;
}

static int load_pos(wn_pos *p, const char *idx, size_t idx_len, const char *data, size_t data_len,
                    const char *exc, size_t exc_len, char **w) {
    p->idx = dup_mem(idx ? idx : "", idx ? idx_len : 0);
    p->data = dup_mem(data ? data : "", data ? data_len : 0);
    p->exc = dup_mem(exc ? exc : "", exc ? exc_len : 0);
    if (!p->idx || !p->data || !p->exc) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
    /* embedded NULs end the text: nothing past one is read */
    p->data_len = strlen(p->data);
    FT_TRY(parse_index(p, w));
    return parse_exc(p, w);
}

void ft_wordnet_close(ft_wordnet *wn) {
    if (!wn) return;
    for (int i = 0; i < FT_WN_NPOS; i++) {
        wn_pos *p = &wn->p[i];
        free(p->idx); free(p->data); free(p->exc);
        ft__strindex_free(&p->lemmas);
        ft__strindex_free(&p->exc_index);
        free(p->first); free(p->count); free(p->offs);
        free(p->exc_words); free(p->exc_first); free(p->exc_n);
    }
    free(wn);
}

int ft_wordnet_parse(ft_wordnet **out, const ft_wordnet_files *f) {
    *out = NULL;
    ft_wordnet *wn = calloc(1, sizeof *wn);
    char **w = malloc(MAX_WORDS * sizeof *w);
    if (!wn || !w) { free(wn); free(w); return ft_error(FT_ERR_NOMEM, "wordnet: out of memory"); }
    int rc = FT_OK;
    for (int i = 0; i < FT_WN_NPOS && rc == FT_OK; i++)
        rc = load_pos(&wn->p[i], f->index[i], f->index_len[i], f->data[i], f->data_len[i], f->exc[i], f->exc_len[i], w);
    free(w);
    if (rc != FT_OK) { ft_wordnet_close(wn); return rc; }
    *out = wn;
    return FT_OK;
}

int ft_wordnet_open(ft_wordnet **out, const char *dir) {
    *out = NULL;
    if (!dir) dir = ft_wordnet_default_dir();
    ft_wordnet_files f;
    memset(&f, 0, sizeof f);
    char *bufs[3 * FT_WN_NPOS] = {0};
    int rc = FT_OK;
    for (int i = 0; i < FT_WN_NPOS && rc == FT_OK; i++) {
        const char *kind[3] = {"index.%s", "data.%s", "%s.exc"};
        for (int k = 0; k < 3 && rc == FT_OK; k++) {
            char name[32], path[4096];
            snprintf(name, sizeof name, kind[k], POS_FILE[i]);
            if (ft_path_join(path, sizeof path, dir, name) < 0) { rc = ft_error(FT_ERR_INVALID, "wordnet: path too long: %s", dir); break; }
            size_t len = 0;
            if (!ft_path_exists(path)) {
                if (k == 2) continue;   /* exception lists are optional */
                rc = ft_error(FT_ERR_NOT_FOUND, "wordnet: %s not found (install Debian's wordnet-base, or set WNSEARCHDIR)", path);
                break;
            }
            rc = ft_file_read_all(path, &bufs[3 * i + k], &len);
            if (rc != FT_OK) break;
            if (k == 0) { f.index[i] = bufs[3 * i]; f.index_len[i] = len; }
            else if (k == 1) { f.data[i] = bufs[3 * i + 1]; f.data_len[i] = len; }
            else { f.exc[i] = bufs[3 * i + 2]; f.exc_len[i] = len; }
        }
    }
    if (rc == FT_OK) rc = ft_wordnet_parse(out, &f);
    for (int i = 0; i < 3 * FT_WN_NPOS; i++) free(bufs[i]);
    return rc;
}

int64_t ft_wordnet_lemma_count(const ft_wordnet *wn, int pos) {
    int64_t n = 0;
    for (int i = 0; i < FT_WN_NPOS; i++)
        if (pos < 0 || pos == i) n += wn->p[i].n_lemma;
    return n;
}

/* ---- lookups ---- */

typedef struct strvec { char **v; int n, cap; } strvec;

static int str_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static int vec_has(const strvec *s, const char *w) {
    for (int i = 0; i < s->n; i++)
        if (str_ieq(s->v[i], w)) return 1;
    return 0;
}

static int vec_push(strvec *s, const char *w, size_t n) {
    if (s->n == s->cap) {
        int c = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, (size_t)c * sizeof *nv);
        if (!nv) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
        s->v = nv;
        s->cap = c;
    }
    char *d = dup_mem(w, n);
    if (!d) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
    s->v[s->n++] = d;
    return FT_OK;
}

void ft_wordnet_strings_free(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int lemma_id(const wn_pos *p, const char *form) { return p->n_lemma ? ft__strindex_get(&p->lemmas, form) : -1; }

/* NLTK's detachment rules, per part of speech: {suffix, replacement} */
static const char *const RULES_NOUN[][2] = {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"},
                                            {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
static const char *const RULES_VERB[][2] = {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""},
                                            {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}};
static const char *const RULES_ADJ[][2] = {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};

/* Appends form to s when it is a lemma of p and not there yet. */
static int keep_form(strvec *s, const wn_pos *p, const char *form) {
    if (lemma_id(p, form) < 0) return FT_OK;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], form)) return FT_OK;
    return vec_push(s, form, strlen(form));
}

/* key: lower-cased, spaces -> '_' (malloc'd) */
static char *lookup_key(const char *word) {
    size_t n = strlen(word);
    while (n && isspace((unsigned char)word[n - 1])) n--;
    while (n && isspace((unsigned char)*word)) { word++; n--; }
    char *k = dup_mem(word, n);
    if (!k) return NULL;
    for (char *c = k; *c; c++) *c = *c == ' ' ? '_' : (char)tolower((unsigned char)*c);
    return k;
}

static int morphy(strvec *s, const wn_pos *p, int pos, const char *form) {
    FT_TRY(keep_form(s, p, form));
    int e = p->n_exc ? ft__strindex_get(&p->exc_index, form) : -1;
    if (e >= 0) {
        for (int i = 0; i < p->exc_n[e]; i++) FT_TRY(keep_form(s, p, p->exc_words[p->exc_first[e] + i]));
        return FT_OK;
    }
    const char *const (*rules)[2] = pos == FT_WN_NOUN ? RULES_NOUN : pos == FT_WN_VERB ? RULES_VERB : pos == FT_WN_ADJ ? RULES_ADJ : NULL;
    int nr = pos == FT_WN_NOUN ? 9 : pos == FT_WN_VERB ? 8 : pos == FT_WN_ADJ ? 4 : 0;
    size_t n = strlen(form);
    char buf[256];
    for (int r = 0; r < nr; r++) {
        size_t ls = strlen(rules[r][0]), lr = strlen(rules[r][1]);
        if (n < ls || n - ls + lr >= sizeof buf || strcmp(form + n - ls, rules[r][0])) continue;
        memcpy(buf, form, n - ls);
        memcpy(buf + n - ls, rules[r][1], lr + 1);
        FT_TRY(keep_form(s, p, buf));
    }
    return FT_OK;
}

int ft_wordnet_base_forms(const ft_wordnet *wn, const char *word, int pos, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (pos < 0 || pos >= FT_WN_NPOS) return ft_error(FT_ERR_INVALID, "wordnet: part of speech %d", pos);
    char *k = lookup_key(word);
    if (!k) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
    strvec s = {0};
    int rc = *k ? morphy(&s, &wn->p[pos], pos, k) : FT_OK;
    free(k);
    if (rc != FT_OK) { ft_wordnet_strings_free(s.v, s.n); return rc; }
    *out = s.v;
    *n = s.n;
    return FT_OK;
}

/* The words of the synset at byte offset off of p's data file, appended to syn unless excluded or there. */
static int synset_words(strvec *syn, const strvec *exclude, const wn_pos *p, uint32_t off) {
    const char *d = p->data, *end = p->data + p->data_len;
    if (off >= p->data_len || (off > 0 && d[off - 1] != '\n')) return FT_OK;
    const char *s = d + off, *eol = memchr(s, '\n', (size_t)(end - s));
    if (!eol) eol = end;
    /* fields: offset lex_filenum ss_type w_cnt */
    const char *f[4];
    size_t fl[4];
    for (int i = 0; i < 4; i++) {
        while (s < eol && *s == ' ') s++;
        f[i] = s;
        while (s < eol && *s != ' ') s++;
        fl[i] = (size_t)(s - f[i]);
        if (!fl[i]) return FT_OK;
    }
    if (fl[3] > 2) return FT_OK;
    int w_cnt = 0;
    for (size_t i = 0; i < fl[3]; i++) {
        int c = f[3][i], v = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) return FT_OK;
        w_cnt = w_cnt * 16 + v;
    }
    char buf[512];
    for (int i = 0; i < w_cnt; i++) {
        while (s < eol && *s == ' ') s++;
        const char *w = s;
        while (s < eol && *s != ' ') s++;
        size_t wl = (size_t)(s - w);
        while (s < eol && *s == ' ') s++;   /* lex_id */
        const char *lid = s;
        while (s < eol && *s != ' ') s++;
        if (!wl || s == lid) return FT_OK;  /* truncated line */
        if (wl >= sizeof buf) continue;
        memcpy(buf, w, wl);
        buf[wl] = 0;
        char *par = strchr(buf, '(');       /* adjective markers (a) (p) (ip) */
        if (par && par > buf && buf[wl - 1] == ')') *par = 0;
        for (char *c = buf; *c; c++)
            if (*c == '_') *c = ' ';
        if (!*buf || vec_has(syn, buf) || vec_has(exclude, buf)) continue;
        FT_TRY(vec_push(syn, buf, strlen(buf)));
    }
    return FT_OK;
}

int ft_wordnet_synonyms(const ft_wordnet *wn, const char *word, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    char *k = lookup_key(word);
    if (!k) return ft_error(FT_ERR_NOMEM, "wordnet: out of memory");
    strvec forms[FT_WN_NPOS] = {{0}}, exclude = {0}, syn = {0};
    int rc = FT_OK;
    if (*k) {
        rc = vec_push(&exclude, k, strlen(k));
        for (char *c = exclude.n ? exclude.v[0] : NULL; c && *c; c++)
            if (*c == '_') *c = ' ';
    }
    for (int i = 0; i < FT_WN_NPOS && rc == FT_OK && *k; i++) {
        rc = morphy(&forms[i], &wn->p[i], i, k);
        for (int j = 0; j < forms[i].n && rc == FT_OK; j++) {
            char *b = dup_mem(forms[i].v[j], strlen(forms[i].v[j]));
            if (!b) { rc = ft_error(FT_ERR_NOMEM, "wordnet: out of memory"); break; }
            for (char *c = b; *c; c++)
                if (*c == '_') *c = ' ';
            if (!vec_has(&exclude, b)) rc = vec_push(&exclude, b, strlen(b));
            free(b);
        }
    }
    for (int i = 0; i < FT_WN_NPOS && rc == FT_OK; i++) {
        const wn_pos *p = &wn->p[i];
        for (int j = 0; j < forms[i].n && rc == FT_OK; j++) {
            int id = lemma_id(p, forms[i].v[j]);
            for (uint32_t o = 0; id >= 0 && o < p->count[id] && rc == FT_OK; o++)
                rc = synset_words(&syn, &exclude, p, p->offs[p->first[id] + o]);
        }
    }
    for (int i = 0; i < FT_WN_NPOS; i++) ft_wordnet_strings_free(forms[i].v, forms[i].n);
    ft_wordnet_strings_free(exclude.v, exclude.n);
    free(k);
    if (rc != FT_OK) { ft_wordnet_strings_free(syn.v, syn.n); return rc; }
    *out = syn.v;
    *n = syn.n;
    return FT_OK;
}
