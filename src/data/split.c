/* split.c — train / validation index lists: a validation file, a seeded fraction, or k folds. */
#include "data/data_internal.h"
#include "finetune/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t *range(int64_t n) {
    int64_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (v) for (int64_t i = 0; i < n; i++) v[i] = i;
    return v;
}

void ft_data_split_free(ft_data_split *s) {
    if (!s) return;
    free(s->train);
    free(s->val);
    memset(s, 0, sizeof *s);
}

int ft_data_split_make(ft_data_split *out, const ft_dataset *ds, const ft_dataset *val_ds, double val_fraction,
                       int folds, int fold, uint64_t seed) {
    memset(out, 0, sizeof *out);
    if (!ds) return ft_error(FT_ERR_INVALID, "ft_data_split_make: no dataset");
    int64_t n = ft_dataset_size(ds);
    out->train_ds = ds;
    out->val_ds = val_ds ? val_ds : ds;
    if (val_ds) {
        out->n_train = n;
        out->n_val = ft_dataset_size(val_ds);
        out->train = range(n);
        out->val = range(out->n_val);
        if (!out->train || !out->val) { ft_data_split_free(out); return ft_error(FT_ERR_NOMEM, "data: out of memory (split)"); }
        return FT_OK;
    }
    if (n > INT32_MAX) return ft_error(FT_ERR_RANGE, "data: %lld examples is too many to split", (long long)n);
    int64_t v0, v1;  /* validation = permutation[v0 .. v1) */
    if (folds > 0) {
        if (folds < 2) return ft_error(FT_ERR_INVALID, "data: folds must be at least 2 (got %d)", folds);
        if (fold < 0 || fold >= folds)
            return ft_error(FT_ERR_INVALID, "data: fold %d out of range (folds %d: 0..%d)", fold, folds, folds - 1);
        if (n < folds) return ft_error(FT_ERR_RANGE, "data: %lld examples cannot make %d folds", (long long)n, folds);
        v0 = n * fold / folds;
        v1 = n * (fold + 1) / folds;
    } else {
        if (!(val_fraction >= 0.0 && val_fraction < 1.0))
            return ft_error(FT_ERR_INVALID, "data: validation fraction %g must be in [0, 1)", val_fraction);
        int64_t nv = (int64_t)llround((double)n * val_fraction);
        if (val_fraction > 0 && n >= 2 && nv == 0) nv = 1;
        if (nv >= n) nv = n - 1;
        if (nv < 0) nv = 0;
        v0 = 0;
        v1 = nv;
    }
    int *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    if (!perm) return ft_error(FT_ERR_NOMEM, "data: out of memory (split)");
    for (int64_t i = 0; i < n; i++) perm[i] = (int)i;
    ft_rng r;
    ft_rng_seed(&r, seed);
    ft_rng_shuffle_int(&r, perm, (int)n);
    out->n_val = v1 - v0;
    out->n_train = n - out->n_val;
    out->train = malloc((size_t)(out->n_train > 0 ? out->n_train : 1) * sizeof *out->train);
    out->val = out->n_val ? malloc((size_t)out->n_val * sizeof *out->val) : NULL;
    if (!out->train || (out->n_val && !out->val)) {
        free(perm);
        ft_data_split_free(out);
        return ft_error(FT_ERR_NOMEM, "data: out of memory (split)");
    }
    int64_t t = 0, v = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i >= v0 && i < v1) out->val[v++] = perm[i];
        else out->train[t++] = perm[i];
    }
    free(perm);
    qsort(out->train, (size_t)out->n_train, sizeof *out->train, cmp_i64);
    if (out->val) qsort(out->val, (size_t)out->n_val, sizeof *out->val, cmp_i64);
    return FT_OK;
}
