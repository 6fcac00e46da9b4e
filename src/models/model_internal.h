/* model_internal.h — the ft_model struct shared by the files of src/models/.
 * model.c: parameter layout, load/save, random init; decoder.c: forward/backward/decode;
 * gpt2.c / llama.c: per-family config parsing and Hugging Face tensor names. */
#ifndef FT_MODEL_INTERNAL_H
#define FT_MODEL_INTERNAL_H
#include "finetune/arena.h"
#include "finetune/adapter.h"
#include "finetune/context.h"
#include "finetune/model.h"
#include "finetune/train_state.h"

#include "core/json_util.h"
#include <cjson/cJSON.h>

/* parameter slots of one layer */
enum { P_LN1_W, P_LN1_B, P_QKV_W, P_QKV_B, P_ATTN_W, P_ATTN_B, P_LN2_W, P_LN2_B,
       P_FC_W, P_FC_B, P_PROJ_W, P_PROJ_B, P_LAYER_COUNT };
/* global slots */
enum { G_WTE, G_WPE, G_LNF_W, G_LNF_B, G_LM_HEAD, G_COUNT };

/* Activations for B x T (N = B*T rows). Which layers keep their own buffers depends on the recompute
 * mode (model.h ft_recompute) the arena was laid out for: Ls = L with FT_RECOMPUTE_NONE / ATTENTION and
 * 1 with FT_RECOMPUTE_BLOCK (every layer's forward writes the same buffers; backward reruns the block);
 * La = L with FT_RECOMPUTE_NONE, else 1 (backward recomputes the probabilities from qkv). res3 always
 * keeps every layer: the block outputs are the next blocks' inputs. */
typedef struct ft_acts {
    int B, T;
    int recompute;            /* ft_recompute the buffers were laid out for */
    float *encoded;           /* [N, C] embedding output = residual stream entering layer 0 */
    float *ln1, *ln1_mean, *ln1_rstd;      /* [Ls, N, C], [Ls, N], [Ls, N] */
    float *qkv;               /* [Ls, N, QKV] (after RoPE) */
    float *atty;              /* [Ls, N, NH*HS] attention output before projection */
    float *att;               /* [La, B, NH, T, T] softmax probabilities */
    float *res2;              /* [Ls, N, C] residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;      /* [Ls, N, C], [Ls, N], [Ls, N] */
    float *fch;               /* [Ls, N, F] fc output (pre-activation) */
    float *fch_act;           /* [Ls, N, I] activation output */
    float *res3;              /* [L, N, C] layer output */
    float *lnf, *lnf_mean, *lnf_rstd;      /* [N, C], [N], [N] */
    float *logits;            /* [N, V] (dlogits in place during backward) */
    float *losses;            /* [N] */
    float *scratch;           /* [N, max(C, ...)] matmul output before the residual add */
    /* backward buffers, reused by every layer */
    float *dres;              /* [N, C] gradient of the residual stream */
    float *dln;               /* [N, C] */
    float *datty;             /* [N, NH*HS] */
    float *dqkv;              /* [N, QKV] */
    float *datt;              /* [B, NH, T, T] */
    float *dfch;              /* [N, F] */
    float *dfch_act;          /* [N, I] */
    int   *ids, *targets, *pos, *seg;      /* [N] copies of the last forward's inputs */
    int    has_seg, has_targets, n_targets;
    /* the LM head's rows: all N, or (training with targets) only the n_targets rows with a target: head_rows
     * [head_n] their positions, head_targets [head_n] their targets, their normed inputs compacted into scratch */
    int   *head_rows, *head_targets;       /* [N] */
    int    head_n, head_compact;
} ft_acts;

typedef struct ft_lora {
    int     layer, slot;      /* the base matmul: layer and P_QKV_W / P_ATTN_W / P_FC_W / P_PROJ_W */
    int64_t row0, rows;       /* output columns [row0, row0 + rows) of that matmul */
    int     in, r;            /* input features, rank */
    float   scale, dropout;
    int     pa, pb;           /* params index of A [r, in] and B [rows, r] */
    char    module[160];      /* PEFT module path, e.g. "transformer.h.0.attn.c_attn" */
    float  *xa;               /* [N, r] saved A x for backward (activation arena) */
} ft_lora;

