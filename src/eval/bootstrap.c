/* bootstrap.c — bootstrap confidence intervals and the paired bootstrap test over ft_text_stats, as
 * sacreBLEU computes them (sacrebleu/significance.py):
 *
 *   resamples   idx = numpy.random.default_rng(seed).choice(n, size=(samples, n)): row s is resample s
 *               (pcg64.c draws the same numbers);
 *   each score  recomputed on each resample (corpus BLEU / chrF from the summed statistics, the mean of the
 *               per-example scores for ROUGE / EM / F1, distinct n-grams over the resample for distinct-n);
 *   interval    sorted scores x: mean(x), low = x[samples / 40], high = x[samples - samples / 40 - 1],
 *               ci = (high - low) / 2 (estimate_ci);
 *   paired test the same resamples for base and system: d_s = |sys_s - base_s|, p = (1 + #{s : d_s - mean(d) >
 *               |sys - base|}) / (samples + 1) (_paired_bs_test / _compute_p_value).
 * distinct-n is not resampled (its fields are NaN): it is not a mean over examples, and a resample repeats
 * examples, which lowers the share of distinct n-grams (on 300 TED lines the resampled distinct-1 lies far
 * below the full set's value), so an interval from it would not cover the score it describes. */
#include "eval/textmetrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* mean / low / high / ci of x [ns] (sorted in place) */
static void interval(double *x, int ns, double *mean, double *low, double *high, double *ci) {
    double s = 0;
    for (int i = 0; i < ns; i++) s += x[i];
    qsort(x, (size_t)ns, sizeof *x, cmp_double);
    int lo = ns / 40, hi = ns - ns / 40 - 1;
    *mean = s / ns;
    *low = x[lo];
    *high = x[hi];
    *ci = 0.5 * (x[hi] - x[lo]);
}

/* scores of every resample: out [FT_TS_COUNT][ns] for each system in sts [nsys] */
static int resample(const ft_text_stats *const *sts, int nsys, int ns, uint64_t seed, double **out) {
    int n = sts[0]->n, dense = 0;
    for (int q = 0; q < nsys; q++) if (sts[q]->n_dense > dense) dense = sts[q]->n_dense;
    int32_t *idx = malloc((size_t)n * sizeof *idx), *stamp = calloc((size_t)dense + 1, sizeof *stamp);
    if (!idx || !stamp) { free(idx); free(stamp); return ft_error(FT_ERR_NOMEM, "bootstrap: out of memory"); }
    ft__pcg64 rng;
    ft__pcg64_seed(&rng, seed);
    int32_t gen = 0;
    for (int s = 0; s < ns; s++) {
        for (int j = 0; j < n; j++) idx[j] = (int32_t)ft__pcg64_below(&rng, (uint32_t)n);
        for (int q = 0; q < nsys; q++) {
            double v[FT_TS_COUNT];
            ft__text_score_subset(sts[q], idx, stamp, &gen, v);
            for (int k = 0; k < FT_TS_COUNT; k++) out[q][(size_t)k * (size_t)ns + (size_t)s] = v[k];
        }
        if (gen > INT32_MAX - 8) { memset(stamp, 0, ((size_t)dense + 1) * sizeof *stamp); gen = 0; }
    }
    free(idx);
    free(stamp);
    return FT_OK;
}

int ft_text_stats_bootstrap(const ft_text_stats *st, int n_samples, uint64_t seed, ft_text_bootstrap *out) {
    if (!st || !out) return ft_error(FT_ERR_INVALID, "bootstrap: NULL argument");
    if (n_samples < 1) return ft_error(FT_ERR_INVALID, "bootstrap: %d resamples (need at least 1)", n_samples);
    memset(out, 0, sizeof *out);
    out->n_samples = n_samples;
    out->seed = seed;
    ft_text_scores sc;
    FT_TRY(ft_text_stats_scores(st, &sc));
    memcpy(out->score, sc.v, sizeof out->score);
    double *x = malloc((size_t)FT_TS_COUNT * (size_t)n_samples * sizeof *x);
    if (!x) return ft_error(FT_ERR_NOMEM, "bootstrap: out of memory for %d resamples", n_samples);
    ft__text_signatures(st, n_samples, seed, out->bleu_signature, sizeof out->bleu_signature, out->chrf_signature,
                        sizeof out->chrf_signature);
    int rc = resample(&st, 1, n_samples, seed, &x);
    for (int k = 0; k < FT_TS_COUNT && rc == FT_OK; k++) {
        if (!(st->metrics & ft_text_score_group(k))) continue;
        if (ft_text_score_group(k) == FT_TEXT_DISTINCT) { out->mean[k] = out->low[k] = out->high[k] = out->ci[k] = NAN; continue; }
        interval(x + (size_t)k * (size_t)n_samples, n_samples, &out->mean[k], &out->low[k], &out->high[k], &out->ci[k]);
    }
    free(x);
    return rc;
}

