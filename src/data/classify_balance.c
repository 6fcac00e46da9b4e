/* classify_balance.c — class counts and weights, over/under-sampling, stratified split and k-fold. */
#include "finetune/classify_data.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ft_cls_class_counts(int64_t *counts, const int *labels, int64_t n, int K) {
    if (K <= 0) return ft_error(FT_ERR_INVALID, "class counts: K = %d", K);
    memset(counts, 0, (size_t)K * sizeof *counts);
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= K)
            return ft_error(FT_ERR_RANGE, "class counts: example %lld has label %d, outside 0..%d", (long long)i, labels[i], K - 1);
        counts[labels[i]]++;
    }
    return FT_OK;
}

int ft_cls_class_weights(double *w, const int64_t *counts, int K, ft_class_weighting mode) {
    if (K <= 0) return ft_error(FT_ERR_INVALID, "class weights: K = %d", K);
    int64_t n = 0;
    for (int k = 0; k < K; k++) n += counts[k];
    if (n <= 0) return ft_error(FT_ERR_INVALID, "class weights: no examples");
    for (int k = 0; k < K; k++) {
        if (counts[k] <= 0) { w[k] = 0; continue; }
        w[k] = mode == FT_CLASS_WEIGHT_BALANCED ? (double)n / ((double)K * (double)counts[k]) : (double)n / (double)counts[k];
    }
    return FT_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void shuffle64(ft_rng *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ft_rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

/* Indices grouped by class: by[start[k] .. start[k+1]) are class k's, ascending. */
static int group(int64_t **by, int64_t **start, const int *labels, int64_t n, int K) {
    *by = malloc((size_t)(n ? n : 1) * sizeof **by);
    *start = calloc((size_t)K + 1, sizeof **start);
    if (!*by || !*start) { free(*by); free(*start); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= K) {
            free(*by); free(*start);
            return ft_error(FT_ERR_RANGE, "example %lld has label %d, outside 0..%d", (long long)i, labels[i], K - 1);
        }
        (*start)[labels[i] + 1]++;
    }
    for (int k = 0; k < K; k++) (*start)[k + 1] += (*start)[k];
    int64_t *fill = malloc((size_t)K * sizeof *fill);
    if (!fill) { free(*by); free(*start); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    memcpy(fill, *start, (size_t)K * sizeof *fill);
    for (int64_t i = 0; i < n; i++) (*by)[fill[labels[i]]++] = i;
    free(fill);
    return FT_OK;
}

int ft_cls_resample(int64_t **idx, int64_t *m, const int *labels, int64_t n, int K, ft_resample mode, uint64_t seed) {
    *idx = NULL;
    *m = 0;
    if (K <= 0 || n <= 0) return ft_error(FT_ERR_INVALID, "resample: K = %d, n = %lld", K, (long long)n);
    int64_t *by, *st;
    FT_TRY(group(&by, &st, labels, n, K));
    int64_t mx = 0, mn = INT64_MAX;
    for (int k = 0; k < K; k++) {
        int64_t c = st[k + 1] - st[k];
        if (c > mx) mx = c;
        if (c > 0 && c < mn) mn = c;
    }
    int64_t present = 0;
    for (int k = 0; k < K; k++) present += st[k + 1] > st[k];
    int64_t total = present * (mode == FT_RESAMPLE_OVER ? mx : mn);
    int64_t *out = malloc((size_t)total * sizeof *out);
    if (!out) { free(by); free(st); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    ft_rng r;
    ft_rng_seed(&r, seed);
    int64_t w = 0;
    for (int k = 0; k < K; k++) {
        int64_t c = st[k + 1] - st[k], *cls = by + st[k];
        if (c == 0) continue;
        if (mode == FT_RESAMPLE_OVER) {
            for (int64_t i = 0; i < c; i++) out[w++] = cls[i];
            for (int64_t i = c; i < mx; i++) out[w++] = cls[ft_rng_below(&r, (uint64_t)c)];
        } else {
            shuffle64(&r, cls, c);
            for (int64_t i = 0; i < mn; i++) out[w++] = cls[i];
        }
    }
    qsort(out, (size_t)w, sizeof *out, cmp_i64);
    free(by);
    free(st);
    *idx = out;
    *m = w;
    return FT_OK;
}

/* assign[i] = 1 for validation. Writes the two sorted lists. */
static int emit(int64_t **train, int64_t *n_train, int64_t **val, int64_t *n_val, const uint8_t *is_val, int64_t n) {
    int64_t nv = 0;
    for (int64_t i = 0; i < n; i++) nv += is_val[i];
    int64_t *t = malloc((size_t)(n - nv > 0 ? n - nv : 1) * sizeof *t), *v = nv ? malloc((size_t)nv * sizeof *v) : NULL;
    if (!t || (nv && !v)) { free(t); free(v); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) { if (is_val[i]) v[b++] = i; else t[a++] = i; }
    *train = t; *n_train = a; *val = v; *n_val = b;
    return FT_OK;
}

/* the examples grouped by class and a zeroed "goes to validation" flag per example */
static int split_begin(int64_t **by, int64_t **st, uint8_t **is_val, const int *labels, int64_t n, int K) {
    FT_TRY(group(by, st, labels, n, K));
    *is_val = calloc((size_t)n, 1);
    if (!*is_val) { free(*by); free(*st); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    return FT_OK;
}

int ft_cls_stratified_split(int64_t **train, int64_t *n_train, int64_t **val, int64_t *n_val,
                            const int *labels, int64_t n, int K, double val_fraction, uint64_t seed) {
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (n <= 0 || K <= 0 || !(val_fraction >= 0 && val_fraction < 1))
        return ft_error(FT_ERR_INVALID, "stratified split: n = %lld, K = %d, fraction %g (need 0 <= f < 1)", (long long)n, K, val_fraction);
    int64_t *by, *st;
    uint8_t *is_val;
    FT_TRY(split_begin(&by, &st, &is_val, labels, n, K));
    ft_rng r;
    ft_rng_seed(&r, seed);
    for (int k = 0; k < K; k++) {
        int64_t c = st[k + 1] - st[k], *cls = by + st[k];
        shuffle64(&r, cls, c);
        int64_t nv = (int64_t)llround((double)c * val_fraction);
        if (nv >= c && c > 1) nv = c - 1;
        for (int64_t i = 0; i < nv; i++) is_val[cls[i]] = 1;
    }
    int rc = emit(train, n_train, val, n_val, is_val, n);
    free(is_val); free(by); free(st);
    return rc;
}

int ft_cls_stratified_kfold(int64_t **train, int64_t *n_train, int64_t **val, int64_t *n_val,
                            const int *labels, int64_t n, int K, int folds, int fold, uint64_t seed) {
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (n <= 0 || K <= 0 || folds < 2 || fold < 0 || fold >= folds || folds > n)
        return ft_error(FT_ERR_INVALID, "stratified k-fold: n = %lld, K = %d, fold %d of %d", (long long)n, K, fold, folds);
    int64_t *by, *st;
    uint8_t *is_val;
    FT_TRY(split_begin(&by, &st, &is_val, labels, n, K));
    ft_rng r;
    ft_rng_seed(&r, seed);
    int64_t deal = 0;   /* the fold that gets the next example, carried across classes */
    for (int k = 0; k < K; k++) {
        int64_t c = st[k + 1] - st[k], *cls = by + st[k];
        shuffle64(&r, cls, c);
        for (int64_t i = 0; i < c; i++, deal = (deal + 1) % folds)
            if (deal == fold) is_val[cls[i]] = 1;
    }
    int rc = emit(train, n_train, val, n_val, is_val, n);
    free(is_val); free(by); free(st);
    return rc;
}
