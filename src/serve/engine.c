/* engine.c — the serving engine's registry and life cycle (serve.h): models loaded once with their
 * tokenizer, chat template and thread (a scheduler for a generator, a worker for an encoder); LoRA adapters
 * over them, loaded and unloaded at run time and reference counted; drain and free; list / find; stats. */
#include "serve/engine_internal.h"
#include "finetune/multitask.h"
#include "core/json_util.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/status.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

ft_engine_params ft_engine_default_params(void) {
    ft_engine_params p;
    memset(&p, 0, sizeof p);
    p.be = NULL;
    p.quant = FT_F32;
    p.n_slots = 8;
    p.slot_tokens = 0;
    p.prefill_chunk = 64;
    p.max_queue = 64;
    p.max_batch_texts = 32;
    p.max_lora_rank = 64;
    return p;
}

void ft__eng_thread_setup(const ft_engine *e) {
    if (e->threads > 0) omp_set_num_threads(e->threads);
}

int ft_engine_create(ft_engine **out, const ft_engine_params *p) {
    *out = NULL;
    ft_engine_params d = ft_engine_default_params(), q = p ? *p : d;
    if (!q.be) q.be = ft_backend_cpu();
    if (q.n_slots <= 0 || q.n_slots > 256) return ft_error(FT_ERR_INVALID, "engine: n_slots %d outside [1, 256]", q.n_slots);
    if (q.prefill_chunk <= 0) q.prefill_chunk = d.prefill_chunk;
    if (q.max_queue < 0) return ft_error(FT_ERR_INVALID, "engine: max_queue %d is negative", q.max_queue);
    if (q.max_batch_texts <= 0) q.max_batch_texts = d.max_batch_texts;
    if (q.max_lora_rank <= 0) q.max_lora_rank = d.max_lora_rank;
    if (q.slot_tokens < 0) return ft_error(FT_ERR_INVALID, "engine: slot_tokens %d is negative", q.slot_tokens);
    if (q.quant != FT_F32 && q.quant != FT_Q8_ROW && q.quant != FT_NF4 && q.quant != FT_BF16)
        return ft_error(FT_ERR_INVALID, "engine: quant must be FT_F32, FT_Q8_ROW, FT_NF4 or FT_BF16");
    ft_engine *e = calloc(1, sizeof *e);
    if (!e) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    e->p = q;
    e->threads = ft_get_threads();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->idle, NULL);
    atomic_init(&e->next_id, 1);
    *out = e;
    return FT_OK;
}

/* ------------------------------------------------------------------ registry */

static ft__eng_entry *find_locked(ft_engine *e, const char *name) {
    for (ft__eng_entry *t = e->entries; t; t = t->next)
        if (t->listed && strcmp(t->name, name) == 0) return t;
    return NULL;
}

static int check_name(const char *name) {
    if (!name || !*name) return ft_error(FT_ERR_INVALID, "engine: a model or adapter needs a name");
    if (strlen(name) >= sizeof ((ft__eng_entry *)0)->name) return ft_error(FT_ERR_INVALID, "engine: the name '%.40s...' is too long", name);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '/')
            return ft_error(FT_ERR_INVALID, "engine: the name '%s' holds a control character or '/'", name);
    return FT_OK;
}

ft__eng_entry *ft__eng_acquire(ft_engine *e, const char *name, int count_in_flight, int *rc) {
    *rc = FT_OK;
    pthread_mutex_lock(&e->mu);
    ft__eng_entry *t = name ? find_locked(e, name) : NULL;
    if (!t) *rc = ft_error(FT_ERR_NOT_FOUND, "no model or adapter named '%s'", name ? name : "(null)");
    else if (count_in_flight && e->draining) { *rc = ft_error(FT_ERR_BUSY, "the engine is draining: no new requests"); t = NULL; }
    else {
        t->refs++;
        if (count_in_flight) e->in_flight++;
    }
    pthread_mutex_unlock(&e->mu);
    return t;
}

