/* classify_conll.c — CoNLL token<TAB>tag files and word -> subtoken label alignment. */
#include "finetune/classify_data.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void ft_conll_free(ft_conll *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->n_tok; i++) free(c->tokens[i]);
    free(c->tokens); free(c->tags); free(c->line); free(c->sent_off);
    ft_label_map_free(&c->tag_map);
    memset(c, 0, sizeof *c);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ft_conll_parse(ft_conll *out, const char *path, const char *s, size_t n, const ft_label_map *given) {
    memset(out, 0, sizeof *out);
    int64_t cap = 0, scap = 0;
    char **tagstr = NULL;
    int rc = FT_OK, line = 0, in_sent = 0;
    size_t i = 0;
#define GROW_S() do { if (out->n_sent + 2 > scap) { scap = scap ? scap * 2 : 256; \
        int64_t *q = realloc(out->sent_off, (size_t)scap * sizeof *q); if (!q) goto nomem; out->sent_off = q; } } while (0)
    GROW_S();
    out->sent_off[0] = 0;
    while (i <= n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        line++;
        size_t a = i, z = e;
        i = e + 1;
        if (e >= n && a >= n) { /* end of input */ }
        while (z > a && isspace((unsigned char)s[z - 1])) z--;
        while (a < z && isspace((unsigned char)s[a])) a++;
        int blank_line = a == z;
        int docstart = !blank_line && z - a >= 10 && strncmp(s + a, "-DOCSTART-", 10) == 0 &&
                       (z - a == 10 || isspace((unsigned char)s[a + 10]));
        if (blank_line || docstart) {
            if (in_sent) {
                GROW_S();
                out->sent_off[++out->n_sent] = out->n_tok;
                in_sent = 0;
            }
            if (e >= n) break;
            continue;
        }
        /* token: up to the first TAB (or whitespace); tag: the last field */
        size_t t_end = a;
        const char *tab = memchr(s + a, '\t', z - a);
        if (tab) t_end = (size_t)(tab - s);
        else while (t_end < z && !isspace((unsigned char)s[t_end])) t_end++;
        size_t g = z;
        while (g > t_end && !isspace((unsigned char)s[g - 1])) g--;
        if (g <= t_end || t_end == a) {
            rc = ft_error(FT_ERR_FORMAT, "%s: line %d: expected 'token<TAB>tag', got '%.*s'", path, line, (int)(z - a > 60 ? 60 : z - a), s + a);
            goto fail;
        }
        if (out->n_tok == cap) {
            int64_t c = cap ? cap * 2 : 1024;
            char **p = realloc(out->tokens, (size_t)c * sizeof *p);
            if (p) out->tokens = p;
            char **q = realloc(tagstr, (size_t)c * sizeof *q);
            if (q) tagstr = q;
            int *l = realloc(out->line, (size_t)c * sizeof *l);
            if (l) out->line = l;
            if (!p || !q || !l) goto nomem;
            cap = c;
        }
        int64_t k = out->n_tok;
        out->tokens[k] = strndup(s + a, t_end - a);
        tagstr[k] = strndup(s + g, z - g);
        out->line[k] = line;
        out->n_tok++;
        if (!out->tokens[k] || !tagstr[k]) goto nomem;
        in_sent = 1;
        if (e >= n) {
            GROW_S();
            out->sent_off[++out->n_sent] = out->n_tok;
            in_sent = 0;
            break;
        }
    }
#undef GROW_S
    if (out->n_tok == 0) { rc = ft_error(FT_ERR_FORMAT, "%s: no tokens", path); goto fail; }
    out->tags = malloc((size_t)out->n_tok * sizeof *out->tags);
    if (!out->tags) goto nomem;
    if (given) {
        if ((rc = ft_label_map_copy(&out->tag_map, given)) < 0) goto fail;
    } else {
        char **u = malloc((size_t)out->n_tok * sizeof *u);
        if (!u) goto nomem;
        memcpy(u, tagstr, (size_t)out->n_tok * sizeof *u);
        qsort(u, (size_t)out->n_tok, sizeof *u, cmp_str);
        int64_t m = 0;
        for (int64_t j = 0; j < out->n_tok; j++) if (m == 0 || strcmp(u[m - 1], u[j]) != 0) u[m++] = u[j];
        rc = ft_label_map_init(&out->tag_map, (const char *const *)u, (int)m);
        free(u);
        if (rc < 0) goto fail;
    }
    for (int64_t j = 0; j < out->n_tok; j++) {
        out->tags[j] = ft_label_map_id(&out->tag_map, tagstr[j]);
        if (out->tags[j] < 0) {
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: line %d: unknown tag '%s' (not in the tag map of %d tags)", path,
                          out->line[j], tagstr[j], out->tag_map.n);
            goto fail;
        }
    }
    for (int64_t j = 0; j < out->n_tok; j++) free(tagstr[j]);
    free(tagstr);
    return FT_OK;
