/* engine_encoder.c — predictions and embeddings of an encoder model, batched across callers.
 *
 * A caller tokenises its texts on its own thread (ft__pred_prepare), queues them as one job and waits.
 * The model's worker thread takes the texts of the queued jobs in arrival order — up to max_batch_texts
 * texts and ENC_ATT_BUDGET attention cells (texts x longest^2) per forward, a large job spread over
 * several forwards — runs ONE padded forward with each text's adapter (ft_encoder_forward_adapters), and
 * post-processes each text for its job: a prediction (predict_batch.h) or a mean-pooled, L2-normalised
 * embedding. A job is done when all its texts are; its caller wakes up. */
#include "serve/engine_internal.h"
#include "infer/predict_batch.h"
#include "finetune/multitask.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* attention cells (texts x T x T) per forward: bounds the activations of a batch of long texts */
#define ENC_ATT_BUDGET (1 << 19)

typedef struct enc_job {
    int   embed;                      /* 1: embeddings, 0: predictions */
    int   heads;                      /* a multi-task model's every head: preds [n * heads]; 0: one prediction per text */
    const ft_adapter *ad;             /* NULL: the base */
    const char *const *labels;        /* an adapter's label names (NULL: the model's) */
    ft__pred_input *in;               /* [n] prepared texts */
    int   n, taken, n_done;           /* texts; given to a forward; finished */
    ft_prediction *preds;             /* [n] predictions */
    float *emb;                       /* [n, dim] embeddings */
    int   dim;
    int   status;                     /* the first error */
    char  error[256];
    int   finished;
    struct enc_job *next;
} enc_job;

struct ft__enc_worker {
    ft_engine *e;
    ft__eng_entry *model;
    pthread_t th;
    int started, stop, busy;
    pthread_mutex_t mu;
    pthread_cond_t  cv;               /* a job arrived / stop */
    pthread_cond_t  done;             /* a job finished */
    enc_job *head, *tail;             /* jobs with texts not yet in a forward */
    int n_waiting;                    /* jobs none of whose texts is in a forward yet */
    /* one forward's texts: [max_batch_texts] */
    ft__pred_input *batch;
    const ft_adapter **ads;
    enc_job **owner;
    int *idx, *row0;
};

int ft__eng_encoder_max_len(const ft__eng_entry *m) { return ft__pred_max_len(m->em, m->tok, m->max_len); }

/* the next forward's texts from the queue (the caller holds mu); returns how many */
static int gather(ft__enc_worker *w) {
    int n = 0, T = 0, cap = w->e->p.max_batch_texts;
    while (w->head && n < cap) {
        enc_job *j = w->head;
        while (j->taken < j->n && n < cap) {
            int len = j->in[j->taken].n, t = len > T ? len : T;
            if (n > 0 && (size_t)(n + 1) * (size_t)t * (size_t)t > ENC_ATT_BUDGET) return n;
            T = t;
            if (j->taken == 0) w->n_waiting--;
            w->batch[n] = j->in[j->taken];
            w->ads[n] = j->ad;
            w->owner[n] = j;
            w->idx[n] = j->taken++;
            n++;
        }
        if (j->taken < j->n) break;
        w->head = j->next;   /* all its texts are taken: out of the queue */
        if (!w->head) w->tail = NULL;
    }
    return n;
}

static void job_error(enc_job *j, int rc) {
    if (j->status < 0) return;
    j->status = rc;
    snprintf(j->error, sizeof j->error, "%s", ft_last_error());
}

static void run_batch(ft__enc_worker *w, int n) {
    ft__eng_entry *m = w->model;
    /* a multi-task model: one forward per head when some job asks for every head (head 0 first, then the others) */
    int H = 1;
    for (int i = 0; m->mt && i < n; i++) if (w->owner[i]->heads) H = ft_multitask_count(m->mt);
    for (int h = 0; h < H; h++) {
        int rc = m->mt ? ft_multitask_select(m->mt, h) : FT_OK;
        if (rc == FT_OK) rc = ft__pred_forward(m->em, w->batch, n, w->ads, w->row0);
        int cols = rc == FT_OK ? ft_encoder_logit_cols(m->em) : 0;
        for (int i = 0; i < n; i++) {
            enc_job *j = w->owner[i];
            int k = w->idx[i], r = rc;
            if (h > 0 && !j->heads) continue;
            if (r == FT_OK && j->embed) ft__pred_embed(m->em, w->batch, n, i, j->emb + (size_t)k * j->dim);
            else if (r == FT_OK)
                r = ft__pred_finish(&j->preds[j->heads ? (size_t)k * j->heads + h : (size_t)k], &j->in[k], m->em, m->tok,
                                    ft_encoder_logits(m->em) + (size_t)w->row0[i] * cols, j->heads ? NULL : j->labels,
                                    ft_predict_default_options().top_k);
            if (r < 0) job_error(j, r);
        }
    }
    if (m->mt) ft_multitask_select(m->mt, 0);
    atomic_fetch_add(&w->e->encoder_batches, 1);
    atomic_fetch_add(&w->e->encoder_texts, (uint64_t)n);
}

