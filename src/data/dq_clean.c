/* dq_clean.c — ft_dq_clean: the cleaning steps of dataquality.h applied in the order given, each over all
 * kept records, each change or drop counted per step and written to the JSONL log:
 *   {"record": 12, "line": 14, "step": "lower", "field": "sentence", "before": "...", "after": "..."}
 *   {"record": 40, "line": 42, "step": "neardup", "drop": "near duplicate of record 3 (line 5), Jaccard 0.83", "text": "..."}
 * Text steps edit only the text fields (every string leaf of a nested JSON field but role / from / ...). */
#include "data/dq_internal.h"
#include "core/strbuf.h"
#include "finetune/fileio.h"

#include <stdlib.h>
#include <string.h>

static const char *const k_step_names[FT_DQ_STEPS] = {"lower", "html", "punct", "space", "urls", "mentions", "hashtags",
                                                      "stopwords", "stem", "neardup", "length", "lang", "conflicts"};
const char *ft_dq_step_name(ft_dq_step s) { return (unsigned)s < FT_DQ_STEPS ? k_step_names[s] : "?"; }

int ft_dq_steps_parse(const char *list, int *steps, int cap, int *n) {
    *n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            int found = -1;
            for (int s = 0; s < FT_DQ_STEPS; s++)
                if (strlen(k_step_names[s]) == len && !memcmp(k_step_names[s], p, len)) found = s;
            if (found < 0)
                return ft_error(FT_ERR_INVALID, "unknown cleaning step '%.*s' (steps: lower, html, punct, space, urls, mentions, "
                                "hashtags, stopwords, stem, neardup, length, lang, conflicts)", (int)len, p);
            if (*n >= cap) return ft_error(FT_ERR_RANGE, "more than %d cleaning steps", cap);
            steps[(*n)++] = found;
        }
        p += len + (e != NULL);
    }
    return FT_OK;
}

ft_dq_clean_options ft_dq_clean_default_options(void) {
    ft_dq_clean_options o;
    memset(&o, 0, sizeof o);
    o.lang = "en";
    o.keep_langs = "en";
    o.min_words = 1;
    o.conflicts = FT_DQ_CONFLICT_MAJORITY;
    o.minhash = ft_dq_minhash_default_options();
    return o;
}

typedef struct clean_ctx {
    const ft_dq_clean_options *o;
    ft_dq_scanner *sc;
    ft_dq_stopwords *sw;
    ft_dq_stemmer *stem;
    int step;
} clean_ctx;

/* ---- text steps: s[0..n) -> malloc'd result, or NULL (unchanged) ---- */
static char *step_lower(const char *s, size_t n, int *err) {
    char *o = NULL;
    if (ft__dq_lower(s, n, &o, NULL) < 0) *err = FT_ERR_NOMEM;
    return o;
}

static const struct { const char *name; const char *text; } k_entities[] = {
    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}, {"hellip", "\xE2\x80\xA6"},
    {"mdash", "\xE2\x80\x94"}, {"ndash", "\xE2\x80\x93"}, {"lsquo", "\xE2\x80\x98"}, {"rsquo", "\xE2\x80\x99"},
    {"ldquo", "\xE2\x80\x9C"}, {"rdquo", "\xE2\x80\x9D"}, {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"euro", "\xE2\x82\xAC"},
};
static int inline_tag(const char *name, size_t len) {
    static const char *const k_inline[] = {"a", "b", "i", "u", "em", "strong", "span", "font", "sup", "sub", "small", "code", "mark", "s"};
    for (unsigned k = 0; k < sizeof k_inline / sizeof *k_inline; k++)
        if (strlen(k_inline[k]) == len && !strncasecmp(k_inline[k], name, len)) return 1;
    return 0;
}

