/* explain_shap.c — Shapley values of the explainer's features (explain.h).
 *
 * Exact: v(S) for all 2^n coalitions S (bit i of the index = feature i present), then
 *   phi_i = sum_{S not containing i} w(|S|) (v(S + i) - v(S)),   w(s) = s! (n - s - 1)! / n! = 1 / (n C(n-1, s)).
 * Sampled: random orders of the features, each followed by its reverse (antithetic pairs); along an order the
 * prefixes grow one feature at a time and each feature gets its marginal contribution v(prefix + i) - v(prefix);
 * phi_i is the mean over the orders. v(none) and v(all) are evaluated once and shared by every order. */
#include "infer/explain_internal.h"
#include "eval/eval_util.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static void fill_result(ft_shap_result *r, const double *phi, int n, double v_all, double v_none, int64_t evals, int exact, int perms) {
    if (!r) return;
    ft_ksum k = {0, 0};
    for (int i = 0; i < n; i++) ft_ksum_add(&k, phi[i]);
    r->f_input = v_all;
    r->f_masked = v_none;
    r->sum = ft_ksum_value(&k);
    r->gap = r->sum - (v_all - v_none);
    r->evaluations = evals;
    r->exact = exact;
    r->permutations = perms;
}

int ft_explain_shap_exact(ft_explainer *e, double *phi, ft_shap_result *r) {
    if (!e || !phi) return ft_error(FT_ERR_INVALID, "shap: no explainer or output");
    int n = e->n_features;
    if (n <= 0) return ft_error(FT_ERR_INVALID, "shap: no features");
    if (n > FT_SHAP_EXACT_MAX)
        return ft_error(FT_ERR_RANGE, "shap: %d features need 2^%d coalitions; exact values take %d at most (use the sampled estimator)", n,
                        n, FT_SHAP_EXACT_MAX);
    int64_t NS = (int64_t)1 << n;
    uint8_t *present = malloc((size_t)NS * n);
    double *v = malloc(sizeof(double) * (size_t)NS), *w = malloc(sizeof(double) * (size_t)n);
    if (!present || !v || !w) { free(present); free(v); free(w); return ft_error(FT_ERR_NOMEM, "shap: out of memory for 2^%d coalitions", n); }
    for (int64_t S = 0; S < NS; S++)
        for (int i = 0; i < n; i++) present[S * n + i] = (uint8_t)((S >> i) & 1);
    int rc = ft_explainer_values(e, present, NS, v);
    free(present);
    if (rc != FT_OK) { free(v); free(w); return rc; }
    /* w(s) = 1 / (n C(n-1, s)) */
    for (int s = 0; s < n; s++) {
        double c = 1;
        for (int j = 1; j <= s; j++) c = c * (n - 1 - s + j) / j;
        w[s] = 1.0 / (n * c);
    }
    for (int i = 0; i < n; i++) {
        ft_ksum k = {0, 0};
        int64_t bit = (int64_t)1 << i;
        for (int64_t S = 0; S < NS; S++) {
            if (S & bit) continue;
            ft_ksum_add(&k, w[__builtin_popcountll((unsigned long long)S)] * (v[S | bit] - v[S]));
        }
        phi[i] = ft_ksum_value(&k);
    }
    fill_result(r, phi, n, v[NS - 1], v[0], NS, 1, 0);
    free(v);
    free(w);
    return FT_OK;
}

int ft_explain_shap_sample(ft_explainer *e, int permutations, uint64_t seed, double *phi, ft_shap_result *r) {
    if (!e || !phi) return ft_error(FT_ERR_INVALID, "shap: no explainer or output");
    if (permutations <= 0) return ft_error(FT_ERR_INVALID, "shap: %d samples: the budget must be positive", permutations);
    int n = e->n_features;
    int P = permutations + (permutations & 1);    /* antithetic pairs */
    int inner = n - 1;                            /* prefixes of sizes 1..n-1 per order */
    int per_chunk = inner > 0 ? 4096 / inner : P;
    if (per_chunk < 2) per_chunk = 2;
    per_chunk += per_chunk & 1;
    uint8_t ends[2 * 64];
    double vend[2];
    int rc = FT_OK;
    if (n > 64) return ft_error(FT_ERR_RANGE, "shap: %d features; the sampled estimator takes 64 at most", n);
    memset(ends, 0, (size_t)n);
    memset(ends + n, 1, (size_t)n);
    FT_TRY(ft_explainer_values(e, ends, 2, vend));   /* v(none), v(all) */
    int *order = malloc(sizeof(int) * (size_t)per_chunk * n);
    uint8_t *present = malloc((size_t)per_chunk * (inner > 0 ? inner : 1) * n);
    double *v = malloc(sizeof(double) * (size_t)per_chunk * (inner > 0 ? inner : 1));
    ft_ksum *acc = calloc((size_t)n, sizeof(ft_ksum));
    if (!order || !present || !v || !acc) { rc = ft_error(FT_ERR_NOMEM, "shap: out of memory"); goto done; }
    ft_rng rng;
    ft_rng_seed(&rng, seed);
    int64_t evals = 2;
    for (int p0 = 0; p0 < P; p0 += per_chunk) {
        int np = P - p0 < per_chunk ? P - p0 : per_chunk;   /* even */
        for (int p = 0; p < np; p += 2) {
            int *o = order + (size_t)p * n, *rev = o + n;
            for (int i = 0; i < n; i++) o[i] = i;
            ft_rng_shuffle_int(&rng, o, n);
            for (int i = 0; i < n; i++) rev[i] = o[n - 1 - i];
        }
        if (inner > 0) {
            memset(present, 0, (size_t)np * inner * n);
            for (int p = 0; p < np; p++) {
                const int *o = order + (size_t)p * n;
                for (int k = 1; k <= inner; k++) {   /* prefix of size k: o[0..k) */
                    uint8_t *row = present + ((size_t)p * inner + k - 1) * n;
                    for (int j = 0; j < k; j++) row[o[j]] = 1;
                }
            }
            if ((rc = ft_explainer_values(e, present, (int64_t)np * inner, v)) != FT_OK) goto done;
            evals += (int64_t)np * inner;
        }
        for (int p = 0; p < np; p++) {
            const int *o = order + (size_t)p * n;
            double prev = vend[0];
            for (int k = 1; k <= n; k++) {
                double cur = k == n ? vend[1] : v[(size_t)p * inner + k - 1];
                ft_ksum_add(&acc[o[k - 1]], cur - prev);
                prev = cur;
            }
        }
    }
    for (int i = 0; i < n; i++) phi[i] = ft_ksum_value(&acc[i]) / P;
    fill_result(r, phi, n, vend[1], vend[0], evals, 0, P);
done:
    free(order);
    free(present);
    free(v);
    free(acc);
    return rc;
}
