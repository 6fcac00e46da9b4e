/* ner.c — entity-level NER scores from BIO / IOB2 tag strings, reproducing seqeval 1.2's default
 * mode (get_entities / end_of_chunk / start_of_chunk; the exact rule is in
 * include/finetune/metrics.h). True and predicted streams are chunked in lockstep: an entity
 * that ends before position i is recorded at i in both streams, so a true and a predicted
 * entity match exactly when they are recorded at the same i with the same start and type. */
#include "finetune/metrics.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tag parsing and the chunker ---- */

static const char k_empty[] = "";      /* the type before the first token (seqeval's prev_type '') */
static const char k_underscore[] = "_";/* the type of an empty type, e.g. of "O" */

typedef struct tag_info {
    char        tag;  /* first byte of the string (a non-ASCII lead byte never equals B/I/O/E/S/.) */
    const char *type; /* type_len bytes */
    size_t      type_len;
} tag_info;

/* Python's chunk[0] and chunk[1:].split('-', 1)[-1] or '_' on the UTF-8 string s. */
static tag_info parse_tag(const char *s) {
    unsigned char c = (unsigned char)s[0];
    size_t cp = (c & 0x80) == 0 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    size_t i = 0;
    while (i < cp && s[i]) i++;
    const char *rest = s + i;
    const char *dash = strchr(rest, '-');
    tag_info t = {s[0], dash ? dash + 1 : rest, 0};
    t.type_len = strlen(t.type);
    if (t.type_len == 0) { t.type = k_underscore; t.type_len = 1; }
    return t;
}

static const tag_info k_sep = {'O', k_underscore, 1}; /* the "O" after every sentence */

typedef struct chunker {
    char        prev_tag;
    const char *prev_type;
    size_t      prev_len;
    int64_t     begin;
} chunker;

static chunker chunker_new(void) { return (chunker){'O', k_empty, 0, 0}; }

static int same_type(const char *a, size_t na, const char *b, size_t nb) {
    return na == nb && memcmp(a, b, na) == 0;
}

/* Feeds the token at stream position i; returns 1 and fills *e when an entity ends before i. */
static int chunker_step(chunker *c, tag_info t, int64_t i, ft_ner_entity *e) {
    char p = c->prev_tag, g = t.tag;
    int same = same_type(c->prev_type, c->prev_len, t.type, t.type_len);
    int end = p == 'E' || p == 'S' || ((p == 'B' || p == 'I') && (g == 'B' || g == 'S' || g == 'O')) ||
              (p != 'O' && p != '.' && !same);
    int start = g == 'B' || g == 'S' || ((g == 'I' || g == 'E') && (p == 'E' || p == 'S' || p == 'O')) ||
                (g != 'O' && g != '.' && !same);
    if (end) { e->type = c->prev_type; e->type_len = c->prev_len; e->start = c->begin; e->end = i - 1; }
    if (start) c->begin = i;
    c->prev_tag = g;
    c->prev_type = t.type;
    c->prev_len = t.type_len;
    return end;
}

/* Every tag a non-empty string; messages "<what>: sentence <sent>: ..." (no sentence when sent < 0). */
static int check_tags(const char *const *tags, int64_t len, const char *what, const char *name, int64_t sent) {
    char where[48] = "";
    if (sent >= 0) snprintf(where, sizeof where, " sentence %lld:", (long long)sent);
    if (len > 0 && !tags) return ft_error(FT_ERR_INVALID, "%s:%s NULL %s", what, where, name);
    for (int64_t i = 0; i < len; i++)
        if (!tags[i] || !tags[i][0])
            return ft_error(FT_ERR_INVALID, "%s:%s %s[%lld] is %s", what, where, name, (long long)i,
                            tags[i] ? "an empty string" : "NULL");
    return FT_OK;
}

