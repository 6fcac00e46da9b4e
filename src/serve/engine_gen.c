/* engine_gen.c — generation requests and the scheduler of a generator model (continuous batching).
 *
 * A request is tokenised and checked on the caller's thread (ft_engine_submit), then waits in the model's
 * FIFO queue. The scheduler thread loops:
 *   admit     queued requests into free KV-cache slots (a finished sequence's slot is reused at once);
 *   batch     every active sequence contributes its rows to ONE ft_context_decode call: a decoding one
 *             its last sampled token, the prefilling ones the next pieces of their prompts, oldest
 *             admitted first, at most prefill_chunk prompt tokens in all (so a step over R decoding
 *             sequences has at most R + prefill_chunk rows: long prompts do not stall the others);
 *             each sequence with its own adapter (NULL: the base);
 *   sample    for every sequence that got logits, its own ft__gen_seq picks the next token (own seed,
 *             temperature, top-k/p, stop strings) and hands out the text that is safe to show (on_token);
 *   finish    ended sequences call on_done, free their slot and drop their reference on the adapter.
 * With nothing to do it sleeps on a condition variable; submit and cancel wake it. Because each sequence's
 * rows depend only on its own tokens, slot and adapter, and its sampler only on its own state, a
 * request's tokens are those it would get alone (exactly on the reference backend; on the CPU backend up
 * to the rounding of matmuls over another number of rows). */
#include "serve/engine_internal.h"
#include "gen/gen_seq.h"
#include "finetune/context.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOGPROBS 20

typedef struct gen_req {
    uint64_t id;
    ft__eng_entry *target;            /* the model or adapter asked for (one reference held) */
    const ft_adapter *ad;             /* target's LoRA adapter; NULL: the base */
    int   *prompt;                    /* [n_prompt] */
    int    n_prompt, fed;             /* prompt tokens; how many are in the slot already */
    int    n_unknown;
    ft_generate_params params;        /* stop points to stops */
    char **stops;                     /* [n_stops] copies */
    int    n_stops;
    int    logprobs;
    ft_gen_token_fn on_token;
    ft_gen_done_fn  on_done;
    void  *user;
    int    slot;                      /* -1 while queued */
    ft__gen_seq seq;
    int    next_tok;                  /* the token decoded at the next step */
    atomic_int cancel;
    double t_submit, t_admit, t_first;
    uint64_t admitted;                /* admission order (prefill goes oldest first) */
    struct gen_req *next;             /* queue */
} gen_req;

struct ft__gen_sched {
    ft_engine *e;
    ft__eng_entry *model;
    pthread_t th;
    int started;
    pthread_mutex_t mu;               /* queue, slot[], counts, stop */
    pthread_cond_t  cv;               /* work arrived / stop */
    gen_req *head, *tail;
    int n_queued, n_active, n_slots, stop;
    gen_req **slot;                   /* [n_slots] the request in each KV slot (NULL: free) */
    int capacity, V, chunk;           /* tokens per slot, vocabulary, prompt tokens per step */
    uint64_t n_admitted;
    ft_context *ctx;
    float *logits;                    /* [n_slots, V] */
    float *raw;                       /* [V] the raw logits of a logprobs request (sampling changes logits) */
    ft_decode_seq *seqs;              /* [n_slots] one step's sequences */
    gen_req **rows;                   /* [n_slots] their requests */
};

static void req_free(gen_req *r) {
    if (!r) return;
    free(r->prompt);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    free(r->stops);
    ft__gen_seq_free(&r->seq);
    free(r);
}

/* ------------------------------------------------------------------ requests: checks and prompt */

ft_gen_request ft_gen_request_default(void) {
    ft_gen_request r;
    memset(&r, 0, sizeof r);
    r.params = ft_generate_default_params();
    return r;
}