static void entry_free(ft__eng_entry *t) {
    if (!t) return;
    ft_adapter_free(t->ad);
    for (int i = 0; i < t->n_labels; i++) free(t->labels[i]);
    free(t->labels);
    ft_model_free(t->m);
    if (t->mt) ft_multitask_close(t->mt);   /* closes its encoder t->em */
    else ft_encoder_close(t->em);
    ft_tokenizer_free(t->tok);
    ft_chat_template_free(t->tmpl);
    free(t);
}

/* unlinks t from the list (the caller holds mu) */
static void unlink_locked(ft_engine *e, ft__eng_entry *t) {
    for (ft__eng_entry **pp = &e->entries; *pp; pp = &(*pp)->next)
        if (*pp == t) { *pp = t->next; return; }
}

void ft__eng_release(ft_engine *e, ft__eng_entry *t, int count_in_flight) {
    if (!t) return;
    pthread_mutex_lock(&e->mu);
    int gone = --t->refs == 0 && t->is_adapter && !t->listed;
    if (count_in_flight && --e->in_flight == 0) pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->mu);
    if (gone) entry_free(t);   /* no request and no registry points to it any more */
}

/* adds t to the registry under its name (FT_ERR_INVALID when taken); models before adapters in the list */
static int insert(ft_engine *e, ft__eng_entry *t) {
    pthread_mutex_lock(&e->mu);
    int rc = FT_OK;
    if (find_locked(e, t->name)) rc = ft_error(FT_ERR_INVALID, "engine: the name '%s' is already loaded", t->name);
    else if (e->draining) rc = ft_error(FT_ERR_BUSY, "engine: draining");
    else {
        ft__eng_entry **pp = &e->entries;
        while (*pp) pp = &(*pp)->next;
        *pp = t;
        t->listed = 1;
        t->refs = 1;
        t->created = (int64_t)time(NULL);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static int is_adapter_dir(const char *dir) {
    char path[PATH_MAX];
    return ft_path_join(path, sizeof path, dir, "adapter_config.json") == FT_OK && ft_path_exists(path);
}

/* sentence-transformers' max_seq_length (sentence_bert_config.json), 0 when absent */
static int sbert_max_len(const char *dir) {
    char path[PATH_MAX];
    if (ft_path_join(path, sizeof path, dir, "sentence_bert_config.json") != FT_OK || !ft_path_exists(path)) return 0;
    cJSON *j = NULL;
    if (ft__json_parse_file(&j, path) != FT_OK) { ft_error_clear(); return 0; }
    int n = ft__json_int(j, "max_seq_length", 0);
    cJSON_Delete(j);
    return n > 0 ? n : 0;
}

static int load_generator(ft_engine *e, ft__eng_entry *t, const char *dir) {
    FT_TRY(ft_model_load_quantized(&t->m, dir, e->p.be, e->p.quant));
    FT_TRY(ft_tokenizer_load(&t->tok, dir));
    int rc = ft_chat_template_load(&t->tmpl, dir);
    if (rc == FT_ERR_NOT_FOUND && e->p.chat_template) {
        /* the engine's fallback, as `finetune generate --chat-template NAME` (the family's BOS / EOS) */
        rc = ft_chat_template_builtin(&t->tmpl, e->p.chat_template, NULL, NULL);
        if (rc < 0) return ft_error_wrap(rc, "engine: chat_template '%s'", e->p.chat_template);
    } else if (rc == FT_ERR_NOT_FOUND) ft_error_clear();
    else if (rc < 0) FT_LOGW("%s: the chat template does not load (%s): chat requests to '%s' are refused", dir, ft_last_error(), t->name);
    t->kind = FT_ENGINE_GENERATOR;
    return ft__gen_sched_start(e, t);
}

static int load_encoder(ft_engine *e, ft__eng_entry *t, const char *dir) {
    ft_encoder_options o = ft_encoder_default_options();
    if (ft_multitask_dir_is_multitask(dir)) {   /* one body, a head per task */
        if (e->p.quant != FT_F32 && e->p.quant != FT_BF16)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: a multi-task model is served in f32 (no quantization)", dir);
        FT_TRY(ft_multitask_load(&t->mt, dir, e->p.be));
        t->em = ft_multitask_encoder(t->mt);
    } else {
        /* bf16 weights are the generators' (--precision bf16); encoders then stay f32 */
        FT_TRY(ft_encoder_load_quantized(&t->em, dir, &o, e->p.be, e->p.quant == FT_BF16 ? FT_F32 : e->p.quant));
    }
    FT_TRY(ft_tokenizer_load(&t->tok, dir));
    t->max_len = sbert_max_len(dir);
    t->kind = FT_ENGINE_ENCODER;
    return ft__enc_worker_start(e, t);
}

/* stops an entry's thread and frees it (not in the registry) */
static void entry_stop_free(ft__eng_entry *t) {
    if (t->gen) ft__gen_sched_stop(t->gen);
    if (t->enc) ft__enc_worker_stop(t->enc);
    entry_free(t);
}

int ft_engine_load_model(ft_engine *e, const char *name, const char *dir) {
    FT_TRY(check_name(name));
    if (!dir) return ft_error(FT_ERR_INVALID, "engine: no directory for model '%s'", name);
    if (is_adapter_dir(dir))
        return ft_error(FT_ERR_INVALID, "%s is a PEFT adapter directory: load its base as a model and the adapter with "
                        "ft_engine_load_adapter (finetune serve --adapter NAME=DIR)", dir);
    ft__eng_entry *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    pthread_mutex_lock(&e->mu);
    int taken = find_locked(e, name) != NULL;
    pthread_mutex_unlock(&e->mu);
    int rc = taken ? ft_error(FT_ERR_INVALID, "engine: the name '%s' is already loaded", name) : FT_OK;
    ft_encoder_config ec;
    if (rc == FT_OK) {
        if (ft_encoder_config_load(&ec, dir) == FT_OK) rc = load_encoder(e, t, dir);
        else { ft_error_clear(); rc = load_generator(e, t, dir); }
    }
    if (rc == FT_OK) rc = insert(e, t);
    if (rc < 0) entry_stop_free(t);
    return rc;
}

/* ------------------------------------------------------------------ adapters */

typedef struct adapter_cfg {
    char base[PATH_MAX];        /* base_model_name_or_path ("" if none) */
    char task[32];              /* finetune_task ("" if none) */
    char pooling[8];            /* finetune_pooling ("" if none) */
    char **labels;              /* finetune_labels */
    int  n_labels;
} adapter_cfg;

static void adapter_cfg_free(adapter_cfg *c) {
    for (int i = 0; i < c->n_labels; i++) free(c->labels[i]);
    free(c->labels);
    memset(c, 0, sizeof *c);
}

static int adapter_cfg_read(adapter_cfg *c, const char *dir) {
    memset(c, 0, sizeof *c);
    char path[PATH_MAX];
    cJSON *j = NULL;
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_config.json"));
    FT_TRY(ft__json_parse_file(&j, path));
    snprintf(c->base, sizeof c->base, "%s", ft__json_str(j, "base_model_name_or_path", ""));
    snprintf(c->task, sizeof c->task, "%s", ft__json_str(j, "finetune_task", ""));
    snprintf(c->pooling, sizeof c->pooling, "%s", ft__json_str(j, "finetune_pooling", ""));
    const cJSON *lb = cJSON_GetObjectItem(j, "finetune_labels");
    int rc = FT_OK;
    if (cJSON_IsArray(lb) && cJSON_GetArraySize(lb) > 0) {
        int n = cJSON_GetArraySize(lb);
        if (!(c->labels = calloc((size_t)n, sizeof *c->labels))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (const cJSON *it = lb->child; rc == FT_OK && it; it = it->next) {
            if (!(c->labels[c->n_labels++] = strdup(cJSON_IsString(it) ? it->valuestring : "")))
                rc = ft_error(FT_ERR_NOMEM, "out of memory");
        }
    }
    cJSON_Delete(j);
    if (rc < 0) adapter_cfg_free(c);
    return rc;
}

/* the adapter in dir over model t (its shape checked) */
static int adapter_over(ft_engine *e, ft__eng_entry *t, const char *dir, ft_adapter **out) {
    int rc = t->kind == FT_ENGINE_GENERATOR ? ft_adapter_load(out, t->m, dir) : ft_encoder_adapter_load(out, t->em, dir);
    if (rc == FT_OK && ft_adapter_rank(*out) > e->p.max_lora_rank) {
        rc = ft_error(FT_ERR_INVALID, "%s: LoRA rank %d is above the engine's max_lora_rank %d", dir, ft_adapter_rank(*out), e->p.max_lora_rank);
        ft_adapter_free(*out);
        *out = NULL;
    }
    return rc;
}

static int same_dir(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* the models an adapter could go over when no base is named: the one whose directory is the adapter's
 * base_model_name_or_path, else the only one it fits */
static int guess_base(ft_engine *e, const char *dir, const adapter_cfg *ac, ft__eng_entry **base, ft_adapter **ad) {
    ft__eng_entry *cand[64];
    int n = 0;
    pthread_mutex_lock(&e->mu);
    for (ft__eng_entry *t = e->entries; t && n < 64; t = t->next)
        if (t->listed && !t->is_adapter) cand[n++] = t;   /* models stay until ft_engine_free */
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; ac->base[0] && i < n; i++)
        if (same_dir(cand[i]->dir, ac->base)) { *base = cand[i]; return adapter_over(e, cand[i], dir, ad); }
    int fits = 0, rc = ft_error(FT_ERR_NOT_FOUND, "%s: no loaded model for this adapter", dir);
    for (int i = 0; i < n; i++) {
        ft_adapter *a = NULL;
        int r = adapter_over(e, cand[i], dir, &a);
        if (r < 0) { if (fits == 0) rc = r; continue; }
        if (fits++ == 0) { *base = cand[i]; *ad = a; rc = FT_OK; }
        else {
            ft_adapter_free(a);
            ft_adapter_free(*ad);
            *ad = NULL;
            return ft_error(FT_ERR_INVALID, "%s fits several loaded models ('%s', '%s'): name its base", dir, (*base)->name, cand[i]->name);
        }
    }
    return rc;
}

int ft_engine_load_adapter(ft_engine *e, const char *name, const char *base, const char *dir) {
    FT_TRY(check_name(name));
    if (!dir) return ft_error(FT_ERR_INVALID, "engine: no directory for adapter '%s'", name);
    if (!is_adapter_dir(dir)) return ft_error(FT_ERR_NOT_FOUND, "%s/adapter_config.json not found: not a PEFT adapter directory", dir);
    adapter_cfg ac;
    FT_TRY(adapter_cfg_read(&ac, dir));
    ft__eng_entry *b = NULL;
    ft_adapter *ad = NULL;
    int rc = FT_OK;
    if (base) {
        b = ft__eng_acquire(e, base, 0, &rc);
        if (b && b->is_adapter) rc = ft_error(FT_ERR_INVALID, "'%s' is an adapter: an adapter goes over a model", base);
        if (rc == FT_OK) rc = adapter_over(e, b, dir, &ad);
        ft__eng_release(e, b, 0);   /* models are never unloaded: the pointer stays valid */
    } else rc = guess_base(e, dir, &ac, &b, &ad);
    if (rc == FT_OK && b->kind == FT_ENGINE_ENCODER) {
        if (ac.task[0] && strcmp(ac.task, ft_encoder_task_name(ft_encoder_get_task(b->em))))
            rc = ft_error(FT_ERR_INVALID, "%s was trained for %s, model '%s' is %s", dir, ac.task, b->name,
                          ft_encoder_task_name(ft_encoder_get_task(b->em)));
        else if (ac.pooling[0] && (ft_encoder_get_task(b->em) == FT_TASK_CLASSIFY || ft_encoder_get_task(b->em) == FT_TASK_REGRESS) &&
                 strcmp(ac.pooling, ft_encoder_get_pooling(b->em) == FT_POOL_MEAN ? "mean" : "cls"))
            rc = ft_error(FT_ERR_INVALID, "%s was trained with %s pooling, model '%s' pools %s", dir, ac.pooling, b->name,
                          ft_encoder_get_pooling(b->em) == FT_POOL_MEAN ? "mean" : "cls");
    }
    ft__eng_entry *t = rc == FT_OK ? calloc(1, sizeof *t) : NULL;
    if (rc == FT_OK && !t) rc = ft_error(FT_ERR_NOMEM, "engine: out of memory");
    if (rc == FT_OK && t) {
        snprintf(t->name, sizeof t->name, "%s", name);
        snprintf(t->dir, sizeof t->dir, "%s", dir);
        t->is_adapter = 1;
        t->kind = b->kind;
        t->base = b;
        t->ad = ad;
        ad = NULL;
        if (b->kind == FT_ENGINE_ENCODER && ac.n_labels == ft_encoder_get_config(b->em)->num_labels) {
            t->labels = ac.labels;
            t->n_labels = ac.n_labels;
            ac.labels = NULL;
            ac.n_labels = 0;
        }
        rc = insert(e, t);
        if (rc < 0) entry_free(t);
    }
    ft_adapter_free(ad);
    adapter_cfg_free(&ac);
    return rc;
}

int ft_engine_unload_adapter(ft_engine *e, const char *name) {
    if (!name) return ft_error(FT_ERR_INVALID, "engine: no adapter name");
    pthread_mutex_lock(&e->mu);
    ft__eng_entry *t = find_locked(e, name);
    int rc = FT_OK, gone = 0;
    if (!t) rc = ft_error(FT_ERR_NOT_FOUND, "no adapter named '%s'", name);
    else if (!t->is_adapter) rc = ft_error(FT_ERR_INVALID, "'%s' is a model, not an adapter (models stay loaded)", name);
    else {
        t->listed = 0;
        unlink_locked(e, t);
        gone = --t->refs == 0;
    }
    pthread_mutex_unlock(&e->mu);
    if (gone) entry_free(t);   /* else the last request using it frees it */
    return rc;
}

/* ------------------------------------------------------------------ list / find */

static int fill_entry(ft_engine_entry *o, const ft__eng_entry *t) {
    memset(o, 0, sizeof *o);
    const ft__eng_entry *m = t->is_adapter ? t->base : t;
    snprintf(o->name, sizeof o->name, "%s", t->name);
    snprintf(o->base, sizeof o->base, "%s", t->is_adapter ? m->name : "");
    snprintf(o->dir, sizeof o->dir, "%s", t->dir);
    o->kind = t->kind;
    o->is_adapter = t->is_adapter;
    o->created = t->created;
    if (t->kind == FT_ENGINE_GENERATOR) {
        const ft_model_config *c = ft_model_get_config(m->m);
        o->context_length = c->max_seq_len;
        o->vocab_size = c->vocab_size;
        o->has_chat_template = m->tmpl != NULL;
        o->n_params = t->is_adapter ? (int64_t)(ft_adapter_bytes(t->ad) / sizeof(float)) : ft_model_param_count(m->m);
        return FT_OK;
    }
    const ft_encoder_config *c = ft_encoder_get_config(m->em);
    o->task = ft_encoder_get_task(m->em);
    o->embedding_only = ft__eng_embedding_only(t);
    o->context_length = ft__eng_encoder_max_len(m);
    o->vocab_size = c->vocab_size;
    o->n_params = t->is_adapter ? (int64_t)(ft_adapter_bytes(t->ad) / sizeof(float)) : ft_encoder_param_count(m->em);
    o->num_labels = o->task == FT_TASK_CLASSIFY || o->task == FT_TASK_TOKEN ? c->num_labels : o->task == FT_TASK_REGRESS ? 1 : 0;
    /* a multi-task model: its first head (the worker switches the encoder's head while it runs a batch) */
    if (m->mt) o->num_labels = ft_multitask_num_labels(m->mt, 0);
    if (o->task == FT_TASK_CLASSIFY || o->task == FT_TASK_TOKEN) {
        o->labels = calloc((size_t)(o->num_labels ? o->num_labels : 1), sizeof *o->labels);
        if (!o->labels) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int k = 0; k < o->num_labels; k++) {
            const char *s = t->labels ? t->labels[k] : m->mt ? ft_multitask_label_name(m->mt, 0, k) : ft_encoder_label_name(m->em, k);
            char buf[32];
            if (!s) { snprintf(buf, sizeof buf, "LABEL_%d", k); s = buf; }
            if (!(o->labels[k] = strdup(s))) return ft_error(FT_ERR_NOMEM, "out of memory");
        }
    }
    return FT_OK;
}

void ft_engine_entries_free(ft_engine_entry *v, int n) {
    for (int i = 0; v && i < n; i++) {
        for (int k = 0; v[i].labels && k < v[i].num_labels; k++) free(v[i].labels[k]);
        free(v[i].labels);
    }
    free(v);
}

int ft_engine_list(ft_engine *e, ft_engine_entry **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&e->mu);
    int cnt = 0, rc = FT_OK;
    for (ft__eng_entry *t = e->entries; t; t = t->next) cnt += t->listed;
    ft_engine_entry *v = calloc((size_t)(cnt ? cnt : 1), sizeof *v);
    if (!v) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int pass = 0; rc == FT_OK && pass < 2; pass++)   /* models first, then adapters */
        for (ft__eng_entry *t = e->entries; rc == FT_OK && t; t = t->next)
            if (t->listed && t->is_adapter == pass) rc = fill_entry(&v[k++], t);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) { ft_engine_entries_free(v, k); return rc; }
    *out = v;
    *n = k;
    return FT_OK;
}

