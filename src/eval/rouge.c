/* rouge.c — Google's rouge-score (rouge_scorer.RougeScorer) F-measures for rouge1, rouge2, rougeL, rougeLsum.
 *
 * Tokens (rouge_score/tokenize.py): text.lower(); every run of characters outside [a-z0-9] becomes a
 * separator; with stemming, tokens longer than 3 characters go through the Porter stemmer (porter.c).
 * Only ASCII letters and digits survive, so lowering needs the two non-ASCII code points whose Python
 * lower case is ASCII: U+212A KELVIN SIGN -> k and U+0130 -> i (+ U+0307, a separator).
 *
 *   rougeN     n-gram counts; overlap = sum over reference n-grams of min(counts); P = overlap / max(#hyp, 1),
 *              R = overlap / max(#ref, 1)
 *   rougeL     LCS of the two token lists; 0 when either is empty; P = lcs / #hyp, R = lcs / #ref
 *   rougeLsum  the texts split on "\n" (empty pieces dropped); for each reference sentence the union of the
 *              LCS index sets against every hypothesis sentence (one LCS each, read back from the DP table
 *              as rouge-score does, preferring to move left only when strictly longer); each union token is
 *              a hit while both texts still have an unused copy of it; P = hits / #hyp, R = hits / #ref
 *   F = 2PR / (P + R), 0 when P + R = 0.   Several references: the max F per type (score_multi). */
#include "eval/textmetrics_internal.h"

#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

static double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* a text's ROUGE tokens (ids in cx->rtoks), appended to out */
static int rouge_tokens(ft__tm_ctx *cx, const char *s, size_t n, int stem, ft__tm_toks *out) {
    FT_TRY(ft__tm_ctx_buf(cx, n + 8));
    char *tok = cx->buf;
    size_t i = 0;
    int tl = 0;
    for (;;) {
        uint32_t c = 0;
        int at_end = i >= n;
        if (!at_end) c = ft__tm_utf8_next(s, n, &i);
        if (c >= 'A' && c <= 'Z') c += 32;
        else if (c == 0x212A) c = 'k';
        if (c == 0x130) {  /* i + U+0307: the i ends any token after it */
            tok[tl++] = 'i';
            c = 0x307;
        }
        if (!at_end && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            tok[tl++] = (char)c;
            continue;
        }
        if (tl > 0) {
            int id;
            if (stem && tl > 3) {
                int raw = ft__tm_intern_id(&cx->rraw, tok, (size_t)tl);
                if (raw < 0) return raw;
                if (raw >= cx->stem_cap) {
                    int cap = cx->stem_cap ? cx->stem_cap : 1024;
                    while (cap <= raw) cap *= 2;
                    int32_t *p = realloc(cx->stem_of, (size_t)cap * sizeof *p);
                    if (!p) return FT_ERR_NOMEM;
                    memset(p + cx->stem_cap, 0, (size_t)(cap - cx->stem_cap) * sizeof *p);
                    cx->stem_of = p;
                    cx->stem_cap = cap;
                }
                if (!cx->stem_of[raw]) {
                    char small[64], *heap = NULL, *sb = small;
                    if (tl + 2 > (int)sizeof small) {
                        heap = malloc((size_t)tl + 2);
                        if (!heap) return FT_ERR_NOMEM;
                        sb = heap;
                    }
                    int sl = ft_porter_stem(tok, tl, sb, tl + 2);
                    int sid = sl < 0 ? sl : ft__tm_intern_id(&cx->rtoks, sb, (size_t)sl);
                    free(heap);
                    if (sid < 0) return sid;
                    cx->stem_of[raw] = sid + 1;
                }
                id = cx->stem_of[raw] - 1;
            } else {
                id = ft__tm_intern_id(&cx->rtoks, tok, (size_t)tl);
                if (id < 0) return id;
            }
            FT_TRY(ft__tm_toks_push(out, id));
            tl = 0;
        }
        if (at_end) break;
    }
    return FT_OK;
}

