/* optim.c — AdamW / Adam / SGD(momentum, Nesterov) updates, element-wise and deterministic. */
#include "finetune/optim.h"
#include "finetune/arena.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ft_optimizer {
    ft_param *params;   /* the parameters updated (a model's array) */
    int n_params;
    ft_optim_params p;
    int64_t t;
    ft_arena state;
    float **m1, **m2;   /* per param: first / second moment (or momentum buffer), NULL if frozen */
};

ft_optim_params ft_optim_default_params(void) {
    ft_optim_params p = {.kind = FT_OPT_ADAMW, .lr = 5e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = 0.0f, .momentum = 0.0f, .nesterov = 0, .decay_all = 0};
    return p;
}

int ft_optim_create(ft_optimizer **out, ft_model *m, const ft_optim_params *p) {
    int np = ft_model_num_params(m);
    return ft_optim_create_params(out, np ? ft_model_param(m, 0) : NULL, np, p);
}

int ft_optim_create_params(ft_optimizer **out, ft_param *params, int np, const ft_optim_params *p) {
    *out = NULL;
    if (p->lr < 0 || p->beta1 < 0 || p->beta1 >= 1 || p->beta2 < 0 || p->beta2 >= 1 || p->eps < 0 || p->weight_decay < 0)
        return ft_error(FT_ERR_INVALID, "optimizer: invalid hyperparameters (lr %g, betas %g/%g, eps %g, weight decay %g)",
                        p->lr, p->beta1, p->beta2, p->eps, p->weight_decay);
    ft_optimizer *o = calloc(1, sizeof *o);
    if (o) { o->m1 = calloc((size_t)np, sizeof *o->m1); o->m2 = calloc((size_t)np, sizeof *o->m2); }
    if (!o || !o->m1 || !o->m2) { ft_optim_free(o); return ft_error(FT_ERR_NOMEM, "optimizer: out of memory"); }
    o->params = params;
    o->n_params = np;
    o->p = *p;
    int moments = p->kind == FT_OPT_SGD ? (p->momentum > 0 ? 1 : 0)
                : p->kind == FT_OPT_ADAGRAD ? 1
                : p->kind == FT_OPT_RMSPROP ? (p->momentum > 0 ? 2 : 1) : 2;
    ft_arena plan;
    ft_arena_plan(&plan);
    for (int i = 0; i < np; i++) {
        ft_param *pp = &params[i];
        if (pp->trainable) for (int k = 0; k < moments; k++) ft_arena_alloc(&plan, ft_tensor_nbytes(&pp->t));
    }
    int rc = ft_arena_init(&o->state, plan.used);
    if (rc < 0) { ft_optim_free(o); return rc; }
    for (int i = 0; i < np; i++) {
        ft_param *pp = &params[i];
        if (!pp->trainable) continue;
        if (moments >= 1) o->m1[i] = ft_arena_alloc(&o->state, ft_tensor_nbytes(&pp->t));
        if (moments >= 2) o->m2[i] = ft_arena_alloc(&o->state, ft_tensor_nbytes(&pp->t));
    }
    *out = o;
    return FT_OK;
}

void ft_optim_free(ft_optimizer *o) {
    if (!o) return;
    ft_arena_free(&o->state);
    free(o->m1);
    free(o->m2);
    free(o);
}

int64_t ft_optim_steps(const ft_optimizer *o) { return o->t; }
void ft_optim_set_steps(ft_optimizer *o, int64_t t) { o->t = t; }
void *ft_optim_state(ft_optimizer *o, size_t *nbytes) { *nbytes = o->state.used; return o->state.base; }

static void adam_update(float *w, const float *g, float *m, float *v, int64_t n, float lr, float wd,
                        float b1, float b2, float eps, float bc1, float bc2_sqrt) {
    float step = lr / bc1;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float wi = w[i] * (1.0f - lr * wd);
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

int ft_optim_step(ft_optimizer *o, float lr) {
    const ft_optim_params *p = &o->p;
    o->t++;
    int np = o->n_params;
    /* Bias corrections in double, as torch computes them (Python floats): in f32, 1 - beta2^t loses
     * ~1e-5 of its value to the rounding of beta2^t near 1 (t = 2: 0.999^2), which showed as a 3e-6
     * relative error in the first Adam updates. */
    float bc1 = (float)(1.0 - pow((double)p->beta1, (double)o->t));
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)p->beta2, (double)o->t));
    for (int i = 0; i < np; i++) {
        ft_param *pp = &o->params[i];
        if (!pp->trainable || !pp->grad) continue;
        float *w = pp->t.data;
        const float *g = pp->grad;
        int64_t n = ft_tensor_numel(&pp->t);
        float wd = (p->decay_all || pp->decay) ? p->weight_decay : 0.0f;
        switch (p->kind) {
        case FT_OPT_ADAMW:
            adam_update(w, g, o->m1[i], o->m2[i], n, lr, wd, p->beta1, p->beta2, p->eps, bc1, bc2_sqrt);
            break;
        case FT_OPT_ADAM: { /* L2 penalty folded into the gradient (torch.optim.Adam weight_decay) */
            float step = lr / bc1, *mm = o->m1[i], *vv = o->m2[i];
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) {
                float gk = g[k] + wd * w[k];
                mm[k] = p->beta1 * mm[k] + (1.0f - p->beta1) * gk;
                vv[k] = p->beta2 * vv[k] + (1.0f - p->beta2) * gk * gk;
                w[k] -= step * mm[k] / (sqrtf(vv[k]) / bc2_sqrt + p->eps);
            }
            break;
        }
        case FT_OPT_ADAGRAD: { /* sum += g^2; w -= lr * g / (sqrt(sum) + eps) */
            float *acc = o->m1[i];
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) {
                float gk = g[k] + wd * w[k];
                acc[k] += gk * gk;
                w[k] -= lr * gk / (sqrtf(acc[k]) + p->eps);
            }
            break;
        }
        case FT_OPT_RMSPROP: { /* v = a v + (1-a) g^2; buf = mu buf + g / (sqrt(v) + eps); w -= lr buf */
            float *v = o->m1[i], *buf = o->m2[i], a = p->beta2;
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) {
                float gk = g[k] + wd * w[k];
                v[k] = a * v[k] + (1.0f - a) * gk * gk;
                float u = gk / (sqrtf(v[k]) + p->eps);
                if (buf) { buf[k] = p->momentum * buf[k] + u; u = buf[k]; }
                w[k] -= lr * u;
            }
            break;
        }
        case FT_OPT_SGD: { /* torch.optim.SGD: buf = mu*buf + g (first step buf = g); nesterov: g + mu*buf */
            float *buf = o->m1[i];
            #pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) {
                float gk = g[k] + wd * w[k];
                if (buf) {
                    buf[k] = o->t == 1 ? gk : p->momentum * buf[k] + gk;
                    gk = p->nesterov ? gk + p->momentum * buf[k] : buf[k];
                }
                w[k] -= lr * gk;
            }
            break;
        }
        }
    }
    return FT_OK;
}
