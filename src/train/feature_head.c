/* feature_head.c — a linear or one-hidden-layer head trained with AdamW on frozen features (feature_head.h). */
#include "finetune/feature_head.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "core/hash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ft_fhead {
    int    C, H, K;
    size_t np;       /* parameters */
    float *p;        /* [np]: linear W [K, C], b [K]; MLP W1 [H, C], b1 [H], W2 [K, H], b2 [K] */
};

ft_fhead_options ft_fhead_default_options(void) {
    ft_fhead_options o = {0, 100, 32, 1e-2, 1e-4, 42, NULL};
    return o;
}

void ft_fhead_free(ft_fhead *h) {
    if (!h) return;
    free(h->p);
    free(h);
}

int ft_fhead_dims(const ft_fhead *h, int *C, int *H, int *K) {
    if (C) *C = h->C;
    if (H) *H = h->H;
    if (K) *K = h->K;
    return FT_OK;
}

static size_t n_params(int C, int H, int K) {
    return H ? (size_t)H * C + H + (size_t)K * H + K : (size_t)K * C + K;
}

static int head_new(ft_fhead **out, int C, int H, int K) {
    ft_fhead *h = calloc(1, sizeof *h);
    if (!h) return ft_error(FT_ERR_NOMEM, "feature head: out of memory");
    h->C = C; h->H = H; h->K = K;
    h->np = n_params(C, H, K);
    h->p = calloc(h->np, sizeof *h->p);
    if (!h->p) { free(h); return ft_error(FT_ERR_NOMEM, "feature head: out of memory"); }
    *out = h;
    return FT_OK;
}

/* Views of a parameter-shaped buffer q: the first layer (W1 / W) and the output layer. */
typedef struct layers { float *W1, *b1, *W2, *b2; } layers;
static layers view(const ft_fhead *h, float *q) {
    layers l;
    if (h->H) {
        l.W1 = q; l.b1 = q + (size_t)h->H * h->C;
        l.W2 = l.b1 + h->H; l.b2 = l.W2 + (size_t)h->K * h->H;
    } else {
        l.W1 = l.b1 = NULL;
        l.W2 = q; l.b2 = q + (size_t)h->K * h->C;
    }
    return l;
}

/* rows [B, C] -> act [B, H] (MLP) and logits [B, K] */
static void forward(const ft_fhead *h, const float *X, const int64_t *rows, int B, float *act, float *logits) {
    layers l = view(h, h->p);
    int C = h->C, H = h->H, K = h->K, In = H ? H : C;
    for (int b = 0; b < B; b++) {
        const float *x = X + (rows ? rows[b] : b) * C;
        const float *in = x;
        if (H) {
            float *a = act + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                double s = l.b1[j];
                const float *w = l.W1 + (size_t)j * C;
                for (int c = 0; c < C; c++) s += (double)w[c] * x[c];
                a[j] = s > 0 ? (float)s : 0.0f;
            }
            in = a;
        }
        for (int k = 0; k < K; k++) {
            double s = l.b2[k];
            const float *w = l.W2 + (size_t)k * In;
            for (int c = 0; c < In; c++) s += (double)w[c] * in[c];
            logits[(size_t)b * K + k] = (float)s;
        }
    }
}

static void softmax_row(float *z, int K) {
    float mx = z[0];
    for (int k = 1; k < K; k++) if (z[k] > mx) mx = z[k];
    double s = 0;
    for (int k = 0; k < K; k++) { z[k] = expf(z[k] - mx); s += z[k]; }
    for (int k = 0; k < K; k++) z[k] = (float)(z[k] / s);
}

