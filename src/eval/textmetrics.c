/* textmetrics.c — the public text-metric API (include/finetune/textmetrics.h): input checks, the per-example
 * statistics of every metric, corpus scores and per-example scores from them, names and signatures. */
#include "eval/textmetrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

static const char *const k_names[FT_TS_COUNT] = {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum",
                                                 "exact_match", "f1", "distinct1", "distinct2"};
static const unsigned k_groups[FT_TS_COUNT] = {FT_TEXT_BLEU, FT_TEXT_CHRF, FT_TEXT_ROUGE, FT_TEXT_ROUGE,
                                               FT_TEXT_ROUGE, FT_TEXT_ROUGE, FT_TEXT_EM, FT_TEXT_F1,
                                               FT_TEXT_DISTINCT, FT_TEXT_DISTINCT};

const char *ft_text_score_name(int id) { return id >= 0 && id < FT_TS_COUNT ? k_names[id] : NULL; }
unsigned ft_text_score_group(int id) { return id >= 0 && id < FT_TS_COUNT ? k_groups[id] : 0; }

ft_text_metric_opts ft_text_metric_default_opts(void) {
    ft_text_metric_opts o = {FT_TEXT_ALL, 0};
    return o;
}

int ft_text_metrics_parse(const char *list, unsigned *out) {
    if (!list || !out) return ft_error(FT_ERR_INVALID, "metrics: no list given");
    static const struct { const char *name; unsigned bits; } k[] = {
        {"bleu", FT_TEXT_BLEU}, {"chrf", FT_TEXT_CHRF}, {"rouge", FT_TEXT_ROUGE}, {"em", FT_TEXT_EM},
        {"exact_match", FT_TEXT_EM}, {"f1", FT_TEXT_F1}, {"distinct", FT_TEXT_DISTINCT}, {"all", FT_TEXT_ALL},
    };
    unsigned bits = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && (*p == ' ')) { p++; l--; }
        while (l && p[l - 1] == ' ') l--;
        int found = 0;
        for (size_t i = 0; i < sizeof k / sizeof *k; i++)
            if (strlen(k[i].name) == l && !memcmp(k[i].name, p, l)) { bits |= k[i].bits; found = 1; }
        if (!found && l)
            return ft_error(FT_ERR_INVALID, "metrics: unknown metric '%.*s' (known: bleu, chrf, rouge, em, f1, distinct, all)", (int)l, p);
        if (!e) break;
        p = e + 1;
    }
    if (!bits) return ft_error(FT_ERR_INVALID, "metrics: the list '%s' names no metric", list);
    *out = bits;
    return FT_OK;
}

void ft_text_stats_free(ft_text_stats *st) {
    if (!st) return;
    free(st->bleu); free(st->chrf); free(st->ex);
    free(st->uni); free(st->bi); free(st->uni_off); free(st->bi_off);
    free(st);
}

int ft_text_stats_count(const ft_text_stats *st) { return st ? st->n : 0; }

static int check_utf8(const char *s, const char *what, int stream, int line) {
    size_t bad = 0;
    if (ft__tm_utf8_valid(s, strlen(s), &bad)) return FT_OK;
    if (stream >= 0)
        return ft_error(FT_ERR_FORMAT, "%s %d, line %d: not valid UTF-8 (byte 0x%02x at offset %zu)", what, stream + 1,
                        line + 1, (unsigned char)s[bad], bad);
    return ft_error(FT_ERR_FORMAT, "%s %d: not valid UTF-8 (byte 0x%02x at offset %zu)", what, line + 1,
                    (unsigned char)s[bad], bad);
}

static int push_all(ft__tm_toks *dst, const ft__tm_toks *src) {
    for (int k = 0; k < src->n; k++) FT_TRY(ft__tm_toks_push(dst, src->id[k]));
    return FT_OK;
}

