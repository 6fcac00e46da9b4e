/* model.c — parameter layout (one allocation), loading from / saving to Hugging Face directories,
 * random initialisation. The forward/backward loop is in decoder.c. */
#include "model_internal.h"
#include "models/config_limits.h"
#include "finetune/fileio.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- config */

int ft_model_config_from_json(ft_model_config *cfg, const char *json, const char *path) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        const char *at = cJSON_GetErrorPtr();
        int rc = ft_error(FT_ERR_FORMAT, "%s: invalid JSON%s%.20s", path, at ? " near: " : "", at ? at : "");
        cJSON_Delete(root);
        return rc;
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *arch = cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0)) ? cJSON_GetArrayItem(archs, 0)->valuestring : NULL;
    const char *type = cJSON_IsString(mt) ? mt->valuestring : NULL;
    int rc;
    if ((type && strcmp(type, "gpt2") == 0) || (arch && strncmp(arch, "GPT2", 4) == 0))
        rc = ft__gpt2_config_from_json(cfg, root, path);
    else if ((type && (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2"))) ||
             (arch && (!strcmp(arch, "LlamaForCausalLM") || !strcmp(arch, "MistralForCausalLM") || !strcmp(arch, "Qwen2ForCausalLM"))))
        rc = ft__llama_config_from_json(cfg, root, path);
    else
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: unknown architecture (model_type \"%s\", architectures [\"%s\"]); supported: "
                      "gpt2 (GPT2LMHeadModel), llama (LlamaForCausalLM), mistral (MistralForCausalLM), qwen2 (Qwen2ForCausalLM)",
                      path, type ? type : "?", arch ? arch : "?");
    cJSON_Delete(root);
    if (rc < 0) return rc;
    if (cfg->vocab_size <= 0 || cfg->n_layer <= 0 || cfg->n_embd <= 0 || cfg->max_seq_len <= 0 || cfg->ffn_hidden <= 0)
        return ft_error(FT_ERR_FORMAT, "%s: sizes must be positive (vocab %d, layers %d, width %d, context %d, ffn %d)",
                        path, cfg->vocab_size, cfg->n_layer, cfg->n_embd, cfg->max_seq_len, cfg->ffn_hidden);
    return ft__model_config_check(cfg, path);
}

int ft_model_config_load(ft_model_config *cfg, const char *dir) {
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "config.json"));
    if (!ft_path_is_dir(dir)) return ft_error(FT_ERR_NOT_FOUND, "%s: model directory not found", dir);
    char *text;
    int rc = ft_file_read_all(path, &text, NULL);
    if (rc < 0) return rc;
    rc = ft_model_config_from_json(cfg, text, path);
    free(text);
    return rc;
}

int ft_model_config_save(const ft_model_config *cfg, const char *dir) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return ft_error(FT_ERR_NOMEM, "config.json: out of memory");
    if (cfg->arch == FT_ARCH_GPT2) ft__gpt2_config_to_json(cfg, o);
    else ft__llama_config_to_json(cfg, o);
    cJSON_AddStringToObject(o, "torch_dtype", "float32");
    char path[4096];
    int rc = ft_path_join(path, sizeof path, dir, "config.json");
    if (rc == FT_OK) rc = ft__json_write_file(o, path);
    cJSON_Delete(o);
    return rc;
}

/* ---------------------------------------------------------------- layout */

static int add_param(ft_model *m, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay) {
    ft__param_plan(&m->params[m->n_params], plan, name, rows, cols, decay);
    return m->n_params++;
}