/* ---- a training state (train_state.h): everything one training writes over a model's weights ----
 * Its LoRA adapters and their scratch, the gradients, the activations of the last forward, the dropout
 * stream and label smoothing, the quantized-matmul workspace. The model's own (m->ts) is what
 * ft_model_forward / ft_model_backward run: it may train the base weights too (their gradients are the
 * ft_param.grad of m->params, its adapters' A and B are appended to m->params). Extra states
 * (ft_train_state_create) only read the weights and train their own adapters (params [2 n_lora], pa / pb
 * index it): several trainings over one shared base. */
struct ft_train_state {
    ft_model *m;
    int own;                   /* 1: the model's own state (m->ts) */
    ft_param *params;          /* extra states: their adapters' A and B [n_params]; own: NULL (m->params) */
    int n_params;
    ft_lora *lora;             /* [n_lora] adapters (lora.c) */
    int n_lora, lora_rmax, lora_inmax;
    float lora_alpha_cfg, lora_dropout_cfg;
    int lora_r_cfg, lora_rslora_cfg;
    char lora_targets_cfg[512];
    float *lora_dxa, *lora_xd, *lora_dx;  /* backward scratch [N, rmax], [N, inmax], [N, inmax] */
    ft_arena grads, act_arena, lora_arena;
    int grads_ready;
    int training;              /* dropout on */
    int recompute;             /* ft_recompute: what training forwards keep for backward */
    uint64_t dropout_seed;
    float label_smoothing;
    float *qws; size_t qws_floats;        /* extra states: their quantized-matmul workspace; own: NULL (the model's) */
    ft_acts a;
    /* attributions (ft_model_forward_embeds / ft_model_backward_embeds): the word-embedding output given in place of
     * wte[ids] [N,C] (NULL: the lookup); while input_grads is set the backward computes input gradients only (every
     * parameter gradient NULL) and leaves d(word-embedding output) in a.dres */
    const float *word_embeds;
    int input_grads;
};

struct ft_model {
    ft_model_config cfg;
    const ft_backend *be;
    int n_params;
    ft_param *params;          /* [n_params] */
    int *layer_slot;           /* [L * P_LAYER_COUNT] index into params or -1 */
    int global_slot[G_COUNT];  /* index into params or -1 */
    ft_arena weights;
    ft_arena qarena;           /* quantized weights + their descriptors (quantize.c) */
    ft_dtype load_quant;       /* FT_F32, or store the blocks' linear weights (and the head) as NF4 / int8 (QLoRA) or
                                  bf16 (generation) while loading */
    float *qws; size_t qws_floats;        /* workspace of the quantized matmuls (the own training state's, decoding's) */
    ft_param head_lp;          /* load_quant FT_BF16 on a tied model: the LM head's own bf16 copy of wte [V, C] in
                                  qarena (lm_head of decoder.c uses it); qdesc NULL otherwise */
    /* loading from a file whose weights stay in their own storage (GGUF blocks, gguf_model.c): plans every
     * param as ft__quant_plan does (the f32 ones at offsets in plan, the others in qarena); NULL otherwise */
    int (*load_plan)(struct ft_model *m, ft_arena *plan);
    void *load_ctx;
    float *inv_freq;           /* [HS/2] RoPE inverse frequencies (Llama family) */
    ft_train_state ts;         /* the model's own training state (ft_model_forward / backward) */
    /* ft_model_kv_reset / ft_model_decode: one sequence through a one-slot context (context.c) */
    struct ft_context *dctx;
};

/* train_state.c: frees what a state owns (its arenas, adapters, table, workspace), not the state itself */
void ft__ts_release(ft_train_state *s);
/* lora.c: the adapters of c on state s (A Kaiming-uniform, B zero); s's adapters as a PEFT directory */
struct ft_lora_config;
int ft__lora_add(ft_train_state *s, const struct ft_lora_config *c, uint64_t seed);
int ft__lora_save(const ft_train_state *s, const char *dir, const char *base_path);

/* a state's parameter table (own: the model's, base + adapters) and its quantized-matmul workspace */
static inline ft_param *ft__ts_params(const ft_train_state *s) { return s->own ? s->m->params : s->params; }
static inline float *ft__ts_ws(const ft_train_state *s, size_t *wsn) {
    *wsn = s->own ? s->m->qws_floats : s->qws_floats;
    return s->own ? s->m->qws : s->qws;
}

