/* cpu/reduce.c — the loss sum and the sum of squares, with the reference's summation order (so the
 * same bits as ft_ref_*, for any thread count). */
#include "finetune/ops.h"

/* A batch has N = B*T <= a few 10^4 losses: one core adds them in order faster than threads start,
 * and a fixed order is what keeps the reported loss identical run to run. */
double ft_cpu_loss_reduce(void *ctx, const float *losses, size_t N) {
    double s = 0;
    for (size_t i = 0; i < N; i++) s += losses[i];
    return s;
}

/* The chunks (a function of n only) run in parallel; each is summed in index order and the chunk sums
 * are added in chunk order, as in the reference. */
double ft_cpu_sumsq(void *ctx, const float *x, size_t n) {
    size_t per = (n + FT_SUMSQ_CHUNKS - 1) / FT_SUMSQ_CHUNKS;
    double part[FT_SUMSQ_CHUNKS];
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < FT_SUMSQ_CHUNKS; c++) {
        size_t a = (size_t)c * per, b = a + per < n ? a + per : n;
        double s = 0;
        for (size_t k = a; k < b; k++) s += (double)x[k] * x[k];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < FT_SUMSQ_CHUNKS; c++) total += part[c];
    return total;
}
