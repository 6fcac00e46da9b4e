/* predict_batch.c — encoder predictions prepared, run as one padded batch, and post-processed per task
 * (predict_batch.h); ft_encoder_predict is these steps for one text. */
#include "infer/predict_batch.h"
#include "finetune/classify_data.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ft__pred_input_free(ft__pred_input *in) {
    if (!in) return;
    free(in->ids);
    free(in->types);
    free(in->labels);
    free(in->text_copy);
    free(in->words);
    free(in->wids);
    memset(in, 0, sizeof *in);
}

int ft__pred_max_len(const ft_encoder_model *m, const ft_tokenizer *tok, int max_len) {
    const ft_encoder_config *c = ft_encoder_get_config(m);
    int pos = ft_encoder_config_max_len(c);   /* RoBERTa's positions start after padding_idx */
    int lim = max_len > 0 ? max_len : ft_tokenizer_model_max_length(tok);
    return lim > 0 && lim < pos ? lim : pos;
}

/* the text split at whitespace into in->words (pointing into in->text_copy) */
static int split_words(ft__pred_input *in, const char *text) {
    if (!(in->text_copy = strdup(text))) return ft_error(FT_ERR_NOMEM, "out of memory");
    int cap = 16;
    if (!(in->words = malloc(sizeof *in->words * (size_t)cap))) return ft_error(FT_ERR_NOMEM, "out of memory");
    char *save = NULL;
    for (char *w = strtok_r(in->text_copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (in->n_words == cap) {
            const char **nw = realloc(in->words, sizeof *nw * (size_t)(cap *= 2));
            if (!nw) return ft_error(FT_ERR_NOMEM, "out of memory");
            in->words = nw;
        }
        in->words[in->n_words++] = w;
    }
    if (in->n_words == 0) return ft_error(FT_ERR_INVALID, "token classification: the text has no words");
    return FT_OK;
}

static int prepare_tokens(ft__pred_input *in, const ft_tokenizer *tok, const char *text, int max_len) {
    FT_TRY(split_words(in, text));
    int *tags = calloc((size_t)in->n_words, sizeof *tags), *labels = NULL;
    if (!tags) return ft_error(FT_ERR_NOMEM, "out of memory");
    int rc = ft_conll_encode(tok, in->words, tags, in->n_words, max_len, &in->ids, &labels, &in->wids, &in->n);
    free(tags);
    free(labels);
    if (rc < 0) return rc;
    int kept = 0;
    for (int t = 0; t < in->n; t++) if (in->wids[t] >= 0 && in->wids[t] + 1 > kept) kept = in->wids[t] + 1;
    in->truncated = in->n_words - kept;
    return FT_OK;
}

static int prepare_masks(ft__pred_input *in, const ft_tokenizer *tok, const char *text, int max_len) {
    /* special tokens in the text ([MASK], <mask>) are parsed as such */
    FT_TRY(ft_tokenizer_encode(tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &in->ids, &in->n));
    if (in->n > max_len) { in->truncated = in->n - max_len; in->n = max_len; }
    int mask = ft_tokenizer_mask(tok), n = in->n;
    if (!(in->labels = malloc(sizeof(int) * (size_t)(n ? n : 1)))) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        in->labels[i] = mask >= 0 && in->ids[i] == mask ? mask : FT_CLS_IGNORE;
        in->n_masks += in->labels[i] != FT_CLS_IGNORE;
    }
    if (in->n_masks == 0)
        return ft_error(FT_ERR_INVALID, "mlm: the text has no mask token (%s)", mask >= 0 ? ft_tokenizer_token_str(tok, mask) : "the tokenizer has none");
    return FT_OK;
}