/* sizes */
static inline int ft_qkv_dim(const ft_model_config *c) { return (c->n_head + 2 * c->n_kv_head) * c->head_dim; }
static inline int ft_fc_dim(const ft_model_config *c) { return c->arch == FT_ARCH_GPT2 ? c->ffn_hidden : 2 * c->ffn_hidden; }

static inline float *ft_lp(const ft_model *m, int l, int slot) {
    int i = m->layer_slot[l * P_LAYER_COUNT + slot];
    return i < 0 ? NULL : (float *)m->params[i].t.data;
}
static inline float *ft_lg(const ft_model *m, int l, int slot) {
    int i = m->layer_slot[l * P_LAYER_COUNT + slot];
    return i < 0 ? NULL : m->params[i].grad;
}
static inline float *ft_gp(const ft_model *m, int slot) {
    int i = m->global_slot[slot];
    return i < 0 ? NULL : (float *)m->params[i].t.data;
}
static inline float *ft_gg(const ft_model *m, int slot) {
    int i = m->global_slot[slot];
    return i < 0 ? NULL : m->params[i].grad;
}

/* quantize.c: with m->load_quant set, lays out the quantized params in m->qarena and re-plans the
 * f32 offsets of the others into plan (layout()); quantizes an f32 [rows, cols] into param i */
int ft__quant_plan(ft_model *m, ft_arena *plan);
int ft__quant_param(ft_model *m, int i, const float *w);
/* after every param is filled: the bf16 copy of a tied head (m->head_lp) from wte; no-op otherwise */
int ft__quant_finish(ft_model *m);
/* model.c: a model of cfg laid out (weights unfilled); with plan set, plan(m, arena plan) lays the params
 * out (m->load_ctx = ctx while it runs). gguf_model.c: a GGUF file with its blocks kept quantized. */
int ft__model_new(ft_model **out, const ft_model_config *cfg, const ft_backend *be, ft_dtype quant,
                  int (*plan)(ft_model *m, ft_arena *plan), void *ctx);

/* linear layers of the blocks, whatever the weight's storage (f32 or quantized): decoder.c.
 * They take the quantized-matmul workspace (a context's own, so that contexts share the model). */
void ft__linear_forward_ws(const ft_model *m, int l, int slot, float *out, const float *inp, const float *bias, int N, int C, int OC,
                          float *ws, size_t wsn);
/* the LM head over N rows (f32, tied, or quantized) */
void ft__head_forward_ws(const ft_model *m, float *out, const float *inp, int N, float *ws, size_t wsn);
/* the family's norm (LayerNorm / RMSNorm; mean, rstd may be NULL) and MLP activation (GELU-tanh / SwiGLU) */
void ft__norm_forward(const ft_model *m, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N);
void ft__act_forward(const ft_model *m, float *out, const float *inp, int N);
/* ---- the transformer block, written once (decoder.c) for training, prefill and decoding ----
 * b: the buffers of one pass over N rows (decoding may alias ln1/ln2, res2/res3/x and keep no statistics);
 * ops: how attention and LoRA are done, the quantized-matmul workspace and the residual dropout. */
typedef struct ft_block_io {
    const float *x;                                  /* [N, C] residual stream in */
    float *ln1, *ln1_mean, *ln1_rstd;                /* [N, C], [N], [N] (statistics may be NULL) */
    float *qkv, *atty;                               /* [N, QKV] (after RoPE), [N, NH*HS] */
    float *res2;                                     /* [N, C] after attention */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch, *fch_act;                            /* [N, F], [N, I] */
    float *res3;                                     /* [N, C] block output */
    float *scratch;                                  /* [N, max(C, NH*HS)] */
} ft_block_io;
typedef struct ft_block_ops {
    /* atty [N, NH*HS] from qkv [N, QKV] of layer l */
    void (*attention)(void *ctx, int l, float *atty, const float *qkv);
    /* out (row stride ldo) += the LoRA adapters of (l, slot) applied to inp [N, in] */
    void (*lora)(void *ctx, int l, int slot, const float *inp, float *out, int ldo, int N);
    /* optional: 1 when lora adds anything to (l, slot)'s output, else 0; NULL: not known (nothing is fused into
     * the product whose output it may change: the MLP's GELU) */
    int (*has_lora)(void *ctx, int l, int slot);
    void  *ctx;
    float *ws; size_t wsn;                           /* quantized-matmul workspace */
    float  resid_p;                                  /* residual dropout (training), else 0 */
    uint64_t seed;                                   /* its dropout stream (training's seed) */
} ft_block_ops;
void ft__block_forward(const ft_model *m, int l, const ft_block_io *b, int N, const int *pos, const ft_block_ops *ops);

