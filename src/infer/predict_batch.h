/* predict_batch.h — encoder predictions in three steps (internal), shared by ft_encoder_predict (one text)
 * and the serving engine (texts of many callers in one padded forward, src/serve/engine_encoder.c):
 *
 *   ft__pred_input in[n];
 *   ft__pred_prepare(&in[i], m, tok, text_i, NULL, max_len, 1);   // tokenise (any thread: reads m and tok)
 *   int row0[n];
 *   ft__pred_forward(m, in, n, adapters, row0);                       // one padded forward
 *   ft__pred_finish(&pred_i, &in[i], m, tok, ft_encoder_logits(m) + row0[i] * cols, labels, top_k);
 *   ft__pred_embed(m, in, n, i, vec);                                 // or: mean-pooled, L2-normalised
 *   ft__pred_input_free(&in[i]);
 *
 * Per task the input holds what its post-processing needs: token-classify the words of the text (split at
 * whitespace) and each token's word; mlm the mask positions as labels (only those rows get logits). */
#ifndef FT_INFER_PREDICT_BATCH_H
#define FT_INFER_PREDICT_BATCH_H
#include "finetune/adapter.h"
#include "finetune/predict.h"

typedef struct ft__pred_input {
    ft_encoder_task task;      /* what the input was prepared for (FT_TASK_AUTO: embedding only) */
    int  *ids, *types;         /* [n] token ids, token types (types NULL: all 0) */
    int  *labels;              /* [n] mlm: the mask token at mask positions, FT_CLS_IGNORE elsewhere; else NULL */
    int   n;                   /* tokens */
    int   truncated;           /* tokens (token-classify: words) cut to fit max_len */
    int   n_unknown;           /* tokens that are the tokenizer's unknown token */
    int   n_masks;             /* mlm: mask tokens (= logit rows of this input) */
    char *text_copy;           /* token-classify: the text, cut into words in place */
    const char **words;        /* [n_words] into text_copy */
    int   n_words;
    int  *wids;                /* [n] token-classify: the word of each token, -1 on special tokens */
} ft__pred_input;

/* The token limit of an input: max_len > 0 as given (capped by the model's positions), else the
 * tokenizer's model_max_length, else the model's positions. */
int  ft__pred_max_len(const ft_encoder_model *m, const ft_tokenizer *tok, int max_len);
/* Tokenises text (pair: a second sequence, classify / regress only) for task, truncated to max_len tokens.
 * task FT_TASK_AUTO prepares for embedding (the text with special tokens, no labels). Only reads m and tok. */
int  ft__pred_prepare(ft__pred_input *in, const ft_encoder_model *m, ft_encoder_task task, const ft_tokenizer *tok,
                      const char *text, const char *pair, int max_len);
/* One forward over in[0, n) padded to the longest (pad_token_id, attention mask 0), inference mode;
 * adapters [n] (NULL, or NULL entries: the base). row0[i] (may be NULL): the first logit row of input i in
 * ft_encoder_logits (rows of ft_encoder_logit_cols(m) floats). */
int  ft__pred_forward(ft_encoder_model *m, const ft__pred_input *in, int n, const ft_adapter *const *adapters, int *row0);
/* The prediction of input in from its logit rows (classify / regress [1, K], token [n, K], mlm [n_masks, V]).
 * labels [K] (NULL: the model's id2label, else "LABEL_k"); top_k: mlm candidates per mask. */
int  ft__pred_finish(ft_prediction *p, const ft__pred_input *in, const ft_encoder_model *m, const ft_tokenizer *tok,
                     const float *rows, const char *const *labels, int top_k);
/* Sentence embedding of input i of the last ft__pred_forward: the mean of the last hidden states over its
 * real tokens, L2-normalised (sentence-transformers' Pooling(mean) + Normalize). out [C]. */
void ft__pred_embed(const ft_encoder_model *m, const ft__pred_input *in, int n, int i, float *out);
void ft__pred_input_free(ft__pred_input *in);
#endif
