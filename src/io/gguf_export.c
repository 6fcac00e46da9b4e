/* gguf_export.c — a loaded model as a llama.cpp GGUF file (export.h): architecture metadata, the
 * tokenizer (gguf_vocab.c), tensors under llama.cpp's names (gguf_names.c) in the asked type
 * (ggml_quantize.c), written by the GGUF writer (gguf_write.c).
 *
 * Rotary layout: our Llama weights are in Hugging Face's order (rotate_half pairs (i, i + HS/2) of each
 * head), llama.cpp's LLAMA rope rotates interleaved pairs (2i, 2i+1): like convert_hf_to_gguf.py's
 * LlamaModel.permute, q and k rows (and biases) of each head move from r*HS/2 + i to 2i + r. Qwen2
 * runs with NEOX rope in llama.cpp (rotate_half), so its rows stay. */
#include "io/gguf_export_internal.h"
#include "finetune/export.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "quant/ggml_blocks.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_export_gguf_opts ft_export_gguf_default_opts(void) {
    ft_export_gguf_opts o = {FT_GGML_F32, NULL, NULL};
    return o;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* The type a tensor is written in when `want` is asked (llama.cpp's quantize rules, --pure). */
static uint32_t pick_type(uint32_t want, const char *gname, int n_dims, int64_t ne0, int *fallback) {
    *fallback = 0;
    if (want == FT_GGML_F32) return want;
    if (n_dims < 2 || !ends_with(gname, ".weight") || ends_with(gname, "_norm.weight") ||
        strncmp(gname, "position_embd.", 14) == 0)
        return FT_GGML_F32;
    if (ne0 % ft_gguf_type_block_size(want) == 0) return want;
    *fallback = 1;
    if (want == FT_GGML_Q4_K && ne0 % 32 == 0) return FT_GGML_Q5_0;
    return FT_GGML_F16;
}

static void count_type(ft_export_summary *s, uint32_t t) {
    switch (t) {
    case FT_GGML_F32: s->n_f32++; break;
    case FT_GGML_F16: s->n_f16++; break;
    case FT_GGML_BF16: s->n_bf16++; break;
    case FT_GGML_Q8_0: s->n_q8_0++; break;
    case FT_GGML_Q4_0: s->n_q4_0++; break;
    case FT_GGML_Q5_0: s->n_q5_0++; break;
    case FT_GGML_Q4_K: s->n_q4_k++; break;
    }
}

/* dst rows of each head: src row h*HS + r*HS/2 + i -> dst row h*HS + 2i + r (LlamaModel.permute) */
static void rope_half_to_interleaved(float *dst, const float *src, int64_t n_heads, int64_t hs, int64_t cols) {
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hs / 2; i++)
            for (int r = 0; r < 2; r++)
                memcpy(dst + (h * hs + 2 * i + r) * cols, src + (h * hs + r * hs / 2 + i) * cols, (size_t)cols * sizeof(float));
}

/* Adds one tensor: rows x cols f32 at src (cols 0 = a 1-D tensor of rows values), permuted per head
 * when heads > 0, converted to the type pick_type gives. */
static int add_f32(ft_gguf_writer *w, const char *gname, const float *src, int64_t rows, int64_t cols,
                   int64_t heads, int64_t hs, uint32_t want, ft_export_summary *s) {
    int n_dims = cols > 0 ? 2 : 1;
    int64_t width = cols > 0 ? cols : 1;              /* floats per permuted row */
    int64_t c = cols > 0 ? cols : rows, r = cols > 0 ? rows : 1;
    int64_t ne[2] = {c, r};
    int fb;
    uint32_t type = pick_type(want, gname, n_dims, c, &fb);
    float *perm = NULL;
    if (heads > 0) {
        if (heads * hs != rows)
            return ft_error(FT_ERR_SHAPE, "%s: %lld rows are not %lld heads of %lld", gname, (long long)rows, (long long)heads, (long long)hs);
        perm = malloc((size_t)(rows * width) * sizeof(float));
        if (!perm) return ft_error(FT_ERR_NOMEM, "%s: out of memory", gname);
        rope_half_to_interleaved(perm, src, heads, hs, width);
        src = perm;
    }
    int rc;
    if (type == FT_GGML_F32 && perm) {
        rc = ft_gguf_writer_add_tensor(w, gname, type, n_dims, ne, perm, 1);
    } else if (type == FT_GGML_F32) {
        rc = ft_gguf_writer_add_tensor(w, gname, type, n_dims, ne, src, 0);
    } else {
        void *q = malloc(ft_gguf_type_row_bytes(type, c) * (size_t)r);
        if (!q) { free(perm); return ft_error(FT_ERR_NOMEM, "%s: out of memory", gname); }
        rc = ft_gguf_quantize(type, src, r, c, q);
        free(perm);
        if (rc < 0) { free(q); return rc; }
        rc = ft_gguf_writer_add_tensor(w, gname, type, n_dims, ne, q, 1);
    }
    if (rc == FT_OK && s) {
        count_type(s, type);
        s->n_fallback += fb;
    }
    return rc;
}

