/* http_server.c — the server object over libmicrohttpd: start / stop (drain), the life of a request
 * (authentication, rate limit, body limit, routing, completion hook) and small shared helpers. The
 * endpoints themselves are in http_openai.c, http_generate.c, http_embed.c, http_classify.c and
 * http_adapters.c. */
#include "serve/http_internal.h"
#include "core/hash.h"
#include "finetune/status.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

ft_server_params ft_server_default_params(void) {
    ft_server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8080;
    p.max_body_bytes = 1u << 20;
    p.max_header_bytes = 16u << 10;
    p.max_connections = 256;
    p.timeout_s = 60;
    p.log_sample = 1.0;
    p.keepalive_s = 2.0;
    p.fingerprint = "finetune";
    return p;
}

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t ft__http_random(ft_server *s) {
    pthread_mutex_lock(&s->mu);
    s->id_state += FT__GOLDEN_GAMMA;
    uint64_t v = ft__mix64(s->id_state);
    pthread_mutex_unlock(&s->mu);
    return v;
}

void ft__http_new_id(ft_server *s, const char *prefix, char *buf, size_t cap) {
    uint64_t a = ft__http_random(s), b = ft__http_random(s);
    snprintf(buf, cap, "%s%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b >> 32));
}

/* a client's X-Request-Id is echoed when it is 1..64 characters of [A-Za-z0-9._:-] */
static int request_id_sane(const char *v) {
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':'))
            return 0;
    }
    return 1;
}

int ft__http_client_gone(ft__http_req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    int fd = ci->connect_fd;
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return 1;
    if (p.revents & POLLIN) {
        char c;
        ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return k == 0;
    }
    return 0;
}

void ft__http_note_model(ft__http_req *r, const char *name) {
    ft_engine_entry *e = NULL;
    if (!name || ft_engine_find(r->s->e, name, &e) != FT_OK) {
        snprintf(r->model, sizeof r->model, "%s", name ? name : "");
        return;
    }
    if (e->is_adapter) {
        snprintf(r->model, sizeof r->model, "%s", e->base);
        snprintf(r->adapter, sizeof r->adapter, "%s", e->name);
    } else
        snprintf(r->model, sizeof r->model, "%s", e->name);
    ft_engine_entries_free(e, 1);
}

/* ---- authentication ---- */

/* constant time in the key's content: every byte of every accepted key is compared */
static int key_matches(const ft_server *s, const char *given, size_t n, int *which) {
    int found = 0;
    *which = -1;
    for (int k = 0; k < s->n_keys; k++) {
        size_t kl = s->key_len[k];
        unsigned char diff = (unsigned char)(n != kl);
        for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(s->keys[k][i] ^ (i < n ? given[i] : 0));
        int eq = diff == 0;
        if (eq && !found) *which = k;
        found |= eq;
    }
    return found;
}

/* ---- routing ---- */

static int path_is(const char *path, const char *p) { return strcmp(path, p) == 0; }
static int starts(const char *path, const char *p) { return strncmp(path, p, strlen(p)) == 0; }

static ft__mhd_result method_not_allowed(ft__http_req *r, const char *allow) {
    r->allow = allow;
    return ft__http_error(r, 405, "method_not_allowed", NULL, "%s %s is not supported (allowed: %s)", r->method, r->path, allow);
}

static ft__mhd_result with_body(ft__http_req *r, int kind, const char *id) {
    cJSON *body = NULL;
    ft__jerr err = {{0}, NULL};
    if (ft__json_body(r->body.p ? r->body.p : "", r->body.n, &body, &err) < 0)
        return ft__http_error(r, 400, r->api == FT__API_OPENAI ? "invalid_json" : "bad_request", NULL, "%s", err.msg);
    ft__mhd_result rc;
    switch (kind) {
    case 0: rc = ft__http_completions(r, body, 0); break;
    case 1: rc = ft__http_completions(r, body, 1); break;
    case 2: rc = ft__http_embeddings(r, body); break;
    case 3: rc = ft__http_adapters_load(r, body); break;
    default: rc = ft__http_cls_predict(r, id, body); break;
    }
    cJSON_Delete(body);
    return rc;
}

