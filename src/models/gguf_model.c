/* gguf_model.c — a GGUF file (llama.cpp's format) loaded as an ft_model, its quantized matrices kept
 * in their ggml blocks (ft_model_load_gguf, model.h).
 *
 * Architectures and tensor names (llama.cpp's; ne[] innermost first, so an nn.Linear W [out, in] has
 * ne = (in, out)):
 *   llama  (and qwen2: the same names, q / k rows left in rotate_half order, q/k/v biases)
 *          token_embd, output_norm, output (absent: tied), blk.N.{attn_norm, attn_q, attn_k, attn_v,
 *          attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, optional attn_{q,k,v}.bias (Qwen2);
 *          q / k rows in llama.cpp's interleaved rope order are permuted to the rotate_half order of the
 *          model (a permutation of whole rows, so quantized blocks move unchanged)
 *   gpt2   token_embd, position_embd, output_norm.{weight,bias}, output (absent: tied),
 *          blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down}.{weight,bias}
 * Storage: the block matrices (q/k/v, attention output, MLP) and the LM head stay quantized when every
 * piece of the model's matrix (q, k, v; gate, up) has the same type among Q8_0 / Q4_0 / Q4_K: their
 * blocks are copied into the model's quantized arena and multiplied directly (ggml_quant.h). Everything
 * else (norms, biases, embeddings, matrices of other or mixed types) is read as f32 (F16 / BF16 upcast,
 * Q8_0 / Q4_0 / Q4_K dequantized). A quantized embedding without an output tensor (tied) is used twice:
 * dequantized for the row lookup, and its blocks as the LM head (the model is then untied). */
#include "model_internal.h"
#include "models/config_limits.h"
#include "models/linear.h"
#include "finetune/convert.h"
#include "finetune/ggml_quant.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIECES 3

/* One GGUF tensor that fills rows [row0, row0 + rows) of an internal parameter. */
typedef struct piece {
    char name[96];
    int64_t row0, rows;
    int perm_heads;       /* > 0: rows are interleaved-rope q/k rows of this many heads, permuted on read */
} piece;

typedef struct gguf_load {
    const ft_gguf *g;
    int head_dim;
    int head_from_embd;   /* the LM head is token_embd.weight (a tied quantized embedding) */
    int keep_quant;       /* 0: every tensor f32 (ft_model_load_gguf_f32) */
    int neox_rope;        /* qwen2: q / k rows already in rotate_half order (llama.cpp's converter leaves them) */
    int *qtype;           /* [n_params]: FT_GGML_Q* of a param kept quantized, -1 for f32 */
} gguf_load;

static int is_matrix_slot(int slot) { return slot == P_QKV_W || slot == P_ATTN_W || slot == P_FC_W || slot == P_PROJ_W; }

static void set_piece(piece *p, int64_t row0, int64_t rows, int perm, const char *fmt, int l, const char *suf) {
    char stem[64];
    snprintf(stem, sizeof stem, fmt, l);
    snprintf(p->name, sizeof p->name, "%s.%s", stem, suf);
    p->row0 = row0;
    p->rows = rows;
    p->perm_heads = perm;
}

