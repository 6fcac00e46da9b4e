/* engine_internal.h — what the serving engine's files share (internal; serve.h is the public API):
 *
 *   engine.c          create / drain / free, the registry of models and adapters (reference counted),
 *                     list / find, chat rendering, statistics
 *   engine_gen.c      generators: requests, the per-model scheduler thread (continuous batching)
 *   engine_encoder.c  encoders: the per-model worker thread batching predict / embed callers
 *
 * Locking, outermost first: ft_engine.mu (registry, reference counts, in-flight count, draining), then a
 * scheduler's or worker's own mu (its queue and slots). A thread never takes the engine's mu while
 * holding a scheduler's, and callbacks run with no lock held. */
#ifndef FT_SERVE_ENGINE_INTERNAL_H
#define FT_SERVE_ENGINE_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "core/clock.h"
#include "finetune/adapter.h"
#include "finetune/chat.h"
#include "finetune/encoder.h"
#include "finetune/model.h"
#include "finetune/serve.h"
#include "finetune/tokenizer.h"

typedef struct ft__gen_sched ft__gen_sched;
typedef struct ft__enc_worker ft__enc_worker;

/* One loaded model or adapter. Models live until ft_engine_free; an adapter is freed when its last
 * reference goes (the registry holds one until it is unloaded, every request that uses it one). */
typedef struct ft__eng_entry {
    char name[128];
    char dir[1024];
    ft_engine_kind kind;
    int  is_adapter;
    int64_t created;                 /* unix seconds */
    int  refs;                       /* guarded by ft_engine.mu */
    int  listed;                     /* 1 while in the registry (not unloaded) */
    struct ft__eng_entry *base;      /* an adapter's model */
    ft_adapter *ad;                  /* an adapter's LoRA matrices */
    char **labels;                   /* [n_labels] an encoder adapter's label names (NULL: the base's) */
    int  n_labels;
    /* a model's */
    ft_model *m;                     /* generator */
    ft_encoder_model *em;            /* encoder (a multi-task model's: mt's, head 0 selected between batches) */
    struct ft_multitask *mt;         /* a multi-task encoder (multitask.h), else NULL */
    ft_tokenizer *tok;
    ft_chat_template *tmpl;          /* NULL without one */
    int  max_len;                    /* encoder: tokens per text (sentence_bert_config.json max_seq_length, else the tokenizer's) */
    ft__gen_sched *gen;
    ft__enc_worker *enc;
    struct ft__eng_entry *next;      /* loading order */
} ft__eng_entry;

struct ft_engine {
    ft_engine_params p;
    int  threads;                    /* OpenMP threads for the engine's own threads */
    pthread_mutex_t mu;
    pthread_cond_t  idle;            /* signalled when in_flight drops */
    ft__eng_entry  *entries;         /* models and adapters (unloaded adapters leave the list) */
    int  draining;
    int  in_flight;                  /* admitted generation requests and encoder calls not yet ended */
    atomic_uint_fast64_t next_id;
    atomic_uint_fast64_t steps, batched_rows, prompt_tokens, generated_tokens, encoder_batches, encoder_texts;
};

/* engine.c: the entry called name with a reference taken (ft__eng_release gives it back); NULL and
 * FT_ERR_NOT_FOUND in *rc when there is none. Counts one request in flight when count_in_flight
 * (refused with FT_ERR_BUSY while draining). */
ft__eng_entry *ft__eng_acquire(ft_engine *e, const char *name, int count_in_flight, int *rc);
void ft__eng_release(ft_engine *e, ft__eng_entry *t, int count_in_flight);
/* the model an entry runs on (itself, or an adapter's base) */
static inline ft__eng_entry *ft__eng_model_of(ft__eng_entry *t) { return t->is_adapter ? t->base : t; }
/* a generator's prompt from chat messages (its template, add_generation_prompt on); malloc'd text */
int    ft__eng_render_chat(const ft__eng_entry *model, const ft_chat_msg *msgs, int n, char **out);
/* 1 for an encoder model (or an adapter over one) with no trained task head: a checkpoint without one
 * (sentence-transformers) and, for an adapter, none of its own */
int    ft__eng_embedding_only(const ft__eng_entry *t);
/* an encoder's token limit per text */
int    ft__eng_encoder_max_len(const ft__eng_entry *model);
void   ft__eng_thread_setup(const ft_engine *e);   /* OpenMP threads of an engine thread */

/* engine_gen.c */
int  ft__gen_sched_start(ft_engine *e, ft__eng_entry *model);
/* cancels everything queued and running (on_done "cancelled"); they end within a step */
void ft__gen_sched_cancel_all(ft__gen_sched *s);
void ft__gen_sched_stop(ft__gen_sched *s);       /* joins and frees (cancel_all first) */
int  ft__gen_sched_cancel(ft__gen_sched *s, uint64_t id);
void ft__gen_sched_counts(ft__gen_sched *s, int *queued, int *active, int *slots);

/* engine_encoder.c */
int  ft__enc_worker_start(ft_engine *e, ft__eng_entry *model);
void ft__enc_worker_stop(ft__enc_worker *w);
void ft__enc_worker_counts(ft__enc_worker *w, int *queued);
#endif
