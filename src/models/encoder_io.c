/* encoder_io.c — the encoder's files and options: config.json (sizes, task, pooling, labels), loading
 * with head (re-)initialisation, saving an HF directory, reading weights back, freezing, task names. */
#include "models/encoder_internal.h"
#include "models/config_limits.h"
#include "core/json_util.h"
#include "models/linear.h"
#include "models/model_internal.h"
#include "finetune/fileio.h"
#include "finetune/ops.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ names */

static const char *TASK_NAMES[] = {"auto", "classify", "regress", "token-classify", "mlm"};

const char *ft_encoder_task_name(ft_encoder_task t) {
    return (int)t >= 0 && (int)t < (int)(sizeof TASK_NAMES / sizeof *TASK_NAMES) ? TASK_NAMES[t] : "unknown";
}

int ft_encoder_task_from_name(const char *name, ft_encoder_task *out) {
    for (int i = 0; name && i < (int)(sizeof TASK_NAMES / sizeof *TASK_NAMES); i++)
        if (!strcmp(name, TASK_NAMES[i])) { *out = (ft_encoder_task)i; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "unknown encoder task \"%s\" (classify, regress, token-classify, mlm)", name ? name : "");
}

ft_encoder_options ft_encoder_default_options(void) {
    ft_encoder_options o = {FT_TASK_AUTO, 0, FT_POOL_AUTO};
    return o;
}

const char *ft_encoder_label_name(const ft_encoder_model *m, int i) {
    if (m->n_label_names != m->cfg.num_labels || i < 0 || i >= m->n_label_names) return NULL;
    return m->label_names[i];
}

/* ------------------------------------------------------------ config */

static const ft__enc_family *const k_families[] = {&ft__enc_bert, &ft__enc_distilbert, &ft__enc_roberta};
enum { N_FAMILIES = sizeof k_families / sizeof *k_families };

const ft__enc_family *ft__enc_family_by_type(const char *model_type) {
    for (int i = 0; model_type && i < N_FAMILIES; i++)
        if (!strcmp(model_type, k_families[i]->model_type)) return k_families[i];
    return NULL;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int parse_act(const char *s, int *act, const char *path) {
    if (!s || !strcmp(s, "gelu")) *act = ACT_GELU_ERF;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh")) *act = ACT_GELU_TANH;
    else if (!strcmp(s, "relu")) *act = ACT_RELU;
    else return ft_error(FT_ERR_UNSUPPORTED, "%s: hidden activation \"%s\" is not supported (gelu, gelu_new, relu)", path, s);
    return FT_OK;
}

/* config.json -> c, the FFN activation and the family (*fam): the keys every family has, by the family's
 * names for them, then the family's own (ft__enc_family.config) */
static int config_from_json(ft_encoder_config *c, int *act, const ft__enc_family **fam, const cJSON *root, const char *path) {
    memset(c, 0, sizeof *c);
    const char *type = ft__json_str(root, "model_type", NULL);
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: no \"model_type\"", path);
    FT_TRY(ft__encoder_config_check_json(root, type, path));
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    const ft__enc_family *f = ft__enc_family_by_type(type);
    if (!f) return ft_error(FT_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not an encoder this build handles (bert, distilbert, roberta)", path, type);
    const ft__enc_config_keys *k = f->keys;
    *fam = f;
    c->arch = f->arch;
    c->vocab_size = ft__json_int(root, "vocab_size", 0);
    c->n_embd = ft__json_int(root, k->width, 0);
    c->n_layer = ft__json_int(root, k->layers, 0);
    c->n_head = ft__json_int(root, k->heads, 0);
    c->ffn_hidden = ft__json_int(root, k->ffn, 0);
    c->max_pos = ft__json_int(root, "max_position_embeddings", 0);
    c->pad_token_id = ft__json_int(root, "pad_token_id", f->pad_default);
    c->dropout = (float)ft__json_num(root, k->dropout, 0.1);
    c->head_dropout = (float)ft__json_num(root, k->head_dropout, k->head_dropout_default < 0 ? c->dropout : k->head_dropout_default);
    FT_TRY(parse_act(ft__json_str(root, k->act, NULL), act, path));
    FT_TRY(f->config(c, root, path));
    c->initializer_range = (float)ft__json_num(root, "initializer_range", 0.02);
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    c->num_labels = cJSON_IsObject(id2label) ? cJSON_GetArraySize(id2label) : ft__json_int(root, "num_labels", 2);
    if (c->vocab_size <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->ffn_hidden <= 0 || c->max_pos <= 0)
        return ft_error(FT_ERR_FORMAT, "%s: sizes must be positive (vocab %d, width %d, layers %d, heads %d, ffn %d, positions %d)",
                        path, c->vocab_size, c->n_embd, c->n_layer, c->n_head, c->ffn_hidden, c->max_pos);
    if (c->dropout < 0 || c->dropout >= 1 || c->head_dropout < 0 || c->head_dropout >= 1)
        return ft_error(FT_ERR_FORMAT, "%s: dropout %g / classifier dropout %g must be in [0, 1)", path, (double)c->dropout, (double)c->head_dropout);
    if (c->n_embd % c->n_head)
        return ft_error(FT_ERR_FORMAT, "%s: width %d is not a multiple of the %d heads", path, c->n_embd, c->n_head);
    return FT_OK;
}

/* dropout on the attention probabilities (training mode): BERT / RoBERTa attention_probs_dropout_prob,
 * DistilBERT attention_dropout, both 0.1 by default as in transformers */
static int attn_dropout_from_json(float *p, const ft__enc_family *f, const cJSON *root, const char *path) {
    *p = (float)ft__json_num(root, f->keys->attn_dropout, 0.1);
    if (*p < 0 || *p >= 1) return ft_error(FT_ERR_FORMAT, "%s: attention dropout %g must be in [0, 1)", path, (double)*p);
    return FT_OK;
}

/* config.json of dir, parsed (*root: the JSON, caller deletes) */
static int config_read(const char *dir, cJSON **root, char *path, size_t cap) {
    *root = NULL;
    FT_TRY(ft_path_join(path, cap, dir, "config.json"));
    if (!ft_path_is_dir(dir)) return ft_error(FT_ERR_NOT_FOUND, "%s: model directory not found", dir);
    char *text;
    FT_TRY(ft_file_read_all(path, &text, NULL));
    *root = cJSON_Parse(text);
    free(text);
    if (!*root || !cJSON_IsObject(*root)) { cJSON_Delete(*root); *root = NULL; return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path); }
    return FT_OK;
}

