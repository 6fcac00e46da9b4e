/* ref/loss.c — scalar reference softmax cross-entropy with label smoothing (torch semantics),
 * accumulated in double. */
#include "finetune/ops.h"

#include <math.h>
#include <string.h>

/* losses[N]; dlogits[N,V] = scale * (softmax - smoothed one-hot) (may alias logits, may be NULL) */
void ft_ref_crossentropy_forward_backward(void *ctx, float *losses, float *dlogits, const float *logits, const int *targets,
                                          int N, int V, float scale, float label_smoothing, int ignore_index) {
    double eps = label_smoothing;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        int tgt = targets[n];
        if (tgt == ignore_index || tgt < 0 || tgt >= V) {
            losses[n] = 0.0f;
            if (dlogits) memset(dlogits + (size_t)n * V, 0, (size_t)V * sizeof(float));
            continue;
        }
        double m = -INFINITY, sum = 0, sx = 0;
        for (int v = 0; v < V; v++) {
            if (x[v] > m) m = x[v];
            sx += x[v];
        }
        for (int v = 0; v < V; v++) sum += exp(x[v] - m);
        double lse = m + log(sum);
        losses[n] = (float)((1.0 - eps) * (lse - x[tgt]) + eps * (lse - sx / V));
        if (!dlogits) continue;
        float *d = dlogits + (size_t)n * V;
        for (int v = 0; v < V; v++) {
            double p = exp((double)x[v] - lse); /* read before the (possibly aliased) write */
            d[v] = (float)(scale * (p - (v == tgt ? 1.0 - eps : 0.0) - eps / V));
        }
    }
}
