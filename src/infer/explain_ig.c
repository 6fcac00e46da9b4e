/* explain_ig.c — Integrated Gradients on the word-embedding output and attention maps (explain.h), encoders.
 *
 *   x[T,C]  = wte[ids]                  the input's word embeddings
 *   x'[T,C] = wte[mask_id] or 0         at feature tokens; x at special tokens (their attribution is 0)
 *   G[T,C]  = sum_k w_k df/de (x' + a_k (x - x'))      Gauss-Legendre nodes a_k, weights w_k on [0, 1]
 *   attr_t  = sum_c (x - x')[t,c] G[t,c]
 * The gradient comes from our own backward: encoders ft_encoder_backward_embeds with dlogits = df/dlogits
 * (probability p_y: p_y (1[k = y] - p_k); logit: 1[k = y]; regression: 1); decoders ft_model_backward_embeds of
 * the continuation's token losses (f = -their sum). Nodes run in batches of rows. */
#include "infer/explain_internal.h"
#include "eval/eval_util.h"
#include "finetune/encoder.h"
#include "finetune/model.h"
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

/* the word-embedding table [V, C]: an encoder's first parameter, a decoder's "wte" */
static const float *word_table(const ft_explainer *e) {
    if (e->enc) {
        ft_param *p = ft_encoder_param(e->enc, 0);
        return p && strstr(p->name, "word_embeddings.weight") ? p->t.data : NULL;
    }
    for (int i = 0; i < ft_model_num_params(e->dec); i++) {
        ft_param *p = ft_model_param(e->dec, i);
        if (strcmp(p->name, "wte") == 0) return p->t.dtype == FT_F32 ? p->t.data : NULL;
    }
    return NULL;
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

/* the buffers of one IG run: rows [B, T, C] at the nodes, their gradient, inputs repeated B times */
typedef struct ig_batch {
    int B;
    float *rows, *grad, *dl;
    int *ids, *types, *mask, *targets;
} ig_batch;

/* f and df/d(rows) of the first n rows of the batch (decoders run all B rows: the model keeps one batch shape) */
static int ig_grad(ft_explainer *e, ig_batch *g, int n, double *f) {
    int T = e->T;
    if (e->enc) {
        ft_encoder_inputs in = {g->ids, g->types, g->mask, NULL, NULL, n, T};
        FT_TRY(ft_encoder_forward_embeds(e->enc, &in, g->rows, NULL));
        const float *lg = ft_encoder_logits(e->enc);
        for (int b = 0; b < n; b++) {
            if (f) f[b] = ft__explain_f_of_logits(e, lg + (size_t)b * e->K);
            df_dlogits(e, lg + (size_t)b * e->K, g->dl + (size_t)b * e->K);
        }
        return ft_encoder_backward_embeds(e->enc, g->dl, g->grad);
    }
    /* decoders: f = -(sum of the continuation's token losses); the backward gives d(sum of losses) = -df */
    float loss;
    FT_TRY(ft_model_forward_embeds(e->dec, g->ids, g->targets, g->rows, g->B, T, &loss));
    if (f) f[0] = -(double)loss * ft_model_num_targets(e->dec) / g->B;   /* n == 1 here: the rows are equal */
    FT_TRY(ft_model_backward_embeds(e->dec, g->grad));
    size_t n_all = (size_t)g->B * T * ft_model_get_config(e->dec)->n_embd;
    for (size_t i = 0; i < n_all; i++) g->grad[i] = -g->grad[i];
    return FT_OK;
}

int ft_explain_ig(ft_explainer *e, const ft_ig_options *o, double *attr, ft_ig_result *r) {
    if (!e || !attr) return ft_error(FT_ERR_INVALID, "integrated gradients: no explainer or output");
    ft_ig_options d = ft_ig_default_options();
    if (!o) o = &d;
    int S = o->steps, T = e->T;
    if (S <= 0 || S > 10000) return ft_error(FT_ERR_INVALID, "integrated gradients: %d steps (1..10000)", S);
    int C = e->enc ? ft_encoder_get_config(e->enc)->n_embd : ft_model_get_config(e->dec)->n_embd;
    const float *wte = word_table(e);
    if (!wte) return ft_error(FT_ERR_UNSUPPORTED, "integrated gradients: the model's word embeddings are not an f32 table");
    ig_batch g = {e->batch_rows < S ? e->batch_rows : S, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int B = g.B;
    size_t TC = (size_t)T * C;
    float *x = malloc(sizeof(float) * TC), *xb = malloc(sizeof(float) * TC);
    g.rows = malloc(sizeof(float) * TC * B);
    g.grad = malloc(sizeof(float) * TC * B);
    g.dl = malloc(sizeof(float) * (size_t)B * (e->K > 0 ? e->K : 1));
    g.ids = malloc(sizeof(int) * (size_t)T * B);
    g.types = malloc(sizeof(int) * (size_t)T * B);
    g.mask = malloc(sizeof(int) * (size_t)T * B);
    g.targets = malloc(sizeof(int) * (size_t)T * B);
    double *G = calloc(TC, sizeof(double)), *a = malloc(sizeof(double) * S), *w = malloc(sizeof(double) * S);
    int rc = FT_OK;
    if (!x || !xb || !g.rows || !g.grad || !g.dl || !G || !a || !w || !g.ids || !g.types || !g.mask || !g.targets) {
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
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            g.ids[i] = e->ids[t];
            g.types[i] = e->types[t];
            g.mask[i] = 1;
            g.targets[i] = !e->enc && t + 1 >= e->n_text && t + 1 < T ? e->ids[t + 1] : FT_IGNORE_INDEX;
        }
    for (int k0 = 0; k0 < S; k0 += B) {
        int n = S - k0 < B ? S - k0 : B;
        for (int b = 0; b < B; b++) {   /* rows past n (the last batch of a decoder) repeat the last node */
            float alpha = (float)a[k0 + (b < n ? b : n - 1)];
            float *row = g.rows + (size_t)b * TC;
            for (size_t i = 0; i < TC; i++) row[i] = xb[i] + alpha * (x[i] - xb[i]);
        }
        if ((rc = ig_grad(e, &g, n, NULL)) != FT_OK) goto done;
        for (int b = 0; b < n; b++)
            for (size_t i = 0; i < TC; i++) G[i] += w[k0 + b] * g.grad[(size_t)b * TC + i];
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
        for (int b = 0; b < B; b++) memcpy(g.rows + (size_t)b * TC, xb, sizeof(float) * TC);
        double fb;
        if ((rc = ig_grad(e, &g, 1, &fb)) != FT_OK) goto done;
        r->f_baseline = fb;
        r->f_input = e->f_input;
        r->sum = ft_ksum_value(&total);
        r->gap = r->sum - (r->f_input - r->f_baseline);
        r->steps = S;
        e->evaluations++;
    }
done:
    free(x); free(xb); free(g.rows); free(g.grad); free(g.dl); free(G); free(a); free(w);
    free(g.ids); free(g.types); free(g.mask); free(g.targets);
    return rc;
}

int ft_explain_attention(ft_explainer *e, float **att, int *L, int *NH) {
    if (!e || !att) return ft_error(FT_ERR_INVALID, "attention: no explainer or output");
    *att = NULL;
    int T = e->T, nl, nh;
    const float *src;
    size_t per_layer;   /* floats between layers in src: B rows of [NH, T, T] */
    if (e->enc) {
        const ft_encoder_config *c = ft_encoder_get_config(e->enc);
        nl = c->n_layer;
        nh = c->n_head;
        ft_encoder_inputs in = {e->ids, e->types, e->bmask, NULL, NULL, 1, T};   /* bmask: all 1 */
        FT_TRY(ft_encoder_forward_ex(e->enc, &in, NULL));
        src = ft_encoder_attention(e->enc);
        per_layer = (size_t)nh * T * T;
    } else {
        /* decoders run at the explainer's batch shape: every row the input, row 0 taken */
        const ft_model_config *c = ft_model_get_config(e->dec);
        nl = c->n_layer;
        nh = c->n_head;
        for (int b = 0; b < e->batch_rows; b++) memcpy(e->bids + (size_t)b * T, e->ids, sizeof(int) * (size_t)T);
        FT_TRY(ft_model_forward(e->dec, e->bids, NULL, NULL, NULL, e->batch_rows, T, NULL));
        src = ft_model_attention(e->dec);
        per_layer = (size_t)e->batch_rows * nh * T * T;
    }
    e->evaluations++;
    size_t n1 = (size_t)nh * T * T;
    float *out = malloc(sizeof(float) * n1 * nl);
    if (!out || !src) { free(out); return ft_error(FT_ERR_NOMEM, "attention: out of memory"); }
    for (int l = 0; l < nl; l++) memcpy(out + (size_t)l * n1, src + (size_t)l * per_layer, sizeof(float) * n1);
    *att = out;
    if (L) *L = nl;
    if (NH) *NH = nh;
    return FT_OK;
}
