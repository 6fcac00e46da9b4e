/* encoder.h — BERT-style bidirectional encoders with a sequence-classification head:
 * BERT (BertForSequenceClassification), DistilBERT (DistilBertForSequenceClassification) and
 * RoBERTa (RobertaForSequenceClassification), loaded from Hugging Face directories.
 *
 * How an encoder differs from the decoders of model.h:
 *  - attention is bidirectional: every token sees every other token of its sequence, except the
 *    padding, which attention_mask[B,T] (1 = real token, 0 = padding) hides as a key;
 *  - the blocks are post-LN: x = LN(x + attention(x)), x = LN(x + FFN(x)), with the exact (erf)
 *    GELU, and the embeddings (word + position (+ token type)) are layer-normed before block 0;
 *  - the output is one vector per sequence: the first token's hidden state ([CLS] / <s>) goes
 *    through a small head:  BERT     logits = W2 tanh(W1 h_cls + b1) + b2   (pooler, classifier)
 *                           RoBERTa  the same (classifier.dense, classifier.out_proj)
 *                           DistilBERT logits = W2 relu(W1 h_cls + b1) + b2 (pre_classifier, classifier)
 *    and the loss is the mean cross-entropy over the labelled sequences.
 *  - RoBERTa's position ids start at padding_idx + 1 and skip padding tokens.
 *
 * Like ft_model, an encoder owns one weight allocation, one gradient allocation (first
 * ft_encoder_zero_grad / backward) and one activation allocation per batch shape; a step allocates
 * nothing. Parameters keep their Hugging Face names ("bert.encoder.layer.0.attention.self.query.weight").
 * What a training writes (activations, gradients, LoRA adapters, dropout stream) is the encoder's own
 * training state: the functions below run it. More LoRA trainings over the same loaded encoder, each with its
 * own state, on one thread in turn or on several at once: ft_encoder_train_state (train_state.h).
 *
 *   ft_encoder_model *m;
 *   if (ft_encoder_load(&m, "path/to/bert_dir", 3, ft_backend_cpu()) < 0) puts(ft_last_error());
 *   float loss;
 *   ft_encoder_forward(m, ids, NULL, mask, labels, B, T, &loss);   // ids/mask [B*T], labels [B]
 *   const float *logits = ft_encoder_logits(m);                     // [B, num_labels]
 *   ft_encoder_zero_grad(m);
 *   ft_encoder_backward(m);          // d(mean loss)/d(params) into ft_encoder_param(m, i)->grad
 *   ft_encoder_close(m);
 *
 * A checkpoint without a classification head (BertModel, sentence-transformers) or with another
 * number of labels than asked for gets a freshly initialised head (normal(0, initializer_range),
 * zero biases) and a warning naming the tensors.
 *
 * Names: the type is ft_encoder_model and the destructor ft_encoder_close, because the data module's
 * internal text-to-ids helper (src/data/data_internal.h) already owns `ft_encoder` / `ft__encoder_free`. */
#ifndef FINETUNE_ENCODER_H
#define FINETUNE_ENCODER_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/backend.h"
#include "finetune/model.h"

typedef enum ft_encoder_arch { FT_ENC_BERT = 1, FT_ENC_DISTILBERT = 2, FT_ENC_ROBERTA = 3 } ft_encoder_arch;

typedef struct ft_encoder_config {
    ft_encoder_arch arch;
    char  model_type[32];     /* "bert", "distilbert", "roberta" */
    int   vocab_size;         /* V */
    int   max_pos;            /* max_position_embeddings */
    int   type_vocab_size;    /* 0 = no token-type embeddings (DistilBERT) */
    int   n_layer, n_embd, n_head, ffn_hidden;  /* L, C, NH, I */
    float norm_eps;
    int   pad_token_id;
    int   num_labels;         /* K */
    float dropout;            /* hidden dropout: embeddings, attention output, FFN output (training mode) */
    float head_dropout;       /* before the head's Linear layers (classifier_dropout / seq_classif_dropout) */
    float attn_dropout;       /* on the attention probabilities (attention_probs_dropout_prob / attention_dropout) */
    float initializer_range;
} ft_encoder_config;

typedef struct ft_encoder_model ft_encoder_model;

/* Reads config.json + model.safetensors in dir. num_labels 0 = the config's (id2label / num_labels,
 * default 2). The head is re-initialised (with a warning) when the checkpoint has none or its label
 * count differs. be NULL = ft_backend_cpu(). */
int  ft_encoder_load(ft_encoder_model **out, const char *dir, int num_labels, const ft_backend *be);
int  ft_encoder_config_load(ft_encoder_config *cfg, const char *dir);
/* The longest sequence the encoder takes: max_position_embeddings, less RoBERTa's padding_idx + 1 (its
 * positions start after the padding index); 0 for an unknown arch. */