int ft_encoder_config_load(ft_encoder_config *cfg, const char *dir) {
    char path[4096];
    cJSON *root;
    int act;
    const ft__enc_family *fam;
    FT_TRY(config_read(dir, &root, path, sizeof path));
    int rc = config_from_json(cfg, &act, &fam, root, path);
    cJSON_Delete(root);
    return rc;
}

int ft_encoder_config_max_len(const ft_encoder_config *cfg) {
    for (int i = 0; i < N_FAMILIES; i++)
        if (k_families[i]->arch == cfg->arch) return k_families[i]->max_len(cfg);
    return 0;
}

/* the task and pooling config.json asks for (options AUTO) */
static int config_task(const cJSON *root, const char *path, int ckpt_labels, ft_encoder_task *task) {
    const char *ft = ft__json_str(root, "finetune_task", NULL);
    if (ft) {
        if (ft_encoder_task_from_name(ft, task) < 0 || *task == FT_TASK_AUTO)
            return ft_error(FT_ERR_FORMAT, "%s: \"finetune_task\": \"%s\" is not a task (classify, regress, token-classify, mlm)", path, ft);
        return FT_OK;
    }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    const char *arch = cJSON_IsString(a0) ? a0->valuestring : "";
    const char *pt = ft__json_str(root, "problem_type", NULL);
    if (ends_with(arch, "ForTokenClassification")) *task = FT_TASK_TOKEN;
    else if (ends_with(arch, "ForMaskedLM")) *task = FT_TASK_MLM;
    else if (pt && !strcmp(pt, "regression")) *task = FT_TASK_REGRESS;
    /* transformers' rule: a sequence classifier with one label and no problem_type regresses */
    else if (!pt && ends_with(arch, "ForSequenceClassification") && ckpt_labels == 1) *task = FT_TASK_REGRESS;
    else *task = FT_TASK_CLASSIFY;
    return FT_OK;
}