int ft_ner_entities(ft_ner_entity **out, int64_t *count, const char *const *tags, int64_t len) {
    const char *what = "ft_ner_entities";
    if (!out || !count) return ft_error(FT_ERR_INVALID, "%s: NULL out", what);
    *out = NULL; *count = 0;
    if (len < 0) return ft_error(FT_ERR_INVALID, "%s: len = %lld", what, (long long)len);
    FT_TRY(check_tags(tags, len, what, "tags", -1));
    if (len == 0) return FT_OK;
    ft_ner_entity *e = malloc((size_t)len * sizeof *e); /* at most one entity per token */
    if (!e) return ft_error(FT_ERR_NOMEM, "%s: %lld tags", what, (long long)len);
    chunker c = chunker_new();
    int64_t n = 0;
    for (int64_t i = 0; i <= len; i++) n += chunker_step(&c, i < len ? parse_tag(tags[i]) : k_sep, i, &e[n]);
    if (n == 0) { free(e); e = NULL; }
    *out = e; *count = n;
    return FT_OK;
}

/* ---- accumulator ---- */

typedef struct ner_type {
    char   *name; /* NUL-terminated */
    size_t  len;
    int64_t n_true, n_pred, n_correct;
} ner_type;

/* One entity recorded while a sentence is chunked, before the counts are committed. */
typedef struct ner_event {
    const char *type;
    size_t      len;
    int         is_true, is_pred, correct;
    int         type_idx;
} ner_event;

struct ft_ner {
    chunker      ct, cp;      /* true / predicted stream state, carried across sentences */
    int64_t      pos;         /* stream position of the next token (joining "O"s counted) */
    ner_type    *types;
    int          ntypes, types_cap;
    int64_t      num_sentences, num_tokens, num_tokens_correct;
    ner_event   *ev;          /* scratch [ev_cap] */
    int64_t      ev_cap;
    const char **names;       /* scratch [names_cap] for ft_ner_add_ids */
    int64_t      names_cap;
};

int ft_ner_init(ft_ner **out) {
    if (!out) return ft_error(FT_ERR_INVALID, "ft_ner_init: NULL out");
    ft_ner *a = calloc(1, sizeof *a);
    if (!a) return ft_error(FT_ERR_NOMEM, "ft_ner_init");
    a->ct = a->cp = chunker_new();
    *out = a;
    return FT_OK;
}

static void free_types(ft_ner *a, int from) {
    for (int i = from; i < a->ntypes; i++) free(a->types[i].name);
    a->ntypes = from;
}

void ft_ner_free(ft_ner *a) {
    if (!a) return;
    free_types(a, 0);
    free(a->types); free(a->ev); free(a->names);
    free(a);
}

void ft_ner_reset(ft_ner *a) {
    if (!a) return;
    free_types(a, 0);
    a->ct = a->cp = chunker_new();
    a->pos = a->num_sentences = a->num_tokens = a->num_tokens_correct = 0;
}

static int find_or_add_type(ft_ner *a, const char *type, size_t len) {
    for (int i = 0; i < a->ntypes; i++)
        if (same_type(a->types[i].name, a->types[i].len, type, len)) return i;
    if (a->ntypes == a->types_cap) {
        int cap = a->types_cap ? 2 * a->types_cap : 16;
        ner_type *t = realloc(a->types, (size_t)cap * sizeof *t);
        if (!t) return ft_error(FT_ERR_NOMEM, "ft_ner_add: %d entity types", cap);
        a->types = t;
        a->types_cap = cap;
    }
    char *name = malloc(len + 1);
    if (!name) return ft_error(FT_ERR_NOMEM, "ft_ner_add: type name of %zu bytes", len);
    memcpy(name, type, len);
    name[len] = 0;
    a->types[a->ntypes] = (ner_type){name, len, 0, 0, 0};
    return a->ntypes++;
}

