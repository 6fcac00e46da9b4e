/* llama.c — the Llama family (Llama 2/3, Mistral, Qwen2, SmolLM, TinyLlama, llama2.c stories):
 * config.json fields, HF tensor names, and RoPE frequencies with linear / llama3 scaling. */
#include "model_internal.h"
#include "models/config_limits.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* rope settings live either at the top level (rope_theta, rope_scaling) or, in newer
 * transformers, in "rope_parameters" {rope_type, rope_theta, factor, ...}. */
static int parse_rope(ft_model_config *c, const cJSON *root, const char *path) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    double d;
    /* every rope number is a divisor or an exponent base: finite and positive (float range) */
    FT_TRY(ft__json_get_real_in(root, "rope_theta", 10000.0, 0, 1e30, FT__JSON_LO_OPEN, &d, path));
    c->rope_theta = (float)d;
    if (cJSON_IsObject(rp)) {
        FT_TRY(ft__json_get_real_in(rp, "rope_theta", c->rope_theta, 0, 1e30, FT__JSON_LO_OPEN, &d, path));
        c->rope_theta = (float)d;
    }
    const cJSON *s = cJSON_IsObject(rs) ? rs : (cJSON_IsObject(rp) ? rp : NULL);
    c->rope_scaling = FT_ROPE_NONE;
    if (!s) return FT_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "rope_type");
    if (!cJSON_IsString(type)) type = cJSON_GetObjectItemCaseSensitive(s, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "default";
    if (strcmp(t, "default") == 0) return FT_OK;
    char where[4200];
    snprintf(where, sizeof where, "%s (%s)", path, s == rs ? "rope_scaling" : "rope_parameters");
    FT_TRY(ft__json_get_real_in(s, "factor", 1.0, 0, 1e6, FT__JSON_LO_OPEN, &d, where));
    c->rope_factor = (float)d;
    if (strcmp(t, "linear") == 0) { c->rope_scaling = FT_ROPE_LINEAR; return FT_OK; }
    if (strcmp(t, "llama3") == 0) {
        c->rope_scaling = FT_ROPE_LLAMA3;
        FT_TRY(ft__json_get_real_in(s, "low_freq_factor", 1.0, 0, 1e6, FT__JSON_LO_OPEN, &d, where));
        c->rope_low_freq_factor = (float)d;
        FT_TRY(ft__json_get_real_in(s, "high_freq_factor", 4.0, 0, 1e6, FT__JSON_LO_OPEN, &d, where));
        c->rope_high_freq_factor = (float)d;
        FT_TRY(ft__json_get_int_in(s, "original_max_position_embeddings", 8192, 1, FT_MAX_POSITIONS, &c->rope_original_max_pos, where));
        /* the smoothing divides by their difference */
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor))
            return ft_error(FT_ERR_FORMAT, "%s: \"high_freq_factor\" (%g) must be greater than \"low_freq_factor\" (%g)", where,
                            (double)c->rope_high_freq_factor, (double)c->rope_low_freq_factor);
        return FT_OK;
    }
    return ft_error(FT_ERR_UNSUPPORTED, "%s: rope scaling type \"%s\" is not supported (supported: linear, llama3)", path, t);
}

