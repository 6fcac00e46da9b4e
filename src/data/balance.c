/* balance.c — random over/under-sampling, SMOTE, Borderline-SMOTE 1 and 2, ADASYN and Tomek links, as
 * imbalanced-learn computes them (balance.h states the rules and the order of the random draws). */
#include "finetune/balance.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[] = {"over", "under", "smote", "borderline-smote-1", "borderline-smote-2", "adasyn", "tomek"};

const char *ft_balance_method_name(ft_balance_method m) {
    return (unsigned)m < sizeof NAMES / sizeof *NAMES ? NAMES[m] : "?";
}

int ft_balance_method_from_name(const char *name, ft_balance_method *out) {
    if (!strcmp(name, "borderline-smote") || !strcmp(name, "borderline")) { *out = FT_BAL_BORDERLINE1; return FT_OK; }
    for (int i = 0; i < (int)(sizeof NAMES / sizeof *NAMES); i++)
        if (!strcmp(name, NAMES[i])) { *out = (ft_balance_method)i; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "balance: unknown method '%s' (over, under, smote, borderline-smote[-1|-2], adasyn, tomek)", name);
}

int ft_balance_needs_features(ft_balance_method m) { return m != FT_BAL_OVER && m != FT_BAL_UNDER; }

ft_balance_options ft_balance_default_options(void) {
    ft_balance_options o = {FT_BAL_SMOTE, 1.0, 5, 10, 42, NULL};
    return o;
}

static int is_over(ft_balance_method m) { return m != FT_BAL_UNDER && m != FT_BAL_TOMEK; }

int ft_balance_targets(int64_t *target, const int64_t *counts, int K, ft_balance_method m, double ratio) {
    if (m == FT_BAL_TOMEK) return ft_error(FT_ERR_INVALID, "balance: Tomek links have no target counts");
    if (!(ratio > 0 && ratio <= 1)) return ft_error(FT_ERR_INVALID, "balance: ratio %g outside (0, 1] (minority / majority after resampling)", ratio);
    int64_t mx = 0, mn = INT64_MAX;
    for (int k = 0; k < K; k++) {
        if (counts[k] > mx) mx = counts[k];
        if (counts[k] > 0 && counts[k] < mn) mn = counts[k];
    }
    for (int k = 0; k < K; k++) {
        if (counts[k] == 0) { target[k] = 0; continue; }
        if (is_over(m)) {
            double t = floor(ratio * (double)mx - (double)counts[k]);
            target[k] = t > 0 ? (int64_t)t : 0;
        } else {
            int64_t keep = (int64_t)floor((double)mn / ratio);
            target[k] = keep < counts[k] ? keep : counts[k];
        }
    }
    return FT_OK;
}

void ft_balance_result_free(ft_balance_result *r) {
    free(r->X); free(r->y); free(r->source); free(r->base); free(r->neighbor);
    free(r->danger); free(r->links); free(r->per_row);
    memset(r, 0, sizeof *r);
}

/* ---- draws ---- */
typedef struct drawer { const ft_balance_draws *d; ft_rng r; } drawer;
static uint64_t below(drawer *dr, uint64_t n) { return dr->d ? dr->d->below(dr->d->ctx, n) : ft_rng_below(&dr->r, n); }
static double uniform(drawer *dr) { return dr->d ? dr->d->uniform(dr->d->ctx) : ft_rng_uniform_f64(&dr->r); }

/* ---- the result, filled row by row ---- */
static int out_alloc(ft_balance_result *r, int64_t cap, int C, int with_x) {
    size_t c = (size_t)(cap ? cap : 1);
    r->C = with_x ? C : 0;
    r->X = with_x ? malloc(c * (size_t)C * sizeof *r->X) : NULL;
    r->y = malloc(c * sizeof *r->y);
    r->source = malloc(c * sizeof *r->source);
    r->base = malloc(c * sizeof *r->base);
    r->neighbor = malloc(c * sizeof *r->neighbor);
    if ((with_x && !r->X) || !r->y || !r->source || !r->base || !r->neighbor) return ft_error(FT_ERR_NOMEM, "balance: out of memory");
    return FT_OK;
}

