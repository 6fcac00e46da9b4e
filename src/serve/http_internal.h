/* http_internal.h — what the files of the HTTP server (src/serve/http_*.c) share (internal: names ft__*).
 *
 * Life of a request (http_server.c):
 *   1. libmicrohttpd calls the access handler first with the headers: a request record (ft__http_req) is
 *      made, its request id chosen, authentication, draining and rate limit checked (a response may be
 *      queued right there: 401, 429, 503, 413 for a declared Content-Length above the limit);
 *   2. body bytes arrive in later calls and are collected (up to the limit);
 *   3. the last call dispatches on method and path to a handler (http_openai.c, http_generate.c,
 *      http_embed.c, http_classify.c, http_adapters.c), which queues exactly one response;
 *   4. when the response has been sent (or the connection dropped), the completion callback gathers the
 *      outcome (route, model, adapter, status, latency, token counts) into an ft__request_info and calls
 *      ft__serve_on_request_done — the one place a finished request is known (request log today, metrics
 *      and drift detection plug in there).
 * Handlers run on the connection's thread and may block (a non-streaming generation waits for the engine);
 * a streaming response is fed by the engine's callbacks through a buffer (http_generate.c). */
#ifndef FT_SERVE_HTTP_INTERNAL_H
#define FT_SERVE_HTTP_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/strbuf.h"
#include "finetune/chat.h"
#include "finetune/generate.h"
#include "finetune/server.h"
#include "finetune/tokenizer.h"
#include "serve/drift.h"
#include "serve/metrics.h"

#if MHD_VERSION < 0x00097002
typedef int ft__mhd_result;
#else
typedef enum MHD_Result ft__mhd_result;
#endif

typedef struct ft__rate_limiter ft__rate_limiter;

struct ft_server {
    ft_engine        *e;
    struct MHD_Daemon *d;
    ft_server_params  p;
    char              host[256];
    char            **keys;          /* [n_keys] accepted bearer keys */
    size_t           *key_len;       /* [n_keys] */
    int               n_keys;
    int               port;
    int               ready;         /* models loaded (atomic reads and writes) */
    int               draining;      /* ft_server_stop began (atomic) */
    pthread_mutex_t   mu;            /* the fields below, the log file, the rate limiter */
    pthread_cond_t    idle;          /* signalled when inflight drops */
    int               inflight;      /* requests begun and not completed */
    uint64_t          n_requests;    /* all requests begun (sampling, ids) */
    uint64_t          id_state;      /* splitmix64 state for request and completion ids */
    ft__rate_limiter *rl;
    char              fingerprint[64];
    ft__metrics      *metrics;       /* GET /metrics (http_monitor.c) */
    ft__drift        *drift;         /* drift detection per served name (http_monitor.c) */
};

/* which error shape a route answers with */
typedef enum ft__api { FT__API_PLAIN = 0, FT__API_OPENAI = 1, FT__API_CLASSIFY = 2 } ft__api;

typedef struct ft__gen_job ft__gen_job;

typedef struct ft__http_req {
    ft_server             *s;
    struct MHD_Connection *conn;
    char      id[72];            /* request id (X-Request-Id) */
    char      method[16];
    char      path[256];         /* URL path (truncated for the log) */
    char      client[64];        /* the peer's address */
    double    t0;                /* monotonic seconds at the first call */
    double    wall0;             /* unix seconds at the first call */
    ft__sb    body;
    int       body_too_big;
    int       responded;         /* a response has been queued */
    int       counted;           /* counted in s->inflight */
    ft__api   api;
    /* the outcome, for ft__serve_on_request_done */
    const char *route;           /* static route template ("/v1/chat/completions", "/models/{id}/predict") */
    char      model[128];        /* the base model the request ran on ("" none) */
    char      adapter[128];      /* the adapter it ran with ("" none) */
    int       status;            /* HTTP status sent */
    long      prompt_tokens, completion_tokens;
    long      unknown_tokens;    /* input tokens that are the tokenizer's unknown token */
    double    ttft_s;            /* generation: seconds from the first call to the first token (< 0: none) */
    int       n_predictions;     /* classification: texts predicted, their confidence and label (malloc'd) */
    float    *confidences;
    int      *labels;
    const char *error_code;      /* short machine code of an error response (static), NULL on success */
    int       retry_after;       /* > 0: a Retry-After header (seconds) on the response */
    const char *allow;           /* Allow header on a 405 */
    ft__gen_job *job;            /* a streaming generation: its token counts are read at completion */
} ft__http_req;

