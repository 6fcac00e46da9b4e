/* fuzz_http_request.c — the untrusted input of `finetune serve`: a request body (arbitrary bytes) through the
 * server's whole request path — body collection, UTF-8 and JSON checks (ft__json_body), the field getters and
 * the request-to-structure code of each route (completions, chat, embeddings, predict: model lookup, prompt /
 * messages / stop / sampling fields, texts and thresholds), the engine call and the JSON or SSE answer.
 *
 * A real server (server.h) runs in this process on a free loopback port over a real engine holding the bundled
 * stories260K (generator) and the tiny BERT classifier of the tests (tests/fixtures/train_encoder/tiny_bert),
 * made once. Input byte 0 picks the route, the rest is the body; it is POSTed over a socket and the answer read.
 * A 5xx answer other than 503 (busy), or no status line at all, is a finding (abort). So that an input stays
 * cheap, a body that parses as a JSON object has "max_tokens" / "max_completion_tokens" clamped to 4 and "n" to
 * 2 before it is sent (types are kept: a string stays a string and must still be refused).
 * Run from the repository root (the model paths are relative to it). */
#include "fuzz_util.h"
#include "finetune/server.h"
#include "finetune/serve.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static ft_engine *g_engine;
static ft_server *g_server;
static int g_port, g_failed;

static void stop_server(void) {
    ft_server_stop(g_server, 0);
    ft_engine_free(g_engine);
    g_server = NULL;
    g_engine = NULL;
}

static int start_server(void) {
    ft_engine_params ep = ft_engine_default_params();
    ep.n_slots = 2;
    ep.max_queue = 8;
    if (ft_engine_create(&g_engine, &ep) != FT_OK) return -1;
    if (ft_engine_load_model(g_engine, "stories", "models/stories260K") != FT_OK ||
        ft_engine_load_model(g_engine, "cls", "tests/fixtures/train_encoder/tiny_bert") != FT_OK) {
        fprintf(stderr, "fuzz_http_request: cannot load the models (run from the repository root): %s\n", ft_last_error());
        return -1;
    }
    ft_server_params sp = ft_server_default_params();
    sp.port = 0;
    sp.max_body_bytes = 1 << 16;
    sp.timeout_s = 5;
    if (ft_server_start(&g_server, g_engine, &sp) != FT_OK) return -1;
    g_port = ft_server_port(g_server);
    atexit(stop_server);
    return 0;
}

/* the body with max_tokens / max_completion_tokens <= 4 and n <= 2 when it is a JSON object (malloc'd) */
static char *clamp_body(const uint8_t *data, size_t n, size_t *out_n) {
    char *s = ft_fuzz_str(data, n);
    *out_n = n;
    if (!s) return NULL;
    cJSON *o = cJSON_ParseWithLength(s, n);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return s;
    }
    static const struct { const char *key; double max; } caps[] = {{"max_tokens", 4}, {"max_completion_tokens", 4}, {"n", 2}};
    int changed = 0;
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(o, caps[i].key);
        if (cJSON_IsNumber(v) && v->valuedouble > caps[i].max) {
            cJSON_SetNumberValue(v, caps[i].max);
            changed = 1;
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "max_tokens") && !cJSON_GetObjectItemCaseSensitive(o, "max_completion_tokens")) {
        cJSON_AddNumberToObject(o, "max_tokens", 4);   /* chat defaults to the whole context */
        changed = 1;
    }
    if (changed) {
        char *t = cJSON_PrintUnformatted(o);
        if (t) {
            free(s);
            s = t;
            *out_n = strlen(t);
        }
    }
    cJSON_Delete(o);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    if (g_failed) return 0;
    if (!g_server && start_server() < 0) {
        g_failed = 1;
        return 0;
    }
    if (size < 1) return 0;
    static const char *const paths[] = {"/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/models/cls/predict",
                                        "/models/stories/predict"};
    const char *path = paths[data[0] % (sizeof paths / sizeof *paths)];
    size_t n;
    char *body = clamp_body(data + 1, size - 1, &n);
    if (!body) return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0) close(fd);
        free(body);
        return 0;
    }
    char head[256];
    int hn = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, n);
    int ok = send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn;
    for (size_t off = 0; ok && off < n;) {
        ssize_t w = send(fd, body + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char resp[4096];
    size_t got = 0;
    for (ssize_t r; got < sizeof resp - 1 && (r = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0;) got += (size_t)r;
    char sink[4096];
    while (recv(fd, sink, sizeof sink, 0) > 0) {}   /* the rest of a long answer */
    resp[got] = 0;
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || (status >= 500 && status != 503)) {
        fprintf(stderr, "fuzz_http_request: %s answered %s\nbody: %.*s\n", path, got ? resp : "(nothing)", (int)(n < 2000 ? n : 2000), body);
        abort();
    }
    free(body);
    return 0;
}