static void out_copy(ft_balance_result *r, const float *X, const int *y, int64_t i) {
    int64_t o = r->n++;
    if (r->X) memcpy(r->X + o * r->C, X + i * r->C, (size_t)r->C * sizeof *r->X);
    r->y[o] = y[i];
    r->source[o] = i;
    r->base[o] = r->neighbor[o] = -1;
}

/* x + step * d (imblearn: d = x_nn - x in float, scaled by v (Borderline-2) in double then rounded, the sum in double) */
static void out_synth(ft_balance_result *r, const float *X, int64_t a, int64_t b, int label, double step, double v) {
    int64_t o = r->n++;
    const float *x = X + a * r->C, *nb = X + b * r->C;
    float *dst = r->X + o * r->C;
    for (int c = 0; c < r->C; c++) {
        float d = nb[c] - x[c];
        if (v >= 0) d = (float)((double)d * v);
        dst[c] = (float)((double)x[c] + step * (double)d);
    }
    r->y[o] = label;
    r->source[o] = -1;
    r->base[o] = a;
    r->neighbor[o] = b;
}

/* rows of class k, ascending: *rows malloc'd */
static int class_rows(int64_t **rows, const int *y, int64_t n, int k, int64_t count) {
    *rows = malloc((size_t)(count ? count : 1) * sizeof **rows);
    if (!*rows) return ft_error(FT_ERR_NOMEM, "balance: out of memory");
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] == k) (*rows)[w++] = i;
    return FT_OK;
}

static float *gather(const float *X, int C, const int64_t *rows, int64_t m) {
    float *g = malloc((size_t)(m ? m : 1) * (size_t)C * sizeof *g);
    if (g)
        for (int64_t i = 0; i < m; i++) memcpy(g + i * C, X + rows[i] * C, (size_t)C * sizeof *g);
    return g;
}

/* neighbours of the queries without the first (the query itself): nn [nq, k] */
static int knn_drop_self(int64_t **nn, const float *X, int64_t n, int C, const float *Q, int64_t nq, int k) {
    int64_t *full = malloc((size_t)(nq ? nq : 1) * (size_t)(k + 1) * sizeof *full);
    *nn = malloc((size_t)(nq ? nq : 1) * (size_t)k * sizeof **nn);
    if (!full || !*nn) { free(full); free(*nn); *nn = NULL; return ft_error(FT_ERR_NOMEM, "balance: out of memory"); }
    int rc = ft_knn(full, X, n, C, Q, nq, k + 1);
    if (rc == FT_OK)
        for (int64_t q = 0; q < nq; q++) memcpy(*nn + q * k, full + q * (k + 1) + 1, (size_t)k * sizeof **nn);
    free(full);
    if (rc != FT_OK) { free(*nn); *nn = NULL; }
    return rc;
}

