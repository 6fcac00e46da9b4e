/* bert.c — the BERT family (BertModel, BertFor{SequenceClassification,TokenClassification,MaskedLM};
 * MiniLM and sentence-transformers checkpoints are BERT): config.json keys, Hugging Face tensor names,
 * position ids and head wiring (encoder_internal.h, ft__enc_family). The body and the heads are the
 * shared ones (encoder.c, head_*.c).
 *
 *   embeddings   bert.embeddings.{word,position,token_type}_embeddings, LayerNorm; positions 0..T-1
 *   block l      bert.encoder.layer.l.attention.self.{query,key,value}, attention.output.{dense,LayerNorm},
 *                intermediate.dense, output.{dense,LayerNorm}
 *   classify     bert.pooler.dense (tanh) -> classifier      token  classifier
 *   MLM          cls.predictions.transform.{dense,LayerNorm} -> word embeddings (tied) + cls.predictions.bias */
#include "models/encoder_internal.h"
#include "core/json_util.h"
#include "finetune/status.h"

#include <string.h>

/* BERT's keys beyond the common ones; RoBERTa's config is BERT's (RobertaConfig derives from BertConfig) */
int ft__bert_config(ft_encoder_config *c, const cJSON *root, const char *path) {
    c->type_vocab_size = ft__json_int(root, "type_vocab_size", 2);
    c->norm_eps = (float)ft__json_num(root, "layer_norm_eps", 1e-12);
    const char *pe = ft__json_str(root, "position_embedding_type", NULL);
    if (pe && strcmp(pe, "absolute"))
        return ft_error(FT_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (absolute)", path, pe);
    return FT_OK;
}

void ft__enc_positions_from_zero(const ft_encoder_config *c, const int *ids, int *pos, int T) {
    (void)c; (void)ids;
    for (int t = 0; t < T; t++) pos[t] = t;
}

int ft__enc_max_len_all(const ft_encoder_config *c) { return c->max_pos; }

const ft__enc_config_keys ft__bert_keys = {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                                           "hidden_dropout_prob", "classifier_dropout", "attention_probs_dropout_prob", -1.0};

const char *const ft__bert_modules[S_COUNT / 2] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                                   "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                                                   "output.dense", "output.LayerNorm"};

const ft__enc_family ft__enc_bert = {
    .arch = FT_ENC_BERT, .model_type = "bert", .hf_class = "Bert",
    .keys = &ft__bert_keys, .pad_default = 0, .config = ft__bert_config,
    .prefix = "bert.", .layers = "encoder.layer", .modules = ft__bert_modules,
    .seq_dense = "bert.pooler.dense", .seq_out = "classifier", .token_out = "classifier",
    .mlm_dense = "cls.predictions.transform.dense", .mlm_norm = "cls.predictions.transform.LayerNorm", .mlm_bias = "cls.predictions",
    .positions = ft__enc_positions_from_zero, .max_len = ft__enc_max_len_all,
    .seq_act = ACT_TANH, .seq_drop_pooled = 0, .token_hidden_dropout = 0, .mlm_act = -1,
    .lora_default = "query,value", .lora_pooler_frozen = 1,
};
