/* explain_value.c — the explainer's value function (explain.h): f of the input with some features masked,
 * for many coalitions in batched forward passes, on an encoder classifier or a decoder.
 *
 *   row j of a batch = ids with every token of an absent feature replaced by mask_id      [rows, T]
 *   encoder: logits [rows, K] -> softmax prob of the target (or its logit, or the regression output)
 *   decoder: logits [rows*T, V] -> sum_{t >= n_text} log softmax(logits[t-1])[ids[t]]
 * The sums run in double. */
#include "infer/explain_internal.h"
#include "finetune/encoder.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ft_explain_encoder_options ft_explain_encoder_default_options(void) {
    ft_explain_encoder_options o = {-1, FT_EXPLAIN_PROB, 0};
    return o;
}

int ft_explain_mask_id(const ft_tokenizer *tok) {
    int id = ft_tokenizer_mask(tok);
    if (id < 0) id = ft_tokenizer_unk(tok);
    if (id < 0) id = ft_tokenizer_pad(tok);
    if (id < 0) id = ft_tokenizer_eos(tok);
    return id;
}

void ft_explainer_free(ft_explainer *e) {
    if (!e) return;
    free(e->ids);
    free(e->types);
    free(e->feature);
    free(e->logits0);
    free(e->bids);
    free(e->btypes);
    free(e->bmask);
    free(e->btargets);
    free(e);
}

int ft_explainer_num_features(const ft_explainer *e) { return e->n_features; }
double ft_explainer_f_input(const ft_explainer *e) { return e->f_input; }
int ft_explainer_target(const ft_explainer *e) { return e->target; }
int64_t ft_explainer_evaluations(const ft_explainer *e) { return e->evaluations; }
const float *ft_explainer_logits(const ft_explainer *e, int *k) {
    if (k) *k = e->enc ? e->K : 0;
    return e->enc ? e->logits0 : NULL;
}

/* the parts both kinds share: copies, checks, batch buffers */
static int explainer_common(ft_explainer **out, const int *ids, const int *type_ids, int T, const int *feature, int n_features,
                            int mask_id, int vocab, int batch_rows) {
    *out = NULL;
    if (!ids || !feature || T <= 0) return ft_error(FT_ERR_INVALID, "explain: no input tokens");
    if (n_features <= 0) return ft_error(FT_ERR_INVALID, "explain: the input has no features (only special tokens?)");
    if (mask_id < 0 || mask_id >= vocab)
        return ft_error(FT_ERR_INVALID, "explain: mask id %d is outside the vocabulary [0, %d) (the tokenizer has no mask, unk, pad or EOS token?)",
                        mask_id, vocab);
    int *seen = calloc((size_t)n_features, sizeof(int));
    if (!seen) return ft_error(FT_ERR_NOMEM, "explain: out of memory");
    for (int t = 0; t < T; t++) {
        if (feature[t] < -1 || feature[t] >= n_features) {
            free(seen);
            return ft_error(FT_ERR_INVALID, "explain: token %d has feature %d, outside [-1, %d)", t, feature[t], n_features);
        }
        if (feature[t] >= 0) seen[feature[t]] = 1;
    }
    for (int i = 0; i < n_features; i++)
        if (!seen[i]) { free(seen); return ft_error(FT_ERR_INVALID, "explain: feature %d has no token", i); }
    free(seen);
    ft_explainer *e = calloc(1, sizeof *e);
    if (!e) return ft_error(FT_ERR_NOMEM, "explain: out of memory");
    e->T = T;
    e->n_features = n_features;
    e->mask_id = mask_id;
    e->target = -1;
    e->batch_rows = batch_rows > 0 ? batch_rows : (4096 / T > 0 ? 4096 / T : 1);
    if (e->batch_rows > 256) e->batch_rows = 256;
    size_t BT = (size_t)e->batch_rows * T;
    e->ids = malloc(sizeof(int) * (size_t)T);
    e->types = calloc((size_t)T, sizeof(int));
    e->feature = malloc(sizeof(int) * (size_t)T);
    e->bids = malloc(sizeof(int) * BT);
    e->btypes = malloc(sizeof(int) * BT);
    e->bmask = malloc(sizeof(int) * BT);
    if (!e->ids || !e->types || !e->feature || !e->bids || !e->btypes || !e->bmask) {
        ft_explainer_free(e);
        return ft_error(FT_ERR_NOMEM, "explain: out of memory");
    }
    memcpy(e->ids, ids, sizeof(int) * (size_t)T);
    if (type_ids) memcpy(e->types, type_ids, sizeof(int) * (size_t)T);
    memcpy(e->feature, feature, sizeof(int) * (size_t)T);
    for (size_t i = 0; i < BT; i++) e->bmask[i] = 1;
    *out = e;
    return FT_OK;
}

