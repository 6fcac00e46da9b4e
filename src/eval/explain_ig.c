/* explain_ig.c — Integrated Gradients on the word-embedding output and attention maps (explain.h), encoders.
 *
 *   x[T,C]  = wte[ids]                  the input's word embeddings
 *   x'[T,C] = wte[mask_id] or 0         at feature tokens; x at special tokens (their attribution is 0)
 *   G[T,C]  = sum_k w_k df/de (x' + a_k (x - x'))      Gauss-Legendre nodes a_k, weights w_k on [0, 1]
 *   attr_t  = sum_c (x - x')[t,c] G[t,c]
 * The gradient comes from our own backward (ft_encoder_backward_embeds) with dlogits = df/dlogits:
 * probability p_y: p_y (1[k = y] - p_k); logit: 1[k = y]; regression: 1. Nodes run in batches of rows. */
#include "eval/explain_internal.h"
#include "eval/eval_util.h"
#include "finetune/encoder.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ft_ig_options ft_ig_default_options(void) {
    ft_ig_options o = {50, FT_IG_BASELINE_MASK};
    return o;
}

/* Legendre P_n(x) and its derivative by the three-term recurrence */
static void legendre(int n, double x, double *p, double *dp) {
    double p0 = 1, p1 = x;
    for (int k = 2; k <= n; k++) {
        double p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
    }
    *p = n == 0 ? 1 : p1;
    *dp = n == 0 ? 0 : n * (x * p1 - p0) / (x * x - 1);
}

int ft_gauss_legendre(int n, double *x, double *w) {
    if (n <= 0 || n > 10000 || !x || !w) return ft_error(FT_ERR_INVALID, "gauss-legendre: %d nodes (1..10000)", n);
    for (int i = 0; i < (n + 1) / 2; i++) {
        /* the i-th root from the top (Tricomi's first guess), polished by Newton's method */
        double r = cos(M_PI * (i + 0.75) / (n + 0.5)), p, dp;
        for (int it = 0; it < 100; it++) {
            legendre(n, r, &p, &dp);
            double step = p / dp;
            r -= step;
            if (fabs(step) < 1e-16) break;
        }
        legendre(n, r, &p, &dp);
        double wi = 2.0 / ((1 - r * r) * dp * dp);
        /* [-1, 1] -> [0, 1]: a = (1 + r) / 2, weight / 2; ascending order */
        x[n - 1 - i] = 0.5 * (1 + r);
        w[n - 1 - i] = 0.5 * wi;
        x[i] = 0.5 * (1 - r);
        w[i] = 0.5 * wi;
    }
    if (n & 1) x[n / 2] = 0.5;   /* the middle root is exactly 0 */
    return FT_OK;
}

/* the word-embedding table [V, C] of an encoder (its first parameter) */
static const float *word_table(ft_encoder_model *m) {
    ft_param *p = ft_encoder_param(m, 0);
    return p && strstr(p->name, "word_embeddings.weight") ? p->t.data : NULL;
}

/* df/dlogits of one row */
static void df_dlogits(const ft_explainer *e, const float *logits, float *d) {
    int K = e->K;
    if (e->target < 0) { d[0] = 1; return; }
    for (int k = 0; k < K; k++) d[k] = 0;
    if (e->output == FT_EXPLAIN_LOGIT) { d[e->target] = 1; return; }
    double mx = logits[0], s = 0;
    for (int k = 1; k < K; k++) if (logits[k] > mx) mx = logits[k];
    for (int k = 0; k < K; k++) s += exp((double)logits[k] - mx);
    double py = exp((double)logits[e->target] - mx) / s;
    for (int k = 0; k < K; k++) d[k] = (float)(py * ((k == e->target) - exp((double)logits[k] - mx) / s));
}

