/* roberta.c — the RoBERTa family (RobertaModel, RobertaFor{SequenceClassification,TokenClassification,
 * MaskedLM}): BERT's config keys and block names under "roberta.", its own position ids and heads
 * (encoder_internal.h, ft__enc_family). The body and the heads are the shared ones.
 *
 *   positions    count the real (non-padding) tokens from padding_idx + 1; padding sits at padding_idx,
 *                so a sequence has max_position_embeddings - padding_idx - 1 tokens at most
 *   classify     dropout, classifier.dense (tanh), dropout, classifier.out_proj    token  classifier
 *   MLM          lm_head.{dense,layer_norm} (exact GELU) -> word embeddings (tied) + lm_head.bias */
#include "models/encoder_internal.h"

static void roberta_positions(const ft_encoder_config *c, const int *ids, int *pos, int T) {
    int pad = c->pad_token_id, run = 0;
    for (int t = 0; t < T; t++) pos[t] = ids[t] != pad ? pad + (++run) : pad;
}

static int roberta_max_len(const ft_encoder_config *c) { return c->max_pos - (c->pad_token_id + 1); }

const ft__enc_family ft__enc_roberta = {
    .arch = FT_ENC_ROBERTA, .model_type = "roberta", .hf_class = "Roberta",
    .keys = &ft__bert_keys, .pad_default = 1, .config = ft__bert_config,
    .prefix = "roberta.", .layers = "encoder.layer", .modules = ft__bert_modules,
    .seq_dense = "classifier.dense", .seq_out = "classifier.out_proj", .token_out = "classifier",
    .mlm_dense = "lm_head.dense", .mlm_norm = "lm_head.layer_norm", .mlm_bias = "lm_head",
    .positions = roberta_positions, .max_len = roberta_max_len,
    .seq_act = ACT_TANH, .seq_drop_pooled = 1, .token_hidden_dropout = 0, .mlm_act = ACT_GELU_ERF,
    .lora_default = "query,value", .lora_pooler_frozen = 0,
};