/* The GGUF tensors of (layer l, slot) or of global slot g (l < 0). Returns how many (0: none). */
static int pieces_of(const ft_model *m, const gguf_load *ld, int l, int slot, piece p[MAX_PIECES]) {
    const ft_model_config *c = &m->cfg;
    int gpt2 = c->arch == FT_ARCH_GPT2;
    int64_t C = c->n_embd, Q = (int64_t)c->n_head * c->head_dim, KV = (int64_t)c->n_kv_head * c->head_dim, I = c->ffn_hidden;
    if (l < 0) {
        switch (slot) {
        case G_WTE: set_piece(&p[0], 0, c->vocab_size, 0, "token_embd", 0, "weight"); return 1;
        case G_WPE: set_piece(&p[0], 0, c->max_seq_len, 0, "position_embd", 0, "weight"); return 1;
        case G_LNF_W: set_piece(&p[0], 0, C, 0, "output_norm", 0, "weight"); return 1;
        case G_LNF_B: set_piece(&p[0], 0, C, 0, "output_norm", 0, "bias"); return 1;
        case G_LM_HEAD: set_piece(&p[0], 0, c->vocab_size, 0, ld->head_from_embd ? "token_embd" : "output", 0, "weight"); return 1;
        }
        return 0;
    }
    const char *suf = (slot == P_LN1_B || slot == P_QKV_B || slot == P_ATTN_B || slot == P_LN2_B || slot == P_FC_B || slot == P_PROJ_B)
                          ? "bias" : "weight";
    switch (slot) {
    case P_LN1_W: case P_LN1_B: set_piece(&p[0], 0, C, 0, "blk.%d.attn_norm", l, suf); return 1;
    case P_LN2_W: case P_LN2_B: set_piece(&p[0], 0, C, 0, "blk.%d.ffn_norm", l, suf); return 1;
    case P_ATTN_W: case P_ATTN_B: set_piece(&p[0], 0, C, 0, "blk.%d.attn_output", l, suf); return 1;
    case P_PROJ_W: case P_PROJ_B: set_piece(&p[0], 0, C, 0, "blk.%d.ffn_down", l, suf); return 1;
    case P_QKV_W: case P_QKV_B:
        if (gpt2) { set_piece(&p[0], 0, 3 * C, 0, "blk.%d.attn_qkv", l, suf); return 1; }
        set_piece(&p[0], 0, Q, ld->neox_rope ? 0 : c->n_head, "blk.%d.attn_q", l, suf);
        set_piece(&p[1], Q, KV, ld->neox_rope ? 0 : c->n_kv_head, "blk.%d.attn_k", l, suf);
        set_piece(&p[2], Q + KV, KV, 0, "blk.%d.attn_v", l, suf);
        return 3;
    case P_FC_W: case P_FC_B:
        if (gpt2) { set_piece(&p[0], 0, I, 0, "blk.%d.ffn_up", l, suf); return 1; }
        set_piece(&p[0], 0, I, 0, "blk.%d.ffn_gate", l, suf);
        set_piece(&p[1], I, I, 0, "blk.%d.ffn_up", l, suf);
        return 2;
    }
    return 0;
}

/* (layer, slot) of param i: layer -1 for the global ones */
static void slot_of(const ft_model *m, int i, int *l, int *slot) {
    for (int g = 0; g < G_COUNT; g++)
        if (m->global_slot[g] == i) { *l = -1; *slot = g; return; }
    for (int k = 0; k < m->cfg.n_layer * P_LAYER_COUNT; k++)
        if (m->layer_slot[k] == i) { *l = k / P_LAYER_COUNT; *slot = k % P_LAYER_COUNT; return; }
    *l = -1; *slot = -1;
}

static int find(const ft_gguf *g, const char *name, const ft_gguf_tensor **t) {
    *t = ft_gguf_find_tensor(g, name);
    if (!*t) return ft_error(FT_ERR_NOT_FOUND, "%s: missing tensor '%s'", ft_gguf_path(g), name);
    return FT_OK;
}

/* the common quantized type of a matrix's pieces, or -1 (f32) */
static int matrix_qtype(const ft_gguf *g, const piece *p, int np, int64_t cols) {
    int type = -1;
    for (int k = 0; k < np; k++) {
        const ft_gguf_tensor *t = ft_gguf_find_tensor(g, p[k].name);
        if (!t || !ft_ggml_type_supported((int)t->type) || t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != p[k].rows) return -1;
        if (k > 0 && (int)t->type != type) return -1;
        type = (int)t->type;
    }
    return type;
}

static ft_dtype dtype_of(int qtype) { return qtype == FT_GGML_Q8_0 ? FT_Q8_0 : qtype == FT_GGML_Q4_0 ? FT_Q4_0 : FT_Q4_K; }