/* What the completion hook gets about one finished request (strings valid during the call). */
typedef struct ft__request_info {
    const char *request_id, *method, *route, *path, *model, *adapter, *client, *error_code;
    int    status;
    double latency_ms;
    double start_time;           /* unix seconds */
    long   prompt_tokens, completion_tokens;
    long   unknown_tokens;       /* input tokens that are the tokenizer's unknown token (drift) */
    double ttft_ms;              /* generations: request received .. first token; < 0 otherwise */
    int    n_predictions;        /* classification (task classify): per text its confidence and label index */
    const float *confidences;    /* [n_predictions] */
    const int   *labels;         /* [n_predictions] */
    int    streamed;
    int    client_closed;        /* the connection ended before the response was complete */
} ft__request_info;

/* The single hook where every finished request ends (http_log.c): writes the JSON request-log line
 * (sampled; errors always). The monitoring layer adds its counters and histograms here. */
void ft__serve_on_request_done(ft_server *s, const ft__request_info *info);

/* ---- monitoring (http_monitor.c): metrics, drift detection, GET /metrics and the page at GET / ---- */
int  ft__monitor_start(ft_server *s);            /* creates s->metrics and s->drift, learns the loaded names */
void ft__monitor_stop(ft_server *s);
/* Learns the names of the models and adapters loaded now (labels of the metrics); after loads. */
void ft__monitor_sync_names(ft_server *s);
/* Counts a finished request in the metrics; a successful generation or prediction also feeds drift detection. */
void ft__monitor_request_done(ft_server *s, const ft__request_info *info);
ft__mhd_result ft__http_metrics(ft__http_req *r);  /* GET /metrics: Prometheus text format 0.0.4 */
ft__mhd_result ft__http_page(ft__http_req *r);     /* GET /: the web page (src/serve/web/index.html) */

/* ---- responses (http_response.c); each returns what the access handler returns ---- */
/* Sends body (consumed: deleted here) as application/json with the request's status and headers. */
ft__mhd_result ft__http_send_json(ft__http_req *r, int status, cJSON *body);
/* Sends {"object": "list", "data": [object(e) for each loaded model and adapter (adapters only: only those)]}. */
ft__mhd_result ft__http_send_entry_list(ft__http_req *r, int adapters_only, cJSON *(*object)(const ft_engine_entry *e));
/* Sends n bytes of text (copied) with a content type. */
ft__mhd_result ft__http_send_text(ft__http_req *r, int status, const char *content_type, const char *text, size_t n);
/* An error in the shape of the request's API. code: a short machine code ("invalid_request_error" family
 * codes under /v1: "model_not_found", "invalid_api_key", ...); param: the offending field or NULL. */