static ft__mhd_result dispatch(ft__http_req *r) {
    const char *p = r->path, *m = r->method;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    int del = strcmp(m, "DELETE") == 0;
    if (path_is(p, "/health")) {
        r->route = "/health";
        if (!get) return method_not_allowed(r, "GET");
        int ready = __atomic_load_n(&r->s->ready, __ATOMIC_ACQUIRE);
        int draining = __atomic_load_n(&r->s->draining, __ATOMIC_ACQUIRE);
        const char *st = draining ? "{\"status\":\"draining\"}" : ready ? "{\"status\":\"ok\"}" : "{\"status\":\"loading\"}";
        return ft__http_send_text(r, ready && !draining ? 200 : 503, "application/json", st, strlen(st));
    }
    if (path_is(p, "/metrics")) {
        r->route = "/metrics";
        return get ? ft__http_metrics(r) : method_not_allowed(r, "GET");
    }
    if (path_is(p, "/")) {
        r->route = "/";
        return get ? ft__http_page(r) : method_not_allowed(r, "GET");
    }
    int model_route = starts(p, "/v1/") || path_is(p, "/models") || starts(p, "/models/");
    if (model_route && !__atomic_load_n(&r->s->ready, __ATOMIC_ACQUIRE)) {
        r->route = "(loading)";
        r->retry_after = 1;
        return ft__http_error(r, 503, "loading", NULL, "the server is loading its models; retry shortly (GET /health says when it is ready)");
    }
    if (path_is(p, "/v1/models")) {
        r->route = "/v1/models";
        return get ? ft__http_models_list(r) : method_not_allowed(r, "GET");
    }
    if (starts(p, "/v1/models/")) {
        r->route = "/v1/models/{id}";
        return get ? ft__http_models_get(r, p + strlen("/v1/models/")) : method_not_allowed(r, "GET");
    }
    if (path_is(p, "/v1/completions")) {
        r->route = "/v1/completions";
        return post ? with_body(r, 0, NULL) : method_not_allowed(r, "POST");
    }
    if (path_is(p, "/v1/chat/completions")) {
        r->route = "/v1/chat/completions";
        return post ? with_body(r, 1, NULL) : method_not_allowed(r, "POST");
    }
    if (path_is(p, "/v1/embeddings")) {
        r->route = "/v1/embeddings";
        return post ? with_body(r, 2, NULL) : method_not_allowed(r, "POST");
    }
    if (path_is(p, "/v1/adapters")) {
        r->route = "/v1/adapters";
        if (get) return ft__http_adapters_list(r);
        return post ? with_body(r, 3, NULL) : method_not_allowed(r, "GET, POST");
    }
    if (starts(p, "/v1/adapters/")) {
        r->route = "/v1/adapters/{name}";
        return del ? ft__http_adapters_delete(r, p + strlen("/v1/adapters/")) : method_not_allowed(r, "DELETE");
    }
    if (path_is(p, "/models")) {
        r->route = "/models";
        return get ? ft__http_cls_models(r) : method_not_allowed(r, "GET");
    }
    if (starts(p, "/models/") && p[strlen("/models/")]) {
        const char *id = p + strlen("/models/");
        size_t n = strlen(id);
        static const char suffix[] = "/predict";
        if (n > sizeof suffix - 1 && strcmp(id + n - (sizeof suffix - 1), suffix) == 0) {
            r->route = "/models/{id}/predict";
            if (!post) return method_not_allowed(r, "POST");
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(n - (sizeof suffix - 1)), id);
            return with_body(r, 4, name);
        }
        r->route = "/models/{id}";
        return get ? ft__http_cls_model(r, id) : method_not_allowed(r, "GET");
    }
    r->route = "(unknown)";
    return ft__http_error(r, 404, "not_found", NULL, "no route %s %s", m, p);
}

