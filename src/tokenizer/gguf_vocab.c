/* gguf_vocab.c — a tokenizer as GGUF metadata (tokenizer.ggml.*), the keys llama.cpp's vocabulary
 * loader reads. Two models:
 *
 *   "llama" (SentencePiece-style BPE with byte fallback: Llama 2, Mistral, TinyLlama, llama2.c):
 *      tokens in SentencePiece spelling ("\u2581" for space), scores (llama.cpp merges the adjacent pair
 *      whose merged token has the highest score), token_type (1 normal, 2 unknown, 3 control, 4 user
 *      defined, 5 unused, 6 byte), add_space_prefix. Scores are the tokenizer's own (llama2.c) when it has
 *      them; for a tokenizer.json with a merges list, the token made by merge rank k scores -k, so
 *      llama.cpp applies the merges in their rank order as HF tokenizers does.
 *   "gpt2" (byte-level BPE: GPT-2, Llama 3, Qwen2, SmolLM): tokens as the vocabulary spells them
 *      (bytes mapped to printable characters), token_type, merges ("left right" in rank order), and
 *      tokenizer.ggml.pre, the pre-tokenizer name llama.cpp knows ("gpt-2", "llama-bpe", "qwen2").
 *
 * Both: bos / eos / unknown / padding ids when the tokenizer has them, add_bos_token / add_eos_token
 * as FT_TOK_ADD_SPECIAL adds them. Ids the tokenizer lacks up to the model's vocab_size are written
 * as "[PAD<id>]" of type unused (convert_hf_to_gguf.py does the same). */
#include "tokenizer/tokenizer_impl.h"
#include "io/gguf_export_internal.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static int is_added(const ft_tokenizer *tok, int id, int *special) {
    for (int i = 0; i < tok->n_added; i++)
        if (tok->added[i].id == id) { *special = tok->added[i].special; return 1; }
    return 0;
}

static const char *pre_name(const ft_tokenizer *tok, const char *model_type) {
    if (model_type && strcmp(model_type, "qwen2") == 0) return "qwen2";
    for (int i = 0; i < tok->n_pre; i++) {
        const ft_pretok_step *p = &tok->pre[i];
        if (p->kind == FT_PRE_SPLIT && p->pattern && strstr(p->pattern, "\\p{N}{1,3}")) return "llama-bpe";
    }
    return "gpt-2";
}

/* 1 when the tokenizer adds a space before the text (SentencePiece's add_dummy_prefix) */
static int adds_space_prefix(const ft_tokenizer *tok) {
    for (int i = 0; i < tok->n_norm; i++)
        if (tok->norm[i].kind == FT_NORM_PREPEND) return 1;
    for (int i = 0; i < tok->n_pre; i++)
        if (tok->pre[i].kind == FT_PRE_METASPACE && tok->pre[i].prepend_scheme != FT_PREPEND_NEVER) return 1;
    return 0;
}