static double log_softmax_at(const float *x, int K, int k) {
    double mx = x[0];
    for (int j = 1; j < K; j++) if (x[j] > mx) mx = x[j];
    double s = 0;
    for (int j = 0; j < K; j++) s += exp((double)x[j] - mx);
    return (double)x[k] - mx - log(s);
}

double ft__explain_f_of_logits(const ft_explainer *e, const float *logits) {
    if (e->target < 0) return logits[0];   /* regression: the output */
    if (e->output == FT_EXPLAIN_LOGIT) return logits[e->target];
    return exp(log_softmax_at(logits, e->K, e->target));
}

/* rows [n, T] of the batch from coalitions present [n, n_features] */
static void fill_rows(ft_explainer *e, const uint8_t *present, int n) {
    int T = e->T, F = e->n_features;
    for (int r = 0; r < n; r++)
        for (int t = 0; t < T; t++) {
            int f = e->feature[t];
            e->bids[(size_t)r * T + t] = f >= 0 && !present[(size_t)r * F + f] ? e->mask_id : e->ids[t];
            e->btypes[(size_t)r * T + t] = e->types[t];
        }
}

static int encoder_rows(ft_explainer *e, int n, double *f) {
    ft_encoder_inputs in = {e->bids, e->btypes, e->bmask, NULL, NULL, n, e->T};
    FT_TRY(ft_encoder_forward_ex(e->enc, &in, NULL));
    const float *lg = ft_encoder_logits(e->enc);
    for (int r = 0; r < n; r++) f[r] = ft__explain_f_of_logits(e, lg + (size_t)r * e->K);
    return FT_OK;
}

/* decoders run every batch at the full batch shape (the model re-allocates its activations on a shape change):
 * unused rows repeat row 0 and are ignored */
static int decoder_rows(ft_explainer *e, int n, double *f) {
    int T = e->T, B = e->batch_rows, V = ft_model_get_config(e->dec)->vocab_size;
    for (int r = n; r < B; r++) memcpy(e->bids + (size_t)r * T, e->bids, sizeof(int) * (size_t)T);
    FT_TRY(ft_model_forward(e->dec, e->bids, NULL, NULL, NULL, B, T, NULL));
    const float *lg = ft_model_logits(e->dec);
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int t = e->n_text; t < T; t++) s += log_softmax_at(lg + ((size_t)r * T + t - 1) * V, V, e->ids[t]);
        f[r] = s;
    }
    return FT_OK;
}

int ft_explainer_values(ft_explainer *e, const uint8_t *present, int64_t n, double *f) {
    if (!e || (n > 0 && (!present || !f))) return ft_error(FT_ERR_INVALID, "explain: no coalitions");
    for (int64_t j = 0; j < n; j += e->batch_rows) {
        int rows = n - j < e->batch_rows ? (int)(n - j) : e->batch_rows;
        fill_rows(e, present + (size_t)j * e->n_features, rows);
        FT_TRY(e->enc ? encoder_rows(e, rows, f + j) : decoder_rows(e, rows, f + j));
        e->evaluations += rows;
    }
    return FT_OK;
}

