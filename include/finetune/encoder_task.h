/* encoder_task.h — labelled data and evaluation for the encoder tasks (classify, regress,
 * token-classify, mlm): what `finetune train --task ...`, `finetune eval` and the server share.
 *
 *   ft_enc_data d;
 *   ft_enc_data_options o = ft_enc_data_default_options();   // text / label columns, max_len
 *   FT_TRY(ft_enc_data_load(&d, "dev.tsv", FT_TASK_CLASSIFY, tok, &o));
 *   ft_enc_eval ev;
 *   FT_TRY(ft_enc_evaluate(&ev, model, tok, &d, NULL, d.n, 32, 1234));
 *   puts(ev.json);            // {"task": "classify", "val_loss": ..., "accuracy": ..., "f1_macro": ...}
 *   ft_enc_eval_free(&ev); ft_enc_data_free(&d);
 *
 * Files: classify / regress / mlm read CSV, TSV or JSONL through classify_data.h (mlm also .txt,
 * one text a line); token-classify reads CoNLL. Regression labels are numbers (the label column
 * parsed with strtod; anything else is an error naming file and line).
 *
 * Evaluation JSON keys (also the keys of the trainer's metrics.jsonl eval lines):
 *   all      task, val_loss, examples
 *   classify accuracy, precision_macro, recall_macro, f1_macro, f1_micro, f1_weighted, ece, log_loss,
 *            roc_auc (binary; null when undefined), classification (ft_metrics_report_json: per_class,
 *            confusion_matrix, labels), calibration [{count, accuracy, confidence}] (the ECE bins)
 *   regress  mse, mae, rmse, pearson, spearman, r2
 *   token    precision, recall, f1 (entity-level micro, seqeval), token_accuracy, ner (ft_ner_report_json)
 *   mlm      perplexity, masked_accuracy (masks drawn from the seed, the same at every evaluation) */
#ifndef FINETUNE_ENCODER_TASK_H
#define FINETUNE_ENCODER_TASK_H
#include <stdint.h>
#include "finetune/classify_data.h"
#include "finetune/encoder.h"
#include "finetune/metrics.h"
#include "finetune/tokenizer.h"

typedef struct ft_enc_data_options {
    const char *text_column;   /* "text" */
    const char *pair_column;   /* NULL */
    const char *label_column;  /* "label" */
    const ft_label_map *label_map;  /* NULL: from the data; given: labels must be its names (or ids) */
    int max_len;               /* tokens per example (truncation); <= 0: the tokenizer's model_max_length */
    int header;                /* 1: the first CSV/TSV row names the columns; 0: columns are 1-based numbers */
} ft_enc_data_options;
ft_enc_data_options ft_enc_data_default_options(void);

typedef struct ft_enc_data {
    ft_encoder_task task;
    int64_t n;                 /* examples (sentences for token-classify) */
    ft_cls_dataset ds;         /* classify / regress / mlm */
    ft_cls_features f;
    ft_conll conll;            /* token-classify */
    ft_tok_features tf;
    float *targets;            /* regress: [n] */
    const ft_label_map *labels;/* classes or tags (ds.labels / conll.tag_map); empty for regress / mlm */
    int max_len;               /* longest example (tokens) */
    int64_t truncated;
} ft_enc_data;

int  ft_enc_data_load(ft_enc_data *d, const char *path, ft_encoder_task task, const ft_tokenizer *tok,
                      const ft_enc_data_options *o);
void ft_enc_data_free(ft_enc_data *d);
int  ft_enc_data_length(const ft_enc_data *d, int64_t i);   /* tokens of example i */
/* class / tag id of example i (classify: its label; others: 0) — for stratified splits */
int  ft_enc_data_label(const ft_enc_data *d, int64_t i);

/* A batch: rows idx[0..n) padded to the longest; labels as the task needs them (mlm: masked with
 * ft_mlm_mask using seed); targets [B] for regress. */
typedef struct ft_enc_batch {
    ft_cls_batch b;
    float *targets;            /* [cap_B] */
} ft_enc_batch;
int  ft_enc_batch_alloc(ft_enc_batch *eb, int B, int T);
void ft_enc_batch_free(ft_enc_batch *eb);
int  ft_enc_batch_fill(ft_enc_batch *eb, const ft_enc_data *d, const int64_t *idx, int n, const ft_tokenizer *tok,
                       int vocab_size, float mlm_probability, uint64_t seed);
/* The inputs of ft_encoder_forward_ex for a filled batch. */
ft_encoder_inputs ft_enc_batch_inputs(const ft_enc_batch *eb, const ft_encoder_model *m);

typedef struct ft_enc_eval {
    double loss;               /* mean loss */
    int64_t examples;
    double main;               /* headline metric: accuracy / f1 / mse / perplexity */
    ft_metrics_report report;  /* classify (zeroed otherwise) */
    int32_t *pred;             /* classify: the predicted class of every example of the data, [d->n] in data order
                                  (-1 for examples not evaluated); malloc'd, NULL for the other tasks */
    char *json;                /* one JSON object, malloc'd */
} ft_enc_eval;

/* Evaluates examples idx[0..n) (idx NULL: 0..n-1) in batches of B (sorted by length), training mode off.
 * mlm_probability / seed: the masks of mlm evaluation. */
int  ft_enc_evaluate(ft_enc_eval *out, ft_encoder_model *m, const ft_tokenizer *tok, const ft_enc_data *d,
                     const int64_t *idx, int64_t n, int B, float mlm_probability, uint64_t seed);
void ft_enc_eval_free(ft_enc_eval *e);
#endif