/* ---- libmicrohttpd callbacks ---- */

static ft__http_req *req_new(ft_server *s, struct MHD_Connection *c, const char *url, const char *method) {
    ft__http_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->s = s;
    r->conn = c;
    r->t0 = ft__now_mono();
    r->wall0 = now_wall();
    r->status = 500;
    r->ttft_s = -1;
    snprintf(r->method, sizeof r->method, "%s", method ? method : "");
    snprintf(r->path, sizeof r->path, "%s", url ? url : "");
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (request_id_sane(rid)) snprintf(r->id, sizeof r->id, "%s", rid);
    else ft__http_new_id(s, "req-", r->id, sizeof r->id);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (getnameinfo(ci->client_addr, len, r->client, sizeof r->client, NULL, 0, NI_NUMERICHOST) != 0)
            snprintf(r->client, sizeof r->client, "?");
    }
    r->api = starts(r->path, "/v1/") ? FT__API_OPENAI : FT__API_CLASSIFY;
    pthread_mutex_lock(&s->mu);
    s->inflight++;
    s->n_requests++;
    pthread_mutex_unlock(&s->mu);
    r->counted = 1;
    return r;
}

static ft__mhd_result add_size(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    *(size_t *)cls += (key ? strlen(key) : 0) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* bytes of the request line and headers as received (approximately: names, values, separators) */
static size_t header_bytes(ft__http_req *r, const char *url) {
    size_t n = strlen(r->method) + (url ? strlen(url) : 0) + 12;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_size, &n);
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_size, &n);
    return n;
}

/* checks done when the headers are in: header size, draining, authentication, rate limit, declared body
 * size. Queues an error response and returns 1 when the request ends here. */
static int admit(ft__http_req *r, const char *url, ft__mhd_result *rc) {
    ft_server *s = r->s;
    /* libmicrohttpd's per-connection memory bounds the headers too, with room to spare: the limit is here */
    if (header_bytes(r, url) > s->p.max_header_bytes) {
        r->route = "(too large)";
        *rc = ft__http_error(r, 431, "headers_too_large", NULL, "the request line and headers are larger than %zu bytes",
                             s->p.max_header_bytes);
        return 1;
    }
    if (path_is(r->path, "/health")) return 0;
    if (__atomic_load_n(&s->draining, __ATOMIC_ACQUIRE)) {
        r->route = "(draining)";
        r->retry_after = 1;
        *rc = ft__http_error(r, 503, "shutting_down", NULL, "the server is shutting down");
        return 1;
    }
    char bucket[96];
    snprintf(bucket, sizeof bucket, "ip:%s", r->client);
    if (s->n_keys > 0 && !path_is(r->path, "/")) {
        const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        int which = -1;
        int ok = auth && strncasecmp(auth, "Bearer ", 7) == 0;
        if (ok) {
            const char *k = auth + 7;
            while (*k == ' ') k++;
            ok = key_matches(s, k, strlen(k), &which);
        }
        if (!ok) {
            r->route = "(auth)";
            *rc = ft__http_error(r, 401, "invalid_api_key", NULL, auth ? "invalid API key" : "missing API key: send the header 'Authorization: Bearer KEY'");
            return 1;
        }
        snprintf(bucket, sizeof bucket, "key:%d", which);
    }
    if (s->rl) {
        pthread_mutex_lock(&s->mu);
        int wait = ft__rate_limiter_take(s->rl, bucket, ft__now_mono());
        pthread_mutex_unlock(&s->mu);
        if (wait > 0) {
            r->route = "(rate limit)";
            r->retry_after = wait;
            *rc = ft__http_error(r, 429, "rate_limit_exceeded", NULL, "rate limit of %g requests/s exceeded; retry after %d s",
                                 s->p.rate_limit, wait);
            return 1;
        }
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || v > s->p.max_body_bytes) {
            r->route = "(too large)";
            *rc = ft__http_error(r, 413, "request_too_large", NULL, "the request body is larger than %zu bytes", s->p.max_body_bytes);
            return 1;
        }
    }
    return 0;
}