static int layout(ft_model *m) {
    const ft_model_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size;
    int gpt2 = c->arch == FT_ARCH_GPT2;
    m->params = calloc((size_t)(L * P_LAYER_COUNT + G_COUNT), sizeof *m->params);
    m->layer_slot = malloc(sizeof(int) * (size_t)L * P_LAYER_COUNT);
    if (!m->params || !m->layer_slot) return ft_error(FT_ERR_NOMEM, "model: out of memory");
    for (int i = 0; i < L * P_LAYER_COUNT; i++) m->layer_slot[i] = -1;
    for (int i = 0; i < G_COUNT; i++) m->global_slot[i] = -1;
    ft_arena plan;
    ft_arena_plan(&plan);
    char n[64];
    m->global_slot[G_WTE] = add_param(m, &plan, "wte", V, C, 0);
    if (gpt2) m->global_slot[G_WPE] = add_param(m, &plan, "wpe", c->max_seq_len, C, 0);
    int QKV = ft_qkv_dim(c), F = ft_fc_dim(c), I = c->ffn_hidden, AC = c->n_head * c->head_dim;
    for (int l = 0; l < L; l++) {
        int *s = &m->layer_slot[l * P_LAYER_COUNT];
#define P(slot, nm, r, cl, d) do { snprintf(n, sizeof n, "h.%d.%s", l, nm); s[slot] = add_param(m, &plan, n, r, cl, d); } while (0)
        P(P_LN1_W, "ln1_w", C, 0, 0);
        if (gpt2) P(P_LN1_B, "ln1_b", C, 0, 0);
        P(P_QKV_W, "qkv_w", QKV, C, 1);
        if (c->qkv_bias) P(P_QKV_B, "qkv_b", QKV, 0, 0);
        P(P_ATTN_W, "attn_w", C, AC, 1);
        if (c->o_bias) P(P_ATTN_B, "attn_b", C, 0, 0);
        P(P_LN2_W, "ln2_w", C, 0, 0);
        if (gpt2) P(P_LN2_B, "ln2_b", C, 0, 0);
        P(P_FC_W, "fc_w", F, C, 1);
        if (c->mlp_bias) P(P_FC_B, "fc_b", F, 0, 0);
        P(P_PROJ_W, "proj_w", C, I, 1);
        if (c->mlp_bias) P(P_PROJ_B, "proj_b", C, 0, 0);
#undef P
    }
    m->global_slot[G_LNF_W] = add_param(m, &plan, "lnf_w", C, 0, 0);
    if (gpt2) m->global_slot[G_LNF_B] = add_param(m, &plan, "lnf_b", C, 0, 0);
    if (!c->tied_embeddings) m->global_slot[G_LM_HEAD] = add_param(m, &plan, "lm_head", V, C, 1);
    /* the weights the loop multiplies as linear layers (ft_param.linear): the blocks' four, and the LM head (the
     * word embeddings when tied) */
    static const int lin[] = {P_QKV_W, P_ATTN_W, P_FC_W, P_PROJ_W};
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 4; j++) m->params[m->layer_slot[l * P_LAYER_COUNT + lin[j]]].linear = 1;
    m->params[m->global_slot[c->tied_embeddings ? G_WTE : G_LM_HEAD]].linear = 1;
    if (m->load_plan) FT_TRY(m->load_plan(m, &plan));
    else if (m->load_quant != FT_F32) FT_TRY(ft__quant_plan(m, &plan));
    FT_TRY(ft_arena_init_on(&m->weights, plan.used, m->be));
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].qdesc) m->params[i].t.data = m->weights.base + (uintptr_t)m->params[i].t.data;
    m->weights.used = plan.used;
    if (c->arch == FT_ARCH_LLAMA) {
        m->inv_freq = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
        if (!m->inv_freq) return ft_error(FT_ERR_NOMEM, "model: out of memory");
        ft__llama_rope_inv_freq(c, m->inv_freq);
    }
    return FT_OK;
}

int ft__model_new(ft_model **out, const ft_model_config *cfg, const ft_backend *be, ft_dtype quant,
                  int (*plan)(ft_model *m, ft_arena *plan), void *ctx) {
    ft_model *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->load_quant = quant;
    m->load_plan = plan;
    m->load_ctx = ctx;
    m->be = be ? be : ft_backend_cpu();
    m->ts.m = m;        /* the model's own training state */
    m->ts.own = 1;
    int64_t n_params;
    int rc = ft__model_config_param_count(cfg, &n_params, "model config");
    if (rc == FT_OK) rc = layout(m);
    m->load_plan = NULL;
    m->load_ctx = NULL;
    if (rc < 0) { ft_model_free(m); return rc; }
    *out = m;
    return FT_OK;
}

static int new_model(ft_model **out, const ft_model_config *cfg, const ft_backend *be, ft_dtype quant) {
    return ft__model_new(out, cfg, be, quant, NULL, NULL);
}