ft__mhd_result ft__http_error(ft__http_req *r, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* An engine status (with ft_last_error() as the message) mapped to an HTTP error: NOT_FOUND 404,
 * INVALID / RANGE / FORMAT 400 (422 under the classification API), BUSY 503, else 500. */
ft__mhd_result ft__http_engine_error(ft__http_req *r, int status, const char *param);
/* Adds X-Request-Id and the request's extra headers to resp, queues it, records the status. */
ft__mhd_result ft__http_queue(ft__http_req *r, int status, struct MHD_Response *resp);

/* ---- JSON input checks (http_json.c); messages name the field ---- */
typedef struct ft__jerr {
    char msg[320];
    const char *param;           /* the field (static or the key given) */
} ft__jerr;
/* Parses a request body: not UTF-8, not JSON, or not an object -> -1 with a message. */
int ft__json_body(const char *body, size_t n, cJSON **out, ft__jerr *err);
/* Strict getters: absent or null -> def, 0; wrong type or range -> -1 with "'key' must be ...". */
int ft__jv_int(const cJSON *o, const char *key, long lo, long hi, long def, long *out, ft__jerr *err);
int ft__jv_num(const cJSON *o, const char *key, double lo, double hi, double def, double *out, ft__jerr *err);
int ft__jv_bool(const cJSON *o, const char *key, int def, int *out, ft__jerr *err);
/* A string; required: absent is an error; nonempty: "" is an error. */
int ft__jv_str(const cJSON *o, const char *key, int required, int nonempty, const char **out, ft__jerr *err);
/* Rejects keys of o not in the NULL-terminated list known (a typo should not be silently ignored), with
 * the message "unknown field 'x'"; skip_null: a key whose value is null is let through (messages echoed
 * back by clients carry "tool_calls": null and the like). */
int ft__jv_known(const cJSON *o, const char *const *known, int skip_null, ft__jerr *err);
/* 1 when s[0, n) is valid UTF-8 (no overlongs, surrogates, or code points above U+10FFFF). */
int ft__utf8_valid(const char *s, size_t n);
/* Appends s[0, n) to b with invalid UTF-8 bytes replaced by U+FFFD. */
void ft__utf8_sanitize(ft__sb *b, const char *s, size_t n);
/* A float as the double with its shortest decimal form (7 significant digits), so JSON shows 0.5048734
 * rather than 0.50487339496612549. */
double ft__http_f32(float x);
/* A safe model / adapter name: 1..127 of [A-Za-z0-9._:-]. */
int ft__name_valid(const char *s);

/* ---- handlers (each queues one response) ---- */
ft__mhd_result ft__http_models_list(ft__http_req *r);                           /* GET /v1/models */
ft__mhd_result ft__http_models_get(ft__http_req *r, const char *id);            /* GET /v1/models/{id} */
ft__mhd_result ft__http_completions(ft__http_req *r, const cJSON *body, int chat); /* POST /v1/(chat/)completions */
ft__mhd_result ft__http_embeddings(ft__http_req *r, const cJSON *body);         /* POST /v1/embeddings */
ft__mhd_result ft__http_cls_models(ft__http_req *r);                            /* GET /models */
ft__mhd_result ft__http_cls_model(ft__http_req *r, const char *id);             /* GET /models/{id} */
ft__mhd_result ft__http_cls_predict(ft__http_req *r, const char *id, const cJSON *body); /* POST /models/{id}/predict */
ft__mhd_result ft__http_adapters_list(ft__http_req *r);                         /* GET /v1/adapters */
ft__mhd_result ft__http_adapters_load(ft__http_req *r, const cJSON *body);      /* POST /v1/adapters */
ft__mhd_result ft__http_adapters_delete(ft__http_req *r, const char *name);     /* DELETE /v1/adapters/{name} */

/* token-classification words and tags -> {"entities": [...], "tokens": [...]} added to o (http_classify.c) */
struct ft_prediction;
void ft__http_entities(cJSON *o, const char *text, const struct ft_prediction *p);

/* ---- generation jobs (http_generate.c) ---- */
/* A parsed /v1/completions or /v1/chat/completions request (http_openai.c fills it, owns its strings). */
#define FT__MAX_STOPS 24
typedef struct ft__gen_spec {
    int   chat;
    char  model[128];            /* the name requested (a model or an adapter) */
    int   stream, include_usage;
    int   n;                     /* samples per prompt */
    int   n_prompts;             /* completions: prompts in the batch; chat: 1 */
    char **prompts;              /* [n_prompts] text, or NULL entries where ids are given */
    int  **prompt_ids;           /* [n_prompts] token ids or NULL */
    int   *n_prompt_ids;         /* [n_prompts] */
    ft_chat_msg *msgs;           /* chat with the model's template: [n_msgs] (strings in owned) */
    int   n_msgs;
    int   strip_space;           /* chat without a template: drop the space the model writes after "Assistant:" */
    ft_generate_params gp;       /* max_new_tokens, temperature, top_k, top_p, repetition_penalty, stop */
    const char *stops[FT__MAX_STOPS];
    int   seed_given;
    uint64_t seed;
    int   logprobs;              /* -1: none; k >= 0: the chosen token's logprob and the k most likely */
    char **owned;                /* strings the spec owns (freed by ft__gen_spec_free) */
    int   n_owned, cap_owned;
} ft__gen_spec;
void ft__gen_spec_free(ft__gen_spec *g);
/* Runs a parsed request: submits n_prompts * n engine requests and answers (JSON, or an SSE stream). */
ft__mhd_result ft__http_generate(ft__http_req *r, ft__gen_spec *g);
/* The streaming job's token counts and first-token time at completion (the hook reads them); drops the
 * request's reference. */
void ft__gen_job_finish_request(ft__gen_job *j, ft__http_req *r);

/* ---- helpers (http_server.c) ---- */
/* Sets r->model / r->adapter from an engine entry name (adapter -> its base). */
void ft__http_note_model(ft__http_req *r, const char *name);
/* A random 64-bit number (seeds of requests that give none). */
uint64_t ft__http_random(ft_server *s);
/* A fresh random id: prefix + 24 hex digits into buf. */
void ft__http_new_id(ft_server *s, const char *prefix, char *buf, size_t cap);
/* 1 when the client has closed its connection (checked without blocking). */
int  ft__http_client_gone(ft__http_req *r);

/* ---- rate limiting (http_ratelimit.c): token buckets by key ---- */
int  ft__rate_limiter_create(ft__rate_limiter **out, double rate, double burst);
/* Takes one token of bucket `key` at monotonic time now: 0 = allowed, else the seconds to wait (>= 1). */
int  ft__rate_limiter_take(ft__rate_limiter *rl, const char *key, double now);
void ft__rate_limiter_free(ft__rate_limiter *rl);
#endif
