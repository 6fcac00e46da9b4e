/* ref/embedding.c — scalar reference token + position embedding (ground truth for tests). */
#include "finetune/ops.h"

/* out[N,C] = wte[ids[n]] + (wpe ? wpe[pos[n]] : 0); pos NULL means pos[n] = n % T */
void ft_ref_embedding_forward(void *ctx, float *out, const int *ids, const int *pos, const float *wte, const float *wpe,
                              int N, int T, int C) {
    for (int n = 0; n < N; n++) {
        int p = pos ? pos[n] : n % T;
        const float *te = wte + (size_t)ids[n] * C;
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + (wpe ? wpe[(size_t)p * C + c] : 0.0f);
    }
}

/* dwte[V,C] += dout rows at ids; dwpe[maxT,C] += dout rows at positions (either may be NULL) */
void ft_ref_embedding_backward(void *ctx, float *dwte, float *dwpe, const float *dout, const int *ids, const int *pos,
                               int N, int T, int C) {
    for (int n = 0; n < N; n++) {
        int p = pos ? pos[n] : n % T;
        const float *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            if (dwte) dwte[(size_t)ids[n] * C + c] += d[c];
            if (dwpe) dwpe[(size_t)p * C + c] += d[c];
        }
    }
}