/* layout hook (model.c): quantized matrices into m->qarena (descriptor + blocks), the rest at f32
 * offsets in plan */
static int gguf_plan(ft_model *m, ft_arena *plan) {
    gguf_load *ld = m->load_ctx;
    ld->qtype = malloc(sizeof(int) * (size_t)(m->n_params ? m->n_params : 1));
    if (!ld->qtype) return ft_error(FT_ERR_NOMEM, "out of memory");
    ft_arena_plan(plan);
    ft_arena qplan;
    ft_arena_plan(&qplan);
    size_t wmax = 0;
    for (int i = 0; i < m->n_params; i++) {
        ft_param *p = &m->params[i];
        int l, slot;
        slot_of(m, i, &l, &slot);
        ld->qtype[i] = -1;
        if (p->t.ndim == 2 && ((l >= 0 && is_matrix_slot(slot)) || (l < 0 && slot == G_LM_HEAD))) {
            piece pc[MAX_PIECES];
            int np = pieces_of(m, ld, l, slot, pc);
            if (ld->keep_quant) ld->qtype[i] = matrix_qtype(ld->g, pc, np, p->t.shape[1]);
        }
        if (ld->qtype[i] < 0) {
            p->t.data = (void *)(uintptr_t)plan->used;
            ft_arena_alloc(plan, ft_tensor_nbytes(&p->t));
            continue;
        }
        ft_arena_alloc(&qplan, sizeof(ft_ggml_tensor));
        ft_arena_alloc(&qplan, ft_ggml_row_bytes(ld->qtype[i], p->t.shape[1]) * (size_t)p->t.shape[0]);
        size_t ws = ft__linear_q_workspace_floats(dtype_of(ld->qtype[i]), p->t.shape[0], p->t.shape[1]);
        if (ws > wmax) wmax = ws;
    }
    FT_TRY(ft_arena_init(&m->qarena, qplan.used ? qplan.used : FT_ALIGN));
    if (wmax) {
        m->qws = malloc(sizeof(float) * wmax);
        if (!m->qws) return ft_error(FT_ERR_NOMEM, "out of memory");
        m->qws_floats = wmax;
    }
    for (int i = 0; i < m->n_params; i++) {
        if (ld->qtype[i] < 0) continue;
        ft_param *p = &m->params[i];
        int64_t OC = p->t.shape[0], C = p->t.shape[1];
        ft_ggml_tensor *d = ft_arena_alloc(&m->qarena, sizeof *d);
        void *blob = ft_arena_alloc(&m->qarena, ft_ggml_row_bytes(ld->qtype[i], C) * (size_t)OC);
        if (!d || !blob) return ft_error(FT_ERR_NOMEM, "%s: the quantized arena is too small (planning error)", p->name);
        FT_TRY(ft_ggml_tensor_init(d, ld->qtype[i], OC, C, blob));
        p->qdesc = d;
        p->t.data = blob;
        p->t.dtype = dtype_of(ld->qtype[i]);
        p->trainable = 0;
    }
    return FT_OK;
}

/* rows of src (row_bytes each) into dst, interleaved-rope order -> rotate_half order when perm_heads */
static void copy_rows(uint8_t *dst, const uint8_t *src, int64_t rows, size_t row_bytes, int perm_heads, int head_dim) {
    if (!perm_heads) { memcpy(dst, src, (size_t)rows * row_bytes); return; }
    int half = head_dim / 2;
    for (int h = 0; h < perm_heads; h++)
        for (int i = 0; i < half; i++)
            for (int r = 0; r < 2; r++)
                memcpy(dst + ((size_t)h * head_dim + (size_t)r * half + i) * row_bytes,
                       src + ((size_t)h * head_dim + 2 * (size_t)i + r) * row_bytes, row_bytes);
}

