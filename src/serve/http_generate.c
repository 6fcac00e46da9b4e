/* http_generate.c — running a completion request on the engine and answering it, as one JSON response
 * or as a Server-Sent Events stream in OpenAI's chunk shape.
 *
 * A job holds n_prompts x n choices, each one engine request (ft_engine_submit) whose callbacks run on the
 * engine's scheduler thread. The job is shared by three parties, each holding a reference: the engine (one
 * per request still running, dropped in on_done), the response (a stream's content reader, dropped when
 * libmicrohttpd frees the response) and the request record (dropped at completion, after the hook has read
 * the token counts). Everything in the job is guarded by its mutex.
 *
 * Streaming: on_token appends "data: {chunk}\n\n" to the job's output buffer and signals; the content
 * reader (the connection's thread) waits on the condition variable and hands the bytes to libmicrohttpd.
 * With nothing to send for keepalive_s it writes an SSE comment line (":\n\n"), so a client that has gone
 * is noticed by the failing write: libmicrohttpd then frees the response and its free callback cancels the
 * engine requests still running. A blocking request polls its socket while it waits, to the same effect.
 * The stream ends with each choice's finish_reason chunk, the usage chunk (stream_options.include_usage)
 * and "data: [DONE]". */
#include "serve/http_internal.h"
#include "finetune/status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gen_choice {
    ft__gen_job *job;
    int      index;           /* the OpenAI choice index: prompt * n + sample */
    int      prompt, sample;
    uint64_t engine_id;
    int      running;         /* submitted and on_done not yet called */
    int      status;          /* the engine's result status */
    char     finish[16];
    char     err[256];
    char    *text;            /* the final text (blocking responses) */
    int      n_tokens, n_prompt, n_unknown;
    int      prev_id;         /* the previous generated token (-1 first): token texts for logprobs */
    size_t   text_off;        /* bytes of text generated so far (completions' text_offset) */
    int      strip_space;     /* drop one leading space of the text (chat without a template) */
    int      strip_pending;   /* streaming: the first non-empty piece is still to come */
    cJSON   *lp;              /* blocking logprobs: chat: [entries]; completions: {tokens, token_logprobs, top_logprobs, text_offset} */
} gen_choice;

struct ft__gen_job {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int        refs;
    ft_server *s;
    const ft_tokenizer *tok;  /* for logprob token texts (may be NULL) */
    int        chat, stream, include_usage, logprobs;
    int        n;
    gen_choice *ch;           /* [n] */
    int        n_open;        /* choices still running */
    char       id[64];
    char       model[128];
    long       created;
    ft__sb     out;           /* stream bytes not yet handed to libmicrohttpd: [out_off, out.n) */
    size_t     out_off;
    int        ended;         /* "data: [DONE]" appended */
    int        gone;          /* the client left: cancel */
    int        aborted;       /* submission failed part way */
    double     t_first;       /* monotonic time of the first token (0: none yet) */
};

static void job_release(ft__gen_job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    for (int i = 0; i < j->n; i++) {
        free(j->ch[i].text);
        cJSON_Delete(j->ch[i].lp);
    }
    free(j->ch);
    ft__sb_free(&j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* the text of one token for logprobs: valid UTF-8 (a byte token becomes U+FFFD) and its raw bytes */
static void token_fields(const ft__gen_job *j, int prev, int id, cJSON *into, const char *text_key, int with_bytes) {
    char buf[256];
    int n = j->tok ? ft_tokenizer_decode_piece(j->tok, prev, id, buf, sizeof buf) : -1;
    if (n < 0) n = snprintf(buf, sizeof buf, "<%d>", id);
    ft__sb b = {0};
    ft__utf8_sanitize(&b, buf, (size_t)n);
    cJSON_AddStringToObject(into, text_key, b.p ? b.p : "");
    ft__sb_free(&b);
    if (with_bytes) {
        cJSON *a = cJSON_AddArrayToObject(into, "bytes");
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)buf[i]));
    }
}

static cJSON *token_piece_string(const ft__gen_job *j, int prev, int id) {
    cJSON *tmp = cJSON_CreateObject();
    token_fields(j, prev, id, tmp, "t", 0);
    cJSON *s = cJSON_DetachItemFromObject(tmp, "t");
    cJSON_Delete(tmp);
    return s;
}