int ft_text_stats_compute(ft_text_stats **out, const char *const *hyp, const char *const *const *refs, int n_refs,
                          int n, const ft_text_metric_opts *o) {
    if (!out) return ft_error(FT_ERR_INVALID, "text metrics: out is NULL");
    *out = NULL;
    ft_text_metric_opts d = ft_text_metric_default_opts();
    if (!o) o = &d;
    unsigned metrics = o->metrics ? o->metrics & FT_TEXT_ALL : FT_TEXT_ALL;
    int need_refs = (metrics & ~(unsigned)FT_TEXT_DISTINCT) != 0;
    if (!hyp || n < 1) return ft_error(FT_ERR_INVALID, "text metrics: no hypotheses (n = %d)", n);
    if (need_refs && (!refs || n_refs < 1)) return ft_error(FT_ERR_INVALID, "text metrics: no references (%d streams)", n_refs);
    if (!need_refs) n_refs = refs ? n_refs : 0;
    for (int r = 0; r < n_refs; r++)
        if (!refs[r]) return ft_error(FT_ERR_INVALID, "text metrics: reference stream %d is NULL", r + 1);
    int nrefs_sig = -2;
    for (int i = 0; i < n; i++) {
        if (!hyp[i]) return ft_error(FT_ERR_INVALID, "text metrics: hypothesis %d is NULL", i + 1);
        FT_TRY(check_utf8(hyp[i], "hypothesis", -1, i));
        int have = 0;
        for (int r = 0; r < n_refs; r++) {
            if (!refs[r][i]) continue;
            FT_TRY(check_utf8(refs[r][i], "reference stream", r, i));
            have++;
        }
        if (need_refs && !have) return ft_error(FT_ERR_INVALID, "text metrics: example %d has no reference", i + 1);
        if (nrefs_sig == -2) nrefs_sig = have;
        else if (nrefs_sig != have) nrefs_sig = -1;
    }
    ft_text_stats *st = calloc(1, sizeof *st);
    if (!st) return ft_error(FT_ERR_NOMEM, "text metrics: out of memory");
    st->n = n;
    st->n_refs = nrefs_sig;
    st->metrics = metrics;
    st->stem = o->rouge_stem != 0;
    st->ex = calloc((size_t)n * FT_TS_COUNT, sizeof *st->ex);
    if (metrics & FT_TEXT_BLEU) st->bleu = calloc((size_t)n * FT__BLEU_NSTATS, sizeof *st->bleu);
    if (metrics & FT_TEXT_CHRF) st->chrf = calloc((size_t)n * FT__CHRF_NSTATS, sizeof *st->chrf);
    if (metrics & FT_TEXT_DISTINCT) {
        st->uni_off = calloc((size_t)n + 1, sizeof *st->uni_off);
        st->bi_off = calloc((size_t)n + 1, sizeof *st->bi_off);
    }
    if (!st->ex || ((metrics & FT_TEXT_BLEU) && !st->bleu) || ((metrics & FT_TEXT_CHRF) && !st->chrf) ||
        ((metrics & FT_TEXT_DISTINCT) && (!st->uni_off || !st->bi_off))) {
        ft_text_stats_free(st);
        return ft_error(FT_ERR_NOMEM, "text metrics: out of memory for %d examples", n);
    }
    ft__tm_ctx cx = {0};
    ft__tm_map ids = {0};
    ft__tm_toks uni = {0}, bi = {0}, u1 = {0}, b1 = {0};
    const char **rl = malloc((size_t)(n_refs > 0 ? n_refs : 1) * sizeof *rl);
    int rc = rl ? FT_OK : FT_ERR_NOMEM;
    for (int i = 0; i < n && rc == FT_OK; i++) {
        int nr = 0;
        for (int r = 0; r < n_refs; r++) if (refs[r][i]) rl[nr++] = refs[r][i];
        double *ex = st->ex + (size_t)i * FT_TS_COUNT;
        if (metrics & FT_TEXT_BLEU) {
            int64_t *s = st->bleu + (size_t)i * FT__BLEU_NSTATS;
            rc = ft__bleu_segment(&cx, hyp[i], rl, nr, s);
            if (rc != FT_OK) break;
            double dsum[FT__BLEU_NSTATS];
            for (int k = 0; k < FT__BLEU_NSTATS; k++) dsum[k] = (double)s[k];
            ft_bleu_result b;
            ft__bleu_from_stats(dsum, 1, &b);
            ex[FT_TS_BLEU] = b.score;
        }
        if (metrics & FT_TEXT_CHRF) {
            int64_t *s = st->chrf + (size_t)i * FT__CHRF_NSTATS;
            rc = ft__chrf_segment(&cx, hyp[i], rl, nr, s);
            if (rc != FT_OK) break;
            double dsum[FT__CHRF_NSTATS];
            for (int k = 0; k < FT__CHRF_NSTATS; k++) dsum[k] = (double)s[k];
            ex[FT_TS_CHRF] = ft__chrf_from_stats(dsum);
        }
        if (metrics & FT_TEXT_ROUGE) {
            rc = ft__rouge_example(&cx, hyp[i], rl, nr, st->stem, ex + FT_TS_ROUGE1);
            if (rc == FT_ERR_RANGE) rc = ft_error(FT_ERR_RANGE, "text metrics: example %d: texts too long for ROUGE-L (LCS table over %zu cells)", i + 1, FT__TM_LCS_MAX);
            if (rc != FT_OK) break;
        }
        if (metrics & (FT_TEXT_EM | FT_TEXT_F1)) {
            double em, f1;
            rc = ft__qa_example(&cx, hyp[i], rl, nr, &em, &f1);
            if (rc != FT_OK) break;
            if (metrics & FT_TEXT_EM) ex[FT_TS_EM] = 100.0 * em;
            if (metrics & FT_TEXT_F1) ex[FT_TS_F1] = 100.0 * f1;
        }
        if (metrics & FT_TEXT_DISTINCT) {
            u1.n = b1.n = 0;
            rc = ft__distinct_example(&cx, &ids, &st->n_dense, hyp[i], &u1, &b1);
            if (rc == FT_OK) rc = push_all(&uni, &u1);
            if (rc == FT_OK) rc = push_all(&bi, &b1);
            if (rc != FT_OK) break;
            st->uni_off[i + 1] = uni.n;
            st->bi_off[i + 1] = bi.n;
            /* within the example: distinct numbers / count */
            for (int g = 0; g < 2 && rc == FT_OK; g++) {
                const ft__tm_toks *t = g ? &b1 : &u1;
                ft__tm_map_clear(&cx.map2);
                rc = ft__tm_map_reserve(&cx.map2, t->n);
                int uniq = 0;
                for (int a = 0; a < t->n && rc == FT_OK; a++) {
                    ft__tm_key k = {(uint64_t)(uint32_t)t->id[a] + 1, 0};
                    uniq += ft__tm_map_cnt(&cx.map2, ft__tm_map_slot(&cx.map2, k))[0]++ == 0;
                }
                ex[FT_TS_DISTINCT1 + g] = t->n ? (double)uniq / t->n : 0.0;
            }
            if (rc != FT_OK) break;
        }
    }
    if (rc == FT_OK && (metrics & FT_TEXT_DISTINCT)) { st->uni = uni.id; st->bi = bi.id; uni.id = bi.id = NULL; }
    ft__tm_toks_free(&uni); ft__tm_toks_free(&bi); ft__tm_toks_free(&u1); ft__tm_toks_free(&b1);
    ft__tm_map_free(&ids);
    ft__tm_ctx_free(&cx);
    free(rl);
    if (rc != FT_OK) {
        ft_text_stats_free(st);
        if (rc == FT_ERR_NOMEM) return ft_error(rc, "text metrics: out of memory");
        return rc;
    }
    *out = st;
    return FT_OK;
}