int ft__pred_prepare(ft__pred_input *in, const ft_encoder_model *m, ft_encoder_task task, const ft_tokenizer *tok,
                     const char *text, const char *pair, int max_len) {
    memset(in, 0, sizeof *in);
    in->task = task;
    if (!text) return ft_error(FT_ERR_INVALID, "predict: no text");
    if (pair && (task == FT_TASK_TOKEN || task == FT_TASK_MLM))
        return ft_error(FT_ERR_INVALID, "predict: a text pair is for classify / regress models, not %s", ft_encoder_task_name(task));
    int rc;
    if (task == FT_TASK_TOKEN) rc = prepare_tokens(in, tok, text, max_len);
    else if (task == FT_TASK_MLM) rc = prepare_masks(in, tok, text, max_len);
    else rc = ft_cls_encode_one(tok, text, pair, max_len, &in->ids, &in->types, &in->n, &in->truncated);
    if (rc == FT_OK && in->n <= 0) rc = ft_error(FT_ERR_INVALID, "predict: the text gives no tokens");
    if (rc == FT_OK && in->types && ft_encoder_get_config(m)->type_vocab_size <= 1) { free(in->types); in->types = NULL; }
    int unk = ft_tokenizer_unk(tok);
    for (int t = 0; rc == FT_OK && unk >= 0 && t < in->n; t++) in->n_unknown += in->ids[t] == unk;
    if (rc < 0) ft__pred_input_free(in);
    return rc;
}

static int longest(const ft__pred_input *in, int n) {
    int T = 0;
    for (int i = 0; i < n; i++) if (in[i].n > T) T = in[i].n;
    return T;
}

int ft__pred_forward(ft_encoder_model *m, const ft__pred_input *in, int n, const ft_adapter *const *adapters, int *row0) {
    if (n <= 0) return ft_error(FT_ERR_INVALID, "predict: no inputs");
    int T = longest(in, n), mlm = ft_encoder_get_task(m) == FT_TASK_MLM, padded = 0;
    size_t N = (size_t)n * (size_t)T;
    int *ids = malloc(sizeof(int) * N), *types = calloc(N, sizeof(int)), *mask = malloc(sizeof(int) * N);
    int *labels = mlm ? malloc(sizeof(int) * N) : NULL;
    int rc = ids && types && mask && (labels || !mlm) ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == FT_OK && i < n; i++) {
        padded |= in[i].n != T;
        for (int t = 0; t < T; t++) {
            size_t at = (size_t)i * T + (size_t)t;
            int real = t < in[i].n;
            ids[at] = real ? in[i].ids[t] : ft_encoder_get_config(m)->pad_token_id;
            types[at] = real && in[i].types ? in[i].types[t] : 0;
            mask[at] = real;
            if (labels) labels[at] = real && in[i].labels ? in[i].labels[t] : FT_CLS_IGNORE;
        }
    }
    if (rc == FT_OK) {
        ft_encoder_inputs ei = {0};
        ei.ids = ids;
        ei.type_ids = ft_encoder_get_config(m)->type_vocab_size > 1 ? types : NULL;
        ei.mask = padded ? mask : NULL;
        ei.labels = labels;
        ei.B = n;
        ei.T = T;
        ft_encoder_set_training(m, 0, 0);
        int any = 0;
        for (int i = 0; adapters && i < n; i++) any |= adapters[i] != NULL;
        rc = any ? ft_encoder_forward_adapters(m, &ei, adapters, NULL) : ft_encoder_forward_ex(m, &ei, NULL);
    }
    /* logit rows: one per sequence (classify / regress), per token (token-classify), per mask (mlm) */
    ft_encoder_task task = ft_encoder_get_task(m);
    for (int i = 0, r = 0; rc == FT_OK && row0 && i < n; i++) {
        row0[i] = task == FT_TASK_TOKEN ? i * T : task == FT_TASK_MLM ? r : i;
        r += in[i].n_masks;
    }
    free(ids); free(types); free(mask); free(labels);
    return rc;
}

/* softmax in double of one row */
static void softmax(double *pr, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += (pr[i] = exp((double)x[i] - mx));
    for (int i = 0; i < n; i++) pr[i] /= s;
}

static char *label_dup(const ft_encoder_model *m, const char *const *labels, int k) {
    const char *n = labels ? labels[k] : ft_encoder_label_name(m, k);
    char buf[32];
    if (!n) { snprintf(buf, sizeof buf, "LABEL_%d", k); n = buf; }
    return strdup(n);
}