static int config_pooling(const cJSON *root, const char *path, ft_encoder_pooling *pool) {
    const char *s = ft__json_str(root, "finetune_pooling", NULL);
    if (!s || !strcmp(s, "cls")) *pool = FT_POOL_CLS;
    else if (!strcmp(s, "mean")) *pool = FT_POOL_MEAN;
    else return ft_error(FT_ERR_FORMAT, "%s: \"finetune_pooling\": \"%s\" is not a pooling (cls, mean)", path, s);
    return FT_OK;
}

/* id2label {"0": "neg", ...} -> names by index */
static int config_labels(ft_encoder_model *m, const cJSON *root) {
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (!cJSON_IsObject(id2label)) return FT_OK;
    int n = 0;
    for (const cJSON *it = id2label->child; it; it = it->next) {
        char *end;
        long i = strtol(it->string, &end, 10);
        if (*end || i < 0 || i > 1000000) continue;
        if (i + 1 > n) n = (int)i + 1;
    }
    if (!n) return FT_OK;
    if (!(m->label_names = calloc((size_t)n, sizeof *m->label_names))) return ft_error(FT_ERR_NOMEM, "out of memory");
    m->n_label_names = n;
    for (const cJSON *it = id2label->child; it; it = it->next) {
        char *end;
        long i = strtol(it->string, &end, 10);
        if (*end || i < 0 || i >= n || !cJSON_IsString(it) || m->label_names[i]) continue;
        if (!(m->label_names[i] = strdup(it->valuestring))) return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    return FT_OK;
}

/* ------------------------------------------------------------ checkpoint tensors */

/* the checkpoint tensor for our name: as is, without the family's model prefix (BertModel checkpoints),
 * with the old LayerNorm gamma/beta spelling, or (MLM vocabulary bias) as the decoder's tied bias */
static const ft_st_entry *find_tensor(const ft_safetensors *st, const ft__enc_family *f, const char *name) {
    const ft_st_entry *e = ft_st_find(st, name);
    const char *p = f->prefix;
    size_t pl = strlen(p), bl = strlen(f->mlm_bias);
    if (!e && !strncmp(name, p, pl)) e = ft_st_find(st, name + pl);
    if (e) return e;
    char alt[160];
    size_t n = strlen(name);
    if (n > 16 && !strcmp(name + n - 16, "LayerNorm.weight")) snprintf(alt, sizeof alt, "%.*sLayerNorm.gamma", (int)(n - 16), name);
    else if (n > 14 && !strcmp(name + n - 14, "LayerNorm.bias")) snprintf(alt, sizeof alt, "%.*sLayerNorm.beta", (int)(n - 14), name);
    else if (n == bl + 5 && !strncmp(name, f->mlm_bias, bl) && !strcmp(name + bl, ".bias")) snprintf(alt, sizeof alt, "%s.decoder.bias", f->mlm_bias);
    else return NULL;
    e = ft_st_find(st, alt);
    if (!e && !strncmp(alt, p, pl)) e = ft_st_find(st, alt + pl);
    return e;
}

static int read_param(ft_safetensors *st, const ft__enc_family *f, ft_param *p) {
    const ft_st_entry *e = find_tensor(st, f, p->name);
    if (!e) return ft_error(FT_ERR_NOT_FOUND, "checkpoint has no tensor %s", p->name);
    if (!p->qdesc) return ft_st_read_f32(st, e->name, p->t.shape, p->t.ndim, p->t.data);
    /* quantizing while loading: one f32 tensor at a time */
    float *w = malloc(sizeof(float) * (size_t)p->t.shape[0] * (size_t)p->t.shape[1]);
    if (!w) return ft_error(FT_ERR_NOMEM, "out of memory");
    int rc = ft_st_read_f32(st, e->name, p->t.shape, p->t.ndim, w);
    if (rc == FT_OK) rc = ft__linear_q_fill(p, w);
    free(w);
    return rc;
}

/* a head tensor is re-initialised when absent or shaped for another label count */
static int usable(ft_safetensors *st, const ft_encoder_model *m, int g) {
    const ft_param *p = &m->params[m->slot[g]];
    const ft_st_entry *e = find_tensor(st, m->fam, p->name);
    if (!e || e->ndim != p->t.ndim) return 0;
    for (int i = 0; i < e->ndim; i++) if (e->shape[i] != p->t.shape[i]) return 0;
    return 1;
}

static int load_head(ft_encoder_model *m, ft_safetensors *st, const char *dir, int ckpt_labels) {
    const ft__enc_head *hd = m->head;
    const char *what = hd->what;
    ft_rng r;
    ft_rng_seed(&r, 0x5EEDull + (uint64_t)m->cfg.num_labels);
    /* head groups, loaded or initialised together: weight, bias (-1: none), LayerNorm? */
    for (int k = 0; k < hd->n_groups; k++) {
        int gw = hd->groups[k][0], gb = hd->groups[k][1], ln = hd->groups[k][2];
        ft_param *w = &m->params[m->slot[gw]], *b = gb >= 0 ? &m->params[m->slot[gb]] : NULL;
        if (usable(st, m, gw) && (!b || usable(st, m, gb))) {
            FT_TRY(read_param(st, m->fam, w));
            if (b) FT_TRY(read_param(st, m->fam, b));
            continue;
        }
        const ft_st_entry *e = find_tensor(st, m->fam, w->name);
        if (e && gw == E_H2_W)
            FT_LOGW("%s: %s has %lld labels, %d asked for: re-initialising the %s head (%s, %s)", dir, w->name,
                    (long long)e->shape[0], m->cfg.num_labels, what, w->name, b->name);
        else if (ln)
            FT_LOGW("%s: checkpoint has no %s (%s head): initialising it (weight 1, bias 0); train it before use",
                    dir, w->name, what);
        else if (gw == E_MB)
            FT_LOGW("%s: checkpoint has no %s (%s head): initialising it to zeros; train it before use", dir, w->name, what);
        else if (m->task == FT_TASK_MLM)
            FT_LOGW("%s: checkpoint has no %s (%s head): initialising it (normal(0, %g), zero bias); train it before use", dir,
                    w->name, what, (double)m->cfg.initializer_range);
        else
            FT_LOGW("%s: checkpoint has no %s (%s head): initialising it randomly (normal(0, %g), zero bias); "
                    "train it before use", dir, w->name, what, (double)m->cfg.initializer_range);
        float *wd = w->t.data;
        int64_t n = ft_tensor_numel(&w->t);
        if (gw == E_MB) memset(wd, 0, ft_tensor_nbytes(&w->t));   /* the vocabulary bias starts at 0 (as HF) */
        else for (int64_t i = 0; i < n; i++) wd[i] = ln ? 1.0f : m->cfg.initializer_range * ft_rng_normal(&r);
        if (b) memset(b->t.data, 0, ft_tensor_nbytes(&b->t));
        m->head_reinit = 1;
    }
    return FT_OK;
}

/* ------------------------------------------------------------ loading */

/* the layers the checkpoint holds: 1 + the largest l of a tensor named [<prefix>]<layers>.<l>.* */
static int64_t ckpt_layers(const ft_safetensors *st, const ft__enc_family *f) {
    int64_t n = 0;
    size_t k = strlen(f->layers);
    for (int i = 0; i < ft_st_count(st); i++) {
        const char *s = strstr(ft_st_at(st, i)->name, f->layers);
        if (!s || s[k] != '.' || s[k + 1] < '0' || s[k + 1] > '9') continue;
        long long l = strtoll(s + k + 1, NULL, 10);
        if (l >= n && l < INT32_MAX) n = l + 1;
    }
    return n;
}

/* Before anything is allocated: a config.json that does not fit the weight files is refused with a message that
 * names config.json and the field. Fewer layers in the checkpoint than the config's, or word embeddings of another
 * width or vocabulary, can never load; and a config that lays out far more values than the files hold (an FFN of
 * 2^20 over one of 32) would first allocate and zero all of it (tens of GB, before the first missing tensor is
 * noticed). A small shortfall is left to the tensor-by-tensor check, whose message names the missing tensor. */
static int check_fits_weights(const ft_encoder_model *m, const ft_safetensors *st, const char *dir, const char *path) {
    const ft_encoder_config *c = &m->cfg;
    const ft__enc_config_keys *k = m->fam->keys;
    int64_t layers = ckpt_layers(st, m->fam);
    if (layers < c->n_layer)
        return ft_error(FT_ERR_SHAPE, "%s: \"%s\" is %d but the weights in %s hold %lld layers: config.json and the weights do "
                        "not belong together", path, k->layers, c->n_layer, dir, (long long)layers);
    char wte[128];
    snprintf(wte, sizeof wte, "%sembeddings.word_embeddings.weight", m->fam->prefix);
    const ft_st_entry *e = find_tensor(st, m->fam, wte);
    if (e && e->ndim == 2 && e->shape[1] != c->n_embd)
        return ft_error(FT_ERR_SHAPE, "%s: \"%s\" is %d but the word embeddings in %s are %lld wide: config.json and the weights "
                        "do not belong together", path, k->width, c->n_embd, dir, (long long)e->shape[1]);
    if (e && e->ndim == 2 && e->shape[0] != c->vocab_size)
        return ft_error(FT_ERR_SHAPE, "%s: \"vocab_size\" is %d but the word embeddings in %s hold %lld tokens: config.json and "
                        "the weights do not belong together", path, c->vocab_size, dir, (long long)e->shape[0]);
    int64_t want, have = 0;
    FT_TRY(ft__encoder_config_param_count(c, &want, path));
    for (int i = 0; i < ft_st_count(st); i++) {
        e = ft_st_at(st, i);
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];   /* checked against nbytes at open */
        have += n;
    }
    if (want > 2 * have + (1 << 24))
        return ft_error(FT_ERR_SHAPE, "%s lays out %lld parameters (\"%s\" %d, \"%s\" %d, \"%s\" %d, \"vocab_size\" %d, "
                        "\"max_position_embeddings\" %d, %d labels) but the weights in %s hold only %lld values: config.json and "
                        "the weights do not belong together", path, (long long)want, k->layers, c->n_layer, k->width, c->n_embd,
                        k->ffn, c->ffn_hidden, c->vocab_size, c->max_pos, c->num_labels, dir, (long long)have);
    return FT_OK;
}