static char *step_html(const char *s, size_t n, int *err) {
    ft__sb o = {0};
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '<' && i + 1 < n && (((s[i + 1] | 0x20) >= 'a' && (s[i + 1] | 0x20) <= 'z') || s[i + 1] == '/' || s[i + 1] == '!')) {
            const char *gt = memchr(s + i, '>', n - i);
            if (gt) {
                size_t a = i + 1 + (s[i + 1] == '/');
                size_t z = a;
                while (z < (size_t)(gt - s) && ((s[z] | 0x20) >= 'a' && (s[z] | 0x20) <= 'z')) z++;
                if (!inline_tag(s + a, z - a)) ft__sb_putc(&o, ' ');
                i = (size_t)(gt - s) + 1;
                continue;
            }
        }
        if (c == '&') {
            const char *semi = memchr(s + i, ';', n - i < 12 ? n - i : 12);
            if (semi) {
                size_t a = i + 1, len = (size_t)(semi - s) - a;
                int done = 0;
                if (len >= 2 && s[a] == '#') {
                    long cp = (s[a + 1] | 0x20) == 'x' ? strtol(s + a + 2, NULL, 16) : strtol(s + a + 1, NULL, 10);
                    if (cp > 0 && cp < 0x110000 && !(cp >= 0xD800 && cp < 0xE000)) {
                        char u[8];
                        ft__sb_put(&o, u, (size_t)ft__dq_utf8_put(u, (int32_t)cp));
                        done = 1;
                    }
                } else {
                    for (unsigned k = 0; k < sizeof k_entities / sizeof *k_entities && !done; k++)
                        if (strlen(k_entities[k].name) == len && !memcmp(k_entities[k].name, s + a, len)) {
                            ft__sb_puts(&o, k_entities[k].text);
                            done = 1;
                        }
                }
                if (done) { i = (size_t)(semi - s) + 1; continue; }
            }
        }
        ft__sb_putc(&o, c);
        i++;
    }
    if (!o.p && !o.err) ft__sb_puts(&o, "");
    char *r = ft__sb_take(&o, NULL);
    if (!r) *err = FT_ERR_NOMEM;
    return r;
}

