/* multitask.h — one encoder body, one classification head per task (`finetune train --task multi`).
 *
 * A multi-task model is an encoder (encoder.h, task classify) whose body every task shares, plus one
 * sequence-classification head per task (the family's dense layer + label projection: BERT pooler +
 * classifier, DistilBERT pre_classifier + classifier, RoBERTa classifier.dense + out_proj), each with
 * its own label count and names. ft_multitask_select(mt, t) makes task t's head the encoder's head: the
 * ordinary encoder calls (ft_encoder_forward_ex, ft_encoder_backward_scaled, ft_encoder_predict,
 * ft_enc_evaluate) then compute task t. Body gradients accumulate over the tasks of a step, so the
 * multi-task loss  L = sum_t w_t * (sum of task t's example losses) / N  is a sequence of
 * select / forward / backward_scaled(w_t / N) calls after one ft_multitask_zero_grad.
 *
 *   ft_encoder_model *m;                                     // the body + the first task's head
 *   FT_TRY(ft_encoder_load(&m, "models/all-MiniLM-L6-v2", 2, NULL));
 *   const char *names[] = {"sentiment", "topic"};
 *   int K[] = {2, 4};
 *   ft_multitask *mt;
 *   FT_TRY(ft_multitask_create(&mt, m, 2, names, K, NULL, 1234));   // mt owns m from here on
 *   ft_multitask_zero_grad(mt);
 *   ft_multitask_select(mt, 1);
 *   ft_encoder_forward_ex(m, &topic_batch, &loss);
 *   ft_encoder_backward_scaled(m, 0.5f / n);
 *   ft_param *p; int np;
 *   ft_multitask_params(mt, &p, &np);                         // body + every head: for the optimizer
 *   ft_multitask_save(mt, "out/final");
 *   ft_multitask_close(mt);                                   // closes m too
 *
 * Saved directory: an ordinary HF classifier directory for the first task (config.json, model.safetensors:
 * transformers loads it as task 0's classifier) plus heads.safetensors holding every task's head as
 * "<task>/<HF tensor name>", and config.json "finetune_tasks": [{"name", "num_labels", "labels": [...]}].
 * ft_multitask_load reads it back; ft_encoder_load on it gives the first task's classifier.
 *
 * Ownership: the multi-task model owns the encoder given to create (closed by ft_multitask_close) and
 * every head's weights and gradients. Switching heads swaps pointers; it allocates nothing after create.
 * Not thread-safe: one thread uses a multi-task model (and its encoder) at a time. */
#ifndef FINETUNE_MULTITASK_H
#define FINETUNE_MULTITASK_H
#include <stdint.h>
#include "finetune/encoder.h"
#include "finetune/predict.h"
#include "finetune/tokenizer.h"

#define FT_MULTITASK_MAX 16   /* tasks per model */

typedef struct ft_multitask ft_multitask;

/* m: a classify encoder loaded with num_labels[0] labels (its head becomes task 0's). The other tasks'
 * heads start from m's dense layer (the pretrained pooler where there is one) and a label projection drawn
 * from normal(0, initializer_range) (seeded), zero biases. label_names[t] (NULL, or [num_labels[t]],
 * entries may be NULL: "LABEL_k"). On error m is closed too. Task names: 1..63 characters of
 * [A-Za-z0-9_-], distinct. */
int  ft_multitask_create(ft_multitask **out, ft_encoder_model *m, int n_tasks, const char *const *names, const int *num_labels,
                         const char *const *const *label_names, uint64_t seed);
void ft_multitask_close(ft_multitask *mt);
/* 1 when dir/config.json lists "finetune_tasks" (a directory ft_multitask_save wrote). */
int  ft_multitask_dir_is_multitask(const char *dir);
int  ft_multitask_load(ft_multitask **out, const char *dir, const ft_backend *be);
/* Writes dir (see the top) with task 0 selected while it writes; the selection is kept. Atomic per file. */
int  ft_multitask_save(ft_multitask *mt, const char *dir);
/* Reads every weight (body and every head) back from a directory ft_multitask_save wrote (checkpoint resume). */
int  ft_multitask_load_weights(ft_multitask *mt, const char *dir);

ft_encoder_model *ft_multitask_encoder(ft_multitask *mt);   /* borrowed: computes the selected task */
int  ft_multitask_count(const ft_multitask *mt);
const char *ft_multitask_name(const ft_multitask *mt, int t);
int  ft_multitask_find(const ft_multitask *mt, const char *name);   /* index, or -1 */
int  ft_multitask_num_labels(const ft_multitask *mt, int t);
const char *ft_multitask_label_name(const ft_multitask *mt, int t, int k);
/* Makes task t's head the encoder's (FT_ERR_RANGE for a bad t). Between a forward and its backward the
 * selection must not change. */
int  ft_multitask_select(ft_multitask *mt, int t);
int  ft_multitask_selected(const ft_multitask *mt);
/* Zeroes the gradients of the body and of every head (allocating them the first time). */
int  ft_multitask_zero_grad(ft_multitask *mt);
/* Every tensor once, body then the heads task by task ("<task>/<HF name>"), data and gradients as they
 * are (gradients exist after the first ft_multitask_zero_grad, which this calls when needed). The array
 * belongs to mt and stays valid until it closes. */
int  ft_multitask_params(ft_multitask *mt, ft_param **params, int *n);

/* Every head's prediction for one text: {"tasks": {"sentiment": {"label", "probabilities"}, ...}} (each value
 * ft_prediction_json's object). The body runs once per task. Malloc'd. The selection is restored. */
int  ft_multitask_predict_json(ft_multitask *mt, const ft_tokenizer *tok, const char *text, const char *pair,
                               const ft_predict_options *o, char **json);
#endif
