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
 * internal text-to-ids helper (src/data/data_internal.h) already owns `ft_encoder` / `ft_encoder_free`. */
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
    float initializer_range;
} ft_encoder_config;

typedef struct ft_encoder_model ft_encoder_model;

/* Reads config.json + model.safetensors in dir. num_labels 0 = the config's (id2label / num_labels,
 * default 2). The head is re-initialised (with a warning) when the checkpoint has none or its label
 * count differs. be NULL = ft_backend_cpu(). */
int  ft_encoder_load(ft_encoder_model **out, const char *dir, int num_labels, const ft_backend *be);
int  ft_encoder_config_load(ft_encoder_config *cfg, const char *dir);
void ft_encoder_close(ft_encoder_model *m);
const ft_encoder_config *ft_encoder_get_config(const ft_encoder_model *m);
/* 1 when the classification head was freshly initialised at load. */
int  ft_encoder_head_reinitialised(const ft_encoder_model *m);

int       ft_encoder_num_params(const ft_encoder_model *m);
ft_param *ft_encoder_param(ft_encoder_model *m, int i);   /* name = the HF tensor name */
int64_t   ft_encoder_param_count(const ft_encoder_model *m);

/* Forward over ids[B*T]. type_ids[B*T] may be NULL (all 0); attention_mask[B*T] may be NULL (all 1);
 * labels[B] may be NULL (no loss), FT_IGNORE_INDEX skips a sequence. *loss = mean cross-entropy over
 * the counted labels. Logits [B, num_labels] via ft_encoder_logits (valid until the next forward). */
int ft_encoder_forward(ft_encoder_model *m, const int *ids, const int *type_ids, const int *attention_mask,
                       const int *labels, int B, int T, float *loss);
const float *ft_encoder_logits(const ft_encoder_model *m);
int  ft_encoder_zero_grad(ft_encoder_model *m);
/* Backward of the last forward (which must have had labels); gradients ACCUMULATE. */
int  ft_encoder_backward(ft_encoder_model *m);

/* Training mode applies the config's dropout (hidden and head; not the attention-probability dropout);
 * seed picks the masks: use a new one per micro-batch, the same seed gives the same masks. */
void ft_encoder_set_training(ft_encoder_model *m, int training, uint64_t seed);

/* ---- kernels the encoder adds to ops.h (scalar reference ft_ref_*, optimised ft_cpu_*) ----
 * Bidirectional multi-head attention with a key padding mask. q, k, v, out [B,T,NH*HS] (head h in
 * columns h*HS..); mask[B,T] (NULL = all real): key j of row b is seen only when mask[b,j] != 0 (a
 * row without any real token attends uniformly, as HF's additive min-mask does). att[B,NH,T,T] keeps
 * the probabilities. Scale 1/sqrt(HS). Backward ASSIGNS dq, dk, dv. */
#define FT_ENC_OPS_DECLARE(P) \
void P##enc_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const int *mask, int B, int T, int NH, int HS); \
void P##enc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v, const float *att, int B, int T, int NH, int HS); \
/* exact GELU 0.5 x (1 + erf(x / sqrt 2)) (HF "gelu"); dinp = dout * gelu'(inp), dinp may alias dout */ \
void P##gelu_erf_forward(float *out, const float *inp, size_t n); \
void P##gelu_erf_backward(float *dinp, const float *dout, const float *inp, size_t n); \
/* out = tanh(inp); dinp = dout * (1 - out^2) from the saved output (may alias dout) */ \
void P##tanh_forward(float *out, const float *inp, size_t n); \
void P##tanh_backward(float *dinp, const float *dout, const float *out, size_t n); \
/* out = max(inp, 0); dinp = dout * (inp > 0) (may alias dout) */ \
void P##relu_forward(float *out, const float *inp, size_t n); \
void P##relu_backward(float *dinp, const float *dout, const float *inp, size_t n);
FT_ENC_OPS_DECLARE(ft_ref_)
FT_ENC_OPS_DECLARE(ft_cpu_)
#endif