static int is_ascii_symbol(int32_t cp) {
    return cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' || cp == '`' || cp == '|' || cp == '~';
}

/* a text rewritten code point by code point into a buffer of its size (the steps below only drop or
 * replace by one space): walk_next gives each code point (cp < 0: an invalid byte), walk_keep copies its
 * bytes, walk_put writes one character instead, walk_end ends the string and hands it over */
typedef struct cp_walk {
    const char *s;
    size_t      n, i, at;   /* at: the current code point's first byte; i: the next one's */
    char       *o;          /* [n + 1] */
    size_t      w;
} cp_walk;

static int walk_begin(cp_walk *k, const char *s, size_t n, int *err) {
    *k = (cp_walk){.s = s, .n = n, .o = malloc(n + 1)};
    if (!k->o) *err = FT_ERR_NOMEM;
    return k->o ? 0 : -1;
}
static int walk_next(cp_walk *k, int32_t *cp) {
    if (k->i >= k->n) return 0;
    k->at = k->i;
    *cp = ft__dq_utf8_next(k->s, k->n, &k->i);
    return 1;
}
/* the code point after the current one (0 at the end), without moving */
static int32_t walk_peek(const cp_walk *k) {
    size_t j = k->i;
    return j < k->n ? ft__dq_utf8_next(k->s, k->n, &j) : 0;
}
static void walk_keep(cp_walk *k) {
    memcpy(k->o + k->w, k->s + k->at, k->i - k->at);
    k->w += k->i - k->at;
}
static void walk_put(cp_walk *k, char c) { k->o[k->w++] = c; }
static char *walk_end(cp_walk *k) {
    k->o[k->w] = 0;
    return k->o;
}

static char *step_punct(const char *s, size_t n, int *err) {
    cp_walk k;
    if (walk_begin(&k, s, n, err) < 0) return NULL;
    int32_t cp, prev = 0;
    while (walk_next(&k, &cp)) {
        if (cp >= 0 && (ft__dq_is_punct(cp) || is_ascii_symbol(cp))) {
            int32_t next = walk_peek(&k);
            int keep = ((cp == '\'' || cp == 0x2019 || cp == '-') && ft__dq_is_letter(prev) && ft__dq_is_letter(next)) ||
                       ((cp == '.' || cp == ',') && prev >= '0' && prev <= '9' && next >= '0' && next <= '9');
            if (!keep) { walk_put(&k, ' '); prev = ' '; continue; }
        }
        walk_keep(&k);
        prev = cp;
    }
    return walk_end(&k);
}

static char *step_space(const char *s, size_t n, int *err) {
    cp_walk k;
    if (walk_begin(&k, s, n, err) < 0) return NULL;
    int32_t cp;
    int pending = 0;
    while (walk_next(&k, &cp)) {
        if (ft__dq_is_space(cp)) { pending = k.w > 0; continue; }
        if (pending) { walk_put(&k, ' '); pending = 0; }
        walk_keep(&k);
    }
    return walk_end(&k);
}

/* whitespace-separated tokens; keep(token) decides; kept tokens re-joined by one space */
static char *step_stopwords(clean_ctx *c, const char *s, size_t n, int *err) {
    ft__sb o = {0};
    size_t i = 0;
    int removed = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        size_t a = i;
        while (i < n && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        if (i == a) break;
        /* the token without the punctuation around it, lower-cased */
        char *low = NULL;
        size_t ln = 0;
        if (ft__dq_lower(s + a, i - a, &low, &ln) < 0) { *err = FT_ERR_NOMEM; ft__sb_free(&o); return NULL; }
        size_t ca = 0, cz = ln;
        while (ca < cz && strchr(".,;:!?\"()[]{}`", low[ca])) ca++;
        while (cz > ca && strchr(".,;:!?\"()[]{}`", low[cz - 1])) cz--;
        int stop = cz > ca && ft_dq_is_stopword(c->sw, c->o->lang, low + ca, cz - ca);
        free(low);
        if (stop) { removed = 1; continue; }
        if (o.n) ft__sb_putc(&o, ' ');
        ft__sb_put(&o, s + a, i - a);
    }
    if (!removed) { ft__sb_free(&o); return NULL; }
    if (!o.p && !o.err) ft__sb_puts(&o, "");
    char *r = ft__sb_take(&o, NULL);
    if (!r) *err = FT_ERR_NOMEM;
    return r;
}

/* every run of letters lower-cased and stemmed; the rest kept */
static char *step_stem(clean_ctx *c, const char *s, size_t n, int *err) {
    ft__sb o = {0};
    size_t i = 0;
    char stem[512];
    while (i < n) {
        size_t a = i;
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        if (!ft__dq_is_letter(cp)) { ft__sb_put(&o, s + a, i - a); continue; }
        size_t z = i;
        while (z < n) {
            size_t j = z;
            if (!ft__dq_is_letter(ft__dq_utf8_next(s, n, &j))) break;
            z = j;
        }
        char *low = NULL;
        size_t ln = 0;
        if (ft__dq_lower(s + a, z - a, &low, &ln) < 0) { *err = FT_ERR_NOMEM; ft__sb_free(&o); return NULL; }
        int k = ln < 200 ? ft_dq_stem(c->stem, low, ln, stem, sizeof stem) : -1;
        if (k >= 0) ft__sb_put(&o, stem, (size_t)k);
        else ft__sb_put(&o, low, ln);   /* very long "words" are left lower-cased */
        free(low);
        i = z;
    }
    if (!o.p && !o.err) ft__sb_puts(&o, "");
    char *r = ft__sb_take(&o, NULL);
    if (!r) *err = FT_ERR_NOMEM;
    return r;
}

