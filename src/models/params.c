/* params.c — the parameter table both model families share: planning a parameter into the weights arena
 * (ft__param_plan), the gradient buffers of a parameter array (ft_params_zero_grad), and freezing by
 * patterns (ft__params_apply_patterns: the family only says which parameters one pattern names). */
#include "model_internal.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ------------------------------------------------------------ freezing by patterns */

int ft__pattern_layers(const char *pat, int *a, int *b) {
    if (strncmp(pat, "layers:", 7)) return 0;
    char extra;
    int n = sscanf(pat + 7, "%d-%d%c", a, b, &extra);
    if (n == 1) *b = *a;
    return n < 1 || n > 2 || *a < 0 || *b < *a ? -1 : 1;
}

int ft__params_apply_patterns(ft_param *params, int n, const char *patterns, int freeze_matching,
                              int (*match)(const void *model, int i, const char *pat), const void *model, const char *kinds) {
    if (!patterns) return ft_error(FT_ERR_INVALID, "no freeze patterns");
    char buf[1024];
    if (strlen(patterns) >= sizeof buf) return ft_error(FT_ERR_INVALID, "freeze patterns longer than %zu bytes", sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", patterns);
    int *hit = calloc((size_t)(n > 0 ? n : 1), sizeof *hit);
    if (!hit) return ft_error(FT_ERR_NOMEM, "out of memory");
    char *save = NULL;
    int total = 0, rc = FT_OK;
    for (char *p = strtok_r(buf, ",", &save); p && rc == FT_OK; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ') p[--len] = 0;
        int k = 0;
        for (int i = 0; i < n; i++) {
            int mt = match(model, i, p);
            if (mt < 0) { rc = ft_error(FT_ERR_INVALID, "bad layer range '%s' (use layers:A-B or layers:A, 0-based)", p); break; }
            if (mt) { hit[i] = 1; k++; }
        }
        if (rc == FT_OK && k == 0)
            rc = ft_error(FT_ERR_NOT_FOUND, "pattern '%s' matches no parameter (use %s, layers:A-B, or a glob on HF names)", p, kinds);
        total += k;
    }
    if (rc == FT_OK)
        for (int i = 0; i < n; i++)
            if (freeze_matching ? hit[i] : !hit[i]) params[i].trainable = 0;
    free(hit);
    return rc < 0 ? rc : total;
}