int ft_engine_find(ft_engine *e, const char *name, ft_engine_entry **out) {
    *out = NULL;
    ft_engine_entry *v = calloc(1, sizeof *v);
    if (!v) return ft_error(FT_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&e->mu);
    ft__eng_entry *t = name ? find_locked(e, name) : NULL;
    int rc = t ? fill_entry(v, t) : ft_error(FT_ERR_NOT_FOUND, "no model or adapter named '%s'", name ? name : "(null)");
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) { ft_engine_entries_free(v, 1); return rc; }
    *out = v;
    return FT_OK;
}

/* ------------------------------------------------------------------ chat */

int ft__eng_embedding_only(const ft__eng_entry *t) {
    const ft__eng_entry *m = t->is_adapter ? t->base : t;
    return m->kind == FT_ENGINE_ENCODER && ft_encoder_head_reinitialised(m->em) && !(t->ad && ft_adapter_head_tensors(t->ad) > 0);
}

int ft__eng_render_chat(const ft__eng_entry *m, const ft_chat_msg *msgs, int n, char **out) {
    *out = NULL;
    if (m->kind != FT_ENGINE_GENERATOR) return ft_error(FT_ERR_INVALID, "'%s' is an encoder: chat needs a generator", m->name);
    if (!m->tmpl) return ft_error(FT_ERR_NOT_FOUND, "model '%s' has no chat template (tokenizer_config.json \"chat_template\")", m->name);
    if (n <= 0 || !msgs) return ft_error(FT_ERR_INVALID, "chat: no messages");
    size_t len;
    return ft_chat_render(m->tmpl, msgs, n, 1, out, &len);
}

