/* encoder_lora.c — LoRA adapters on BERT / DistilBERT / RoBERTa encoders, in PEFT's layout (lora.h).
 *
 * An adapter on the linear layer W [out, in] of block l adds scale * B A x (A [r, in], B [out, r],
 * scale = alpha / r, or alpha / sqrt(r) with rsLoRA), with dropout on x in training. The modules are
 * the blocks' linear layers by their HF leaf names: BERT / RoBERTa query key value (attention.self),
 * dense (attention.output.dense, output.dense) and intermediate's dense; DistilBERT q_lin k_lin v_lin
 * out_lin lin1 lin2. Defaults as PEFT's: query,value / q_lin,v_lin.
 *
 * As PEFT's task types SEQ_CLS / TOKEN_CLS do (modules_to_save), the task head stays trainable:
 * BERT classifier (its pooler is frozen), RoBERTa classifier.dense + out_proj, DistilBERT pre_classifier +
 * classifier; token classification: classifier; MLM: nothing but the adapters. Saved adapters hold
 * base_model.model.<module>.lora_{A,B}.weight and base_model.model.<head tensor>, which peft loads.
 *
 * Adapter weights live in one allocation; their ft_param entries are appended to the parameter table of
 * the training state they belong to: the encoder's own (ft_encoder_add_lora: so gradients, the optimizer,
 * checkpoints and freezing see them), or an extra state's (ft_encoder_train_state_create), whose table is
 * the base's entries (frozen, the encoder's weights), its own copies of the head tensors PEFT keeps
 * trainable, then its adapters. */
#include "encoder_internal.h"
#include "core/hash.h"
#include "model_internal.h"
#include "peft_config.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct enc_adapter {
    int layer, slot, in, out;   /* the base matmul: block, S_*_W slot, its shape */
    int pa, pb;                 /* params index of A [r, in] and B [out, r] */
    char module[160];           /* HF module path, e.g. "bert.encoder.layer.0.attention.self.query" */
    float *xa;                  /* [N, r] A x of the last forward (activation arena) */
} enc_adapter;

struct enc_lora_state {
    enc_adapter *ad;
    int n, r, rslora;
    float alpha, scale, dropout;
    char targets[512];
    int *site;                  /* [L * S_COUNT] adapter index of (layer, slot) or -1 */
    ft_arena weights, act;
    int act_N;                  /* rows the activation arena holds */
    float *xd, *dxa, *dx;       /* [N, maxin] dropped input, [N, r], [N, maxin] */
    int maxin;
};

static const int k_sites[] = {S_Q_W, S_K_W, S_V_W, S_O_W, S_FC_W, S_PR_W};

/* HF module path of (layer, slot): the weight's name without ".weight" */
static void module_name(const ft_encoder_model *m, int l, int s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", m->params[m->lslot[l * S_COUNT + s]].name);
    size_t n = strlen(buf);
    if (n > 7 && !strcmp(buf + n - 7, ".weight")) buf[n - 7] = 0;
}

const char *ft_encoder_lora_default_targets(const ft_encoder_model *m) { return m->fam->lora_default; }

int ft_encoder_lora_count(const ft_encoder_model *m) { return m->ts.lora ? m->ts.lora->n : 0; }
int ft_encoder_train_state_lora_count(const ft_encoder_train_state *s) { return s->lora ? s->lora->n : 0; }

int ft__enc_lora_lowest_layer(const ft_encoder_train_state *ts) {
    return ts->lora && ts->lora->n ? ts->lora->ad[0].layer : ts->m->cfg.n_layer;   /* adapters are in layer order */
}

static void lora_free(struct enc_lora_state *s) {
    if (!s) return;
    ft_arena_free(&s->weights);
    ft_arena_free(&s->act);
    free(s->ad);
    free(s->site);
    free(s);
}

void ft__enc_lora_close(ft_encoder_train_state *ts) { lora_free(ts->lora); ts->lora = NULL; }