int ft_text_stats_paired(const ft_text_stats *base, const ft_text_stats *sys, int n_samples, uint64_t seed,
                         ft_text_paired *out) {
    if (!base || !sys || !out) return ft_error(FT_ERR_INVALID, "paired bootstrap: NULL argument");
    if (n_samples < 1) return ft_error(FT_ERR_INVALID, "paired bootstrap: %d resamples (need at least 1)", n_samples);
    if (base->n != sys->n)
        return ft_error(FT_ERR_INVALID, "paired bootstrap: the systems have %d and %d examples", base->n, sys->n);
    if (base->metrics != sys->metrics || base->stem != sys->stem)
        return ft_error(FT_ERR_INVALID, "paired bootstrap: the systems were scored with different metrics or stemming");
    memset(out, 0, sizeof *out);
    out->n_samples = n_samples;
    out->seed = seed;
    ft_text_scores sb, ss;
    FT_TRY(ft_text_stats_scores(base, &sb));
    FT_TRY(ft_text_stats_scores(sys, &ss));
    memcpy(out->base, sb.v, sizeof out->base);
    memcpy(out->sys, ss.v, sizeof out->sys);
    size_t per = (size_t)FT_TS_COUNT * (size_t)n_samples;
    double *xb = malloc(per * sizeof *xb), *xs = malloc(per * sizeof *xs), *d = malloc((size_t)n_samples * sizeof *d);
    if (!xb || !xs || !d) {
        free(xb); free(xs); free(d);
        return ft_error(FT_ERR_NOMEM, "paired bootstrap: out of memory for %d resamples", n_samples);
    }
    ft__text_signatures(base, n_samples, seed, out->bleu_signature, sizeof out->bleu_signature, out->chrf_signature,
                        sizeof out->chrf_signature);
    const ft_text_stats *both[2] = {base, sys};
    double *outs[2] = {xb, xs};
    int rc = resample(both, 2, n_samples, seed, outs);
    for (int k = 0; k < FT_TS_COUNT && rc == FT_OK; k++) {
        if (!(base->metrics & ft_text_score_group(k))) continue;
        if (ft_text_score_group(k) == FT_TEXT_DISTINCT) {
            out->p_value[k] = out->base_mean[k] = out->base_ci[k] = out->sys_mean[k] = out->sys_ci[k] = NAN;
            continue;
        }
        double *b = xb + (size_t)k * (size_t)n_samples, *s = xs + (size_t)k * (size_t)n_samples;
        double mean_d = 0;
        for (int i = 0; i < n_samples; i++) { d[i] = s[i] > b[i] ? s[i] - b[i] : b[i] - s[i]; mean_d += d[i]; }
        mean_d /= n_samples;
        double real = out->sys[k] > out->base[k] ? out->sys[k] - out->base[k] : out->base[k] - out->sys[k];
        int c = 0;
        for (int i = 0; i < n_samples; i++) c += d[i] - mean_d > real;
        out->p_value[k] = (double)(c + 1) / (double)(n_samples + 1);
        double lo, hi;
        interval(b, n_samples, &out->base_mean[k], &lo, &hi, &out->base_ci[k]);
        interval(s, n_samples, &out->sys_mean[k], &lo, &hi, &out->sys_ci[k]);
    }
    free(xb); free(xs); free(d);
    return rc;
}