static char *apply_text_step(void *vctx, const char *s, size_t n, int *err) {
    clean_ctx *c = vctx;
    switch (c->step) {
    case FT_DQ_STEP_LOWER:  return step_lower(s, n, err);
    case FT_DQ_STEP_HTML:   return step_html(s, n, err);
    case FT_DQ_STEP_PUNCT:  return step_punct(s, n, err);
    case FT_DQ_STEP_SPACE:  return step_space(s, n, err);
    case FT_DQ_STEP_URLS: {
        char *a = ft__dq_scan_replace(c->sc, FT_DQ_PAT_URL, s, n, err);
        if (*err) return NULL;
        char *b = ft__dq_scan_replace(c->sc, FT_DQ_PAT_EMAIL, a ? a : s, a ? strlen(a) : n, err);
        if (b) { free(a); return b; }
        return a;
    }
    case FT_DQ_STEP_MENTIONS: return ft__dq_scan_replace(c->sc, FT_DQ_PAT_MENTION, s, n, err);
    case FT_DQ_STEP_HASHTAGS: return ft__dq_scan_replace(c->sc, FT_DQ_PAT_HASHTAG, s, n, err);
    case FT_DQ_STEP_STOPWORDS: return step_stopwords(c, s, n, err);
    case FT_DQ_STEP_STEM:   return step_stem(c, s, n, err);
    default: return NULL;
    }
}

/* ---- the log ---- */
static void log_change(const ft_dq_clean_options *o, const ft_dq_table *t, int64_t i, int step, int field,
                       const char *before, const char *after) {
    if (!o->log) return;
    ft__sb b = {0};
    ft__sb_printf(&b, "{\"record\": %lld, \"line\": %d, \"step\": \"%s\", \"field\": ", (long long)i, t->line[i],
                  k_step_names[step]);
    ft__sb_put_json(&b, t->fields[field], strlen(t->fields[field]), 0);
    ft__sb_puts(&b, ", \"before\": ");
    ft__sb_put_json(&b, before, strlen(before), 0);
    ft__sb_puts(&b, ", \"after\": ");
    ft__sb_put_json(&b, after, strlen(after), 0);
    ft__sb_puts(&b, "}\n");
    if (!b.err) fwrite(b.p, 1, b.n, o->log);
    ft__sb_free(&b);
}

static void log_drop(const ft_dq_clean_options *o, const ft_dq_table *t, int64_t i, int step, const char *why) {
    if (!o->log) return;
    char *text = ft_dq_table_text(t, i, NULL);
    ft__sb b = {0};
    ft__sb_printf(&b, "{\"record\": %lld, \"line\": %d, \"step\": \"%s\", \"drop\": ", (long long)i, t->line[i], k_step_names[step]);
    ft__sb_put_json(&b, why, strlen(why), 0);
    ft__sb_puts(&b, ", \"text\": ");
    ft__sb_put_json(&b, text ? text : "", text ? strlen(text) : 0, 0);
    ft__sb_puts(&b, "}\n");
    if (!b.err) fwrite(b.p, 1, b.n, o->log);
    ft__sb_free(&b);
    free(text);
}

/* ---- record steps ---- */
static int cmp_pair_b(const void *x, const void *y) {
    const ft_dq_pair *a = x, *b = y;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return (a->a > b->a) - (a->a < b->a);
}

static int step_neardup(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, int step, int64_t *dropped) {
    int64_t m = 0;
    int64_t *idx = malloc((size_t)(t->n ? t->n : 1) * sizeof *idx);
    char **texts = calloc((size_t)(t->n ? t->n : 1), sizeof *texts);
    int rc = idx && texts ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory (neardup)");
    for (int64_t i = 0; i < t->n && rc == FT_OK; i++) {
        if (!keep[i]) continue;
        idx[m] = i;
        if (!(texts[m++] = ft_dq_table_text(t, i, NULL))) rc = ft_error(FT_ERR_NOMEM, "out of memory (neardup)");
    }
    ft_dq_pair *p = NULL;
    int64_t np = 0;
    if (rc == FT_OK) rc = ft_dq_near_duplicates(&p, &np, (const char *const *)texts, m, 0, &o->minhash);
    if (rc == FT_OK) {
        if (np) qsort(p, (size_t)np, sizeof *p, cmp_pair_b);
        for (int64_t k = 0; k < np; k++) {
            int64_t a = idx[p[k].a], b = idx[p[k].b];
            if (!keep[a] || !keep[b]) continue;   /* b already dropped, or a dropped as a duplicate itself */
            keep[b] = 0;
            (*dropped)++;
            char why[160];
            snprintf(why, sizeof why, "near duplicate of record %lld (line %d), Jaccard %.3f", (long long)a, t->line[a], p[k].jaccard);
            log_drop(o, t, b, step, why);
        }
    }
    free(p);
    for (int64_t k = 0; k < m && texts; k++) free(texts[k]);
    free(texts);
    free(idx);
    return rc;
}

