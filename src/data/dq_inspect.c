/* dq_inspect.c — ft_dq_inspect: fields and completeness, exact and near duplicates, lengths, labels and
 * conflicts, scripts and languages, invalid / control characters and personal data, train / validation
 * overlap, and the data-quality score.
 *
 * The score is 100 * sum(weight * part), each part in [0, 1]:
 *   completeness 0.25  mean over the text fields and the label field of the share of records where the
 *                      field is present and not only whitespace
 *   uniqueness   0.25  1 - (exact duplicates + near duplicates) / records
 *   validity     0.20  1 - (records with invalid UTF-8, control characters or an empty text, plus rows that
 *                      could not be read) / (records + rows that could not be read)
 *   consistency  0.15  1 - records whose identical text carries another label too / records (1 without labels)
 *   balance      0.15  label entropy / log(number of labels) (1 with fewer than 2 labels or none) */
#include "data/dq_internal.h"
#include "core/strbuf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double ft_dq_part_weight[FT_DQ_PARTS] = {0.25, 0.25, 0.20, 0.15, 0.15};
static const char *const k_part_names[FT_DQ_PARTS] = {"completeness", "uniqueness", "validity", "consistency", "balance"};
const char *ft_dq_part_name(int part) { return part >= 0 && part < FT_DQ_PARTS ? k_part_names[part] : "?"; }

static const char *const k_hit_names[FT_DQ_HIT_KINDS] = {"invalid_utf8", "control", "url", "email", "phone"};
const char *ft_dq_hit_kind_name(ft_dq_hit_kind k) { return (unsigned)k < FT_DQ_HIT_KINDS ? k_hit_names[k] : "?"; }

ft_dq_inspect_options ft_dq_inspect_default_options(void) {
    ft_dq_inspect_options o;
    memset(&o, 0, sizeof o);
    o.minhash = ft_dq_minhash_default_options();
    o.max_hits = 20;
    o.max_pairs = 1000;
    return o;
}

/* ---- a string -> count table (labels, scripts, languages) and a string -> first record index ---- */
typedef struct str_count { char *key; int64_t count, first; } str_count;
typedef struct str_table { str_count *e; int64_t n, cap; } str_table;

static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
    return h;
}

/* A plain open-addressing set of record indices keyed by their text. */
typedef struct text_set { int64_t *slot; uint64_t *h; int64_t cap; } text_set;
static int text_set_init(text_set *s, int64_t n) {
    s->cap = 16;
    while (s->cap < 2 * n + 2) s->cap *= 2;
    s->slot = malloc((size_t)s->cap * sizeof *s->slot);
    s->h = malloc((size_t)s->cap * sizeof *s->h);
    if (!s->slot || !s->h) return ft_error(FT_ERR_NOMEM, "out of memory (text index)");
    for (int64_t i = 0; i < s->cap; i++) s->slot[i] = -1;
    return FT_OK;
}
static void text_set_free(text_set *s) { free(s->slot); free(s->h); }
/* Returns the record already stored with the same text, or -1 after storing rec (add = 1). */
static int64_t text_set_find(text_set *s, char *const *texts, const char *t, int64_t rec, int add) {
    uint64_t h = hash_str(t, strlen(t));
    int64_t i = (int64_t)(h & (uint64_t)(s->cap - 1));
    while (s->slot[i] >= 0) {
        if (s->h[i] == h && !strcmp(texts[s->slot[i]], t)) return s->slot[i];
        i = (i + 1) & (s->cap - 1);
    }
    if (add) { s->slot[i] = rec; s->h[i] = h; }
    return -1;
}

static int count_add(str_table *t, const char *key, int64_t by) {
    for (int64_t i = 0; i < t->n; i++) if (!strcmp(t->e[i].key, key)) { t->e[i].count += by; return FT_OK; }
    if (t->n == t->cap) {
        int64_t nc = t->cap ? t->cap * 2 : 16;
        str_count *q = realloc(t->e, (size_t)nc * sizeof *q);
        if (!q) return ft_error(FT_ERR_NOMEM, "out of memory (counts)");
        t->e = q;
        t->cap = nc;
    }
    t->e[t->n].key = ft__dq_utf8_valid_copy(key, strlen(key));
    if (!t->e[t->n].key) return ft_error(FT_ERR_NOMEM, "out of memory (counts)");
    t->e[t->n].count = by;
    t->e[t->n].first = 0;
    t->n++;
    return FT_OK;
}