static ft__mhd_result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    ft_server *s = cls;
    ft__http_req *r = *con_cls;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r) return MHD_NO;
        *con_cls = r;
        ft__mhd_result rc;
        if (admit(r, url, &rc)) return rc;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->responded && !r->body_too_big) {
            if (r->body.n + *upload_size > s->p.max_body_bytes) {
                r->body_too_big = 1;
                ft__sb_free(&r->body);
            } else if (ft__sb_put(&r->body, upload_data, *upload_size) != 0) {
                r->body_too_big = 1;
                ft__sb_free(&r->body);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->responded) return MHD_YES;
    if (r->body_too_big) {
        r->route = "(too large)";
        return ft__http_error(r, 413, "request_too_large", NULL, "the request body is larger than %zu bytes", s->p.max_body_bytes);
    }
    ft__mhd_result rc = dispatch(r);
    if (!r->responded && rc == MHD_YES) {
        /* a handler that queued nothing: never leave a request without an answer */
        rc = ft__http_error(r, 500, "internal_error", NULL, "no response was produced");
    }
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    ft_server *s = cls;
    ft__http_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->job) ft__gen_job_finish_request(r->job, r);
    ft__request_info info;
    memset(&info, 0, sizeof info);
    info.request_id = r->id;
    info.method = r->method;
    info.route = r->route ? r->route : "(none)";
    info.path = r->path;
    info.model = r->model;
    info.adapter = r->adapter;
    info.client = r->client;
    info.error_code = r->error_code;
    info.status = r->responded ? r->status : 499;
    info.latency_ms = 1000.0 * (ft__now_mono() - r->t0);
    info.start_time = r->wall0;
    info.prompt_tokens = r->prompt_tokens;
    info.completion_tokens = r->completion_tokens;
    info.unknown_tokens = r->unknown_tokens;
    info.ttft_ms = r->ttft_s >= 0 ? 1000.0 * r->ttft_s : -1;
    info.n_predictions = r->n_predictions;
    info.confidences = r->confidences;
    info.labels = r->labels;
    info.streamed = r->job != NULL;
    info.client_closed = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    ft__serve_on_request_done(s, &info);
    ft__sb_free(&r->body);
    free(r->confidences);
    free(r->labels);
    if (r->counted) {
        pthread_mutex_lock(&s->mu);
        s->inflight--;
        pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
    }
    free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    FT_LOGD("serve: libmicrohttpd: %s", buf);
}

/* ---- start / stop ---- */

static void server_free(ft_server *s) {
    if (!s) return;
    for (int i = 0; i < s->n_keys; i++) free(s->keys[i]);
    free(s->keys);
    free(s->key_len);
    ft__rate_limiter_free(s->rl);
    ft__monitor_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}