/* numpy's pairwise summation of doubles (np.sum), so that ADASYN's shares round as imblearn's do */
static double np_sum(const double *a, int64_t n) {
    if (n < 8) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

static int push_list(int64_t **list, int64_t *n, int64_t v) {
    int64_t *nl = realloc(*list, (size_t)(*n + 1) * sizeof *nl);
    if (!nl) return ft_error(FT_ERR_NOMEM, "balance: out of memory");
    nl[(*n)++] = v;
    *list = nl;
    return FT_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* SMOTE / Borderline-SMOTE for class k: `add` new rows */
static int smote_class(ft_balance_result *r, const float *X, const int *y, int64_t n, int C, int k, int64_t add,
                       const ft_balance_options *o, drawer *dr) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += y[i] == k;
    int64_t *cls;
    FT_TRY(class_rows(&cls, y, n, k, cnt));
    int kn = o->k_neighbors, rc = FT_OK;
    float *Xc = gather(X, C, cls, cnt), *Xb = NULL;
    int64_t *bases = NULL, nb = cnt, *nn = NULL, *pick = NULL;
    double *step = NULL;
    if (!Xc) { free(cls); return ft_error(FT_ERR_NOMEM, "balance: out of memory"); }
    int border = o->method == FT_BAL_BORDERLINE1 || o->method == FT_BAL_BORDERLINE2;
    if (border) {
        /* danger rows: m/2 <= neighbours of another class (whole set) < m */
        int m = o->m_neighbors;
        if (m + 1 > n) { rc = ft_error(FT_ERR_INVALID, "balance: m_neighbors = %d needs more than %lld rows", m, (long long)n); goto done; }
        int64_t *nm;
        if ((rc = knn_drop_self(&nm, X, n, C, Xc, cnt, m)) != FT_OK) goto done;
        bases = malloc((size_t)(cnt ? cnt : 1) * sizeof *bases);
        if (!bases) { free(nm); rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
        nb = 0;
        for (int64_t i = 0; i < cnt; i++) {
            int other = 0;
            for (int j = 0; j < m; j++) other += y[nm[i * m + j]] != k;
            if (2 * other >= m && other < m) bases[nb++] = i;
        }
        free(nm);
        for (int64_t i = 0; i < nb && rc == FT_OK; i++) rc = push_list(&r->danger, &r->n_danger, cls[bases[i]]);
        if (rc != FT_OK || nb == 0) goto done;   /* no danger row: nothing to generate (as imblearn) */
    }
    /* where the neighbours come from: class k (SMOTE, Borderline-1) or the whole set (Borderline-2) */
    int whole = o->method == FT_BAL_BORDERLINE2;
    int64_t pool = whole ? n : cnt;
    if (kn + 1 > pool) {
        rc = ft_error(FT_ERR_INVALID, "balance: class %d has %lld rows: %s needs more than k_neighbors = %d", k, (long long)pool,
                      ft_balance_method_name(o->method), kn);
        goto done;
    }
    Xb = border ? malloc((size_t)nb * (size_t)C * sizeof *Xb) : NULL;
    if (border && !Xb) { rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
    for (int64_t i = 0; border && i < nb; i++) memcpy(Xb + i * C, Xc + bases[i] * C, (size_t)C * sizeof *Xb);
    if ((rc = knn_drop_self(&nn, whole ? X : Xc, pool, C, border ? Xb : Xc, nb, kn)) != FT_OK) goto done;
    pick = malloc((size_t)(add ? add : 1) * sizeof *pick);
    step = malloc((size_t)(add ? add : 1) * 2 * sizeof *step);   /* [add] steps, then [add] Borderline-2 factors */
    if (!pick || !step) { rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
    double *v = step + add;
    for (int64_t s = 0; s < add; s++) pick[s] = (int64_t)below(dr, (uint64_t)(nb * kn));
    for (int64_t s = 0; s < add; s++) step[s] = uniform(dr);
    /* Borderline-2: a neighbour of another class scales the difference by v in [0, 0.5), drawn after the steps */
    for (int64_t s = 0; s < add; s++) {
        int64_t row = pick[s] / kn, col = pick[s] % kn;
        int64_t b = whole ? nn[row * kn + col] : cls[nn[row * kn + col]];
        v[s] = whole && y[b] != k ? 0.5 * uniform(dr) : -1;
    }
    for (int64_t s = 0; s < add; s++) {
        int64_t row = pick[s] / kn, col = pick[s] % kn;
        int64_t a = cls[border ? bases[row] : row];
        int64_t b = whole ? nn[row * kn + col] : cls[nn[row * kn + col]];
        out_synth(r, X, a, b, k, step[s], v[s]);
    }
done:
    free(cls); free(Xc); free(Xb); free(bases); free(nn); free(pick); free(step);
    return rc;
}

/* ADASYN for class k: about `add` new rows, spread by the share of other-class neighbours */
static int adasyn_class(ft_balance_result *r, const float *X, const int *y, int64_t n, int C, int k, int64_t add,
                        const ft_balance_options *o, drawer *dr) {
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += y[i] == k;
    int kn = o->k_neighbors;
    if (kn + 1 > cnt || kn + 1 > n)
        return ft_error(FT_ERR_INVALID, "balance: class %d has %lld rows: adasyn needs more than k_neighbors = %d", k, (long long)cnt, kn);
    int64_t *cls, *nn = NULL, *gen = NULL, *cols = NULL;
    FT_TRY(class_rows(&cls, y, n, k, cnt));
    float *Xc = gather(X, C, cls, cnt);
    double *ratio = malloc((size_t)cnt * sizeof *ratio), *step = NULL;
    int rc = Xc && ratio ? FT_OK : ft_error(FT_ERR_NOMEM, "balance: out of memory");
    if (rc == FT_OK) rc = knn_drop_self(&nn, X, n, C, Xc, cnt, kn);
    if (rc != FT_OK) goto done;
    for (int64_t i = 0; i < cnt; i++) {
        int other = 0;
        for (int j = 0; j < kn; j++) other += y[nn[i * kn + j]] != k;
        ratio[i] = (double)other / (double)kn;
    }
    double sum = np_sum(ratio, cnt);
    if (sum == 0) { rc = ft_error(FT_ERR_INVALID, "balance: adasyn: no row of class %d has a neighbour of another class (use smote)", k); goto done; }
    gen = malloc((size_t)cnt * sizeof *gen);
    if (!gen) { rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
    int64_t total = 0;
    for (int64_t i = 0; i < cnt; i++) {
        gen[i] = (int64_t)nearbyint(ratio[i] / sum * (double)add);   /* np.rint: half to even */
        total += gen[i];
        r->per_row[cls[i]] = gen[i];
    }
    free(nn);
    nn = NULL;
    if ((rc = knn_drop_self(&nn, Xc, cnt, C, Xc, cnt, kn)) != FT_OK) goto done;
    cols = malloc((size_t)(total ? total : 1) * sizeof *cols);
    step = malloc((size_t)(total ? total : 1) * sizeof *step);
    if (!cols || !step) { rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
    for (int64_t s = 0; s < total; s++) cols[s] = (int64_t)below(dr, (uint64_t)kn);
    for (int64_t s = 0; s < total; s++) step[s] = uniform(dr);
    int64_t s = 0;
    for (int64_t i = 0; i < cnt; i++)
        for (int64_t g = 0; g < gen[i]; g++, s++) out_synth(r, X, cls[i], cls[nn[i * kn + cols[s]]], k, step[s], -1);
done:
    free(cls); free(Xc); free(ratio); free(nn); free(gen); free(cols); free(step);
    return rc;
}

static int64_t *class_counts(const int *y, int64_t n, int K) {
    int64_t *c = calloc((size_t)K, sizeof *c);
    if (c)
        for (int64_t i = 0; i < n; i++) c[y[i]]++;
    return c;
}

static int tomek(ft_balance_result *r, const float *X, const int *y, int64_t n, int C, int K) {
    int64_t *counts = class_counts(y, n, K), *nn = malloc((size_t)n * 2 * sizeof *nn);
    unsigned char *drop = calloc((size_t)n, 1);
    int rc = counts && nn && drop ? FT_OK : ft_error(FT_ERR_NOMEM, "balance: out of memory");
    if (rc == FT_OK) rc = ft_knn(nn, X, n, C, X, n, 2);
    if (rc == FT_OK) {
        int minority = -1;
        for (int k = 0; k < K; k++)
            if (counts[k] > 0 && (minority < 0 || counts[k] < counts[minority])) minority = k;
        for (int64_t i = 0; i < n && rc == FT_OK; i++) {
            int64_t j = nn[i * 2 + 1];
            if (y[j] == y[i] || nn[j * 2 + 1] != i) continue;
            rc = push_list(&r->links, &r->n_links, i);
            if (y[i] != minority) drop[i] = 1;
        }
        for (int64_t i = 0; i < n && rc == FT_OK; i++)
            if (!drop[i]) out_copy(r, X, y, i);
    }
    free(counts); free(nn); free(drop);
    return rc;
}

int ft_balance(ft_balance_result *out, const float *X, const int *y, int64_t n, int C, int K, const ft_balance_options *o) {
    memset(out, 0, sizeof *out);
    if (n <= 0 || K <= 0) return ft_error(FT_ERR_INVALID, "balance: %lld rows, %d classes", (long long)n, K);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K) return ft_error(FT_ERR_RANGE, "balance: row %lld has label %d, outside 0..%d", (long long)i, y[i], K - 1);
    if (ft_balance_needs_features(o->method) && (!X || C <= 0))
        return ft_error(FT_ERR_INVALID, "balance: %s needs feature vectors (embeddings)", ft_balance_method_name(o->method));
    if (o->k_neighbors < 1 || o->m_neighbors < 1) return ft_error(FT_ERR_INVALID, "balance: k_neighbors %d, m_neighbors %d", o->k_neighbors, o->m_neighbors);
    drawer dr = {o->draws, {{0}}};
    ft_rng_seed(&dr.r, o->seed);
    int with_x = X && C > 0;
    int64_t *counts = class_counts(y, n, K), *target = malloc((size_t)K * sizeof *target);
    int rc = counts && target ? FT_OK : ft_error(FT_ERR_NOMEM, "balance: out of memory");
    if (rc == FT_OK && o->method == FT_BAL_TOMEK) {
        rc = out_alloc(out, n, C, with_x);
        if (rc == FT_OK) rc = tomek(out, X, y, n, C, K);
        goto done;
    }
    if (rc == FT_OK) rc = ft_balance_targets(target, counts, K, o->method, o->ratio);
    if (rc != FT_OK) goto done;
    if (o->method == FT_BAL_UNDER) {
        unsigned char *keep = calloc((size_t)n, 1);
        if (!keep || (rc = out_alloc(out, n, C, with_x)) != FT_OK) { free(keep); if (rc == FT_OK) rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
        for (int k = 0; k < K && rc == FT_OK; k++) {
            int64_t *cls;
            if ((rc = class_rows(&cls, y, n, k, counts[k])) != FT_OK) break;
            /* a partial Fisher-Yates shuffle picks target[k] of the class's rows */
            for (int64_t i = 0; i < target[k]; i++) {
                int64_t j = i + (int64_t)below(&dr, (uint64_t)(counts[k] - i));
                int64_t t = cls[i]; cls[i] = cls[j]; cls[j] = t;
                keep[cls[i]] = 1;
            }
            free(cls);
        }
        for (int64_t i = 0; i < n && rc == FT_OK; i++)
            if (keep[i]) out_copy(out, X, y, i);
        free(keep);
        goto done;
    }
    int64_t add = 0;
    for (int k = 0; k < K; k++) add += target[k];
    /* ADASYN's rounding may give up to half a row more per input row than the target */
    if ((rc = out_alloc(out, n + add + (o->method == FT_BAL_ADASYN ? n : 0), C, with_x)) != FT_OK) goto done;
    if (o->method == FT_BAL_ADASYN && !(out->per_row = calloc((size_t)n, sizeof *out->per_row))) { rc = ft_error(FT_ERR_NOMEM, "balance: out of memory"); goto done; }
    for (int64_t i = 0; i < n; i++) out_copy(out, X, y, i);
    for (int k = 0; k < K && rc == FT_OK; k++) {
        if (target[k] == 0) continue;
        if (o->method == FT_BAL_OVER) {
            int64_t *cls;
            if ((rc = class_rows(&cls, y, n, k, counts[k])) != FT_OK) break;
            for (int64_t s = 0; s < target[k]; s++) out_copy(out, X, y, cls[below(&dr, (uint64_t)counts[k])]);
            free(cls);
        } else if (o->method == FT_BAL_ADASYN) {
            rc = adasyn_class(out, X, y, n, C, k, target[k], o, &dr);
        } else {
            rc = smote_class(out, X, y, n, C, k, target[k], o, &dr);
        }
    }
    if (rc == FT_OK && out->n_danger) qsort(out->danger, (size_t)out->n_danger, sizeof *out->danger, cmp_i64);
done:
    free(counts);
    free(target);
    if (rc != FT_OK) ft_balance_result_free(out);
    return rc;
}