static int fill_param(ft_model *m, gguf_load *ld, int i, float **tmp, size_t *tmp_cap) {
    ft_param *p = &m->params[i];
    int l, slot;
    slot_of(m, i, &l, &slot);
    piece pc[MAX_PIECES];
    int np = pieces_of(m, ld, l, slot, pc);
    if (np == 0) return ft_error(FT_ERR_INVALID, "%s: no GGUF tensor for parameter %s", ft_gguf_path(ld->g), p->name);
    int64_t cols = p->t.ndim == 2 ? p->t.shape[1] : 1;
    for (int k = 0; k < np; k++) {
        const ft_gguf_tensor *t;
        FT_TRY(find(ld->g, pc[k].name, &t));
        if (ld->qtype[i] >= 0) {   /* blocks copied as they are (shape and type checked by the plan) */
            size_t rb = ((ft_ggml_tensor *)p->qdesc)->row_bytes;
            copy_rows((uint8_t *)p->t.data + (size_t)pc[k].row0 * rb, t->data, pc[k].rows, rb, pc[k].perm_heads, ld->head_dim);
            continue;
        }
        float *dst = (float *)p->t.data + pc[k].row0 * cols;
        int64_t ne[2] = {p->t.ndim == 2 ? cols : pc[k].rows, pc[k].rows};
        int nd = p->t.ndim == 2 ? 2 : 1;
        if (!pc[k].perm_heads) { FT_TRY(ft_gguf_read_f32(ld->g, pc[k].name, ne, nd, dst)); continue; }
        size_t need = (size_t)(pc[k].rows * cols);
        if (need > *tmp_cap) {
            free(*tmp);
            *tmp = malloc(need * sizeof(float));
            *tmp_cap = *tmp ? need : 0;
            if (!*tmp) return ft_error(FT_ERR_NOMEM, "out of memory");
        }
        FT_TRY(ft_gguf_read_f32(ld->g, pc[k].name, ne, nd, *tmp));
        copy_rows((uint8_t *)dst, (const uint8_t *)*tmp, pc[k].rows, (size_t)cols * sizeof(float), pc[k].perm_heads, ld->head_dim);
    }
    return FT_OK;
}

/* ---------------------------------------------------------------- config from metadata */

static int get_int(const ft_gguf *g, const char *arch, const char *key, int64_t def, int required, int *out) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    if (required) FT_TRY(ft_gguf_get_int(g, k, &v));
    else FT_TRY(ft_gguf_get_int_opt(g, k, def, &v));
    if (v <= 0 || v > INT32_MAX) return ft_error(FT_ERR_FORMAT, "%s: metadata %s = %lld is out of range", ft_gguf_path(g), k, (long long)v);
    *out = (int)v;
    return FT_OK;
}