static int resolve_options(ft_encoder_model *m, const ft_encoder_options *o, const cJSON *root, const char *path, int ckpt_labels) {
    if (o->num_labels < 0) return ft_error(FT_ERR_INVALID, "num_labels %d: must be >= 0 (0 = from config.json)", o->num_labels);
    if ((int)o->task < FT_TASK_AUTO || o->task > FT_TASK_MLM) return ft_error(FT_ERR_INVALID, "encoder task %d is not a task", (int)o->task);
    if ((int)o->pooling < FT_POOL_AUTO || o->pooling > FT_POOL_MEAN) return ft_error(FT_ERR_INVALID, "pooling %d is not a pooling", (int)o->pooling);
    m->task = o->task;
    if (m->task == FT_TASK_AUTO) FT_TRY(config_task(root, path, ckpt_labels, &m->task));
    m->head = ft__enc_head_of(m->task);
    m->pooling = o->pooling;
    if (m->pooling == FT_POOL_AUTO) FT_TRY(config_pooling(root, path, &m->pooling));
    switch (m->task) {
    case FT_TASK_REGRESS:
        if (o->num_labels > 1) return ft_error(FT_ERR_INVALID, "regression has one output: num_labels %d", o->num_labels);
        m->cfg.num_labels = 1;
        break;
    case FT_TASK_MLM:
        m->cfg.num_labels = 0;
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings")))
            return ft_error(FT_ERR_UNSUPPORTED, "%s: an MLM head with a decoder not tied to the word embeddings is not supported", path);
        break;
    default:
        if (o->num_labels > 0) m->cfg.num_labels = o->num_labels;
        if (m->cfg.num_labels <= 0) return ft_error(FT_ERR_FORMAT, "%s: %d labels: need at least 1", path, m->cfg.num_labels);
    }
    return FT_OK;
}

