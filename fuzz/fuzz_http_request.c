/* fuzz_http_request.c — the untrusted input of `finetune serve`: a request body (arbitrary bytes) through the
 * server's whole request path — body collection, UTF-8 and JSON checks (ft__json_body), the field getters and
 * the request-to-structure code of each route (completions, chat, embeddings, predict: model lookup, prompt /
 * messages / stop / sampling fields, texts and thresholds), the engine call and the JSON or SSE answer.
 *
 * A real server (server.h) runs in this process on a free loopback port over a real engine holding the bundled
 * stories260K (generator) and the tiny BERT classifier of the tests (tests/fixtures/train_encoder/tiny_bert),
 * made once. Input byte 0 picks the route, the rest is the body; it is POSTed over a socket and the answer read.
 * A 5xx answer other than 503 (busy) is a finding (abort). No status line at all is diagnosed first (no_answer:
 * how the read ended, the engine's state, the same request again): a finding ("server stuck") when the engine
 * holds requests without stepping or the request stays unanswered. So that an input stays
 * cheap, a body that parses as a JSON object has "max_tokens" / "max_completion_tokens" clamped to 4 and "n" to
 * 2 before it is sent (types are kept: a string stays a string and must still be refused).
 * Run from the repository root (the model paths are relative to it). */
#include "fuzz_util.h"
#include "finetune/server.h"
#include "finetune/serve.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

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

/* what one POST got back: the bytes (up to cap - 1, NUL-terminated), how the read ended and how long it took */
typedef struct answer {
    size_t got;
    int    sent;        /* 1: the request went out whole */
    int    end_errno;   /* 0: the server closed (EOF); else recv's errno (ECONNRESET, EAGAIN: no byte for RECV_S) */
    double ms;
} answer;

#define RECV_S 60   /* a generation of <= 2 x 4 tokens over stories260K takes milliseconds alone; 60 s is "stuck" */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int send_all(int fd, const char *p, size_t n) {
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        off += (size_t)w;
    }
    return 1;
}

static int post(const char *path, const char *body, size_t n, char *resp, size_t cap, answer *a) {
    memset(a, 0, sizeof *a);
    double t0 = now_ms();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = RECV_S};
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {   /* out of ports or fds: not the server's fault */
        if (fd >= 0) close(fd);
        return -1;
    }
    char head[256];
    int hn = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, n);
    /* libFuzzer's -timeout alarm (SIGALRM every timeout / 2 s, no SA_RESTART) interrupts these calls: EINTR is
     * retried. Taken for the end of the answer, it made a request that was still running look unanswered: the
     * "no answer" of the first 10-minute campaign (the engine finished that request a moment later). */
    int ok = send_all(fd, head, (size_t)hn) && send_all(fd, body, n);
    a->sent = ok;
    ssize_t r = 0;
    while (a->got < cap - 1 && ((r = recv(fd, resp + a->got, cap - 1 - a->got, 0)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0) a->got += (size_t)r;
    a->end_errno = r < 0 ? errno : 0;
    char sink[4096];
    while (r > 0 && ((r = recv(fd, sink, sizeof sink, 0)) > 0 || (r < 0 && errno == EINTR))) {}   /* the rest of a long answer */
    resp[a->got] = 0;
    close(fd);
    a->ms = now_ms() - t0;
    return 0;
}

static int status_of(const char *resp) {
    int status = 0;
    return sscanf(resp, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

/* the engine's state, for a "no answer" verdict */
static void dump_engine(const char *when) {
    ft_engine_stats st;
    ft_engine_get_stats(g_engine, &st);
    fprintf(stderr, "fuzz_http_request: engine %s: %d queued, %d active of %d slots; %llu steps, %llu generated tokens, %llu encoder batches\n",
            when, st.queued, st.active, st.slots, (unsigned long long)st.steps, (unsigned long long)st.generated_tokens,
            (unsigned long long)st.encoder_batches);
}

/* A request that got no status line: a finding only when the server is stuck. The harness shares a loaded
 * machine with other fuzzers (ASan + UBSan, two cores), so first the facts (how the read ended, after how long,
 * the engine's state now and 2 s later), then the same request again up to 3 times: answered, it was a
 * connection the server did not serve at that moment (reported on stderr, counted, not a crash); not
 * answered, or an engine that holds requests without stepping, is "server stuck" (abort). */
static int g_transient;

static void no_answer(const char *path, const char *body, size_t n, const answer *a) {
    fprintf(stderr, "fuzz_http_request: %s: no status line (%zu bytes) after %.0f ms: %s%s\n", path, a->got, a->ms,
            !a->sent ? "the request was not sent whole; " : "",
            a->end_errno == 0 ? "the server closed the connection" : a->end_errno == EAGAIN || a->end_errno == EWOULDBLOCK
            ? "no byte within " "60" " s" : strerror(a->end_errno));
    ft_engine_stats s0, s1;
    ft_engine_get_stats(g_engine, &s0);
    dump_engine("now");
    sleep(2);
    ft_engine_get_stats(g_engine, &s1);
    dump_engine("2 s later");
    int stuck = (s1.queued + s1.active > 0) && s1.steps == s0.steps;
    char resp[4096];
    answer b;
    for (int i = 0; i < 3 && !stuck; i++) {
        if (post(path, body, n, resp, sizeof resp, &b) == 0 && status_of(resp)) {
            fprintf(stderr, "fuzz_http_request: the same request again: %d after %.0f ms; not stuck (%d such connections so far)\n",
                    status_of(resp), b.ms, ++g_transient);
            return;
        }
        sleep(1);
    }
    fprintf(stderr, "fuzz_http_request: server stuck: %s\nbody: %.*s\n", stuck ? "the engine holds requests but does not step"
            : "the same request got no answer 3 more times", (int)(n < 2000 ? n : 2000), body);
    dump_engine("at the verdict");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    static int mhd_log = -1;   /* FT_FUZZ_MHD_LOG=1: libmicrohttpd's own messages (dropped connections and why) on stderr */
    if (mhd_log < 0) mhd_log = getenv("FT_FUZZ_MHD_LOG") != NULL;
    if (mhd_log) ft_log_set_level(FT_LOG_DEBUG);
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
    char resp[4096];
    answer a;
    if (post(path, body, n, resp, sizeof resp, &a) == 0) {
        int status = status_of(resp);
        if (!status) no_answer(path, body, n, &a);
        else if (status >= 500 && status != 503) {
            fprintf(stderr, "fuzz_http_request: %s answered %s\nbody: %.*s\n", path, resp, (int)(n < 2000 ? n : 2000), body);
            abort();
        }
    }
    free(body);
    return 0;
}