static int cmp_count(const void *a, const void *b) {
    const str_count *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* moves t into (*out, *n), largest first */
static int to_counts(str_table *t, ft_dq_count **out, int *n) {
    if (t->n) qsort(t->e, (size_t)t->n, sizeof *t->e, cmp_count);
    *out = calloc((size_t)(t->n ? t->n : 1), sizeof **out);
    if (!*out) return ft_error(FT_ERR_NOMEM, "out of memory (counts)");
    for (int64_t i = 0; i < t->n; i++) { (*out)[i].name = t->e[i].key; (*out)[i].count = t->e[i].count; }
    *n = (int)t->n;
    free(t->e);
    memset(t, 0, sizeof *t);
    return FT_OK;
}

static void str_table_free(str_table *t) {
    for (int64_t i = 0; i < t->n; i++) free(t->e[i].key);
    free(t->e);
}

/* ---- distributions ---- */
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void make_dist(ft_dq_dist *d, int64_t *v, int64_t n) {
    memset(d, 0, sizeof *d);
    d->n = n;
    if (n == 0) return;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)v[i];
        int b = 0;
        while (b < FT_DQ_HIST_BINS - 1 && v[i] >= ((int64_t)1 << b)) b++;
        d->hist[b]++;
    }
    d->mean = sum / (double)n;
    d->min = v[0];
    d->max = v[n - 1];
    d->p50 = v[(n - 1) * 50 / 100];
    d->p90 = v[(n - 1) * 90 / 100];
    d->p99 = v[(n - 1) * 99 / 100];
}

/* ---- hits ---- */
typedef struct hit_ctx {
    ft_dq_report *r;
    const ft_dq_table *t;
    int64_t rec;
    int field;
    const char *s;
    int max_hits;
    int seen[FT_DQ_HIT_KINDS];   /* kinds found in the current record */
    int64_t cap;
} hit_ctx;

static int on_hit(void *vctx, int kind, size_t a, size_t e) {
    hit_ctx *c = vctx;
    ft_dq_report *r = c->r;
    r->hit_count[kind]++;
    if (!c->seen[kind]) { c->seen[kind] = 1; r->hit_records[kind]++; }
    if (r->hit_count[kind] > c->max_hits) return FT_OK;
    if (r->nhits == c->cap) {
        int64_t nc = c->cap ? c->cap * 2 : 32;
        ft_dq_hit *q = realloc(r->hits, (size_t)nc * sizeof *q);
        if (!q) return ft_error(FT_ERR_NOMEM, "out of memory (hits)");
        r->hits = q;
        c->cap = nc;
    }
    char buf[160];
    if (kind == FT_DQ_HIT_INVALID_UTF8 || kind == FT_DQ_HIT_CONTROL) {
        int w = 0;
        for (size_t i = a; i < e && w < (int)sizeof buf - 8; i++)
            w += snprintf(buf + w, sizeof buf - (size_t)w, "\\x%02X", (unsigned char)c->s[i]);
    } else {
        size_t len = e - a < 120 ? e - a : 120;
        memcpy(buf, c->s + a, len);
        buf[len] = 0;
    }
    int line = c->t->line[c->rec];
    if (!c->t->json) for (size_t i = 0; i < a; i++) line += c->s[i] == '\n';   /* rows: the line inside the cell */
    ft_dq_hit *h = &r->hits[r->nhits];
    h->kind = kind;
    h->record = c->rec;
    h->line = line;
    h->field = c->field;
    h->text = strdup(buf);
    if (!h->text) return ft_error(FT_ERR_NOMEM, "out of memory (hits)");
    r->nhits++;
    return FT_OK;
}

