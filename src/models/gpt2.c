/* gpt2.c — the GPT-2 family (gpt2, distilgpt2, DialoGPT): config.json fields and HF tensor names.
 * HF stores GPT-2 linear weights as Conv1D, [in, out]; we keep [out, in], so they are transposed. */
#include "model_internal.h"
#include "models/config_limits.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <stdio.h>
#include <string.h>

int ft__gpt2_config_from_json(ft_model_config *c, const cJSON *root, const char *path) {
    snprintf(c->model_type, sizeof c->model_type, "gpt2");
    c->arch = FT_ARCH_GPT2;
    FT_TRY(ft__json_get_int_in(root, "vocab_size", 50257, 1, FT_MAX_VOCAB, &c->vocab_size, path));
    int n_ctx;
    FT_TRY(ft__json_get_int_in(root, "n_ctx", 1024, 1, FT_MAX_POSITIONS, &n_ctx, path));
    FT_TRY(ft__json_get_int_in(root, "n_positions", n_ctx, 1, FT_MAX_POSITIONS, &c->max_seq_len, path));
    FT_TRY(ft__json_get_int_in(root, "n_embd", 768, 1, FT_MAX_WIDTH, &c->n_embd, path));
    FT_TRY(ft__json_get_int_in(root, "n_layer", 12, 1, FT_MAX_LAYERS, &c->n_layer, path));
    FT_TRY(ft__json_get_int_in(root, "n_head", 12, 1, FT_MAX_HEADS, &c->n_head, path));
    c->n_kv_head = c->n_head;
    if (c->n_embd % c->n_head != 0)
        return ft_error(FT_ERR_FORMAT, "%s: n_embd (%d) must be a multiple of n_head (%d)", path, c->n_embd, c->n_head);
    c->head_dim = c->n_embd / c->n_head;
    FT_TRY(ft__json_get_int_in(root, "n_inner", 4 * c->n_embd < FT_MAX_FFN ? 4 * c->n_embd : FT_MAX_FFN, 1, FT_MAX_FFN, &c->ffn_hidden, path));
    double d;
    FT_TRY(ft__json_get_real_in(root, "layer_norm_epsilon", 1e-5, 0, 1, FT__JSON_LO_OPEN | FT__JSON_HI_OPEN, &d, path));
    c->norm_eps = (float)d;
    c->qkv_bias = c->o_bias = c->mlp_bias = 1;
    c->tied_embeddings = ft__json_bool(root, "tie_word_embeddings", 1);
    FT_TRY(ft__json_get_real_in(root, "resid_pdrop", 0.1, 0, 1, FT__JSON_HI_OPEN, &d, path));
    c->resid_dropout = (float)d;
    FT_TRY(ft__json_get_real_in(root, "embd_pdrop", 0.1, 0, 1, FT__JSON_HI_OPEN, &d, path));
    c->embd_dropout = (float)d;
    FT_TRY(ft__json_get_real_in(root, "attn_pdrop", 0.1, 0, 1, FT__JSON_HI_OPEN, &d, path));
    c->attn_dropout = (float)d;
    FT_TRY(ft__json_get_real_in(root, "initializer_range", 0.02, 0, 10, FT__JSON_CLOSED, &d, path));
    c->initializer_range = (float)d;
    c->bos_token_id = ft__json_int(root, "bos_token_id", -1);
    c->eos_token_id = ft__json_int(root, "eos_token_id", -1);
    c->pad_token_id = ft__json_int(root, "pad_token_id", -1);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu_new") != 0 && strcmp(act->valuestring, "gelu_pytorch_tanh") != 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: activation_function \"%s\" is not supported (only the tanh GELU: gelu_new, gelu_pytorch_tanh)", path, act->valuestring);
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(root, "scale_attn_by_inverse_layer_idx");
    if (cJSON_IsTrue(inv)) return ft_error(FT_ERR_UNSUPPORTED, "%s: scale_attn_by_inverse_layer_idx=true is not supported", path);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "scale_attn_weights");
    if (cJSON_IsFalse(sc)) return ft_error(FT_ERR_UNSUPPORTED, "%s: scale_attn_weights=false is not supported", path);
    return FT_OK;
}

int ft__gpt2_config_to_json(const ft_model_config *c, cJSON *o) {
    cJSON_AddItemToObject(o, "architectures", cJSON_CreateStringArray((const char *[]){"GPT2LMHeadModel"}, 1));
    cJSON_AddStringToObject(o, "model_type", "gpt2");
    cJSON_AddStringToObject(o, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "n_positions", c->max_seq_len);
    cJSON_AddNumberToObject(o, "n_ctx", c->max_seq_len);
    cJSON_AddNumberToObject(o, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    if (c->ffn_hidden != 4 * c->n_embd) cJSON_AddNumberToObject(o, "n_inner", c->ffn_hidden);
    else cJSON_AddNullToObject(o, "n_inner");
    cJSON_AddNumberToObject(o, "layer_norm_epsilon", c->norm_eps);
    cJSON_AddNumberToObject(o, "resid_pdrop", c->resid_dropout);
    cJSON_AddNumberToObject(o, "embd_pdrop", c->embd_dropout);
    cJSON_AddNumberToObject(o, "attn_pdrop", c->attn_dropout);
    cJSON_AddNumberToObject(o, "initializer_range", c->initializer_range);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_token_id);
    if (c->pad_token_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", c->pad_token_id);
    return FT_OK;
}

static void piece(ft_hf_piece *p, const char *name, int transpose) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->row0 = 0; p->rows = -1; p->transpose = transpose;
}

int ft__gpt2_hf_pieces(const ft_model_config *cfg, int l, int slot, const char *prefix, ft_hf_piece p[3]) {
    (void)cfg;
    char n[128];
    if (l < 0) {
        switch (slot) {
        case G_WTE: snprintf(n, sizeof n, "%swte.weight", prefix); break;
        case G_WPE: snprintf(n, sizeof n, "%swpe.weight", prefix); break;
        case G_LNF_W: snprintf(n, sizeof n, "%sln_f.weight", prefix); break;
        case G_LNF_B: snprintf(n, sizeof n, "%sln_f.bias", prefix); break;
        case G_LM_HEAD: snprintf(n, sizeof n, "lm_head.weight"); break;
        default: return 0;
        }
        piece(&p[0], n, 0);
        return 1;
    }
    static const char *names[P_LAYER_COUNT] = {
        "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
        "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    snprintf(n, sizeof n, "%sh.%d.%s", prefix, l, names[slot]);
    piece(&p[0], n, slot == P_QKV_W || slot == P_ATTN_W || slot == P_FC_W || slot == P_PROJ_W);
    return 1;
}