/* Checks, chunks, then commits: a failure anywhere leaves the accumulator as it was. */
static int add_sentence(ft_ner *a, const char *const *yt, const char *const *yp, int64_t len, const char *what) {
    if (len + 1 > a->ev_cap / 2) {
        int64_t cap = a->ev_cap ? a->ev_cap : 256;
        while (cap < 2 * (len + 1)) cap *= 2;
        ner_event *ev = realloc(a->ev, (size_t)cap * sizeof *ev);
        if (!ev) return ft_error(FT_ERR_NOMEM, "%s: sentence of %lld tokens", what, (long long)len);
        a->ev = ev;
        a->ev_cap = cap;
    }
    chunker ct = a->ct, cp = a->cp;
    int64_t nev = 0, correct_tokens = 0;
    for (int64_t i = 0; i <= len; i++) {
        ft_ner_entity et = {0}, ep = {0};
        int64_t pos = a->pos + i;
        int ht = chunker_step(&ct, i < len ? parse_tag(yt[i]) : k_sep, pos, &et);
        int hp = chunker_step(&cp, i < len ? parse_tag(yp[i]) : k_sep, pos, &ep);
        if (i < len) correct_tokens += strcmp(yt[i], yp[i]) == 0;
        if (ht && hp && et.start == ep.start && same_type(et.type, et.type_len, ep.type, ep.type_len)) {
            a->ev[nev++] = (ner_event){et.type, et.type_len, 1, 1, 1, -1};
            continue;
        }
        if (ht) a->ev[nev++] = (ner_event){et.type, et.type_len, 1, 0, 0, -1};
        if (hp) a->ev[nev++] = (ner_event){ep.type, ep.type_len, 0, 1, 0, -1};
    }
    int ntypes0 = a->ntypes;
    for (int64_t k = 0; k < nev; k++) {
        int idx = find_or_add_type(a, a->ev[k].type, a->ev[k].len);
        if (idx < 0) { free_types(a, ntypes0); return idx; }
        a->ev[k].type_idx = idx;
    }
    for (int64_t k = 0; k < nev; k++) {
        ner_type *t = &a->types[a->ev[k].type_idx];
        t->n_true += a->ev[k].is_true;
        t->n_pred += a->ev[k].is_pred;
        t->n_correct += a->ev[k].correct;
    }
    a->ct = ct; a->cp = cp;
    a->pos += len + 1;
    a->num_sentences++;
    a->num_tokens += len;
    a->num_tokens_correct += correct_tokens;
    return FT_OK;
}

int ft_ner_add(ft_ner *a, const char *const *tags_true, int64_t len_true,
               const char *const *tags_pred, int64_t len_pred) {
    const char *what = "ft_ner_add";
    if (!a) return ft_error(FT_ERR_INVALID, "%s: NULL accumulator", what);
    int64_t sent = a->num_sentences;
    if (len_true < 0 || len_pred < 0)
        return ft_error(FT_ERR_INVALID, "%s: sentence %lld: negative length", what, (long long)sent);
    if (len_true != len_pred)
        return ft_error(FT_ERR_SHAPE, "%s: sentence %lld: %lld true tags but %lld predicted tags", what,
                        (long long)sent, (long long)len_true, (long long)len_pred);
    FT_TRY(check_tags(tags_true, len_true, what, "tags_true", sent));
    FT_TRY(check_tags(tags_pred, len_pred, what, "tags_pred", sent));
    return add_sentence(a, tags_true, tags_pred, len_true, what);
}

int ft_ner_add_ids(ft_ner *a, const char *const *names, int num_names,
                   const int32_t *ids_true, const int32_t *ids_pred, int64_t len) {
    const char *what = "ft_ner_add_ids";
    if (!a) return ft_error(FT_ERR_INVALID, "%s: NULL accumulator", what);
    int64_t sent = a->num_sentences;
    if (len < 0) return ft_error(FT_ERR_INVALID, "%s: sentence %lld: len = %lld", what, (long long)sent, (long long)len);
    if (!names || num_names < 1) return ft_error(FT_ERR_INVALID, "%s: no tag names", what);
    if (len > 0 && (!ids_true || !ids_pred)) return ft_error(FT_ERR_INVALID, "%s: NULL ids", what);
    FT_TRY(check_tags(names, num_names, what, "names", -1));
    int64_t kept = 0;
    for (int64_t i = 0; i < len; i++) {
        if (ids_true[i] < 0) continue;
        if (ids_true[i] >= num_names)
            return ft_error(FT_ERR_RANGE, "%s: sentence %lld: ids_true[%lld] = %d is not a tag id in 0..%d",
                            what, (long long)sent, (long long)i, (int)ids_true[i], num_names - 1);
        if (ids_pred[i] < 0 || ids_pred[i] >= num_names)
            return ft_error(FT_ERR_RANGE, "%s: sentence %lld: ids_pred[%lld] = %d is not a tag id in 0..%d",
                            what, (long long)sent, (long long)i, (int)ids_pred[i], num_names - 1);
        kept++;
    }
    if (2 * kept > a->names_cap) {
        int64_t cap = a->names_cap ? a->names_cap : 256;
        while (cap < 2 * kept) cap *= 2;
        const char **nm = realloc(a->names, (size_t)cap * sizeof *nm);
        if (!nm) return ft_error(FT_ERR_NOMEM, "%s: sentence of %lld tokens", what, (long long)len);
        a->names = nm;
        a->names_cap = cap;
    }
    const char **yt = a->names, **yp = a->names + kept;
    for (int64_t i = 0, k = 0; i < len; i++) {
        if (ids_true[i] < 0) continue;
        yt[k] = names[ids_true[i]];
        yp[k] = names[ids_pred[i]];
        k++;
    }
    return add_sentence(a, yt, yp, kept, what);
}