void ft__text_score_subset(const ft_text_stats *st, const int32_t *idx, int32_t *stamp, int32_t *gen, double v[FT_TS_COUNT]) {
    for (int k = 0; k < FT_TS_COUNT; k++) v[k] = 0;
    int n = st->n;
    if (st->metrics & FT_TEXT_BLEU) {
        double s[FT__BLEU_NSTATS] = {0};
        for (int j = 0; j < n; j++) {
            const int64_t *e = st->bleu + (size_t)(idx ? idx[j] : j) * FT__BLEU_NSTATS;
            for (int k = 0; k < FT__BLEU_NSTATS; k++) s[k] += (double)e[k];
        }
        ft_bleu_result b;
        ft__bleu_from_stats(s, 0, &b);
        v[FT_TS_BLEU] = b.score;
    }
    if (st->metrics & FT_TEXT_CHRF) {
        double s[FT__CHRF_NSTATS] = {0};
        for (int j = 0; j < n; j++) {
            const int64_t *e = st->chrf + (size_t)(idx ? idx[j] : j) * FT__CHRF_NSTATS;
            for (int k = 0; k < FT__CHRF_NSTATS; k++) s[k] += (double)e[k];
        }
        v[FT_TS_CHRF] = ft__chrf_from_stats(s);
    }
    static const int k_mean[] = {FT_TS_ROUGE1, FT_TS_ROUGE2, FT_TS_ROUGEL, FT_TS_ROUGELSUM, FT_TS_EM, FT_TS_F1};
    for (size_t q = 0; q < sizeof k_mean / sizeof *k_mean; q++) {
        int k = k_mean[q];
        if (!(st->metrics & k_groups[k])) continue;
        double s = 0;
        for (int j = 0; j < n; j++) s += st->ex[(size_t)(idx ? idx[j] : j) * FT_TS_COUNT + (size_t)k];
        v[k] = s / n;
    }
    if ((st->metrics & FT_TEXT_DISTINCT) && !idx) {  /* (not resampled: bootstrap.c) */
        for (int g = 0; g < 2; g++) {
            const int32_t *ids = g ? st->bi : st->uni;
            const int64_t *off = g ? st->bi_off : st->uni_off;
            int32_t cur = ++*gen;
            int64_t total = 0, uniq = 0;
            for (int j = 0; j < n; j++) {
                int i = idx ? idx[j] : j;
                for (int64_t a = off[i]; a < off[i + 1]; a++) {
                    total++;
                    if (stamp[ids[a]] != cur) { stamp[ids[a]] = cur; uniq++; }
                }
            }
            v[FT_TS_DISTINCT1 + g] = total ? (double)uniq / (double)total : 0.0;
        }
    }
}