static int config_from_gguf(ft_model_config *c, const ft_gguf *g, int keep_quant, int *tie_from_embd) {
    const char *path = ft_gguf_path(g), *arch;
    memset(c, 0, sizeof *c);
    FT_TRY(ft_gguf_get_str(g, "general.architecture", &arch));
    int gpt2 = strcmp(arch, "gpt2") == 0, qwen2 = strcmp(arch, "qwen2") == 0;
    if (!gpt2 && !qwen2 && strcmp(arch, "llama") != 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: architecture '%s' (general.architecture) is not supported; GGUF models load for 'llama', "
                        "'qwen2' and 'gpt2'", path, arch);
    c->arch = gpt2 ? FT_ARCH_GPT2 : FT_ARCH_LLAMA;
    snprintf(c->model_type, sizeof c->model_type, "%s", arch);
    FT_TRY(get_int(g, arch, "embedding_length", 0, 1, &c->n_embd));
    FT_TRY(get_int(g, arch, "feed_forward_length", 0, 1, &c->ffn_hidden));
    FT_TRY(get_int(g, arch, "block_count", 0, 1, &c->n_layer));
    FT_TRY(get_int(g, arch, "attention.head_count", 0, 1, &c->n_head));
    FT_TRY(get_int(g, arch, "context_length", 2048, 0, &c->max_seq_len));
    FT_TRY(get_int(g, arch, "attention.head_count_kv", c->n_head, 0, &c->n_kv_head));
    /* attention.key_length: an explicit head size (Mistral-style head_dim != embedding_length / head_count) */
    int key_len = 0, value_len = 0;
    if (!gpt2) {
        FT_TRY(get_int(g, arch, "attention.key_length", INT32_MAX, 0, &key_len));
        FT_TRY(get_int(g, arch, "attention.value_length", key_len, 0, &value_len));
        if (key_len == INT32_MAX) key_len = value_len = 0;
        if (key_len != value_len)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: attention.key_length %d != attention.value_length %d is not supported", path, key_len, value_len);
    }
    if ((!key_len && c->n_embd % c->n_head) || c->n_head % c->n_kv_head)
        return ft_error(FT_ERR_FORMAT, "%s: embedding_length %d, head_count %d and head_count_kv %d do not divide", path, c->n_embd, c->n_head,
                        c->n_kv_head);
    c->head_dim = key_len ? key_len : c->n_embd / c->n_head;
    char k[128];
    double eps;
    snprintf(k, sizeof k, "%s.%s", arch, gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon");
    FT_TRY(ft_gguf_get_float_opt(g, k, 1e-5, &eps));
    if (!(eps > 0 && eps < 1)) return ft_error(FT_ERR_FORMAT, "%s: implausible %s %g", path, k, eps);
    c->norm_eps = (float)eps;
    if (!gpt2) {
        double theta;
        snprintf(k, sizeof k, "%s.rope.freq_base", arch);
        FT_TRY(ft_gguf_get_float_opt(g, k, 10000.0, &theta));
        if (!(theta > 0 && theta < 1e12)) return ft_error(FT_ERR_FORMAT, "%s: implausible %s %g", path, k, theta);
        c->rope_theta = (float)theta;
        c->rope_scaling = FT_ROPE_NONE;
        int rope_dims = c->head_dim;
        FT_TRY(get_int(g, arch, "rope.dimension_count", c->head_dim, 0, &rope_dims));
        if (rope_dims != c->head_dim)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: partial rotary embeddings (rope.dimension_count %d, head size %d) are not supported", path,
                            rope_dims, c->head_dim);
        const char *st = NULL;
        snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
        if (ft_gguf_find_kv(g, k) && ft_gguf_get_str(g, k, &st) == FT_OK && strcmp(st, "linear") == 0) {
            double factor;
            snprintf(k, sizeof k, "%s.rope.scaling.factor", arch);
            FT_TRY(ft_gguf_get_float_opt(g, k, 1.0, &factor));
            if (!(factor >= 1 && factor <= 1024)) return ft_error(FT_ERR_FORMAT, "%s: implausible %s %g", path, k, factor);
            if (factor != 1) {
                c->rope_scaling = FT_ROPE_LINEAR;
                c->rope_factor = (float)factor;
            }
        } else if (st && strcmp(st, "none") != 0)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported for GGUF models (linear is)", path, st);
        if (ft_gguf_find_tensor(g, "rope_freqs.weight"))
            return ft_error(FT_ERR_UNSUPPORTED, "%s: per-dimension rope factors (rope_freqs.weight) are not supported", path);
        c->qkv_bias = ft_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
        c->o_bias = ft_gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
        c->mlp_bias = ft_gguf_find_tensor(g, "blk.0.ffn_up.bias") != NULL;
    } else {
        c->qkv_bias = c->o_bias = c->mlp_bias = 1;
    }
    const ft_gguf_tensor *emb;
    FT_TRY(find(g, "token_embd.weight", &emb));
    if (emb->n_dims != 2 || emb->ne[0] != c->n_embd || emb->ne[1] <= 0 || emb->ne[1] > INT32_MAX)
        return ft_error(FT_ERR_SHAPE, "%s: token_embd.weight has ne = (%lld, %lld), expected (%d, vocab_size)", path, (long long)emb->ne[0],
                        (long long)emb->ne[1], c->n_embd);
    c->vocab_size = (int)emb->ne[1];
    const ft_gguf_tensor *out = ft_gguf_find_tensor(g, "output.weight");
    /* llama.cpp's llama2.c converter writes output.weight even when it is the embedding */
    int same = out && out->type == emb->type && out->nbytes == emb->nbytes && out->ne[0] == emb->ne[0] && out->ne[1] == emb->ne[1] &&
               memcmp(out->data, emb->data, emb->nbytes) == 0;
    c->tied_embeddings = !out || same;
    *tie_from_embd = 0;
    if (keep_quant && c->tied_embeddings && ft_ggml_type_supported((int)emb->type) && emb->ne[0] % ft_ggml_block_values((int)emb->type) == 0) {
        c->tied_embeddings = 0;   /* the head reads the embedding's blocks; the lookup a dequantized copy */
        *tie_from_embd = 1;
    }
    int64_t v;
    FT_TRY(ft_gguf_get_int_opt(g, "tokenizer.ggml.bos_token_id", -1, &v));
    c->bos_token_id = v >= 0 && v < c->vocab_size ? (int)v : -1;
    FT_TRY(ft_gguf_get_int_opt(g, "tokenizer.ggml.eos_token_id", -1, &v));
    c->eos_token_id = v >= 0 && v < c->vocab_size ? (int)v : -1;
    FT_TRY(ft_gguf_get_int_opt(g, "tokenizer.ggml.padding_token_id", -1, &v));
    c->pad_token_id = v >= 0 && v < c->vocab_size ? (int)v : -1;
    c->initializer_range = 0.02f;
    return ft__model_config_check(c, path);
}