int ft_fhead_train(ft_fhead **out, const float *X, const int *y, int64_t n, int C, int K, const ft_fhead_options *o) {
    *out = NULL;
    if (n <= 0 || C <= 0 || K < 2 || o->hidden < 0 || o->epochs < 0 || o->batch <= 0 || !(o->lr > 0))
        return ft_error(FT_ERR_INVALID, "feature head: n %lld, C %d, K %d, hidden %d, epochs %d, batch %d, lr %g",
                        (long long)n, C, K, o->hidden, o->epochs, o->batch, o->lr);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= K) return ft_error(FT_ERR_RANGE, "feature head: row %lld has label %d, outside 0..%d", (long long)i, y[i], K - 1);
    ft_fhead *h;
    FT_TRY(head_new(&h, C, o->hidden, K));
    int H = h->H, In = H ? H : C, B = o->batch;
    /* torch.nn.Linear's initialisation: weights and biases uniform in +-1/sqrt(fan_in) */
    ft_rng r;
    ft_rng_seed(&r, o->seed);
    layers l = view(h, h->p);
    if (H) {
        float a = 1.0f / sqrtf((float)C);
        for (size_t i = 0; i < (size_t)H * C + H; i++) l.W1[i] = (2 * ft_rng_uniform(&r) - 1) * a;
    }
    float a2 = 1.0f / sqrtf((float)In);
    for (size_t i = 0; i < (size_t)K * In + K; i++) l.W2[i] = (2 * ft_rng_uniform(&r) - 1) * a2;

    float *g = calloc(h->np, sizeof *g), *m1 = calloc(h->np, sizeof *m1), *m2 = calloc(h->np, sizeof *m2);
    float *act = malloc((size_t)B * (H ? H : 1) * sizeof *act), *lg = malloc((size_t)B * K * sizeof *lg);
    float *dact = malloc((size_t)(H ? H : 1) * sizeof *dact);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (!g || !m1 || !m2 || !act || !lg || !dact || !perm) {
        free(g); free(m1); free(m2); free(act); free(lg); free(dact); free(perm); ft_fhead_free(h);
        return ft_error(FT_ERR_NOMEM, "feature head: out of memory");
    }
    layers gl = view(h, g);
    /* which parameters decay: weights, not biases */
    const double b1c = 0.9, b2c = 0.999, eps = 1e-8;
    int64_t step = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        ft_rng pr;
        ft_rng_seed(&pr, ft__mix64(o->seed ^ ft__splitmix64((uint64_t)ep + 1)));
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)ft_rng_below(&pr, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j]; perm[j] = t;
        }
        for (int64_t s = 0; s < n; s += B) {
            int nb = (int)(n - s < B ? n - s : B);
            const int64_t *rows = perm + s;
            forward(h, X, rows, nb, act, lg);
            double wsum = 0;
            for (int b = 0; b < nb; b++) wsum += o->class_weight ? o->class_weight[y[rows[b]]] : 1.0;
            if (wsum <= 0) continue;
            memset(g, 0, h->np * sizeof *g);
            for (int b = 0; b < nb; b++) {
                float *z = lg + (size_t)b * K;
                softmax_row(z, K);
                int yt = y[rows[b]];
                float wgt = (float)((o->class_weight ? o->class_weight[yt] : 1.0) / wsum);
                for (int k = 0; k < K; k++) z[k] = (z[k] - (k == yt)) * wgt;   /* dlogits */
                const float *x = X + rows[b] * C, *in = H ? act + (size_t)b * H : x;
                for (int k = 0; k < K; k++) {
                    float d = z[k];
                    float *gw = gl.W2 + (size_t)k * In;
                    for (int c = 0; c < In; c++) gw[c] += d * in[c];
                    gl.b2[k] += d;
                }
                if (H) {
                    for (int j = 0; j < H; j++) {
                        double s2 = 0;
                        for (int k = 0; k < K; k++) s2 += (double)z[k] * l.W2[(size_t)k * H + j];
                        dact[j] = act[(size_t)b * H + j] > 0 ? (float)s2 : 0.0f;
                    }
                    for (int j = 0; j < H; j++) {
                        float d = dact[j];
                        if (d == 0) continue;
                        float *gw = gl.W1 + (size_t)j * C;
                        for (int c = 0; c < C; c++) gw[c] += d * x[c];
                        gl.b1[j] += d;
                    }
                }
            }
            step++;
            double c1 = 1 - pow(b1c, (double)step), c2 = 1 - pow(b2c, (double)step);
            for (size_t i = 0; i < h->np; i++) {
                float *p = h->p + i;
                int is_bias = H ? (p >= l.b1 && p < l.b1 + H) || p >= l.b2 : p >= l.b2;
                if (!is_bias) *p -= (float)(o->lr * o->weight_decay) * *p;
                m1[i] = (float)(b1c * m1[i] + (1 - b1c) * g[i]);
                m2[i] = (float)(b2c * m2[i] + (1 - b2c) * (double)g[i] * g[i]);
                *p -= (float)(o->lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + eps));
            }
        }
    }
    free(g); free(m1); free(m2); free(act); free(lg); free(dact); free(perm);
    *out = h;
    return FT_OK;
}

int ft_fhead_predict(const ft_fhead *h, const float *X, int64_t n, int *pred, float *probs) {
    int K = h->K;
    float *act = malloc((size_t)(h->H ? h->H : 1) * sizeof *act), lg[256];
    if (K > 256) { free(act); return ft_error(FT_ERR_UNSUPPORTED, "feature head: %d classes", K); }
    if (!act) return ft_error(FT_ERR_NOMEM, "feature head: out of memory");
    for (int64_t i = 0; i < n; i++) {
        forward(h, X + i * h->C, NULL, 1, act, lg);
        softmax_row(lg, K);
        int best = 0;
        for (int k = 1; k < K; k++) if (lg[k] > lg[best]) best = k;
        if (pred) pred[i] = best;
        if (probs) memcpy(probs + i * K, lg, (size_t)K * sizeof *lg);
    }
    free(act);
    return FT_OK;
}