/* chat: {"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]} */
static cJSON *chat_lp_entry(const ft__gen_job *j, const gen_choice *c, const ft_gen_token *t) {
    cJSON *e = cJSON_CreateObject();
    token_fields(j, c->prev_id, t->id, e, "token", 1);
    cJSON_AddNumberToObject(e, "logprob", ft__http_f32(t->logprob));
    cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
    int k = t->n_top < j->logprobs ? t->n_top : j->logprobs;
    for (int i = 0; i < k; i++) {
        cJSON *x = cJSON_CreateObject();
        token_fields(j, c->prev_id, t->top_ids[i], x, "token", 1);
        cJSON_AddNumberToObject(x, "logprob", ft__http_f32(t->top_logprobs[i]));
        cJSON_AddItemToArray(top, x);
    }
    return e;
}

/* completions: appends one token to {tokens, token_logprobs, top_logprobs, text_offset} */
static void completion_lp_add(const ft__gen_job *j, const gen_choice *c, const ft_gen_token *t, cJSON *lp) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(lp, "tokens"), token_piece_string(j, c->prev_id, t->id));
    cJSON_AddItemToArray(cJSON_GetObjectItem(lp, "token_logprobs"), cJSON_CreateNumber(ft__http_f32(t->logprob)));
    cJSON *top = cJSON_CreateObject();
    int k = t->n_top < j->logprobs ? t->n_top : j->logprobs;
    for (int i = 0; i < k; i++) {
        cJSON *s = token_piece_string(j, c->prev_id, t->top_ids[i]);
        if (!cJSON_GetObjectItemCaseSensitive(top, s->valuestring))
            cJSON_AddNumberToObject(top, s->valuestring, ft__http_f32(t->top_logprobs[i]));
        cJSON_Delete(s);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItem(lp, "top_logprobs"), top);
    cJSON_AddItemToArray(cJSON_GetObjectItem(lp, "text_offset"), cJSON_CreateNumber((double)c->text_off));
}

static cJSON *completion_lp_new(void) {
    cJSON *lp = cJSON_CreateObject();
    cJSON_AddArrayToObject(lp, "tokens");
    cJSON_AddArrayToObject(lp, "token_logprobs");
    cJSON_AddArrayToObject(lp, "top_logprobs");
    cJSON_AddArrayToObject(lp, "text_offset");
    return lp;
}

/* ---- stream chunks ---- */

static cJSON *chunk_new(const ft__gen_job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->chat ? "chat.completion.chunk" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model);
    cJSON_AddStringToObject(o, "system_fingerprint", j->s->fingerprint);
    cJSON_AddArrayToObject(o, "choices");
    if (j->include_usage) cJSON_AddNullToObject(o, "usage");
    return o;
}

/* one choice of a chunk: chat {"index", "delta": {...}, "logprobs", "finish_reason"};
 * completions {"index", "text", "logprobs", "finish_reason"} */
static cJSON *chunk_choice(cJSON *chunk, const ft__gen_job *j, int index, const char *text, size_t n, const char *role,
                           cJSON *logprobs, const char *finish) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", index);
    ft__sb b = {0};
    if (text) ft__utf8_sanitize(&b, text, n);
    if (j->chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", role);
        if (text) cJSON_AddStringToObject(d, "content", b.p ? b.p : "");
    } else
        cJSON_AddStringToObject(c, "text", b.p ? b.p : "");
    ft__sb_free(&b);
    if (logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs); else cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish); else cJSON_AddNullToObject(c, "finish_reason");
    cJSON_AddItemToArray(cJSON_GetObjectItem(chunk, "choices"), c);
    return c;
}

/* appends "data: <json>\n\n" (consumes o); the caller holds the lock */
static void emit(ft__gen_job *j, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return;
    ft__sb_puts(&j->out, "data: ");
    ft__sb_puts(&j->out, s);
    ft__sb_puts(&j->out, "\n\n");
    free(s);
    pthread_cond_broadcast(&j->cv);
}

static void usage_object(cJSON *o, const ft__gen_job *j) {
    long p = 0, c = 0;
    for (int i = 0; i < j->n; i++) {
        if (j->ch[i].sample == 0) p += j->ch[i].n_prompt;   /* a prompt counts once, whatever n */
        c += j->ch[i].n_tokens;
    }
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)p);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)c);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(p + c));
    cJSON_DeleteItemFromObject(o, "usage");
    cJSON_AddItemToObject(o, "usage", u);
}