/* ---- report ---- */

void ft_ner_report_free(ft_ner_report *r) {
    if (!r) return;
    for (int i = 0; i < r->num_types; i++) free(r->per_type[i].type);
    free(r->per_type);
    memset(r, 0, sizeof *r);
}

static int cmp_types(const void *x, const void *y) {
    const ner_type *a = *(const ner_type *const *)x, *b = *(const ner_type *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->name, b->name, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static double ratio0(double num, double den) { return den > 0 ? num / den : 0.0; }
static double f1_of(double p, double r) { return p + r > 0 ? 2.0 * p * r / (p + r) : 0.0; }

int ft_ner_compute(const ft_ner *a, ft_ner_report *out) {
    const char *what = "ft_ner_compute";
    if (!out) return ft_error(FT_ERR_INVALID, "%s: NULL out", what);
    memset(out, 0, sizeof *out);
    if (!a) return ft_error(FT_ERR_INVALID, "%s: NULL accumulator", what);
    ft_ner_report r = {0};
    int nt = a->ntypes;
    const ner_type **order = malloc((size_t)(nt ? nt : 1) * sizeof *order);
    r.per_type = calloc((size_t)(nt ? nt : 1), sizeof *r.per_type);
    if (!order || !r.per_type) { free(order); free(r.per_type); return ft_error(FT_ERR_NOMEM, "%s", what); }
    for (int i = 0; i < nt; i++) order[i] = &a->types[i];
    qsort(order, (size_t)nt, sizeof *order, cmp_types);

    double pm = 0, rm = 0, fm = 0, pw = 0, rw = 0, fw = 0;
    for (int i = 0; i < nt; i++) {
        const ner_type *t = order[i];
        ft_ner_type_scores *s = &r.per_type[i];
        s->type = malloc(t->len + 1);
        if (!s->type) { free(order); ft_ner_report_free(&r); return ft_error(FT_ERR_NOMEM, "%s", what); }
        memcpy(s->type, t->name, t->len + 1);
        r.num_types = i + 1;
        s->support = t->n_true;
        s->predicted = t->n_pred;
        s->correct = t->n_correct;
        s->precision = ratio0((double)t->n_correct, (double)t->n_pred);
        s->recall = ratio0((double)t->n_correct, (double)t->n_true);
        s->f1 = f1_of(s->precision, s->recall);
        r.num_true += t->n_true; r.num_pred += t->n_pred; r.num_correct += t->n_correct;
        pm += s->precision; rm += s->recall; fm += s->f1;
        pw += s->precision * (double)t->n_true;
        rw += s->recall * (double)t->n_true;
        fw += s->f1 * (double)t->n_true;
    }
    free(order);
    if (nt > 0) { r.precision_macro = pm / nt; r.recall_macro = rm / nt; r.f1_macro = fm / nt; }
    r.precision_weighted = ratio0(pw, (double)r.num_true);
    r.recall_weighted = ratio0(rw, (double)r.num_true);
    r.f1_weighted = ratio0(fw, (double)r.num_true);
    r.precision_micro = ratio0((double)r.num_correct, (double)r.num_pred);
    r.recall_micro = ratio0((double)r.num_correct, (double)r.num_true);
    r.f1_micro = f1_of(r.precision_micro, r.recall_micro);
    r.num_sentences = a->num_sentences;
    r.num_tokens = a->num_tokens;
    r.num_tokens_correct = a->num_tokens_correct;
    r.token_accuracy = ratio0((double)a->num_tokens_correct, (double)a->num_tokens);
    *out = r;
    return FT_OK;
}