int ft_encoder_load_ex(ft_encoder_model **out, const char *dir, const ft_encoder_options *o, const ft_backend *be) {
    return ft_encoder_load_quantized(out, dir, o, be, FT_F32);
}

int ft_encoder_load_quantized(ft_encoder_model **out, const char *dir, const ft_encoder_options *o, const ft_backend *be, ft_dtype q) {
    *out = NULL;
    ft_encoder_options def = ft_encoder_default_options();
    if (!o) o = &def;
    if (o->num_labels < 0) return ft_error(FT_ERR_INVALID, "num_labels %d: must be >= 0 (0 = from config.json)", o->num_labels);
    ft_encoder_model *m = calloc(1, sizeof *m);
    if (!m) return ft_error(FT_ERR_NOMEM, "encoder: out of memory");
    m->ts.m = m;
    m->ts.own = 1;
    char path[4096];
    int rc = config_read(dir, &m->src_config, path, sizeof path);
    if (rc == FT_OK) rc = config_from_json(&m->cfg, &m->act, &m->fam, m->src_config, path);
    if (rc == FT_OK) rc = attn_dropout_from_json(&m->cfg.attn_dropout, m->fam, m->src_config, path);
    int ckpt_labels = m->cfg.num_labels;
    if (rc == FT_OK) rc = resolve_options(m, o, m->src_config, path, ckpt_labels);
    if (rc == FT_OK) rc = config_labels(m, m->src_config);
    m->be = be ? be : ft_backend_cpu();
    if (rc == FT_OK && q != FT_F32 && q != FT_NF4 && q != FT_Q8_ROW) rc = ft_error(FT_ERR_INVALID, "quantization must be nf4 or int8");
    ft_safetensors *st = NULL;
    if (rc == FT_OK) rc = ft_st_open(&st, dir);
    if (rc == FT_OK) rc = check_fits_weights(m, st, dir, path);
    if (rc == FT_OK) rc = ft__enc_layout(m, q);   /* a quantized weight is filled by read_param as it loads */
    for (int i = 0; rc == FT_OK && i < m->n_params; i++) {
        int head = 0;
        for (int g = E_HEAD0; g < E_COUNT; g++) head |= m->slot[g] == i;
        if (!head) rc = read_param(st, m->fam, &m->params[i]);
        if (rc < 0) rc = ft_error_wrap(rc, "%s", dir);
    }
    if (rc == FT_OK) rc = load_head(m, st, dir, ckpt_labels);
    ft_st_close(st);
    if (rc < 0) { ft_encoder_close(m); return rc; }
    *out = m;
    return FT_OK;
}

