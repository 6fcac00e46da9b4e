/* cpu/optim_update.c — optimizer updates on all cores. Element-wise: each element's arithmetic is the
 * reference's expression for expression (the build does not contract to FMA: -std=c11 implies
 * -ffp-contract=off), so vectorising and splitting across threads leave the bits unchanged. The
 * hyperparameters are copied to locals first so the compiler knows they do not alias the arrays. */
#include "finetune/ops.h"

#include <math.h>

#define PAR_MIN 16384 /* below this, thread start-up costs more than the update */

void ft_cpu_adamw_update(void *ctx, float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                         const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, b1 = h->beta1, b2 = h->beta2, eps = h->eps, bc2 = h->bc2_sqrt;
    const float step = lr / h->bc1;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * (1.0f - lr * wd);
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

void ft_cpu_adam_update(void *ctx, float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                        const ft_update_params *h) {
    const float wd = h->wd, b1 = h->beta1, b2 = h->beta2, eps = h->eps, bc2 = h->bc2_sqrt;
    const float step = h->lr / h->bc1;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

void ft_cpu_sgd_update(void *ctx, float *restrict w, float *restrict buf, const float *restrict g, size_t n, const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, mu = h->momentum;
    if (!buf) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
        return;
    }
    const int first = h->first_step, nesterov = h->nesterov;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float bi = first ? gi : mu * buf[i] + gi;
        buf[i] = bi;
        gi = nesterov ? gi + mu * bi : bi;
        w[i] -= lr * gi;
    }
}

void ft_cpu_adagrad_update(void *ctx, float *restrict w, float *restrict acc, const float *restrict g, size_t n,
                           const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, eps = h->eps;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float ai = acc[i] + gi * gi;
        acc[i] = ai;
        w[i] -= lr * gi / (sqrtf(ai) + eps);
    }
}

void ft_cpu_rmsprop_update(void *ctx, float *restrict w, float *restrict v, float *restrict buf, const float *restrict g, size_t n,
                           const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, a = h->beta2, eps = h->eps, mu = h->momentum;
    if (!buf) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float vi = a * v[i] + (1.0f - a) * gi * gi;
            v[i] = vi;
            w[i] -= lr * (gi / (sqrtf(vi) + eps));
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + (1.0f - a) * gi * gi;
        v[i] = vi;
        float bi = mu * buf[i] + gi / (sqrtf(vi) + eps);
        buf[i] = bi;
        w[i] -= lr * bi;
    }
}
