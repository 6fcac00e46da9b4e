/* augment_eda.c — EDA's four operations (synonym replacement, random insertion, random swap, random
 * deletion) and its eda() driver over whitespace-separated words, as described in augment.h. */
#include "finetune/augment.h"
#include "finetune/status.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *ft_aug_op_name(ft_aug_op op) {
    switch (op) {
    case FT_AUG_ORIGINAL: return "original";
    case FT_AUG_SR: return "synonym_replacement";
    case FT_AUG_RI: return "random_insertion";
    case FT_AUG_RS: return "random_swap";
    case FT_AUG_RD: return "random_deletion";
    case FT_AUG_MLM: return "mlm";
    case FT_AUG_COUNTERFACTUAL: return "counterfactual";
    }
    return "?";
}

/* English function words (pronouns, articles, auxiliaries, prepositions, conjunctions) */
static const char *const STOP[] = {
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to",
    "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    "'s", "n't", "'re", "'ve", "'ll", "'d", "'m", "s", "t",
};

int ft_aug_is_stop_word(const char *word) {
    char low[32];
    size_t n = strlen(word);
    if (n >= sizeof low) return 0;
    for (size_t i = 0; i <= n; i++) low[i] = (char)tolower((unsigned char)word[i]);
    for (size_t i = 0; i < sizeof STOP / sizeof *STOP; i++)
        if (!strcmp(low, STOP[i])) return 1;
    return 0;
}

ft_eda_options ft_eda_default_options(void) {
    ft_eda_options o = {0.1, 0.1, 0.1, 0.1, 4};
    return o;
}

void ft_aug_texts_free(char **texts, int n) {
    if (!texts) return;
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
}

/* ---- a word list: words[n], each malloc'd ---- */
typedef struct words { char **w; int n, cap; } words;

static void words_free(words *v) {
    for (int i = 0; i < v->n; i++) free(v->w[i]);
    free(v->w);
    v->w = NULL;
    v->n = v->cap = 0;
}

static int words_insert(words *v, int at, const char *s, size_t len) {
    if (v->n == v->cap) {
        int c = v->cap ? v->cap * 2 : 16;
        char **nw = realloc(v->w, (size_t)c * sizeof *nw);
        if (!nw) return ft_error(FT_ERR_NOMEM, "augment: out of memory");
        v->w = nw;
        v->cap = c;
    }
    char *d = malloc(len + 1);
    if (!d) return ft_error(FT_ERR_NOMEM, "augment: out of memory");
    memcpy(d, s, len);
    d[len] = 0;
    memmove(v->w + at + 1, v->w + at, (size_t)(v->n - at) * sizeof *v->w);
    v->w[at] = d;
    v->n++;
    return FT_OK;
}

static int words_split(words *v, const char *text) {
    const char *s = text;
    while (*s) {
        while (*s && isspace((unsigned char)*s)) s++;
        const char *b = s;
        while (*s && !isspace((unsigned char)*s)) s++;
        if (s > b) FT_TRY(words_insert(v, v->n, b, (size_t)(s - b)));
    }
    return FT_OK;
}

