/* gguf_llama.c — read a GGUF "llama" model into an ft_llama_ckpt.
 *
 * Metadata: llama.{embedding_length, feed_forward_length, block_count, attention.head_count,
 * attention.head_count_kv, context_length, attention.layer_norm_rms_epsilon, rope.freq_base,
 * rope.dimension_count}; tokenizer.ggml.{model, tokens, scores, token_type, bos_token_id,
 * eos_token_id, unknown_token_id}.
 * Tensors (ne[] innermost first, so [out, in] matrices read as ne = (in, out)):
 *   token_embd.weight (C, V), output_norm.weight (C), output.weight (C, V) (absent => tied),
 *   blk.N.{attn_norm (C), attn_q (C, C), attn_k (C, KV), attn_v (C, KV), attn_output (C, C),
 *          ffn_norm (C), ffn_gate (C, H), ffn_up (C, H), ffn_down (H, C)}.weight
 * llama.cpp keeps q/k rows in the interleaved rope layout, the same as llama2.c, so the weights
 * land in ft_llama_ckpt unchanged. */
#include "io/llama_ckpt_internal.h"
#include "finetune/ggml_quant.h"
#include "finetune/status.h"
#include "tokenizer/tokenizer_impl.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_dim(const ft_gguf *g, const char *key, int *out) {
    int64_t v;
    FT_TRY(ft_gguf_get_int(g, key, &v));
    if (v <= 0 || v > INT32_MAX)
        return ft_error(FT_ERR_FORMAT, "%s: metadata key '%s' = %lld is out of range", ft_gguf_path(g), key, (long long)v);
    *out = (int)v;
    return FT_OK;
}

/* Checks (dst == NULL) or reads a tensor: a per-layer "blk.<l>.<what>.weight" when l >= 0. */
static int tensor(const ft_gguf *g, int l, const char *what, int64_t ne0, int64_t ne1, float *dst) {
    char name[128];
    if (l >= 0) snprintf(name, sizeof name, "blk.%d.%s.weight", l, what);
    else snprintf(name, sizeof name, "%s", what);
    int64_t ne[2] = {ne0, ne1};
    int nd = ne1 > 0 ? 2 : 1;
    if (dst) return ft_gguf_read_f32(g, name, ne, nd, dst);
    const ft_gguf_tensor *t = ft_gguf_find_tensor(g, name);
    if (!t) return ft_error(FT_ERR_NOT_FOUND, "%s: missing tensor '%s'", ft_gguf_path(g), name);
    if (t->n_dims != nd || t->ne[0] != ne0 || (nd == 2 && t->ne[1] != ne1))
        return ft_gguf_read_f32(g, name, ne, nd, NULL);   /* reports the shape mismatch (reads nothing) */
    if (t->type != FT_GGML_F32 && t->type != FT_GGML_F16 && t->type != FT_GGML_BF16 && !ft_ggml_type_supported((int)t->type))
        return ft_gguf_read_f32(g, name, ne, nd, NULL);   /* reports the unsupported type (reads nothing) */
    return FT_OK;
}

/* All the model's tensors, checked (dry) before anything is allocated, then read. */
static int model_tensors(const ft_gguf *g, ft_llama_ckpt *ck, int dry) {
    int64_t C = ck->dim, H = ck->hidden_dim, V = ck->vocab_size;
    int64_t KV = C / ck->n_heads * ck->n_kv_heads;
#define DST(p) (dry ? NULL : (p))
    FT_TRY(tensor(g, -1, "token_embd.weight", C, V, DST(ck->token_embedding)));
    FT_TRY(tensor(g, -1, "output_norm.weight", C, 0, DST(ck->rms_final)));
    if (!ck->tied) FT_TRY(tensor(g, -1, "output.weight", C, V, DST(ck->wcls)));
    for (int l = 0; l < ck->n_layers; l++) {
        FT_TRY(tensor(g, l, "attn_norm", C, 0, DST(ck->rms_att + l * C)));
        FT_TRY(tensor(g, l, "attn_q", C, C, DST(ck->wq + l * C * C)));
        FT_TRY(tensor(g, l, "attn_k", C, KV, DST(ck->wk + l * KV * C)));
        FT_TRY(tensor(g, l, "attn_v", C, KV, DST(ck->wv + l * KV * C)));
        FT_TRY(tensor(g, l, "attn_output", C, C, DST(ck->wo + l * C * C)));
        FT_TRY(tensor(g, l, "ffn_norm", C, 0, DST(ck->rms_ffn + l * C)));
        FT_TRY(tensor(g, l, "ffn_gate", C, H, DST(ck->w1 + l * H * C)));
        FT_TRY(tensor(g, l, "ffn_down", H, C, DST(ck->w2 + l * C * H)));
        FT_TRY(tensor(g, l, "ffn_up", C, H, DST(ck->w3 + l * H * C)));
    }
#undef DST
    return FT_OK;
}