static char **all_texts(const ft_dq_table *t) {
    char **x = calloc((size_t)(t->n ? t->n : 1), sizeof *x);
    if (!x) return NULL;
    for (int64_t i = 0; i < t->n; i++) {
        x[i] = ft_dq_table_text(t, i, NULL);
        if (!x[i]) {
            for (int64_t k = 0; k < i; k++) free(x[k]);
            free(x);
            return NULL;
        }
    }
    return x;
}
static void free_texts(char **x, int64_t n) {
    if (!x) return;
    for (int64_t i = 0; i < n; i++) free(x[i]);
    free(x);
}

/* Snippets and lines of the listed pairs (b indexes tb / texts_b). */
static int pair_snippets(const ft_dq_pair *p, int64_t np, int64_t max, char **ta, const ft_dq_table *t, char **tb,
                         const ft_dq_table *u, char ***text, int **line) {
    int64_t m = max >= 0 && np > max ? max : np;
    *text = calloc((size_t)(2 * m + 1), sizeof **text);
    *line = calloc((size_t)(2 * m + 1), sizeof **line);
    if (!*text || !*line) return ft_error(FT_ERR_NOMEM, "out of memory (pairs)");
    for (int64_t k = 0; k < m; k++) {
        for (int side = 0; side < 2; side++) {
            const char *s = side ? tb[p[k].b] : ta[p[k].a];
            size_t n = 0, chars = 0;
            while (s[n] && chars < 160) { n++; while (((unsigned char)s[n] & 0xC0) == 0x80) n++; chars++; }
            (*text)[2 * k + side] = ft__dq_utf8_valid_copy(s, n);
            if (!(*text)[2 * k + side]) return ft_error(FT_ERR_NOMEM, "out of memory (pairs)");
            (*line)[2 * k + side] = side ? u->line[p[k].b] : t->line[p[k].a];
        }
    }
    return FT_OK;
}

static int is_blank(const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n) if (!ft__dq_is_space(ft__dq_utf8_next(s, n, &i))) return 0;
    return 1;
}

