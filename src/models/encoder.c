/* encoder.c — BERT / DistilBERT / RoBERTa sequence classifiers (encoder.h): config, parameter layout
 * (one allocation, HF names), loading with head re-initialisation, and the forward/backward loop:
 *
 *   e = wte[ids] + wpe[pos] (+ wtt[type_ids]);  x = LN(e)
 *   for each layer:
 *     q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv
 *     r1 = x + attention(q, k, v; mask) Wo^T + bo;      x1 = LN1(r1)
 *     r2 = x1 + act(x1 Wfc^T + bfc) Wpr^T + bpr;       x  = LN2(r2)
 *   logits = W2 act_head(W1 x[:, 0] + b1) + b2          act_head: tanh (BERT, RoBERTa) / ReLU (DistilBERT)
 *
 * Shapes: N = B*T rows, C channels, I FFN width, K labels. Backward mirrors it. */
#include "finetune/encoder.h"
#include "finetune/arena.h"
#include "finetune/fileio.h"
#include "finetune/ops.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_Q_W, S_Q_B, S_K_W, S_K_B, S_V_W, S_V_B, S_O_W, S_O_B, S_LN1_W, S_LN1_B,
       S_FC_W, S_FC_B, S_PR_W, S_PR_B, S_LN2_W, S_LN2_B, S_COUNT };
enum { E_WTE, E_WPE, E_WTT, E_LN_W, E_LN_B, E_H1_W, E_H1_B, E_H2_W, E_H2_B, E_COUNT };
enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU };

typedef struct enc_acts {
    int B, T, n_labels, has_labels;
    int *ids, *types, *pos, *mask, *labels;
    float *emb, *x0, *e_mean, *e_rstd;
    float *q, *k, *v, *att, *atty, *res1, *ln1, *ln1_mean, *ln1_rstd;   /* per layer */
    float *fch, *fcha, *res2, *ln2, *ln2_mean, *ln2_rstd;              /* per layer */
    float *cls, *clsd, *h1, *h1a, *h1d, *logits, *losses, *dlogits;
    float *dx, *dtmp, *dq, *dk, *dv, *datty, *dfch, *dfcha, *dcls, *dh1, *dh1a;
} enc_acts;

struct ft_encoder_model {
    ft_encoder_config cfg;
    const ft_backend *be;
    int ref;                       /* 1: use the ft_ref_ encoder kernels */
    int act;                       /* FFN activation */
    int head_reinit;
    ft_param *params;
    int n_params;
    int slot[E_COUNT];             /* global param index or -1 */
    int *lslot;                    /* [L * S_COUNT] */
    ft_arena weights, grads, act_arena;
    int grads_ready;
    int training;                  /* dropout on (ft_encoder_set_training) */
    uint64_t seed;
    enc_acts a;
};

/* ------------------------------------------------------------ config */

static int json_int(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}
static double json_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_act(const char *s, int *act, const char *path) {
    if (!s || !strcmp(s, "gelu")) *act = ACT_GELU_ERF;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh")) *act = ACT_GELU_TANH;
    else if (!strcmp(s, "relu")) *act = ACT_RELU;
    else return ft_error(FT_ERR_UNSUPPORTED, "%s: hidden activation \"%s\" is not supported (gelu, gelu_new, relu)", path, s);
    return FT_OK;
}