int ft_explain_ig(ft_explainer *e, const ft_ig_options *o, double *attr, ft_ig_result *r) {
    if (!e || !attr) return ft_error(FT_ERR_INVALID, "integrated gradients: no explainer or output");
    if (!e->enc) return ft_error(FT_ERR_UNSUPPORTED, "integrated gradients: only encoder classifiers for now (decoders: use --method shap)");
    ft_ig_options d = ft_ig_default_options();
    if (!o) o = &d;
    int S = o->steps, T = e->T;
    if (S <= 0 || S > 10000) return ft_error(FT_ERR_INVALID, "integrated gradients: %d steps (1..10000)", S);
    ft_encoder_model *m = e->enc;
    const ft_encoder_config *c = ft_encoder_get_config(m);
    int C = c->n_embd, B = e->batch_rows < S ? e->batch_rows : S;
    const float *wte = word_table(m);
    if (!wte) return ft_error(FT_ERR_UNSUPPORTED, "integrated gradients: the encoder's first parameter is not its word embeddings");
    size_t TC = (size_t)T * C;
    float *x = malloc(sizeof(float) * TC), *xb = malloc(sizeof(float) * TC);
    float *rows = malloc(sizeof(float) * TC * B), *grad = malloc(sizeof(float) * TC * B);
    float *dl = malloc(sizeof(float) * (size_t)B * e->K);
    double *G = calloc(TC, sizeof(double)), *a = malloc(sizeof(double) * S), *w = malloc(sizeof(double) * S);
    int *ids = malloc(sizeof(int) * (size_t)T * B), *types = malloc(sizeof(int) * (size_t)T * B), *mask = malloc(sizeof(int) * (size_t)T * B);
    int rc = FT_OK;
    if (!x || !xb || !rows || !grad || !dl || !G || !a || !w || !ids || !types || !mask) {
        rc = ft_error(FT_ERR_NOMEM, "integrated gradients: out of memory");
        goto done;
    }
    if ((rc = ft_gauss_legendre(S, a, w)) != FT_OK) goto done;
    for (int t = 0; t < T; t++) {
        memcpy(x + (size_t)t * C, wte + (size_t)e->ids[t] * C, sizeof(float) * C);
        if (e->feature[t] < 0) memcpy(xb + (size_t)t * C, x + (size_t)t * C, sizeof(float) * C);
        else if (o->baseline == FT_IG_BASELINE_ZERO) memset(xb + (size_t)t * C, 0, sizeof(float) * C);
        else memcpy(xb + (size_t)t * C, wte + (size_t)e->mask_id * C, sizeof(float) * C);
    }
    for (int b = 0; b < B; b++) {
        memcpy(ids + (size_t)b * T, e->ids, sizeof(int) * T);
        memcpy(types + (size_t)b * T, e->types, sizeof(int) * T);
        for (int t = 0; t < T; t++) mask[(size_t)b * T + t] = 1;
    }
    for (int k0 = 0; k0 < S; k0 += B) {
        int n = S - k0 < B ? S - k0 : B;
        for (int b = 0; b < n; b++) {
            float alpha = (float)a[k0 + b];
            float *row = rows + (size_t)b * TC;
            for (size_t i = 0; i < TC; i++) row[i] = xb[i] + alpha * (x[i] - xb[i]);
        }
        ft_encoder_inputs in = {ids, types, mask, NULL, NULL, n, T};
        if ((rc = ft_encoder_forward_embeds(m, &in, rows, NULL)) != FT_OK) goto done;
        const float *lg = ft_encoder_logits(m);
        for (int b = 0; b < n; b++) df_dlogits(e, lg + (size_t)b * e->K, dl + (size_t)b * e->K);
        if ((rc = ft_encoder_backward_embeds(m, dl, grad)) != FT_OK) goto done;
        for (int b = 0; b < n; b++)
            for (size_t i = 0; i < TC; i++) G[i] += w[k0 + b] * grad[(size_t)b * TC + i];
        e->evaluations += n;
    }
    ft_ksum total = {0, 0};
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int j = 0; j < C; j++) s += ((double)x[(size_t)t * C + j] - xb[(size_t)t * C + j]) * G[(size_t)t * C + j];
        attr[t] = s;
        ft_ksum_add(&total, s);
    }
    if (r) {
        ft_encoder_inputs in = {ids, types, mask, NULL, NULL, 1, T};
        if ((rc = ft_encoder_forward_embeds(m, &in, xb, NULL)) != FT_OK) goto done;
        r->f_baseline = ft__explain_f_of_logits(e, ft_encoder_logits(m));
        r->f_input = e->f_input;
        r->sum = ft_ksum_value(&total);
        r->gap = r->sum - (r->f_input - r->f_baseline);
        r->steps = S;
        e->evaluations++;
    }
done:
    free(x); free(xb); free(rows); free(grad); free(dl); free(G); free(a); free(w); free(ids); free(types); free(mask);
    return rc;
}

int ft_explain_attention(ft_explainer *e, float **att, int *L, int *NH) {
    if (!e || !att) return ft_error(FT_ERR_INVALID, "attention: no explainer or output");
    *att = NULL;
    if (!e->enc) return ft_error(FT_ERR_UNSUPPORTED, "attention maps: only encoders for now");
    const ft_encoder_config *c = ft_encoder_get_config(e->enc);
    int T = e->T, nl = c->n_layer, nh = c->n_head;
    ft_encoder_inputs in = {e->ids, e->types, e->bmask, NULL, NULL, 1, T};   /* bmask: all 1 */
    FT_TRY(ft_encoder_forward_ex(e->enc, &in, NULL));
    e->evaluations++;
    const float *src = ft_encoder_attention(e->enc);   /* [L, 1, NH, T, T] */
    size_t n = (size_t)nl * nh * T * T;
    float *out = malloc(sizeof(float) * n);
    if (!out || !src) { free(out); return ft_error(FT_ERR_NOMEM, "attention: out of memory"); }
    memcpy(out, src, sizeof(float) * n);
    *att = out;
    if (L) *L = nl;
    if (NH) *NH = nh;
    return FT_OK;
}