static int inspect_body(ft_dq_report *r, const ft_dq_table *t, const ft_dq_table *valid, const ft_dq_inspect_options *o,
                        char **texts, ft_dq_scanner *sc, ft_dq_stopwords *sw) {
    int64_t n = t->n;
    /* fields */
    r->nfields = t->nfields;
    r->fields = calloc((size_t)(t->nfields ? t->nfields : 1), sizeof *r->fields);
    r->present = calloc((size_t)(t->nfields ? t->nfields : 1), sizeof *r->present);
    r->empty = calloc((size_t)(t->nfields ? t->nfields : 1), sizeof *r->empty);
    if (!r->fields || !r->present || !r->empty) return ft_error(FT_ERR_NOMEM, "out of memory (report)");
    for (int f = 0; f < t->nfields; f++) {
        if (!(r->fields[f] = ft__dq_utf8_valid_copy(t->fields[f], strlen(t->fields[f]))))
            return ft_error(FT_ERR_NOMEM, "out of memory (report)");
        for (int64_t i = 0; i < n; i++) {
            const char *c = t->cell[i * t->nfields + f];
            if (!c) continue;
            r->present[f]++;
            r->empty[f] += is_blank(c);
        }
    }
    ft__sb tf = {0};
    for (int k = 0; k < t->n_text; k++) { if (k) ft__sb_putc(&tf, ','); ft__sb_puts(&tf, r->fields[t->text[k]]); }
    if (!tf.p) ft__sb_puts(&tf, "");
    r->text_fields = ft__sb_take(&tf, NULL);
    if (t->label >= 0) r->label_field = strdup(r->fields[t->label]);
    if (!r->text_fields || (t->label >= 0 && !r->label_field)) return ft_error(FT_ERR_NOMEM, "out of memory (report)");

    /* exact duplicates and label conflicts */
    text_set ts;
    FT_TRY(text_set_init(&ts, n));
    int64_t *first = malloc((size_t)(n ? n : 1) * sizeof *first);   /* [n] the first record with the same text */
    uint8_t *bad = calloc((size_t)(n ? n : 1), 1);                   /* [n] invalid / control / empty text */
    int rc = first && bad ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory (duplicates)");
    for (int64_t i = 0; i < n && rc == FT_OK; i++) {
        int64_t f = text_set_find(&ts, texts, texts[i], i, 1);
        first[i] = f < 0 ? i : f;
        if (f >= 0) r->exact_dup++;
        if (is_blank(texts[i])) { r->empty_text++; bad[i] = 1; }
    }
    if (rc == FT_OK && t->label >= 0) {
        /* a text group conflicts when its records do not all carry the first record's label */
        uint8_t *conf = calloc((size_t)(n ? n : 1), 1);
        if (!conf) rc = ft_error(FT_ERR_NOMEM, "out of memory (conflicts)");
        for (int64_t i = 0; i < n && rc == FT_OK; i++) {
            const char *a = ft_dq_table_label(t, i), *b = ft_dq_table_label(t, first[i]);
            if (first[i] != i && strcmp(a ? a : "", b ? b : "") != 0) {
                if (!conf[first[i]]) r->conflict_texts++;
                conf[first[i]] = 1;
            }
        }
        for (int64_t i = 0; i < n && conf; i++) r->conflict_records += conf[first[i]];
        free(conf);
    }
    /* near duplicates */
    if (rc == FT_OK) {
        r->minhash = o->minhash;
        ft_dq_pair *pairs = NULL;
        int64_t np = 0;
        rc = ft_dq_near_duplicates(&pairs, &np, (const char *const *)texts, n, 0, &o->minhash);
        if (rc == FT_OK) {
            uint8_t *near = calloc((size_t)(n ? n : 1), 1);
            if (!near) rc = ft_error(FT_ERR_NOMEM, "out of memory (near duplicates)");
            for (int64_t k = 0; k < np && near; k++) near[pairs[k].b] = 1;
            for (int64_t i = 0; i < n && near; i++) r->near_dup += near[i] && first[i] == i;
            free(near);
            r->npairs = np;
            r->pairs = pairs;
            if (rc == FT_OK) rc = pair_snippets(pairs, np, o->max_pairs, texts, t, texts, t, &r->pair_text, &r->pair_line);
        }
    }
    text_set_free(&ts);
    free(first);

    /* lengths, scripts, languages, hits */
    int64_t *vc = malloc((size_t)(n ? n : 1) * sizeof *vc), *vw = malloc((size_t)(n ? n : 1) * sizeof *vw);
    int64_t *vt = o->tokenizer ? malloc((size_t)(n ? n : 1) * sizeof *vt) : NULL;
    if (rc == FT_OK && (!vc || !vw || (o->tokenizer && !vt))) rc = ft_error(FT_ERR_NOMEM, "out of memory (lengths)");
    str_table scripts = {0}, langs = {0};
    hit_ctx hc = {.r = r, .t = t, .max_hits = o->max_hits};
    for (int64_t i = 0; i < n && rc == FT_OK; i++) {
        const char *s = texts[i];
        size_t len = strlen(s);
        vc[i] = ft__dq_count_chars(s, len);
        vw[i] = ft__dq_count_ws_words(s, len);
        if (vt) {
            int *ids = NULL, nt = 0;
            rc = ft_tokenizer_encode(o->tokenizer, s, len, FT_TOK_NO_SPECIAL_PARSE, &ids, &nt);
            free(ids);
            vt[i] = nt;
        }
        /* letters per script: counted in a small local table first */
        const char *sn[8] = {0};
        int64_t sc_n[8] = {0};
        int nsn = 0;
        size_t k = 0;
        while (k < len && rc == FT_OK) {
            int32_t cp = ft__dq_utf8_next(s, len, &k);
            if (!ft__dq_is_letter(cp)) continue;
            const char *name = ft__dq_script(cp);
            int j = 0;
            while (j < nsn && sn[j] != name) j++;
            if (j == nsn) {
                if (nsn == 8) { rc = count_add(&scripts, name, 1); continue; }
                sn[nsn++] = name;
            }
            sc_n[j]++;
        }
        for (int j = 0; j < nsn && rc == FT_OK; j++) rc = count_add(&scripts, sn[j], sc_n[j]);
        if (sw && rc == FT_OK) rc = count_add(&langs, ft_dq_guess_lang(sw, s, len), 1);
        /* hits in every field but the label */
        memset(hc.seen, 0, sizeof hc.seen);
        hc.rec = i;
        for (int f = 0; f < t->nfields && rc == FT_OK; f++) {
            const char *c = t->cell[i * t->nfields + f];
            if (!c || f == t->label) continue;
            hc.field = f;
            hc.s = c;
            rc = ft__dq_scan(sc, c, strlen(c), (1 << FT_DQ_HIT_KINDS) - 1, on_hit, &hc);
        }
        if (hc.seen[FT_DQ_HIT_INVALID_UTF8] || hc.seen[FT_DQ_HIT_CONTROL]) bad[i] = 1;
    }
    if (rc == FT_OK) {
        make_dist(&r->chars, vc, n);
        make_dist(&r->words, vw, n);
        if (vt) { make_dist(&r->tokens, vt, n); r->has_tokens = 1; }
        rc = to_counts(&scripts, &r->scripts, &r->nscripts);
    }
    if (rc == FT_OK) rc = to_counts(&langs, &r->langs, &r->nlangs);
    str_table_free(&scripts);
    str_table_free(&langs);
    free(vc); free(vw); free(vt);

    /* labels */
    str_table labels = {0};
    for (int64_t i = 0; i < n && rc == FT_OK && t->label >= 0; i++) {
        const char *l = ft_dq_table_label(t, i);
        rc = count_add(&labels, l ? l : "(missing)", 1);
    }
    if (rc == FT_OK) rc = to_counts(&labels, &r->labels, &r->nlabels);
    str_table_free(&labels);
    if (rc == FT_OK && r->nlabels > 0)
        r->imbalance = (double)r->labels[0].count / (double)r->labels[r->nlabels - 1].count;

    /* the score */
    if (rc == FT_OK) {
        double comp = 0;
        int nf = 0;
        for (int k = 0; k <= t->n_text; k++) {
            int f = k < t->n_text ? t->text[k] : t->label;
            if (f < 0) continue;
            comp += n ? (double)(r->present[f] - r->empty[f]) / (double)n : 0;
            nf++;
        }
        r->part[FT_DQ_PART_COMPLETENESS] = nf ? comp / nf : 1;
        r->part[FT_DQ_PART_UNIQUENESS] = n ? 1.0 - (double)(r->exact_dup + r->near_dup) / (double)n : 1;
        int64_t nbad = 0;
        for (int64_t i = 0; i < n; i++) nbad += bad[i];
        r->part[FT_DQ_PART_VALIDITY] = 1.0 - (double)(nbad + r->malformed) / (double)(n + r->malformed ? n + r->malformed : 1);
        r->part[FT_DQ_PART_CONSISTENCY] = n && t->label >= 0 ? 1.0 - (double)r->conflict_records / (double)n : 1;
        double bal = 1;
        if (r->nlabels >= 2) {
            double h = 0;
            for (int k = 0; k < r->nlabels; k++) {
                double p = (double)r->labels[k].count / (double)n;
                if (p > 0) h -= p * log(p);
            }
            bal = h / log((double)r->nlabels);
        }
        r->part[FT_DQ_PART_BALANCE] = bal;
        r->score = 0;
        for (int k = 0; k < FT_DQ_PARTS; k++) r->score += 100.0 * ft_dq_part_weight[k] * r->part[k];
    }
    free(bad);

    /* train / validation overlap */
    if (rc == FT_OK && valid) {
        r->has_valid = 1;
        r->valid_path = strdup(valid->path ? valid->path : "");
        r->valid_records = valid->n;
        char **vtexts = all_texts(valid);
        char **both = malloc((size_t)(n + valid->n + 1) * sizeof *both);
        uint8_t *leak = calloc((size_t)(valid->n ? valid->n : 1), 1);
        if (!vtexts || !both || !leak || !r->valid_path) rc = ft_error(FT_ERR_NOMEM, "out of memory (overlap)");
        text_set tt = {0};
        if (rc == FT_OK) rc = text_set_init(&tt, n);
        for (int64_t i = 0; i < n && rc == FT_OK; i++) text_set_find(&tt, texts, texts[i], i, 1);
        for (int64_t j = 0; j < valid->n && rc == FT_OK; j++)
            if (text_set_find(&tt, texts, vtexts[j], -1, 0) >= 0) { leak[j] = 1; r->leak_exact++; }
        text_set_free(&tt);
        if (rc == FT_OK) {
            for (int64_t i = 0; i < n; i++) both[i] = texts[i];
            for (int64_t j = 0; j < valid->n; j++) both[n + j] = vtexts[j];
            ft_dq_pair *lp = NULL;
            int64_t nlp = 0;
            rc = ft_dq_near_duplicates(&lp, &nlp, (const char *const *)both, n + valid->n, n, &o->minhash);
            for (int64_t k = 0; k < nlp; k++) {
                lp[k].b -= n;
                if (!leak[lp[k].b]) { leak[lp[k].b] = 2; r->leak_near++; }
            }
            r->leak_pairs = lp;
            r->nleak_pairs = nlp;
            if (rc == FT_OK) rc = pair_snippets(lp, nlp, o->max_pairs, texts, t, vtexts, valid, &r->leak_text, &r->leak_line);
        }
        free(leak);
        free(both);
        free_texts(vtexts, valid->n);
    }
    return rc;
}

