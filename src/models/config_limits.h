/* config_limits.h — the sizes a model's config.json may ask for (internal to src/models).
 *
 * A config.json comes with a downloaded model or an uploaded adapter: untrusted input that decides how
 * much memory is allocated. Every size is read as an integer in [1, FT_MAX_*], every number that must be
 * positive or a probability is checked finite and in range (json_util.h's bounded getters: the message
 * names the file, the key, the value and the limit), and the parameter count is computed in 64 bits with
 * checked multiplication before anything is allocated. The limits are far above every published model
 * (Llama-3.1-405B: 126 layers, width 16384, FFN 53248, vocabulary 128256) and far below what would
 * overflow the index arithmetic downstream. */
#ifndef FT_MODELS_CONFIG_LIMITS_H
#define FT_MODELS_CONFIG_LIMITS_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "finetune/encoder.h"
#include "finetune/model.h"

#define FT_MAX_VOCAB     (1 << 24)   /* tokens (Gemma: 256000) */
#define FT_MAX_WIDTH     (1 << 16)   /* hidden size */
#define FT_MAX_FFN       (1 << 20)   /* intermediate size */
#define FT_MAX_LAYERS    1024
#define FT_MAX_HEADS     1024        /* attention heads, key-value heads */
#define FT_MAX_HEAD_DIM  1024
#define FT_MAX_POSITIONS (1 << 24)   /* context length / position embeddings */
#define FT_MAX_LABELS    (1 << 20)   /* classification labels */
#define FT_MAX_PARAMS    ((int64_t)1 << 40)   /* parameters of one model (4 TB as f32) */

/* Checks what the per-family parsers derive (heads divide, parameter count within FT_MAX_PARAMS in
 * checked 64-bit arithmetic) and drops token ids outside the vocabulary (bos / eos / pad set to -1 with a
 * warning: real configs carry stray ids, and an id past the embedding would be read out of bounds). */
int ft__model_config_check(ft_model_config *c, const char *path);

/* The parameters cfg lays out (weights, biases, norms, embeddings; the LM head unless tied) into *n;
 * FT_ERR_RANGE when the count overflows 64 bits or passes FT_MAX_PARAMS. */
int ft__model_config_param_count(const ft_model_config *c, int64_t *n, const char *path);

/* The parameters an encoder of config c lays out, at most (the body, and a head as large as the largest task's,
 * K = c->num_labels) into *n; FT_ERR_RANGE when the count overflows 64 bits or passes FT_MAX_PARAMS. The loader
 * compares it with the values the weight files hold before allocating anything (encoder_io.c). */
int ft__encoder_config_param_count(const ft_encoder_config *c, int64_t *n, const char *path);

/* The size and number fields of an encoder's config.json (BERT / RoBERTa / DistilBERT keys), checked
 * against the limits before the encoder parser reads them. type: the model_type. */
int ft__encoder_config_check_json(const cJSON *root, const char *type, const char *path);
#endif