/* the head tensors PEFT keeps trainable (modules_to_save): the head's choice (BERT's pooler stays frozen) */
static int head_trainable(const ft_encoder_model *m, int g) { return m->head->lora_keeps(m, g); }

/* an extra state's table: the model's weights (frozen, no gradient), the head tensors PEFT keeps trainable
 * copied into the state (each training learns its own head) */
static int base_table(ft_encoder_train_state *ts) {
    const ft_encoder_model *m = ts->m;
    int n = m->n_base;
    ts->params = calloc((size_t)n, sizeof *ts->params);
    if (!ts->params) return ft_error(FT_ERR_NOMEM, "out of memory");
    size_t bytes = 0;
    for (int g = E_HEAD0; g < E_COUNT; g++)
        if (m->slot[g] >= 0 && head_trainable(m, g)) bytes += ft_tensor_nbytes(&m->params[m->slot[g]].t) + FT_ALIGN;
    if (bytes) FT_TRY(ft_arena_init_on(&ts->head_arena, bytes, m->be));
    for (int i = 0; i < n; i++) {
        ts->params[i] = m->params[i];
        ts->params[i].grad = NULL;
    }
    for (int g = E_HEAD0; g < E_COUNT; g++) {
        if (m->slot[g] < 0 || !head_trainable(m, g)) continue;
        ft_param *p = &ts->params[m->slot[g]];
        void *d = ft_arena_alloc(&ts->head_arena, ft_tensor_nbytes(&p->t));
        memcpy(d, p->t.data, ft_tensor_nbytes(&p->t));
        p->t.data = d;
    }
    ts->n_params = n;
    return FT_OK;
}