static double rouge_n(ft__tm_map *m, const int32_t *ref, int rn, const int32_t *hyp, int hn, int n) {
    ft__tm_map_clear(m);
    int64_t nref = 0, nhyp = 0, overlap = 0;
    for (int i = 0; i + n <= rn; i++) { ft__tm_map_cnt(m, ft__tm_map_slot(m, ft__tm_word_key(ref + i, n)))[0]++; nref++; }
    for (int i = 0; i + n <= hn; i++) { ft__tm_map_cnt(m, ft__tm_map_slot(m, ft__tm_word_key(hyp + i, n)))[1]++; nhyp++; }
    for (int u = 0; u < m->n; u++) {
        int32_t *c = ft__tm_map_cnt(m, m->used[u]);
        overlap += c[0] < c[1] ? c[0] : c[1];
    }
    double p = (double)overlap / (double)(nhyp > 1 ? nhyp : 1);
    double r = (double)overlap / (double)(nref > 1 ? nref : 1);
    return fmeasure(p, r);
}

static int dp_reserve(ft__tm_ctx *cx, size_t cells) {
    if (cells > FT__TM_LCS_MAX) return FT_ERR_RANGE;
    if (cells <= cx->dp_cap) return FT_OK;
    int32_t *p = realloc(cx->dp, cells * sizeof *p);
    if (!p) return FT_ERR_NOMEM;
    cx->dp = p;
    cx->dp_cap = cells;
    return FT_OK;
}

/* LCS length with two rows */
static int lcs_len(ft__tm_ctx *cx, const int32_t *a, int an, const int32_t *b, int bn, int *out) {
    if ((size_t)an * (size_t)bn > FT__TM_LCS_MAX) return FT_ERR_RANGE;  /* the same bound as the full tables */
    FT_TRY(dp_reserve(cx, 2 * ((size_t)bn + 1)));
    int32_t *prev = cx->dp, *cur = cx->dp + bn + 1;
    memset(prev, 0, ((size_t)bn + 1) * sizeof *prev);
    for (int i = 1; i <= an; i++) {
        cur[0] = 0;
        for (int j = 1; j <= bn; j++)
            cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        int32_t *t = prev; prev = cur; cur = t;
    }
    *out = prev[bn];
    return FT_OK;
}

/* marks in mark[0, rn) the reference indices of one LCS of ref and can (rouge-score's _backtrack_norec) */
static int lcs_mark(ft__tm_ctx *cx, const int32_t *ref, int rn, const int32_t *can, int cn, uint8_t *mark) {
    size_t w = (size_t)cn + 1;
    FT_TRY(dp_reserve(cx, ((size_t)rn + 1) * w));
    int32_t *t = cx->dp;
    for (size_t j = 0; j < w; j++) t[j] = 0;
    for (int i = 1; i <= rn; i++) {
        int32_t *row = t + (size_t)i * w, *up = row - w;
        row[0] = 0;
        for (int j = 1; j <= cn; j++)
            row[j] = ref[i - 1] == can[j - 1] ? up[j - 1] + 1 : (up[j] > row[j - 1] ? up[j] : row[j - 1]);
    }
    int i = rn, j = cn;
    while (i > 0 && j > 0) {
        if (ref[i - 1] == can[j - 1]) { mark[i - 1] = 1; i--; j--; }
        else if (t[(size_t)i * w + (size_t)j - 1] > t[(size_t)(i - 1) * w + (size_t)j]) j--;
        else i--;
    }
    return FT_OK;
}

typedef struct sents { ft__tm_toks tok; int *start; int n, cap; } sents;  /* sentence k: tok[start[k], start[k+1]) */

static int split_sents(ft__tm_ctx *cx, const char *s, int stem, sents *out) {
    out->tok.n = 0;
    out->n = 0;
    size_t n = strlen(s), a = 0;
    while (a <= n) {
        const char *nl = memchr(s + a, '\n', n - a);
        size_t b = nl ? (size_t)(nl - s) : n;
        if (b > a) {
            if (out->n + 2 > out->cap) {
                int cap = out->cap ? out->cap * 2 : 16;
                while (cap < out->n + 2) cap *= 2;
                int *p = realloc(out->start, (size_t)cap * sizeof *p);
                if (!p) return FT_ERR_NOMEM;
                out->start = p;
                out->cap = cap;
            }
            out->start[out->n++] = out->tok.n;
            FT_TRY(rouge_tokens(cx, s + a, b - a, stem, &out->tok));
        }
        if (!nl) break;
        a = b + 1;
    }
    if (out->cap == 0) {
        out->start = malloc(16 * sizeof *out->start);
        if (!out->start) return FT_ERR_NOMEM;
        out->cap = 16;
    }
    out->start[out->n] = out->tok.n;
    return FT_OK;
}

