/* ref/optim_update.c — scalar reference optimizer updates (ops.h). Float arithmetic in the order torch.optim
 * uses; the CPU versions evaluate the same expressions, so both give the same bits. */
#include "finetune/ops.h"

#include <math.h>

void ft_ref_adamw_update(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h) {
    float step = h->lr / h->bc1;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * (1.0f - h->lr * h->wd);
        float mi = h->beta1 * m[i] + (1.0f - h->beta1) * g[i];
        float vi = h->beta2 * v[i] + (1.0f - h->beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / h->bc2_sqrt + h->eps);
    }
}

void ft_ref_adam_update(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h) {
    float step = h->lr / h->bc1;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + h->wd * w[i];
        m[i] = h->beta1 * m[i] + (1.0f - h->beta1) * gi;
        v[i] = h->beta2 * v[i] + (1.0f - h->beta2) * gi * gi;
        w[i] -= step * m[i] / (sqrtf(v[i]) / h->bc2_sqrt + h->eps);
    }
}

void ft_ref_sgd_update(void *ctx, float *w, float *buf, const float *g, size_t n, const ft_update_params *h) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + h->wd * w[i];
        if (buf) {
            buf[i] = h->first_step ? gi : h->momentum * buf[i] + gi;
            gi = h->nesterov ? gi + h->momentum * buf[i] : buf[i];
        }
        w[i] -= h->lr * gi;
    }
}

void ft_ref_adagrad_update(void *ctx, float *w, float *acc, const float *g, size_t n, const ft_update_params *h) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + h->wd * w[i];
        acc[i] += gi * gi;
        w[i] -= h->lr * gi / (sqrtf(acc[i]) + h->eps);
    }
}

void ft_ref_rmsprop_update(void *ctx, float *w, float *v, float *buf, const float *g, size_t n, const ft_update_params *h) {
    float a = h->beta2;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + h->wd * w[i];
        v[i] = a * v[i] + (1.0f - a) * gi * gi;
        float u = gi / (sqrtf(v[i]) + h->eps);
        if (buf) {
            buf[i] = h->momentum * buf[i] + u;
            u = buf[i];
        }
        w[i] -= h->lr * u;
    }
}