static void *worker_main(void *arg) {
    ft__enc_worker *w = arg;
    ft__eng_thread_setup(w->e);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->head) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head) break;   /* stopping, nothing left */
        int n = gather(w);
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, n);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        int any = 0;
        for (int i = 0; i < n; i++) {
            enc_job *j = w->owner[i];
            if (++j->n_done == j->n) { j->finished = 1; any = 1; }
        }
        if (any) pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ft__enc_worker_start(ft_engine *e, ft__eng_entry *model) {
    ft__enc_worker *w = calloc(1, sizeof *w);
    if (!w) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    w->e = e;
    w->model = model;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->done, NULL);
    model->enc = w;   /* from here ft__enc_worker_stop frees it */
    size_t cap = (size_t)e->p.max_batch_texts;
    w->batch = calloc(cap, sizeof *w->batch);
    w->ads = calloc(cap, sizeof *w->ads);
    w->owner = calloc(cap, sizeof *w->owner);
    w->idx = calloc(cap, sizeof *w->idx);
    w->row0 = calloc(cap, sizeof *w->row0);
    if (!w->batch || !w->ads || !w->owner || !w->idx || !w->row0) return ft_error(FT_ERR_NOMEM, "engine: out of memory");
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) return ft_error(FT_ERR_NOMEM, "engine: cannot start an encoder thread");
    w->started = 1;
    return FT_OK;
}