void ft_model_free(ft_model *m) {
    if (!m) return;
    ft_arena_free(&m->weights);
    ft__ts_release(&m->ts);
    ft_context_free(m->dctx);
    ft_arena_free(&m->qarena);
    free(m->qws);
    free(m->params);
    free(m->layer_slot);
    free(m->inv_freq);
    free(m);
}

const ft_model_config *ft_model_get_config(const ft_model *m) { return &m->cfg; }
int ft_model_num_params(const ft_model *m) { return m->n_params; }
ft_param *ft_model_param(ft_model *m, int i) { return i >= 0 && i < m->n_params ? &m->params[i] : NULL; }
const ft_backend *ft_model_backend(const ft_model *m) { return m->be; }

int64_t ft_model_param_count(const ft_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += ft_tensor_numel(&m->params[i].t);
    return n;
}

/* (layer, slot) of parameter i */
static void param_slot(const ft_model *m, int i, int *layer, int *slot) {
    for (int g = 0; g < G_COUNT; g++) if (m->global_slot[g] == i) { *layer = -1; *slot = g; return; }
    for (int k = 0; k < m->cfg.n_layer * P_LAYER_COUNT; k++)
        if (m->layer_slot[k] == i) { *layer = k / P_LAYER_COUNT; *slot = k % P_LAYER_COUNT; return; }
    *layer = -1; *slot = -1;
}

static int hf_pieces_prefix(const ft_model *m, int i, const char *gpt2_prefix, ft_hf_piece p[3]) {
    int l, slot;
    param_slot(m, i, &l, &slot);
    int n = m->cfg.arch == FT_ARCH_GPT2 ? ft__gpt2_hf_pieces(&m->cfg, l, slot, gpt2_prefix, p)
                                        : ft__llama_hf_pieces(&m->cfg, l, slot, p);
    for (int k = 0; k < n; k++) if (p[k].rows < 0) { p[k].row0 = 0; p[k].rows = m->params[i].t.shape[0]; }
    return n;
}

int ft_model_hf_pieces(const ft_model *m, int i, ft_hf_piece p[3]) {
    return hf_pieces_prefix(m, i, m->cfg.arch == FT_ARCH_GPT2 ? "transformer." : "", p);
}

/* ---------------------------------------------------------------- load */

static int load_weights(ft_model *m, const ft_safetensors *st, const char *dir) {
    const char *prefix = "";
    if (m->cfg.arch == FT_ARCH_GPT2) {
        if (ft_st_find(st, "transformer.wte.weight")) prefix = "transformer.";
        else if (!ft_st_find(st, "wte.weight"))
            return ft_error(FT_ERR_NOT_FOUND, "%s: missing tensor \"transformer.wte.weight\" (or \"wte.weight\"): not a GPT-2 checkpoint?", dir);
    }
    float *tmp = NULL;
    size_t tmp_cap = 0;
    int rc = FT_OK;
    float *qtmp = NULL;
    for (int i = 0; i < m->n_params && rc == FT_OK; i++) {
        ft_param *p = &m->params[i];
        ft_hf_piece pc[3];
        int np = hf_pieces_prefix(m, i, prefix, pc);
        int64_t cols = p->t.ndim == 2 ? p->t.shape[1] : 1;
        float *base = p->t.data;
        if (p->qdesc) { /* quantized while loading: assemble the f32 tensor, then quantize it */
            free(qtmp);
            qtmp = malloc(sizeof(float) * (size_t)ft_tensor_numel(&p->t));
            if (!qtmp) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            base = qtmp;
        }
        for (int k = 0; k < np && rc == FT_OK; k++) {
            float *dst = base + pc[k].row0 * cols;
            if (p->t.ndim == 1) {
                int64_t shape[1] = {pc[k].rows};
                rc = ft_st_read_f32(st, pc[k].name, shape, 1, dst);
            } else if (!pc[k].transpose) {
                int64_t shape[2] = {pc[k].rows, cols};
                rc = ft_st_read_f32(st, pc[k].name, shape, 2, dst);
            } else {
                int64_t shape[2] = {cols, pc[k].rows};
                size_t need = (size_t)(cols * pc[k].rows);
                if (need > tmp_cap) {
                    free(tmp);
                    tmp = malloc(need * sizeof(float));
                    tmp_cap = tmp ? need : 0;
                    if (!tmp) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
                }
                rc = ft_st_read_f32(st, pc[k].name, shape, 2, tmp);
                if (rc == FT_OK)
                    for (int64_t r = 0; r < cols; r++)
                        for (int64_t c = 0; c < pc[k].rows; c++) dst[c * cols + r] = tmp[r * pc[k].rows + c];
            }
            ft_st_release(ft_st_find(st, pc[k].name)); /* file pages: read once, then out of the RSS */
        }
        if (rc == FT_OK && p->qdesc) rc = ft__quant_param(m, i, qtmp);
    }
    free(qtmp);
    free(tmp);
    return rc;
}

