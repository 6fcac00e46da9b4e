/* metrics.h — what `GET /metrics` shows: the server's Prometheus series (internal: not installed).
 *
 *     ft__metrics *m;  ft__metrics_create(&m);
 *     ft_engine_entry *v; int n;  ft_engine_list(e, &v, &n);
 *     ft__metrics_set_names(m, v, n);  ft_engine_entries_free(v, n);   // at start and after adapter changes
 *     ... for each finished request (any thread):
 *     ft__request_obs o = {.route = "/v1/completions", .model = "stories", .status = 200, .latency_s = 0.12,
 *                          .ttft_s = 0.01, .prompt_tokens = 5, .generated_tokens = 32};
 *     ft__metrics_observe(m, &o);
 *     ... on GET /metrics:
 *     ft_engine_stats st;  ft_engine_get_stats(e, &st);
 *     ft__sb out = {0};  ft__metrics_render(m, &st, drift, &out);   // text/plain; version=0.0.4
 *     ft__metrics_free(m);
 *
 * Series (every name in the README):
 *   finetune_requests_total{route,status}                 counter   requests answered
 *   finetune_request_duration_seconds{route}              histogram request latency
 *   finetune_time_to_first_token_seconds{model}           histogram generation requests: first token ready
 *   finetune_prompt_tokens_total{model,adapter}           counter
 *   finetune_generated_tokens_total{model,adapter}        counter
 *   finetune_model_requests_total{model,adapter}          counter   requests per model and adapter
 *   finetune_generated_tokens_per_second                  gauge     over the last 10 s (sliding window)
 *   finetune_queue_depth, finetune_active_slots, finetune_slots, finetune_batch_rows_mean   gauges (engine)
 *   finetune_decode_steps_total, finetune_encoder_batches_total, finetune_encoder_texts_total  counters (engine)
 *   process_resident_memory_bytes (/proc/self/statm), process_virtual_memory_bytes,
 *   process_start_time_seconds, process_cpu_seconds_total
 *   finetune_drift_statistic / _alarm / _alarms_total     (drift.h)
 *
 * Bounded label cardinality: `route` is one of the server's route templates (a request path is mapped to
 * its template by ft__metrics_route_label, anything else is "other"); `status` a 3-digit code; `model` and
 * `adapter` only names loaded at some point (ft__metrics_set_names: names once loaded stay known, so the
 * counters of an unloaded adapter keep their series), anything else "unknown". A request naming an
 * adapter counts under model = its base, adapter = its name; adapter = "" for a base model.
 *
 * Thread safety: every function may be called concurrently, except create/free. */
#ifndef FT_SERVE_METRICS_H
#define FT_SERVE_METRICS_H
#include "core/strbuf.h"
#include "finetune/serve.h"
#include "serve/drift.h"

typedef struct ft__metrics ft__metrics;

typedef struct ft__request_obs {
    const char *route;          /* a route template ("/models/{id}/predict") or the raw path */
    const char *model;          /* the model or adapter the request named; NULL: none */
    const char *adapter;        /* the adapter when the caller has resolved it (model = its base); else NULL */
    int    status;              /* HTTP status answered */
    double latency_s;           /* request received .. answer done */
    double ttft_s;              /* generation: request received .. first token; < 0: not a generation */
    long   prompt_tokens;       /* prompt / input tokens (0 if none) */
    long   generated_tokens;    /* tokens generated (0 if none) */
} ft__request_obs;

int  ft__metrics_create(ft__metrics **out);
void ft__metrics_free(ft__metrics *m);

/* Adds the names of v[n] (models and adapters, with each adapter's base) to the known names. */
int  ft__metrics_set_names(ft__metrics *m, const ft_engine_entry *v, int n);
/* Records one finished request. */
void ft__metrics_observe(ft__metrics *m, const ft__request_obs *o);
/* Appends every series; st (may be NULL) gives the engine gauges, drift (may be NULL) the drift series. */
int  ft__metrics_render(ft__metrics *m, const ft_engine_stats *st, ft__drift *drift, ft__sb *out);

/* The route template of a request path (query string ignored): "/", "/health", "/metrics", "/v1/models",
 * "/v1/models/{id}", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/adapters",
 * "/v1/adapters/{name}", "/models", "/models/{id}", "/models/{id}/predict"; "other" for anything else.
 * A template given as it is maps to itself, and so do the server's labels of requests that ended before routing:
 * "(auth)", "(loading)", "(rate limit)", "(too large)", "(draining)", "(unknown)", "(none)". Static string. */
const char *ft__metrics_route_label(const char *path);
/* The generated tokens per second over the last `window_s` seconds (<= 60) as the metrics saw them. */
double ft__metrics_tokens_per_second(ft__metrics *m, double window_s);
#endif
