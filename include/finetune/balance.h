/* balance.h — class balancing of a labelled set: random over- and under-sampling to a target ratio, and
 * the SMOTE family and Tomek links on feature vectors (sentence embeddings): what `finetune data balance`
 * runs. Each method follows imbalanced-learn 0.14 (PyPI imbalanced-learn, "imblearn"), and
 * tests/test_balance.c checks the results against it on fixtures (tests/parity/balance_imblearn.py).
 *
 * Target counts (ratio R in (0, 1], imblearn's float sampling_strategy = minority / majority after
 * resampling; N_maj, N_min = the largest and smallest class counts):
 *   over-sampling methods (over, smote, borderline-smote-1/2, adasyn): every class k gets
 *       max(0, floor(R * N_maj - count_k)) new rows (R = 1: every class as large as the majority);
 *   under: every class k keeps min(count_k, floor(N_min / R)) rows (R = 1: every class as small as the minority);
 *   tomek: no target: every Tomek link loses its member from a class other than the minority class.
 * Methods (n rows X [n, C] with labels y [n] in 0..K-1; neighbours by euclidean distance, computed in
 * double, ties broken by the lower row index; "the k neighbours of a row" never count the row itself):
 *   over    rows of class k drawn uniformly with replacement (RandomOverSampler);
 *   under   rows of class k drawn uniformly without replacement (RandomUnderSampler);
 *   smote   a new row = x + u * (x_nn - x): x drawn uniformly among class k's rows, x_nn among x's
 *           k_neighbors (5) neighbours within class k, u uniform in [0, 1) (SMOTE, Chawla et al. 2002);
 *   borderline-smote-1  the same, but x only among the "danger" rows of class k: rows whose m_neighbors (10)
 *           neighbours in the whole set hold m' of another class with m/2 <= m' < m (Han et al. 2005);
 *   borderline-smote-2  x among the danger rows, x_nn among x's k neighbours in the whole set; when x_nn is
 *           of another class the step is u * v * (x_nn - x) with v uniform in [0, 0.5);
 *   adasyn  row i of class k gets round_half_even(r_i / sum r * G) new rows (G = the target count), r_i =
 *           the share of i's k neighbours (whole set) of another class; each new row steps towards one of
 *           i's k neighbours within class k drawn uniformly (He et al. 2008);
 *   tomek   rows a, b of different classes that are each other's nearest neighbour form a Tomek link.
 * Rows and arithmetic are imblearn's: x_nn - x in float, x + u * d in double, rounded to float.
 * Output order (as imblearn): the input rows (kept rows for under / tomek, ascending), then the new rows
 * class by class; source[i] names the input row a row is (or, for a synthetic row, -1, with base[i] and
 * neighbor[i] the two input rows it lies between).
 *
 * Random draws: by default a xoshiro stream from seed (rng.h); the same seed gives the same rows. They come
 * in imblearn's order (per class: every base/neighbour index, then every step), so a test can replay the
 * draws of imblearn's numpy RandomState through ft_balance_draws and get imblearn's rows exactly.
 *
 *   ft_balance_options o = ft_balance_default_options();
 *   o.method = FT_BAL_SMOTE; o.ratio = 1.0; o.seed = 42;
 *   ft_balance_result r;
 *   FT_TRY(ft_balance(&r, X, y, n, C, K, &o));          // r.X [r.n, C], r.y [r.n], r.source [r.n]
 *   ...
 *   ft_balance_result_free(&r);
 * Ownership: results are malloc'd and freed by ft_balance_result_free. Nothing prints. Thread safety: no
 * shared state. */
#ifndef FINETUNE_BALANCE_H
#define FINETUNE_BALANCE_H
#include <stdint.h>

typedef enum ft_balance_method {
    FT_BAL_OVER = 0, FT_BAL_UNDER, FT_BAL_SMOTE, FT_BAL_BORDERLINE1, FT_BAL_BORDERLINE2, FT_BAL_ADASYN, FT_BAL_TOMEK
} ft_balance_method;
/* "over", "under", "smote", "borderline-smote" (= -1), "borderline-smote-1", "borderline-smote-2", "adasyn", "tomek" */
int ft_balance_method_from_name(const char *name, ft_balance_method *out);
const char *ft_balance_method_name(ft_balance_method m);
/* 1 when the method needs feature vectors (all but over and under) */
int ft_balance_needs_features(ft_balance_method m);

typedef struct ft_balance_draws {
    uint64_t (*below)(void *ctx, uint64_t n);   /* uniform integer in [0, n) */
    double   (*uniform)(void *ctx);             /* uniform double in [0, 1) */
    void     *ctx;
} ft_balance_draws;

typedef struct ft_balance_options {
    ft_balance_method method;
    double   ratio;         /* R above (1.0) */
    int      k_neighbors;   /* 5 */
    int      m_neighbors;   /* 10 (borderline) */
    uint64_t seed;
    const ft_balance_draws *draws;  /* NULL: the seeded stream */
} ft_balance_options;
ft_balance_options ft_balance_default_options(void);

/* new[K] (over-sampling methods) or keep[K] (under) from counts[K]; tomek: FT_ERR_INVALID. */
int ft_balance_targets(int64_t *target, const int64_t *counts, int K, ft_balance_method m, double ratio);

typedef struct ft_balance_result {
    int64_t  n;           /* rows out */
    int      C;           /* features per row (0 when X was NULL) */
    float   *X;           /* [n, C] or NULL */
    int     *y;           /* [n] */
    int64_t *source;      /* [n] input row, -1 for a synthetic row */
    int64_t *base, *neighbor;   /* [n] synthetic rows: the two input rows; -1 otherwise */
    /* what the method decided, for inspection and tests (input row indices, ascending) */
    int64_t *danger;  int64_t n_danger;   /* borderline: the danger rows of the resampled classes */
    int64_t *links;   int64_t n_links;    /* tomek: rows in a Tomek link (both members) */
    int64_t *per_row;                     /* adasyn: [n_in] new rows generated from each input row; else NULL */
} ft_balance_result;

/* X [n, C] may be NULL for over / under (C ignored). K: labels are 0..K-1. A class with fewer than
 * k_neighbors + 1 rows to sample from -> FT_ERR_INVALID naming it; ADASYN with no neighbour of another
 * class anywhere -> FT_ERR_INVALID (imblearn raises there too). */
int  ft_balance(ft_balance_result *out, const float *X, const int *y, int64_t n, int C, int K, const ft_balance_options *o);
void ft_balance_result_free(ft_balance_result *r);

/* The k nearest rows of X [n, C] to each query Q [nq, C]: idx [nq, k], nearest first (a query that is a row
 * of X finds itself first). k > n -> FT_ERR_INVALID. */
int ft_knn(int64_t *idx, const float *X, int64_t n, int C, const float *Q, int64_t nq, int k);
#endif