int  ft_encoder_config_max_len(const ft_encoder_config *cfg);
void ft_encoder_close(ft_encoder_model *m);
const ft_encoder_config *ft_encoder_get_config(const ft_encoder_model *m);
/* 1 when the classification head was freshly initialised at load. */
int  ft_encoder_head_reinitialised(const ft_encoder_model *m);

int       ft_encoder_num_params(const ft_encoder_model *m);
ft_param *ft_encoder_param(ft_encoder_model *m, int i);   /* name = the HF tensor name */
int64_t   ft_encoder_param_count(const ft_encoder_model *m);

/* Forward over ids[B*T]. type_ids[B*T] may be NULL (all 0); attention_mask[B*T] may be NULL (all 1);
 * labels[B] may be NULL (no loss), FT_IGNORE_INDEX skips a sequence. *loss = mean cross-entropy over
 * the counted labels. Logits [B, num_labels] via ft_encoder_logits (valid until the next forward; MLM: until the
 * next backward, which writes the logit gradient over them). */
int ft_encoder_forward(ft_encoder_model *m, const int *ids, const int *type_ids, const int *attention_mask,
                       const int *labels, int B, int T, float *loss);
const float *ft_encoder_logits(const ft_encoder_model *m);
int  ft_encoder_zero_grad(ft_encoder_model *m);
/* Backward of the last forward (which must have had labels); gradients ACCUMULATE. */
int  ft_encoder_backward(ft_encoder_model *m);

/* Training mode applies the config's dropout: hidden, head, and on the attention probabilities
 * (BERT / RoBERTa attention_probs_dropout_prob, DistilBERT attention_dropout; default 0.1), as torch
 * does in train(); seed picks the masks: use a new one per micro-batch, the same seed gives the same
 * masks. Evaluation mode (training 0) applies none. */
void ft_encoder_set_training(ft_encoder_model *m, int training, uint64_t seed);

/* ======================= tasks, pooling, saving (finetune train --task ...) =======================
 * One encoder body, four heads (HF class names in parentheses; tensor names follow them):
 *   FT_TASK_CLASSIFY  *ForSequenceClassification: the pooled vector through the head above, K logits,
 *                     cross-entropy (optionally class-weighted as torch's CrossEntropyLoss(weight=w):
 *                     sum_i w[y_i] nll_i / sum_i w[y_i]; optional label smoothing).
 *   FT_TASK_REGRESS   the same head with K = 1 and the mean squared error (HF problem_type "regression").
 *   FT_TASK_TOKEN     *ForTokenClassification: dropout, then classifier [K, C] on every token; labels
 *                     [B*T], FT_IGNORE_INDEX (-100) skips a position; mean cross-entropy.
 *   FT_TASK_MLM       *ForMaskedLM: BERT cls.predictions.transform.{dense, LayerNorm} + decoder tied to the
 *                     word embeddings + cls.predictions.bias; DistilBERT vocab_transform, vocab_layer_norm,
 *                     vocab_projector (tied, with bias); RoBERTa lm_head.{dense, layer_norm, bias}, decoder
 *                     tied. Activation: BERT/DistilBERT the config's, RoBERTa gelu. Labels [B*T] (original
 *                     id at masked positions, -100 elsewhere). Only the labelled rows go through the
 *                     vocabulary projection: logits are [M, V] for the M labelled positions in row order.
 * Pooling (classify / regress): FT_POOL_CLS takes the first token; FT_POOL_MEAN the mean of the hidden
 * states over the real (mask != 0) tokens (sentence-transformers' mean pooling). The pooled vector then
 * goes through the same head (pooler / pre_classifier / dense, then the label projection).
 * A head missing from the checkpoint, or shaped for another label count, is freshly initialised
 * (normal(0, initializer_range), zero bias, LayerNorm 1 / 0) with a warning naming the tensors:
 *   "...: classifier.weight has 2 labels, 3 asked for: re-initialising the classification head ..." */
typedef enum ft_encoder_task { FT_TASK_AUTO = 0, FT_TASK_CLASSIFY, FT_TASK_REGRESS, FT_TASK_TOKEN, FT_TASK_MLM } ft_encoder_task;
typedef enum ft_encoder_pooling { FT_POOL_AUTO = 0, FT_POOL_CLS, FT_POOL_MEAN } ft_encoder_pooling;