void ft__text_signatures(const ft_text_stats *st, int n_bootstrap, uint64_t seed, char *bleu, size_t bleu_cap,
                         char *chrf, size_t chrf_cap) {
    char nrefs[24], bs[64] = "";
    if (st->n_refs < 0) snprintf(nrefs, sizeof nrefs, "var");
    else snprintf(nrefs, sizeof nrefs, "%d", st->n_refs);
    if (n_bootstrap > 0) snprintf(bs, sizeof bs, "|bs:%d|seed:%llu", n_bootstrap, (unsigned long long)seed);
    if (bleu) snprintf(bleu, bleu_cap, "nrefs:%s%s|case:mixed|eff:no|tok:13a|smooth:exp|version:%s", nrefs, bs, FT_TEXT_SACREBLEU_VERSION);
    if (chrf) snprintf(chrf, chrf_cap, "nrefs:%s%s|case:mixed|eff:yes|nc:6|nw:0|space:no|version:%s", nrefs, bs, FT_TEXT_SACREBLEU_VERSION);
}

int ft_text_stats_scores(const ft_text_stats *st, ft_text_scores *out) {
    if (!st || !out) return ft_error(FT_ERR_INVALID, "text metrics: NULL argument");
    memset(out, 0, sizeof *out);
    out->n = st->n;
    out->n_refs = st->n_refs;
    out->metrics = st->metrics;
    out->rouge_stem = st->stem;
    int32_t gen = 0, *stamp = NULL;
    if (st->metrics & FT_TEXT_DISTINCT) {
        stamp = calloc((size_t)st->n_dense + 1, sizeof *stamp);
        if (!stamp) return ft_error(FT_ERR_NOMEM, "text metrics: out of memory");
    }
    ft__text_score_subset(st, NULL, stamp, &gen, out->v);
    free(stamp);
    if (st->metrics & FT_TEXT_BLEU) {
        double s[FT__BLEU_NSTATS] = {0};
        for (int j = 0; j < st->n; j++)
            for (int k = 0; k < FT__BLEU_NSTATS; k++) s[k] += (double)st->bleu[(size_t)j * FT__BLEU_NSTATS + (size_t)k];
        ft__bleu_from_stats(s, 0, &out->bleu);
    }
    ft__text_signatures(st, 0, 0, out->bleu_signature, sizeof out->bleu_signature, out->chrf_signature,
                        sizeof out->chrf_signature);
    return FT_OK;
}

int ft_text_stats_example(const ft_text_stats *st, int i, double out[FT_TS_COUNT]) {
    if (!st || !out) return ft_error(FT_ERR_INVALID, "text metrics: NULL argument");
    if (i < 0 || i >= st->n) return ft_error(FT_ERR_RANGE, "text metrics: example %d of %d", i, st->n);
    memcpy(out, st->ex + (size_t)i * FT_TS_COUNT, FT_TS_COUNT * sizeof *out);
    return FT_OK;
}

int ft_text_stats_example_bleu(const ft_text_stats *st, int i, ft_bleu_result *out) {
    if (!st || !out) return ft_error(FT_ERR_INVALID, "text metrics: NULL argument");
    if (i < 0 || i >= st->n) return ft_error(FT_ERR_RANGE, "text metrics: example %d of %d", i, st->n);
    if (!(st->metrics & FT_TEXT_BLEU)) return ft_error(FT_ERR_INVALID, "text metrics: BLEU was not computed");
    double s[FT__BLEU_NSTATS];
    for (int k = 0; k < FT__BLEU_NSTATS; k++) s[k] = (double)st->bleu[(size_t)i * FT__BLEU_NSTATS + (size_t)k];
    ft__bleu_from_stats(s, 1, out);
    return FT_OK;
}

int ft_text_scores_compute(const char *const *hyp, const char *const *const *refs, int n_refs, int n,
                           const ft_text_metric_opts *o, ft_text_scores *out) {
    ft_text_stats *st;
    FT_TRY(ft_text_stats_compute(&st, hyp, refs, n_refs, n, o));
    int rc = ft_text_stats_scores(st, out);
    ft_text_stats_free(st);
    return rc;
}
