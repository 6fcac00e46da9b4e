/* encoder_predict.c — one text through an encoder, per task (predict.h; the steps are in predict_batch.c),
 * and a prediction as JSON. */
#include "finetune/predict.h"
#include "infer/predict_batch.h"
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

int ft_encoder_predict(ft_prediction *out, ft_encoder_model *m, const ft_tokenizer *tok, const char *text,
                       const char *pair, const ft_predict_options *o) {
    memset(out, 0, sizeof *out);
    ft_predict_options def = ft_predict_default_options();
    if (!o) o = &def;
    ft__pred_input in;
    FT_TRY(ft__pred_prepare(&in, m, ft_encoder_get_task(m), tok, text, pair, ft__pred_max_len(m, tok, o->max_len)));
    int row0 = 0, rc = ft__pred_forward(m, &in, 1, NULL, &row0);
    if (rc == FT_OK)
        rc = ft__pred_finish(out, &in, m, tok, ft_encoder_logits(m) + (size_t)row0 * ft_encoder_logit_cols(m), NULL, o->top_k);
    ft__pred_input_free(&in);
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
