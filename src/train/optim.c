/* optim.c — AdamW / Adam / SGD(momentum, Nesterov) / Adagrad / RMSprop: the state, the per-step
 * hyperparameters, and one backend update kernel per parameter (ops.h, FT_UPDATE_OPS_DECLARE). */
#include "finetune/optim.h"
#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ft_optimizer {
    const ft_backend *be; /* runs the update kernels */
    ft_param *params;   /* the parameters updated (a model's array) */
    int n_params;
    ft_optim_params p;
    int64_t t;
    ft_arena state;
    float **m1, **m2;   /* per param: first / second moment (or momentum buffer), NULL if frozen */
    ft_arena packs;     /* the weight packs of ft_optim_set_prepack (base NULL: none) */
};

ft_optim_params ft_optim_default_params(void) {
    ft_optim_params p = {.kind = FT_OPT_ADAMW, .lr = 5e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = 0.0f, .momentum = 0.0f, .nesterov = 0, .decay_all = 0};
    return p;
}

int ft_optim_create(ft_optimizer **out, ft_model *m, const ft_optim_params *p) {
    int np = ft_model_num_params(m);
    return ft_optim_create_params_on(out, np ? ft_model_param(m, 0) : NULL, np, p, ft_model_backend(m));
}

int ft_optim_create_params(ft_optimizer **out, ft_param *params, int np, const ft_optim_params *p) {
    return ft_optim_create_params_on(out, params, np, p, NULL);
}

int ft_optim_create_params_on(ft_optimizer **out, ft_param *params, int np, const ft_optim_params *p,
                              const ft_backend *be) {
    *out = NULL;
    if (p->lr < 0 || p->beta1 < 0 || p->beta1 >= 1 || p->beta2 < 0 || p->beta2 >= 1 || p->eps < 0 || p->weight_decay < 0)
        return ft_error(FT_ERR_INVALID, "optimizer: invalid hyperparameters (lr %g, betas %g/%g, eps %g, weight decay %g)",
                        p->lr, p->beta1, p->beta2, p->eps, p->weight_decay);
    ft_optimizer *o = calloc(1, sizeof *o);
    if (o) { o->m1 = calloc((size_t)np, sizeof *o->m1); o->m2 = calloc((size_t)np, sizeof *o->m2); }
    if (!o || !o->m1 || !o->m2) { ft_optim_free(o); return ft_error(FT_ERR_NOMEM, "optimizer: out of memory"); }
    o->be = be ? be : ft_backend_cpu();
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
    int rc = ft_arena_init_on(&o->state, plan.used, o->be); /* zero-filled moments where the kernels run */
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
    ft_optim_set_prepack(o, 0);
    ft_arena_free(&o->state);
    free(o->m1);
    free(o->m2);
    free(o);
}

int64_t ft_optim_steps(const ft_optimizer *o) { return o->t; }
void ft_optim_set_steps(ft_optimizer *o, int64_t t) { o->t = t; }
void *ft_optim_state(ft_optimizer *o, size_t *nbytes) { *nbytes = o->state.used; return o->state.base; }

int ft_optim_step(ft_optimizer *o, float lr) {
    const ft_optim_params *p = &o->p;
    o->t++;
    int np = o->n_params;
    /* Bias corrections in double, as torch computes them (Python floats): in f32, 1 - beta2^t loses
     * ~1e-5 of its value to the rounding of beta2^t near 1 (t = 2: 0.999^2), which showed as a 3e-6
     * relative error in the first Adam updates. */
    float bc1 = (float)(1.0 - pow((double)p->beta1, (double)o->t));
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)p->beta2, (double)o->t));
    const ft_backend *be = o->be;
    ft_update_params h = {.lr = lr, .beta1 = p->beta1, .beta2 = p->beta2, .eps = p->eps, .momentum = p->momentum,
                          .bc1 = bc1, .bc2_sqrt = bc2_sqrt, .nesterov = p->nesterov, .first_step = o->t == 1};
    ft_params_settle_grads(o->params, np);   /* a zero_grad with no backward since: those gradients are zero (model.h) */
    for (int i = 0; i < np; i++) {
        ft_param *pp = &o->params[i];
        if (!pp->trainable || !pp->grad) continue;
        float *w = pp->t.data;
        const float *g = pp->grad;
        size_t n = (size_t)ft_tensor_numel(&pp->t);
        h.wd = (p->decay_all || pp->decay) ? p->weight_decay : 0.0f;
        if (pp->pack && p->kind == FT_OPT_ADAMW) { /* the update and the weight's pack in one pass */
            be->adamw_update_wpack(be->ctx, w, o->m1[i], o->m2[i], g, n, &h, pp->pack);
            continue;
        }
        if (pp->pack) be->wpack_invalidate(be->ctx, pp->pack);
        switch (p->kind) {
        case FT_OPT_ADAMW: be->adamw_update(be->ctx, w, o->m1[i], o->m2[i], g, n, &h); break;
        case FT_OPT_ADAM: be->adam_update(be->ctx, w, o->m1[i], o->m2[i], g, n, &h); break; /* L2 folded into g */
        case FT_OPT_ADAGRAD: be->adagrad_update(be->ctx, w, o->m1[i], g, n, &h); break;
        case FT_OPT_RMSPROP: be->rmsprop_update(be->ctx, w, o->m1[i], o->m2[i], g, n, &h); break; /* m2: momentum buf or NULL */
        case FT_OPT_SGD: be->sgd_update(be->ctx, w, o->m1[i], g, n, &h); break;                    /* m1: momentum buf or NULL */
        }
    }
    return FT_OK;
}

/* ------------------------------------------------------------ pre-packed weights */

static int packable(const ft_param *p, const ft_backend *be) {
    return be && be->wpack_bytes && p->linear && p->trainable && !p->qdesc && p->t.dtype == FT_F32 && p->t.ndim == 2;
}

size_t ft_optim_prepack_bytes(const ft_param *params, int n, const ft_backend *be) {
    ft_arena plan;
    ft_arena_plan(&plan);
    for (int i = 0; i < n; i++)
        if (packable(&params[i], be))
            ft_arena_alloc(&plan, be->wpack_bytes(be->ctx, (int)params[i].t.shape[0], (int)params[i].t.shape[1]));
    return plan.used;
}

int ft_optim_set_prepack(ft_optimizer *o, int on) {
    const ft_backend *be = o->be;
    if (!on) {
        if (!o->packs.base) return FT_OK;
        for (int i = 0; i < o->n_params; i++) o->params[i].pack = NULL;
        ft_arena_free(&o->packs);
        return FT_OK;
    }
    if (o->packs.base) return FT_OK;
    size_t bytes = ft_optim_prepack_bytes(o->params, o->n_params, be);
    if (!bytes) return FT_OK;
    FT_TRY(ft_arena_init_on(&o->packs, bytes, be));
    for (int i = 0; i < o->n_params; i++) {
        ft_param *pp = &o->params[i];
        if (!packable(pp, be)) continue;
        int OC = (int)pp->t.shape[0], C = (int)pp->t.shape[1];
        pp->pack = ft_arena_alloc(&o->packs, be->wpack_bytes(be->ctx, OC, C));
        be->wpack_init(be->ctx, pp->pack, OC, C);
    }
    return FT_OK;
}

void ft_optim_weights_changed(ft_optimizer *o) {
    for (int i = 0; i < o->n_params; i++)
        if (o->params[i].pack) o->be->wpack_invalidate(o->be->ctx, o->params[i].pack);
}