void ft_gen_result_free(ft_gen_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

static int check_params(const ft_gen_request *r) {
    const ft_generate_params *p = &r->params;
    if (r->echo) return ft_error(FT_ERR_INVALID, "echo is not supported");
    if (r->logprobs < 0 || r->logprobs > MAX_LOGPROBS)
        return ft_error(FT_ERR_INVALID, "logprobs %d outside [0, %d]", r->logprobs, MAX_LOGPROBS);
    if (p->max_new_tokens < 0) return ft_error(FT_ERR_INVALID, "max_new_tokens %d is negative", p->max_new_tokens);
    if (!(p->temperature >= 0) || !isfinite(p->temperature)) return ft_error(FT_ERR_INVALID, "temperature must be a number >= 0");
    if (p->top_k < 0) return ft_error(FT_ERR_INVALID, "top_k %d is negative", p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1)) return ft_error(FT_ERR_INVALID, "top_p must be in (0, 1]");
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty)) return ft_error(FT_ERR_INVALID, "repetition_penalty must be > 0");
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop)) return ft_error(FT_ERR_INVALID, "stop strings: n_stop %d without strings", p->n_stop);
    for (int i = 0; i < p->n_stop; i++) if (!p->stop[i]) return ft_error(FT_ERR_INVALID, "stop string %d is NULL", i);
    int given = (r->prompt != NULL) + (r->messages != NULL || r->n_messages > 0) + (r->prompt_ids != NULL || r->n_prompt_ids > 0);
    if (given != 1) return ft_error(FT_ERR_INVALID, "give exactly one of prompt, messages and prompt_ids");
    return FT_OK;
}

/* the request's stop strings (copied), plus the chat end-of-turn markers for a chat request */
static int copy_stops(gen_req *q, const ft_gen_request *r, int chat) {
    const char *const *turn = NULL;
    int n_turn = chat ? ft_chat_turn_stops(&turn) : 0, n = r->params.n_stop + n_turn;
    q->params.stop = NULL;
    q->params.n_stop = 0;
    if (n == 0) return FT_OK;
    if (!(q->stops = calloc((size_t)n, sizeof *q->stops))) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *s = i < r->params.n_stop ? r->params.stop[i] : turn[i - r->params.n_stop];
        if (!*s) continue;   /* an empty stop string would end every generation at once: ignored */
        if (!(q->stops[q->n_stops++] = strdup(s))) return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    q->params.stop = (const char *const *)q->stops;
    q->params.n_stop = q->n_stops;
    return FT_OK;
}

static int build_prompt(gen_req *q, const ft__eng_entry *m, const ft_gen_request *r) {
    const ft_model_config *c = ft_model_get_config(m->m);
    int rc = FT_OK;
    if (r->prompt_ids) {
        if (r->n_prompt_ids <= 0) return ft_error(FT_ERR_INVALID, "prompt_ids: no ids");
        if (!(q->prompt = malloc(sizeof(int) * (size_t)r->n_prompt_ids))) return ft_error(FT_ERR_NOMEM, "out of memory");
        for (int i = 0; i < r->n_prompt_ids; i++) {
            if (r->prompt_ids[i] < 0 || r->prompt_ids[i] >= c->vocab_size)
                return ft_error(FT_ERR_INVALID, "prompt token %d (id %d) is outside the vocabulary [0, %d)", i, r->prompt_ids[i], c->vocab_size);
            q->prompt[i] = r->prompt_ids[i];
        }
        q->n_prompt = r->n_prompt_ids;
    } else if (r->messages) {
        char *text = NULL;
        FT_TRY(ft__eng_render_chat(m, r->messages, r->n_messages, &text));
        /* the template writes BOS itself (as finetune generate --chat) */
        rc = ft_tokenizer_encode(m->tok, text, strlen(text), 0, &q->prompt, &q->n_prompt);
        free(text);
    } else if (r->prompt) {
        rc = ft_tokenizer_encode(m->tok, r->prompt, strlen(r->prompt), FT_TOK_ADD_SPECIAL, &q->prompt, &q->n_prompt);
    } else return ft_error(FT_ERR_INVALID, "messages: n_messages %d without messages", r->n_messages);
    if (rc < 0) return rc;
    if (q->n_prompt == 0) {   /* an empty prompt starts from BOS (as finetune generate) */
        int start = ft_generate_start_token(m->tok, c);
        if (start < 0) return ft_error(FT_ERR_INVALID, "the prompt is empty and the tokenizer has no BOS/EOS token to start from");
        free(q->prompt);
        if (!(q->prompt = malloc(sizeof(int)))) return ft_error(FT_ERR_NOMEM, "out of memory");
        q->prompt[0] = start;
        q->n_prompt = 1;
    }
    int unk = ft_tokenizer_unk(m->tok);
    for (int i = 0; unk >= 0 && i < q->n_prompt; i++) q->n_unknown += q->prompt[i] == unk;
    return FT_OK;
}

