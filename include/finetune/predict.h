/* predict.h — an encoder's prediction for one text (or sentence pair), as a structure and as JSON: what
 * `finetune predict` prints and what a server returns. Nothing here exits or prints.
 *
 *   ft_prediction p;
 *   if (ft_encoder_predict(&p, m, tok, "a gorgeous film", NULL, &o) == FT_OK) {
 *       char *json; ft_prediction_json(&p, &json);   // {"label": "positive", "probabilities": {...}}
 *       ...; free(json); ft_prediction_free(&p);
 *   }
 * Per task:
 *   classify        label (argmax), probabilities [K] (softmax), with the model's label names
 *   regress         value
 *   token-classify  the text split at whitespace into words, one tag per word (its first sub-token's argmax)
 *   mlm             for each mask token of the text ([MASK] / <mask>, parsed as special), the top_k tokens
 *                   and their probabilities; no mask token is FT_ERR_INVALID */
#ifndef FINETUNE_PREDICT_H
#define FINETUNE_PREDICT_H
#include "finetune/encoder.h"
#include "finetune/tokenizer.h"

typedef struct ft_predict_options {
    int max_len;     /* truncate the input to this many tokens (<= 0: the tokenizer's limit, else the model's) */
    int top_k;       /* mlm: candidates per mask (default 5) */
} ft_predict_options;
ft_predict_options ft_predict_default_options(void);

typedef struct ft_prediction {
    ft_encoder_task task;
    int    truncated;        /* tokens cut from the input */
    /* classify */
    int    label, num_labels;
    float *probs;            /* [num_labels] */
    char **label_names;      /* [num_labels] */
    /* regress */
    float  value;
    /* token-classify */
    int    n_words;
    char **words, **tags;    /* [n_words] */
    /* mlm */
    int    n_masks, top_k;
    char **tokens;           /* [n_masks * top_k] */
    int   *token_ids;        /* [n_masks * top_k] */
    float *token_probs;      /* [n_masks * top_k] */
} ft_prediction;

int  ft_encoder_predict(ft_prediction *out, ft_encoder_model *m, const ft_tokenizer *tok, const char *text,
                        const char *pair, const ft_predict_options *o);
void ft_prediction_free(ft_prediction *p);
/* One JSON object: {"label", "probabilities": {name: p}} / {"value"} / {"tokens": [{word, tag}]} /
 * {"masks": [[{token, id, probability}, ...], ...]}, plus "truncated" when the input was cut. Malloc'd. */
int  ft_prediction_json(const ft_prediction *p, char **out);
#endif
