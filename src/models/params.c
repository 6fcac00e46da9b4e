/* params.c — the parameter table both model families share: planning a parameter into the weights arena
 * (ft__param_plan) and the gradient buffers of a parameter array (ft_params_zero_grad). */
#include "model_internal.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void ft__param_plan(ft_param *p, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->t.dtype = FT_F32;
    p->t.ndim = cols > 0 ? 2 : 1;
    p->t.shape[0] = rows;
    if (cols > 0) p->t.shape[1] = cols;
    p->decay = decay;
    p->trainable = 1;
    p->t.data = (void *)(uintptr_t)plan->used;   /* an offset until the arena exists */
    ft_arena_alloc(plan, ft_tensor_nbytes(&p->t));
}

int ft_params_zero_grad(ft_param *params, int n, ft_arena *grads, int *ready, const ft_backend *be) {
    if (!*ready) {
        ft_arena plan;
        ft_arena_plan(&plan);
        for (int i = 0; i < n; i++)
            if (params[i].trainable) ft_arena_alloc(&plan, ft_tensor_nbytes(&params[i].t));
        FT_TRY(ft_arena_init_on(grads, plan.used, be));
        for (int i = 0; i < n; i++)
            params[i].grad = params[i].trainable ? ft_arena_alloc(grads, ft_tensor_nbytes(&params[i].t)) : NULL;
        *ready = 1;
        return FT_OK;
    }
    memset(grads->base, 0, grads->used);
    return FT_OK;
}