static int config_from_json(ft_encoder_config *c, int *act, const cJSON *root, const char *path) {
    memset(c, 0, sizeof *c);
    const char *type = json_str(root, "model_type");
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: no \"model_type\"", path);
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    if (!strcmp(type, "bert") || !strcmp(type, "roberta")) {
        int rob = !strcmp(type, "roberta");
        c->arch = rob ? FT_ENC_ROBERTA : FT_ENC_BERT;
        c->vocab_size = json_int(root, "vocab_size", 0);
        c->n_embd = json_int(root, "hidden_size", 0);
        c->n_layer = json_int(root, "num_hidden_layers", 0);
        c->n_head = json_int(root, "num_attention_heads", 0);
        c->ffn_hidden = json_int(root, "intermediate_size", 0);
        c->max_pos = json_int(root, "max_position_embeddings", 0);
        c->type_vocab_size = json_int(root, "type_vocab_size", 2);
        c->norm_eps = (float)json_num(root, "layer_norm_eps", 1e-12);
        c->pad_token_id = json_int(root, "pad_token_id", rob ? 1 : 0);
        c->dropout = (float)json_num(root, "hidden_dropout_prob", 0.1);
        c->head_dropout = (float)json_num(root, "classifier_dropout", c->dropout);
        FT_TRY(parse_act(json_str(root, "hidden_act"), act, path));
        const char *pe = json_str(root, "position_embedding_type");
        if (pe && strcmp(pe, "absolute"))
            return ft_error(FT_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (absolute)", path, pe);
    } else if (!strcmp(type, "distilbert")) {
        c->arch = FT_ENC_DISTILBERT;
        c->vocab_size = json_int(root, "vocab_size", 0);
        c->n_embd = json_int(root, "dim", 0);
        c->n_layer = json_int(root, "n_layers", 0);
        c->n_head = json_int(root, "n_heads", 0);
        c->ffn_hidden = json_int(root, "hidden_dim", 0);
        c->max_pos = json_int(root, "max_position_embeddings", 0);
        c->type_vocab_size = 0;
        c->norm_eps = 1e-12f;
        c->pad_token_id = json_int(root, "pad_token_id", 0);
        c->dropout = (float)json_num(root, "dropout", 0.1);
        c->head_dropout = (float)json_num(root, "seq_classif_dropout", 0.2);
        FT_TRY(parse_act(json_str(root, "activation"), act, path));
    } else {
        return ft_error(FT_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not an encoder this build handles (bert, distilbert, roberta)", path, type);
    }
    c->initializer_range = (float)json_num(root, "initializer_range", 0.02);
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    c->num_labels = cJSON_IsObject(id2label) ? cJSON_GetArraySize(id2label) : json_int(root, "num_labels", 2);
    if (c->vocab_size <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->ffn_hidden <= 0 || c->max_pos <= 0)
        return ft_error(FT_ERR_FORMAT, "%s: sizes must be positive (vocab %d, width %d, layers %d, heads %d, ffn %d, positions %d)",
                        path, c->vocab_size, c->n_embd, c->n_layer, c->n_head, c->ffn_hidden, c->max_pos);
    if (c->dropout < 0 || c->dropout >= 1 || c->head_dropout < 0 || c->head_dropout >= 1)
        return ft_error(FT_ERR_FORMAT, "%s: dropout %g / classifier dropout %g must be in [0, 1)", path, (double)c->dropout, (double)c->head_dropout);
    if (c->n_embd % c->n_head)
        return ft_error(FT_ERR_FORMAT, "%s: width %d is not a multiple of the %d heads", path, c->n_embd, c->n_head);
    return FT_OK;
}

static int config_load(ft_encoder_config *c, int *act, const char *dir) {
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "config.json"));
    if (!ft_path_is_dir(dir)) return ft_error(FT_ERR_NOT_FOUND, "%s: model directory not found", dir);
    char *text;
    FT_TRY(ft_file_read_all(path, &text, NULL));
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_IsObject(root)) { cJSON_Delete(root); return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path); }
    int rc = config_from_json(c, act, root, path);
    cJSON_Delete(root);
    return rc;
}

int ft_encoder_config_load(ft_encoder_config *cfg, const char *dir) {
    int act;
    return config_load(cfg, &act, dir);
}

/* ------------------------------------------------------------ layout and names */

static const char *prefix(const ft_encoder_config *c) {
    return c->arch == FT_ENC_BERT ? "bert." : c->arch == FT_ENC_ROBERTA ? "roberta." : "distilbert.";
}

static void global_name(const ft_encoder_config *c, int g, char *buf, size_t cap) {
    const char *p = prefix(c);
    int d = c->arch == FT_ENC_DISTILBERT, r = c->arch == FT_ENC_ROBERTA;
    switch (g) {
    case E_WTE: snprintf(buf, cap, "%sembeddings.word_embeddings.weight", p); break;
    case E_WPE: snprintf(buf, cap, "%sembeddings.position_embeddings.weight", p); break;
    case E_WTT: snprintf(buf, cap, "%sembeddings.token_type_embeddings.weight", p); break;
    case E_LN_W: snprintf(buf, cap, "%sembeddings.LayerNorm.weight", p); break;
    case E_LN_B: snprintf(buf, cap, "%sembeddings.LayerNorm.bias", p); break;
    case E_H1_W: case E_H1_B:
        snprintf(buf, cap, "%s.%s", d ? "pre_classifier" : r ? "classifier.dense" : "bert.pooler.dense", g == E_H1_W ? "weight" : "bias");
        break;
    default:
        snprintf(buf, cap, "%s.%s", r ? "classifier.out_proj" : "classifier", g == E_H2_W ? "weight" : "bias");
    }
}

static void layer_name(const ft_encoder_config *c, int l, int s, char *buf, size_t cap) {
    static const char *bert[] = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                                 "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"};
    static const char *distil[] = {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                   "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"};
    const char *mod = (c->arch == FT_ENC_DISTILBERT ? distil : bert)[s / 2];
    snprintf(buf, cap, "%s%s.%d.%s.%s", prefix(c), c->arch == FT_ENC_DISTILBERT ? "transformer.layer" : "encoder.layer",
             l, mod, s % 2 ? "bias" : "weight");
}

