/* l2sp.c — the L2-SP penalty towards the starting weights (continual.h): Ω(θ) = λ/2 Σ‖θ − θ0‖², gradient
 * λ(θ − θ0) added exactly. */
#include "finetune/continual.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static int snapshotted(const ft_param *p) { return p->trainable && p->t.dtype == FT_F32 && !p->qdesc && p->t.data; }

int ft_l2sp_init(ft_l2sp *s, const ft_param *params, int n, float lambda) {
    memset(s, 0, sizeof *s);
    if (!(lambda >= 0)) return ft_error(FT_ERR_INVALID, "L2-SP: lambda %g must be >= 0", (double)lambda);
    size_t total = 0;
    for (int i = 0; i < n; i++) if (snapshotted(&params[i])) total += (size_t)ft_tensor_numel(&params[i].t);
    s->theta0 = calloc((size_t)(n > 0 ? n : 1), sizeof *s->theta0);
    s->store = malloc(sizeof(float) * (total ? total : 1));
    if (!s->theta0 || !s->store) { ft_l2sp_free(s); return ft_error(FT_ERR_NOMEM, "L2-SP: out of memory (%zu floats)", total); }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (!snapshotted(&params[i])) continue;
        size_t k = (size_t)ft_tensor_numel(&params[i].t);
        s->theta0[i] = s->store + at;
        memcpy(s->theta0[i], params[i].t.data, sizeof(float) * k);
        at += k;
    }
    s->n = n;
    s->lambda = lambda;
    return FT_OK;
}

double ft_l2sp_apply(const ft_l2sp *s, ft_param *params, int n, int add_grad) {
    double omega = 0;
    int m = n < s->n ? n : s->n;
    for (int i = 0; i < m; i++) {
        const float *t0 = s->theta0[i];
        if (!t0) continue;
        const float *w = params[i].t.data;
        float *g = add_grad ? params[i].grad : NULL;
        int64_t k = ft_tensor_numel(&params[i].t);
        double sq = 0;
        for (int64_t j = 0; j < k; j++) {
            float d = w[j] - t0[j];
            sq += (double)d * d;
            if (g) g[j] += s->lambda * d;
        }
        omega += sq;
    }
    return 0.5 * s->lambda * omega;
}

void ft_l2sp_free(ft_l2sp *s) {
    free(s->theta0);
    free(s->store);
    memset(s, 0, sizeof *s);
}
