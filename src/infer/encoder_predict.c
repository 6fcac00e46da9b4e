/* encoder_predict.c — one text through an encoder, per task (predict.h). */
#include "finetune/predict.h"
#include "finetune/classify_data.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_predict_options ft_predict_default_options(void) {
    ft_predict_options o = {.max_len = 0, .top_k = 5};
    return o;
}

static void free_strs(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void ft_prediction_free(ft_prediction *p) {
    if (!p) return;
    free(p->probs);
    free_strs(p->label_names, p->num_labels);
    free_strs(p->words, p->n_words);
    free_strs(p->tags, p->n_words);
    free_strs(p->tokens, p->n_masks * p->top_k);
    free(p->token_ids);
    free(p->token_probs);
    memset(p, 0, sizeof *p);
}

/* softmax in double of one row */
static void softmax(double *pr, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += (pr[i] = exp((double)x[i] - mx));
    for (int i = 0; i < n; i++) pr[i] /= s;
}

static char *label_dup(const ft_encoder_model *m, int k) {
    const char *n = ft_encoder_label_name(m, k);
    char buf[32];
    if (!n) { snprintf(buf, sizeof buf, "LABEL_%d", k); n = buf; }
    return strdup(n);
}

static int max_len_of(const ft_encoder_model *m, const ft_tokenizer *tok, const ft_predict_options *o) {
    const ft_encoder_config *c = ft_encoder_get_config(m);
    int pos = c->max_pos - (c->arch == FT_ENC_ROBERTA ? c->pad_token_id + 1 : 0);
    int lim = o->max_len > 0 ? o->max_len : ft_tokenizer_model_max_length(tok);
    return lim > 0 && lim < pos ? lim : pos;
}

static int run(ft_encoder_model *m, const int *ids, const int *types, const int *labels, int n) {
    ft_encoder_inputs in = {0};
    in.ids = ids;
    in.type_ids = ft_encoder_get_config(m)->type_vocab_size > 1 ? types : NULL;
    in.labels = labels;
    in.B = 1;
    in.T = n;
    ft_encoder_set_training(m, 0, 0);
    return ft_encoder_forward_ex(m, &in, NULL);
}

static int predict_sequence(ft_prediction *p, ft_encoder_model *m, const ft_tokenizer *tok, const char *text, const char *pair, int max_len) {
    int *ids = NULL, *types = NULL, n = 0, cut = 0;
    FT_TRY(ft_cls_encode_one(tok, text, pair, max_len, &ids, &types, &n, &cut));
    int rc = run(m, ids, types, NULL, n);
    free(ids);
    free(types);
    if (rc < 0) return rc;
    p->truncated = cut;
    const float *lg = ft_encoder_logits(m);
    if (p->task == FT_TASK_REGRESS) { p->value = lg[0]; return FT_OK; }
    int K = ft_encoder_logit_cols(m);
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
        if (!(p->label_names[k] = label_dup(m, k))) { free(pr); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    }
    free(pr);
    return FT_OK;
}

static int predict_tokens(ft_prediction *p, ft_encoder_model *m, const ft_tokenizer *tok, const char *text, int max_len) {
    char *copy = strdup(text);
    if (!copy) return ft_error(FT_ERR_NOMEM, "out of memory");
    int cap = 16, nw = 0, rc = FT_OK;
    const char **words = malloc(sizeof *words * (size_t)cap);
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t\r\n", &save); w && words; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (nw == cap) {
            const char **nwp = realloc(words, sizeof *words * (size_t)(cap *= 2));
            if (!nwp) { free(words); words = NULL; break; }
            words = nwp;
        }
        words[nw++] = w;
    }
    int *tags = calloc((size_t)(nw ? nw : 1), sizeof *tags), *ids = NULL, *labels = NULL, *wids = NULL, n = 0;
    if (!words || !tags) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK && nw == 0) rc = ft_error(FT_ERR_INVALID, "token classification: the text has no words");
    if (rc == FT_OK) rc = ft_conll_encode(tok, words, tags, nw, max_len, &ids, &labels, &wids, &n);
    if (rc == FT_OK) rc = run(m, ids, NULL, NULL, n);
    if (rc == FT_OK) {
        const float *lg = ft_encoder_logits(m);
        int K = ft_encoder_logit_cols(m), last = -1;
        p->words = calloc((size_t)nw, sizeof *p->words);
        p->tags = calloc((size_t)nw, sizeof *p->tags);
        if (!p->words || !p->tags) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int t = 0; rc == FT_OK && t < n; t++) {
            if (wids[t] < 0 || wids[t] == last) continue;
            last = wids[t];
            int best = 0;
            for (int k = 1; k < K; k++) if (lg[(size_t)t * K + k] > lg[(size_t)t * K + best]) best = k;
            p->words[p->n_words] = strdup(words[wids[t]]);
            p->tags[p->n_words] = label_dup(m, best);
            p->n_words++;
            if (!p->words[p->n_words - 1] || !p->tags[p->n_words - 1]) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        }
        p->truncated = nw - p->n_words;
    }
    free(ids); free(labels); free(wids); free(tags); free(words); free(copy);
    return rc;
}