/* ------------------------------------------------------------------ finishing */

static const char *finish_reason(int status, int stopped_by) {
    if (status == FT_ERR_INTERRUPTED || stopped_by == FT__GEN_CALLBACK) return "cancelled";
    if (status < 0) return "error";
    return stopped_by == FT__GEN_EOS || stopped_by == FT__GEN_STOP_STRING ? "stop" : "length";
}

/* ends r: on_done, then its slot is freed and its reference dropped (r is freed) */
static void finish(ft__gen_sched *s, gen_req *r, int status) {
    double now = ft__now_mono();
    if (status == FT_OK && r->seq.stopped_by == FT__GEN_CALLBACK) status = FT_ERR_INTERRUPTED;
    ft_gen_result res;
    memset(&res, 0, sizeof res);
    if (status < 0) snprintf(res.error, sizeof res.error, "%s", status == FT_ERR_INTERRUPTED ? "cancelled" : ft_last_error());
    ft_generation g;
    int stopped_by = r->seq.stopped_by;
    int rc = ft__gen_seq_result(&r->seq, &g);   /* what was generated so far, also when cancelled */
    if (rc < 0 && status == FT_OK) { status = rc; snprintf(res.error, sizeof res.error, "%s", ft_last_error()); }
    res.status = status;
    res.text = g.text;
    res.text_len = g.text_len;
    res.ids = g.ids;
    res.n_tokens = g.n_ids;
    res.n_prompt_tokens = r->n_prompt;
    res.n_unknown_tokens = r->n_unknown;
    res.finish_reason = finish_reason(status, stopped_by);
    res.queue_s = (r->t_admit > 0 ? r->t_admit : now) - r->t_submit;
    res.prefill_s = (r->t_first > 0 ? r->t_first : now) - r->t_submit;
    res.total_s = now - r->t_submit;
    if (r->slot >= 0) {   /* out of the slot table first: a cancel from on_done finds it ended */
        pthread_mutex_lock(&s->mu);
        s->slot[r->slot] = NULL;
        s->n_active--;
        pthread_mutex_unlock(&s->mu);
        ft_context_slot_clear(s->ctx, r->slot);   /* only this thread admits: the slot stays free until then */
    }
    if (r->on_done) r->on_done(r->user, &res);
    ft_generation_free(&g);
    ft__eng_release(s->e, r->target, 1);
    req_free(r);
}

/* ------------------------------------------------------------------ one step */

/* log-softmax of the raw logits: the k most likely (ids, logprobs, most likely first) and log-sum-exp */
static double top_logprobs(const float *lg, int V, int k, int *ids, float *lps) {
    float mx = lg[0];
    for (int v = 1; v < V; v++) if (lg[v] > mx) mx = lg[v];
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)lg[v] - mx);
    double lse = mx + log(sum);
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n == k && lg[v] <= lg[ids[n - 1]]) continue;   /* ties: the lower id stays */
        int j = n < k ? n++ : k - 1;
        while (j > 0 && lg[ids[j - 1]] < lg[v]) { ids[j] = ids[j - 1]; j--; }
        ids[j] = v;
    }
    for (int i = 0; i < n; i++) lps[i] = (float)(lg[ids[i]] - lse);
    return lse;
}

