/* balance_knn.c — exact k nearest neighbours by euclidean distance (brute force, double accumulation), the
 * neighbour search of the SMOTE family and Tomek links (balance.h). */
#include "finetune/balance.h"
#include "finetune/status.h"

#include <stdlib.h>

int ft_knn(int64_t *idx, const float *X, int64_t n, int C, const float *Q, int64_t nq, int k) {
    if (k <= 0 || k > n || C <= 0) return ft_error(FT_ERR_INVALID, "nearest neighbours: k = %d of %lld rows, %d features", k, (long long)n, C);
    int bad = 0;
    #pragma omp parallel
    {
        double *best = malloc((size_t)k * sizeof *best);   /* [k] distances of idx row q, ascending */
        if (!best) {
            #pragma omp atomic write
            bad = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t q = 0; q < nq; q++) {
            if (!best) continue;
            const float *a = Q + q * C;
            int64_t *out = idx + q * k;
            int have = 0;
            for (int64_t j = 0; j < n; j++) {
                const float *b = X + j * C;
                double d = 0;
                for (int c = 0; c < C; c++) {
                    double t = (double)a[c] - (double)b[c];
                    d += t * t;
                }
                if (have == k && d >= best[k - 1]) continue;   /* ties keep the lower index */
                int p = have < k ? have++ : k - 1;
                while (p > 0 && best[p - 1] > d) { best[p] = best[p - 1]; out[p] = out[p - 1]; p--; }
                best[p] = d;
                out[p] = j;
            }
        }
        free(best);
    }
    return bad ? ft_error(FT_ERR_NOMEM, "nearest neighbours: out of memory") : FT_OK;
}
