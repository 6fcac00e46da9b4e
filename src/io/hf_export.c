/* hf_export.c — write an ft_llama_ckpt as a Hugging Face Llama directory.
 *
 *   config.json              LlamaForCausalLM, keys sorted, fixed number formatting
 *   model.safetensors        HF names, fixed tensor order, q/k rows permuted for rotate_half
 *   tokenizer.json           ft_tokenizer_save_json
 *   tokenizer_config.json    LlamaTokenizerFast, add_bos_token true
 *   generation_config.json   bos / eos ids
 * Nothing depends on the source file's name or format, so a llama2.c .bin and the GGUF made from
 * it give byte-identical files. Each file is written atomically (readers never see half a file);
 * config.json goes last. On failure the files this call wrote are removed again. */
#include "io/llama_ckpt_internal.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include "core/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A JSON string literal (with quotes), or null for NULL. */
static void sb_json_str(ft__sb *b, const char *s) {
    if (s) ft__sb_put_json(b, s, strlen(s), 0);
    else ft__sb_puts(b, "null");
}

/* The shortest decimal that reads back as the same float, in Python's json style
 * (10000.0, 1e-05, 1e-06, 0.02), so that an f32 1e-5 from GGUF prints as 1e-05. */
static void fmt_float(char *buf, size_t cap, float f) {
    if (f == floorf(f) && fabsf(f) < 1e15f) { snprintf(buf, cap, "%.1f", (double)f); return; }
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    /* C prints 1e-05 like Python; nothing more to adjust */
}

/* ---- output bookkeeping: remove what this call wrote when it fails ---- */
#define MAX_OUTPUTS 8
typedef struct {
    char dir[4096];
    int  created_dir;
    char written[MAX_OUTPUTS][4096];
    int  n_written;
} outputs;

static int out_path(outputs *o, char *buf, size_t cap, const char *name) {
    return ft_path_join(buf, cap, o->dir, name);
}

static void out_rollback(outputs *o) {
    for (int i = 0; i < o->n_written; i++) unlink(o->written[i]);
    o->n_written = 0;
    if (o->created_dir) rmdir(o->dir);   /* only succeeds when empty */
}

static int out_file_text(outputs *o, const char *name, ft__sb *b) {
    char path[4096];
    if (b->err) return ft_error(FT_ERR_NOMEM, "out of memory while building %s", name);
    FT_TRY(out_path(o, path, sizeof path, name));
    FT_TRY(ft_file_write_atomic(path, b->p, b->n));
    snprintf(o->written[o->n_written++], sizeof o->written[0], "%s", path);
    return FT_OK;
}

/* ---- special tokens ---- */
typedef struct { int bos_id, eos_id; char bos[64], eos[64], unk[64]; int has_unk; } specials;