typedef struct ft_encoder_options {
    ft_encoder_task    task;        /* AUTO: from config.json ("finetune_task", else architectures[0]
                                       *ForTokenClassification / *ForMaskedLM / problem_type "regression",
                                       else classify) */
    int                num_labels;  /* 0: the config's (id2label / num_labels, default 2); REGRESS: 1; MLM: unused */
    ft_encoder_pooling pooling;     /* AUTO: config.json "finetune_pooling", else CLS */
} ft_encoder_options;
ft_encoder_options ft_encoder_default_options(void);

/* ft_encoder_load(out, dir, num_labels, be) == ft_encoder_load_ex with {CLASSIFY, num_labels, AUTO}. */
int ft_encoder_load_ex(ft_encoder_model **out, const char *dir, const ft_encoder_options *o, const ft_backend *be);
ft_encoder_task    ft_encoder_get_task(const ft_encoder_model *m);
ft_encoder_pooling ft_encoder_get_pooling(const ft_encoder_model *m);
const char *ft_encoder_task_name(ft_encoder_task t);        /* "classify", "regress", "token-classify", "mlm" */
int ft_encoder_task_from_name(const char *name, ft_encoder_task *out);   /* the same names; FT_ERR_INVALID */
/* Label names from config.json id2label (NULL when the config has none or i is out of range). */
const char *ft_encoder_label_name(const ft_encoder_model *m, int i);

typedef struct ft_encoder_inputs {
    const int   *ids;        /* [B*T] */
    const int   *type_ids;   /* [B*T] or NULL (all 0) */
    const int   *mask;       /* [B*T] or NULL (all 1) */
    const int   *labels;     /* CLASSIFY [B]; TOKEN, MLM [B*T]; NULL = no loss; FT_IGNORE_INDEX skips */
    const float *targets;    /* REGRESS [B]; NULL = no loss (NaN skips a row) */
    int B, T;
} ft_encoder_inputs;
/* Forward for the model's task; *loss (may be NULL) = the mean loss over the counted labels. */
int ft_encoder_forward_ex(ft_encoder_model *m, const ft_encoder_inputs *in, float *loss);
/* The same forward where sequence b runs with LoRA adapter seq_adapters[b] (NULL = the base; adapter.h:
 * ft_encoder_adapter_load) — several fine-tuned adapters served from one base in one batch. The base
 * matmuls run once for all rows; each adapter adds its update to its sequence's rows only. The task head is
 * the model's own, except for an adapter loaded with a head of its own (modules_to_save): its sequences'
 * logits come from that head (run once more over the batch per such adapter); *loss is then NaN (it would
 * mix heads). Inference only (training mode off). */
struct ft_adapter;
int ft_encoder_forward_adapters(ft_encoder_model *m, const ft_encoder_inputs *in, const struct ft_adapter *const *seq_adapters,
                                float *loss);
/* Rows of ft_encoder_logits after the last forward: B (CLASSIFY / REGRESS), B*T (TOKEN), M (MLM);
 * columns: K, 1, K, V. */
int ft_encoder_logit_rows(const ft_encoder_model *m);
int ft_encoder_logit_cols(const ft_encoder_model *m);
const float *ft_encoder_hidden(const ft_encoder_model *m);   /* last hidden states [B, T, C] */
const float *ft_encoder_pooled(const ft_encoder_model *m);   /* CLASSIFY / REGRESS: pooled [B, C] */
/* What the mean loss of the last forward divides by: counted labels (or, with class weights, the sum
 * of their weights). For token-normalised gradient accumulation. */
double ft_encoder_loss_denominator(const ft_encoder_model *m);
/* Backward of the last forward (with labels / targets): gradients ACCUMULATE
 *   d( sum of per-item losses (weighted) ) * grad_scale;
 * ft_encoder_backward(m) == ft_encoder_backward_scaled(m, 1 / ft_encoder_loss_denominator(m)). */
int ft_encoder_backward_scaled(ft_encoder_model *m, float grad_scale);

/* CLASSIFY / TOKEN: per-class loss weights w[K] (copied; NULL = none); REGRESS / MLM: FT_ERR_INVALID. */
int  ft_encoder_set_class_weights(ft_encoder_model *m, const float *w);
/* CLASSIFY / TOKEN / MLM: label smoothing (torch's CrossEntropyLoss(label_smoothing=eps)); it is part of the
 * loss in evaluation too, as torch's loss and the HF Trainer report it. */
void ft_encoder_set_label_smoothing(ft_encoder_model *m, float eps);

/* Partial fine-tuning, as ft_model_freeze: comma-separated patterns "embeddings", "head" (everything
 * after the last block: pooler / classifier / MLM head), "layers:A-B" / "layers:A" (0-based blocks), or a
 * glob on HF names. Returns the number matched (FT_ERR_NOT_FOUND when a pattern matches nothing).
 * Call before the first zero_grad. */