static int add_param(ft_encoder_model *m, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay) {
    ft_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->t.dtype = FT_F32;
    p->t.ndim = cols > 0 ? 2 : 1;
    p->t.shape[0] = rows;
    if (cols > 0) p->t.shape[1] = cols;
    p->decay = decay;
    p->trainable = 1;
    p->t.data = (void *)(uintptr_t)plan->used;  /* offset until the arena exists */
    ft_arena_alloc(plan, ft_tensor_nbytes(&p->t));
    return m->n_params++;
}

static int layout(ft_encoder_model *m) {
    const ft_encoder_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, I = c->ffn_hidden, K = c->num_labels;
    m->params = calloc((size_t)(L * S_COUNT + E_COUNT), sizeof *m->params);
    m->lslot = malloc(sizeof(int) * (size_t)L * S_COUNT);
    if (!m->params || !m->lslot) return ft_error(FT_ERR_NOMEM, "encoder: out of memory");
    for (int i = 0; i < E_COUNT; i++) m->slot[i] = -1;
    ft_arena plan;
    ft_arena_plan(&plan);
    char n[64];
    int64_t shape[E_COUNT][2] = {{c->vocab_size, C}, {c->max_pos, C}, {c->type_vocab_size, C}, {C, 0}, {C, 0},
                                 {C, C}, {C, 0}, {K, C}, {K, 0}};
    for (int g = 0; g < E_H1_W; g++) {
        if (g == E_WTT && c->type_vocab_size <= 0) continue;
        global_name(c, g, n, sizeof n);
        m->slot[g] = add_param(m, &plan, n, shape[g][0], shape[g][1], 0);
    }
    for (int l = 0; l < L; l++) {
        int64_t ls[S_COUNT][2] = {{C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0}, {C, 0}, {C, 0},
                                  {I, C}, {I, 0}, {C, I}, {C, 0}, {C, 0}, {C, 0}};
        for (int s = 0; s < S_COUNT; s++) {
            layer_name(c, l, s, n, sizeof n);
            m->lslot[l * S_COUNT + s] = add_param(m, &plan, n, ls[s][0], ls[s][1], ls[s][1] > 0);
        }
    }
    for (int g = E_H1_W; g < E_COUNT; g++) {
        global_name(c, g, n, sizeof n);
        m->slot[g] = add_param(m, &plan, n, shape[g][0], shape[g][1], shape[g][1] > 0);
    }
    FT_TRY(ft_arena_init(&m->weights, plan.used));
    for (int i = 0; i < m->n_params; i++) m->params[i].t.data = m->weights.base + (uintptr_t)m->params[i].t.data;
    m->weights.used = plan.used;
    return FT_OK;
}

static float *gp(const ft_encoder_model *m, int g) { return m->slot[g] >= 0 ? m->params[m->slot[g]].t.data : NULL; }
static float *gg(const ft_encoder_model *m, int g) { return m->slot[g] >= 0 ? m->params[m->slot[g]].grad : NULL; }
static float *lp(const ft_encoder_model *m, int l, int s) { return m->params[m->lslot[l * S_COUNT + s]].t.data; }
static float *lg(const ft_encoder_model *m, int l, int s) { return m->params[m->lslot[l * S_COUNT + s]].grad; }

/* ------------------------------------------------------------ loading */

/* the checkpoint tensor for our name: as is, without the model prefix (BertModel checkpoints),
 * or with the old LayerNorm gamma/beta spelling */
static const ft_st_entry *find_tensor(const ft_safetensors *st, const ft_encoder_config *c, const char *name) {
    const ft_st_entry *e = ft_st_find(st, name);
    const char *p = prefix(c);
    size_t pl = strlen(p);
    if (!e && !strncmp(name, p, pl)) e = ft_st_find(st, name + pl);
    if (!e) {
        char alt[160];
        size_t n = strlen(name);
        if (n > 16 && !strcmp(name + n - 16, "LayerNorm.weight")) snprintf(alt, sizeof alt, "%.*sLayerNorm.gamma", (int)(n - 16), name);
        else if (n > 14 && !strcmp(name + n - 14, "LayerNorm.bias")) snprintf(alt, sizeof alt, "%.*sLayerNorm.beta", (int)(n - 14), name);
        else return NULL;
        e = ft_st_find(st, alt);
        if (!e && !strncmp(alt, p, pl)) e = ft_st_find(st, alt + pl);
    }
    return e;
}