int ft_model_load(ft_model **out, const char *dir, const ft_backend *be) {
    return ft_model_load_quantized(out, dir, be, FT_F32);
}

int ft_model_load_quantized(ft_model **out, const char *dir, const ft_backend *be, ft_dtype quant) {
    *out = NULL;
    if (ft_model_path_is_gguf(dir)) {   /* a GGUF file: its own quantization (gguf_model.c) */
        if (quant != FT_F32) FT_LOGW("%s: a GGUF model keeps the types of its file; --quant is ignored", dir);
        return ft_model_load_gguf(out, dir, be);
    }
    ft_model_config cfg;
    FT_TRY(ft_model_config_load(&cfg, dir));
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, dir));
    /* before allocating: a config.json that lays out far more values than the weights hold cannot load,
     * and would first allocate and zero all of it (a small shortfall is left to the tensor-by-tensor
     * check, whose message names the missing tensor) */
    int64_t want, have = 0;
    int rc = ft__model_config_param_count(&cfg, &want, dir);
    for (int i = 0; rc == FT_OK && i < ft_st_count(st); i++) {
        const ft_st_entry *e = ft_st_at(st, i);
        int64_t n = 1;
        for (int k = 0; k < e->ndim; k++) n *= e->shape[k];   /* checked against nbytes at open */
        have += n;
    }
    if (rc == FT_OK && want > 2 * have + (1 << 24))
        rc = ft_error(FT_ERR_SHAPE, "%s: config.json lays out %lld parameters (%d layers, width %d, vocabulary %d) but the weights "
                      "hold only %lld values: the config and the weights do not belong together", dir, (long long)want, cfg.n_layer,
                      cfg.n_embd, cfg.vocab_size, (long long)have);
    if (rc < 0) { ft_st_close(st); return rc; }
    ft_model *m = NULL;
    rc = new_model(&m, &cfg, be, quant);
    if (rc == FT_OK) rc = load_weights(m, st, dir);
    if (rc == FT_OK) rc = ft__quant_finish(m);
    ft_st_close(st);
    if (rc < 0) { ft_model_free(m); return rc; }
    *out = m;
    return FT_OK;
}

int ft_model_load_weights(ft_model *m, const char *dir) {
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, dir));
    int rc = load_weights(m, st, dir);
    ft_st_close(st);
    /* the weights changed (all or, after an error, some): a bf16 weight pack of them (ft_optim_set_prepack) is
     * stale, refilled by its next product */
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].pack && m->be->wpack_invalidate) m->be->wpack_invalidate(m->be->ctx, m->params[i].pack);
    return rc;
}

/* ---------------------------------------------------------------- random init */

int ft_model_create_random(ft_model **out, const ft_model_config *cfg, uint64_t seed, const ft_backend *be) {
    return ft_model_create_random_quantized(out, cfg, seed, be, FT_F32);
}

