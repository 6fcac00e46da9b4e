/* ref/reduce.c — scalar reference reductions: the loss sum and the sum of squares (gradient norm). */
#include "finetune/ops.h"

/* sum of losses[0..N) in double, in index order */
double ft_ref_loss_reduce(void *ctx, const float *losses, size_t N) {
    double s = 0;
    for (size_t i = 0; i < N; i++) s += losses[i];
    return s;
}

/* sum of x^2 in double over FT_SUMSQ_CHUNKS chunks of ceil(n / chunks), chunk sums added in order */
double ft_ref_sumsq(void *ctx, const float *x, size_t n) {
    size_t per = (n + FT_SUMSQ_CHUNKS - 1) / FT_SUMSQ_CHUNKS;
    double total = 0;
    for (size_t c = 0; c < FT_SUMSQ_CHUNKS; c++) {
        size_t a = c * per, b = a + per < n ? a + per : n;
        double s = 0;
        for (size_t k = a; k < b; k++) s += (double)x[k] * x[k];
        total += s;
    }
    return total;
}
