/* lora.c — LoRA adapters (PEFT layout) and partial fine-tuning (frozen parameters). See lora.h.
 * Adapters belong to a training state (model_internal.h): the model's own (ft_model_add_lora: their A and B
 * are appended to m->params, the base is frozen) or an extra one over the shared base (train_state.h: its
 * own parameter table). */
#include "model_internal.h"
#include "core/hash.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "peft_config.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_lora_config ft_lora_default_config(void) {
    ft_lora_config c;
    memset(&c, 0, sizeof c);
    c.r = 8;
    c.alpha = 16;
    c.dropout = 0.05f;
    return c;
}

int ft_model_lora_count(const ft_model *m) { return m->ts.n_lora; }

int64_t ft_model_trainable_count(const ft_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) if (m->params[i].trainable) n += ft_tensor_numel(&m->params[i].t);
    return n;
}

/* appends a LoRA parameter to the table (params, *n) */
static int add_lora_param(ft_param *params, int *n, const char *name, int64_t rows, int64_t cols) {
    ft_param *p = &params[*n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->t.dtype = FT_F32;
    p->t.ndim = 2;
    p->t.shape[0] = rows;
    p->t.shape[1] = cols;
    p->decay = 1;
    p->trainable = 1;
    return (*n)++;
}

/* the adapters of state s: the model's own state appends their A and B to m->params and freezes the base;
 * an extra state keeps them in its own table and leaves the model untouched */
static int create_adapters(ft_train_state *s, int r, float alpha, float dropout, int rslora, const char *targets) {
    ft_model *m = s->m;
    if (s->n_lora) return ft_error(FT_ERR_INVALID, "the model already has LoRA adapters");
    if (s->grads_ready) return ft_error(FT_ERR_INVALID, "add LoRA adapters before gradients are allocated");
    if (r <= 0) return ft_error(FT_ERR_INVALID, "LoRA rank must be positive (got %d)", r);
    const ft_model_config *c = &m->cfg;
    const char *tg = targets && *targets ? targets : (c->arch == FT_ARCH_GPT2 ? "c_attn" : "q_proj,v_proj");
    int cap = ft__lora_plan_modules(m, tg, NULL);
    if (cap < 0) return cap;
    ft_param **tab = s->own ? &m->params : &s->params;
    int *ntab = s->own ? &m->n_params : &s->n_params;
    ft_adapter_module *plan_mods = calloc((size_t)cap, sizeof *plan_mods);
    ft_param *np_ = realloc(*tab, sizeof *np_ * (size_t)(*ntab + 2 * cap));
    if (np_) *tab = np_;
    s->lora = calloc((size_t)cap, sizeof *s->lora);
    if (!np_ || !s->lora || !plan_mods) { free(plan_mods); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    ft__lora_plan_modules(m, tg, plan_mods);
    ft_arena plan;
    ft_arena_plan(&plan);
    int first_lora_param = *ntab;
    for (int k = 0; k < cap; k++) {
        const ft_adapter_module *md = &plan_mods[k];
        ft_lora *a = &s->lora[s->n_lora];
        snprintf(a->module, sizeof a->module, "%s", md->module);
        a->layer = md->layer; a->slot = md->slot; a->row0 = md->row0; a->rows = md->rows; a->in = md->in; a->r = r;
        a->scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
        a->dropout = dropout;
        char nm[64];
        snprintf(nm, sizeof nm, "lora.%d.%d.%d.A", md->layer, ft__lora_site_index(md->slot), md->piece);
        a->pa = add_lora_param(*tab, ntab, nm, r, md->in);
        snprintf(nm, sizeof nm, "lora.%d.%d.%d.B", md->layer, ft__lora_site_index(md->slot), md->piece);
        a->pb = add_lora_param(*tab, ntab, nm, a->rows, r);
        ft_arena_alloc(&plan, sizeof(float) * (size_t)r * md->in);
        ft_arena_alloc(&plan, sizeof(float) * (size_t)a->rows * r);
        if (r > s->lora_rmax) s->lora_rmax = r;
        if (md->in > s->lora_inmax) s->lora_inmax = md->in;
        s->n_lora++;
    }
    free(plan_mods);
    FT_TRY(ft_arena_init_on(&s->lora_arena, plan.used, m->be));
    ft_param *tp = *tab;
    for (int i = first_lora_param; i < *ntab; i++) tp[i].t.data = ft_arena_alloc(&s->lora_arena, ft_tensor_nbytes(&tp[i].t));
    for (int i = 0; s->own && i < first_lora_param; i++) tp[i].trainable = 0;
    s->lora_r_cfg = r; s->lora_alpha_cfg = alpha; s->lora_dropout_cfg = dropout; s->lora_rslora_cfg = rslora;
    snprintf(s->lora_targets_cfg, sizeof s->lora_targets_cfg, "%s", tg);
    s->a.B = s->a.T = 0; /* activations are re-planned with the adapters' buffers */
    return FT_OK;
}

/* the adapters of c on state s, initialised as PEFT does: A Kaiming-uniform, B zero */
int ft__lora_add(ft_train_state *s, const ft_lora_config *c, uint64_t seed) {
    FT_TRY(create_adapters(s, c->r, c->alpha, c->dropout, c->rslora, c->targets));
    ft_param *params = ft__ts_params(s);
    ft_rng rng;
    ft_rng_seed(&rng, seed ^ 0x10A4A10A4ull);
    for (int k = 0; k < s->n_lora; k++) {
        ft_lora *a = &s->lora[k];
        float *A = params[a->pa].t.data, bound = 1.0f / sqrtf((float)a->in); /* kaiming_uniform(a=sqrt(5)) */
        for (int64_t i = 0; i < (int64_t)a->r * a->in; i++) A[i] = (2.0f * ft_rng_uniform(&rng) - 1.0f) * bound;
        memset(params[a->pb].t.data, 0, sizeof(float) * (size_t)(a->rows * a->r));
    }
    return FT_OK;
}

int ft_model_add_lora(ft_model *m, const ft_lora_config *c, uint64_t seed) { return ft__lora_add(&m->ts, c, seed); }

/* ------------------------------------------------------------------ forward / backward hooks */

static uint64_t lora_seed(const ft_train_state *s, int k) {
    return s->dropout_seed ^ (FT__GOLDEN_GAMMA * (uint64_t)(k + 1001));
}

size_t ft__lora_act_floats(const ft_train_state *s, int N) {
    if (!s->n_lora) return 0;
    size_t n = 0;
    for (int k = 0; k < s->n_lora; k++) n += (size_t)N * s->lora[k].r + 16;
    return n + (size_t)N * (s->lora_rmax + 2 * (size_t)s->lora_inmax) + 64;
}

void ft__lora_bind_acts(ft_train_state *s, ft_arena *a, int N) {
    if (!s->n_lora) return;
    for (int k = 0; k < s->n_lora; k++) s->lora[k].xa = ft_arena_alloc(a, sizeof(float) * (size_t)N * s->lora[k].r);
    s->lora_dxa = ft_arena_alloc(a, sizeof(float) * (size_t)N * s->lora_rmax);
    s->lora_xd = ft_arena_alloc(a, sizeof(float) * (size_t)N * s->lora_inmax);
    s->lora_dx = ft_arena_alloc(a, sizeof(float) * (size_t)N * s->lora_inmax);
}

void ft__lora_forward(ft_train_state *s, int l, int slot, const float *inp, float *out, int ldo, int N) {
    const ft_backend *be = s->m->be;
    const ft_param *params = ft__ts_params(s);
    for (int k = 0; k < s->n_lora; k++) {
        ft_lora *a = &s->lora[k];
        if (a->layer != l || a->slot != slot) continue;
        const float *x = inp;
        if (s->training && a->dropout > 0) {
            be->dropout_forward(be->ctx, s->lora_xd, inp, (size_t)N * a->in, a->dropout, lora_seed(s, k));
            x = s->lora_xd;
        }
        ft__lora_module_forward(be, out + a->row0, ldo, x, params[a->pa].t.data, params[a->pb].t.data, a->xa,
                               N, a->in, a->r, a->rows, a->scale);
    }
}

void ft__lora_backward(ft_train_state *s, int l, int slot, const float *inp, const float *dout, int ldo, float *dinp, int N) {
    const ft_param *params = ft__ts_params(s);
    for (int k = 0; k < s->n_lora; k++) {
        ft_lora *a = &s->lora[k];
        if (a->layer != l || a->slot != slot) continue;
        float p = s->training && a->dropout > 0 ? a->dropout : 0.0f;
        ft__lora_module_backward(s->m->be, dinp, params[a->pa].grad, params[a->pb].grad, dout + a->row0, ldo, inp,
                                 params[a->pa].t.data, params[a->pb].t.data, a->xa, N, a->in, a->r, a->rows, a->scale,
                                 p, lora_seed(s, k), s->lora_xd, s->lora_dxa, s->lora_dx);
    }
}

/* ------------------------------------------------------------------ merge */

int ft_model_merge_lora(ft_model *m) {
    for (int k = 0; k < m->ts.n_lora; k++)
        if (m->params[m->layer_slot[m->ts.lora[k].layer * P_LAYER_COUNT + m->ts.lora[k].slot]].qdesc)
            return ft_error(FT_ERR_UNSUPPORTED, "cannot merge LoRA into a quantized base; merge into the f32 base model with finetune merge");
    for (int k = 0; k < m->ts.n_lora; k++) {
        ft_lora *a = &m->ts.lora[k];
        int pi = m->layer_slot[a->layer * P_LAYER_COUNT + a->slot];
        float *W = (float *)m->params[pi].t.data + a->row0 * a->in;
        const float *A = m->params[a->pa].t.data, *B = m->params[a->pb].t.data;
        m->be->matmul_acc_backward(m->be->ctx, W, NULL, B, a->r, NULL, A, (int)a->rows, a->in, a->r, a->scale);   /* W += scale B A */
    }
    /* drop the adapters: the LoRA params are the last 2*n_lora entries */
    m->n_params -= 2 * m->ts.n_lora;
    free(m->ts.lora);
    m->ts.lora = NULL;
    m->ts.n_lora = 0;
    ft_arena_free(&m->ts.lora_arena);
    m->ts.a.B = m->ts.a.T = 0;
    return FT_OK;
}

/* ------------------------------------------------------------------ PEFT files */

/* the adapters of state s as a PEFT directory */
int ft__lora_save(const ft_train_state *s, const char *dir, const char *base_path) {
    const ft_model *m = s->m;
    const ft_param *params = ft__ts_params(s);
    if (!s->n_lora) return ft_error(FT_ERR_INVALID, "the model has no LoRA adapters to save");
    FT_TRY(ft_mkdirs(dir));
    int n = 2 * s->n_lora;
    ft_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    char (*names)[200] = calloc((size_t)n, sizeof *names);
    if (!ts || !names) { free(ts); free(names); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int k = 0; k < s->n_lora; k++) {
        const ft_lora *a = &s->lora[k];
        for (int w = 0; w < 2; w++) {
            ft_st_tensor *t = &ts[2 * k + w];
            const ft_param *p = &params[w ? a->pb : a->pa];
            snprintf(names[2 * k + w], sizeof names[0], "base_model.model.%s.lora_%c.weight", a->module, w ? 'B' : 'A');
            t->name = names[2 * k + w];
            t->dtype = FT_F32;
            t->ndim = 2;
            t->shape[0] = p->t.shape[0];
            t->shape[1] = p->t.shape[1];
            t->data = p->t.data;
        }
    }
    int rc = ft__peft_write_tensors(dir, ts, n);
    free(ts);
    free(names);
    if (rc < 0) return rc;
    /* adapter_config.json: the fields peft's LoraConfig reads */
    char targets[1024] = "";
    size_t o = 0;
    char tg[512];
    snprintf(tg, sizeof tg, "%s", s->lora_targets_cfg);
    char *save = NULL;
    int first = 1;
    if (!strcmp(tg, "all-linear")) o += (size_t)snprintf(targets, sizeof targets, "\"all-linear\"");
    else {
        o += (size_t)snprintf(targets + o, sizeof targets - o, "[");
        for (char *t = strtok_r(tg, ", ", &save); t; t = strtok_r(NULL, ", ", &save), first = 0)
            o += (size_t)snprintf(targets + o, sizeof targets - o, "%s\"%s\"", first ? "" : ", ", t);
        snprintf(targets + o, sizeof targets - o, "]");
    }
    char json[4096];
    int len = snprintf(json, sizeof json,
        "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"base_model_name_or_path\": \"%s\",\n"
        "  \"r\": %d,\n  \"lora_alpha\": %g,\n  \"lora_dropout\": %g,\n  \"use_rslora\": %s,\n  \"target_modules\": %s,\n"
        "  \"bias\": \"none\",\n  \"fan_in_fan_out\": %s,\n  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n"
        "  \"modules_to_save\": null,\n  \"layers_to_transform\": null,\n  \"layers_pattern\": null,\n  \"rank_pattern\": {},\n"
        "  \"alpha_pattern\": {},\n  \"use_dora\": false,\n  \"revision\": null\n}\n",
        base_path ? base_path : "", s->lora_r_cfg, s->lora_alpha_cfg, s->lora_dropout_cfg, s->lora_rslora_cfg ? "true" : "false",
        targets, m->cfg.arch == FT_ARCH_GPT2 ? "true" : "false");
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_config.json"));
    return ft_file_write_atomic(path, json, (size_t)len);
}

int ft_model_save_adapter(const ft_model *m, const char *dir, const char *base_path) { return ft__lora_save(&m->ts, dir, base_path); }

int ft__peft_lora_config_read(ft_peft_lora_config *out, const char *dir) {
    memset(out, 0, sizeof *out);
    char path[4096], *text;
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_config.json"));
    FT_TRY(ft_file_read_all(path, &text, NULL));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path);
    const cJSON *pt = cJSON_GetObjectItem(j, "peft_type");
    int rc = FT_OK;
    if (cJSON_IsString(pt) && strcmp(pt->valuestring, "LORA") != 0)
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: peft_type \"%s\" is not supported (only LORA)", path, pt->valuestring);
    if (rc == FT_OK && cJSON_IsTrue(cJSON_GetObjectItem(j, "use_dora"))) rc = ft_error(FT_ERR_UNSUPPORTED, "%s: DoRA adapters are not supported", path);
    const cJSON *bias = cJSON_GetObjectItem(j, "bias");
    if (rc == FT_OK && cJSON_IsString(bias) && strcmp(bias->valuestring, "none") != 0)
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: bias=\"%s\" adapters are not supported (only \"none\")", path, bias->valuestring);
    const cJSON *rp = cJSON_GetObjectItem(j, "rank_pattern"), *ap = cJSON_GetObjectItem(j, "alpha_pattern");
    if (rc == FT_OK && ((cJSON_IsObject(rp) && rp->child) || (cJSON_IsObject(ap) && ap->child)))
        rc = ft_error(FT_ERR_UNSUPPORTED, "%s: rank_pattern / alpha_pattern are not supported", path);
    const cJSON *ms = cJSON_GetObjectItem(j, "modules_to_save");
    out->n_modules_to_save = cJSON_IsArray(ms) ? cJSON_GetArraySize(ms) : 0;
    const cJSON *tm = cJSON_GetObjectItem(j, "target_modules");
    if (cJSON_IsString(tm)) snprintf(out->targets, sizeof out->targets, "%s", tm->valuestring);
    else if (cJSON_IsArray(tm)) {
        size_t o = 0;
        for (const cJSON *it = tm->child; it; it = it->next)
            if (cJSON_IsString(it) && o < sizeof out->targets)
                o += (size_t)snprintf(out->targets + o, sizeof out->targets - o, "%s%s", o ? "," : "", it->valuestring);
    }
    /* r decides the adapter's allocation; alpha / r scales every update: both bounded, alpha finite */
    double alpha = 0, dropout = 0;
    if (rc == FT_OK && (!cJSON_IsNumber(cJSON_GetObjectItem(j, "r")) || !cJSON_IsNumber(cJSON_GetObjectItem(j, "lora_alpha"))))
        rc = ft_error(FT_ERR_FORMAT, "%s: needs positive \"r\" and \"lora_alpha\"", path);
    if (rc == FT_OK) rc = ft__json_get_int_in(j, "r", 0, 1, FT_MAX_LORA_RANK, &out->r, path);
    if (rc == FT_OK) rc = ft__json_get_real_in(j, "lora_alpha", 0, 0, 1e6, FT__JSON_LO_OPEN, &alpha, path);
    if (rc == FT_OK) rc = ft__json_get_real_in(j, "lora_dropout", 0, 0, 1, FT__JSON_HI_OPEN, &dropout, path);
    out->alpha = (float)alpha;
    out->dropout = (float)dropout;
    out->rslora = cJSON_IsTrue(cJSON_GetObjectItem(j, "use_rslora"));
    cJSON_Delete(j);
    return rc;
}

