/* cpu/embedding.c — token + position embedding. The backward scatters rows into dwte/dwpe; repeated
 * ids make rows collide, so it is parallel over column blocks (each thread owns a column slice of
 * every row and walks n in order): race-free and bit-identical for any thread count. */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <string.h>

#define EMB_CB 64 /* columns per parallel block in the backward */

/* out[N,C] = wte[ids[n]] + (wpe ? wpe[pos[n]] : 0); pos NULL means pos[n] = n % T */
void ft_cpu_embedding_forward(void *ctx, float *out, const int *ids, const int *pos, const float *wte, const float *wpe,
                              int N, int T, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *te = wte + (size_t)ids[n] * C;
        float *o = out + (size_t)n * C;
        if (wpe) {
            const float *pe = wpe + (size_t)(pos ? pos[n] : n % T) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
        } else {
            memcpy(o, te, (size_t)C * sizeof(float));
        }
    }
}

/* dwte[V,C] += .., dwpe[maxT,C] += .. (either may be NULL) */
void ft_cpu_embedding_backward(void *ctx, float *dwte, float *dwpe, const float *dout, const int *ids, const int *pos,
                               int N, int T, int C) {
    int nb = (C + EMB_CB - 1) / EMB_CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= FT_PAR_MIN)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * EMB_CB, c1 = c0 + EMB_CB < C ? c0 + EMB_CB : C;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C;
            if (dwte) {
                float *g = dwte + (size_t)ids[n] * C;
#pragma omp simd
                for (int c = c0; c < c1; c++) g[c] += d[c];
            }
            if (dwpe) {
                float *g = dwpe + (size_t)(pos ? pos[n] : n % T) * C;
#pragma omp simd
                for (int c = c0; c < c1; c++) g[c] += d[c];
            }
        }
    }
}