int     ft_encoder_freeze(ft_encoder_model *m, const char *patterns);
int     ft_encoder_train_only(ft_encoder_model *m, const char *patterns);
int64_t ft_encoder_trainable_count(const ft_encoder_model *m);

/* Writes an HF directory that transformers loads with the matching Auto class: config.json (the source
 * config's keys, plus architectures [e.g. "BertForSequenceClassification"], num_labels, id2label /
 * label2id from label_names [K] (NULL: "LABEL_0"...), problem_type, "finetune_task",
 * "finetune_pooling") and model.safetensors (HF names; tied MLM decoder weights not duplicated).
 * Atomic per file. */
int ft_encoder_save(const ft_encoder_model *m, const char *dir, const char *const *label_names);
/* Reads every parameter back from dir/model.safetensors (same shapes; for checkpoint resume). */
int ft_encoder_load_weights(ft_encoder_model *m, const char *dir);
/* Bytes of the weights (f32 + quantized base) / activations for a B x T batch (memory plans; gradients: trainable_count * 4). */
size_t ft_encoder_weight_bytes(const ft_encoder_model *m);
size_t ft_encoder_activation_bytes(const ft_encoder_model *m, int B, int T);

/* ============================== attributions (explain.h) ==============================
 * What token attributions need from the body. The word-embedding output is the input that Integrated
 * Gradients moves (Captum's LayerIntegratedGradients on embeddings.word_embeddings):
 *   ft_encoder_forward_embeds   ft_encoder_forward_ex with wte[ids] replaced by word_embeds [B*T, C]
 *                               (NULL: the lookup); position and token-type embeddings are added as usual
 *                               (ids still give RoBERTa's positions). in->labels may be NULL.
 *   ft_encoder_backward_embeds  dword_embeds [B*T, C] (ASSIGNED) = d( sum_{r,k} dlogits[r,k] logits[r,k] ) /
 *                               d(word-embedding output) through the head and the whole body for the last
 *                               forward; classify / regress heads, training mode off, no LoRA adapters on the
 *                               model (merge them first). Parameter gradients are neither computed nor touched.
 *   ft_encoder_attention        the attention probabilities of the last forward, [L, B, NH, T, T]
 *                               (att[l,b,h,t,j]: query t, key j; 0 for padding keys), kept by every forward
 *                               for the backward anyway (no extra cost); valid until the next forward. */
int ft_encoder_forward_embeds(ft_encoder_model *m, const ft_encoder_inputs *in, const float *word_embeds, float *loss);
int ft_encoder_backward_embeds(ft_encoder_model *m, const float *dlogits, float *dword_embeds);
const float *ft_encoder_attention(const ft_encoder_model *m);

/* ============================== QLoRA: a quantized frozen base ==============================
 * Re-stores the linear weights of every block (query, key, value, attention output, FFN in / out;
 * DistilBERT q_lin k_lin v_lin out_lin lin1 lin2) as q = FT_NF4 (bitsandbytes NF4, blocks of 64,
 * double-quantized scales) or FT_Q8_ROW (int8, one absmax per row), frozen, and releases their f32
 * copies (the f32 rest moves into a new allocation). Embeddings, LayerNorms, biases and the task
 * head stay f32. Forward multiplies by the quantized weights (backend qmatmul), backward gives the
 * input gradient through them (a trainable bias still gets its gradient). Add LoRA adapters after
 * this (ft_encoder_add_lora): they sit on top exactly as on an f32 base, and the adapter saved by
 * ft_encoder_save_adapter is an ordinary PEFT adapter of the f32 base.
 * Call before LoRA and before the first zero_grad. Errors: FT_ERR_SHAPE naming the tensor when NF4
 * meets an input width that is not a multiple of 64 ("... use --quant int8"); FT_ERR_INVALID when
 * already quantized, after LoRA / gradients, or for another q.
 * On a quantized encoder ft_encoder_save, ft_encoder_load_weights and ft_encoder_merge_lora refuse
 * (FT_ERR_UNSUPPORTED): the full weights no longer exist in f32; save the adapter instead. */
int      ft_encoder_quantize_base(ft_encoder_model *m, ft_dtype q);
/* ft_encoder_load_ex with the same base quantized tensor by tensor while it loads (one f32 tensor at a time:
 * the blocks' weights never exist in f32 together, so peak memory stays near the quantized size). q FT_F32 =
 * ft_encoder_load_ex. The same errors as ft_encoder_quantize_base, before any weight is read. */
int      ft_encoder_load_quantized(ft_encoder_model **out, const char *dir, const ft_encoder_options *o,
                                   const ft_backend *be, ft_dtype q);
ft_dtype ft_encoder_base_quant(const ft_encoder_model *m);   /* FT_F32, FT_NF4 or FT_Q8_ROW */

#endif