int ft__peft_read_lora_weight(const ft_safetensors *st, const char *module, char which, ft_param *p) {
    char key[256];
    snprintf(key, sizeof key, "base_model.model.%s.lora_%c.weight", module, which);
    /* adapters saved with the adapter name in the key */
    if (!ft_st_find(st, key)) snprintf(key, sizeof key, "base_model.model.%s.lora_%c.default.weight", module, which);
    return ft_st_read_f32(st, key, p->t.shape, 2, p->t.data);
}

int ft_model_load_adapter(ft_model *m, const char *dir) {
    ft_peft_lora_config pc;
    FT_TRY(ft__peft_lora_config_read(&pc, dir));
    if (pc.n_modules_to_save > 0) return ft_error(FT_ERR_UNSUPPORTED, "%s/adapter_config.json: modules_to_save is not supported", dir);
    int rc = FT_OK, r = pc.r;
    double alpha = pc.alpha, dropout = pc.dropout;
    int rslora = pc.rslora;
    const char *targets = pc.targets;
    char path[4096];
    if (!m->ts.n_lora) FT_TRY(create_adapters(&m->ts, r, (float)alpha, (float)dropout, rslora, targets));
    ft_safetensors *st;
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    FT_TRY(ft_st_open(&st, path));
    for (int k = 0; k < m->ts.n_lora && rc == FT_OK; k++) {
        ft_lora *a = &m->ts.lora[k];
        for (int w = 0; w < 2 && rc == FT_OK; w++)
            rc = ft__peft_read_lora_weight(st, a->module, w ? 'B' : 'A', &m->params[w ? a->pb : a->pa]);
    }
    ft_st_close(st);
    return rc;
}

