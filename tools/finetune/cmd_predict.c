/* cmd_predict.c — `finetune predict`: an encoder's predictions for texts given on the command line
 * or read from stdin (one a line): the label and every class probability (classify), the value
 * (regress), a tag per word (token-classify), or the top tokens for each mask (mlm). */
#include "cli.h"
#include "finetune/classify_data.h"
#include "finetune/encoder.h"
#include "finetune/lora.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct predictor {
    ft_encoder_model *m;
    ft_tokenizer *tok;
    int max_len, top_k, json;
} predictor;

static void softmax(double *p, const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += (p[i] = exp((double)x[i] - mx));
    for (int i = 0; i < n; i++) p[i] /= s;
}

static const char *label_name(const ft_encoder_model *m, int k, char *buf, size_t cap) {
    const char *n = ft_encoder_label_name(m, k);
    if (n) return n;
    snprintf(buf, cap, "LABEL_%d", k);
    return buf;
}

static int forward(predictor *p, const int *ids, const int *types, int n, float *loss) {
    ft_encoder_inputs in = {0};
    in.ids = ids;
    in.type_ids = ft_encoder_get_config(p->m)->type_vocab_size > 1 ? types : NULL;
    in.B = 1;
    in.T = n;
    return ft_encoder_forward_ex(p->m, &in, loss);
}

static int predict_sequence(predictor *p, const char *text, const char *pair, cJSON *o) {
    int *ids = NULL, *types = NULL, n = 0, cut = 0;
    FT_TRY(ft_cls_encode_one(p->tok, text, pair, p->max_len, &ids, &types, &n, &cut));
    int rc = forward(p, ids, types, n, NULL);
    free(ids);
    free(types);
    if (rc < 0) return rc;
    const float *lg = ft_encoder_logits(p->m);
    if (ft_encoder_get_task(p->m) == FT_TASK_REGRESS) {
        cJSON_AddNumberToObject(o, "value", lg[0]);
        if (!p->json) printf("%.6g\n", lg[0]);
        return FT_OK;
    }
    int K = ft_encoder_logit_cols(p->m);
    if (K < 1) return ft_error(FT_ERR_INVALID, "predict: the model has no classes");
    double *pr = malloc(sizeof(double) * (size_t)K);
    int *ord = malloc(sizeof(int) * (size_t)K);
    if (!pr || !ord) { free(pr); free(ord); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    softmax(pr, lg, K);
    for (int k = 0; k < K; k++) ord[k] = k;
    for (int i = 1; i < K; i++) for (int j = i; j > 0 && pr[ord[j]] > pr[ord[j - 1]]; j--) { int x = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = x; }
    char buf[32];
    cJSON_AddStringToObject(o, "label", label_name(p->m, ord[0], buf, sizeof buf));
    cJSON *probs = cJSON_AddObjectToObject(o, "probabilities");
    for (int k = 0; k < K; k++) cJSON_AddNumberToObject(probs, label_name(p->m, k, buf, sizeof buf), pr[k]);
    if (!p->json) {
        printf("%s", label_name(p->m, ord[0], buf, sizeof buf));
        for (int i = 0; i < K && i < (p->top_k > 0 ? p->top_k : K); i++) printf("\t%s=%.4f", label_name(p->m, ord[i], buf, sizeof buf), pr[ord[i]]);
        printf("%s\n", cut ? "\t(truncated)" : "");
    }
    free(pr);
    free(ord);
    return FT_OK;
}

/* whitespace-separated words, each tagged from its first sub-token */
static int predict_tokens(predictor *p, const char *text, cJSON *o) {
    char *copy = strdup(text);
    if (!copy) return ft_error(FT_ERR_NOMEM, "out of memory");
    int cap = 16, nw = 0;
    const char **words = malloc(sizeof *words * (size_t)cap);
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t\r\n", &save); w && words; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (nw == cap) { cap *= 2; const char **nwp = realloc(words, sizeof *words * (size_t)cap); if (!nwp) { free(words); words = NULL; break; } words = nwp; }
        words[nw++] = w;
    }
    int *tags = calloc((size_t)(nw ? nw : 1), sizeof *tags), *ids = NULL, *labels = NULL, *wids = NULL, n = 0;
    int rc = words && tags ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) rc = ft_conll_encode(p->tok, words, tags, nw, p->max_len, &ids, &labels, &wids, &n);
    if (rc == FT_OK) rc = forward(p, ids, NULL, n, NULL);
    if (rc == FT_OK) {
        const float *lg = ft_encoder_logits(p->m);
        int K = ft_encoder_logit_cols(p->m);
        cJSON *arr = cJSON_AddArrayToObject(o, "tokens");
        int last = -1;
        char buf[32];
        for (int t = 0; t < n; t++) {
            if (wids[t] < 0 || wids[t] == last) continue;
            last = wids[t];
            int best = 0;
            for (int k = 1; k < K; k++) if (lg[(size_t)t * K + k] > lg[(size_t)t * K + best]) best = k;
            const char *tag = label_name(p->m, best, buf, sizeof buf);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "word", words[wids[t]]);
            cJSON_AddStringToObject(e, "tag", tag);
            cJSON_AddItemToArray(arr, e);
            if (!p->json) printf("%s%s/%s", last ? " " : "", words[wids[t]], tag);
        }
        if (!p->json) putchar('\n');
    }
    free(ids); free(labels); free(wids); free(tags); free(words); free(copy);
    return rc;
}

