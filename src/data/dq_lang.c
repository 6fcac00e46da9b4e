/* dq_lang.c — stop-word lists (one file per language, the Snowball format: a word at the start of a line,
 * '|' begins a comment) and the stop-word-profile language guess. */
#include "data/dq_internal.h"
#include "core/strindex.h"
#include "finetune/fileio.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

typedef struct dq_lang {
    char  code[16];
    char *words;        /* the file's words, NUL-separated (keys of idx point into it) */
    ft__strindex idx;
} dq_lang;

struct ft_dq_stopwords {
    dq_lang *lang;
    int n;
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_one(dq_lang *L, const char *path) {
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &L->words, &len));
    char *s = L->words;
    size_t i = 0;
    int id = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && s[e] != '\n') e++;
        size_t a = i;
        while (a < e && (s[a] == ' ' || s[a] == '\t')) a++;
        size_t z = a;
        while (z < e && s[z] != ' ' && s[z] != '\t' && s[z] != '|' && s[z] != '\r') z++;
        if (z > a && s[a] != '|' && s[a] != '#') {
            s[z] = 0;
            int prev;
            if (ft__strindex_put(&L->idx, s + a, id++, &prev) < 0) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
        }
        i = e + 1;
    }
    return FT_OK;
}

int ft_dq_stopwords_load(ft_dq_stopwords **out, const char *dir) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return ft_error(FT_ERR_IO, "%s: cannot open the stop-word folder", dir);
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64) {
        size_t l = strlen(e->d_name);
        if (l > 4 && l < 16 && !strcmp(e->d_name + l - 4, ".txt")) names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    ft_dq_stopwords *sw = calloc(1, sizeof *sw);
    if (sw) sw->lang = calloc((size_t)(nn ? nn : 1), sizeof *sw->lang);
    int rc = sw && sw->lang ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory (stop words)");
    for (int i = 0; i < nn; i++) if (!names[i]) rc = ft_error(FT_ERR_NOMEM, "out of memory (stop words)");
    if (rc == FT_OK && nn) qsort(names, (size_t)nn, sizeof *names, cmp_name);
    for (int i = 0; i < nn && rc == FT_OK; i++) {
        char path[4096];
        ft_path_join(path, sizeof path, dir, names[i]);
        dq_lang *L = &sw->lang[sw->n++];
        snprintf(L->code, sizeof L->code, "%.*s", (int)(strlen(names[i]) - 4), names[i]);
        rc = load_one(L, path);
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    if (rc == FT_OK && sw->n == 0) rc = ft_error(FT_ERR_NOT_FOUND, "%s: no <lang>.txt stop-word lists", dir);
    if (rc != FT_OK) { ft_dq_stopwords_free(sw); return rc; }
    *out = sw;
    return FT_OK;
}

void ft_dq_stopwords_free(ft_dq_stopwords *sw) {
    if (!sw) return;
    for (int i = 0; i < sw->n; i++) { ft__strindex_free(&sw->lang[i].idx); free(sw->lang[i].words); }
    free(sw->lang);
    free(sw);
}

int ft_dq_stopwords_count(const ft_dq_stopwords *sw) { return sw ? sw->n : 0; }
const char *ft_dq_stopwords_lang(const ft_dq_stopwords *sw, int i) {
    return sw && i >= 0 && i < sw->n ? sw->lang[i].code : NULL;
}

static const dq_lang *find_lang(const ft_dq_stopwords *sw, const char *lang) {
    for (int i = 0; sw && i < sw->n; i++) if (!strcmp(sw->lang[i].code, lang)) return &sw->lang[i];
    return NULL;
}

static int in_list(const dq_lang *L, const char *w, size_t n) {
    char buf[64];
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, w, n);
    buf[n] = 0;
    return ft__strindex_get(&L->idx, buf) >= 0;
}

int ft_dq_is_stopword(const ft_dq_stopwords *sw, const char *lang, const char *w, size_t n) {
    const dq_lang *L = find_lang(sw, lang);
    return L ? in_list(L, w, n) : 0;
}

const char *ft_dq_guess_lang(const ft_dq_stopwords *sw, const char *text, size_t len) {
    if (!sw || !sw->n) return "und";
    char *low = NULL;
    size_t ln = 0;
    if (ft__dq_lower(text, len, &low, &ln) < 0) return "und";
    /* words here keep an inner apostrophe (don't, l'homme is split at it: l, homme) */
    ft_dq_span *w = NULL;
    int64_t nw = 0;
    if (ft__dq_words(low, ln, &w, &nw) < 0) { free(low); return "und"; }
    /* single letters are left out: French lists its elisions (l, d, n, ...), which English "n't" splits off too */
    int best = -1;
    int64_t best_hits = 0, second = 0, counted = 0;
    for (int64_t i = 0; i < nw; i++) counted += ft__dq_count_chars(low + w[i].s, w[i].e - w[i].s) >= 2;
    for (int l = 0; l < sw->n; l++) {
        int64_t hits = 0;
        for (int64_t i = 0; i < nw; i++)
            if (ft__dq_count_chars(low + w[i].s, w[i].e - w[i].s) >= 2) hits += in_list(&sw->lang[l], low + w[i].s, w[i].e - w[i].s);
        if (hits > best_hits) { second = best_hits; best_hits = hits; best = l; }
        else if (hits > second) second = hits;
    }
    free(low);
    free(w);
    if (best >= 0 && best_hits >= 2 && best_hits * 10 >= counted && best_hits > second) return sw->lang[best].code;
    return "und";
}