/* r's logits for its next token are ready */
static void next_token(ft__gen_sched *s, gen_req *r, float *lg) {
    int top_ids[MAX_LOGPROBS];
    float top_lps[MAX_LOGPROBS];
    double lse = 0;
    int k = r->logprobs < s->V ? r->logprobs : s->V;
    if (k > 0) {
        lse = top_logprobs(lg, s->V, k, top_ids, top_lps);
        memcpy(s->raw, lg, sizeof(float) * (size_t)s->V);
    }
    int id;
    const char *piece;
    size_t len;
    int more = ft__gen_seq_next(&r->seq, lg, &id, &piece, &len);
    if (more < 0) { finish(s, r, more); return; }
    if (r->t_first == 0) r->t_first = ft__now_mono();
    if (id >= 0) atomic_fetch_add(&s->e->generated_tokens, 1);
    if (id >= 0 || len > 0) {
        ft_gen_token t = {.id = id, .text = piece, .len = len};
        if (id >= 0 && k > 0) {
            t.logprob = (float)(s->raw[id] - lse);
            t.n_top = k;
            t.top_ids = top_ids;
            t.top_logprobs = top_lps;
        }
        if (r->on_token && r->on_token(r->user, &t)) { ft__gen_seq_end(&r->seq, FT__GEN_CALLBACK); more = 0; }
    }
    if (more) r->next_tok = id;
    else finish(s, r, FT_OK);
}

/* the prefilling request admitted first among those not yet given rows this step (NULL: none) */
static gen_req *oldest_prefill(ft__gen_sched *s, const char *taken) {
    gen_req *best = NULL;
    for (int k = 0; k < s->n_slots; k++) {
        gen_req *r = s->slot[k];
        if (r && !taken[k] && r->fed < r->n_prompt && (!best || r->admitted < best->admitted)) best = r;
    }
    return best;
}

static void add_rows(ft__gen_sched *s, gen_req *r, const int *tokens, int n_tokens, float *logits, int *n) {
    ft_decode_seq *d = &s->seqs[*n];
    memset(d, 0, sizeof *d);
    d->slot = r->slot;
    d->adapter = r->ad;
    d->tokens = tokens;
    d->n_tokens = n_tokens;
    d->logits = logits;
    s->rows[(*n)++] = r;
}

static void step(ft__gen_sched *s) {
    int n = 0, rows = 0, prefill = 0;
    char taken[256] = {0};   /* slots given rows this step (n_slots <= 256) */
    for (int k = 0; k < s->n_slots; k++) {
        gen_req *r = s->slot[k];
        if (r && atomic_load(&r->cancel)) { finish(s, r, FT_ERR_INTERRUPTED); continue; }
        if (!r || r->fed < r->n_prompt) continue;
        add_rows(s, r, &r->next_tok, 1, s->logits + (size_t)k * s->V, &n);   /* decoding: its last token */
        taken[k] = 1;
        rows++;
    }
    for (gen_req *r; prefill < s->chunk && (r = oldest_prefill(s, taken));) {
        int c = r->n_prompt - r->fed, room = s->chunk - prefill;
        if (c > room) c = room;
        /* logits only after the prompt's last token */
        add_rows(s, r, r->prompt + r->fed, c, r->fed + c == r->n_prompt ? s->logits + (size_t)r->slot * s->V : NULL, &n);
        taken[r->slot] = 1;
        prefill += c;
        rows += c;
    }
    if (n == 0) return;
    int rc = ft_context_decode(s->ctx, s->seqs, n);
    atomic_fetch_add(&s->e->steps, 1);
    atomic_fetch_add(&s->e->batched_rows, (uint64_t)rows);
    atomic_fetch_add(&s->e->prompt_tokens, (uint64_t)prefill);
    for (int i = 0; i < n; i++) {
        gen_req *r = s->rows[i];
        if (rc < 0) { finish(s, r, rc); continue; }
        if (r->fed < r->n_prompt) {
            r->fed += s->seqs[i].n_tokens;
            if (r->fed < r->n_prompt) continue;   /* more prompt chunks to come */
        }
        next_token(s, r, s->seqs[i].logits);
    }
}

/* ------------------------------------------------------------------ the scheduler thread */