int ft_encoder_load(ft_encoder_model **out, const char *dir, int num_labels, const ft_backend *be) {
    ft_encoder_options o = {FT_TASK_CLASSIFY, num_labels, FT_POOL_AUTO};
    return ft_encoder_load_ex(out, dir, &o, be);
}

int ft_encoder_load_weights(ft_encoder_model *m, const char *dir) {
    if (m->quant != FT_F32)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: the encoder's base is quantized (QLoRA): load a LoRA adapter instead", dir);
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, dir));
    int rc = FT_OK;
    for (int i = 0; rc == FT_OK && i < m->n_params; i++) rc = read_param(st, m->fam, &m->params[i]);
    ft_st_close(st);
    return rc < 0 ? ft_error_wrap(rc, "%s", dir) : FT_OK;
}

/* ------------------------------------------------------------ saving */

/* the transformers class: the family's stem and the head's suffix (BertForSequenceClassification) */
static const char *arch_class(const ft_encoder_model *m, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s", m->fam->hf_class, m->head->hf_suffix);
    return buf;
}

static void json_set(cJSON *root, const char *key, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(root, key)) cJSON_ReplaceItemInObjectCaseSensitive(root, key, v);
    else cJSON_AddItemToObject(root, key, v);
}

static int save_config(const ft_encoder_model *m, const char *dir, const char *const *label_names) {
    cJSON *root = m->src_config ? cJSON_Duplicate(m->src_config, 1) : cJSON_CreateObject();
    if (!root) return ft_error(FT_ERR_NOMEM, "out of memory");
    char cls[64], key[32], path[4096];
    const char *name = arch_class(m, cls, sizeof cls);
    json_set(root, "architectures", cJSON_CreateStringArray(&name, 1));
    int K = m->cfg.num_labels;
    if (m->task != FT_TASK_MLM) {
        cJSON *id2label = cJSON_CreateObject(), *label2id = cJSON_CreateObject();
        for (int k = 0; k < K; k++) {
            char dflt[32];
            const char *ln = label_names && label_names[k] ? label_names[k] : ft_encoder_label_name(m, k);
            if (!ln) { snprintf(dflt, sizeof dflt, "LABEL_%d", k); ln = dflt; }
            snprintf(key, sizeof key, "%d", k);
            cJSON_AddItemToObject(id2label, key, cJSON_CreateString(ln));
            if (!cJSON_GetObjectItemCaseSensitive(label2id, ln)) cJSON_AddItemToObject(label2id, ln, cJSON_CreateNumber(k));
        }
        json_set(root, "id2label", id2label);
        json_set(root, "label2id", label2id);
        json_set(root, "num_labels", cJSON_CreateNumber(K));
    }
    if (m->head->problem_type) json_set(root, "problem_type", cJSON_CreateString(m->head->problem_type));
    else cJSON_DeleteItemFromObjectCaseSensitive(root, "problem_type");
    json_set(root, "finetune_task", cJSON_CreateString(ft_encoder_task_name(m->task)));
    if (m->head->pooled) json_set(root, "finetune_pooling", cJSON_CreateString(m->pooling == FT_POOL_MEAN ? "mean" : "cls"));
    else cJSON_DeleteItemFromObjectCaseSensitive(root, "finetune_pooling");
    int rc = ft_path_join(path, sizeof path, dir, "config.json");
    if (rc == FT_OK) rc = ft__json_write_file(root, path);
    cJSON_Delete(root);
    return rc;
}