int ft_engine_render_chat(ft_engine *e, const char *model, const ft_chat_msg *msgs, int n, char **out) {
    *out = NULL;
    int rc;
    ft__eng_entry *t = ft__eng_acquire(e, model, 0, &rc);
    if (!t) return rc;
    rc = ft__eng_render_chat(ft__eng_model_of(t), msgs, n, out);
    ft__eng_release(e, t, 0);
    return rc;
}

const ft_tokenizer *ft_engine_tokenizer(ft_engine *e, const char *model) {
    int rc;
    ft__eng_entry *t = ft__eng_acquire(e, model, 0, &rc);
    if (!t) return NULL;
    const ft_tokenizer *tok = ft__eng_model_of(t)->tok;   /* the base outlives the reference: models stay loaded */
    ft__eng_release(e, t, 0);
    return tok;
}

/* ------------------------------------------------------------------ stats, drain, free */

void ft_engine_get_stats(ft_engine *e, ft_engine_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->mu);
    for (ft__eng_entry *t = e->entries; t; t = t->next) {
        int q = 0, a = 0, s = 0;
        if (t->gen) ft__gen_sched_counts(t->gen, &q, &a, &s);
        if (t->enc) ft__enc_worker_counts(t->enc, &q);
        out->queued += q;
        out->active += a;
        out->slots += s;
    }
    pthread_mutex_unlock(&e->mu);
    out->steps = atomic_load(&e->steps);
    out->batched_rows = atomic_load(&e->batched_rows);
    out->prompt_tokens = atomic_load(&e->prompt_tokens);
    out->generated_tokens = atomic_load(&e->generated_tokens);
    out->encoder_batches = atomic_load(&e->encoder_batches);
    out->encoder_texts = atomic_load(&e->encoder_texts);
}