/* the top-k tokens at every mask token of the text */
static int predict_masks(predictor *p, const char *text, cJSON *o) {
    int *ids = NULL, *types = NULL, n = 0;
    /* special tokens in the text ([MASK], <mask>) are parsed as such */
    FT_TRY(ft_tokenizer_encode(p->tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &ids, &n));
    if (p->max_len > 0 && n > p->max_len) n = p->max_len;
    types = calloc((size_t)(n ? n : 1), sizeof *types);
    if (!types) { free(ids); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    int mask = ft_tokenizer_mask(p->tok);
    int *labels = malloc(sizeof(int) * (size_t)n), nm = 0;
    int rc = labels ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; labels && i < n; i++) { labels[i] = ids[i] == mask ? ids[i] : FT_CLS_IGNORE; nm += ids[i] == mask; }
    if (rc == FT_OK && nm == 0) rc = ft_error(FT_ERR_INVALID, "mlm: the text has no mask token (%s)", mask >= 0 ? ft_tokenizer_token_str(p->tok, mask) : "none");
    if (rc == FT_OK) {
        ft_encoder_inputs in = {0};
        in.ids = ids;
        in.type_ids = ft_encoder_get_config(p->m)->type_vocab_size > 1 ? types : NULL;
        in.labels = labels;
        in.B = 1;
        in.T = n;
        rc = ft_encoder_forward_ex(p->m, &in, NULL);
    }
    if (rc == FT_OK) {
        const float *lg = ft_encoder_logits(p->m);
        int V = ft_encoder_logit_cols(p->m), k = p->top_k > 0 ? p->top_k : 5;
        double *pr = malloc(sizeof(double) * (size_t)V);
        if (!pr) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        cJSON *arr = cJSON_AddArrayToObject(o, "masks");
        for (int r = 0; pr && r < ft_encoder_logit_rows(p->m); r++) {
            softmax(pr, lg + (size_t)r * V, V);
            cJSON *cands = cJSON_CreateArray();
            if (!p->json) printf("mask %d:", r + 1);
            for (int j = 0; j < k && j < V; j++) {
                int best = -1;
                for (int v = 0; v < V; v++) if (pr[v] >= 0 && (best < 0 || pr[v] > pr[best])) best = v;
                const char *s = ft_tokenizer_token_str(p->tok, best);
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "token", s ? s : "");
                cJSON_AddNumberToObject(e, "id", best);
                cJSON_AddNumberToObject(e, "probability", pr[best]);
                cJSON_AddItemToArray(cands, e);
                if (!p->json) printf("  %s %.4f", s ? s : "?", pr[best]);
                pr[best] = -1;
            }
            if (!p->json) putchar('\n');
            cJSON_AddItemToArray(arr, cands);
        }
        free(pr);
    }
    free(labels); free(ids); free(types);
    return rc;
}