/* ---------------------------------------------------------------- public */

int ft_model_path_is_gguf(const char *path) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return 0;
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

static int load_gguf(ft_model **out, const char *path, const ft_backend *be, int keep_quant) {
    *out = NULL;
    ft_gguf *g;
    FT_TRY(ft_gguf_open(&g, path));
    ft_model_config cfg;
    gguf_load ld = {.g = g, .keep_quant = keep_quant};
    ft_model *m = NULL;
    int rc = config_from_gguf(&cfg, g, keep_quant, &ld.head_from_embd);
    ld.neox_rope = rc == FT_OK && strcmp(cfg.model_type, "qwen2") == 0;
    ld.head_dim = cfg.head_dim;
    if (rc == FT_OK) rc = ft__model_new(&m, &cfg, be, FT_F32, gguf_plan, &ld);
    float *tmp = NULL;
    size_t tmp_cap = 0;
    for (int i = 0; rc == FT_OK && i < m->n_params; i++) rc = fill_param(m, &ld, i, &tmp, &tmp_cap);
    /* quantized matrices re-laid in groups of 16 rows for the AVX-512 VNNI kernels (ggml_quant.h) */
    for (int i = 0; rc == FT_OK && i < m->n_params; i++) {
        ft_ggml_tensor *t = m->params[i].qdesc;
        if (t && ld.qtype[i] >= 0 && t->rows >= 16 &&
            strcmp(ft_ggml_kernels_name(), "avx512-vnni") == 0)
            rc = ft_ggml_tensor_interleave(t, m->params[i].t.data);
    }
    free(tmp);
    free(ld.qtype);
    ft_gguf_close(g);
    if (rc < 0) { ft_model_free(m); return rc; }
    *out = m;
    return FT_OK;
}

int ft_model_load_gguf(ft_model **out, const char *path, const ft_backend *be) { return load_gguf(out, path, be, 1); }
int ft_model_load_gguf_f32(ft_model **out, const char *path, const ft_backend *be) { return load_gguf(out, path, be, 0); }