/* waits until nothing is in flight or until the absolute monotonic deadline (<= 0: no limit) */
static int wait_idle(ft_engine *e, double deadline) {
    pthread_mutex_lock(&e->mu);
    while (e->in_flight > 0) {
        if (deadline > 0) {
            double now = ft__now_mono();
            if (now >= deadline) break;
            /* pthread_cond_timedwait takes a CLOCK_REALTIME time: wait at most the time left */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double left = deadline - now, whole = (double)(long)left;
            ts.tv_sec += (time_t)whole;
            ts.tv_nsec += (long)((left - whole) * 1e9);
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&e->idle, &e->mu, &ts);
        } else pthread_cond_wait(&e->idle, &e->mu);
    }
    int left = e->in_flight;
    pthread_mutex_unlock(&e->mu);
    return left;
}

int ft_engine_drain(ft_engine *e, double timeout_s) {
    pthread_mutex_lock(&e->mu);
    e->draining = 1;
    pthread_mutex_unlock(&e->mu);
    int left = timeout_s > 0 ? wait_idle(e, ft__now_mono() + timeout_s) : wait_idle(e, ft__now_mono());
    if (left > 0) {
        pthread_mutex_lock(&e->mu);
        for (ft__eng_entry *t = e->entries; t; t = t->next)
            if (t->gen) ft__gen_sched_cancel_all(t->gen);
        pthread_mutex_unlock(&e->mu);
        wait_idle(e, 0);   /* cancelled requests end within a step; encoder calls finish their batch */
    }
    return left;
}

void ft_engine_free(ft_engine *e) {
    if (!e) return;
    ft_engine_drain(e, 0);
    /* the threads first (they read the models and adapters), then the adapters, then the models */
    for (ft__eng_entry *t = e->entries; t; t = t->next) {
        if (t->gen) ft__gen_sched_stop(t->gen);
        if (t->enc) ft__enc_worker_stop(t->enc);
        t->gen = NULL;
        t->enc = NULL;
    }
    for (int pass = 1; pass >= 0; pass--)
        for (ft__eng_entry **pp = &e->entries; *pp;) {
            ft__eng_entry *t = *pp;
            if (t->is_adapter == pass) { *pp = t->next; entry_free(t); }
            else pp = &t->next;
        }
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