int ft__llama_config_from_json(ft_model_config *c, const cJSON *root, const char *path) {
    c->arch = FT_ARCH_LLAMA;
    snprintf(c->model_type, sizeof c->model_type, "%s", ft__json_str(root, "model_type", "llama"));
    int is_qwen2 = strcmp(c->model_type, "qwen2") == 0;
    static const char *need[] = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, need[i])))
            return ft_error(FT_ERR_FORMAT, "%s: missing or non-numeric \"%s\"", path, need[i]);
    FT_TRY(ft__json_get_int_in(root, "vocab_size", 0, 1, FT_MAX_VOCAB, &c->vocab_size, path));
    FT_TRY(ft__json_get_int_in(root, "hidden_size", 0, 1, FT_MAX_WIDTH, &c->n_embd, path));
    FT_TRY(ft__json_get_int_in(root, "intermediate_size", 0, 1, FT_MAX_FFN, &c->ffn_hidden, path));
    FT_TRY(ft__json_get_int_in(root, "num_hidden_layers", 0, 1, FT_MAX_LAYERS, &c->n_layer, path));
    FT_TRY(ft__json_get_int_in(root, "num_attention_heads", 0, 1, FT_MAX_HEADS, &c->n_head, path));
    FT_TRY(ft__json_get_int_in(root, "num_key_value_heads", c->n_head, 1, FT_MAX_HEADS, &c->n_kv_head, path));
    FT_TRY(ft__json_get_int_in(root, "head_dim", c->n_embd / c->n_head, 1, FT_MAX_HEAD_DIM, &c->head_dim, path));
    if (c->n_head % c->n_kv_head != 0)
        return ft_error(FT_ERR_FORMAT, "%s: num_attention_heads (%d) must be a positive multiple of num_key_value_heads (%d)", path, c->n_head, c->n_kv_head);
    if (c->head_dim <= 0 || c->head_dim % 2)
        return ft_error(FT_ERR_FORMAT, "%s: head dimension %d must be even and positive", path, c->head_dim);
    FT_TRY(ft__json_get_int_in(root, "max_position_embeddings", 2048, 1, FT_MAX_POSITIONS, &c->max_seq_len, path));
    double d;
    FT_TRY(ft__json_get_real_in(root, "rms_norm_eps", 1e-6, 0, 1, FT__JSON_LO_OPEN | FT__JSON_HI_OPEN, &d, path));
    c->norm_eps = (float)d;
    c->tied_embeddings = ft__json_bool(root, "tie_word_embeddings", 0);
    int attention_bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "attention_bias"));
    c->qkv_bias = is_qwen2 || attention_bias;
    c->o_bias = attention_bias;
    c->mlp_bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "mlp_bias"));
    FT_TRY(ft__json_get_real_in(root, "attention_dropout", 0.0, 0, 1, FT__JSON_HI_OPEN, &d, path));
    c->attn_dropout = (float)d;
    FT_TRY(ft__json_get_real_in(root, "initializer_range", 0.02, 0, 10, FT__JSON_CLOSED, &d, path));
    c->initializer_range = (float)d;
    c->bos_token_id = ft__json_int(root, "bos_token_id", -1);
    c->eos_token_id = ft__json_int(root, "eos_token_id", -1);
    c->pad_token_id = ft__json_int(root, "pad_token_id", -1);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu / SwiGLU)", path, act->valuestring);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window")))
        return ft_error(FT_ERR_UNSUPPORTED, "%s: sliding-window attention (use_sliding_window=true) is not supported", path);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (!is_qwen2 && cJSON_IsNumber(sw) && sw->valueint < c->max_seq_len)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: sliding-window attention (sliding_window=%d < max_position_embeddings=%d) is not supported",
                        path, sw->valueint, c->max_seq_len);
    return parse_rope(c, root, path);
}

int ft__llama_config_to_json(const ft_model_config *c, cJSON *o) {
    const char *arch = strcmp(c->model_type, "qwen2") == 0 ? "Qwen2ForCausalLM"
                     : strcmp(c->model_type, "mistral") == 0 ? "MistralForCausalLM" : "LlamaForCausalLM";
    cJSON_AddItemToObject(o, "architectures", cJSON_CreateStringArray((const char *[]){arch}, 1));
    cJSON_AddStringToObject(o, "model_type", c->model_type);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->n_embd);
    cJSON_AddNumberToObject(o, "intermediate_size", c->ffn_hidden);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layer);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_head);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_head);
    if (c->head_dim * c->n_head != c->n_embd) cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq_len);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    if (c->rope_scaling != FT_ROPE_NONE) {
        cJSON *s = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(s, "rope_type", c->rope_scaling == FT_ROPE_LINEAR ? "linear" : "llama3");
        cJSON_AddNumberToObject(s, "factor", c->rope_factor);
        if (c->rope_scaling == FT_ROPE_LLAMA3) {
            cJSON_AddNumberToObject(s, "low_freq_factor", c->rope_low_freq_factor);
            cJSON_AddNumberToObject(s, "high_freq_factor", c->rope_high_freq_factor);
            cJSON_AddNumberToObject(s, "original_max_position_embeddings", c->rope_original_max_pos);
        }
    } else cJSON_AddNullToObject(o, "rope_scaling");
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
    if (strcmp(c->model_type, "qwen2") != 0) {
        cJSON_AddBoolToObject(o, "attention_bias", c->o_bias);
        cJSON_AddBoolToObject(o, "mlp_bias", c->mlp_bias);
    } else cJSON_AddBoolToObject(o, "use_sliding_window", 0);
    cJSON_AddNumberToObject(o, "attention_dropout", c->attn_dropout);
    cJSON_AddNumberToObject(o, "initializer_range", c->initializer_range);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_token_id);
    if (c->pad_token_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", c->pad_token_id);
    return FT_OK;
}

