/* config_limits.c — bounds on what a config.json may ask for (config_limits.h). */
#include "models/config_limits.h"
#include "core/json_util.h"
#include "model_internal.h"
#include "finetune/status.h"

#include <string.h>

/* a += b * c (each factor >= 0), reporting overflow */
static int mul_add(int64_t *a, int64_t b, int64_t c) {
    int64_t p;
    return __builtin_mul_overflow(b, c, &p) || __builtin_add_overflow(*a, p, a);
}

int ft__model_config_param_count(const ft_model_config *c, int64_t *n, const char *path) {
    /* exactly what model.c's layout plans */
    int gpt2 = c->arch == FT_ARCH_GPT2;
    int64_t C = c->n_embd, V = c->vocab_size, L = c->n_layer, I = c->ffn_hidden;
    int64_t QKV = ((int64_t)c->n_head + 2 * (int64_t)c->n_kv_head) * c->head_dim, AC = (int64_t)c->n_head * c->head_dim;
    int64_t F = gpt2 ? I : 2 * I;
    int64_t layer = 0, total = 0;
    int ovf = mul_add(&layer, QKV, C) || mul_add(&layer, C, AC) || mul_add(&layer, F, C) || mul_add(&layer, C, I) ||
              mul_add(&layer, gpt2 ? 4 : 2, C) || mul_add(&layer, c->qkv_bias ? 1 : 0, QKV) || mul_add(&layer, c->o_bias ? 1 : 0, C) ||
              mul_add(&layer, c->mlp_bias ? 1 : 0, F + C);
    ovf = ovf || mul_add(&total, L, layer) || mul_add(&total, V, c->tied_embeddings ? C : 2 * C) || mul_add(&total, gpt2 ? 2 : 1, C);
    if (gpt2) ovf = ovf || mul_add(&total, c->max_seq_len, C);
    *n = total;
    if (ovf || total > FT_MAX_PARAMS)
        return ft_error(FT_ERR_RANGE, "%s: the model would have %s%lld parameters (vocabulary %d, width %d, %d layers, FFN %d, "
                        "context %d); the limit is %lld", path, ovf ? "more than " : "", ovf ? (long long)INT64_MAX : (long long)total,
                        c->vocab_size, c->n_embd, c->n_layer, c->ffn_hidden, c->max_seq_len, (long long)FT_MAX_PARAMS);
    return FT_OK;
}

int ft__encoder_config_param_count(const ft_encoder_config *c, int64_t *n, const char *path) {
    /* what encoder.c's layout plans: embeddings, L blocks (q, k, v, out with biases, two LayerNorms, the FFN),
     * and the largest head (dense [C, C] + labels [K, C], or the MLM transform + vocabulary bias) */
    int64_t C = c->n_embd, V = c->vocab_size, L = c->n_layer, I = c->ffn_hidden, K = c->num_labels > 0 ? c->num_labels : 0;
    int64_t layer = 0, total = 0, head = 0;
    int ovf = mul_add(&layer, 4 * C, C) || mul_add(&layer, 2 * I, C) || mul_add(&layer, 9, C) || mul_add(&layer, 1, I);
    ovf = ovf || mul_add(&total, L, layer) || mul_add(&total, V + c->max_pos + (c->type_vocab_size > 0 ? c->type_vocab_size : 0), C) ||
          mul_add(&total, 2, C);
    ovf = ovf || mul_add(&head, C + K, C) || mul_add(&head, 4, C) || mul_add(&head, 1, V + K) || mul_add(&total, 1, head);
    *n = total;
    if (ovf || total > FT_MAX_PARAMS)
        return ft_error(FT_ERR_RANGE, "%s: the encoder would have %s%lld parameters (vocabulary %d, width %d, %d layers, FFN %d, "
                        "%d positions, %d labels); the limit is %lld", path, ovf ? "more than " : "",
                        ovf ? (long long)INT64_MAX : (long long)total, c->vocab_size, c->n_embd, c->n_layer, c->ffn_hidden,
                        c->max_pos, c->num_labels, (long long)FT_MAX_PARAMS);
    return FT_OK;
}

static void token_id(int *id, const char *key, int vocab, const char *path) {
    if (*id < -1 || *id >= vocab) {
        FT_LOGW("%s: \"%s\" %d is outside the vocabulary of %d tokens; ignored", path, key, *id, vocab);
        *id = -1;
    }
}