static int predict_masks(ft_prediction *p, ft_encoder_model *m, const ft_tokenizer *tok, const char *text, int max_len, int top_k) {
    int *ids = NULL, n = 0;
    /* special tokens in the text ([MASK], <mask>) are parsed as such */
    FT_TRY(ft_tokenizer_encode(tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &ids, &n));
    if (n > max_len) { p->truncated = n - max_len; n = max_len; }
    int mask = ft_tokenizer_mask(tok), nm = 0;
    int *types = calloc((size_t)(n ? n : 1), sizeof *types), *labels = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int rc = types && labels ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == FT_OK && i < n; i++) { labels[i] = ids[i] == mask ? ids[i] : FT_CLS_IGNORE; nm += ids[i] == mask; }
    if (rc == FT_OK && (nm == 0 || mask < 0))
        rc = ft_error(FT_ERR_INVALID, "mlm: the text has no mask token (%s)", mask >= 0 ? ft_tokenizer_token_str(tok, mask) : "the tokenizer has none");
    if (rc == FT_OK) rc = run(m, ids, types, labels, n);
    if (rc == FT_OK) {
        const float *lg = ft_encoder_logits(m);
        int V = ft_encoder_logit_cols(m), k = top_k > 0 ? (top_k < V ? top_k : V) : 5;
        p->n_masks = ft_encoder_logit_rows(m);
        p->top_k = k;
        size_t cnt = (size_t)p->n_masks * (size_t)k;
        double *pr = malloc(sizeof(double) * (size_t)V);
        p->tokens = calloc(cnt ? cnt : 1, sizeof *p->tokens);
        p->token_ids = malloc(sizeof(int) * (cnt ? cnt : 1));
        p->token_probs = malloc(sizeof(float) * (cnt ? cnt : 1));
        if (!pr || !p->tokens || !p->token_ids || !p->token_probs) rc = ft_error(FT_ERR_NOMEM, "out of memory");
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
    }
    free(labels); free(types); free(ids);
    return rc;
}

int ft_encoder_predict(ft_prediction *out, ft_encoder_model *m, const ft_tokenizer *tok, const char *text,
                       const char *pair, const ft_predict_options *o) {
    memset(out, 0, sizeof *out);
    ft_predict_options def = ft_predict_default_options();
    if (!o) o = &def;
    if (!text) return ft_error(FT_ERR_INVALID, "predict: no text");
    out->task = ft_encoder_get_task(m);
    int max_len = max_len_of(m, tok, o), rc;
    if (out->task == FT_TASK_TOKEN) rc = predict_tokens(out, m, tok, text, max_len);
    else if (out->task == FT_TASK_MLM) rc = predict_masks(out, m, tok, text, max_len, o->top_k);
    else rc = predict_sequence(out, m, tok, text, pair, max_len);
    if (rc < 0) ft_prediction_free(out);
    return rc;
}

int ft_prediction_json(const ft_prediction *p, char **out) {
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(o, "task", ft_encoder_task_name(p->task));
    if (p->task == FT_TASK_REGRESS) cJSON_AddNumberToObject(o, "value", p->value);
    else if (p->task == FT_TASK_CLASSIFY) {
        cJSON_AddStringToObject(o, "label", p->label_names[p->label]);
        cJSON *pr = cJSON_AddObjectToObject(o, "probabilities");
        for (int k = 0; k < p->num_labels; k++) cJSON_AddNumberToObject(pr, p->label_names[k], p->probs[k]);
    } else if (p->task == FT_TASK_TOKEN) {
        cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
        for (int i = 0; i < p->n_words; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "word", p->words[i]);
            cJSON_AddStringToObject(e, "tag", p->tags[i]);
            cJSON_AddItemToArray(arr, e);
        }
    } else {
        cJSON *arr = cJSON_AddArrayToObject(o, "masks");
        for (int r = 0; r < p->n_masks; r++) {
            cJSON *c = cJSON_CreateArray();
            for (int j = 0; j < p->top_k; j++) {
                size_t at = (size_t)r * p->top_k + (size_t)j;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "token", p->tokens[at]);
                cJSON_AddNumberToObject(e, "id", p->token_ids[at]);
                cJSON_AddNumberToObject(e, "probability", p->token_probs[at]);
                cJSON_AddItemToArray(c, e);
            }
            cJSON_AddItemToArray(arr, c);
        }
    }
    if (p->truncated) cJSON_AddNumberToObject(o, "truncated", p->truncated);
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}
