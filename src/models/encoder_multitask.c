/* encoder_multitask.c — one encoder body, one classification head per task (multitask.h).
 *
 * Every task t owns the four tensors of a sequence-classification head, H1 dense [C,C] + [C] and H2 label
 * projection [K_t,C] + [K_t], with their gradients, in heads[t]. Selecting task t points the encoder's head
 * entries of its parameter table (m->params[slot[E_H1_W..E_H2_B]]) at heads[t] (data, gradient, shape),
 * sets cfg.num_labels = K_t and the label names, and asks for a new activation layout when K changes (the
 * logits are [B, K]). The body's tensors stay where they are, so their gradients add up over the tasks of
 * a step. */
#include "models/encoder_internal.h"
#include "core/json_util.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/multitask.h"
#include "finetune/rng.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int k_head_slots[4] = {E_H1_W, E_H1_B, E_H2_W, E_H2_B};

typedef struct mt_head {
    char name[64];
    int K;
    char **labels;                 /* [K] */
    ft_param p[4];                 /* H1_W [C,C], H1_B [C], H2_W [K,C], H2_B [K]; p[j].name "<task>/<HF name>" */
    float *data[4], *grad[4];      /* owned */
} mt_head;

struct ft_multitask {
    ft_encoder_model *m;
    int n, cur;
    mt_head heads[FT_MULTITASK_MAX];
    char **m_labels;               /* the encoder's own label names, restored before it closes */
    int m_n_labels;
    ft_param *table;               /* [n_body + 4 n] for the optimizer (ft_multitask_params) */
    int n_table;
};

/* ------------------------------------------------------------ create / close */