static int predict_one(predictor *p, const char *text, const char *pair) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", text);
    if (pair) cJSON_AddStringToObject(o, "pair", pair);
    ft_encoder_task task = ft_encoder_get_task(p->m);
    int rc = task == FT_TASK_TOKEN ? predict_tokens(p, text, o) : task == FT_TASK_MLM ? predict_masks(p, text, o)
           : predict_sequence(p, text, pair, o);
    if (rc == FT_OK && p->json) {
        char *s = cJSON_PrintUnformatted(o);
        if (s) puts(s);
        free(s);
    }
    cJSON_Delete(o);
    fflush(stdout);
    return rc;
}

int ft_cmd_predict(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "a fine-tuned encoder directory (e.g. RUN/best or RUN/final)", NULL},
        {"text", 1, "the text (default: every line of stdin)", NULL},
        {"pair", 1, "second sentence of a pair (with --text); stdin lines may hold 'A<TAB>B' with --pairs", NULL},
        {"pairs", 0, "stdin lines are sentence pairs separated by a tab", NULL},
        {"task", 1, "override the model's task: classify, regress, token-classify, mlm", NULL},
        {"seq-len", 1, "truncate inputs to this many tokens (default: the tokenizer's limit)", NULL},
        {"top-k", 1, "classes (classify) or tokens (mlm, default 5) to print", NULL},
        {"json", 0, "one JSON object per text: {text, label, probabilities} / {value} / {tokens} / {masks}", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune predict --model DIR [--text TEXT [--pair TEXT]] [--json]   (or texts on stdin, one a line)");
    if (prc) return prc == 1 ? 0 : prc;
    const char *dir = ft_opt_str(opts, "model", NULL);
    if (!dir) { fprintf(stderr, "finetune predict: --model DIR is required (a directory written by finetune train --task ...)\n"); return 2; }
    long seq_len, top_k, threads;
    if (ft_opt_int(opts, "seq-len", 0, &seq_len) || ft_opt_int(opts, "top-k", 0, &top_k) || ft_opt_int(opts, "threads", 0, &threads)) return 2;
    if (threads > 0) ft_set_threads((int)threads);
    predictor p = {0};
    p.max_len = (int)seq_len;
    p.top_k = (int)top_k;
    p.json = ft_opt_flag(opts, "json");
    ft_encoder_options eo = ft_encoder_default_options();
    int rc = FT_OK;
    const char *task = ft_opt_str(opts, "task", NULL);
    if (task) rc = ft_encoder_task_from_name(task, &eo.task);
    if (rc == FT_OK) rc = ft_tokenizer_load(&p.tok, dir);
    if (rc == FT_OK) rc = (ft_encoder_dir_is_adapter(dir) ? ft_encoder_load_with_adapter(&p.m, dir, &eo, ft_backend_cpu()) : ft_encoder_load_ex(&p.m, dir, &eo, ft_backend_cpu()));
    if (rc == FT_OK && p.max_len <= 0) p.max_len = ft_tokenizer_model_max_length(p.tok);
    int status = 0;
    if (rc < 0) status = ft_cli_fail("predict", rc);
    else if (ft_opt_str(opts, "text", NULL)) {
        if (predict_one(&p, ft_opt_str(opts, "text", NULL), ft_opt_str(opts, "pair", NULL)) < 0) status = ft_cli_fail("predict", FT_ERR_INVALID);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long ln = 0;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            ln++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            char *pair = NULL;
            if (ft_opt_flag(opts, "pairs")) {
                pair = strchr(line, '\t');
                if (!pair) { fprintf(stderr, "finetune predict: stdin line %ld: expected 'A<TAB>B' (--pairs)\n", ln); status = 1; continue; }
                *pair++ = 0;
            }
            if (predict_one(&p, line, pair) < 0) { fprintf(stderr, "finetune predict: stdin line %ld: %s\n", ln, ft_last_error()); status = 1; }
        }
        free(line);
    }
    ft_encoder_close(p.m);
    ft_tokenizer_free(p.tok);
    return status;
}
