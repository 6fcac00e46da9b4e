/* gguf_names.c — Hugging Face tensor names -> llama.cpp's GGUF names (gguf-py's tensor_mapping.py for
 * the families finetune loads). */
#include "io/gguf_export_internal.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *hf, *gguf; } name_pair;

/* per-block suffixes, after "model.layers.N." (Llama family) / "h.N." (GPT-2) */
static const name_pair k_llama_block[] = {
    {"input_layernorm", "attn_norm"},  {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},    {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
static const name_pair k_gpt2_block[] = {
    {"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
    {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"},
};
static const name_pair k_llama_global[] = {
    {"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"},
};
static const name_pair k_gpt2_global[] = {
    {"wte", "token_embd"}, {"wpe", "position_embd"}, {"ln_f", "output_norm"}, {"lm_head", "output"},
};

const char *ft__gguf_arch_name(const ft_model_config *c) {
    if (c->arch == FT_ARCH_GPT2) return "gpt2";
    if (strcmp(c->model_type, "qwen2") == 0) return "qwen2";
    return "llama";
}

int ft__gguf_tensor_name(ft_arch arch, const char *hf_name, char *out, size_t cap) {
    const char *s = hf_name;
    if (strncmp(s, "base_model.model.", 17) == 0) s += 17;
    int gpt2 = arch == FT_ARCH_GPT2;
    if (gpt2 && strncmp(s, "transformer.", 12) == 0) s += 12;
    const char *dot = strrchr(s, '.');
    if (!dot) return ft_error(FT_ERR_NOT_FOUND, "no GGUF name for tensor '%s'", hf_name);
    const char *suffix = dot + 1;           /* weight / bias */
    size_t stem_len = (size_t)(dot - s);
    const char *block_prefix = gpt2 ? "h." : "model.layers.";
    size_t bp = strlen(block_prefix);
    if (strncmp(s, block_prefix, bp) == 0) {
        char *end;
        long l = strtol(s + bp, &end, 10);
        if (end == s + bp || *end != '.' || l < 0) return ft_error(FT_ERR_NOT_FOUND, "no GGUF name for tensor '%s'", hf_name);
        const char *rest = end + 1;
        size_t rest_len = stem_len - (size_t)(rest - s);
        const name_pair *t = gpt2 ? k_gpt2_block : k_llama_block;
        size_t n = gpt2 ? sizeof k_gpt2_block / sizeof *t : sizeof k_llama_block / sizeof *t;
        for (size_t i = 0; i < n; i++)
            if (strlen(t[i].hf) == rest_len && strncmp(rest, t[i].hf, rest_len) == 0) {
                if ((size_t)snprintf(out, cap, "blk.%ld.%s.%s", l, t[i].gguf, suffix) >= cap)
                    return ft_error(FT_ERR_RANGE, "GGUF name of '%s' too long", hf_name);
                return FT_OK;
            }
        return ft_error(FT_ERR_NOT_FOUND, "no GGUF name for tensor '%s'", hf_name);
    }
    const name_pair *t = gpt2 ? k_gpt2_global : k_llama_global;
    size_t n = gpt2 ? sizeof k_gpt2_global / sizeof *t : sizeof k_llama_global / sizeof *t;
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].hf) == stem_len && strncmp(s, t[i].hf, stem_len) == 0) {
            if ((size_t)snprintf(out, cap, "%s.%s", t[i].gguf, suffix) >= cap)
                return ft_error(FT_ERR_RANGE, "GGUF name of '%s' too long", hf_name);
            return FT_OK;
        }
    return ft_error(FT_ERR_NOT_FOUND, "no GGUF name for tensor '%s'", hf_name);
}
