/* chrf.c — sacreBLEU's chrF with its defaults (char order 6, word order 0, beta 2, whitespace not counted).
 *
 * Text: every whitespace character (Python's str.split()) removed; n-grams of code points, n = 1..6.
 * Statistics of one reference, per order: [hyp n-grams if the reference has any of that order else 0,
 * reference n-grams, sum over hypothesis n-grams of min(hyp count, ref count)] (CHRF._get_match_statistics).
 * Several references: the statistics of the reference with the highest sentence chrF, the first on ties.
 *
 * Score (CHRF._compute_f_score): precision and recall averaged over the orders where both the hypothesis
 * and the reference have n-grams; F_beta = (1 + beta^2) P R / (beta^2 P + R) x 100 (0 when P + R = 0). */
#include "eval/textmetrics_internal.h"

#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

enum { C_HYP = 0, C_REF = 1 };

/* the code points of s without whitespace, into cx->t0 / t1 (as ids = code points) */
static int chars_of(const char *s, ft__tm_toks *out) {
    size_t n = strlen(s), i = 0;
    out->n = 0;
    while (i < n) {
        uint32_t cp = ft__tm_utf8_next(s, n, &i);
        if (!ft__tm_is_pyspace(cp)) FT_TRY(ft__tm_toks_push(out, (int32_t)cp));
    }
    return FT_OK;
}

static ft__tm_key char_key(const int32_t *c, int n) {
    uint64_t w[2] = {0, 0};
    for (int k = 0; k < n; k++) w[k / 3] |= ((uint64_t)(uint32_t)c[k] + 1) << (21 * (k % 3));
    ft__tm_key key = {w[0], w[1]};
    return key;
}

static int char_key_order(ft__tm_key k) {
    int o = 0;
    for (int j = 0; j < 3; j++) o += ((k.a >> (21 * j)) & 0x1FFFFF) != 0;
    for (int j = 0; j < 3; j++) o += ((k.b >> (21 * j)) & 0x1FFFFF) != 0;
    return o;
}

static int count_chars(ft__tm_map *m, const ft__tm_toks *t, int col) {
    FT_TRY(ft__tm_map_reserve(m, FT__CHRF_ORDER * t->n));
    for (int n = 1; n <= FT__CHRF_ORDER; n++)
        for (int i = 0; i + n <= t->n; i++) ft__tm_map_cnt(m, ft__tm_map_slot(m, char_key(t->id + i, n)))[col]++;
    return FT_OK;
}

double ft__chrf_from_stats(const double st[FT__CHRF_NSTATS]) {
    const double eps = 1e-16, factor = 4.0;  /* beta^2 */
    double avg_prec = 0, avg_rec = 0;
    int eff = 0;
    for (int i = 0; i < FT__CHRF_ORDER; i++) {
        double n_hyp = st[3 * i], n_ref = st[3 * i + 1], n_match = st[3 * i + 2];
        double prec = n_hyp > 0 ? n_match / n_hyp : eps;
        double rec = n_ref > 0 ? n_match / n_ref : eps;
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            eff++;
        }
    }
    if (eff == 0) avg_prec = avg_rec = 0.0;
    else { avg_prec /= eff; avg_rec /= eff; }
    if (avg_prec + avg_rec != 0) {
        double score = (1 + factor) * avg_prec * avg_rec;
        score /= (factor * avg_prec) + avg_rec;
        return 100 * score;
    }
    return 0.0;
}

int ft__chrf_segment(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int64_t st[FT__CHRF_NSTATS]) {
    ft__tm_map *m = &cx->map;
    FT_TRY(chars_of(hyp, &cx->t0));
    double best = -1.0;
    memset(st, 0, FT__CHRF_NSTATS * sizeof *st);
    for (int r = 0; r < nr; r++) {
        FT_TRY(chars_of(refs[r], &cx->t1));
        ft__tm_map_clear(m);
        FT_TRY(count_chars(m, &cx->t0, C_HYP));
        FT_TRY(count_chars(m, &cx->t1, C_REF));
        int64_t s[FT__CHRF_NSTATS] = {0};
        for (int u = 0; u < m->n; u++) {
            int32_t *c = ft__tm_map_cnt(m, m->used[u]);
            int o = char_key_order(m->keys[m->used[u]]) - 1;
            s[3 * o] += c[C_HYP];
            s[3 * o + 1] += c[C_REF];
            s[3 * o + 2] += c[C_HYP] < c[C_REF] ? c[C_HYP] : c[C_REF];
        }
        for (int o = 0; o < FT__CHRF_ORDER; o++) if (s[3 * o + 1] == 0) s[3 * o] = 0;
        double d[FT__CHRF_NSTATS];
        for (int k = 0; k < FT__CHRF_NSTATS; k++) d[k] = (double)s[k];
        double f = ft__chrf_from_stats(d);
        if (f > best) {
            best = f;
            memcpy(st, s, sizeof s);
        }
    }
    return FT_OK;
}
