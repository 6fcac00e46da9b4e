/* cpu/loss.c — softmax cross-entropy with label smoothing, rows in parallel.
 *
 * The logits are read from memory once: each row is walked in L1-sized chunks; a chunk's max is
 * taken (the chunk comes in from DRAM), then e = exp(x - M) is computed on the still-cached chunk
 * with M the running row max so far, summed, and stored to dlogits when wanted. When the running max
 * grows, the sum is rescaled by exp(M_old - M_new) (online softmax), and the max each chunk used is
 * remembered so that the final pass scales chunk c by exp(M_c - M) / sum. The final pass works on
 * dlogits (written a moment ago). Chunk sums are float SIMD sums, accumulated in double across chunks
 * in a fixed order: deterministic for any thread count. */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <math.h>
#include <string.h>

#define CE_CHUNK 2048     /* elements per chunk (8 KB, stays in L1) */
#define CE_MAXCHUNKS 256  /* chunk maxima kept on the stack; longer rows use longer chunks */

/* losses[N]; dlogits[N,V] = scale * (softmax - smoothed one-hot) (may alias logits, may be NULL) */
void ft_cpu_crossentropy_forward_backward(void *ctx, float *losses, float *dlogits, const float *logits, const int *targets,
                                          int N, int V, float scale, float label_smoothing, int ignore_index) {
    float eps = label_smoothing;
    int chunk = CE_CHUNK;
    if ((V + chunk - 1) / chunk > CE_MAXCHUNKS) chunk = ((V + CE_MAXCHUNKS - 1) / CE_MAXCHUNKS + 15) / 16 * 16;
#pragma omp parallel for schedule(static) if ((size_t)N * V >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *d = dlogits ? dlogits + (size_t)n * V : NULL;
        int tgt = targets[n];
        if (tgt == ignore_index || tgt < 0 || tgt >= V) {
            losses[n] = 0.0f;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float xt = x[tgt]; /* before any (aliased) write */
        float cmax[CE_MAXCHUNKS];
        float M = -INFINITY;
        double S = 0.0, sx = 0.0;
        for (int c = 0, v0 = 0; v0 < V; c++, v0 += chunk) {
            int vn = V - v0 < chunk ? V - v0 : chunk;
            const float *xc = x + v0;
            float cm = -INFINITY, cs = 0.0f;
            if (eps != 0.0f) {
#pragma omp simd reduction(max : cm) reduction(+ : cs)
                for (int v = 0; v < vn; v++) {
                    cm = xc[v] > cm ? xc[v] : cm;
                    cs += xc[v];
                }
                sx += cs;
            } else {
#pragma omp simd reduction(max : cm)
                for (int v = 0; v < vn; v++) cm = xc[v] > cm ? xc[v] : cm;
            }
            if (cm > M) {
                if (S > 0.0) S *= exp((double)M - (double)cm);
                M = cm;
            }
            float es = 0.0f;
            if (d) {
                float *dc = d + v0; /* may equal xc: element-wise read then write */
#pragma omp simd reduction(+ : es)
                for (int v = 0; v < vn; v++) {
                    float e = ft_vexpf(xc[v] - M);
                    dc[v] = e;
                    es += e;
                }
            } else {
#pragma omp simd reduction(+ : es)
                for (int v = 0; v < vn; v++) es += ft_vexpf(xc[v] - M);
            }
            S += es;
            cmax[c] = M;
        }
        double lse = (double)M + log(S);
        losses[n] = (float)((1.0 - eps) * (lse - xt) + eps * (lse - sx / V));
        if (!d) continue;
        /* dlogits = scale * (e * exp(M_c - M) / S - eps / V), and - scale * (1 - eps) at the target */
        float off = scale * eps / (float)V;
        for (int c = 0, v0 = 0; v0 < V; c++, v0 += chunk) {
            int vn = V - v0 < chunk ? V - v0 : chunk;
            float a = (float)((double)scale * exp((double)cmax[c] - (double)M) / S);
            float *dc = d + v0;
#pragma omp simd
            for (int v = 0; v < vn; v++) dc[v] = dc[v] * a - off;
        }
        d[tgt] -= scale * (1.0f - eps);
    }
}