static void *sched_main(void *arg) {
    ft__gen_sched *s = arg;
    ft__eng_thread_setup(s->e);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->n_active == 0 && !s->head) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop && s->n_active == 0 && !s->head) break;
        /* cancelled while waiting: out of the queue */
        gen_req *gone = NULL;
        for (gen_req **pp = &s->head; *pp;) {
            gen_req *r = *pp;
            if (atomic_load(&r->cancel)) { *pp = r->next; r->next = gone; gone = r; s->n_queued--; }
            else pp = &r->next;
        }
        /* admit into free slots, oldest first */
        for (int k = 0; k < s->n_slots && s->head; k++) {
            if (s->slot[k]) continue;
            gen_req *r = s->head;
            s->head = r->next;
            r->next = NULL;
            r->slot = k;
            r->t_admit = ft__now_mono();
            r->admitted = ++s->n_admitted;
            s->slot[k] = r;
            s->n_queued--;
            s->n_active++;
        }
        s->tail = NULL;
        for (gen_req *r = s->head; r; r = r->next) s->tail = r;
        pthread_mutex_unlock(&s->mu);
        while (gone) { gen_req *r = gone; gone = r->next; finish(s, r, FT_ERR_INTERRUPTED); }
        step(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int ft__gen_sched_start(ft_engine *e, ft__eng_entry *model) {
    ft__gen_sched *s = calloc(1, sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    s->e = e;
    s->model = model;
    s->n_slots = e->p.n_slots;
    s->chunk = e->p.prefill_chunk;
    s->V = ft_model_get_config(model->m)->vocab_size;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    model->gen = s;   /* from here ft__gen_sched_stop frees it */
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = s->n_slots;
    cp.slot_tokens = e->p.slot_tokens;
    cp.batch_tokens = s->chunk + s->n_slots;   /* a step with one prefill chunk runs as one batch */
    cp.max_lora_rank = e->p.max_lora_rank;
    FT_TRY(ft_context_create(&s->ctx, model->m, &cp));
    s->capacity = ft_context_slot_capacity(s->ctx);
    s->slot = calloc((size_t)s->n_slots, sizeof *s->slot);
    s->logits = malloc(sizeof(float) * (size_t)s->n_slots * (size_t)s->V);
    s->raw = malloc(sizeof(float) * (size_t)s->V);
    s->seqs = calloc((size_t)s->n_slots, sizeof *s->seqs);
    s->rows = calloc((size_t)s->n_slots, sizeof *s->rows);
    if (!s->slot || !s->logits || !s->raw || !s->seqs || !s->rows) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    if (pthread_create(&s->th, NULL, sched_main, s) != 0) return ft_error(FT_ERR_NOMEM, "engine: cannot start a scheduler thread");
    s->started = 1;
    return FT_OK;
}

void ft__gen_sched_cancel_all(ft__gen_sched *s) {
    pthread_mutex_lock(&s->mu);
    for (gen_req *r = s->head; r; r = r->next) atomic_store(&r->cancel, 1);
    for (int k = 0; k < s->n_slots; k++) if (s->slot && s->slot[k]) atomic_store(&s->slot[k]->cancel, 1);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void ft__gen_sched_stop(ft__gen_sched *s) {
    if (!s) return;
    if (s->started) {
        ft__gen_sched_cancel_all(s);
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    s->model->gen = NULL;
    ft_context_free(s->ctx);
    free(s->slot);
    free(s->logits);
    free(s->raw);
    free(s->seqs);
    free(s->rows);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ft__gen_sched_cancel(ft__gen_sched *s, uint64_t id) {
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (gen_req *r = s->head; r && !found; r = r->next)
        if (r->id == id) { atomic_store(&r->cancel, 1); found = 1; }
    for (int k = 0; k < s->n_slots && !found; k++)
        if (s->slot[k] && s->slot[k]->id == id) { atomic_store(&s->slot[k]->cancel, 1); found = 1; }
    if (found) pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return found;
}

void ft__gen_sched_counts(ft__gen_sched *s, int *queued, int *active, int *slots) {
    pthread_mutex_lock(&s->mu);
    *queued = s->n_queued;
    *active = s->n_active;
    *slots = s->n_slots;
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ the public calls */

int ft_engine_submit(ft_engine *e, const ft_gen_request *r, ft_gen_token_fn on_token, ft_gen_done_fn on_done,
                     void *user, uint64_t *id) {
    if (id) *id = 0;
    if (!e || !r) return ft_error(FT_ERR_INVALID, "engine: no request");
    FT_TRY(check_params(r));
    int rc;
    ft__eng_entry *t = ft__eng_acquire(e, r->model, 1, &rc);
    if (!t) return rc;
    ft__eng_entry *m = ft__eng_model_of(t);
    gen_req *q = calloc(1, sizeof *q);
    if (!q) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    else if (m->kind != FT_ENGINE_GENERATOR) rc = ft_error(FT_ERR_INVALID, "'%s' is an encoder: generation needs a generator", r->model);
    if (rc == FT_OK) {
        q->target = t;
        q->ad = t->ad;
        q->slot = -1;
        q->params = r->params;
        q->logprobs = r->logprobs;
        q->on_token = on_token;
        q->on_done = on_done;
        q->user = user;
        q->t_submit = ft__now_mono();
        atomic_init(&q->cancel, 0);
        rc = copy_stops(q, r, r->messages != NULL);
    }
    if (rc == FT_OK) rc = build_prompt(q, m, r);
    ft__gen_sched *s = m->gen;
    if (rc == FT_OK && q->n_prompt >= s->capacity)
        rc = ft_error(FT_ERR_RANGE, "the prompt has %d tokens; a sequence of model '%s' holds %d", q->n_prompt, m->name, s->capacity);
    if (rc == FT_OK)
        rc = ft__gen_seq_init(&q->seq, &q->params, m->tok, s->V, ft__gen_eos(ft_model_get_config(m->m), m->tok), s->capacity,
                              q->prompt, q->n_prompt);
    if (rc == FT_OK) {
        pthread_mutex_lock(&s->mu);
        if (s->n_queued >= e->p.max_queue + (s->n_slots - s->n_active))
            rc = ft_error(FT_ERR_BUSY, "model '%s': %d requests are waiting (max_queue %d)", m->name, s->n_queued, e->p.max_queue);
        else {
            q->id = atomic_fetch_add(&e->next_id, 1);
            if (s->tail) s->tail->next = q;
            else s->head = q;
            s->tail = q;
            s->n_queued++;
            if (id) *id = q->id;
            pthread_cond_signal(&s->cv);
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (rc < 0) {
        if (q) q->target = NULL;
        req_free(q);
        ft__eng_release(e, t, 1);
    }
    return rc;
}

int ft_engine_cancel(ft_engine *e, uint64_t id) {
    int found = 0;
    pthread_mutex_lock(&e->mu);
    for (ft__eng_entry *t = e->entries; t && !found; t = t->next)
        if (t->gen) found = ft__gen_sched_cancel(t->gen, id);
    pthread_mutex_unlock(&e->mu);
    return found ? FT_OK : ft_error(FT_ERR_NOT_FOUND, "no queued or running request %llu", (unsigned long long)id);
}

/* ft_engine_generate: the caller waits for on_done, which copies the result */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int done;
    ft_gen_result *out;
    ft_gen_token_fn on_token;
    void *user;
} waiter;

static int wait_token(void *user, const ft_gen_token *t) {
    waiter *w = user;
    return w->on_token ? w->on_token(w->user, t) : 0;
}

static void wait_done(void *user, const ft_gen_result *r) {
    waiter *w = user;
    ft_gen_result *o = w->out;
    *o = *r;
    o->text = malloc(r->text_len + 1);
    o->ids = malloc(sizeof(int) * (size_t)(r->n_tokens ? r->n_tokens : 1));
    if (!o->text || !o->ids) {
        free(o->text);
        free(o->ids);
        o->text = NULL;
        o->ids = NULL;
        o->text_len = 0;
        o->n_tokens = 0;
        o->status = FT_ERR_NOMEM;
        o->finish_reason = "error";
        snprintf(o->error, sizeof o->error, "out of memory");
    } else {
        memcpy(o->text, r->text ? r->text : "", r->text_len);
        o->text[r->text_len] = 0;
        if (r->n_tokens) memcpy(o->ids, r->ids, sizeof(int) * (size_t)r->n_tokens);
    }
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ft_engine_generate(ft_engine *e, const ft_gen_request *r, ft_gen_token_fn on_token, void *user, ft_gen_result *out) {
    memset(out, 0, sizeof *out);
    waiter w = {.out = out, .on_token = on_token, .user = user};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = ft_engine_submit(e, r, wait_token, wait_done, &w, NULL);
    if (rc == FT_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = out->status;
        if (rc < 0) ft_error(rc, "%s", out->error);   /* the message, on the caller's thread */
    } else {
        out->status = rc;
        out->finish_reason = "error";
        snprintf(out->error, sizeof out->error, "%s", ft_last_error());
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