static int read_param(ft_safetensors *st, const ft_encoder_config *c, ft_param *p) {
    const ft_st_entry *e = find_tensor(st, c, p->name);
    if (!e) return ft_error(FT_ERR_NOT_FOUND, "checkpoint has no tensor %s", p->name);
    return ft_st_read_f32(st, e->name, p->t.shape, p->t.ndim, p->t.data);
}

/* the head tensors are re-initialised when absent or shaped for another label count */
static int head_usable(ft_safetensors *st, const ft_encoder_model *m, int g) {
    const ft_param *p = &m->params[m->slot[g]];
    const ft_st_entry *e = find_tensor(st, &m->cfg, p->name);
    if (!e || e->ndim != p->t.ndim) return 0;
    for (int i = 0; i < e->ndim; i++) if (e->shape[i] != p->t.shape[i]) return 0;
    return 1;
}

int ft_encoder_load(ft_encoder_model **out, const char *dir, int num_labels, const ft_backend *be) {
    *out = NULL;
    if (num_labels < 0) return ft_error(FT_ERR_INVALID, "num_labels %d: must be >= 0 (0 = from config.json)", num_labels);
    ft_encoder_model *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "encoder: out of memory");
    int rc = config_load(&m->cfg, &m->act, dir);
    int ckpt_labels = m->cfg.num_labels;
    if (rc == FT_OK && num_labels > 0) m->cfg.num_labels = num_labels;
    m->be = be ? be : ft_backend_cpu();
    m->ref = m->be == ft_backend_ref();
    if (rc == FT_OK) rc = layout(m);
    ft_safetensors *st = NULL;
    if (rc == FT_OK) rc = ft_st_open(&st, dir);
    for (int i = 0; rc == FT_OK && i < m->n_params; i++) {
        int head = 0;
        for (int g = E_H1_W; g < E_COUNT; g++) head |= m->slot[g] == i;
        if (!head) rc = read_param(st, &m->cfg, &m->params[i]);
        if (rc < 0) rc = ft_error_wrap(rc, "%s", dir);
    }
    if (rc == FT_OK) {
        /* head: pooler / pre_classifier / dense (H1) and the label projection (H2) */
        ft_rng r;
        ft_rng_seed(&r, 0x5EEDull + (uint64_t)m->cfg.num_labels);
        for (int g = E_H1_W; g < E_COUNT; g += 2) {
            ft_param *w = &m->params[m->slot[g]], *b = &m->params[m->slot[g + 1]];
            if (head_usable(st, m, g) && head_usable(st, m, g + 1)) {
                rc = read_param(st, &m->cfg, w);
                if (rc == FT_OK) rc = read_param(st, &m->cfg, b);
                if (rc < 0) break;
                continue;
            }
            const ft_st_entry *e = find_tensor(st, &m->cfg, w->name);
            if (e && g == E_H2_W)
                FT_LOGW("%s: %s has %lld labels, %d asked for: re-initialising the classification head (%s, %s)",
                        dir, w->name, (long long)e->shape[0], m->cfg.num_labels, w->name, b->name);
            else
                FT_LOGW("%s: checkpoint has no %s (%s): initialising it randomly (normal(0, %g), zero bias); "
                        "train it before use", dir, w->name, ckpt_labels == m->cfg.num_labels ? "base model" : "other head",
                        (double)m->cfg.initializer_range);
            float *wd = w->t.data;
            for (int64_t i = 0; i < ft_tensor_numel(&w->t); i++) wd[i] = m->cfg.initializer_range * ft_rng_normal(&r);
            memset(b->t.data, 0, ft_tensor_nbytes(&b->t));
            m->head_reinit = 1;
        }
    }
    ft_st_close(st);
    if (rc < 0) { ft_encoder_close(m); return rc; }
    *out = m;
    return FT_OK;
}

void ft_encoder_close(ft_encoder_model *m) {
    if (!m) return;
    ft_arena_free(&m->weights);
    ft_arena_free(&m->grads);
    ft_arena_free(&m->act_arena);
    free(m->params);
    free(m->lslot);
    free(m);
}

const ft_encoder_config *ft_encoder_get_config(const ft_encoder_model *m) { return &m->cfg; }
int ft_encoder_head_reinitialised(const ft_encoder_model *m) { return m->head_reinit; }
int ft_encoder_num_params(const ft_encoder_model *m) { return m->n_params; }
ft_param *ft_encoder_param(ft_encoder_model *m, int i) { return i >= 0 && i < m->n_params ? &m->params[i] : NULL; }
int64_t ft_encoder_param_count(const ft_encoder_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += ft_tensor_numel(&m->params[i].t);
    return n;
}

/* ------------------------------------------------------------ activations */