static int create(ft_encoder_train_state *ts, int r, float alpha, float dropout, int rslora, const char *targets) {
    ft_encoder_model *m = ts->m;
    if (ts->lora) return ft_error(FT_ERR_INVALID, "the encoder already has LoRA adapters");
    if (ts->grads_ready) return ft_error(FT_ERR_INVALID, "add LoRA adapters before gradients are allocated");
    if (r <= 0 || !(alpha > 0)) return ft_error(FT_ERR_INVALID, "LoRA needs rank > 0 and alpha > 0 (got %d, %g)", r, alpha);
    if (dropout < 0 || dropout >= 1) return ft_error(FT_ERR_INVALID, "LoRA dropout %g must be in [0, 1)", dropout);
    const char *tg = targets && targets[0] ? targets : ft_encoder_lora_default_targets(m);
    int L = m->cfg.n_layer, S = (int)(sizeof k_sites / sizeof *k_sites);
    struct enc_lora_state *ls = calloc(1, sizeof *ls);
    if (!ls) return ft_error(FT_ERR_NOMEM, "out of memory");
    ls->ad = calloc((size_t)L * S, sizeof *ls->ad);
    ls->site = malloc(sizeof(int) * (size_t)L * S_COUNT);
    if (!ls->ad || !ls->site) { lora_free(ls); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < L * S_COUNT; i++) ls->site[i] = -1;
    ls->r = r;
    ls->alpha = alpha;
    ls->dropout = dropout;
    ls->rslora = rslora;
    ls->scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    snprintf(ls->targets, sizeof ls->targets, "%s", tg);
    char name[160];
    for (int l = 0; l < L; l++)
        for (int k = 0; k < S; k++) {
            module_name(m, l, k_sites[k], name, sizeof name);
            if (!ft__lora_target_matches(name, tg)) continue;
            const ft_param *w = &m->params[m->lslot[l * S_COUNT + k_sites[k]]];
            enc_adapter *a = &ls->ad[ls->n];
            a->layer = l;
            a->slot = k_sites[k];
            a->out = (int)w->t.shape[0];
            a->in = (int)w->t.shape[1];
            snprintf(a->module, sizeof a->module, "%s", name);
            if (a->in > ls->maxin) ls->maxin = a->in;
            ls->site[l * S_COUNT + k_sites[k]] = ls->n++;
        }
    if (ls->n == 0) {
        module_name(m, 0, S_Q_W, name, sizeof name);
        lora_free(ls);
        return ft_error(FT_ERR_NOT_FOUND, "LoRA targets \"%s\" match no module of this %s (modules are named like %s; "
                        "targets: query, key, value, dense / q_lin, k_lin, v_lin, out_lin, lin1, lin2, or all-linear)",
                        tg, m->cfg.model_type, name);
    }
    /* the state's table: the model's (own) or its own copy of the base's entries (extra), then 2 per adapter */
    int rc = ts->own ? FT_OK : base_table(ts);
    if (rc < 0) { lora_free(ls); return rc; }
    ft_param **tab = ts->own ? &m->params : &ts->params;
    int *count = ts->own ? &m->n_params : &ts->n_params;
    ft_param *np = realloc(*tab, sizeof *np * (size_t)(*count + 2 * ls->n));
    if (!np) { lora_free(ls); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    *tab = np;
    size_t bytes = 0;
    for (int i = 0; i < ls->n; i++) bytes += sizeof(float) * (size_t)r * (size_t)(ls->ad[i].in + ls->ad[i].out) + 2 * FT_ALIGN;
    rc = ft_arena_init_on(&ls->weights, bytes, m->be);
    if (rc < 0) { lora_free(ls); return rc; }
    for (int i = 0; i < ls->n; i++) {
        enc_adapter *a = &ls->ad[i];
        for (int w = 0; w < 2; w++) {
            ft_param *p = &np[*count];
            memset(p, 0, sizeof *p);
            /* the HF-style name (PEFT keys are built from a->module, which is never cut) */
            snprintf(p->name, sizeof p->name, "%.*s.lora_%c.weight", (int)(sizeof p->name - 16), a->module, w ? 'B' : 'A');
            p->t.dtype = FT_F32;
            p->t.ndim = 2;
            p->t.shape[0] = w ? a->out : r;
            p->t.shape[1] = w ? r : a->in;
            p->t.data = ft_arena_alloc(&ls->weights, ft_tensor_nbytes(&p->t));
            p->decay = 1;
            p->trainable = 1;
            if (w) a->pb = *count; else a->pa = *count;
            (*count)++;
        }
    }
    /* the base is frozen; the task head stays trainable (PEFT's modules_to_save) */
    int base_end = *count - 2 * ls->n;
    for (int i = 0; i < base_end; i++) {
        int keep = 0;
        for (int g = E_HEAD0; g < E_COUNT; g++) keep |= m->slot[g] == i && head_trainable(m, g);
        np[i].trainable = keep;
    }
    ts->lora = ls;
    return FT_OK;
}

int ft__enc_lora_add(ft_encoder_train_state *ts, const ft_lora_config *c, uint64_t seed) {
    FT_TRY(create(ts, c->r, c->alpha, c->dropout, c->rslora, c->targets));
    ft_rng rng;
    ft_rng_seed(&rng, seed ^ 0xE10A4A10A4ull);
    struct enc_lora_state *ls = ts->lora;
    for (int i = 0; i < ls->n; i++) {
        enc_adapter *a = &ls->ad[i];
        float *A = enc_params(ts)[a->pa].t.data, bound = 1.0f / sqrtf((float)a->in);   /* kaiming_uniform(a=sqrt(5)) */
        for (int64_t k = 0; k < (int64_t)ls->r * a->in; k++) A[k] = (2.0f * ft_rng_uniform(&rng) - 1.0f) * bound;
        memset(enc_params(ts)[a->pb].t.data, 0, sizeof(float) * (size_t)a->out * (size_t)ls->r);
    }
    return FT_OK;
}

int ft_encoder_add_lora(ft_encoder_model *m, const ft_lora_config *c, uint64_t seed) { return ft__enc_lora_add(&m->ts, c, seed); }

/* ------------------------------------------------------------------ forward / backward hooks */

int ft__enc_lora_prepare(ft_encoder_train_state *ts, int N) {
    const ft_encoder_model *m = ts->m;
    struct enc_lora_state *s = ts->lora;
    if (!s || N <= s->act_N) return FT_OK;
    ft_arena_free(&s->act);
    size_t floats = (size_t)N * ((size_t)s->r * (size_t)(s->n + 1) + 2 * (size_t)s->maxin);
    FT_TRY(ft_arena_init_on(&s->act, floats * sizeof(float) + (size_t)(s->n + 4) * FT_ALIGN, m->be));
    for (int i = 0; i < s->n; i++) s->ad[i].xa = ft_arena_alloc(&s->act, sizeof(float) * (size_t)N * s->r);
    s->dxa = ft_arena_alloc(&s->act, sizeof(float) * (size_t)N * s->r);
    s->xd = ft_arena_alloc(&s->act, sizeof(float) * (size_t)N * s->maxin);
    s->dx = ft_arena_alloc(&s->act, sizeof(float) * (size_t)N * s->maxin);
    s->act_N = N;
    return FT_OK;
}

static uint64_t lora_seed(const ft_encoder_train_state *ts, int k) {
    return ts->seed ^ (FT__GOLDEN_GAMMA * (uint64_t)(k + 2001));
}

/* out [N, a.out] += scale * B A drop(inp) */
void ft__enc_lora_forward(const ft_encoder_train_state *ts, int l, int slot, const float *inp, float *out, int N) {
    const struct enc_lora_state *s = ts->lora;
    int k = s ? s->site[l * S_COUNT + slot] : -1;
    if (k < 0) return;
    const ft_backend *be = ts->m->be;
    const ft_param *p = enc_params(ts);
    const enc_adapter *a = &s->ad[k];
    const float *x = inp;
    if (ts->training && s->dropout > 0) {
        be->dropout_forward(be->ctx, s->xd, inp, (size_t)N * a->in, s->dropout, lora_seed(ts, k));
        x = s->xd;
    }
    ft__lora_module_forward(be, out, a->out, x, p[a->pa].t.data, p[a->pb].t.data, a->xa, N, a->in, s->r, a->out, s->scale);
}

/* gradients of the adapter of (l, slot); dinp [N, a.in] (the base's input gradient) += the adapter's */
void ft__enc_lora_backward(const ft_encoder_train_state *ts, int l, int slot, const float *inp, const float *dout, float *dinp, int N) {
    const struct enc_lora_state *s = ts->lora;
    int k = s ? s->site[l * S_COUNT + slot] : -1;
    if (k < 0) return;
    const enc_adapter *a = &s->ad[k];
    const ft_param *pr = enc_params(ts);
    float p = ts->training && s->dropout > 0 ? s->dropout : 0.0f;
    ft__lora_module_backward(ts->m->be, dinp, pr[a->pa].grad, pr[a->pb].grad, dout, a->out, inp, pr[a->pa].t.data,
                             pr[a->pb].t.data, a->xa, N, a->in, s->r, a->out, s->scale, p, lora_seed(ts, k), s->xd, s->dxa, s->dx);
}

/* ------------------------------------------------------------------ merge */

int ft_encoder_merge_lora(ft_encoder_model *m) {
    struct enc_lora_state *s = m->ts.lora;
    if (!s) return FT_OK;
    if (m->quant != FT_F32)
        return ft_error(FT_ERR_UNSUPPORTED, "cannot merge LoRA into a quantized base: reload the base in f32 (ft_encoder_load) with the adapter, then merge");
    for (int k = 0; k < s->n; k++) {
        enc_adapter *a = &s->ad[k];
        float *W = m->params[m->lslot[a->layer * S_COUNT + a->slot]].t.data;
        const float *A = m->params[a->pa].t.data, *B = m->params[a->pb].t.data;
        m->be->matmul_acc_backward(m->be->ctx, W, NULL, B, s->r, NULL, A, a->out, a->in, s->r, s->scale);   /* W [out, in] += scale B A */
    }
    /* drop the adapters' parameters (they are the last 2n entries) */
    m->n_params -= 2 * s->n;
    lora_free(s);
    m->ts.lora = NULL;
    for (int i = 0; i < m->n_params; i++) m->params[i].trainable = 1;
    return FT_OK;
}

/* ------------------------------------------------------------------ PEFT files */

int ft_encoder_save_adapter(const ft_encoder_model *m, const char *dir, const char *base_path, const char *const *label_names) {
    return ft__enc_lora_save(&m->ts, dir, base_path, label_names);
}

int ft__enc_lora_save(const ft_encoder_train_state *tstate, const char *dir, const char *base_path, const char *const *label_names) {
    const ft_encoder_model *m = tstate->m;
    const ft_param *pr = enc_params(tstate);
    const struct enc_lora_state *s = tstate->lora;
    if (!s) return ft_error(FT_ERR_INVALID, "the encoder has no LoRA adapters to save");
    FT_TRY(ft_mkdirs(dir));
    int heads[E_COUNT], nh = 0;
    for (int g = E_HEAD0; g < E_COUNT; g++) if (m->slot[g] >= 0 && head_trainable(m, g)) heads[nh++] = g;
    int n = 2 * s->n + nh;
    ft_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    char (*names)[224] = calloc((size_t)n, sizeof *names);
    if (!ts || !names) { free(ts); free(names); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) {
        const ft_param *p;
        if (i < 2 * s->n) {
            const enc_adapter *a = &s->ad[i / 2];
            p = &pr[i % 2 ? a->pb : a->pa];
            snprintf(names[i], sizeof names[i], "base_model.model.%s.lora_%c.weight", a->module, i % 2 ? 'B' : 'A');
        } else {
            p = &pr[m->slot[heads[i - 2 * s->n]]];
            snprintf(names[i], sizeof names[i], "base_model.model.%s", p->name);
        }
        ts[i].name = names[i];
        ts[i].dtype = FT_F32;
        ts[i].ndim = p->t.ndim;
        for (int d = 0; d < p->t.ndim; d++) ts[i].shape[d] = p->t.shape[d];
        ts[i].data = p->t.data;
    }
    int rc = ft__peft_write_tensors(dir, ts, n);
    free(ts);
    free(names);
    if (rc < 0) return rc;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", m->head->peft_task);
    cJSON_AddStringToObject(j, "base_model_name_or_path", base_path ? base_path : "");
    cJSON_AddNumberToObject(j, "r", s->r);
    cJSON_AddNumberToObject(j, "lora_alpha", s->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", s->dropout);
    cJSON_AddBoolToObject(j, "use_rslora", s->rslora);
    if (!strcmp(s->targets, "all-linear")) cJSON_AddStringToObject(j, "target_modules", "all-linear");
    else {
        cJSON *arr = cJSON_AddArrayToObject(j, "target_modules");
        char buf[512];
        snprintf(buf, sizeof buf, "%s", s->targets);
        char *save = NULL;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) cJSON_AddItemToArray(arr, cJSON_CreateString(t));
    }
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    if (nh) {
        /* the head modules: the top-level module holding each tensor ("classifier", "pre_classifier"; RoBERTa's
         * classifier.dense and classifier.out_proj are parts of the one module "classifier") */
        cJSON *arr = cJSON_AddArrayToObject(j, "modules_to_save");
        for (int i = 0; i < nh; i += 2) {
            char mod[160];
            snprintf(mod, sizeof mod, "%s", m->params[m->slot[heads[i]]].name);
            char *dot = strchr(mod, '.');
            if (dot) *dot = 0;
            int dup = 0;
            for (cJSON *it = arr->child; it; it = it->next) dup |= !strcmp(it->valuestring, mod);
            if (!dup) cJSON_AddItemToArray(arr, cJSON_CreateString(mod));
        }
    } else cJSON_AddNullToObject(j, "modules_to_save");
    /* what finetune needs to rebuild the model around the adapter */
    cJSON_AddStringToObject(j, "finetune_task", ft_encoder_task_name(m->task));
    cJSON_AddNumberToObject(j, "finetune_num_labels", m->cfg.num_labels);
    cJSON_AddStringToObject(j, "finetune_pooling", m->pooling == FT_POOL_MEAN ? "mean" : "cls");
    if (m->task == FT_TASK_CLASSIFY || m->task == FT_TASK_TOKEN) {
        cJSON *lnames = cJSON_AddArrayToObject(j, "finetune_labels");
        for (int k = 0; k < m->cfg.num_labels; k++) {
            const char *nm = label_names ? label_names[k] : ft_encoder_label_name(m, k);
            char buf[32];
            if (!nm) { snprintf(buf, sizeof buf, "LABEL_%d", k); nm = buf; }
            cJSON_AddItemToArray(lnames, cJSON_CreateString(nm));
        }
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return ft_error(FT_ERR_NOMEM, "out of memory");
    char path[4096];
    rc = ft_path_join(path, sizeof path, dir, "adapter_config.json");
    if (rc == FT_OK) rc = ft_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* Reads adapter_config.json: creates the adapters (unless they exist) and reads A, B and the head. */
int ft_encoder_load_adapter(ft_encoder_model *m, const char *dir) {
    ft_peft_lora_config pc;
    FT_TRY(ft__peft_lora_config_read(&pc, dir));
    char path[4096];
    int rc = FT_OK;
    if (!m->ts.lora) FT_TRY(ft_error_wrap(create(&m->ts, pc.r, pc.alpha, pc.dropout, pc.rslora, pc.targets), "%s/adapter_config.json", dir));
    else if (m->ts.lora->r != pc.r) return ft_error(FT_ERR_INVALID, "%s/adapter_config.json: rank %d, the model's adapters have rank %d", dir, pc.r, m->ts.lora->r);
    ft_safetensors *st;
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    FT_TRY(ft_st_open(&st, path));
    const struct enc_lora_state *s = m->ts.lora;
    for (int k = 0; k < s->n && rc == FT_OK; k++)
        for (int w = 0; w < 2 && rc == FT_OK; w++)
            rc = ft__peft_read_lora_weight(st, s->ad[k].module, w ? 'B' : 'A', &m->params[w ? s->ad[k].pb : s->ad[k].pa]);
    /* the saved head (modules_to_save), when present, replaces the base's */
    int missing = 0;
    for (int g = E_HEAD0; g < E_COUNT && rc == FT_OK; g++) {
        if (m->slot[g] < 0 || !head_trainable(m, g)) continue;
        ft_param *p = &m->params[m->slot[g]];
        char key[256];
        snprintf(key, sizeof key, "base_model.model.%s", p->name);
        if (ft_st_find(st, key)) rc = ft_st_read_f32(st, key, p->t.shape, p->t.ndim, p->t.data);
        else missing++;
    }
    ft_st_close(st);
    if (rc == FT_OK && missing && ft_encoder_head_reinitialised(m))
        FT_LOGW("%s: the adapter holds no task head and the base model has none: the head is random; train it before use", dir);
    return rc;
}

/* An adapter directory (adapter_config.json): the base from base_model_name_or_path (relative paths
 * resolved from the adapter's directory too), the task / label count / pooling it was trained with. */
int ft_encoder_load_with_adapter(ft_encoder_model **out, const char *adapter_dir, const ft_encoder_options *o, const ft_backend *be) {
    *out = NULL;
    char path[4096], *text, base[4096] = "";
    FT_TRY(ft_path_join(path, sizeof path, adapter_dir, "adapter_config.json"));
    FT_TRY(ft_file_read_all(path, &text, NULL));
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path);
    ft_encoder_options eo = o ? *o : ft_encoder_default_options();
    const cJSON *b = cJSON_GetObjectItem(j, "base_model_name_or_path");
    if (cJSON_IsString(b)) snprintf(base, sizeof base, "%s", b->valuestring);
    const cJSON *t = cJSON_GetObjectItem(j, "finetune_task"), *tt = cJSON_GetObjectItem(j, "task_type");
    if (eo.task == FT_TASK_AUTO) {
        if (cJSON_IsString(t)) ft_encoder_task_from_name(t->valuestring, &eo.task);
        else if (cJSON_IsString(tt)) eo.task = !strcmp(tt->valuestring, "TOKEN_CLS") ? FT_TASK_TOKEN : FT_TASK_CLASSIFY;
    }
    const cJSON *nl = cJSON_GetObjectItem(j, "finetune_num_labels");
    if (eo.num_labels == 0 && cJSON_IsNumber(nl)) eo.num_labels = ft__json_as_int(nl, 0);
    const cJSON *pl = cJSON_GetObjectItem(j, "finetune_pooling");
    if (eo.pooling == FT_POOL_AUTO && cJSON_IsString(pl)) eo.pooling = !strcmp(pl->valuestring, "mean") ? FT_POOL_MEAN : FT_POOL_CLS;
    cJSON *labels = cJSON_DetachItemFromObject(j, "finetune_labels");
    cJSON_Delete(j);
    int rc = FT_OK;
    if (!base[0]) rc = ft_error(FT_ERR_FORMAT, "%s: no base_model_name_or_path", path);
    if (rc == FT_OK && !ft_path_is_dir(base)) {
        char alt[4096];
        if (ft_path_join(alt, sizeof alt, adapter_dir, base) != FT_OK || !ft_path_is_dir(alt)) rc = ft_error(FT_ERR_NOT_FOUND, "%s: base model %s not found", path, base);
        else snprintf(base, sizeof base, "%s", alt);
    }
    ft_encoder_model *m = NULL;
    /* the base usually lacks the task head the adapter carries: its warning would mislead (load_adapter
     * warns when the adapter has no head either) */
    ft_log_level lvl = ft_log_get_level();
    ft_log_set_level(FT_LOG_ERROR);
    if (rc == FT_OK) rc = ft_encoder_load_ex(&m, base, &eo, be);
    ft_log_set_level(lvl);
    if (rc == FT_OK) rc = ft_encoder_load_adapter(m, adapter_dir);
    /* the label names the adapter was trained with */
    if (rc == FT_OK && cJSON_IsArray(labels) && cJSON_GetArraySize(labels) == m->cfg.num_labels) {
        int K = m->cfg.num_labels;
        char **nn = calloc((size_t)K, sizeof *nn);
        if (!nn) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        int k = 0;
        for (const cJSON *it = labels ? labels->child : NULL; nn && it; it = it->next, k++)
            nn[k] = strdup(cJSON_IsString(it) ? it->valuestring : "");
        if (nn) {
            for (int i = 0; i < m->n_label_names; i++) free(m->label_names[i]);
            free(m->label_names);
            m->label_names = nn;
            m->n_label_names = K;
        }
    }
    cJSON_Delete(labels);
    if (rc < 0) { ft_encoder_close(m); return rc; }
    *out = m;
    return FT_OK;
}

int ft_encoder_dir_is_adapter(const char *dir) {
    char path[4096];
    if (ft_path_join(path, sizeof path, dir, "adapter_config.json") != FT_OK || !ft_path_exists(path)) return 0;
    char *text;
    if (ft_file_read_all(path, &text, NULL) != FT_OK) { ft_error_clear(); return 0; }
    cJSON *j = cJSON_Parse(text);
    free(text);
    int yes = 0;
    if (j && cJSON_IsString(cJSON_GetObjectItem(j, "finetune_task"))) yes = 1;
    else if (j) {
        const cJSON *tt = cJSON_GetObjectItem(j, "task_type"), *b = cJSON_GetObjectItem(j, "base_model_name_or_path");
        ft_encoder_config ec;
        if (cJSON_IsString(tt) && (!strcmp(tt->valuestring, "SEQ_CLS") || !strcmp(tt->valuestring, "TOKEN_CLS")) && cJSON_IsString(b))
            yes = ft_encoder_config_load(&ec, b->valuestring) == FT_OK;
        ft_error_clear();
    }
    cJSON_Delete(j);
    return yes;
}