/* Token string without surrounding whitespace (llama2.c's tokenizer.bin spells BOS "\n<s>\n"). */
static void trimmed(char *dst, size_t cap, const char *s, const char *def) {
    if (!s) s = def;
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    if (n == 0) { s = def; n = strlen(def); }
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void find_specials(specials *sp, const ft_llama_ckpt *ck, const ft_tokenizer *tok) {
    sp->bos_id = tok ? ft_tokenizer_bos(tok) : ck->bos_id;
    sp->eos_id = tok ? ft_tokenizer_eos(tok) : ck->eos_id;
    if (sp->bos_id < 0) sp->bos_id = ck->bos_id >= 0 ? ck->bos_id : 1;
    if (sp->eos_id < 0) sp->eos_id = ck->eos_id >= 0 ? ck->eos_id : 2;
    const char *b = NULL, *e = NULL, *u = NULL;
    int unk_id = ck->unk_id;
    if (tok) {
        b = ft_tokenizer_token_str(tok, sp->bos_id);
        e = ft_tokenizer_token_str(tok, sp->eos_id);
        if (unk_id < 0) unk_id = ft_tokenizer_token_id(tok, "<unk>");
        if (unk_id >= 0) u = ft_tokenizer_token_str(tok, unk_id);
    } else if (ck->n_tokens) {
        if (sp->bos_id < ck->n_tokens) b = ck->tokens[sp->bos_id];
        if (sp->eos_id < ck->n_tokens) e = ck->tokens[sp->eos_id];
        if (unk_id >= 0 && unk_id < ck->n_tokens) u = ck->tokens[unk_id];
    }
    trimmed(sp->bos, sizeof sp->bos, b, "<s>");
    trimmed(sp->eos, sizeof sp->eos, e, "</s>");
    sp->has_unk = u != NULL;
    trimmed(sp->unk, sizeof sp->unk, u, "<unk>");
}

/* ---- the files ---- */
static void build_config(ft__sb *b, const ft_llama_ckpt *ck, const specials *sp, int max_pos) {
    char eps[32], theta[32];
    fmt_float(eps, sizeof eps, ck->norm_eps);
    fmt_float(theta, sizeof theta, ck->rope_theta);
    ft__sb_printf(b, "{\n");
    ft__sb_printf(b, "  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n");
    ft__sb_printf(b, "  \"attention_bias\": false,\n");
    ft__sb_printf(b, "  \"attention_dropout\": 0.0,\n");
    ft__sb_printf(b, "  \"bos_token_id\": %d,\n", sp->bos_id);
    ft__sb_printf(b, "  \"eos_token_id\": %d,\n", sp->eos_id);
    ft__sb_printf(b, "  \"head_dim\": %d,\n", ck->dim / ck->n_heads);
    ft__sb_printf(b, "  \"hidden_act\": \"silu\",\n");
    ft__sb_printf(b, "  \"hidden_size\": %d,\n", ck->dim);
    ft__sb_printf(b, "  \"initializer_range\": 0.02,\n");
    ft__sb_printf(b, "  \"intermediate_size\": %d,\n", ck->hidden_dim);
    ft__sb_printf(b, "  \"max_position_embeddings\": %d,\n", max_pos);
    ft__sb_printf(b, "  \"mlp_bias\": false,\n");
    ft__sb_printf(b, "  \"model_type\": \"llama\",\n");
    ft__sb_printf(b, "  \"num_attention_heads\": %d,\n", ck->n_heads);
    ft__sb_printf(b, "  \"num_hidden_layers\": %d,\n", ck->n_layers);
    ft__sb_printf(b, "  \"num_key_value_heads\": %d,\n", ck->n_kv_heads);
    ft__sb_printf(b, "  \"pretraining_tp\": 1,\n");
    ft__sb_printf(b, "  \"rms_norm_eps\": %s,\n", eps);
    ft__sb_printf(b, "  \"rope_scaling\": null,\n");
    ft__sb_printf(b, "  \"rope_theta\": %s,\n", theta);
    ft__sb_printf(b, "  \"tie_word_embeddings\": %s,\n", ck->tied ? "true" : "false");
    ft__sb_printf(b, "  \"torch_dtype\": \"float32\",\n");
    ft__sb_printf(b, "  \"use_cache\": true,\n");
    ft__sb_printf(b, "  \"vocab_size\": %d\n", ck->vocab_size);
    ft__sb_printf(b, "}\n");
}

static void build_tokenizer_config(ft__sb *b, const specials *sp, int max_pos) {
    ft__sb_printf(b, "{\n");
    ft__sb_printf(b, "  \"add_bos_token\": true,\n");
    ft__sb_printf(b, "  \"add_eos_token\": false,\n");
    ft__sb_printf(b, "  \"bos_token\": "); sb_json_str(b, sp->bos); ft__sb_printf(b, ",\n");
    ft__sb_printf(b, "  \"clean_up_tokenization_spaces\": false,\n");
    ft__sb_printf(b, "  \"eos_token\": "); sb_json_str(b, sp->eos); ft__sb_printf(b, ",\n");
    ft__sb_printf(b, "  \"legacy\": true,\n");
    ft__sb_printf(b, "  \"model_max_length\": %d,\n", max_pos);
    ft__sb_printf(b, "  \"pad_token\": null,\n");
    ft__sb_printf(b, "  \"tokenizer_class\": \"LlamaTokenizerFast\",\n");
    ft__sb_printf(b, "  \"unk_token\": "); sb_json_str(b, sp->has_unk ? sp->unk : NULL); ft__sb_printf(b, "\n");
    ft__sb_printf(b, "}\n");
}

static void build_generation_config(ft__sb *b, const specials *sp) {
    ft__sb_printf(b, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n", sp->bos_id, sp->eos_id);
}

/* model.safetensors: 9 tensors per layer + embed + norm (+ lm_head). */
typedef char tensor_name[96];
/* Appends an f32 tensor of shape [d0] (d1 == 0) or [d0, d1] named by fmt. */
static void add_tensor(ft_st_tensor *t, tensor_name *names, int *n, const float *data, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void add_tensor(ft_st_tensor *t, tensor_name *names, int *n, const float *data, int64_t d0, int64_t d1, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(names[*n], sizeof names[*n], fmt, ap);
    va_end(ap);
    ft_st_tensor *x = &t[(*n)++];
    x->name = names[*n - 1];
    x->dtype = FT_F32;
    x->data = data;
    x->ndim = d1 > 0 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1 > 0 ? d1 : 0;
}

static int write_weights(outputs *o, const ft_llama_ckpt *ck, int *n_written) {
    int64_t C = ck->dim, H = ck->hidden_dim, L = ck->n_layers, V = ck->vocab_size;
    int HS = ck->dim / ck->n_heads;
    int64_t KV = (int64_t)HS * ck->n_kv_heads;
    int n_max = (int)(9 * L + 3);
    ft_st_tensor *t = calloc((size_t)n_max, sizeof *t);
    tensor_name *names = calloc((size_t)n_max, sizeof *names);
    float *qk = malloc((size_t)(L * (C * C + KV * C)) * sizeof(float));  /* permuted q then k, per layer */
    if (!t || !names || !qk) { free(t); free(names); free(qk); return ft_error(FT_ERR_NOMEM, "out of memory for the q/k permutation"); }
    int n = 0;
    add_tensor(t, names, &n, ck->token_embedding, V, C, "model.embed_tokens.weight");
    for (int64_t l = 0; l < L; l++) {
        int li = (int)l;
        float *q = qk + l * (C * C + KV * C), *k = q + C * C;
        ft_rope_interleaved_to_half(q, ck->wq + l * C * C, ck->n_heads, HS, (int)C);
        ft_rope_interleaved_to_half(k, ck->wk + l * KV * C, ck->n_kv_heads, HS, (int)C);
        add_tensor(t, names, &n, ck->rms_att + l * C, C, 0,     "model.layers.%d.input_layernorm.weight", li);
        add_tensor(t, names, &n, q, C, C,                       "model.layers.%d.self_attn.q_proj.weight", li);
        add_tensor(t, names, &n, k, KV, C,                      "model.layers.%d.self_attn.k_proj.weight", li);
        add_tensor(t, names, &n, ck->wv + l * KV * C, KV, C,    "model.layers.%d.self_attn.v_proj.weight", li);
        add_tensor(t, names, &n, ck->wo + l * C * C, C, C,      "model.layers.%d.self_attn.o_proj.weight", li);
        add_tensor(t, names, &n, ck->rms_ffn + l * C, C, 0,     "model.layers.%d.post_attention_layernorm.weight", li);
        add_tensor(t, names, &n, ck->w1 + l * H * C, H, C,      "model.layers.%d.mlp.gate_proj.weight", li);
        add_tensor(t, names, &n, ck->w3 + l * H * C, H, C,      "model.layers.%d.mlp.up_proj.weight", li);
        add_tensor(t, names, &n, ck->w2 + l * C * H, C, H,      "model.layers.%d.mlp.down_proj.weight", li);
    }
    add_tensor(t, names, &n, ck->rms_final, C, 0, "model.norm.weight");
    if (!ck->tied) add_tensor(t, names, &n, ck->wcls, V, C, "lm_head.weight");
    char path[4096];
    int rc = out_path(o, path, sizeof path, "model.safetensors");
    static const char *const meta[] = {"format", "pt"};
    if (rc == FT_OK) rc = ft_st_write(path, t, n, meta, 1);
    if (rc == FT_OK) {
        snprintf(o->written[o->n_written++], sizeof o->written[0], "%s", path);
        *n_written = n;
    }
    free(t); free(names); free(qk);
    return rc;
}

int ft_llama_export_hf(const ft_llama_ckpt *ck, const ft_tokenizer *tok, const char *out_dir,
                       const ft_convert_opts *opts, ft_convert_summary *summary) {
    outputs o;
    memset(&o, 0, sizeof o);
    if (snprintf(o.dir, sizeof o.dir, "%s", out_dir) >= (int)sizeof o.dir)
        return ft_error(FT_ERR_RANGE, "output directory path too long: %s", out_dir);
    if (!ft_path_exists(out_dir)) {
        FT_TRY(ft_mkdirs(out_dir));
        o.created_dir = 1;
    } else if (!ft_path_is_dir(out_dir)) {
        return ft_error(FT_ERR_IO, "%s: exists and is not a directory", out_dir);
    }
    int max_pos = opts && opts->context_length > 0 ? opts->context_length : ck->seq_len;
    specials sp;
    find_specials(&sp, ck, tok);
    int n_tensors = 0;
    ft__sb b = {0};
    int rc = write_weights(&o, ck, &n_tensors);
    if (rc == FT_OK && tok) {
        char path[4096];
        rc = out_path(&o, path, sizeof path, "tokenizer.json");
        if (rc == FT_OK) rc = ft_tokenizer_save_json(tok, path);
        if (rc == FT_OK) snprintf(o.written[o.n_written++], sizeof o.written[0], "%s", path);
        if (rc == FT_OK) {
            build_tokenizer_config(&b, &sp, max_pos);
            rc = out_file_text(&o, "tokenizer_config.json", &b);
        }
    }
    if (rc == FT_OK) {
        b.n = 0;
        build_generation_config(&b, &sp);
        rc = out_file_text(&o, "generation_config.json", &b);
    }
    if (rc == FT_OK) {
        b.n = 0;
        build_config(&b, ck, &sp, max_pos);
        rc = out_file_text(&o, "config.json", &b);
    }
    ft__sb_free(&b);
    if (rc < 0) {
        out_rollback(&o);
        return rc;
    }
    if (summary) {
        memset(summary, 0, sizeof *summary);
        snprintf(summary->format, sizeof summary->format, "%s", ck->format);
        summary->dim = ck->dim; summary->hidden_dim = ck->hidden_dim; summary->n_layers = ck->n_layers;
        summary->n_heads = ck->n_heads; summary->n_kv_heads = ck->n_kv_heads; summary->vocab_size = ck->vocab_size;
        summary->seq_len = max_pos; summary->tied = ck->tied;
        summary->n_params = ft_llama_ckpt_param_count(ck);
        summary->n_tensors = n_tensors;
    }
    return FT_OK;
}