static int valid_name(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

void ft_multitask_close(ft_multitask *mt) {
    if (!mt) return;
    if (mt->m) {
        mt->m->label_names = mt->m_labels;
        mt->m->n_label_names = mt->m_n_labels;
        ft_encoder_close(mt->m);
    }
    for (int t = 0; t < mt->n; t++) {
        mt_head *h = &mt->heads[t];
        for (int j = 0; j < 4; j++) { free(h->data[j]); free(h->grad[j]); }
        for (int k = 0; h->labels && k < h->K; k++) free(h->labels[k]);
        free(h->labels);
    }
    free(mt->table);
    free(mt);
}

/* head t's tensors: shapes and names from the encoder's entries, K_t rows for the label projection */
static int head_alloc(ft_multitask *mt, int t, const char *name, int K, const char *const *labels) {
    ft_encoder_model *m = mt->m;
    mt_head *h = &mt->heads[t];
    snprintf(h->name, sizeof h->name, "%s", name);
    h->K = K;
    if (!(h->labels = calloc((size_t)K, sizeof *h->labels))) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) {
        char dflt[32];
        const char *ln = labels && labels[k] ? labels[k] : NULL;
        if (!ln) { snprintf(dflt, sizeof dflt, "LABEL_%d", k); ln = dflt; }
        if (!(h->labels[k] = strdup(ln))) return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    for (int j = 0; j < 4; j++) {
        const ft_param *src = &m->params[m->slot[k_head_slots[j]]];
        ft_param *p = &h->p[j];
        *p = *src;
        if ((size_t)snprintf(p->name, sizeof p->name, "%s/%s", name, src->name) >= sizeof p->name)
            return ft_error(FT_ERR_RANGE, "task name '%s' + tensor %s: longer than %zu characters", name, src->name, sizeof p->name - 1);
        if (j >= 2) p->t.shape[0] = K;
        size_t bytes = ft_tensor_nbytes(&p->t);
        if (!(h->data[j] = calloc(1, bytes))) return ft_error(FT_ERR_NOMEM, "out of memory");
        if (p->trainable && !(h->grad[j] = calloc(1, bytes))) return ft_error(FT_ERR_NOMEM, "out of memory");
        p->t.data = h->data[j];
        p->grad = h->grad[j];
    }
    return FT_OK;
}

int ft_multitask_create(ft_multitask **out, ft_encoder_model *m, int n_tasks, const char *const *names, const int *num_labels,
                        const char *const *const *label_names, uint64_t seed) {
    *out = NULL;
    if (!m) return ft_error(FT_ERR_INVALID, "multi-task: no encoder");
    int rc = FT_OK;
    if (m->task != FT_TASK_CLASSIFY) rc = ft_error(FT_ERR_INVALID, "multi-task heads need a classify encoder (this one is %s)", ft_encoder_task_name(m->task));
    else if (n_tasks < 1 || n_tasks > FT_MULTITASK_MAX) rc = ft_error(FT_ERR_INVALID, "multi-task: %d tasks (1 to %d)", n_tasks, FT_MULTITASK_MAX);
    else if (m->quant != FT_F32 || ft_encoder_lora_count(m)) rc = ft_error(FT_ERR_UNSUPPORTED, "multi-task heads need a full-precision encoder without LoRA adapters");
    else if (num_labels[0] != m->cfg.num_labels)
        rc = ft_error(FT_ERR_INVALID, "multi-task: the encoder has %d labels, task %s %d", m->cfg.num_labels, names[0], num_labels[0]);
    for (int t = 0; rc == FT_OK && t < n_tasks; t++) {
        if (!valid_name(names[t])) rc = ft_error(FT_ERR_INVALID, "task name '%s': use 1 to 63 letters, digits, '_' or '-'", names[t] ? names[t] : "");
        else if (num_labels[t] < 2) rc = ft_error(FT_ERR_INVALID, "task %s: %d labels (at least 2)", names[t], num_labels[t]);
        for (int u = 0; rc == FT_OK && u < t; u++)
            if (!strcmp(names[t], names[u])) rc = ft_error(FT_ERR_INVALID, "task %s is named twice", names[t]);
    }
    ft_multitask *mt = rc == FT_OK ? calloc(1, sizeof *mt) : NULL;
    if (rc == FT_OK && !mt) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc < 0) { ft_encoder_close(m); return rc; }
    mt->m = m;
    mt->m_labels = m->label_names;
    mt->m_n_labels = m->n_label_names;
    mt->cur = -1;
    /* the body's gradients first: their pointers are final before any head is swapped in */
    rc = ft_encoder_zero_grad(m);
    for (int t = 0; rc == FT_OK && t < n_tasks; t++, mt->n++) rc = head_alloc(mt, t, names[t], num_labels[t], label_names ? label_names[t] : NULL);
    if (rc == FT_OK) {
        const float *w1 = enc_gp(&m->ts, E_H1_W), *b1 = enc_gp(&m->ts, E_H1_B);
        size_t C = (size_t)m->cfg.n_embd;
        ft_rng r;
        for (int t = 0; t < n_tasks; t++) {
            mt_head *h = &mt->heads[t];
            memcpy(h->data[0], w1, sizeof(float) * C * C);
            memcpy(h->data[1], b1, sizeof(float) * C);
            if (t == 0) {   /* the encoder's own label projection */
                memcpy(h->data[2], enc_gp(&m->ts, E_H2_W), sizeof(float) * (size_t)h->K * C);
                memcpy(h->data[3], enc_gp(&m->ts, E_H2_B), sizeof(float) * (size_t)h->K);
                continue;
            }
            ft_rng_seed(&r, seed ^ (0x4D54ull + 0x9E3779B97F4A7C15ull * (uint64_t)t));
            for (size_t i = 0; i < (size_t)h->K * C; i++) h->data[2][i] = m->cfg.initializer_range * ft_rng_normal(&r);
        }
    }
    if (rc == FT_OK) rc = ft_multitask_select(mt, 0);
    if (rc < 0) { ft_multitask_close(mt); return rc; }
    *out = mt;
    return FT_OK;
}

/* ------------------------------------------------------------ selecting a head */

int ft_multitask_select(ft_multitask *mt, int t) {
    if (t < 0 || t >= mt->n) return ft_error(FT_ERR_RANGE, "task %d of %d", t, mt->n);
    if (t == mt->cur) return FT_OK;
    ft_encoder_model *m = mt->m;
    mt_head *h = &mt->heads[t];
    for (int j = 0; j < 4; j++) {
        ft_param *e = &m->params[m->slot[k_head_slots[j]]];
        e->t.data = h->p[j].t.data;
        e->t.shape[0] = h->p[j].t.shape[0];
        e->grad = h->p[j].grad;
    }
    if (m->cfg.num_labels != h->K) {
        m->cfg.num_labels = h->K;
        m->ts.a.B = 0;   /* the logits are [B, K]: lay the activations out again at the next forward */
    }
    m->label_names = h->labels;
    m->n_label_names = h->K;
    mt->cur = t;
    return FT_OK;
}

int ft_multitask_selected(const ft_multitask *mt) { return mt->cur; }
ft_encoder_model *ft_multitask_encoder(ft_multitask *mt) { return mt->m; }
int ft_multitask_count(const ft_multitask *mt) { return mt->n; }
const char *ft_multitask_name(const ft_multitask *mt, int t) { return t >= 0 && t < mt->n ? mt->heads[t].name : NULL; }
int ft_multitask_num_labels(const ft_multitask *mt, int t) { return t >= 0 && t < mt->n ? mt->heads[t].K : 0; }
const char *ft_multitask_label_name(const ft_multitask *mt, int t, int k) {
    return t >= 0 && t < mt->n && k >= 0 && k < mt->heads[t].K ? mt->heads[t].labels[k] : NULL;
}
int ft_multitask_find(const ft_multitask *mt, const char *name) {
    for (int t = 0; name && t < mt->n; t++) if (!strcmp(mt->heads[t].name, name)) return t;
    return -1;
}