int ft__model_config_check(ft_model_config *c, const char *path) {
    if (c->n_kv_head > c->n_head || c->n_head % c->n_kv_head)
        return ft_error(FT_ERR_FORMAT, "%s: %d attention heads are not a multiple of %d key-value heads", path, c->n_head, c->n_kv_head);
    if (c->head_dim <= 0 || c->head_dim > FT_MAX_HEAD_DIM || c->head_dim % 2)
        return ft_error(FT_ERR_FORMAT, "%s: head dimension %d must be even and in [2, %d]", path, c->head_dim, FT_MAX_HEAD_DIM);
    int64_t n;
    FT_TRY(ft__model_config_param_count(c, &n, path));
    token_id(&c->bos_token_id, "bos_token_id", c->vocab_size, path);
    token_id(&c->eos_token_id, "eos_token_id", c->vocab_size, path);
    token_id(&c->pad_token_id, "pad_token_id", c->vocab_size, path);
    return FT_OK;
}

typedef struct int_rule { const char *key; int lo, hi; } int_rule;
typedef struct real_rule { const char *key; double lo, hi; int open; } real_rule;

static int check_rules(const cJSON *root, const int_rule *ir, int ni, const real_rule *rr, int nr, const char *path) {
    for (int i = 0; i < ni; i++) {
        int v;
        FT_TRY(ft__json_get_int_in(root, ir[i].key, 0, ir[i].lo, ir[i].hi, &v, path));
    }
    for (int i = 0; i < nr; i++) {
        double v;
        FT_TRY(ft__json_get_real_in(root, rr[i].key, 0, rr[i].lo, rr[i].hi, rr[i].open, &v, path));
    }
    return FT_OK;
}

int ft__encoder_config_check_json(const cJSON *root, const char *type, const char *path) {
    static const int_rule bert[] = {
        {"vocab_size", 1, FT_MAX_VOCAB}, {"hidden_size", 1, FT_MAX_WIDTH}, {"num_hidden_layers", 1, FT_MAX_LAYERS},
        {"num_attention_heads", 1, FT_MAX_HEADS}, {"intermediate_size", 1, FT_MAX_FFN},
        {"max_position_embeddings", 1, FT_MAX_POSITIONS}, {"type_vocab_size", 0, 1 << 16}, {"num_labels", 1, FT_MAX_LABELS},
    };
    static const int_rule distil[] = {
        {"vocab_size", 1, FT_MAX_VOCAB}, {"dim", 1, FT_MAX_WIDTH}, {"n_layers", 1, FT_MAX_LAYERS}, {"n_heads", 1, FT_MAX_HEADS},
        {"hidden_dim", 1, FT_MAX_FFN}, {"max_position_embeddings", 1, FT_MAX_POSITIONS}, {"num_labels", 1, FT_MAX_LABELS},
    };
    static const real_rule bert_r[] = {
        {"layer_norm_eps", 0, 1, FT__JSON_LO_OPEN | FT__JSON_HI_OPEN}, {"hidden_dropout_prob", 0, 1, FT__JSON_HI_OPEN},
        {"attention_probs_dropout_prob", 0, 1, FT__JSON_HI_OPEN}, {"classifier_dropout", 0, 1, FT__JSON_HI_OPEN},
        {"initializer_range", 0, 10, 0},
    };
    static const real_rule distil_r[] = {
        {"dropout", 0, 1, FT__JSON_HI_OPEN}, {"attention_dropout", 0, 1, FT__JSON_HI_OPEN},
        {"seq_classif_dropout", 0, 1, FT__JSON_HI_OPEN}, {"initializer_range", 0, 10, 0},
    };
    int is_distil = type && !strcmp(type, "distilbert");
    if (is_distil) FT_TRY(check_rules(root, distil, sizeof distil / sizeof *distil, distil_r, sizeof distil_r / sizeof *distil_r, path));
    else FT_TRY(check_rules(root, bert, sizeof bert / sizeof *bert, bert_r, sizeof bert_r / sizeof *bert_r, path));
    /* the pad id indexes the embedding (and RoBERTa's position ids start after it) */
    int vocab = ft__json_int(root, "vocab_size", 0), pad;
    FT_TRY(ft__json_get_int_in(root, "pad_token_id", 0, 0, vocab > 0 ? vocab - 1 : 0, &pad, path));
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) > FT_MAX_LABELS)
        return ft_error(FT_ERR_FORMAT, "%s: \"id2label\" has %d labels; the limit is %d", path, cJSON_GetArraySize(id2label), FT_MAX_LABELS);
    return FT_OK;
}