static int finish_sequence(ft_prediction *p, const ft_encoder_model *m, const float *lg, int K, const char *const *labels) {
    if (p->task == FT_TASK_REGRESS) { p->value = lg[0]; return FT_OK; }
    double *pr = malloc(sizeof(double) * (size_t)(K > 0 ? K : 1));
    p->probs = malloc(sizeof(float) * (size_t)(K > 0 ? K : 1));
    p->label_names = calloc((size_t)(K > 0 ? K : 1), sizeof *p->label_names);
    p->num_labels = K;
    if (!pr || !p->probs || !p->label_names) { free(pr); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    softmax(pr, lg, K);
    p->label = 0;
    for (int k = 0; k < K; k++) {
        p->probs[k] = (float)pr[k];
        if (pr[k] > pr[p->label]) p->label = k;
        if (!(p->label_names[k] = label_dup(m, labels, k))) { free(pr); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    }
    free(pr);
    return FT_OK;
}

static int finish_tokens(ft_prediction *p, const ft__pred_input *in, const ft_encoder_model *m, const float *lg, int K,
                         const char *const *labels) {
    p->words = calloc((size_t)in->n_words, sizeof *p->words);
    p->tags = calloc((size_t)in->n_words, sizeof *p->tags);
    if (!p->words || !p->tags) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int t = 0, last = -1; t < in->n; t++) {
        if (in->wids[t] < 0 || in->wids[t] == last) continue;
        last = in->wids[t];
        int best = 0;
        for (int k = 1; k < K; k++) if (lg[(size_t)t * K + k] > lg[(size_t)t * K + best]) best = k;
        p->words[p->n_words] = strdup(in->words[in->wids[t]]);
        p->tags[p->n_words] = label_dup(m, labels, best);
        p->n_words++;
        if (!p->words[p->n_words - 1] || !p->tags[p->n_words - 1]) return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    return FT_OK;
}

static int finish_masks(ft_prediction *p, const ft__pred_input *in, const ft_tokenizer *tok, const float *lg, int V, int top_k) {
    int k = top_k > 0 ? (top_k < V ? top_k : V) : 5;
    p->n_masks = in->n_masks;
    p->top_k = k;
    size_t cnt = (size_t)p->n_masks * (size_t)k;
    double *pr = malloc(sizeof(double) * (size_t)V);
    p->tokens = calloc(cnt ? cnt : 1, sizeof *p->tokens);
    p->token_ids = malloc(sizeof(int) * (cnt ? cnt : 1));
    p->token_probs = malloc(sizeof(float) * (cnt ? cnt : 1));
    int rc = pr && p->tokens && p->token_ids && p->token_probs ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int r = 0; rc == FT_OK && r < p->n_masks; r++) {
        softmax(pr, lg + (size_t)r * V, V);
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int v = 0; v < V; v++) if (pr[v] >= 0 && (best < 0 || pr[v] > pr[best])) best = v;
            const char *s = ft_tokenizer_token_str(tok, best);
            size_t at = (size_t)r * k + (size_t)j;
            p->tokens[at] = strdup(s ? s : "");
            p->token_ids[at] = best;
            p->token_probs[at] = (float)pr[best];
            pr[best] = -1;
            if (!p->tokens[at]) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        }
    }
    free(pr);
    return rc;
}

int ft__pred_finish(ft_prediction *p, const ft__pred_input *in, const ft_encoder_model *m, const ft_tokenizer *tok,
                    const float *rows, const char *const *labels, int top_k) {
    memset(p, 0, sizeof *p);
    p->task = ft_encoder_get_task(m);
    p->truncated = in->truncated;
    int cols = ft_encoder_logit_cols(m), rc;
    if (p->task == FT_TASK_TOKEN) rc = finish_tokens(p, in, m, rows, cols, labels);
    else if (p->task == FT_TASK_MLM) rc = finish_masks(p, in, tok, rows, cols, top_k);
    else rc = finish_sequence(p, m, rows, cols, labels);
    if (rc < 0) ft_prediction_free(p);
    return rc;
}

void ft__pred_embed(const ft_encoder_model *m, const ft__pred_input *in, int n, int i, float *out) {
    int T = longest(in, n), C = ft_encoder_get_config(m)->n_embd, len = in[i].n;
    const float *h = ft_encoder_hidden(m) + (size_t)i * T * C;   /* [T, C] rows of input i */
    double ss = 0;
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int t = 0; t < len; t++) s += h[(size_t)t * C + c];
        out[c] = (float)(s / (len > 0 ? len : 1));
        ss += (double)out[c] * out[c];
    }
    double norm = sqrt(ss);
    if (norm < 1e-12) norm = 1e-12;   /* torch.nn.functional.normalize's eps */
    for (int c = 0; c < C; c++) out[c] = (float)(out[c] / norm);
}
