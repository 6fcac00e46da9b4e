/* sample.c — logits processing and sampling: repetition penalty, temperature, top-k, top-p. */
#include "finetune/generate.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ft_generate_params ft_generate_default_params(void) {
    ft_generate_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 128;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    p.seed = 0;
    p.stop_at_eos = 1;
    return p;
}

size_t ft_sample_work_size(int V) { return (size_t)V * (sizeof(float) + sizeof(int)); }

typedef struct { float *val; } sort_ctx;
static _Thread_local const float *g_sort_vals;
static int by_value_desc(const void *a, const void *b) {
    float x = g_sort_vals[*(const int *)a], y = g_sort_vals[*(const int *)b];
    if (x > y) return -1;
    if (x < y) return 1;
    return *(const int *)a - *(const int *)b; /* ties: lower id first (stable, deterministic) */
}

static int argmax(const float *x, int V) {
    int best = 0;
    for (int i = 1; i < V; i++) if (x[i] > x[best]) best = i;
    return best;
}

int ft_sample_logits(float *logits, int V, const int *history, int n_hist, const ft_generate_params *p,
                     ft_rng *rng, void *work) {
    if (p->repetition_penalty > 0 && p->repetition_penalty != 1.0f) {
        /* each distinct token once */
        float *pen = work;
        for (int i = 0; i < V; i++) pen[i] = 0;
        for (int i = 0; i < n_hist; i++)
            if (history[i] >= 0 && history[i] < V) pen[history[i]] = 1;
        for (int i = 0; i < V; i++)
            if (pen[i]) logits[i] = logits[i] > 0 ? logits[i] / p->repetition_penalty : logits[i] * p->repetition_penalty;
    }
    if (p->temperature <= 0.0f) return argmax(logits, V);
    for (int i = 0; i < V; i++) logits[i] /= p->temperature;
    /* softmax */
    float mx = logits[argmax(logits, V)];
    double sum = 0;
    float *prob = work;
    for (int i = 0; i < V; i++) { prob[i] = expf(logits[i] - mx); sum += prob[i]; }
    for (int i = 0; i < V; i++) prob[i] = (float)(prob[i] / sum);
    int *idx = (int *)((float *)work + V);
    int n = V;
    int need_sort = (p->top_k > 0 && p->top_k < V) || (p->top_p > 0.0f && p->top_p < 1.0f);
    for (int i = 0; i < V; i++) idx[i] = i;
    if (need_sort) {
        g_sort_vals = prob;
        qsort(idx, (size_t)V, sizeof *idx, by_value_desc);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
        if (p->top_p > 0.0f && p->top_p < 1.0f) {
            /* keep the smallest prefix whose mass reaches top_p (renormalised after top-k) */
            double mass = 0;
            for (int i = 0; i < n; i++) mass += prob[idx[i]];
            double cum = 0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += prob[idx[i]] / mass;
                if (cum >= p->top_p) { keep = i + 1; break; }
            }
            n = keep;
        }
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += prob[idx[i]];
    double r = ft_rng_uniform_f64(rng) * total, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += prob[idx[i]];
        if (r < acc) return idx[i];
    }
    return idx[n - 1];
}