/* ---- engine callbacks (scheduler thread) ---- */

static int on_token(void *user, const ft_gen_token *t) {
    gen_choice *c = user;
    ft__gen_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    if (j->gone) { pthread_mutex_unlock(&j->mu); return 1; }
    const char *text = t->text ? t->text : "";
    size_t len = t->text ? t->len : 0;
    if (j->stream && c->strip_pending && len > 0) {
        if (text[0] == ' ') { text++; len--; }
        c->strip_pending = 0;
    }
    int is_token = t->id >= 0;   /* id -1: a last call handing out held-back text only */
    if (is_token) c->n_tokens++;
    if (is_token && j->t_first == 0) j->t_first = ft__now_mono();
    if (j->stream) {
        cJSON *lp = NULL;
        if (j->logprobs >= 0 && is_token) {
            if (j->chat) {
                lp = cJSON_CreateObject();
                cJSON *content = cJSON_AddArrayToObject(lp, "content");
                cJSON_AddItemToArray(content, chat_lp_entry(j, c, t));
            } else {
                lp = completion_lp_new();
                completion_lp_add(j, c, t, lp);
            }
        }
        if (len > 0 || lp) {
            cJSON *o = chunk_new(j);
            chunk_choice(o, j, c->index, text, len, NULL, lp, NULL);
            emit(j, o);
        }
    } else if (j->logprobs >= 0 && is_token) {
        if (j->chat) cJSON_AddItemToArray(c->lp, chat_lp_entry(j, c, t));
        else completion_lp_add(j, c, t, c->lp);
    }
    c->text_off += len;
    if (is_token) c->prev_id = t->id;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static void on_done(void *user, const ft_gen_result *res) {
    gen_choice *c = user;
    ft__gen_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    c->running = 0;
    c->status = res->status;
    c->n_tokens = res->n_tokens;
    c->n_prompt = res->n_prompt_tokens;
    const char *fr = res->finish_reason ? res->finish_reason : "stop";
    /* OpenAI knows "stop" and "length": a request cut by a drain or a cancel ended early, like "length" */
    if (strcmp(fr, "stop") != 0) fr = "length";
    snprintf(c->finish, sizeof c->finish, "%s", fr);
    c->n_unknown = res->n_unknown_tokens;
    if (res->status < 0 && res->status != FT_ERR_INTERRUPTED)
        snprintf(c->err, sizeof c->err, "%s", res->error[0] ? res->error : ft_strerror(res->status));
    if (!j->stream) {
        const char *text = res->text ? res->text : "";
        if (c->strip_space && text[0] == ' ') text++;
        c->text = strdup(text);
    } else if (!j->gone) {
        cJSON *o = chunk_new(j);
        if (res->status < 0 && res->status != FT_ERR_INTERRUPTED) {
            cJSON *e = cJSON_CreateObject();
            cJSON *er = cJSON_AddObjectToObject(e, "error");
            cJSON_AddStringToObject(er, "message", c->err[0] ? c->err : ft_strerror(res->status));
            cJSON_AddStringToObject(er, "type", "server_error");
            cJSON_AddNullToObject(er, "param");
            cJSON_AddNullToObject(er, "code");
            emit(j, e);
        }
        chunk_choice(o, j, c->index, j->chat ? NULL : "", 0, NULL, NULL, c->finish);
        emit(j, o);
    }
    if (--j->n_open == 0 && j->stream && !j->aborted) {
        if (j->include_usage) {
            cJSON *o = chunk_new(j);
            usage_object(o, j);
            emit(j, o);
        }
        ft__sb_puts(&j->out, "data: [DONE]\n\n");
        j->ended = 1;
    }
    if (j->n_open == 0) j->ended = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
}

/* cancels every choice still running (without the lock: the engine may call on_done at once) */
static void cancel_running(ft__gen_job *j) {
    uint64_t ids[64];
    int k = 0;
    pthread_mutex_lock(&j->mu);
    j->gone = 1;
    for (int i = 0; i < j->n && k < 64; i++)
        if (j->ch[i].running && j->ch[i].engine_id) ids[k++] = j->ch[i].engine_id;
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < k; i++) ft_engine_cancel(j->s->e, ids[i]);
}

