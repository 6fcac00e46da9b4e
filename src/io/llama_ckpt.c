/* llama_ckpt.c — the in-memory Llama checkpoint shared by the llama2.c and GGUF importers:
 * one allocation for all weights, named pointers into it, and the rope row permutation. */
#include "io/llama_ckpt_internal.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft__llama_ckpt_check_dims(const ft_llama_ckpt *ck, const char *path) {
    const int64_t lim = 1 << 20;
    if (ck->dim <= 0 || ck->dim > lim || ck->hidden_dim <= 0 || ck->hidden_dim > 8 * lim ||
        ck->n_layers <= 0 || ck->n_layers > 4096 || ck->n_heads <= 0 || ck->n_heads > ck->dim ||
        ck->n_kv_heads <= 0 || ck->n_kv_heads > ck->n_heads || ck->vocab_size <= 0 || ck->vocab_size > 16 * lim ||
        ck->seq_len <= 0 || ck->seq_len > 16 * lim)
        return ft_error(FT_ERR_FORMAT, "%s: absurd model dimensions: dim=%d hidden_dim=%d n_layers=%d n_heads=%d "
                        "n_kv_heads=%d vocab_size=%d seq_len=%d", path, ck->dim, ck->hidden_dim, ck->n_layers,
                        ck->n_heads, ck->n_kv_heads, ck->vocab_size, ck->seq_len);
    if (ck->dim % ck->n_heads != 0 || (ck->dim / ck->n_heads) % 2 != 0)
        return ft_error(FT_ERR_FORMAT, "%s: dim %d is not n_heads %d times an even head size", path, ck->dim, ck->n_heads);
    if (ck->n_heads % ck->n_kv_heads != 0)
        return ft_error(FT_ERR_FORMAT, "%s: n_heads %d is not a multiple of n_kv_heads %d", path, ck->n_heads, ck->n_kv_heads);
    return FT_OK;
}

uint64_t ft__llama_ckpt_weight_floats(const ft_llama_ckpt *ck, int with_cls) {
    uint64_t C = (uint64_t)ck->dim, H = (uint64_t)ck->hidden_dim, L = (uint64_t)ck->n_layers, V = (uint64_t)ck->vocab_size;
    uint64_t KV = C / (uint64_t)ck->n_heads * (uint64_t)ck->n_kv_heads;
    uint64_t n = V * C                      /* token_embedding */
               + L * C * 2                  /* rms_att, rms_ffn */
               + L * (C * C * 2 + KV * C * 2) /* wq, wo, wk, wv */
               + L * H * C * 3              /* w1, w2, w3 */
               + C;                         /* rms_final */
    if (with_cls) n += V * C;
    return n;
}

int ft__llama_ckpt_alloc(ft_llama_ckpt *ck, const char *path) {
    uint64_t n = ft__llama_ckpt_weight_floats(ck, !ck->tied);
    if (n > SIZE_MAX / sizeof(float)) return ft_error(FT_ERR_NOMEM, "%s: model too large (%llu floats)", path, (unsigned long long)n);
    ck->mem = malloc((size_t)n * sizeof(float));
    if (!ck->mem) return ft_error(FT_ERR_NOMEM, "%s: cannot allocate %llu bytes for the weights", path, (unsigned long long)n * 4);
    size_t C = (size_t)ck->dim, H = (size_t)ck->hidden_dim, L = (size_t)ck->n_layers, V = (size_t)ck->vocab_size;
    size_t KV = C / (size_t)ck->n_heads * (size_t)ck->n_kv_heads;
    float *p = ck->mem;
    ck->token_embedding = p; p += V * C;
    ck->rms_att = p;         p += L * C;
    ck->wq = p;              p += L * C * C;
    ck->wk = p;              p += L * KV * C;
    ck->wv = p;              p += L * KV * C;
    ck->wo = p;              p += L * C * C;
    ck->rms_ffn = p;         p += L * C;
    ck->w1 = p;              p += L * H * C;
    ck->w2 = p;              p += L * C * H;
    ck->w3 = p;              p += L * H * C;
    ck->rms_final = p;       p += C;
    if (ck->tied) ck->wcls = ck->token_embedding;
    else { ck->wcls = p; p += V * C; }
    return FT_OK;
}

void ft_llama_ckpt_free(ft_llama_ckpt *ck) {
    if (!ck) return;
    free(ck->mem);
    if (ck->tokens) for (int i = 0; i < ck->n_tokens; i++) free(ck->tokens[i]);
    free(ck->tokens);
    free(ck->scores);
    free(ck->token_types);
    memset(ck, 0, sizeof *ck);
}

int64_t ft_llama_ckpt_param_count(const ft_llama_ckpt *ck) {
    return (int64_t)ft__llama_ckpt_weight_floats(ck, !ck->tied);
}

void ft_rope_interleaved_to_half(float *dst, const float *src, int n_heads, int head_dim, int cols) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int r = 0; r < 2; r++)
                memcpy(dst + ((size_t)h * head_dim + (size_t)r * half + i) * cols,
                       src + ((size_t)h * head_dim + 2 * (size_t)i + r) * cols, (size_t)cols * sizeof(float));
}