void ft__linear_backward(const ft_model *m, int l, int slot, float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, int N, int C, int OC, float *ws, size_t wsn);

/* LoRA hooks (lora.c): after the base matmul of (layer, slot), add the adapters' contribution to
 * out (row stride ldo); in backward, add their input gradient into dinp and their A/B gradients */
void ft__lora_forward(ft_train_state *s, int l, int slot, const float *inp, float *out, int ldo, int N);
void ft__lora_backward(ft_train_state *s, int l, int slot, const float *inp, const float *dout, int ldo, float *dinp, int N);
size_t ft__lora_act_floats(const ft_train_state *s, int N);
void ft__lora_bind_acts(ft_train_state *s, ft_arena *a, int N);

/* params.c: parameter p (f32 [rows, cols], cols 0 = 1-D) planned at the end of plan; t.data holds its
 * offset until the arena is made (the caller then adds the arena base) */
void ft__param_plan(ft_param *p, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay);
/* params.c: ft_params_zero_grad for a state that marks its linear weights' gradients pending (model.h
 * ft_param.grad_pending) instead of clearing them; the others cleared. The first call allocates (zeroed). */
int ft__params_zero_grad_lazy(ft_param *params, int n, ft_arena *grads, int *ready, const ft_backend *be);
/* How zero_grad clears (a switch for tests and before/after measurements, read per call; thread-safe):
 *   FT__GRAD_ZERO_ASSIGN   the default: linear weights' gradients pending, assigned by the backward's products
 *   FT__GRAD_ZERO_MEMSET   every gradient cleared at zero_grad (split over the OpenMP threads), products accumulate
 *   FT__GRAD_ZERO_MEMSET1  as before issue 16: one memset of the whole arena on one thread, products accumulate */
enum { FT__GRAD_ZERO_ASSIGN, FT__GRAD_ZERO_MEMSET, FT__GRAD_ZERO_MEMSET1 };
void ft__grad_zero_mode_set(int mode);
int  ft__grad_zero_mode_get(void);
/* Freezing (ft_model_freeze / ft_encoder_freeze and their train_only): patterns is a comma-separated list;
 * match(model, i, pat) says whether parameter i (of n) matches one pattern (1 / 0, -1: a malformed layer
 * range). freeze_matching 1: the matched parameters stop training; 0: all others do. kinds lists the
 * family's named patterns for the error when a pattern matches nothing (FT_ERR_NOT_FOUND). Returns the
 * number of matches. */
int ft__params_apply_patterns(ft_param *params, int n, const char *patterns, int freeze_matching,
                              int (*match)(const void *model, int i, const char *pat), const void *model, const char *kinds);
/* "layers:A-B" / "layers:A" (0-based blocks): 1 with [*a, *b]; 0 when pat names no layers; -1 when malformed */
int ft__pattern_layers(const char *pat, int *a, int *b);

/* ---- adapters as objects (adapter.c) ----
 * One adapted linear layer: out[:, row0:row0+rows] += scale * (x A^T) B^T with x [N, in], A [r, in], B [rows, r]. */
typedef struct ft_adapter_module {
    int     layer, slot;      /* the base matmul: layer and P_QKV_W / P_ATTN_W / P_FC_W / P_PROJ_W */
    int     site;             /* index of the matmul among the block's adapted sites (decoder 0..3, encoder 0..5) */
    int     piece;            /* which Hugging Face tensor of that matmul (q / k / v, gate / up) */
    int64_t row0, rows;       /* its output columns */
    int     in, r;
    float   scale;
    float  *A, *B;            /* [r, in], [rows, r] */
    char    module[160];      /* PEFT module path */
} ft_adapter_module;

/* the four adapted sites of a block, in forward order, and a slot's index among them (-1 if none) */
extern const int ft__lora_sites[4];
int ft__lora_site_index(int slot);

/* The modules of m that targets ("" = family default, "all-linear", comma-separated names) select, in
 * (layer, site, piece) order: layer, slot, row0, rows, in and module filled. out NULL: count only.
 * FT_ERR_NOT_FOUND (listing the module names) when nothing matches. */
