/* adapter.c — LoRA adapters as objects (adapter.h), and the pieces every LoRA path shares: which modules
 * a target list selects (ft__lora_plan_modules) and the low-rank update itself (ft__lora_module_forward),
 * used by training (lora.c) and by batched decoding with per-sequence adapters (context.c). */
#include "model_internal.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "peft_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int ft__lora_sites[4] = {P_QKV_W, P_ATTN_W, P_FC_W, P_PROJ_W};

int ft__lora_site_index(int slot) {
    for (int s = 0; s < 4; s++) if (ft__lora_sites[s] == slot) return s;
    return -1;
}

/* ------------------------------------------------------------------ target matching */

int ft__lora_target_matches(const char *module, const char *targets) {
    if (!strcmp(targets, "all-linear")) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", targets);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        size_t ml = strlen(module), tl = strlen(t);
        if (!strcmp(module, t) || !strcmp(t, "all-linear")) return 1;
        if (ml > tl && module[ml - tl - 1] == '.' && !strcmp(module + ml - tl, t)) return 1;
    }
    return 0;
}

int ft__lora_plan_modules(const ft_model *m, const char *targets, ft_adapter_module *out) {
    const ft_model_config *c = &m->cfg;
    const char *tg = targets && *targets ? targets : (c->arch == FT_ARCH_GPT2 ? "c_attn" : "q_proj,v_proj");
    int n = 0;
    for (int l = 0; l < c->n_layer; l++)
        for (int s = 0; s < 4; s++) {
            int pi = m->layer_slot[l * P_LAYER_COUNT + ft__lora_sites[s]];
            ft_hf_piece pc[3];
            int npc = ft_model_hf_pieces(m, pi, pc);
            for (int k = 0; k < npc; k++) {
                char mod[160];
                size_t nl = strnlen(pc[k].name, sizeof pc[k].name);
                snprintf(mod, sizeof mod, "%.*s", (int)(nl > 7 ? nl - 7 : 0), pc[k].name); /* strip ".weight" */
                if (!ft__lora_target_matches(mod, tg)) continue;
                if (out) {
                    ft_adapter_module *a = &out[n];
                    memset(a, 0, sizeof *a);
                    snprintf(a->module, sizeof a->module, "%s", mod);
                    a->layer = l; a->slot = ft__lora_sites[s]; a->site = s; a->piece = k;
                    a->row0 = pc[k].row0; a->rows = pc[k].rows;
                    a->in = (int)m->params[pi].t.shape[1];
                }
                n++;
            }
        }
    if (n == 0) {
        ft_hf_piece pc[3];
        ft_model_hf_pieces(m, m->layer_slot[ft__lora_sites[0]], pc);
        return ft_error(FT_ERR_NOT_FOUND, "LoRA targets \"%s\" match no module of this %s model (modules look like \"%.*s\"; "
                        "targets: %s, or all-linear)", tg, c->model_type, (int)(strlen(pc[0].name) - 7), pc[0].name,
                        c->arch == FT_ARCH_GPT2 ? "c_attn, c_proj, c_fc, attn.c_proj, mlp.c_proj"
                                                : "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    }
    return n;
}

void ft__lora_module_forward(const ft_backend *be, float *out, int ldo, const float *x, const float *A, const float *B,
                            float *xa, int N, int in, int r, int64_t rows, float scale) {
    be->matmul_forward(be->ctx, xa, x, A, NULL, N, in, r);                          /* xa [N, r] = x A^T */
    be->matmul_acc_forward(be->ctx, out, ldo, xa, B, N, r, (int)rows, scale);        /* out += scale xa B^T */
}

/* x[n] *= s (small adapter buffers, host memory as the gradient clipping's ft__params_scale_grads) */
static void scale_into(float *y, const float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) y[i] = s * x[i];
}

/* The bf16 tables (--precision bf16) take the adapter products whose sum is long — dxa = scale dout B (over
 * the module's rows), dB += scale dout^T xa and dA += dxa^T x (over the N tokens) — through their linear
 * layer's backward (the bf16 GEMM, f32 accumulation: 2-3x less CPU time than the strided sgemm at r = 8,
 * BENCHMARKS "The LoRA step in bf16"). The products whose sum runs over the rank alone (out += scale xa B^T,
 * dinp += dxa A: K = r) stay in matmul_acc (f32 sgemm), as does the merge (W += scale B A, f32 exact). That
 * needs the module's output gradient contiguous (ldo == rows: the whole fused matrix, as GPT-2's c_attn) and
 * r <= in (xd holds scale xa); otherwise, and with the f32 tables, the f32 products of before. */
static int bf16_products(const ft_backend *be, int ldo, int64_t rows, int r, int in) {
    return ldo == rows && r <= in && strcmp(ft_backend_precision(be), "bf16") == 0;
}

void ft__lora_module_backward(const ft_backend *be, float *dinp, float *dA, float *dB, const float *dout, int ldo,
                              const float *x, const float *A, const float *B, const float *xa, int N, int in, int r,
                              int64_t rows, float scale, float p, uint64_t seed, float *xd, float *dxa, float *dx) {
    int bf = bf16_products(be, ldo, rows, r, in);
    if (bf) {
        /* dxa [N, r] = dout B (assigned), dB [rows, r] += dout^T (scale xa), then dxa *= scale */
        be->matmul_backward(be->ctx, dxa, NULL, NULL, dout, NULL, B, N, r, (int)rows);
        if (dB) {
            scale_into(xd, xa, (size_t)N * r, scale);
            be->matmul_backward(be->ctx, NULL, dB, NULL, dout, xd, NULL, N, r, (int)rows);
        }
        scale_into(dxa, dxa, (size_t)N * r, scale);
    } else {
        /* dxa = scale dout B;  dB += scale dout^T xa */
        memset(dxa, 0, sizeof(float) * (size_t)N * r);
        be->matmul_acc_backward(be->ctx, dxa, dB, dout, ldo, xa, B, N, r, (int)rows, scale);
    }
    const float *xx = x;
    if (p > 0) {   /* the forward's mask, regenerated from its seed */
        be->dropout_forward(be->ctx, xd, x, (size_t)N * in, p, seed);
        xx = xd;
    }
    /* dA += dxa^T dropout(x);  d(input) += dropout^T(dxa A) */
    if (bf) {
        if (dA) be->matmul_backward(be->ctx, NULL, dA, NULL, dxa, xx, NULL, N, in, r);
        if (!dinp) return;
        if (p <= 0) { be->matmul_acc_backward(be->ctx, dinp, NULL, dxa, r, NULL, A, N, in, r, 1.0f); return; }
        memset(dx, 0, sizeof(float) * (size_t)N * in);
        be->matmul_acc_backward(be->ctx, dx, NULL, dxa, r, NULL, A, N, in, r, 1.0f);
        be->dropout_backward(be->ctx, dx, dx, (size_t)N * in, p, seed);
        be->residual_forward(be->ctx, dinp, dinp, dx, (size_t)N * in);
        return;
    }
    if (p <= 0 || !dinp) {
        be->matmul_acc_backward(be->ctx, p > 0 ? NULL : dinp, dA, dxa, r, xx, A, N, in, r, 1.0f);
        return;
    }
    be->matmul_acc_backward(be->ctx, NULL, dA, dxa, r, xx, A, N, in, r, 1.0f);
    memset(dx, 0, sizeof(float) * (size_t)N * in);
    be->matmul_acc_backward(be->ctx, dx, NULL, dxa, r, xx, A, N, in, r, 1.0f);
    be->dropout_backward(be->ctx, dx, dx, (size_t)N * in, p, seed);
    be->residual_forward(be->ctx, dinp, dinp, dx, (size_t)N * in);
}

/* ------------------------------------------------------------------ adapter objects */

static int same_shape(const ft_model_config *a, const ft_model_config *b) {
    return a->arch == b->arch && a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head &&
           a->n_kv_head == b->n_kv_head && a->head_dim == b->head_dim && a->ffn_hidden == b->ffn_hidden;
}

int ft__adapter_fits(const ft_adapter *a, const ft_model *m) { return !a->encoder && same_shape(&a->shape, &m->cfg); }

ft_adapter *ft__adapter_alloc(int n_mod, int n_layer, int n_sites) {
    ft_adapter *a = calloc(1, sizeof *a);
    if (a) {
        a->mods = calloc((size_t)(n_mod > 0 ? n_mod : 1), sizeof *a->mods);
        a->site_first = calloc((size_t)n_layer * n_sites + 1, sizeof *a->site_first);
        a->n_mod = n_mod;
        a->n_sites = n_sites;
    }
    if (!a || !a->mods || !a->site_first) { ft_adapter_free(a); ft_error(FT_ERR_NOMEM, "adapter: out of memory"); return NULL; }
    return a;
}

int ft__adapter_finish(ft_adapter *a, int n_layer) {
    ft_arena plan;
    ft_arena_plan(&plan);
    for (int k = 0; k < a->n_mod; k++) {
        ft_arena_alloc(&plan, sizeof(float) * (size_t)a->mods[k].r * a->mods[k].in);
        ft_arena_alloc(&plan, sizeof(float) * (size_t)a->mods[k].rows * a->mods[k].r);
    }
    FT_TRY(ft_arena_init(&a->mem, plan.used ? plan.used : FT_ALIGN));
    for (int k = 0; k < a->n_mod; k++) {
        ft_adapter_module *md = &a->mods[k];
        md->A = ft_arena_alloc(&a->mem, sizeof(float) * (size_t)md->r * md->in);
        md->B = ft_arena_alloc(&a->mem, sizeof(float) * (size_t)md->rows * md->r);
    }
    /* site index: modules come in (layer, site) order */
    int k = 0, S = n_layer * a->n_sites;
    for (int s = 0; s < S; s++) {
        a->site_first[s] = k;
        while (k < a->n_mod && a->mods[k].layer * a->n_sites + a->mods[k].site == s) k++;
    }
    a->site_first[S] = k;
    return k == a->n_mod ? FT_OK : ft_error(FT_ERR_INVALID, "adapter: modules are not in (layer, site) order");
}

/* the modules of targets over m, with A / B carved from one allocation */
static int adapter_new(ft_adapter **out, const ft_model *m, const char *targets, int r, float alpha, float dropout,
                       int rslora, const char *name) {
    *out = NULL;
    if (r <= 0) return ft_error(FT_ERR_INVALID, "LoRA rank must be positive (got %d)", r);
    int n = ft__lora_plan_modules(m, targets, NULL);
    if (n < 0) return n;
    int L = m->cfg.n_layer;
    ft_adapter *a = ft__adapter_alloc(n, L, 4);
    if (!a) return FT_ERR_NOMEM;
    ft__lora_plan_modules(m, targets, a->mods);
    a->r = r; a->alpha = alpha; a->dropout = dropout; a->rslora = rslora;
    a->shape = m->cfg;
    snprintf(a->targets, sizeof a->targets, "%s", targets && *targets ? targets : (m->cfg.arch == FT_ARCH_GPT2 ? "c_attn" : "q_proj,v_proj"));
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    float scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    for (int k = 0; k < a->n_mod; k++) { a->mods[k].r = r; a->mods[k].scale = scale; }
    int rc = ft__adapter_finish(a, L);
    if (rc < 0) { ft_adapter_free(a); return rc; }
    *out = a;
    return FT_OK;
}

int ft__adapter_read(ft_adapter *a, const char *dir) {
    char path[4096];
    ft_safetensors *st = NULL;
    int rc = ft_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (rc == FT_OK) rc = ft_st_open(&st, path);
    for (int k = 0; k < a->n_mod && rc == FT_OK; k++) {
        ft_adapter_module *md = &a->mods[k];
        for (int w = 0; w < 2 && rc == FT_OK; w++) {
            ft_param p;   /* a view of A or B for the shape-checked reader */
            memset(&p, 0, sizeof p);
            p.t.dtype = FT_F32;
            p.t.ndim = 2;
            p.t.shape[0] = w ? md->rows : md->r;
            p.t.shape[1] = w ? md->r : md->in;
            p.t.data = w ? md->B : md->A;
            rc = ft__peft_read_lora_weight(st, md->module, w ? 'B' : 'A', &p);
        }
    }
    if (st) ft_st_close(st);
    return rc;
}

int ft__peft_write_tensors(const char *dir, const ft_st_tensor *ts, int n) {
    char path[4096];
    static const char *meta[] = {"format", "pt"};   /* what peft's save_pretrained writes */
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    return ft_st_write(path, ts, n, meta, 1);
}

int ft_adapter_load(ft_adapter **out, const ft_model *base, const char *dir) {
    *out = NULL;
    ft_peft_lora_config pc;
    FT_TRY(ft__peft_lora_config_read(&pc, dir));
    if (pc.n_modules_to_save > 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s/adapter_config.json: modules_to_save is not supported for decoder adapters", dir);
    ft_adapter *a;
    FT_TRY(adapter_new(&a, base, pc.targets, pc.r, pc.alpha, pc.dropout, pc.rslora, dir));
    int rc = ft__adapter_read(a, dir);
    if (rc < 0) { ft_adapter_free(a); return rc; }
    *out = a;
    return FT_OK;
}

int ft_adapter_from_model(ft_adapter **out, const ft_model *m) {
    *out = NULL;
    if (!m->ts.n_lora) return ft_error(FT_ERR_INVALID, "the model has no LoRA adapters to copy");
    ft_adapter *a;
    FT_TRY(adapter_new(&a, m, m->ts.lora_targets_cfg, m->ts.lora_r_cfg, m->ts.lora_alpha_cfg, m->ts.lora_dropout_cfg,
                       m->ts.lora_rslora_cfg, "(trained)"));
    if (a->n_mod != m->ts.n_lora) {
        ft_adapter_free(a);
        return ft_error(FT_ERR_INVALID, "the model's %d LoRA modules do not match its targets \"%s\"", m->ts.n_lora, m->ts.lora_targets_cfg);
    }
    for (int k = 0; k < a->n_mod; k++) {
        const ft_lora *l = &m->ts.lora[k];
        ft_adapter_module *md = &a->mods[k];
        md->scale = l->scale;
        memcpy(md->A, m->params[l->pa].t.data, sizeof(float) * (size_t)md->r * md->in);
        memcpy(md->B, m->params[l->pb].t.data, sizeof(float) * (size_t)md->rows * md->r);
    }
    *out = a;
    return FT_OK;
}

int ft_adapter_create(ft_adapter **out, const ft_model *base, const ft_lora_config *c, uint64_t seed) {
    ft_adapter *a;
    FT_TRY(adapter_new(&a, base, c->targets, c->r, c->alpha, c->dropout, c->rslora, "(new)"));
    ft_rng rng;
    ft_rng_seed(&rng, seed ^ 0x10A4A10A4ull);
    for (int k = 0; k < a->n_mod; k++) {   /* the same streams as ft_model_add_lora */
        ft_adapter_module *md = &a->mods[k];
        float bound = 1.0f / sqrtf((float)md->in);   /* kaiming_uniform(a = sqrt(5)) */
        for (int64_t i = 0; i < (int64_t)md->r * md->in; i++) md->A[i] = (2.0f * ft_rng_uniform(&rng) - 1.0f) * bound;
    }
    *out = a;
    return FT_OK;
}

int ft_adapter_head_tensors(const ft_adapter *a) { return a ? a->n_head : 0; }

void ft_adapter_free(ft_adapter *a) {
    if (!a) return;
    ft_arena_free(&a->mem);
    free(a->head_mem);
    free(a->mods);
    free(a->site_first);
    free(a);
}

int ft_adapter_module_weights(ft_adapter *a, int k, float **A, float **B, int *rows, int *in, int *r) {
    if (k < 0 || k >= a->n_mod) return ft_error(FT_ERR_RANGE, "adapter: module %d does not exist (%d modules)", k, a->n_mod);
    const ft_adapter_module *md = &a->mods[k];
    if (A) *A = md->A;
    if (B) *B = md->B;
    if (rows) *rows = (int)md->rows;
    if (in) *in = md->in;
    if (r) *r = md->r;
    return FT_OK;
}

int ft_adapter_module_count(const ft_adapter *a) { return a->n_mod; }
int ft_adapter_rank(const ft_adapter *a) { return a->r; }
float ft_adapter_scale(const ft_adapter *a) { return a->n_mod ? a->mods[0].scale : 0.0f; }
const char *ft_adapter_name(const ft_adapter *a) { return a->name; }
size_t ft_adapter_bytes(const ft_adapter *a) { return a->mem.used; }