/* Llama 3 rope scaling as llama.cpp takes it: a factor per frequency (convert_hf_to_gguf.py's
 * rope_freqs), wavelengths below original_max/high_freq_factor unscaled, above original_max /
 * low_freq_factor divided by factor, smooth in between. */
static int add_rope_freqs(ft_gguf_writer *w, const ft_model_config *c) {
    int n = c->head_dim / 2;
    float *f = malloc((size_t)n * sizeof *f);
    if (!f) return ft_error(FT_ERR_NOMEM, "rope_freqs: out of memory");
    double old_ctx = c->rope_original_max_pos, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
    for (int i = 0; i < n; i++) {
        double freq = 1.0 / pow((double)c->rope_theta, (2.0 * i) / c->head_dim);
        double wavelen = 2 * M_PI / freq;
        double v;
        if (wavelen < high_wavelen) v = 1.0;
        else if (wavelen > low_wavelen) v = c->rope_factor;
        else {
            double smooth = (old_ctx / wavelen - lo) / (hi - lo);
            v = 1.0 / ((1 - smooth) / c->rope_factor + smooth);
        }
        f[i] = (float)v;
    }
    int64_t ne[1] = {n};
    return ft_gguf_writer_add_tensor(w, "rope_freqs.weight", FT_GGML_F32, 1, ne, f, 1);
}

static uint32_t file_type(uint32_t t) {
    switch (t) {
    case FT_GGML_F16: return 1;
    case FT_GGML_Q4_0: return 2;
    case FT_GGML_Q8_0: return 7;
    case FT_GGML_Q4_K: return 14;   /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    case FT_GGML_BF16: return 32;
    default: return 0;                   /* ALL_F32 */
    }
}

static int arch_metadata(ft_gguf_writer *w, const ft_model_config *c, const char *arch) {
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", arch, suffix), k)
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)c->max_seq_len));
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd));
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer));
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_hidden));
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head));
    if (c->arch == FT_ARCH_GPT2) {
        FT_TRY(ft_gguf_writer_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps));
    } else {
        FT_TRY(ft_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head));
        FT_TRY(ft_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps));
        FT_TRY(ft_gguf_writer_set_f32(w, KEY("rope.freq_base"), c->rope_theta));
        FT_TRY(ft_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
        if (c->head_dim * c->n_head != c->n_embd) {
            FT_TRY(ft_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
            FT_TRY(ft_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
        }
        if (c->rope_scaling == FT_ROPE_LINEAR) {
            FT_TRY(ft_gguf_writer_set_str(w, KEY("rope.scaling.type"), "linear"));
            FT_TRY(ft_gguf_writer_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor));
        }
    }
    FT_TRY(ft_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size));
#undef KEY
    return FT_OK;
}

/* tokenizer.chat_template from DIR/tokenizer_config.json ("chat_template": a string, or a list of
 * {name, template} of which "default" is taken) or DIR/chat_template.jinja. Absent: nothing. */
static int chat_template(ft_gguf_writer *w, const char *dir) {
    char path[4096];
    char *text = NULL;
    size_t len;
    if (ft_path_join(path, sizeof path, dir, "chat_template.jinja") == FT_OK && ft_path_exists(path)) {
        FT_TRY(ft_file_read_all(path, &text, &len));
        int rc = ft_gguf_writer_set_str(w, "tokenizer.chat_template", text);
        free(text);
        return rc;
    }
    if (ft_path_join(path, sizeof path, dir, "tokenizer_config.json") < 0 || !ft_path_exists(path)) return FT_OK;
    FT_TRY(ft_file_read_all(path, &text, &len));
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s: not valid JSON", path);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    const char *tmpl = cJSON_IsString(t) ? t->valuestring : NULL;
    if (cJSON_IsArray(t)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, t) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *tt = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(nm) && cJSON_IsString(tt) && (strcmp(nm->valuestring, "default") == 0 || !tmpl)) tmpl = tt->valuestring;
        }
    }
    int rc = tmpl ? ft_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl) : FT_OK;
    cJSON_Delete(j);
    return rc;
}