int ft_explainer_encoder(ft_explainer **out, ft_encoder_model *m, const int *ids, const int *type_ids, int T, const int *feature,
                         int n_features, int mask_id, const ft_explain_encoder_options *o) {
    if (!out || !m) return ft_error(FT_ERR_INVALID, "explain: no model");
    ft_explain_encoder_options d = ft_explain_encoder_default_options();
    if (!o) o = &d;
    ft_encoder_task task = ft_encoder_get_task(m);
    if (task != FT_TASK_CLASSIFY && task != FT_TASK_REGRESS)
        return ft_error(FT_ERR_UNSUPPORTED, "explain: the encoder's task is %s; explain takes sequence classifiers and regressors",
                        ft_encoder_task_name(task));
    const ft_encoder_config *c = ft_encoder_get_config(m);
    FT_TRY(explainer_common(out, ids, type_ids, T, feature, n_features, mask_id, c->vocab_size, o->batch_rows));
    ft_explainer *e = *out;
    e->enc = m;
    e->output = o->output;
    e->K = task == FT_TASK_REGRESS ? 1 : c->num_labels;
    int rc = FT_OK;
    if (!(e->logits0 = malloc(sizeof(float) * (size_t)e->K))) rc = ft_error(FT_ERR_NOMEM, "explain: out of memory");
    if (rc == FT_OK) {
        ft_encoder_set_training(m, 0, 0);
        ft_encoder_inputs in = {e->ids, e->types, e->bmask, NULL, NULL, 1, T};
        rc = ft_encoder_forward_ex(m, &in, NULL);
    }
    if (rc == FT_OK) {
        memcpy(e->logits0, ft_encoder_logits(m), sizeof(float) * (size_t)e->K);
        if (task == FT_TASK_CLASSIFY) {
            int best = 0;
            for (int k = 1; k < e->K; k++) if (e->logits0[k] > e->logits0[best]) best = k;
            e->target = o->target >= 0 ? o->target : best;
            if (e->target >= e->K) rc = ft_error(FT_ERR_INVALID, "explain: target class %d, the classifier has %d (0..%d)", e->target, e->K, e->K - 1);
        }
    }
    if (rc != FT_OK) { ft_explainer_free(e); *out = NULL; return rc; }
    e->f_input = ft__explain_f_of_logits(e, e->logits0);
    e->evaluations = 1;
    return FT_OK;
}

int ft_explainer_decoder(ft_explainer **out, ft_model *m, const int *ids, int T, int n_text, const int *feature, int n_features,
                         int mask_id, int batch_rows) {
    if (!out || !m) return ft_error(FT_ERR_INVALID, "explain: no model");
    if (n_text < 1 || n_text >= T)
        return ft_error(FT_ERR_INVALID, "explain: %d text tokens of %d: the text and the continuation need a token each at least", n_text, T);
    for (int t = n_text; t < T && feature; t++)
        if (feature[t] >= 0) return ft_error(FT_ERR_INVALID, "explain: token %d of the continuation is a feature", t);
    const ft_model_config *c = ft_model_get_config(m);
    if (T > c->max_seq_len) return ft_error(FT_ERR_RANGE, "explain: %d tokens exceed the model's context of %d", T, c->max_seq_len);
    /* decoder batches are [rows, T] logits of V columns: keep a pass near 64 MB of logits */
    if (batch_rows <= 0) {
        int64_t per_row = (int64_t)T * c->vocab_size;
        batch_rows = (int)(16 * 1024 * 1024 / (per_row > 0 ? per_row : 1));
        if (batch_rows < 1) batch_rows = 1;
        if (batch_rows > 64) batch_rows = 64;
    }
    FT_TRY(explainer_common(out, ids, NULL, T, feature, n_features, mask_id, c->vocab_size, batch_rows));
    ft_explainer *e = *out;
    e->dec = m;
    e->n_text = n_text;
    ft_model_set_training(m, 0, 0);
    uint8_t *all = malloc((size_t)n_features);
    if (!all) { ft_explainer_free(e); *out = NULL; return ft_error(FT_ERR_NOMEM, "explain: out of memory"); }
    memset(all, 1, (size_t)n_features);
    int rc = ft_explainer_values(e, all, 1, &e->f_input);
    free(all);
    if (rc != FT_OK) { ft_explainer_free(e); *out = NULL; }
    return rc;
}