static size_t acts_layout(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *arena) {
    const ft_encoder_config *c = &m->cfg;
    size_t N = (size_t)B * T, L = (size_t)c->n_layer, C = (size_t)c->n_embd, I = (size_t)c->ffn_hidden;
    size_t K = (size_t)c->num_labels, ATT = (size_t)B * c->n_head * T * T;
    struct { float **p; size_t n; } f[] = {
        {&a->emb, N * C}, {&a->x0, N * C}, {&a->e_mean, N}, {&a->e_rstd, N},
        {&a->q, L * N * C}, {&a->k, L * N * C}, {&a->v, L * N * C}, {&a->att, L * ATT}, {&a->atty, L * N * C},
        {&a->res1, L * N * C}, {&a->ln1, L * N * C}, {&a->ln1_mean, L * N}, {&a->ln1_rstd, L * N},
        {&a->fch, L * N * I}, {&a->fcha, L * N * I}, {&a->res2, L * N * C}, {&a->ln2, L * N * C},
        {&a->ln2_mean, L * N}, {&a->ln2_rstd, L * N},
        {&a->cls, B * C}, {&a->clsd, B * C}, {&a->h1, B * C}, {&a->h1a, B * C}, {&a->h1d, B * C}, {&a->logits, B * K}, {&a->losses, (size_t)B}, {&a->dlogits, B * K},
        {&a->dx, N * C}, {&a->dtmp, N * C}, {&a->dq, N * C}, {&a->dk, N * C}, {&a->dv, N * C}, {&a->datty, N * C},
        {&a->dfch, N * I}, {&a->dfcha, N * I}, {&a->dcls, B * C}, {&a->dh1, B * C}, {&a->dh1a, B * C},
    };
    int **iv[] = {&a->ids, &a->types, &a->pos, &a->mask};
    ft_arena plan, *ar = arena;
    if (!ar) { ft_arena_plan(&plan); ar = &plan; }
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i].p = ft_arena_alloc(ar, f[i].n * sizeof(float));
    for (size_t i = 0; i < 4; i++) *iv[i] = ft_arena_alloc(ar, N * sizeof(int));
    a->labels = ft_arena_alloc(ar, (size_t)B * sizeof(int));
    return ar->used;
}

static int prepare(ft_encoder_model *m, int B, int T) {
    if (B <= 0 || T <= 0) return ft_error(FT_ERR_INVALID, "batch %d x %d: sizes must be positive", B, T);
    if (m->a.B == B && m->a.T == T) return FT_OK;
    ft_arena_free(&m->act_arena);
    memset(&m->a, 0, sizeof m->a);
    enc_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    FT_TRY(ft_arena_init(&m->act_arena, acts_layout(m, &tmp, B, T, NULL)));
    acts_layout(m, &m->a, B, T, &m->act_arena);
    m->a.B = B;
    m->a.T = T;
    return FT_OK;
}

/* ------------------------------------------------------------ kernels of this file's choice */

static void k_attn_fwd(const ft_encoder_model *m, float *out, float *att, const float *q, const float *k, const float *v,
                       const int *mask, int B, int T, int NH, int HS) {
    (m->ref ? ft_ref_enc_attention_forward : ft_cpu_enc_attention_forward)(out, att, q, k, v, mask, B, T, NH, HS);
}
static void k_attn_bwd(const ft_encoder_model *m, float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *att, int B, int T, int NH, int HS) {
    (m->ref ? ft_ref_enc_attention_backward : ft_cpu_enc_attention_backward)(dq, dk, dv, dout, q, k, v, att, B, T, NH, HS);
}
static void ffn_act_fwd(const ft_encoder_model *m, float *out, const float *inp, size_t n) {
    if (m->act == ACT_GELU_TANH) m->be->gelu_forward(out, inp, n);
    else if (m->act == ACT_RELU) (m->ref ? ft_ref_relu_forward : ft_cpu_relu_forward)(out, inp, n);
    else (m->ref ? ft_ref_gelu_erf_forward : ft_cpu_gelu_erf_forward)(out, inp, n);
}
static void ffn_act_bwd(const ft_encoder_model *m, float *dinp, const float *dout, const float *inp, size_t n) {
    if (m->act == ACT_GELU_TANH) m->be->gelu_backward(dinp, dout, inp, n);
    else if (m->act == ACT_RELU) (m->ref ? ft_ref_relu_backward : ft_cpu_relu_backward)(dinp, dout, inp, n);
    else (m->ref ? ft_ref_gelu_erf_backward : ft_cpu_gelu_erf_backward)(dinp, dout, inp, n);
}

/* ------------------------------------------------------------ dropout */

void ft_encoder_set_training(ft_encoder_model *m, int training, uint64_t seed) {
    m->training = training;
    m->seed = seed;
}