int ft_encoder_save(const ft_encoder_model *m, const char *dir, const char *const *label_names) {
    if (m->quant != FT_F32)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: the encoder's base is quantized (QLoRA): save the LoRA adapter, not the full model", dir);
    FT_TRY(ft_mkdirs(dir));
    FT_TRY(save_config(m, dir, label_names));
    ft_st_tensor *t = calloc((size_t)m->n_params, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_params; i++) {
        const ft_param *p = &m->params[i];
        t[i].name = p->name;
        t[i].dtype = FT_F32;
        t[i].ndim = p->t.ndim;
        memcpy(t[i].shape, p->t.shape, sizeof(int64_t) * (size_t)p->t.ndim);
        t[i].data = p->t.data;
    }
    char path[4096];
    static const char *meta[] = {"format", "pt"};
    int rc = ft_path_join(path, sizeof path, dir, "model.safetensors");
    if (rc == FT_OK) rc = ft_st_write(path, t, m->n_params, meta, 1);
    free(t);
    return rc;
}

/* ------------------------------------------------------------ freezing */

/* 1 if parameter i matches pat, 0 if not, -1 for a malformed layer range */
static int pattern_matches(const void *model, int i, const char *pat) {
    const ft_encoder_model *m = model;
    int layer = -1, slot = -1, a, b;
    for (int g = 0; g < E_COUNT; g++) if (m->slot[g] == i) slot = g;
    if (slot < 0)
        for (int k = 0; k < m->cfg.n_layer * S_COUNT; k++) if (m->lslot[k] == i) { layer = k / S_COUNT; break; }
    if (!strcmp(pat, "embeddings")) return slot >= 0 && slot < E_HEAD0;
    /* as ft_model_freeze: "head" holds the tied word embeddings too (they are the MLM head's projection) */
    if (!strcmp(pat, "head")) return slot >= E_HEAD0 || (slot == E_WTE && m->task == FT_TASK_MLM);
    int lr = ft__pattern_layers(pat, &a, &b);
    if (lr) return lr < 0 ? -1 : layer >= a && layer <= b;
    return fnmatch(pat, m->params[i].name, 0) == 0;
}

static int apply_patterns(ft_encoder_model *m, const char *patterns, int freeze_matching) {
    if (m->ts.grads_ready) return ft_error(FT_ERR_INVALID, "freeze parameters before gradients are allocated");
    return ft__params_apply_patterns(m->params, m->n_params, patterns, freeze_matching, pattern_matches, m, "embeddings, head");
}

int ft_encoder_freeze(ft_encoder_model *m, const char *patterns) { return apply_patterns(m, patterns, 1); }
int ft_encoder_train_only(ft_encoder_model *m, const char *patterns) { return apply_patterns(m, patterns, 0); }

int64_t ft_encoder_trainable_count(const ft_encoder_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) if (m->params[i].trainable) n += ft_tensor_numel(&m->params[i].t);
    return n;
}