static int step_length(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, int step, int64_t *dropped) {
    for (int64_t i = 0; i < t->n; i++) {
        if (!keep[i]) continue;
        size_t len = 0;
        char *s = ft_dq_table_text(t, i, &len);
        if (!s) return ft_error(FT_ERR_NOMEM, "out of memory (length)");
        int64_t w = ft__dq_count_ws_words(s, len), ch = ft__dq_count_chars(s, len);
        free(s);
        char why[128] = "";
        if (o->min_words > 0 && w < o->min_words) snprintf(why, sizeof why, "%lld words < min %d", (long long)w, o->min_words);
        else if (o->max_words > 0 && w > o->max_words) snprintf(why, sizeof why, "%lld words > max %d", (long long)w, o->max_words);
        else if (o->min_chars > 0 && ch < o->min_chars) snprintf(why, sizeof why, "%lld characters < min %d", (long long)ch, o->min_chars);
        else if (o->max_chars > 0 && ch > o->max_chars) snprintf(why, sizeof why, "%lld characters > max %d", (long long)ch, o->max_chars);
        if (why[0]) { keep[i] = 0; (*dropped)++; log_drop(o, t, i, step, why); }
    }
    return FT_OK;
}

static int lang_kept(const char *keep_langs, const char *lang) {
    size_t l = strlen(lang);
    for (const char *p = keep_langs; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == l && !memcmp(p, lang, l)) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

static int step_lang(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, clean_ctx *c, int step, int64_t *dropped) {
    for (int64_t i = 0; i < t->n; i++) {
        if (!keep[i]) continue;
        size_t len = 0;
        char *s = ft_dq_table_text(t, i, &len);
        if (!s) return ft_error(FT_ERR_NOMEM, "out of memory (lang)");
        const char *g = ft_dq_guess_lang(c->sw, s, len);
        free(s);
        if (strcmp(g, "und") != 0 && !lang_kept(o->keep_langs, g)) {
            char why[96];
            snprintf(why, sizeof why, "language %s not in %s", g, o->keep_langs);
            keep[i] = 0;
            (*dropped)++;
            log_drop(o, t, i, step, why);
        }
    }
    return FT_OK;
}

typedef struct text_rec { char *text; int64_t rec; } text_rec;
static int cmp_text_rec(const void *x, const void *y) {
    const text_rec *a = x, *b = y;
    int c = strcmp(a->text, b->text);
    return c ? c : (a->rec > b->rec) - (a->rec < b->rec);
}
static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

static int step_conflicts(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, int step, int64_t *dropped,
                          int64_t *conflicts) {
    if (t->label < 0) { *conflicts = -1; return FT_OK; }   /* no labels, nothing to compare: skipped (stats say so) */
    text_rec *v = malloc((size_t)(t->n ? t->n : 1) * sizeof *v);
    const char **labs = malloc((size_t)(t->n ? t->n : 1) * sizeof *labs);
    if (!v || !labs) { free(v); free(labs); return ft_error(FT_ERR_NOMEM, "out of memory (conflicts)"); }
    int64_t m = 0;
    int rc = FT_OK;
    for (int64_t i = 0; i < t->n && rc == FT_OK; i++) {
        if (!keep[i]) continue;
        v[m].rec = i;
        if (!(v[m++].text = ft_dq_table_text(t, i, NULL))) rc = ft_error(FT_ERR_NOMEM, "out of memory (conflicts)");
    }
    if (rc == FT_OK) qsort(v, (size_t)m, sizeof *v, cmp_text_rec);
    for (int64_t s = 0; s < m && rc == FT_OK;) {
        int64_t e = s + 1;
        while (e < m && !strcmp(v[e].text, v[s].text)) e++;
        /* the labels of the group, sorted, to count them */
        int64_t g = e - s;
        for (int64_t k = 0; k < g; k++) { const char *l = ft_dq_table_label(t, v[s + k].rec); labs[k] = l ? l : ""; }
        qsort(labs, (size_t)g, sizeof *labs, cmp_str);
        int distinct = 1;
        const char *best = labs[0];
        int64_t best_n = 0, run = 0, ties = 0;
        for (int64_t k = 0; k < g; k++) {
            if (k && strcmp(labs[k], labs[k - 1])) { distinct++; run = 0; }
            run++;
            if (run > best_n) { best_n = run; best = labs[k]; ties = 0; }
            else if (run == best_n) ties = 1;
        }
        if (distinct > 1) {
            (*conflicts)++;
            for (int64_t k = s; k < e; k++) {
                const char *l = ft_dq_table_label(t, v[k].rec);
                char why[200];
                int drop = 0;
                if (o->conflicts == FT_DQ_CONFLICT_DROP) { drop = 1; snprintf(why, sizeof why, "conflicting labels (%d) on the same text", distinct); }
                else if (o->conflicts == FT_DQ_CONFLICT_MAJORITY && (ties || strcmp(l ? l : "", best))) {
                    drop = 1;
                    if (ties) snprintf(why, sizeof why, "conflicting labels with no majority");
                    else snprintf(why, sizeof why, "label %.60s is not the majority label %.60s of this text", l ? l : "", best);
                } else snprintf(why, sizeof why, "conflicting labels (%d) on the same text (reported, kept)", distinct);
                if (drop) { keep[v[k].rec] = 0; (*dropped)++; }
                if (drop || o->conflicts == FT_DQ_CONFLICT_REPORT) log_drop(o, t, v[k].rec, step, why);
            }
        }
        s = e;
    }
    for (int64_t k = 0; k < m; k++) free(v[k].text);
    free(v);
    free(labs);
    return rc;
}

int ft_dq_clean(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, ft_dq_clean_stats *st) {
    memset(st, 0, sizeof *st);
    st->records = t->n;
    st->nsteps = o->nsteps;
    for (int64_t i = 0; i < t->n; i++) keep[i] = 1;
    clean_ctx c = {.o = o};
    int rc = FT_OK, need_sw = 0, need_stem = 0, need_sc = 0;
    for (int k = 0; k < o->nsteps; k++) {
        int s = o->steps[k];
        if (s < 0 || s >= FT_DQ_STEPS) return ft_error(FT_ERR_INVALID, "clean: unknown step %d", s);
        st->steps[k] = s;
        need_sw |= s == FT_DQ_STEP_STOPWORDS || s == FT_DQ_STEP_LANG;
        need_stem |= s == FT_DQ_STEP_STEM;
        need_sc |= s == FT_DQ_STEP_URLS || s == FT_DQ_STEP_MENTIONS || s == FT_DQ_STEP_HASHTAGS;
    }
    ft_dq_stopwords *own_sw = NULL;
    if (need_sw && o->stopwords) c.sw = (ft_dq_stopwords *)o->stopwords;
    else if (need_sw) {
        if (!o->stopwords_dir) return ft_error(FT_ERR_INVALID, "clean: the stopwords and lang steps need the stop-word folder");
        rc = ft_dq_stopwords_load(&own_sw, o->stopwords_dir);
        c.sw = own_sw;
    }
    if (rc == FT_OK && need_stem) rc = ft_dq_stemmer_new(&c.stem, o->stemmer ? o->stemmer : (o->lang ? o->lang : "en"));
    if (rc == FT_OK && need_sc) rc = ft__dq_scanner_new(&c.sc);
    for (int k = 0; k < o->nsteps && rc == FT_OK; k++) {
        int s = o->steps[k];
        c.step = s;
        switch (s) {
        case FT_DQ_STEP_NEARDUP: rc = step_neardup(t, keep, o, s, &st->changed[k]); break;
        case FT_DQ_STEP_LENGTH: rc = step_length(t, keep, o, s, &st->changed[k]); break;
        case FT_DQ_STEP_LANG: rc = step_lang(t, keep, o, &c, s, &st->changed[k]); break;
        case FT_DQ_STEP_CONFLICTS: rc = step_conflicts(t, keep, o, s, &st->changed[k], &st->conflict_texts); break;
        default:
            for (int64_t i = 0; i < t->n && rc == FT_OK; i++) {
                if (!keep[i]) continue;
                int changed = 0;
                for (int f = 0; f < t->n_text && rc == FT_OK; f++) {
                    const char *cell = t->cell[i * t->nfields + t->text[f]];
                    char *before = o->log && cell ? strdup(cell) : NULL;
                    int r = ft__dq_table_map(t, i, t->text[f], apply_text_step, &c);
                    if (r < 0) rc = r;
                    else if (r > 0) {
                        changed = 1;
                        log_change(o, t, i, s, t->text[f], before ? before : "", t->cell[i * t->nfields + t->text[f]]);
                    }
                    free(before);
                }
                st->changed[k] += changed;
            }
        }
    }
    st->kept = 0;
    for (int64_t i = 0; i < t->n; i++) st->kept += keep[i];
    ft_dq_stopwords_free(own_sw);
    ft_dq_stemmer_free(c.stem);
    ft__dq_scanner_free(c.sc);
    return rc;
}

int ft_dq_clean_file(const char *in, const char *out, const char *log_path, const ft_dq_table_options *to,
                     const ft_dq_clean_options *opt, ft_dq_clean_stats *st) {
    ft_dq_table t;
    FT_TRY(ft_dq_table_load(&t, in, to));
    ft_dq_clean_options o = *opt;
    FILE *lf = NULL;
    int rc = FT_OK;
    if (log_path) {
        lf = fopen(log_path, "w");
        if (!lf) rc = ft_error(FT_ERR_IO, "%s: cannot write the cleaning log", log_path);
        o.log = lf;
    }
    uint8_t *keep = malloc((size_t)(t.n ? t.n : 1));
    if (rc == FT_OK && !keep) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) rc = ft_dq_clean(&t, keep, &o, st);
    if (rc == FT_OK) rc = ft_dq_table_write(&t, keep, out);
    if (lf && fclose(lf) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: write failed", log_path);
    free(keep);
    ft_dq_table_free(&t);
    return rc;
}

void ft_dq_clean_stats_print(const ft_dq_clean_stats *st, FILE *fp) {
    fprintf(fp, "%lld records, %lld kept, %lld dropped\n", (long long)st->records, (long long)st->kept,
            (long long)(st->records - st->kept));
    for (int k = 0; k < st->nsteps; k++) {
        int s = st->steps[k];
        int filter = s >= FT_DQ_STEP_NEARDUP;
        fprintf(fp, "  %-10s %lld records %s", k_step_names[s], (long long)st->changed[k], filter ? "dropped" : "changed");
        if (s == FT_DQ_STEP_CONFLICTS && st->conflict_texts < 0) fprintf(fp, " (skipped: no label field)");
        else if (s == FT_DQ_STEP_CONFLICTS) fprintf(fp, " (%lld texts with conflicting labels)", (long long)st->conflict_texts);
        fprintf(fp, "\n");
    }
}