int ft_multitask_zero_grad(ft_multitask *mt) {
    FT_TRY(ft_encoder_zero_grad(mt->m));
    for (int t = 0; t < mt->n; t++)
        for (int j = 0; j < 4; j++)
            if (mt->heads[t].grad[j]) memset(mt->heads[t].grad[j], 0, ft_tensor_nbytes(&mt->heads[t].p[j].t));
    return FT_OK;
}

int ft_multitask_params(ft_multitask *mt, ft_param **params, int *n) {
    ft_encoder_model *m = mt->m;
    if (!mt->table) {
        if (!m->ts.grads_ready) FT_TRY(ft_encoder_zero_grad(m));
        mt->table = calloc((size_t)m->n_params + 4 * (size_t)mt->n, sizeof *mt->table);
        if (!mt->table) return ft_error(FT_ERR_NOMEM, "out of memory");
        int k = 0;
        for (int i = 0; i < m->n_params; i++) {
            int head = 0;
            for (int j = 0; j < 4; j++) head |= m->slot[k_head_slots[j]] == i;
            if (!head) mt->table[k++] = m->params[i];
        }
        for (int t = 0; t < mt->n; t++)
            for (int j = 0; j < 4; j++) mt->table[k++] = mt->heads[t].p[j];
        mt->n_table = k;
    }
    *params = mt->table;
    *n = mt->n_table;
    return FT_OK;
}

/* ------------------------------------------------------------ saving and loading */

static int heads_path(const char *dir, char *buf, size_t cap) { return ft_path_join(buf, cap, dir, "heads.safetensors"); }

/* config.json gets "finetune_tasks": [{"name", "num_labels", "labels"}] */
static int add_tasks_to_config(const ft_multitask *mt, const char *dir) {
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "config.json"));
    cJSON *root;
    FT_TRY(ft__json_parse_file(&root, path));
    cJSON *arr = cJSON_CreateArray();
    for (int t = 0; t < mt->n; t++) {
        const mt_head *h = &mt->heads[t];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", h->name);
        cJSON_AddNumberToObject(o, "num_labels", h->K);
        cJSON_AddItemToObject(o, "labels", cJSON_CreateStringArray((const char *const *)h->labels, h->K));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "finetune_tasks");
    cJSON_AddItemToObject(root, "finetune_tasks", arr);
    int rc = ft__json_write_file(root, path);
    cJSON_Delete(root);
    return rc;
}

int ft_multitask_save(ft_multitask *mt, const char *dir) {
    int keep = mt->cur;
    FT_TRY(ft_multitask_select(mt, 0));
    int rc = ft_encoder_save(mt->m, dir, (const char *const *)mt->heads[0].labels);
    if (rc == FT_OK) rc = add_tasks_to_config(mt, dir);
    ft_st_tensor *ts = calloc(4 * (size_t)mt->n, sizeof *ts);
    if (rc == FT_OK && !ts) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    for (int t = 0; rc == FT_OK && t < mt->n; t++)
        for (int j = 0; j < 4; j++) {
            const ft_param *p = &mt->heads[t].p[j];
            ft_st_tensor *x = &ts[4 * t + j];
            x->name = p->name;
            x->dtype = FT_F32;
            x->ndim = p->t.ndim;
            memcpy(x->shape, p->t.shape, sizeof(int64_t) * (size_t)p->t.ndim);
            x->data = p->t.data;
        }
    char path[4096];
    static const char *meta[] = {"format", "finetune-multitask-heads"};
    if (rc == FT_OK) rc = heads_path(dir, path, sizeof path);
    if (rc == FT_OK) rc = ft_st_write(path, ts, 4 * mt->n, meta, 1);
    free(ts);
    ft_multitask_select(mt, keep);
    return rc;
}

static int read_heads(ft_multitask *mt, const char *dir) {
    char path[4096];
    FT_TRY(heads_path(dir, path, sizeof path));
    ft_safetensors *st;
    FT_TRY(ft_st_open(&st, path));
    int rc = FT_OK;
    for (int t = 0; rc == FT_OK && t < mt->n; t++)
        for (int j = 0; rc == FT_OK && j < 4; j++) {
            ft_param *p = &mt->heads[t].p[j];
            rc = ft_st_read_f32(st, p->name, p->t.shape, p->t.ndim, p->t.data);
        }
    ft_st_close(st);
    return rc;
}