int ft_dq_inspect(ft_dq_report *r, const ft_dq_table *t, const ft_dq_table *valid, const ft_dq_inspect_options *opt) {
    ft_dq_inspect_options o = opt ? *opt : ft_dq_inspect_default_options();
    memset(r, 0, sizeof *r);
    r->path = strdup(t->path ? t->path : "");
    r->format = t->format;
    r->records = t->n;
    r->malformed = t->malformed;
    r->max_listed = o.max_pairs;
    if (!r->path) return ft_error(FT_ERR_NOMEM, "out of memory (report)");
    char **texts = all_texts(t);
    if (!texts) { ft_dq_report_free(r); return ft_error(FT_ERR_NOMEM, "out of memory (texts)"); }
    ft_dq_scanner *sc = NULL;
    ft_dq_stopwords *sw = NULL;
    int rc = ft__dq_scanner_new(&sc);
    if (rc == FT_OK && !o.stopwords && o.stopwords_dir) rc = ft_dq_stopwords_load(&sw, o.stopwords_dir);
    if (rc == FT_OK) rc = inspect_body(r, t, valid, &o, texts, sc, o.stopwords ? (ft_dq_stopwords *)o.stopwords : sw);
    free_texts(texts, t->n);
    ft__dq_scanner_free(sc);
    ft_dq_stopwords_free(sw);
    if (rc != FT_OK) ft_dq_report_free(r);
    return rc;
}