/* ------------------------------------------------------------------ freezing */

static int pattern_matches(const void *model, int i, const char *pat) {
    const ft_model *m = model;
    const ft_model_config *c = &m->cfg;
    int layer = -1, slot = -1, a, b;
    for (int g = 0; g < G_COUNT; g++) if (m->global_slot[g] == i) slot = g;
    if (slot < 0)
        for (int k = 0; k < c->n_layer * P_LAYER_COUNT; k++) if (m->layer_slot[k] == i) { layer = k / P_LAYER_COUNT; break; }
    if (!strcmp(pat, "embeddings")) return layer < 0 && (slot == G_WTE || slot == G_WPE);
    if (!strcmp(pat, "head")) return layer < 0 && (slot == G_LM_HEAD || (c->tied_embeddings && slot == G_WTE));
    if (!strcmp(pat, "norm")) return layer < 0 && (slot == G_LNF_W || slot == G_LNF_B);
    int lr = ft__pattern_layers(pat, &a, &b);
    if (lr) return lr < 0 ? -1 : layer >= a && layer <= b;
    ft_hf_piece pc[3];
    int np = ft_model_hf_pieces(m, i, pc);
    for (int k = 0; k < np; k++) if (fnmatch(pat, pc[k].name, 0) == 0) return 1;
    return 0;
}

/* the base's parameters (the adapters, appended last, are not patterns' business) */
static int apply_patterns(ft_model *m, const char *patterns, int freeze_matching) {
    if (m->ts.grads_ready) return ft_error(FT_ERR_INVALID, "freeze parameters before gradients are allocated");
    return ft__params_apply_patterns(m->params, m->n_params - 2 * m->ts.n_lora, patterns, freeze_matching, pattern_matches, m,
                                     "embeddings, head, norm");
}

int ft_model_freeze(ft_model *m, const char *patterns) { return apply_patterns(m, patterns, 1); }
int ft_model_train_only(ft_model *m, const char *patterns) { return apply_patterns(m, patterns, 0); }