void ft__enc_worker_stop(ft__enc_worker *w) {
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    w->model->enc = NULL;
    free(w->batch);
    free(w->ads);
    free(w->owner);
    free(w->idx);
    free(w->row0);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void ft__enc_worker_counts(ft__enc_worker *w, int *queued) {
    pthread_mutex_lock(&w->mu);
    *queued = w->n_waiting;
    pthread_mutex_unlock(&w->mu);
}

/* queues j and waits until the worker has done it */
static int run_job(ft_engine *e, ft__enc_worker *w, enc_job *j, const char *name) {
    pthread_mutex_lock(&w->mu);
    /* max_queue jobs may wait while the worker is busy (one more when it is idle: it takes it at once) */
    if (w->stop || w->n_waiting >= e->p.max_queue + !w->busy) {
        int waiting = w->n_waiting;
        pthread_mutex_unlock(&w->mu);
        return ft_error(FT_ERR_BUSY, "model '%s': %d requests are waiting (max_queue %d)", name, waiting, e->p.max_queue);
    }
    if (w->tail) w->tail->next = j;
    else w->head = j;
    w->tail = j;
    w->n_waiting++;
    pthread_cond_signal(&w->cv);
    while (!j->finished) pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (j->status < 0) return ft_error(j->status, "%s", j->error);
    return FT_OK;
}

/* the common part of predict and embed: model lookup, tokenising, the job */
static int encoder_call(ft_engine *e, const char *model, const char *const *texts, int n, enc_job *j, int *n_tokens, int *n_unknown) {
    if (!e || !texts || n <= 0) return ft_error(FT_ERR_INVALID, "engine: no texts");
    for (int i = 0; i < n; i++) if (!texts[i]) return ft_error(FT_ERR_INVALID, "engine: text %d is NULL", i);
    int rc;
    ft__eng_entry *t = ft__eng_acquire(e, model, 1, &rc);
    if (!t) return rc;
    ft__eng_entry *m = ft__eng_model_of(t);
    if (m->kind != FT_ENGINE_ENCODER) rc = ft_error(FT_ERR_INVALID, "'%s' is a generator: %s an encoder", model, j->embed ? "embeddings need" : "predict needs");
    else if (!j->embed && ft__eng_embedding_only(t))
        rc = ft_error(FT_ERR_INVALID, "model '%s' has no trained task head (its checkpoint holds none): it serves embeddings only", model);
    if (rc == FT_OK && j->heads && !m->mt) rc = ft_error(FT_ERR_INVALID, "'%s' is not a multi-task model: it has one head", model);
    if (rc == FT_OK && j->heads) j->heads = ft_multitask_count(m->mt);
    j->ad = t->ad;
    j->labels = (const char *const *)t->labels;
    j->n = n;
    j->in = rc == FT_OK ? calloc((size_t)n, sizeof *j->in) : NULL;
    if (rc == FT_OK && !j->in) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    int max_len = rc == FT_OK ? ft__eng_encoder_max_len(m) : 0, prepared = 0;
    ft_encoder_task task = j->embed || rc < 0 ? FT_TASK_AUTO : ft_encoder_get_task(m->em);
    for (; rc == FT_OK && prepared < n; prepared++)
        rc = ft__pred_prepare(&j->in[prepared], m->em, task, m->tok, texts[prepared], NULL, max_len);
    if (rc == FT_OK && j->embed) {
        j->dim = ft_encoder_get_config(m->em)->n_embd;
        if (!(j->emb = malloc(sizeof(float) * (size_t)n * (size_t)j->dim))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    if (rc == FT_OK) rc = run_job(e, m->enc, j, model);
    for (int i = 0; rc == FT_OK && i < n; i++) {
        if (n_tokens) n_tokens[i] = j->in[i].n;
        if (n_unknown) n_unknown[i] = j->in[i].n_unknown;
    }
    for (int i = 0; j->in && i < prepared; i++) ft__pred_input_free(&j->in[i]);
    free(j->in);
    ft__eng_release(e, t, 1);
    return rc;
}

int ft_engine_predict(ft_engine *e, const char *model, const char *const *texts, int n, ft_prediction *preds,
                      int *n_tokens, int *n_unknown) {
    if (preds && n > 0) memset(preds, 0, sizeof *preds * (size_t)n);
    if (!preds) return ft_error(FT_ERR_INVALID, "engine: no room for the predictions");
    enc_job j;
    memset(&j, 0, sizeof j);
    j.preds = preds;
    int rc = encoder_call(e, model, texts, n, &j, n_tokens, n_unknown);
    if (rc < 0) for (int i = 0; i < n; i++) ft_prediction_free(&preds[i]);
    return rc;
}

int ft_engine_model_heads(ft_engine *e, const char *model, char (*names)[64], int cap) {
    int rc;
    ft__eng_entry *t = ft__eng_acquire(e, model, 0, &rc);
    if (!t) return rc;
    ft__eng_entry *m = ft__eng_model_of(t);
    int H = m->mt ? ft_multitask_count(m->mt) : 0;
    for (int h = 0; h < H && h < cap; h++) snprintf(names[h], 64, "%s", ft_multitask_name(m->mt, h));
    ft__eng_release(e, t, 0);
    return H;
}

int ft_engine_predict_heads(ft_engine *e, const char *model, const char *const *texts, int n, ft_prediction *preds,
                            int *n_tokens, int *n_unknown) {
    char names[FT_MULTITASK_MAX][64];
    int H = ft_engine_model_heads(e, model, names, FT_MULTITASK_MAX);
    if (H < 0) return H;
    if (H == 0) return ft_error(FT_ERR_INVALID, "'%s' is not a multi-task model: it has one head", model);
    if (!preds || n <= 0) return ft_error(FT_ERR_INVALID, "engine: no texts");
    memset(preds, 0, sizeof *preds * (size_t)n * (size_t)H);
    enc_job j;
    memset(&j, 0, sizeof j);
    j.preds = preds;
    j.heads = 1;   /* every head: the count is set once the model is held */
    int rc = encoder_call(e, model, texts, n, &j, n_tokens, n_unknown);
    if (rc == FT_OK && j.heads != H) rc = ft_error(FT_ERR_BUSY, "'%s' was reloaded with another set of heads: retry", model);
    if (rc < 0) for (int i = 0; i < n * H; i++) ft_prediction_free(&preds[i]);
    return rc;
}

int ft_engine_embed(ft_engine *e, const char *model, const char *const *texts, int n, float **out, int *dim, int *n_tokens) {
    *out = NULL;
    *dim = 0;
    enc_job j;
    memset(&j, 0, sizeof j);
    j.embed = 1;
    int rc = encoder_call(e, model, texts, n, &j, n_tokens, NULL);
    if (rc < 0) { free(j.emb); return rc; }
    *out = j.emb;
    *dim = j.dim;
    return FT_OK;
}
