/* bleu.c — sacreBLEU's BLEU: per-segment statistics and the score from summed statistics.
 *
 * Segment statistics (BLEU._compute_segment_statistics): the 13a tokens of the hypothesis and of each
 * reference; reference n-gram counts (n = 1..4) are the max over the references; correct[n] sums
 * min(hyp count, ref count) over the hypothesis n-grams, total[n] their count; ref_len is the reference
 * length closest to the hypothesis length, the shorter one on a tie (BLEU._get_closest_ref_len).
 *
 * Score (BLEU.compute_bleu, smooth_method 'exp'): bp = 1 if sys_len >= ref_len, else exp(1 - ref/sys) (0 when
 * sys_len = 0); 0 when nothing matched; precisions p_n = 100 correct/total, except that the k-th order
 * with no match gets 100 / (2^k total); orders after the first with total 0 stay 0 (log floored at
 * -9999999999, sacreBLEU's my_log). Without effective order the geometric mean runs over all 4 orders;
 * with it (sentence BLEU) over the orders up to the last with total > 0. */
#include "eval/textmetrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

/* map columns: 0 = hypothesis count, 1 = max reference count, 2 = count in the current reference */
enum { C_HYP = 0, C_REF = 1, C_TMP = 2 };

static int count_ngrams(ft__tm_map *m, const ft__tm_toks *t, int col) {
    FT_TRY(ft__tm_map_reserve(m, 4 * t->n));
    for (int n = 1; n <= 4; n++)
        for (int i = 0; i + n <= t->n; i++) ft__tm_map_cnt(m, ft__tm_map_slot(m, ft__tm_word_key(t->id + i, n)))[col]++;
    return FT_OK;
}

int ft__bleu_segment(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int64_t st[FT__BLEU_NSTATS]) {
    memset(st, 0, FT__BLEU_NSTATS * sizeof *st);
    ft__tm_map *m = &cx->map;
    ft__tm_map_clear(m);
    int64_t closest = -1, closest_diff = -1;
    cx->t0.n = 0;
    FT_TRY(ft__tok13a(cx, hyp, strlen(hyp), &cx->t0));
    int64_t hyp_len = cx->t0.n;
    for (int r = 0; r < nr; r++) {
        cx->t1.n = 0;
        FT_TRY(ft__tok13a(cx, refs[r], strlen(refs[r]), &cx->t1));
        int64_t len = cx->t1.n, diff = len > hyp_len ? len - hyp_len : hyp_len - len;
        if (closest_diff < 0 || diff < closest_diff) { closest_diff = diff; closest = len; }
        else if (diff == closest_diff && len < closest) closest = len;
        FT_TRY(count_ngrams(m, &cx->t1, C_TMP));
        /* fold this reference's counts into the max, then reset them for the next one */
        for (int u = 0; u < m->n; u++) {
            int32_t *c = ft__tm_map_cnt(m, m->used[u]);
            if (c[C_TMP] > c[C_REF]) c[C_REF] = c[C_TMP];
            c[C_TMP] = 0;
        }
    }
    FT_TRY(count_ngrams(m, &cx->t0, C_HYP));
    for (int u = 0; u < m->n; u++) {
        int32_t *c = ft__tm_map_cnt(m, m->used[u]);
        if (!c[C_HYP]) continue;
        int o = ft__tm_word_key_order(m->keys[m->used[u]]) - 1;
        st[6 + o] += c[C_HYP];
        st[2 + o] += c[C_HYP] < c[C_REF] ? c[C_HYP] : c[C_REF];
    }
    st[0] = hyp_len;
    st[1] = closest < 0 ? 0 : closest;
    return FT_OK;
}

static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

void ft__bleu_from_stats(const double st[FT__BLEU_NSTATS], int effective_order, ft_bleu_result *out) {
    memset(out, 0, sizeof *out);
    double sys_len = st[0], ref_len = st[1];
    out->sys_len = (int64_t)sys_len;
    out->ref_len = (int64_t)ref_len;
    for (int k = 0; k < 4; k++) { out->counts[k] = (int64_t)st[2 + k]; out->totals[k] = (int64_t)st[6 + k]; }
    out->ratio = ref_len > 0 ? sys_len / ref_len : 0.0;
    double bp = 1.0;
    if (sys_len < ref_len) bp = sys_len > 0 ? exp(1.0 - ref_len / sys_len) : 0.0;
    out->bp = bp;
    int any = 0;
    for (int k = 0; k < 4; k++) any |= st[2 + k] != 0;
    if (!any) { out->score = 0.0; return; }
    double smooth = 1.0;
    int eff = 4;
    for (int n = 1; n <= 4; n++) {
        double correct = st[1 + n], total = st[5 + n];
        if (total == 0) break;
        if (effective_order) eff = n;
        if (correct == 0) {
            smooth *= 2;
            out->precisions[n - 1] = 100.0 / (smooth * total);
        } else {
            out->precisions[n - 1] = 100.0 * correct / total;
        }
    }
    double s = 0;
    for (int k = 0; k < eff; k++) s += my_log(out->precisions[k]);
    out->score = bp * exp(s / eff);
}
