/* server.h — the HTTP server of `finetune serve`: an OpenAI-compatible API, a classification API and
 * run-time adapter management over a serving engine (serve.h), as a library object a C program embeds.
 *
 *   ft_engine *e;  ft_engine_create(&e, NULL);
 *   ft_engine_load_model(e, "stories", "models/stories260K");
 *   ft_server_params sp = ft_server_default_params();      // 127.0.0.1, port 8080, no key
 *   sp.port = 0;                                            // 0: pick a free port
 *   ft_server *s;
 *   if (ft_server_start(&s, e, &sp) < 0) { fprintf(stderr, "%s\n", ft_last_error()); ... }
 *   printf("http://127.0.0.1:%d/v1\n", ft_server_port(s));
 *   ... (requests are served on the server's own threads) ...
 *   ft_server_stop(s, 30.0);   // stop accepting, drain in-flight requests (30 s at most), free
 *   ft_engine_free(e);
 *
 * Endpoints (README "Serving" has a curl example of each):
 *   GET  /health                      200 {"status":"ok"}; 503 {"status":"loading"} until ft_server_set_ready
 *   GET  /v1/models, /v1/models/{id}  OpenAI model objects (base models and adapters)
 *   POST /v1/completions, /v1/chat/completions   generation (stream: Server-Sent Events ending "data: [DONE]")
 *   POST /v1/embeddings               sentence embeddings of an encoder (float or base64)
 *   GET  /v1/adapters  POST /v1/adapters {"name","path","base"?}  DELETE /v1/adapters/{name}
 *   GET  /models, /models/{id}        the classification API: task, labels, base, adapter, loaded_at
 *   POST /models/{id}/predict         {"text" | "texts", "confidence_threshold"?} -> prediction(s)
 *   GET  /metrics, GET /              placeholders (404) for the monitoring layer
 * Every response carries X-Request-Id (the client's when it sent a sane one). Errors: OpenAI's shape
 * {"error": {"message", "type", "param", "code"}} under /v1, {"error", "message", "status_code",
 * "request_id"} elsewhere.
 *
 * Limits: bearer keys (Authorization: Bearer KEY, compared in constant time) on everything but /health;
 * request bodies above max_body_bytes get 413, a request line + headers above max_header_bytes 431; idle
 * connections (timeout_s) are closed by libmicrohttpd; at most max_connections at once; a per-key (or per-client-address
 * without keys) token bucket of rate_limit requests/s and burst 2 * rate_limit answers 429 with
 * Retry-After.
 *
 * Threads and ownership: the server runs libmicrohttpd with one thread per connection (a blocking
 * generation or a stream holds its connection's thread only). The engine is borrowed: it must outlive the
 * server; ft_server_stop drains it (ft_engine_drain), so the engine accepts no new requests afterwards.
 * The request log goes to params.log (a FILE the caller owns and keeps open until ft_server_stop returns)
 * under the server's lock. ft_server_port and ft_server_set_ready may be called from any thread;
 * ft_server_stop once. Nothing is printed on stdout and no signal handler is installed: the program
 * decides when to stop (`finetune serve` stops on SIGTERM / SIGINT). */
#ifndef FINETUNE_SERVER_H
#define FINETUNE_SERVER_H
#include <stddef.h>
#include <stdio.h>
#include "finetune/serve.h"

typedef struct ft_server ft_server;

typedef struct ft_server_params {
    const char *host;               /* address to bind (default "127.0.0.1"; "0.0.0.0" or "::" for all) */
    int         port;               /* default 8080; 0 = a free port (ft_server_port tells which) */
    const char *const *api_keys;    /* accepted bearer keys (copied); n_api_keys 0 = no authentication */
    int         n_api_keys;
    size_t      max_body_bytes;     /* default 1 MiB (413 above) */
    size_t      max_header_bytes;   /* request line + headers (default 16 KiB; 431 above) */
    int         max_connections;    /* default 256 */
    int         timeout_s;          /* a connection idle (or a request not arriving) this long is closed; default 60 */
    double      rate_limit;         /* requests/s per key or client (0 = off); burst 2x */
    FILE       *log;                /* one JSON line per request (NULL = none) */
    double      log_sample;         /* fraction of successful requests logged (default 1; errors always) */
    int         start_loading;      /* /health says "loading" (503) until ft_server_set_ready(s, 1) */
    double      keepalive_s;        /* a stream with nothing to send writes an SSE comment this often (default 2) */
    const char *fingerprint;        /* system_fingerprint of OpenAI responses (default "finetune") */
} ft_server_params;

ft_server_params ft_server_default_params(void);

/* Binds host:port and starts serving e. Errors: FT_ERR_IO when the address cannot be bound (in use,
 * no permission) or resolved, FT_ERR_INVALID for bad parameters. */
int  ft_server_start(ft_server **out, ft_engine *e, const ft_server_params *p);
/* The bound port (the one picked when params.port was 0). */
int  ft_server_port(const ft_server *s);
/* Ready = models loaded: /health answers 200 and model routes are served (503 "loading" before). */
void ft_server_set_ready(ft_server *s, int ready);
/* Stops: new requests get 503 and no new connections are accepted, the engine drains in-flight generations
 * for up to drain_s seconds (then cancels the rest), running streams end with their last chunks, then
 * the listener and every connection close and everything is freed. Returns the number of generations
 * cut at the deadline (0 = a clean drain). s NULL: no-op, 0. */
int  ft_server_stop(ft_server *s, double drain_s);
#endif