static int model_tensors(ft_gguf_writer *w, const ft_model *cm, uint32_t want, ft_export_summary *s) {
    ft_model *m = (ft_model *)cm;   /* read only: ft_model_param has no const form */
    const ft_model_config *c = ft_model_get_config(m);
    int permute = c->arch == FT_ARCH_LLAMA && strcmp(ft__gguf_arch_name(c), "llama") == 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        const ft_param *p = ft_model_param(m, i);
        if (p->qdesc)
            return ft_error(FT_ERR_UNSUPPORTED, "%s is stored quantized (%s) in memory; load the model in f32 to export it",
                            p->name, ft_dtype_name(p->t.dtype));
        ft_hf_piece pc[3];
        int np = ft_model_hf_pieces(m, i, pc);
        int64_t cols = p->t.ndim == 2 ? p->t.shape[1] : 0;
        for (int k = 0; k < np; k++) {
            char gname[96];
            FT_TRY(ft__gguf_tensor_name(c->arch, pc[k].name, gname, sizeof gname));
            const float *src = (const float *)p->t.data + pc[k].row0 * (cols > 0 ? cols : 1);
            int64_t heads = 0;
            if (permute && strncmp(gname, "blk.", 4) == 0) {
                if (strstr(gname, ".attn_q.")) heads = c->n_head;
                else if (strstr(gname, ".attn_k.")) heads = c->n_kv_head;
            }
            FT_TRY(add_f32(w, gname, src, pc[k].rows, cols, heads, c->head_dim, want, s));
            /* GPT-2: convert_hf_to_gguf.py writes the tied LM head as its own output.weight */
            if (c->arch == FT_ARCH_GPT2 && c->tied_embeddings && strcmp(gname, "token_embd.weight") == 0)
                FT_TRY(add_f32(w, "output.weight", src, pc[k].rows, cols, 0, 0, want, s));
        }
    }
    if (c->arch == FT_ARCH_LLAMA && c->rope_scaling == FT_ROPE_LLAMA3) {
        FT_TRY(add_rope_freqs(w, c));
        if (s) s->n_f32++;
    }
    return FT_OK;
}

int ft_export_gguf(const ft_model *m, const ft_tokenizer *tok, const ft_export_gguf_opts *o, const char *path,
                   ft_export_summary *summary) {
    ft_export_gguf_opts def = ft_export_gguf_default_opts();
    if (!o) o = &def;
    uint32_t want = o->type;
    if (want != FT_GGML_F32 && want != FT_GGML_F16 && want != FT_GGML_BF16 && want != FT_GGML_Q8_0 &&
        want != FT_GGML_Q4_0 && want != FT_GGML_Q4_K)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: GGUF export type %u is not supported (f32, f16, bf16, q8_0, q4_0, q4_k)", path, want);
    const ft_model_config *c = ft_model_get_config(m);
    const char *arch = ft__gguf_arch_name(c);
    ft_export_summary s;
    memset(&s, 0, sizeof s);
    ft_gguf_writer *w;
    FT_TRY(ft_gguf_writer_create(&w));
    int rc = ft_gguf_writer_set_str(w, "general.architecture", arch);
    if (rc == FT_OK) rc = ft_gguf_writer_set_str(w, "general.type", "model");
    if (rc == FT_OK && o->name) rc = ft_gguf_writer_set_str(w, "general.name", o->name);
    if (rc == FT_OK) rc = ft_gguf_writer_set_u32(w, "general.alignment", 32);
    if (rc == FT_OK) rc = ft_gguf_writer_set_u32(w, "general.file_type", file_type(want));
    if (rc == FT_OK && want != FT_GGML_F32 && want != FT_GGML_F16 && want != FT_GGML_BF16)
        rc = ft_gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (rc == FT_OK) rc = arch_metadata(w, c, arch);
    if (rc == FT_OK && tok) rc = ft__tokenizer_gguf_meta(tok, c->vocab_size, c->model_type, w);
    if (rc == FT_OK && tok && o->tokenizer_dir) rc = chat_template(w, o->tokenizer_dir);
    if (rc == FT_OK) rc = model_tensors(w, m, want, &s);
    if (rc == FT_OK) rc = ft_gguf_writer_write(w, path);
    if (rc == FT_OK) {
        s.n_tensors = ft_gguf_writer_n_tensors(w);
        s.data_bytes = ft_gguf_writer_data_bytes(w);
        if (summary) *summary = s;
    }
    ft_gguf_writer_free(w);
    return rc;
}