static int rouge_lsum(ft__tm_ctx *cx, const sents *ref, const sents *can, double *f) {
    *f = 0;
    if (ref->n == 0 || can->n == 0) return FT_OK;
    int m = ref->tok.n, n = can->tok.n;
    if (m == 0 || n == 0) return FT_OK;
    ft__tm_map *cnt = &cx->map2;
    ft__tm_map_clear(cnt);
    FT_TRY(ft__tm_map_reserve(cnt, m + n));
    for (int k = 0; k < m; k++) ft__tm_map_cnt(cnt, ft__tm_map_slot(cnt, ft__tm_word_key(ref->tok.id + k, 1)))[0]++;
    for (int k = 0; k < n; k++) ft__tm_map_cnt(cnt, ft__tm_map_slot(cnt, ft__tm_word_key(can->tok.id + k, 1)))[1]++;
    int longest = 0;
    for (int s = 0; s < ref->n; s++) if (ref->start[s + 1] - ref->start[s] > longest) longest = ref->start[s + 1] - ref->start[s];
    uint8_t *mark = malloc((size_t)longest + 1);
    if (!mark) return FT_ERR_NOMEM;
    int64_t hits = 0;
    int rc = FT_OK;
    for (int s = 0; s < ref->n && rc == FT_OK; s++) {
        const int32_t *r = ref->tok.id + ref->start[s];
        int rn = ref->start[s + 1] - ref->start[s];
        memset(mark, 0, (size_t)rn + 1);
        for (int c = 0; c < can->n && rc == FT_OK; c++)
            rc = lcs_mark(cx, r, rn, can->tok.id + can->start[c], can->start[c + 1] - can->start[c], mark);
        for (int i = 0; i < rn && rc == FT_OK; i++) {
            if (!mark[i]) continue;
            int32_t *k = ft__tm_map_cnt(cnt, ft__tm_map_find(cnt, ft__tm_word_key(r + i, 1)));
            if (k[1] > 0 && k[0] > 0) { hits++; k[1]--; k[0]--; }
        }
    }
    free(mark);
    FT_TRY(rc);
    double recall = (double)hits / m, precision = (double)hits / n;
    *f = fmeasure(precision, recall);
    return FT_OK;
}

int ft__rouge_example(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int stem, double f[4]) {
    for (int k = 0; k < 4; k++) f[k] = 0;
    ft__tm_toks h = {0}, r = {0};
    sents hs = {0}, rs = {0};
    int rc = rouge_tokens(cx, hyp, strlen(hyp), stem, &h);
    if (rc == FT_OK) rc = split_sents(cx, hyp, stem, &hs);
    for (int q = 0; q < nr && rc == FT_OK; q++) {
        double g[4] = {0, 0, 0, 0};
        r.n = 0;
        rc = rouge_tokens(cx, refs[q], strlen(refs[q]), stem, &r);
        if (rc == FT_OK) rc = ft__tm_map_reserve(&cx->map, r.n + h.n);
        if (rc != FT_OK) break;
        g[0] = rouge_n(&cx->map, r.id, r.n, h.id, h.n, 1);
        g[1] = rouge_n(&cx->map, r.id, r.n, h.id, h.n, 2);
        if (r.n > 0 && h.n > 0) {
            int l = 0;
            rc = lcs_len(cx, r.id, r.n, h.id, h.n, &l);
            if (rc != FT_OK) break;
            g[2] = fmeasure((double)l / h.n, (double)l / r.n);
        }
        rc = split_sents(cx, refs[q], stem, &rs);
        if (rc == FT_OK) rc = rouge_lsum(cx, &rs, &hs, &g[3]);
        for (int k = 0; k < 4; k++) if (q == 0 || g[k] > f[k]) f[k] = g[k];
    }
    ft__tm_toks_free(&h);
    ft__tm_toks_free(&r);
    ft__tm_toks_free(&hs.tok); free(hs.start);
    ft__tm_toks_free(&rs.tok); free(rs.start);
    return rc;
}