int ft_fhead_loss(const ft_fhead *h, const float *X, const int *y, int64_t n, double *loss) {
    int K = h->K;
    float *pr = malloc((size_t)(n ? n : 1) * (size_t)K * sizeof *pr);
    if (!pr) return ft_error(FT_ERR_NOMEM, "feature head: out of memory");
    int rc = ft_fhead_predict(h, X, n, NULL, pr);
    double s = 0;
    for (int64_t i = 0; rc == FT_OK && i < n; i++) s -= log(fmax(pr[i * K + y[i]], 1e-30));
    free(pr);
    *loss = n ? s / (double)n : 0;
    return rc;
}

int ft_fhead_save(const ft_fhead *h, const char *path, const ft_label_map *labels) {
    layers l = view(h, h->p);
    ft_st_tensor t[4];
    int nt = 0;
    if (h->H) {
        t[nt++] = (ft_st_tensor){"hidden.weight", FT_F32, 2, {h->H, h->C}, l.W1};
        t[nt++] = (ft_st_tensor){"hidden.bias", FT_F32, 1, {h->H}, l.b1};
        t[nt++] = (ft_st_tensor){"out.weight", FT_F32, 2, {h->K, h->H}, l.W2};
        t[nt++] = (ft_st_tensor){"out.bias", FT_F32, 1, {h->K}, l.b2};
    } else {
        t[nt++] = (ft_st_tensor){"linear.weight", FT_F32, 2, {h->K, h->C}, l.W2};
        t[nt++] = (ft_st_tensor){"linear.bias", FT_F32, 1, {h->K}, l.b2};
    }
    char *j = NULL;
    if (labels && labels->n > 0) FT_TRY(ft_label_map_to_json(labels, &j));
    const char *meta[2] = {"id2label", j};
    int rc = ft_st_write(path, t, nt, j ? meta : NULL, j ? 1 : 0);
    free(j);
    return rc;
}

int ft_fhead_load(ft_fhead **out, const char *path) {
    *out = NULL;
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, path));
    const ft_st_entry *w = ft_st_find(st, "linear.weight"), *w1 = ft_st_find(st, "hidden.weight"), *w2 = ft_st_find(st, "out.weight");
    int rc = FT_OK, C = 0, H = 0, K = 0;
    if (w && w->ndim == 2) { K = (int)w->shape[0]; C = (int)w->shape[1]; }
    else if (w1 && w2 && w1->ndim == 2 && w2->ndim == 2 && w2->shape[1] == w1->shape[0]) { H = (int)w1->shape[0]; C = (int)w1->shape[1]; K = (int)w2->shape[0]; }
    else rc = ft_error(FT_ERR_NOT_FOUND, "%s: no feature head (linear.weight, or hidden.weight + out.weight)", path);
    if (rc == FT_OK && (C <= 0 || K < 2 || K > 256 || H < 0 || C > 1 << 20 || H > 1 << 16))
        rc = ft_error(FT_ERR_SHAPE, "%s: head of %d features, %d hidden, %d classes", path, C, H, K);
    ft_fhead *h = NULL;
    if (rc == FT_OK) rc = head_new(&h, C, H, K);
    if (rc == FT_OK) {
        layers l = view(h, h->p);
        int64_t s1[2] = {H, C}, b1[1] = {H}, s2[2] = {K, H ? H : C}, b2[1] = {K};
        if (H) {
            rc = ft_st_read_f32(st, "hidden.weight", s1, 2, l.W1);
            if (rc == FT_OK) rc = ft_st_read_f32(st, "hidden.bias", b1, 1, l.b1);
            if (rc == FT_OK) rc = ft_st_read_f32(st, "out.weight", s2, 2, l.W2);
            if (rc == FT_OK) rc = ft_st_read_f32(st, "out.bias", b2, 1, l.b2);
        } else {
            rc = ft_st_read_f32(st, "linear.weight", s2, 2, l.W2);
            if (rc == FT_OK) rc = ft_st_read_f32(st, "linear.bias", b2, 1, l.b2);
        }
    }
    ft_st_close(st);
    if (rc != FT_OK) { ft_fhead_free(h); return rc; }
    *out = h;
    return FT_OK;
}