static float hid_p(const ft_encoder_model *m) { return m->training ? m->cfg.dropout : 0.0f; }
static float head_p(const ft_encoder_model *m) { return m->training ? m->cfg.head_dropout : 0.0f; }
/* the dropout stream of (layer, site): layer -1 embeddings (site 0) and head (sites 1, 2); blocks: 1 attention, 2 FFN */
static uint64_t site_seed(const ft_encoder_model *m, int layer, int site) {
    return m->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)((layer + 2) * 4 + site + 1));
}

/* ------------------------------------------------------------ forward */

int ft_encoder_forward(ft_encoder_model *m, const int *ids, const int *type_ids, const int *attention_mask,
                       const int *labels, int B, int T, float *loss) {
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    int rob = c->arch == FT_ENC_ROBERTA, pad = c->pad_token_id;
    int maxT = c->max_pos - (rob ? pad + 1 : 0);
    if (T > maxT) return ft_error(FT_ERR_RANGE, "sequence length %d exceeds the encoder's %d positions", T, maxT);
    FT_TRY(prepare(m, B, T));
    enc_acts *a = &m->a;
    int N = B * T, C = c->n_embd, L = c->n_layer, NH = c->n_head, HS = C / NH, I = c->ffn_hidden, K = c->num_labels;
    for (int b = 0; b < B; b++) {
        int run = 0;
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            if (ids[i] < 0 || ids[i] >= c->vocab_size)
                return ft_error(FT_ERR_RANGE, "token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i, c->vocab_size);
            int tt = type_ids ? type_ids[i] : 0;
            if (tt < 0 || (c->type_vocab_size > 0 ? tt >= c->type_vocab_size : tt != 0))
                return ft_error(FT_ERR_RANGE, "token type %d at position %d is outside [0, %d)", tt, i,
                                c->type_vocab_size > 0 ? c->type_vocab_size : 1);
            a->ids[i] = ids[i];
            a->types[i] = tt;
            a->mask[i] = attention_mask ? attention_mask[i] != 0 : 1;
            /* RoBERTa: positions count the non-padding tokens from padding_idx + 1; padding sits at padding_idx */
            if (rob) a->pos[i] = ids[i] != pad ? pad + (++run) : pad;
            else a->pos[i] = t;
        }
    }
    a->has_labels = labels != NULL;
    a->n_labels = 0;
    for (int b = 0; b < B; b++) {
        a->labels[b] = labels ? labels[b] : FT_IGNORE_INDEX;
        if (a->labels[b] == FT_IGNORE_INDEX) continue;
        if (a->labels[b] < 0 || a->labels[b] >= K)
            return ft_error(FT_ERR_RANGE, "label %d of sequence %d is outside [0, %d)", a->labels[b], b, K);
        a->n_labels++;
    }

    be->embedding_forward(a->emb, a->ids, a->pos, gp(m, E_WTE), gp(m, E_WPE), N, T, C);
    if (gp(m, E_WTT)) {
        be->embedding_forward(a->dtmp, a->types, NULL, gp(m, E_WTT), NULL, N, T, C);
        be->residual_forward(a->emb, a->emb, a->dtmp, (size_t)N * C);
    }
    be->layernorm_forward(a->x0, a->e_mean, a->e_rstd, a->emb, gp(m, E_LN_W), gp(m, E_LN_B), N, C, c->norm_eps);
    float ph = hid_p(m), pc = head_p(m);
    if (ph > 0) be->dropout_forward(a->x0, a->x0, (size_t)N * C, ph, site_seed(m, -1, 0));
    const float *x = a->x0;
    for (int l = 0; l < L; l++) {
        size_t lN = (size_t)l * N;
        float *q = a->q + lN * C, *k = a->k + lN * C, *v = a->v + lN * C, *att = a->att + (size_t)l * B * NH * T * T;
        float *atty = a->atty + lN * C, *res1 = a->res1 + lN * C, *ln1 = a->ln1 + lN * C;
        float *fch = a->fch + lN * I, *fcha = a->fcha + lN * I, *res2 = a->res2 + lN * C, *ln2 = a->ln2 + lN * C;
        be->matmul_forward(q, x, lp(m, l, S_Q_W), lp(m, l, S_Q_B), N, C, C);
        be->matmul_forward(k, x, lp(m, l, S_K_W), lp(m, l, S_K_B), N, C, C);
        be->matmul_forward(v, x, lp(m, l, S_V_W), lp(m, l, S_V_B), N, C, C);
        k_attn_fwd(m, atty, att, q, k, v, a->mask, B, T, NH, HS);
        be->matmul_forward(a->dtmp, atty, lp(m, l, S_O_W), lp(m, l, S_O_B), N, C, C);
        if (ph > 0) be->dropout_forward(a->dtmp, a->dtmp, (size_t)N * C, ph, site_seed(m, l, 1));
        be->residual_forward(res1, x, a->dtmp, (size_t)N * C);
        be->layernorm_forward(ln1, a->ln1_mean + lN, a->ln1_rstd + lN, res1, lp(m, l, S_LN1_W), lp(m, l, S_LN1_B), N, C, c->norm_eps);
        be->matmul_forward(fch, ln1, lp(m, l, S_FC_W), lp(m, l, S_FC_B), N, C, I);
        ffn_act_fwd(m, fcha, fch, (size_t)N * I);
        be->matmul_forward(a->dtmp, fcha, lp(m, l, S_PR_W), lp(m, l, S_PR_B), N, I, C);
        if (ph > 0) be->dropout_forward(a->dtmp, a->dtmp, (size_t)N * C, ph, site_seed(m, l, 2));
        be->residual_forward(res2, ln1, a->dtmp, (size_t)N * C);
        be->layernorm_forward(ln2, a->ln2_mean + lN, a->ln2_rstd + lN, res2, lp(m, l, S_LN2_W), lp(m, l, S_LN2_B), N, C, c->norm_eps);
        x = ln2;
    }
    for (int b = 0; b < B; b++) memcpy(a->cls + (size_t)b * C, x + (size_t)b * T * C, sizeof(float) * (size_t)C);
    /* head dropout: RoBERTa drops the <s> vector before dense; all drop the activated vector before the last Linear */
    int drop_cls = pc > 0 && c->arch == FT_ENC_ROBERTA;
    const float *cin = a->cls, *hin = a->h1a;
    if (drop_cls) { be->dropout_forward(a->clsd, a->cls, (size_t)B * C, pc, site_seed(m, -1, 1)); cin = a->clsd; }
    be->matmul_forward(a->h1, cin, gp(m, E_H1_W), gp(m, E_H1_B), B, C, C);
    if (c->arch == FT_ENC_DISTILBERT) (m->ref ? ft_ref_relu_forward : ft_cpu_relu_forward)(a->h1a, a->h1, (size_t)B * C);
    else (m->ref ? ft_ref_tanh_forward : ft_cpu_tanh_forward)(a->h1a, a->h1, (size_t)B * C);
    if (pc > 0) { be->dropout_forward(a->h1d, a->h1a, (size_t)B * C, pc, site_seed(m, -1, 2)); hin = a->h1d; }
    be->matmul_forward(a->logits, hin, gp(m, E_H2_W), gp(m, E_H2_B), B, C, K);
    if (loss) *loss = 0.0f;
    if (labels) {
        be->crossentropy_forward_backward(a->losses, NULL, a->logits, a->labels, B, K, 1.0f, 0.0f, FT_IGNORE_INDEX);
        double sum = 0;
        for (int b = 0; b < B; b++) sum += a->losses[b];
        if (loss) *loss = a->n_labels ? (float)(sum / a->n_labels) : 0.0f;
    }
    return FT_OK;
}