int ft_server_start(ft_server **out, ft_engine *e, const ft_server_params *params) {
    *out = NULL;
    if (!e) return ft_error(FT_ERR_INVALID, "serve: no engine");
    ft_server_params p = params ? *params : ft_server_default_params();
    if (!p.host || !*p.host) p.host = "127.0.0.1";
    if (p.port < 0 || p.port > 65535) return ft_error(FT_ERR_INVALID, "serve: port %d is not in 0..65535", p.port);
    if (p.max_body_bytes == 0) p.max_body_bytes = 1u << 20;
    if (p.max_header_bytes < 1024) p.max_header_bytes = 1024;
    if (p.max_connections <= 0) p.max_connections = 256;
    if (p.timeout_s <= 0) p.timeout_s = 60;
    if (p.rate_limit < 0) return ft_error(FT_ERR_INVALID, "serve: rate limit must be >= 0");
    if (p.log_sample < 0 || p.log_sample > 1) return ft_error(FT_ERR_INVALID, "serve: log sample rate must be in [0, 1]");
    if (p.keepalive_s <= 0) p.keepalive_s = 2.0;
    ft_server *s = calloc(1, sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "serve: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->e = e;
    s->p = p;
    snprintf(s->host, sizeof s->host, "%s", p.host);
    s->p.host = s->host;
    snprintf(s->fingerprint, sizeof s->fingerprint, "%s", p.fingerprint ? p.fingerprint : "finetune");
    s->p.fingerprint = s->fingerprint;
    s->ready = !p.start_loading;
    if (ft__monitor_start(s) < 0) {
        server_free(s);
        return ft_error_wrap(FT_ERR_NOMEM, "serve: monitoring");
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) seed = 0;
    s->id_state = seed ^ (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (p.n_api_keys > 0) {
        s->keys = calloc((size_t)p.n_api_keys, sizeof *s->keys);
        s->key_len = calloc((size_t)p.n_api_keys, sizeof *s->key_len);
        if (!s->keys || !s->key_len) { server_free(s); return ft_error(FT_ERR_NOMEM, "serve: out of memory"); }
        for (int i = 0; i < p.n_api_keys; i++) {
            const char *k = p.api_keys[i];
            if (!k || !*k) { server_free(s); return ft_error(FT_ERR_INVALID, "serve: API key %d is empty", i + 1); }
            s->keys[i] = strdup(k);
            if (!s->keys[i]) { server_free(s); return ft_error(FT_ERR_NOMEM, "serve: out of memory"); }
            s->key_len[i] = strlen(k);
            s->n_keys++;
        }
    }
    s->p.api_keys = NULL;
    s->p.n_api_keys = s->n_keys;
    if (p.rate_limit > 0 && ft__rate_limiter_create(&s->rl, p.rate_limit, 2 * p.rate_limit) < 0) {
        server_free(s);
        return ft_error(FT_ERR_NOMEM, "serve: out of memory");
    }

    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", p.port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int gai = getaddrinfo(s->host, port_s, &hints, &ai);
    if (gai != 0 || !ai) {
        server_free(s);
        return ft_error(FT_ERR_IO, "serve: cannot resolve host '%s': %s", p.host, gai_strerror(gai));
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_DUAL_STACK;   /* IPv6, and "::" takes IPv4 too */
    s->d = MHD_start_daemon(flags, (uint16_t)p.port, NULL, NULL, on_access, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)p.max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p.timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)2 * p.max_header_bytes + 32768,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        int err = errno;
        server_free(s);
        return ft_error(FT_ERR_IO, "serve: cannot listen on %s:%d (%s)", p.host, p.port,
                        err ? strerror(err) : "address in use or not available");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p.port;
    *out = s;
    return FT_OK;
}

int ft_server_port(const ft_server *s) { return s ? s->port : -1; }

void ft_server_set_ready(ft_server *s, int ready) {
    if (!s) return;
    if (ready) ft__monitor_sync_names(s);   /* the models loaded meanwhile become metric labels */
    __atomic_store_n(&s->ready, ready ? 1 : 0, __ATOMIC_RELEASE);
}

int ft_server_stop(ft_server *s, double drain_s) {
    if (!s) return 0;
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
    /* no new connections; requests on open connections get 503 from now on */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    int left = ft_engine_drain(s->e, drain_s);
    /* the generations are over: let running responses (streams) write their last bytes */
    double until = ft__now_mono() + (drain_s > 0 ? (drain_s < 5 ? drain_s : 5) : 0.5);
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0 && ft__now_mono() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->idle, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
    s->d = NULL;
    server_free(s);
    return left;
}