nomem:
    rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
fail:
    for (int64_t j = 0; tagstr && j < out->n_tok; j++) free(tagstr[j]);
    free(tagstr);
    ft_conll_free(out);
    return rc;
}

int ft_conll_load(ft_conll *out, const char *path, const ft_label_map *tag_map) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    FT_TRY(ft_file_read_all(path, &buf, &len));
    int rc = ft_conll_parse(out, path, buf, len, tag_map);
    free(buf);
    return rc;
}

int ft_conll_encode(const ft_tokenizer *tok, const char *const *words, const int *tags, int n_words,
                    int max_len, int **ids, int **labels, int **word_ids, int *n) {
    *ids = NULL; *labels = NULL; *n = 0;
    if (word_ids) *word_ids = NULL;
    int room = max_len > 0 ? max_len - ft_tokenizer_num_special_tokens(tok, 0) : -1;
    if (max_len > 0 && room < 1) return ft_error(FT_ERR_RANGE, "max_len %d leaves no room after the special tokens", max_len);
    int prefix_space = ft_tokenizer_get_kind(tok) == FT_TOK_BYTE_BPE;
    int cap = 64, m = 0, rc = FT_OK;
    int *sub = malloc((size_t)cap * sizeof *sub), *lab = malloc((size_t)cap * sizeof *lab), *wid = malloc((size_t)cap * sizeof *wid);
    char *tmp = NULL;
    size_t tmp_cap = 0;
    int *full = NULL, *fl = NULL, *fw = NULL, nf = 0;
    if (!sub || !lab || !wid) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
    for (int w = 0; w < n_words; w++) {
        size_t wl = strlen(words[w]);
        if (tmp_cap < wl + 2) {
            tmp_cap = wl + 64;
            char *t = realloc(tmp, tmp_cap);
            if (!t) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
            tmp = t;
        }
        size_t tl = 0;
        if (prefix_space) tmp[tl++] = ' ';
        memcpy(tmp + tl, words[w], wl);
        tl += wl;
        int *wi = NULL, wn = 0;
        if ((rc = ft_tokenizer_encode(tok, tmp, tl, FT_TOK_NO_SPECIAL_PARSE, &wi, &wn)) < 0) goto done;
        if (room >= 0 && m + wn > room) { free(wi); break; }   /* the word does not fit: stop here */
        if (m + wn > cap) {
            while (cap < m + wn) cap *= 2;
            int *a = realloc(sub, (size_t)cap * sizeof *a); if (a) sub = a;
            int *b = realloc(lab, (size_t)cap * sizeof *b); if (b) lab = b;
            int *c = realloc(wid, (size_t)cap * sizeof *c); if (c) wid = c;
            if (!a || !b || !c) { free(wi); rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
        }
        for (int j = 0; j < wn; j++) {
            sub[m + j] = wi[j];
            lab[m + j] = j == 0 ? tags[w] : FT_CLS_IGNORE;
            wid[m + j] = w;
        }
        m += wn;
        free(wi);
    }
    if ((rc = ft_tokenizer_build_inputs(tok, sub, m, NULL, 0, &full, NULL, &nf)) < 0) goto done;
    /* where the words' ids sit inside the special tokens */
    int p = 0;
    while (p + m <= nf && memcmp(full + p, sub, (size_t)m * sizeof *sub) != 0) p++;
    if (p + m > nf) { rc = ft_error(FT_ERR_FORMAT, "token classification: the post-processor changed the word ids"); goto done; }
    fl = malloc((size_t)(nf ? nf : 1) * sizeof *fl);
    fw = malloc((size_t)(nf ? nf : 1) * sizeof *fw);
    if (!fl || !fw) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
    for (int t = 0; t < nf; t++) {
        int in = t >= p && t < p + m;
        fl[t] = in ? lab[t - p] : FT_CLS_IGNORE;
        fw[t] = in ? wid[t - p] : -1;
    }
    *ids = full; full = NULL;
    *labels = fl; fl = NULL;
    if (word_ids) { *word_ids = fw; fw = NULL; }
    *n = nf;
done:
    free(sub); free(lab); free(wid); free(tmp); free(full); free(fl); free(fw);
    return rc;
}
