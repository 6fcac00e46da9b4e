/* distilbert.c — the DistilBERT family (DistilBertModel, DistilBertFor{SequenceClassification,
 * TokenClassification,MaskedLM}): config.json keys, Hugging Face tensor names and head wiring
 * (encoder_internal.h, ft__enc_family). The body and the heads are the shared ones.
 *
 *   embeddings   distilbert.embeddings.{word,position}_embeddings, LayerNorm (no token types); positions 0..T-1
 *   block l      distilbert.transformer.layer.l.attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm,
 *                ffn.{lin1,lin2}, output_layer_norm
 *   classify     pre_classifier (ReLU) -> classifier     token  classifier, dropout config.dropout
 *   MLM          vocab_transform, vocab_layer_norm -> word embeddings (tied) + vocab_projector.bias */
#include "models/encoder_internal.h"
#include "finetune/status.h"

/* no token types; LayerNorm eps fixed at 1e-12 (DistilBertConfig has no key for it) */
static int distilbert_config(ft_encoder_config *c, const cJSON *root, const char *path) {
    (void)root; (void)path;
    c->type_vocab_size = 0;
    c->norm_eps = 1e-12f;
    return FT_OK;
}

static const ft__enc_config_keys distilbert_keys = {"dim", "n_layers", "n_heads", "hidden_dim", "activation", "dropout",
                                                    "seq_classif_dropout", "attention_dropout", 0.2};

static const char *const distilbert_modules[S_COUNT / 2] = {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                                            "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"};

const ft__enc_family ft__enc_distilbert = {
    .arch = FT_ENC_DISTILBERT, .model_type = "distilbert", .hf_class = "DistilBert",
    .keys = &distilbert_keys, .pad_default = 0, .config = distilbert_config,
    .prefix = "distilbert.", .layers = "transformer.layer", .modules = distilbert_modules,
    .seq_dense = "pre_classifier", .seq_out = "classifier", .token_out = "classifier",
    .mlm_dense = "vocab_transform", .mlm_norm = "vocab_layer_norm", .mlm_bias = "vocab_projector",
    .positions = ft__enc_positions_from_zero, .max_len = ft__enc_max_len_all,
    .seq_act = ACT_RELU, .seq_drop_pooled = 0, .token_hidden_dropout = 1, .mlm_act = -1,
    .lora_default = "q_lin,v_lin", .lora_pooler_frozen = 0,
};