static int words_join(const words *v, char **out) {
    size_t len = 1;
    for (int i = 0; i < v->n; i++) len += strlen(v->w[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return ft_error(FT_ERR_NOMEM, "augment: out of memory");
    for (int i = 0; i < v->n; i++) {
        size_t l = strlen(v->w[i]);
        if (i) *p++ = ' ';
        memcpy(p, v->w[i], l);
        p += l;
    }
    *p = 0;
    *out = s;
    return FT_OK;
}

/* a word worth a synonym: has a letter, is not a stop word */
static int content_word(const char *w) {
    int letter = 0;
    for (const char *c = w; *c; c++) letter |= isalpha((unsigned char)*c);
    return letter && !ft_aug_is_stop_word(w);
}

/* The usable synonyms of word (letters, '-', ' ' only), lower-cased, capitalised like word. */
static int synonyms(const ft_wordnet *wn, const char *word, char ***out, int *n) {
    FT_TRY(ft_wordnet_synonyms(wn, word, out, n));
    int k = 0;
    for (int i = 0; i < *n; i++) {
        char *s = (*out)[i];
        int ok = 1;
        for (char *c = s; *c && ok; c++) {
            ok = isalpha((unsigned char)*c) || *c == '-' || *c == ' ';
            *c = (char)tolower((unsigned char)*c);
        }
        if (!ok) { free(s); continue; }
        if (isupper((unsigned char)word[0])) s[0] = (char)toupper((unsigned char)s[0]);
        (*out)[k++] = s;
    }
    *n = k;
    return FT_OK;
}

static int op_sr(words *v, int n_rep, const ft_wordnet *wn, ft_rng *r) {
    /* the distinct content words, in first-seen order, then shuffled */
    int *cand = malloc((size_t)(v->n ? v->n : 1) * sizeof *cand), nc = 0;
    if (!cand) return ft_error(FT_ERR_NOMEM, "augment: out of memory");
    for (int i = 0; i < v->n; i++) {
        if (!content_word(v->w[i])) continue;
        int seen = 0;
        for (int j = 0; j < nc && !seen; j++) seen = !strcmp(v->w[cand[j]], v->w[i]);
        if (!seen) cand[nc++] = i;
    }
    ft_rng_shuffle_int(r, cand, nc);
    int replaced = 0, rc = FT_OK;
    /* the words to replace, copied: replacing changes v->w[cand[j]] itself */
    for (int j = 0; j < nc && replaced < n_rep && rc == FT_OK; j++) {
        char *word = strdup(v->w[cand[j]]);
        if (!word) { rc = ft_error(FT_ERR_NOMEM, "augment: out of memory"); break; }
        char **syn; int ns;
        rc = synonyms(wn, word, &syn, &ns);
        if (rc == FT_OK && ns > 0) {
            const char *pick = syn[ft_rng_below(r, (uint64_t)ns)];
            for (int i = 0; i < v->n && rc == FT_OK; i++) {
                if (strcmp(v->w[i], word)) continue;
                char *d = strdup(pick);
                if (!d) { rc = ft_error(FT_ERR_NOMEM, "augment: out of memory"); break; }
                free(v->w[i]);
                v->w[i] = d;
            }
            replaced++;
        }
        if (rc == FT_OK) ft_wordnet_strings_free(syn, ns);
        free(word);
    }
    free(cand);
    return rc;
}

static int op_ri(words *v, int n_ins, const ft_wordnet *wn, ft_rng *r) {
    for (int k = 0; k < n_ins && v->n > 0; k++) {
        char **syn = NULL;
        int ns = 0;
        for (int tries = 0; tries < 10 && ns == 0; tries++) {
            const char *w = v->w[ft_rng_below(r, (uint64_t)v->n)];
            if (!content_word(w)) continue;
            FT_TRY(synonyms(wn, w, &syn, &ns));
            if (ns == 0) { free(syn); syn = NULL; }
        }
        if (ns == 0) return FT_OK;
        const char *pick = syn[ft_rng_below(r, (uint64_t)ns)];
        int at = (int)ft_rng_below(r, (uint64_t)v->n + 1);
        int rc = words_insert(v, at, pick, strlen(pick));
        ft_wordnet_strings_free(syn, ns);
        FT_TRY(rc);
    }
    return FT_OK;
}

static void op_rs(words *v, int n_swap, ft_rng *r) {
    if (v->n < 2) return;
    for (int k = 0; k < n_swap; k++) {
        int a = (int)ft_rng_below(r, (uint64_t)v->n), b = a;
        for (int tries = 0; b == a && tries < 4; tries++) b = (int)ft_rng_below(r, (uint64_t)v->n);
        if (b == a) return;
        char *t = v->w[a]; v->w[a] = v->w[b]; v->w[b] = t;
    }
}

static void op_rd(words *v, double p, ft_rng *r) {
    if (v->n <= 1) return;
    int keep = 0, n = v->n;
    char **w = v->w;
    unsigned char *del = malloc((size_t)n);
    if (!del) return;   /* deletion is best effort: no memory leaves the words as they are */
    for (int i = 0; i < n; i++) { del[i] = ft_rng_uniform_f64(r) <= p; keep += !del[i]; }
    if (keep == 0) del[ft_rng_below(r, (uint64_t)n)] = 0;
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (del[i]) free(w[i]);
        else w[j++] = w[i];
    }
    v->n = j;
    free(del);
}

int ft_eda_apply(char **out, const char *text, ft_aug_op op, double alpha, const ft_wordnet *wn, ft_rng *r) {
    *out = NULL;
    if ((op == FT_AUG_SR || op == FT_AUG_RI) && !wn) return ft_error(FT_ERR_INVALID, "augment: %s needs WordNet", ft_aug_op_name(op));
    if (!(alpha >= 0 && alpha <= 1)) return ft_error(FT_ERR_INVALID, "augment: alpha %g outside [0, 1]", alpha);
    words v = {0};
    int rc = words_split(&v, text);
    int n = (int)(alpha * v.n);
    if (n < 1) n = 1;
    if (rc == FT_OK) {
        switch (op) {
        case FT_AUG_SR: rc = op_sr(&v, n, wn, r); break;
        case FT_AUG_RI: rc = op_ri(&v, n, wn, r); break;
        case FT_AUG_RS: op_rs(&v, n, r); break;
        case FT_AUG_RD: op_rd(&v, alpha, r); break;
        default: rc = ft_error(FT_ERR_INVALID, "augment: %s is not an EDA operation", ft_aug_op_name(op));
        }
    }
    if (rc == FT_OK) rc = words_join(&v, out);
    words_free(&v);
    return rc;
}

int ft_eda_augment(char ***texts, ft_aug_op **ops, int *n, const char *text, const ft_eda_options *o,
                   const ft_wordnet *wn, ft_rng *r) {
    *texts = NULL;
    *ops = NULL;
    *n = 0;
    if (o->n_aug < 0) return ft_error(FT_ERR_INVALID, "augment: n_aug = %d", o->n_aug);
    int any = 0;
    for (const char *c = text; *c && !any; c++) any = !isspace((unsigned char)*c);
    if (!any || o->n_aug == 0) return FT_OK;
    const ft_aug_op kinds[4] = {FT_AUG_SR, FT_AUG_RI, FT_AUG_RS, FT_AUG_RD};
    const double alphas[4] = {o->alpha_sr, o->alpha_ri, o->alpha_rs, o->p_rd};
    int per = o->n_aug / 4 + 1, cap = 4 * per, m = 0;
    char **t = calloc((size_t)cap, sizeof *t);
    ft_aug_op *k = malloc((size_t)cap * sizeof *k);
    int *perm = malloc((size_t)cap * sizeof *perm);
    int rc = (t && k && perm) ? FT_OK : ft_error(FT_ERR_NOMEM, "augment: out of memory");
    for (int op = 0; op < 4 && rc == FT_OK; op++) {
        if (alphas[op] <= 0) continue;
        for (int i = 0; i < per && rc == FT_OK; i++) {
            rc = ft_eda_apply(&t[m], text, kinds[op], alphas[op], wn, r);
            if (rc == FT_OK) k[m++] = kinds[op];
        }
    }
    if (rc != FT_OK) { ft_aug_texts_free(t, m); free(k); free(perm); return rc; }
    for (int i = 0; i < m; i++) perm[i] = i;
    ft_rng_shuffle_int(r, perm, m);
    int keep = m < o->n_aug ? m : o->n_aug;
    char **ot = malloc((size_t)(keep ? keep : 1) * sizeof *ot);
    ft_aug_op *ok = malloc((size_t)(keep ? keep : 1) * sizeof *ok);
    if (!ot || !ok) { free(ot); free(ok); ft_aug_texts_free(t, m); free(k); free(perm); return ft_error(FT_ERR_NOMEM, "augment: out of memory"); }
    for (int i = 0; i < keep; i++) { ot[i] = t[perm[i]]; ok[i] = k[perm[i]]; t[perm[i]] = NULL; }
    ft_aug_texts_free(t, m);
    free(k);
    free(perm);
    *texts = ot;
    *ops = ok;
    *n = keep;
    return FT_OK;
}