int ft_model_create_random_quantized(ft_model **out, const ft_model_config *cfg, uint64_t seed, const ft_backend *be, ft_dtype quant) {
    ft_model *m = NULL;
    *out = NULL;
    FT_TRY(new_model(&m, cfg, be, quant));
    ft_rng rng;
    ft_rng_seed(&rng, seed);
    float std = cfg->initializer_range > 0 ? cfg->initializer_range : 0.02f;
    float *qtmp = NULL;
    int rc = FT_OK;
    for (int i = 0; i < m->n_params && rc == FT_OK; i++) {
        ft_param *p = &m->params[i];
        int64_t n = ft_tensor_numel(&p->t);
        float *w = p->t.data;
        if (p->qdesc) { /* generated in f32, then quantized */
            free(qtmp);
            w = qtmp = malloc(sizeof(float) * (size_t)n);
            if (!w) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        }
        const char *nm = strrchr(p->name, '.');
        nm = nm ? nm + 1 : p->name;
        int is_norm_w = !strcmp(nm, "ln1_w") || !strcmp(nm, "ln2_w") || !strcmp(p->name, "lnf_w");
        if (is_norm_w) { for (int64_t k = 0; k < n; k++) w[k] = 1.0f; continue; }
        if (p->t.ndim == 1) continue; /* biases: zero */
        /* GPT-2 scales the residual projections by 1/sqrt(2L) */
        float s = std;
        if (cfg->arch == FT_ARCH_GPT2 && (!strcmp(nm, "attn_w") || !strcmp(nm, "proj_w"))) s = std / sqrtf(2.0f * cfg->n_layer);
        if (cfg->arch == FT_ARCH_GPT2 && !strcmp(p->name, "wpe")) s = 0.01f;
        for (int64_t k = 0; k < n; k++) w[k] = s * ft_rng_normal(&rng);
        if (p->qdesc) rc = ft__quant_param(m, i, w);
    }
    free(qtmp);
    if (rc == FT_OK) rc = ft__quant_finish(m);
    if (rc < 0) { ft_model_free(m); return rc; }
    *out = m;
    return FT_OK;
}

/* ---------------------------------------------------------------- save */

int ft_model_save(const ft_model *m, const char *dir) {
    if (m->qarena.base) return ft_error(FT_ERR_UNSUPPORTED, "the model's base weights are quantized; save its LoRA adapter instead");
    FT_TRY(ft_mkdirs(dir));
    int cap = m->n_params * 3, n = 0;
    ft_st_tensor *ts = calloc((size_t)cap, sizeof *ts);
    ft_hf_piece *names = calloc((size_t)cap, sizeof *names);
    float **bufs = calloc((size_t)cap, sizeof *bufs);
    int rc = (ts && names && bufs) ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_params && rc == FT_OK; i++) {
        const ft_param *p = &m->params[i];
        ft_hf_piece pc[3];
        int np = ft_model_hf_pieces(m, i, pc);
        int64_t cols = p->t.ndim == 2 ? p->t.shape[1] : 1;
        for (int k = 0; k < np; k++, n++) {
            names[n] = pc[k];
            const float *src = (const float *)p->t.data + pc[k].row0 * cols;
            ft_st_tensor *t = &ts[n];
            t->name = names[n].name;
            t->dtype = FT_F32;
            if (p->t.ndim == 1) { t->ndim = 1; t->shape[0] = pc[k].rows; t->data = src; continue; }
            t->ndim = 2;
            if (!pc[k].transpose) { t->shape[0] = pc[k].rows; t->shape[1] = cols; t->data = src; continue; }
            t->shape[0] = cols; t->shape[1] = pc[k].rows;
            float *b = bufs[n] = malloc(sizeof(float) * (size_t)(cols * pc[k].rows));
            if (!b) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            for (int64_t r = 0; r < pc[k].rows; r++)
                for (int64_t c = 0; c < cols; c++) b[c * pc[k].rows + r] = src[r * cols + c];
            t->data = b;
        }
    }
    char path[4096];
    if (rc == FT_OK) rc = ft_path_join(path, sizeof path, dir, "model.safetensors");
    static const char *meta[] = {"format", "pt"};
    if (rc == FT_OK) rc = ft_st_write(path, ts, n, meta, 1);
    if (rc == FT_OK) rc = ft_model_config_save(&m->cfg, dir);
    for (int i = 0; i < cap && bufs; i++) free(bufs[i]);
    free(bufs); free(names); free(ts);
    return rc;
}

size_t ft_model_weight_bytes(const ft_model *m) {
    return m->weights.used + m->qarena.used + m->ts.lora_arena.used + m->qws_floats * sizeof(float);
}

size_t ft_model_grad_bytes(const ft_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].trainable) n += (ft_tensor_nbytes(&m->params[i].t) + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    return n;
}

size_t ft_model_save_bytes(const ft_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) {
        ft_hf_piece pc[3];
        int np = ft_model_hf_pieces(m, i, pc);
        for (int k = 0; k < np; k++)
            if (pc[k].transpose) n += sizeof(float) * (size_t)(pc[k].rows * m->params[i].t.shape[1]);
    }
    return n;
}