int ft__tokenizer_gguf_meta(const ft_tokenizer *tok, int vocab_size, const char *model_type, ft_gguf_writer *w) {
    if (tok->kind == FT_TOK_WORDPIECE)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: a WordPiece (BERT) tokenizer has no GGUF form for a decoder", tok->source);
    if (tok->n_tokens > vocab_size)
        return ft_error(FT_ERR_SHAPE, "%s: the tokenizer has %d tokens, more than the model's %d embedding rows",
                        tok->source, tok->n_tokens, vocab_size);
    int spm = !tok->byte_level;
    int V = vocab_size;
    const char **strs = calloc((size_t)V, sizeof *strs);
    char **pads = calloc((size_t)V, sizeof *pads);
    int32_t *types = calloc((size_t)V, sizeof *types);
    float *scores = calloc((size_t)V, sizeof *scores);
    int rc = FT_OK;
    if (!strs || !pads || !types || !scores) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); goto done; }

    int have_scores = 0;
    for (int i = 0; i < tok->n_tokens; i++)
        if (tok->tokens[i].score != 0.0f) have_scores = 1;
    for (int id = 0; id < V; id++) {
        const ft_tok_token *t = id < tok->n_tokens ? &tok->tokens[id] : NULL;
        if (!t || !(t->flags & FT_TOKF_PRESENT)) {
            char buf[32];
            snprintf(buf, sizeof buf, "[PAD%d]", id);
            if (!(pads[id] = strdup(buf))) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); goto done; }
            strs[id] = pads[id];
            types[id] = TT_UNUSED;
            scores[id] = -1000.0f;
            continue;
        }
        strs[id] = tok->pool + t->off;
        int special = 0;
        if (id == tok->unk_id) types[id] = TT_UNKNOWN;
        else if (t->flags & FT_TOKF_BYTE) types[id] = TT_BYTE;
        else if ((t->flags & FT_TOKF_SPECIAL) || (is_added(tok, id, &special) && special)) types[id] = TT_CONTROL;
        else if (t->flags & FT_TOKF_ADDED) types[id] = TT_USER_DEFINED;
        else types[id] = TT_NORMAL;
        scores[id] = have_scores ? t->score : (types[id] == TT_NORMAL ? 0.0f : -1000.0f);
    }
    if (spm && !have_scores) {
        /* the token made by merge rank k scores -k (its first merge: the lowest rank wins) */
        char *buf = NULL;
        size_t cap = 0;
        unsigned char *ranked = calloc((size_t)V, 1);   /* [V] 1 once the token's first merge is seen */
        if (!ranked) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); goto done; }
        for (int k = 0; k < tok->n_merges && rc == FT_OK; k++) {
            const ft_tok_token *a = &tok->tokens[tok->merge_list[k][0]], *b = &tok->tokens[tok->merge_list[k][1]];
            size_t n = (size_t)a->len + b->len + 1;
            if (n > cap) {
                char *nb = realloc(buf, n);
                if (!nb) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); break; }
                buf = nb; cap = n;
            }
            memcpy(buf, tok->pool + a->off, a->len);
            memcpy(buf + a->len, tok->pool + b->off, b->len);
            buf[a->len + b->len] = 0;
            int id = ft_tokenizer_token_id(tok, buf);
            if (id >= 0 && id < V && !ranked[id]) { scores[id] = -(float)k; ranked[id] = 1; }
        }
        /* the base symbols (single characters, score 0) rank with the first merge: never merge products */
        free(buf);
        free(ranked);
        if (rc < 0) goto done;
    }

    if ((rc = ft_gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2")) < 0) goto done;
    if (!spm && (rc = ft_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre_name(tok, model_type))) < 0) goto done;
    if ((rc = ft_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", strs, NULL, (uint64_t)V)) < 0) goto done;
    if (spm && (rc = ft_gguf_writer_set_array(w, "tokenizer.ggml.scores", FT_GGUF_FLOAT32, scores, (uint64_t)V)) < 0) goto done;
    if ((rc = ft_gguf_writer_set_array(w, "tokenizer.ggml.token_type", FT_GGUF_INT32, types, (uint64_t)V)) < 0) goto done;
    if (!spm) {
        char **merges = calloc((size_t)(tok->n_merges ? tok->n_merges : 1), sizeof *merges);
        if (!merges) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); goto done; }
        for (int k = 0; k < tok->n_merges && rc == FT_OK; k++) {
            const ft_tok_token *a = &tok->tokens[tok->merge_list[k][0]], *b = &tok->tokens[tok->merge_list[k][1]];
            merges[k] = malloc((size_t)a->len + b->len + 2);
            if (!merges[k]) { rc = ft_error(FT_ERR_NOMEM, "gguf vocabulary: out of memory"); break; }
            memcpy(merges[k], tok->pool + a->off, a->len);
            merges[k][a->len] = ' ';
            memcpy(merges[k] + a->len + 1, tok->pool + b->off, b->len);
            merges[k][a->len + 1 + b->len] = 0;
        }
        if (rc == FT_OK)
            rc = ft_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)merges, NULL, (uint64_t)tok->n_merges);
        for (int k = 0; k < tok->n_merges; k++) free(merges[k]);
        free(merges);
        if (rc < 0) goto done;
    } else {
        if ((rc = ft_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", adds_space_prefix(tok))) < 0) goto done;
    }
    const struct { const char *key; int id; } ids[] = {
        {"tokenizer.ggml.bos_token_id", tok->bos}, {"tokenizer.ggml.eos_token_id", tok->eos},
        {"tokenizer.ggml.unknown_token_id", tok->unk_id >= 0 ? tok->unk_id : -1},
        {"tokenizer.ggml.padding_token_id", tok->pad},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0 && ids[i].id < V && (rc = ft_gguf_writer_set_u32(w, ids[i].key, (uint32_t)ids[i].id)) < 0) goto done;
    int add_bos = tok->n_prefix > 0 && tok->bos >= 0 && tok->prefix[0] == tok->bos;
    int add_eos = tok->n_suffix > 0 && tok->eos >= 0 && tok->suffix[tok->n_suffix - 1] == tok->eos;
    if ((rc = ft_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos)) < 0) goto done;
    rc = ft_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos);
done:
    if (pads) for (int i = 0; i < V; i++) free(pads[i]);
    free(pads); free(strs); free(types); free(scores);
    return rc;
}