static void piece(ft_hf_piece *p, const char *name, int64_t row0, int64_t rows) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->row0 = row0; p->rows = rows; p->transpose = 0;
}

int ft__llama_hf_pieces(const ft_model_config *c, int l, int slot, ft_hf_piece p[3]) {
    char n[128];
    if (l < 0) {
        const char *s = slot == G_WTE ? "model.embed_tokens.weight" : slot == G_LNF_W ? "model.norm.weight"
                      : slot == G_LM_HEAD ? "lm_head.weight" : NULL;
        if (!s) return 0;
        piece(&p[0], s, 0, -1);
        return 1;
    }
    int64_t q = (int64_t)c->n_head * c->head_dim, kv = (int64_t)c->n_kv_head * c->head_dim, I = c->ffn_hidden;
    const char *pre = "model.layers";
    switch (slot) {
    case P_LN1_W: snprintf(n, sizeof n, "%s.%d.input_layernorm.weight", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_LN2_W: snprintf(n, sizeof n, "%s.%d.post_attention_layernorm.weight", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_ATTN_W: snprintf(n, sizeof n, "%s.%d.self_attn.o_proj.weight", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_ATTN_B: snprintf(n, sizeof n, "%s.%d.self_attn.o_proj.bias", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_PROJ_W: snprintf(n, sizeof n, "%s.%d.mlp.down_proj.weight", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_PROJ_B: snprintf(n, sizeof n, "%s.%d.mlp.down_proj.bias", pre, l); piece(&p[0], n, 0, -1); return 1;
    case P_QKV_W: case P_QKV_B: {
        const char *suf = slot == P_QKV_W ? "weight" : "bias";
        snprintf(n, sizeof n, "%s.%d.self_attn.q_proj.%s", pre, l, suf); piece(&p[0], n, 0, q);
        snprintf(n, sizeof n, "%s.%d.self_attn.k_proj.%s", pre, l, suf); piece(&p[1], n, q, kv);
        snprintf(n, sizeof n, "%s.%d.self_attn.v_proj.%s", pre, l, suf); piece(&p[2], n, q + kv, kv);
        return 3;
    }
    case P_FC_W: case P_FC_B: {
        const char *suf = slot == P_FC_W ? "weight" : "bias";
        snprintf(n, sizeof n, "%s.%d.mlp.gate_proj.%s", pre, l, suf); piece(&p[0], n, 0, I);
        snprintf(n, sizeof n, "%s.%d.mlp.up_proj.%s", pre, l, suf); piece(&p[1], n, I, I);
        return 2;
    }
    default: return 0;
    }
}

void ft__llama_rope_inv_freq(const ft_model_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* as transformers: computed in float32 */
        float expo = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf(c->rope_theta, expo);
        if (c->rope_scaling == FT_ROPE_LINEAR) f = f / c->rope_factor;
        else if (c->rope_scaling == FT_ROPE_LLAMA3) {
            float old = (float)c->rope_original_max_pos;
            float low_wl = old / c->rope_low_freq_factor, high_wl = old / c->rope_high_freq_factor;
            float wl = 2.0f * (float)M_PI / f;
            float scaled = wl > low_wl ? f / c->rope_factor : f;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float smooth = (old / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                scaled = (1.0f - smooth) * scaled / c->rope_factor + smooth * scaled;
            }
            f = scaled;
        }
        inv_freq[i] = f;
    }
}