int ft_multitask_load_weights(ft_multitask *mt, const char *dir) {
    int keep = mt->cur;
    FT_TRY(ft_multitask_select(mt, 0));
    int rc = ft_encoder_load_weights(mt->m, dir);   /* the body, and task 0's head into its own tensors */
    if (rc == FT_OK) rc = read_heads(mt, dir);
    ft_multitask_select(mt, keep);
    return rc;
}

int ft_multitask_dir_is_multitask(const char *dir) {
    char path[4096];
    cJSON *root = NULL;
    if (ft_path_join(path, sizeof path, dir, "config.json") < 0 || !ft_path_exists(path) || ft__json_parse_file(&root, path) < 0) {
        ft_error_clear();
        return 0;
    }
    int yes = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "finetune_tasks"));
    cJSON_Delete(root);
    return yes;
}

int ft_multitask_load(ft_multitask **out, const char *dir, const ft_backend *be) {
    *out = NULL;
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, dir, "config.json"));
    cJSON *root;
    FT_TRY(ft__json_parse_file(&root, path));
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "finetune_tasks");
    int n = cJSON_GetArraySize(arr), rc = FT_OK;
    if (!cJSON_IsArray(arr) || n < 1 || n > FT_MULTITASK_MAX)
        rc = ft_error(FT_ERR_FORMAT, "%s: \"finetune_tasks\" must list 1 to %d tasks", path, FT_MULTITASK_MAX);
    const char *names[FT_MULTITASK_MAX];
    int K[FT_MULTITASK_MAX];
    const char **labels[FT_MULTITASK_MAX] = {0};
    for (int t = 0; rc == FT_OK && t < n; t++) {
        const cJSON *o = cJSON_GetArrayItem(arr, t), *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(o, "labels");
        names[t] = cJSON_IsString(nm) ? nm->valuestring : NULL;
        K[t] = cJSON_GetArraySize(lb);
        if (!names[t] || !cJSON_IsArray(lb) || K[t] != ft__json_int(o, "num_labels", -1)) {
            rc = ft_error(FT_ERR_FORMAT, "%s: finetune_tasks[%d] needs \"name\", \"num_labels\" and that many \"labels\"", path, t);
            break;
        }
        if (!(labels[t] = calloc((size_t)K[t] + 1, sizeof **labels))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        for (int k = 0; k < K[t]; k++) {
            const cJSON *s = cJSON_GetArrayItem(lb, k);
            labels[t][k] = cJSON_IsString(s) ? s->valuestring : NULL;
        }
    }
    ft_encoder_model *m = NULL;
    if (rc == FT_OK) {
        ft_encoder_options eo = {FT_TASK_CLASSIFY, K[0], FT_POOL_AUTO};
        rc = ft_encoder_load_ex(&m, dir, &eo, be);
    }
    ft_multitask *mt = NULL;
    if (rc == FT_OK) rc = ft_multitask_create(&mt, m, n, names, K, (const char *const *const *)labels, 0);
    if (rc == FT_OK) rc = read_heads(mt, dir);
    for (int t = 0; t < n && t < FT_MULTITASK_MAX; t++) free(labels[t]);
    cJSON_Delete(root);
    if (rc < 0) { ft_multitask_close(mt); return ft_error_wrap(rc, "%s", dir); }
    *out = mt;
    return FT_OK;
}

/* ------------------------------------------------------------ prediction */

int ft_multitask_predict_json(ft_multitask *mt, const ft_tokenizer *tok, const char *text, const char *pair,
                              const ft_predict_options *o, char **json) {
    *json = NULL;
    int keep = mt->cur, rc = FT_OK;
    cJSON *root = cJSON_CreateObject(), *tasks = cJSON_AddObjectToObject(root, "tasks");
    for (int t = 0; rc == FT_OK && t < mt->n; t++) {
        ft_prediction p;
        rc = ft_multitask_select(mt, t);
        if (rc == FT_OK) rc = ft_encoder_predict(&p, mt->m, tok, text, pair, o);
        if (rc < 0) break;
        char *one = NULL;
        rc = ft_prediction_json(&p, &one);
        ft_prediction_free(&p);
        cJSON *j = one ? cJSON_Parse(one) : NULL;
        free(one);
        if (rc == FT_OK && !j) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) cJSON_AddItemToObject(tasks, mt->heads[t].name, j);
    }
    ft_multitask_select(mt, keep);
    if (rc == FT_OK && !(*json = cJSON_PrintUnformatted(root))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    cJSON_Delete(root);
    return rc;
}