/* waits for every choice; cancels them if the client goes away */
static void wait_all(ft__gen_job *j, ft__http_req *r) {
    pthread_mutex_lock(&j->mu);
    while (j->n_open > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int w = pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (w == ETIMEDOUT && !j->gone && r && ft__http_client_gone(r)) {
            pthread_mutex_unlock(&j->mu);
            cancel_running(j);
            pthread_mutex_lock(&j->mu);
        }
    }
    pthread_mutex_unlock(&j->mu);
}

/* ---- the stream response ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    ft__gen_job *j = cls;
    pthread_mutex_lock(&j->mu);
    int keepalive = 0;
    while (j->out_off == j->out.n && !j->ended) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double k = j->s->p.keepalive_s;
        ts.tv_sec += (time_t)k;
        ts.tv_nsec += (long)((k - (double)(time_t)k) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT && j->out_off == j->out.n && !j->ended) {
            keepalive = 1;
            break;
        }
    }
    ssize_t n;
    if (keepalive) {
        /* an SSE comment: ignored by clients, and a write that fails when the client has gone */
        n = max >= 3 ? 3 : 0;
        memcpy(buf, ":\n\n", (size_t)n);
    } else if (j->out_off < j->out.n) {
        size_t k = j->out.n - j->out_off;
        if (k > max) k = max;
        memcpy(buf, j->out.p + j->out_off, k);
        j->out_off += k;
        if (j->out_off == j->out.n) { j->out.n = 0; j->out_off = 0; }
        n = (ssize_t)k;
    } else
        n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_unlock(&j->mu);
    return n;
}

static void stream_free(void *cls) {
    ft__gen_job *j = cls;
    pthread_mutex_lock(&j->mu);
    int open = j->n_open > 0;
    pthread_mutex_unlock(&j->mu);
    if (open) cancel_running(j);   /* the response ended before the generations: the client left */
    job_release(j);
}

/* token counts and the first-token time of a job into the request record; the caller holds the lock */
static void note_counts(const ft__gen_job *j, ft__http_req *r) {
    long p = 0, c = 0, u = 0;
    for (int i = 0; i < j->n; i++) {
        if (j->ch[i].sample == 0) { p += j->ch[i].n_prompt; u += j->ch[i].n_unknown; }  /* a prompt counts once */
        c += j->ch[i].n_tokens;
    }
    r->prompt_tokens = p;
    r->completion_tokens = c;
    r->unknown_tokens = u;
    r->ttft_s = j->t_first > 0 ? j->t_first - r->t0 : -1;
}

void ft__gen_job_finish_request(ft__gen_job *j, ft__http_req *r) {
    pthread_mutex_lock(&j->mu);
    note_counts(j, r);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
}

/* ---- the blocking response ---- */