static int read_vocab(ft_llama_ckpt *ck, const ft_gguf *g) {
    const char *path = ft_gguf_path(g);
    const ft_gguf_kv *model = ft_gguf_find_kv(g, "tokenizer.ggml.model");
    if (!model) return FT_OK;   /* no vocabulary: the caller must pass a tokenizer */
    if (model->type != FT_GGUF_STRING || strcmp(model->str, "llama") != 0) {
        FT_LOGW("%s: tokenizer.ggml.model is '%s', not 'llama' (SentencePiece); pass a tokenizer explicitly",
                path, model->type == FT_GGUF_STRING ? model->str : "?");
        return FT_OK;
    }
    const char **toks = NULL;
    int64_t n = 0, ns = 0, nt = 0;
    FT_TRY(ft_gguf_get_str_array(g, "tokenizer.ggml.tokens", &toks, &n));
    int rc = FT_OK;
    if (n <= 0 || n > INT32_MAX) { rc = ft_error(FT_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %lld entries", path, (long long)n); goto done; }
    ck->n_tokens = (int)n;
    ck->tokens = calloc((size_t)n, sizeof *ck->tokens);
    if (!ck->tokens) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (int64_t i = 0; i < n; i++) {
        ck->tokens[i] = strdup(toks[i]);
        if (!ck->tokens[i]) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
    }
    if (ft_gguf_find_kv(g, "tokenizer.ggml.scores")) {
        if ((rc = ft_gguf_get_f32_array(g, "tokenizer.ggml.scores", &ck->scores, &ns)) < 0) goto done;
        if (ns != n) { rc = ft_error(FT_ERR_FORMAT, "%s: %lld tokenizer scores for %lld tokens", path, (long long)ns, (long long)n); goto done; }
    } else {
        ck->scores = calloc((size_t)n, sizeof *ck->scores);
        if (!ck->scores) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
    }
    if (ft_gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if ((rc = ft_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &ck->token_types, &nt)) < 0) goto done;
        if (nt != n) { rc = ft_error(FT_ERR_FORMAT, "%s: %lld token types for %lld tokens", path, (long long)nt, (long long)n); goto done; }
    } else {
        ck->token_types = malloc((size_t)n * sizeof *ck->token_types);
        if (!ck->token_types) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto done; }
        for (int64_t i = 0; i < n; i++) ck->token_types[i] = 1;
    }
    const char *id_keys[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"};
    int *ids[3] = {&ck->bos_id, &ck->eos_id, &ck->unk_id};
    for (int k = 0; k < 3; k++) {
        int64_t v;
        if ((rc = ft_gguf_get_int_opt(g, id_keys[k], -1, &v)) < 0) goto done;
        *ids[k] = (v >= 0 && v < n) ? (int)v : -1;
    }
done:
    free(toks);
    return rc;
}

int ft_gguf_load_llama(ft_llama_ckpt *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    ck->bos_id = ck->eos_id = ck->unk_id = -1;
    ft_gguf *g;
    FT_TRY(ft_gguf_open(&g, path));
    int rc;
    const char *arch;
    if ((rc = ft_gguf_get_str(g, "general.architecture", &arch)) < 0) goto done;
    if (strcmp(arch, "llama") != 0) {
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: unknown architecture '%s' (general.architecture); only 'llama' models can be converted",
                      path, arch);
        goto done;
    }
    snprintf(ck->format, sizeof ck->format, "gguf");
    if ((rc = get_dim(g, "llama.embedding_length", &ck->dim)) < 0 ||
        (rc = get_dim(g, "llama.feed_forward_length", &ck->hidden_dim)) < 0 ||
        (rc = get_dim(g, "llama.block_count", &ck->n_layers)) < 0 ||
        (rc = get_dim(g, "llama.attention.head_count", &ck->n_heads)) < 0 ||
        (rc = get_dim(g, "llama.context_length", &ck->seq_len)) < 0)
        goto done;
    ck->n_kv_heads = ck->n_heads;
    if (ft_gguf_find_kv(g, "llama.attention.head_count_kv") &&
        (rc = get_dim(g, "llama.attention.head_count_kv", &ck->n_kv_heads)) < 0)
        goto done;
    double eps, theta;
    if ((rc = ft_gguf_get_float_opt(g, "llama.attention.layer_norm_rms_epsilon", 1e-5, &eps)) < 0 ||
        (rc = ft_gguf_get_float_opt(g, "llama.rope.freq_base", 10000.0, &theta)) < 0)
        goto done;
    if (!(eps > 0 && eps < 1) || !(theta > 0 && theta < 1e12)) {
        rc = ft_error(FT_ERR_FORMAT, "%s: implausible llama.attention.layer_norm_rms_epsilon %g or llama.rope.freq_base %g",
                      path, eps, theta);
        goto done;
    }
    ck->norm_eps = (float)eps;
    ck->rope_theta = (float)theta;
    if (ft_gguf_find_kv(g, "llama.rope.scaling.type")) {
        const char *st = NULL;
        ft_gguf_get_str(g, "llama.rope.scaling.type", &st);
        if (st && strcmp(st, "none") != 0) {
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: rope scaling '%s' (llama.rope.scaling.type) is not supported by the converter", path, st);
            goto done;
        }
    }

    const ft_gguf_tensor *emb = ft_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) { rc = ft_error(FT_ERR_NOT_FOUND, "%s: missing tensor 'token_embd.weight'", path); goto done; }
    if (emb->n_dims != 2 || emb->ne[0] != ck->dim || emb->ne[1] <= 0 || emb->ne[1] > INT32_MAX) {
        rc = ft_error(FT_ERR_SHAPE, "%s: token_embd.weight has ne = (%lld, %lld), expected (%d, vocab_size)",
                      path, (long long)emb->ne[0], (long long)emb->ne[1], ck->dim);
        goto done;
    }
    ck->vocab_size = (int)emb->ne[1];
    if ((rc = ft__llama_ckpt_check_dims(ck, path)) < 0) goto done;
    int64_t rope_dims;
    int head_size = ck->dim / ck->n_heads;
    if ((rc = ft_gguf_get_int_opt(g, "llama.rope.dimension_count", head_size, &rope_dims)) < 0) goto done;
    if (rope_dims != head_size) {
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: partial rotary embeddings (llama.rope.dimension_count %lld, head size %d) are not supported",
                      path, (long long)rope_dims, head_size);
        goto done;
    }

    /* llama.cpp's llama2.c converter always writes output.weight, even when it is the embedding. */
    const ft_gguf_tensor *out = ft_gguf_find_tensor(g, "output.weight");
    ck->tied = !out || (out->type == emb->type && out->nbytes == emb->nbytes && out->n_dims == emb->n_dims &&
                        out->ne[0] == emb->ne[0] && out->ne[1] == emb->ne[1] &&
                        memcmp(out->data, emb->data, emb->nbytes) == 0);
    if ((rc = model_tensors(g, ck, 1)) < 0) goto done;
    if ((rc = ft__llama_ckpt_alloc(ck, path)) < 0) goto done;
    if ((rc = model_tensors(g, ck, 0)) < 0) goto done;
    if (ft_gguf_find_tensor(g, "rope_freqs.weight")) {
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: per-dimension rope factors (rope_freqs.weight, Llama-3.1 style rope scaling) "
                      "are not supported by the converter", path);
        goto done;
    }
    rc = read_vocab(ck, g);
    if (rc == FT_OK && ck->n_tokens && ck->n_tokens != ck->vocab_size)
        rc = ft_error(FT_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %d entries but token_embd.weight has %d rows",
                      path, ck->n_tokens, ck->vocab_size);