const float *ft_encoder_logits(const ft_encoder_model *m) { return m->a.logits; }

/* ------------------------------------------------------------ backward */

int ft_encoder_zero_grad(ft_encoder_model *m) { return ft_params_zero_grad(m->params, m->n_params, &m->grads, &m->grads_ready); }

int ft_encoder_backward(ft_encoder_model *m) {
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &m->a;
    if (!a->B || !a->has_labels) return ft_error(FT_ERR_INVALID, "encoder backward needs a forward pass with labels first");
    if (!m->grads_ready) FT_TRY(ft_encoder_zero_grad(m));
    int B = a->B, T = a->T, N = B * T, C = c->n_embd, L = c->n_layer, NH = c->n_head, HS = C / NH, I = c->ffn_hidden;
    int K = c->num_labels;
    size_t NC = (size_t)N * C;
    float scale = a->n_labels ? 1.0f / a->n_labels : 0.0f;

    /* head */
    be->crossentropy_forward_backward(a->losses, a->dlogits, a->logits, a->labels, B, K, scale, 0.0f, FT_IGNORE_INDEX);
    float ph = hid_p(m), pc = head_p(m);
    int drop_cls = pc > 0 && c->arch == FT_ENC_ROBERTA;
    be->matmul_backward(a->dh1a, gg(m, E_H2_W), gg(m, E_H2_B), a->dlogits, pc > 0 ? a->h1d : a->h1a, gp(m, E_H2_W), B, C, K);
    if (pc > 0) be->dropout_backward(a->dh1a, a->dh1a, (size_t)B * C, pc, site_seed(m, -1, 2));
    if (c->arch == FT_ENC_DISTILBERT) (m->ref ? ft_ref_relu_backward : ft_cpu_relu_backward)(a->dh1, a->dh1a, a->h1, (size_t)B * C);
    else (m->ref ? ft_ref_tanh_backward : ft_cpu_tanh_backward)(a->dh1, a->dh1a, a->h1a, (size_t)B * C);
    be->matmul_backward(a->dcls, gg(m, E_H1_W), gg(m, E_H1_B), a->dh1, drop_cls ? a->clsd : a->cls, gp(m, E_H1_W), B, C, C);
    if (drop_cls) be->dropout_backward(a->dcls, a->dcls, (size_t)B * C, pc, site_seed(m, -1, 1));
    memset(a->dx, 0, NC * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(a->dx + (size_t)b * T * C, a->dcls + (size_t)b * C, sizeof(float) * (size_t)C);

    /* blocks: a->dx holds d(block output) on entry, d(block input) on exit */
    for (int l = L - 1; l >= 0; l--) {
        size_t lN = (size_t)l * N;
        const float *x = l == 0 ? a->x0 : a->ln2 + (lN - N) * C;
        float *q = a->q + lN * C, *k = a->k + lN * C, *v = a->v + lN * C, *att = a->att + (size_t)l * B * NH * T * T;
        float *atty = a->atty + lN * C, *res1 = a->res1 + lN * C, *ln1 = a->ln1 + lN * C;
        float *fch = a->fch + lN * I, *fcha = a->fcha + lN * I, *res2 = a->res2 + lN * C;
        be->layernorm_backward(a->dtmp, lg(m, l, S_LN2_W), lg(m, l, S_LN2_B), a->dx, NULL, res2, lp(m, l, S_LN2_W),
                               a->ln2_mean + lN, a->ln2_rstd + lN, N, C);
        const float *dffn = a->dtmp;
        if (ph > 0) { be->dropout_backward(a->dq, a->dtmp, NC, ph, site_seed(m, l, 2)); dffn = a->dq; }
        be->matmul_backward(a->dfcha, lg(m, l, S_PR_W), lg(m, l, S_PR_B), dffn, fcha, lp(m, l, S_PR_W), N, I, C);
        ffn_act_bwd(m, a->dfch, a->dfcha, fch, (size_t)N * I);
        be->matmul_backward(a->dx, lg(m, l, S_FC_W), lg(m, l, S_FC_B), a->dfch, ln1, lp(m, l, S_FC_W), N, C, I);
        be->residual_forward(a->dx, a->dx, a->dtmp, NC);
        be->layernorm_backward(a->dtmp, lg(m, l, S_LN1_W), lg(m, l, S_LN1_B), a->dx, NULL, res1, lp(m, l, S_LN1_W),
                               a->ln1_mean + lN, a->ln1_rstd + lN, N, C);
        const float *dao = a->dtmp;
        if (ph > 0) { be->dropout_backward(a->dq, a->dtmp, NC, ph, site_seed(m, l, 1)); dao = a->dq; }
        be->matmul_backward(a->datty, lg(m, l, S_O_W), lg(m, l, S_O_B), dao, atty, lp(m, l, S_O_W), N, C, C);
        k_attn_bwd(m, a->dq, a->dk, a->dv, a->datty, q, k, v, att, B, T, NH, HS);
        be->matmul_backward(a->dx, lg(m, l, S_Q_W), lg(m, l, S_Q_B), a->dq, x, lp(m, l, S_Q_W), N, C, C);
        be->residual_forward(a->dtmp, a->dtmp, a->dx, NC);
        be->matmul_backward(a->dx, lg(m, l, S_K_W), lg(m, l, S_K_B), a->dk, x, lp(m, l, S_K_W), N, C, C);
        be->residual_forward(a->dtmp, a->dtmp, a->dx, NC);
        be->matmul_backward(a->dx, lg(m, l, S_V_W), lg(m, l, S_V_B), a->dv, x, lp(m, l, S_V_W), N, C, C);
        be->residual_forward(a->dx, a->dtmp, a->dx, NC);
    }
    if (ph > 0) be->dropout_backward(a->dx, a->dx, NC, ph, site_seed(m, -1, 0));
    be->layernorm_backward(a->dtmp, gg(m, E_LN_W), gg(m, E_LN_B), a->dx, NULL, a->emb, gp(m, E_LN_W), a->e_mean, a->e_rstd, N, C);
    be->embedding_backward(gg(m, E_WTE), gg(m, E_WPE), a->dtmp, a->ids, a->pos, N, T, C);
    if (gp(m, E_WTT)) be->embedding_backward(gg(m, E_WTT), NULL, a->dtmp, a->types, NULL, N, T, C);
    return FT_OK;
}