int ft__lora_plan_modules(const ft_model *m, const char *targets, ft_adapter_module *out);
/* The one LoRA forward: out (already offset to row0, row stride ldo) += scale * (x A^T) B^T over N rows;
 * xa [N, r] receives x A^T (kept for backward by training). */
void ft__lora_module_forward(const ft_backend *be, float *out, int ldo, const float *x, const float *A, const float *B,
                            float *xa, int N, int in, int r, int64_t rows, float scale);

/* Its backward, for out += scale * (dropout_p(x) A^T) B^T: dB += scale dout^T xa, dA += dxa^T dropout(x), dinp
 * (may be NULL) += dropout^T(dxa A). x is the raw input (the mask is regenerated from seed; p 0 = none);
 * xd [N, in], dxa [N, r], dx [N, in] are scratch. Gradients ACCUMULATE. */
void ft__lora_module_backward(const ft_backend *be, float *dinp, float *dA, float *dB, const float *dout, int ldo,
                              const float *x, const float *A, const float *B, const float *xa, int N, int in, int r,
                              int64_t rows, float scale, float p, uint64_t seed, float *xd, float *dxa, float *dx);

struct ft_adapter {
    char name[256];
    int  n_mod;
    ft_adapter_module *mods;  /* [n_mod] in (layer, site) order */
    int  n_sites;             /* adapted sites per block: 4 (decoder) or 6 (encoder) */
    int *site_first;          /* [L*n_sites + 1]: modules of (l, s) are [site_first[l*n_sites+s], site_first[l*n_sites+s+1]) */
    int  r, rslora;
    float alpha, dropout;
    char targets[512];
    int  encoder;             /* 0: made for a decoder of shape `shape`; 1: for an encoder of shape `enc_shape` */
    ft_model_config shape;
    int  enc_shape[5];        /* encoder arch, n_layer, n_embd, n_head, ffn_hidden */
    ft_arena mem;             /* A and B of every module */
    /* encoder adapters that carry their own task head (PEFT modules_to_save): which of the model's head
     * tensors it replaces (encoder_internal.h E_* ids) and their values, shaped as the model's */
    int    n_head;
    int    head_id[8];
    float *head[8];           /* into head_mem */
    float *head_mem;
};
/* 1 when a was made for a model of m's shape */
int ft__adapter_fits(const struct ft_adapter *a, const ft_model *m);
/* an adapter of n_mod modules over n_layer blocks of n_sites sites: the caller fills mods[k] (layer, site,
 * slot, row0, rows, in, r, scale, module) in (layer, site) order, then ft__adapter_finish carves A and B
 * (zero) and builds the site index. ft__adapter_alloc returns NULL (error set) when out of memory. */
ft_adapter *ft__adapter_alloc(int n_mod, int n_layer, int n_sites);
int ft__adapter_finish(ft_adapter *a, int n_layer);
/* reads every module's A and B from dir/adapter_model.safetensors (PEFT keys, shapes checked) */
int ft__adapter_read(ft_adapter *a, const char *dir);
/* writes dir/adapter_model.safetensors with PEFT's metadata */
struct ft_st_tensor;
int ft__peft_write_tensors(const char *dir, const struct ft_st_tensor *ts, int n);
/* PEFT's target matching: "all-linear", or a module equal to a target or ending with "." + target */
int ft__lora_target_matches(const char *module, const char *targets);

/* per-family hooks (gpt2.c, llama.c) */
int ft__gpt2_config_from_json(ft_model_config *cfg, const cJSON *root, const char *path);
int ft__llama_config_from_json(ft_model_config *cfg, const cJSON *root, const char *path);
int ft__gpt2_config_to_json(const ft_model_config *cfg, cJSON *root);
int ft__llama_config_to_json(const ft_model_config *cfg, cJSON *root);
/* HF pieces of internal parameter (layer l or -1, slot); prefix chosen by the caller */
int ft__gpt2_hf_pieces(const ft_model_config *cfg, int l, int slot, const char *prefix, ft_hf_piece p[3]);
int ft__llama_hf_pieces(const ft_model_config *cfg, int l, int slot, ft_hf_piece p[3]);
/* RoPE inverse frequencies with the config's scaling, inv_freq[HS/2] */
void ft__llama_rope_inv_freq(const ft_model_config *cfg, float *inv_freq);

/* JSON helpers */
#endif