done:
    ft_gguf_close(g);
    if (rc < 0) ft_llama_ckpt_free(ck);
    return rc;
}

/* A byte-level BPE vocabulary (tokenizer.ggml.model "gpt2": GPT-2 and its family) as the tokenizer.json it came
 * from: tokens (byte-level strings) and merges ("a b") as a BPE model, GPT-2's ByteLevel pre-tokenizer and
 * decoder, control / user-defined tokens (token_type 3 / 4) as special added tokens. Only GPT-2's own
 * pre-tokenizer (tokenizer.ggml.pre absent, "default" or "gpt-2") is taken: other regexes (llama-bpe, qwen2,
 * ...) would split text differently, so they are refused rather than guessed. */
static int gpt2_vocab_tokenizer(ft_tokenizer **out, const ft_gguf *g) {
    const char *path = ft_gguf_path(g);
    const ft_gguf_kv *pre = ft_gguf_find_kv(g, "tokenizer.ggml.pre");
    if (pre && pre->type == FT_GGUF_STRING && strcmp(pre->str, "default") != 0 && strcmp(pre->str, "gpt-2") != 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%s' is not read yet (byte-level BPE vocabularies with GPT-2's "
                        "pre-tokenizer are); give token ids with --prompt-ids / --ids, or the model's Hugging Face directory", path, pre->str);
    const char **toks = NULL, **merges = NULL;
    int32_t *types = NULL;
    int64_t n = 0, nm = 0, nt = 0;
    int rc = ft_gguf_get_str_array(g, "tokenizer.ggml.tokens", &toks, &n);
    if (rc == FT_OK) rc = ft_gguf_get_str_array(g, "tokenizer.ggml.merges", &merges, &nm);
    if (rc == FT_OK && ft_gguf_find_kv(g, "tokenizer.ggml.token_type")) rc = ft_gguf_get_i32_array(g, "tokenizer.ggml.token_type", &types, &nt);
    if (rc == FT_OK && (n <= 0 || n > (1 << 30) || (types && nt != n)))
        rc = ft_error(FT_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %lld entries (token types: %lld)", path, (long long)n, (long long)nt);
    cJSON *root = rc == FT_OK ? cJSON_CreateObject() : NULL;
    if (rc == FT_OK && !root) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) {
        cJSON *model = cJSON_AddObjectToObject(root, "model"), *added = cJSON_AddArrayToObject(root, "added_tokens");
        cJSON *vocab = model ? cJSON_AddObjectToObject(model, "vocab") : NULL, *ml = model ? cJSON_AddArrayToObject(model, "merges") : NULL;
        cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer"), *dec = cJSON_AddObjectToObject(root, "decoder");
        int ok = model && added && vocab && ml && pt && dec && cJSON_AddStringToObject(model, "type", "BPE") &&
                 cJSON_AddStringToObject(pt, "type", "ByteLevel") && cJSON_AddFalseToObject(pt, "add_prefix_space") &&
                 cJSON_AddStringToObject(dec, "type", "ByteLevel");
        for (int64_t i = 0; ok && i < n; i++) {
            if (!cJSON_AddNumberToObject(vocab, toks[i], (double)i)) ok = 0;
            if (ok && types && (types[i] == 3 || types[i] == 4)) {
                cJSON *a = cJSON_CreateObject();
                ok = a && cJSON_AddNumberToObject(a, "id", (double)i) && cJSON_AddStringToObject(a, "content", toks[i]) &&
                     cJSON_AddBoolToObject(a, "special", 1);
                if (a) cJSON_AddItemToArray(added, a);
            }
        }
        for (int64_t i = 0; ok && i < nm; i++) {
            cJSON *m = cJSON_CreateString(merges[i]);
            if (!m) ok = 0;
            else cJSON_AddItemToArray(ml, m);
        }
        if (!ok) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    if (rc == FT_OK) rc = ft__tok_load_hf_json_root(out, root, path);
    cJSON_Delete(root);
    free(toks);
    free(merges);
    free(types);
    return rc;
}

int ft_gguf_tokenizer(ft_tokenizer **out, const char *path) {
    *out = NULL;
    ft_gguf *g;
    FT_TRY(ft_gguf_open(&g, path));
    const ft_gguf_kv *bpe = ft_gguf_find_kv(g, "tokenizer.ggml.model");
    if (bpe && bpe->type == FT_GGUF_STRING && strcmp(bpe->str, "gpt2") == 0) {
        int rc = gpt2_vocab_tokenizer(out, g);
        ft_gguf_close(g);
        return rc;
    }
    ft_llama_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.bos_id = ck.eos_id = ck.unk_id = -1;
    const ft_gguf_kv *model = ft_gguf_find_kv(g, "tokenizer.ggml.model");
    int rc;
    if (!model || model->type != FT_GGUF_STRING || strcmp(model->str, "llama") != 0)
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model is '%s'; only SentencePiece ('llama') and byte-level BPE ('gpt2') vocabularies are read from GGUF files "
                      "(give token ids with --prompt-ids / --ids, or the model's Hugging Face directory)",
                      path, model && model->type == FT_GGUF_STRING ? model->str : "absent");
    else rc = read_vocab(&ck, g);
    ft_gguf_close(g);
    if (rc == FT_OK) {
        const char *tmp = getenv("TMPDIR");
        rc = ft_llama_ckpt_tokenizer(out, &ck, tmp && *tmp ? tmp : "/tmp");
    }
    ft_llama_ckpt_free(&ck);
    return rc;
}