void ft_dq_report_free(ft_dq_report *r) {
    if (!r) return;
    free(r->path);
    for (int f = 0; f < r->nfields && r->fields; f++) free(r->fields[f]);
    free(r->fields); free(r->present); free(r->empty);
    free(r->text_fields); free(r->label_field);
    free(r->pairs);
    for (int k = 0; k < r->nlabels; k++) free(r->labels[k].name);
    free(r->labels);
    for (int k = 0; k < r->nscripts; k++) free(r->scripts[k].name);
    free(r->scripts);
    for (int k = 0; k < r->nlangs; k++) free(r->langs[k].name);
    free(r->langs);
    for (int64_t k = 0; k < r->nhits; k++) free(r->hits[k].text);
    free(r->hits);
    free(r->valid_path);
    int64_t lp = r->max_listed >= 0 && r->npairs > r->max_listed ? r->max_listed : r->npairs;
    for (int64_t k = 0; r->pair_text && k < 2 * lp; k++) free(r->pair_text[k]);
    lp = r->max_listed >= 0 && r->nleak_pairs > r->max_listed ? r->max_listed : r->nleak_pairs;
    for (int64_t k = 0; r->leak_text && k < 2 * lp; k++) free(r->leak_text[k]);
    free(r->pair_text); free(r->leak_text); free(r->pair_line); free(r->leak_line);
    free(r->leak_pairs);
    memset(r, 0, sizeof *r);
}
