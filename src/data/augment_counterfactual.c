/* augment_counterfactual.c — counterfactual swaps of paired words (he <-> she, ...), case kept (augment.h). */
#include "finetune/augment.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/strbuf.h"
#include "core/strindex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct ft_cf_pairs {
    char        *buf;      /* the list, cut into NUL-terminated words */
    ft__strindex index;    /* word -> partner id (an index into words) */
    char       **words;    /* [n_words] every word of the list */
    int          n_words, n_pairs;
};

int ft_cf_pairs_count(const ft_cf_pairs *p) { return p->n_pairs; }

void ft_cf_pairs_free(ft_cf_pairs *p) {
    if (!p) return;
    ft__strindex_free(&p->index);
    free(p->words);
    free(p->buf);
    free(p);
}

static int word_ok(const char *w) {
    if (!*w) return 0;
    for (const char *c = w; *c; c++)
        if (!(*c >= 'a' && *c <= 'z')) return 0;
    return 1;
}

int ft_cf_pairs_parse(ft_cf_pairs **out, const char *buf, size_t len, const char *what) {
    *out = NULL;
    ft_cf_pairs *p = calloc(1, sizeof *p);
    if (!p || !(p->buf = malloc(len + 1))) { free(p); return ft_error(FT_ERR_NOMEM, "counterfactual pairs: out of memory"); }
    memcpy(p->buf, buf, len);
    p->buf[len] = 0;
    int lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    p->words = malloc((size_t)lines * 2 * sizeof *p->words);
    if (!p->words) { ft_cf_pairs_free(p); return ft_error(FT_ERR_NOMEM, "counterfactual pairs: out of memory"); }
    char *s = p->buf, *end = p->buf + len;
    for (int line = 1; s < end || (s == end && line == 1); line++) {
        char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e) e = end;
        *e = 0;
        char *f[3];
        int n = 0;
        for (char *c = s; *c && n < 3;) {
            while (*c && isspace((unsigned char)*c)) *c++ = 0;
            if (!*c) break;
            f[n++] = c;
            while (*c && !isspace((unsigned char)*c)) c++;
        }
        if (n > 0 && f[0][0] != '#') {
            if (n != 2 || !word_ok(f[0]) || !word_ok(f[1]) || !strcmp(f[0], f[1])) {
                ft_cf_pairs_free(p);
                return ft_error(FT_ERR_FORMAT, "%s: line %d: expected two different lower-case words (\"he she\")", what, line);
            }
            int a = p->n_words, b = a + 1, prev;
            p->words[a] = f[0];
            p->words[b] = f[1];
            p->n_words += 2;
            /* the first pair of a word decides its partner */
            if (ft__strindex_put(&p->index, f[0], b, &prev) < 0 || ft__strindex_put(&p->index, f[1], a, &prev) < 0) {
                ft_cf_pairs_free(p);
                return ft_error(FT_ERR_NOMEM, "counterfactual pairs: out of memory");
            }
            p->n_pairs++;
        }
        s = e + 1;
        if (e == end) break;
    }
    if (p->n_pairs == 0) { ft_cf_pairs_free(p); return ft_error(FT_ERR_FORMAT, "%s: no word pairs", what); }
    *out = p;
    return FT_OK;
}

int ft_cf_pairs_load(ft_cf_pairs **out, const char *path) {
    char *buf;
    size_t len;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    int rc = ft_cf_pairs_parse(out, buf, len, path);
    free(buf);
    return rc;
}

const char *ft_cf_partner(const ft_cf_pairs *p, const char *word) {
    char low[64];
    size_t n = strlen(word);
    if (n == 0 || n >= sizeof low) return NULL;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)word[i]);
    int id = ft__strindex_get(&p->index, low);
    return id < 0 ? NULL : p->words[id];
}

static int is_letter(unsigned char c) { return isalpha(c) || c >= 0x80; }

int ft_cf_swap(char **out, int *n_swaps, const ft_cf_pairs *p, const char *text) {
    *out = NULL;
    if (n_swaps) *n_swaps = 0;
    ft__sb sb = {0};
    const char *s = text;
    int swaps = 0;
    char word[64];
    while (*s) {
        const char *b = s;
        while (*s && !is_letter((unsigned char)*s)) s++;
        if (s > b && ft__sb_put(&sb, b, (size_t)(s - b)) < 0) goto oom;
        b = s;
        while (*s && is_letter((unsigned char)*s)) s++;
        size_t n = (size_t)(s - b);
        if (!n) continue;
        const char *partner = NULL;
        if (n < sizeof word) {
            memcpy(word, b, n);
            word[n] = 0;
            partner = ft_cf_partner(p, word);
        }
        if (!partner) {
            if (ft__sb_put(&sb, b, n) < 0) goto oom;
            continue;
        }
        /* case pattern: ALL CAPS (two letters or more), Capitalised, lower */
        int all_upper = n > 1, first_upper = isupper((unsigned char)b[0]);
        for (size_t i = 0; i < n; i++) all_upper &= isupper((unsigned char)b[i]) != 0;
        size_t pl = strlen(partner);
        char rep[64];
        for (size_t i = 0; i <= pl; i++)
            rep[i] = (all_upper || (i == 0 && first_upper)) ? (char)toupper((unsigned char)partner[i]) : partner[i];
        if (ft__sb_put(&sb, rep, pl) < 0) goto oom;
        swaps++;
    }
    if (ft__sb_put(&sb, "", 0) < 0) goto oom;
    *out = ft__sb_take(&sb, NULL);
    if (!*out) goto oom;
    if (n_swaps) *n_swaps = swaps;
    return FT_OK;
oom:
    ft__sb_free(&sb);
    return ft_error(FT_ERR_NOMEM, "counterfactual: out of memory");
}