static ft__mhd_result send_result(ft__http_req *r, ft__gen_job *j) {
    for (int i = 0; i < j->n; i++)
        if (j->ch[i].status < 0 && j->ch[i].status != FT_ERR_INTERRUPTED)
            return ft__http_error(r, 500, "generation_failed", NULL, "generation failed: %s", j->ch[i].err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", j->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model);
    cJSON_AddStringToObject(o, "system_fingerprint", j->s->fingerprint);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < j->n; i++) {
        gen_choice *c = &j->ch[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "index", c->index);
        ft__sb b = {0};
        const char *t = c->text ? c->text : "";
        ft__utf8_sanitize(&b, t, strlen(t));
        if (j->chat) {
            cJSON *m = cJSON_AddObjectToObject(x, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", b.p ? b.p : "");
        } else
            cJSON_AddStringToObject(x, "text", b.p ? b.p : "");
        ft__sb_free(&b);
        if (c->lp) {
            if (j->chat) {
                cJSON *lp = cJSON_CreateObject();
                cJSON_AddItemToObject(lp, "content", c->lp);
                cJSON_AddItemToObject(x, "logprobs", lp);
            } else
                cJSON_AddItemToObject(x, "logprobs", c->lp);
            c->lp = NULL;
        } else
            cJSON_AddNullToObject(x, "logprobs");
        cJSON_AddStringToObject(x, "finish_reason", c->finish);
        cJSON_AddItemToArray(choices, x);
    }
    cJSON_AddNullToObject(o, "usage");
    usage_object(o, j);
    note_counts(j, r);   /* every engine callback has run: no lock needed */
    return ft__http_send_json(r, 200, o);
}

/* ---- running a request ---- */

ft__mhd_result ft__http_generate(ft__http_req *r, ft__gen_spec *g) {
    ft_server *s = r->s;
    int total = g->n_prompts * g->n;
    ft__gen_job *j = calloc(1, sizeof *j);
    gen_choice *ch = j ? calloc((size_t)total, sizeof *ch) : NULL;
    if (!j || !ch) { free(j); free(ch); return ft__http_error(r, 500, "internal_error", NULL, "out of memory"); }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->s = s;
    j->ch = ch;
    j->n = total;
    j->chat = g->chat;
    j->stream = g->stream;
    j->include_usage = g->include_usage;
    j->logprobs = g->logprobs;
    j->refs = 1;   /* the handler's, until the response owns it (stream) or it is answered */
    j->created = (long)time(NULL);
    snprintf(j->model, sizeof j->model, "%s", g->model);
    ft__http_new_id(s, g->chat ? "chatcmpl-" : "cmpl-", j->id, sizeof j->id);
    if (g->logprobs >= 0) j->tok = ft_engine_tokenizer(s->e, g->model);
    uint64_t seed = g->seed;
    if (!g->seed_given) seed = ft__http_random(s);
    for (int i = 0; i < total; i++) {
        ch[i].job = j;
        ch[i].index = i;
        ch[i].prompt = i / g->n;
        ch[i].sample = i % g->n;
        ch[i].prev_id = -1;
        ch[i].strip_space = ch[i].strip_pending = g->strip_space;
        snprintf(ch[i].finish, sizeof ch[i].finish, "stop");
        if (g->logprobs >= 0 && !g->stream) ch[i].lp = g->chat ? cJSON_CreateArray() : completion_lp_new();
    }
    if (j->stream && j->chat) {
        /* the first chunk of each choice announces the assistant role */
        for (int i = 0; i < total; i++) {
            cJSON *o = chunk_new(j);
            chunk_choice(o, j, i, "", 0, "assistant", NULL, NULL);
            pthread_mutex_lock(&j->mu);
            emit(j, o);
            pthread_mutex_unlock(&j->mu);
        }
    }

    int err = FT_OK;
    char errmsg[512] = "";
    for (int i = 0; i < total; i++) {
        ft_gen_request q = ft_gen_request_default();
        q.model = g->model;
        int p = ch[i].prompt;
        if (g->msgs) { q.messages = g->msgs; q.n_messages = g->n_msgs; }
        else if (g->prompt_ids[p]) { q.prompt_ids = g->prompt_ids[p]; q.n_prompt_ids = g->n_prompt_ids[p]; }
        else q.prompt = g->prompts[p];
        q.params = g->gp;
        q.params.seed = seed + (uint64_t)ch[i].sample;
        q.logprobs = g->logprobs < 0 ? 0 : g->logprobs < 1 ? 1 : g->logprobs;
        pthread_mutex_lock(&j->mu);
        j->refs++;
        j->n_open++;
        ch[i].running = 1;
        pthread_mutex_unlock(&j->mu);
        uint64_t id = 0;
        int rc = ft_engine_submit(s->e, &q, on_token, on_done, &ch[i], &id);
        pthread_mutex_lock(&j->mu);
        if (rc < 0) {
            j->refs--;
            j->n_open--;
            ch[i].running = 0;
            j->aborted = 1;
        } else if (ch[i].running)
            ch[i].engine_id = id;
        pthread_mutex_unlock(&j->mu);
        if (rc < 0) {
            err = rc;
            snprintf(errmsg, sizeof errmsg, "%s", ft_last_error());
            break;
        }
    }
    if (err < 0) {
        /* nothing was answered yet: stop what started, then answer the error */
        cancel_running(j);
        wait_all(j, NULL);
        job_release(j);
        ft_error(err, "%s", errmsg);
        return ft__http_engine_error(r, err, err == FT_ERR_NOT_FOUND ? "model" : NULL);
    }
    if (!j->stream) {
        wait_all(j, r);
        ft__mhd_result rc = send_result(r, j);
        job_release(j);
        return rc;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
    if (!resp) {
        cancel_running(j);
        job_release(j);
        return MHD_NO;
    }
    /* one reference for the request record (token counts at completion): the handler's becomes the response's */
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    r->job = j;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return ft__http_queue(r, 200, resp);
}
