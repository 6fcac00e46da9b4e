/* test_serve_http.c — `finetune serve` end to end over real sockets: $BUILD/finetune serve on a free loopback
 * port with the embedded stories260K (two LoRA adapters of it from tests/fixtures/serve), a tiny BERT
 * classifier and a token classifier trained for two steps from it.
 *   - the classification API: predict, threshold and fallback, texts, entities; errors 400 / 401 / 404 /
 *     405 / 413 / 422 in their documented shape, messages naming the field; X-Request-Id echoed or made;
 *   - auth (bearer key), rate limit (429 + Retry-After, a separate server), the request log;
 *   - adapters loaded and unloaded at run time while a stream that uses one runs (it completes unchanged);
 *   - greedy completions over HTTP equal `finetune generate --temperature 0` (base and adapter), and
 *     concurrent requests with different adapters give the same text as each alone;
 *   - the official openai Python client (tests/serve/openai_client_test.py);
 *   - a full queue answers 503 + Retry-After; SIGTERM: a running stream completes, the process exits 0 (with
 *     ASan: no leak);
 *   - a client that drops a stream after its first chunk cancels its generation: on a tiny random GPT-2
 *     shape (1024-token context, no EOS in 900 greedy tokens: a blocking request runs all 900), the dropped
 *     stream's slot is free again (/metrics finetune_active_slots 0) after far fewer tokens
 *     (finetune_generated_tokens_total), and the next request runs;
 *   - in-process (server.h): /health says "loading" (503) until ft_server_set_ready.
 * The HTTP client is tests/util/http_client.c (plain sockets). */
#include "testutil.h"
#include "finetune/bf16.h"
#include "http_client.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/predict.h"
#include "finetune/server.h"
#include "finetune/status.h"
#include "serve/http_internal.h"
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEY "test-key-123"

static char g_tmp[512];
static char g_bin[1024];

static const char *AUTH = "Authorization: Bearer " KEY "\r\n";

/* POST with the key; returns the parsed JSON body (NULL if not JSON) and the status */
static cJSON *post_json(int port, const char *path, const char *body, int *status) {
    ft_test_http_resp r;
    if (ft_test_http_do(port, "POST", path, AUTH, body, &r) < 0) { *status = -1; return NULL; }
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    if (!j) printf("  (not JSON: %s)\n", r.body);
    ft_test_http_resp_free(&r);
    return j;
}

static cJSON *get_json(int port, const char *path, int *status) {
    ft_test_http_resp r;
    if (ft_test_http_do(port, "GET", path, AUTH, NULL, &r) < 0) { *status = -1; return NULL; }
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    ft_test_http_resp_free(&r);
    return j;
}

/* ---------------- a server process ---------------- */

typedef struct server {
    pid_t pid;
    int   port;
    char  err[600];   /* its stderr */
} server;

static int health_ok(int port) {
    ft_test_http_resp r;
    if (ft_test_http_do(port, "GET", "/health", NULL, NULL, &r) < 0) return 0;
    int ok = r.status == 200;
    ft_test_http_resp_free(&r);
    return ok;
}

/* `finetune serve --port 0 ARGS`, waits until /health answers 200 */
static int server_start(server *s, const char *name, const char *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->err, sizeof s->err, "%s/%s.stderr", g_tmp, name);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s serve --port 0 %s 2>'%s'", g_bin, args, s->err);
    printf("  start: %s\n", cmd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 1200 && !s->port; i++) {   /* up to 120 s (sanitizer builds load slowly) */
        char *text = NULL;
        if (ft_file_read_all(s->err, &text, NULL) == 0) {
            const char *p = strstr(text, "listening on http://127.0.0.1:");
            if (p) s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
            free(text);
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { printf("  server exited early (status %d)\n", st); s->pid = 0; return -1; }
        if (!s->port) usleep(100000);
    }
    for (int i = 0; i < 1200 && s->port; i++) {
        if (health_ok(s->port)) return 0;
        usleep(100000);
    }
    return -1;
}

/* SIGTERM, then waits (up to 120 s) and returns the exit status (-1: killed or timed out) */
static int server_stop(server *s) {
    if (!s->pid) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1200; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

static void print_file(const char *path) {
    char *t = NULL;
    if (ft_file_read_all(path, &t, NULL) == 0) printf("---- %s\n%s----\n", path, t);
    free(t);
}

/* ---------------- the shared server ---------------- */

static server g_srv;
static char g_log[600];

static int write_token_model(void) {
    /* a token classifier with a trained head (WNUT-17 BIO tags): two steps of finetune train on the tiny BERT */
    char *out = NULL, data[1024];
    snprintf(data, sizeof data, "%s", ft_fixture("classify/wnut17_dev.conll"));
    int rc = ft_test_finetune(&out, "train --task token-classify --model '%s' --data '%s' --max-steps 2 --out '%s'",
                              ft_fixture("train_encoder/tiny_bert"), data, ft_test_path(g_tmp, "tokrun"));
    free(out);
    return rc;
}

static int setup(void **state) {
    (void)state;
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    if (ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_serve_http") < 0) return -1;
    if (write_token_model() != 0) { printf("could not make the token-classification model\n"); return -1; }
    snprintf(g_log, sizeof g_log, "%s/requests.jsonl", g_tmp);
    char args[3000], cls[1024], lora[1024];
    snprintf(cls, sizeof cls, "%s", ft_fixture("train_encoder/tiny_bert"));   /* ft_fixture's buffer is reused */
    snprintf(lora, sizeof lora, "%s", ft_fixture("serve/lora_a"));
    snprintf(args, sizeof args,
             "--model default=models/stories260K --model cls='%s' --model tok='%s' --adapter lora_a='%s'@default "
             "--api-key " KEY " --max-body 65536 --log-file '%s' --parallel 4",
             cls, ft_test_path(g_tmp, "tokrun/final"), lora, g_log);
    if (server_start(&g_srv, "main", args) < 0) {
        print_file(g_srv.err);
        if (g_srv.pid) server_stop(&g_srv);
        return -1;
    }
    printf("  main server on port %d\n", g_srv.port);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = server_stop(&g_srv);
    printf("  main server: exit %d\n", rc);
    if (rc != 0) print_file(g_srv.err);
    ft_test_tmpdir_remove(g_tmp);
    return rc == 0 ? 0 : -1;
}

/* ---------------- tests ---------------- */

static void test_auth_and_routes(void **s) {
    (void)s;
    ft_test_http_resp r;
    char v[256];
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/health", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"ok\""));
    ft_test_http_resp_free(&r);

    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/v1/models", NULL, NULL, &r), 0);
    printf("  no key: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 401);
    assert_non_null(ft_test_http_header(r.head, "WWW-Authenticate", v, sizeof v));
    assert_non_null(strstr(r.body, "\"invalid_api_key\""));
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models", "Authorization: Bearer wrong\r\n", NULL, &r), 0);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "\"status_code\":401"));
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models", "Authorization: Bearer " KEY "x\r\n", NULL, &r), 0);
    assert_int_equal(r.status, 401);
    ft_test_http_resp_free(&r);

    int st;
    cJSON *j = get_json(g_srv.port, "/v1/models", &st);
    assert_int_equal(st, 200);
    const char *want[] = {"default", "cls", "tok", "lora_a"};
    for (int i = 0; i < 4; i++) {
        int found = 0;
        cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "data")) found |= strcmp(cJSON_GetObjectItem(m, "id")->valuestring, want[i]) == 0;
        printf("  /v1/models lists %s: %s\n", want[i], found ? "yes" : "NO");
        assert_true(found);
    }
    cJSON_Delete(j);

    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/completions", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(ft_test_http_header(r.head, "Allow", v, sizeof v), "POST");
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/nowhere", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models/", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    ft_test_http_resp_free(&r);
    /* request line + headers above 16 KiB: 431 */
    char *big = malloc(20000 + 64);
    snprintf(big, 64, "Authorization: Bearer " KEY "\r\nX-Big: ");
    size_t bl = strlen(big);
    memset(big + bl, 'a', 20000);
    snprintf(big + bl + 20000, 8, "\r\n");
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/v1/models", big, NULL, &r), 0);
    printf("  20 kB header: %d\n", r.status);
    assert_int_equal(r.status, 431);
    ft_test_http_resp_free(&r);
    free(big);
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/metrics", AUTH, NULL, &r), 0);
    printf("  /metrics (placeholder): %d\n", r.status);
    ft_test_http_resp_free(&r);
}

static void test_request_id(void **s) {
    (void)s;
    ft_test_http_resp r;
    char v[256];
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models", "Authorization: Bearer " KEY "\r\nX-Request-Id: client-id_1.2\r\n", NULL, &r), 0);
    assert_string_equal(ft_test_http_header(r.head, "X-Request-Id", v, sizeof v), "client-id_1.2");
    assert_non_null(strstr(r.body, "\"request_id\":\"client-id_1.2\""));
    ft_test_http_resp_free(&r);
    /* not sane (a space, a quote): replaced by the server's own */
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models/nope", "Authorization: Bearer " KEY "\r\nX-Request-Id: a b\"c\r\n", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(ft_test_http_header(r.head, "X-Request-Id", v, sizeof v));
    printf("  insane id replaced by %s\n", v);
    assert_true(strncmp(v, "req-", 4) == 0);
    char want[300];
    snprintf(want, sizeof want, "\"request_id\":\"%s\"", v);
    assert_non_null(strstr(r.body, want));
    ft_test_http_resp_free(&r);
    /* errors carry one too, also 401 */
    assert_int_equal(ft_test_http_do(g_srv.port, "GET", "/models", NULL, NULL, &r), 0);
    assert_non_null(ft_test_http_header(r.head, "X-Request-Id", v, sizeof v));
    ft_test_http_resp_free(&r);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1e30;
}

static void test_predict(void **s) {
    (void)s;
    int st;
    cJSON *m = get_json(g_srv.port, "/models/cls", &st);
    assert_int_equal(st, 200);
    char *t = cJSON_PrintUnformatted(m);
    printf("  GET /models/cls: %s\n", t);
    free(t);
    assert_string_equal(cJSON_GetObjectItem(m, "task")->valuestring, "classify");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "labels")), 2);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(m, "version")) && cJSON_IsString(cJSON_GetObjectItem(m, "loaded_at")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "adapter")));
    cJSON_Delete(m);

    cJSON *j = post_json(g_srv.port, "/models/cls/predict", "{\"text\": \"a gorgeous, witty film\"}", &st);
    assert_int_equal(st, 200);
    t = cJSON_PrintUnformatted(j);
    printf("  predict: %s\n", t);
    free(t);
    double conf = num(j, "confidence");
    const cJSON *pr = cJSON_GetObjectItem(j, "probabilities");
    double sum = num(pr, "negative") + num(pr, "positive");
    assert_true(fabs(sum - 1) < 1e-4);
    assert_true(conf >= 0.5 && conf <= 1);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "prediction")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "fallback")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "request_id")));
    cJSON_Delete(j);

    /* a threshold above the confidence: no prediction, fallback */
    char body[256];
    snprintf(body, sizeof body, "{\"text\": \"a gorgeous, witty film\", \"confidence_threshold\": %.6f}", conf + 1e-4 > 1 ? 1.0 : conf + 1e-4);
    j = post_json(g_srv.port, "/models/cls/predict", body, &st);
    assert_int_equal(st, 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "prediction")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "fallback")));
    cJSON_Delete(j);
    snprintf(body, sizeof body, "{\"text\": \"a gorgeous, witty film\", \"confidence_threshold\": %.6f}", conf - 1e-4);
    j = post_json(g_srv.port, "/models/cls/predict", body, &st);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "prediction")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "fallback")));
    cJSON_Delete(j);

    /* texts: one prediction each, equal to the single-text one */
    j = post_json(g_srv.port, "/models/cls/predict", "{\"texts\": [\"dull and slow\", \"a gorgeous, witty film\", \"ok\"]}", &st);
    assert_int_equal(st, 200);
    cJSON *ps = cJSON_GetObjectItem(j, "predictions");
    assert_int_equal(cJSON_GetArraySize(ps), 3);
    assert_true(fabs(num(cJSON_GetArrayItem(ps, 1), "confidence") - conf) < 1e-5);
    cJSON_Delete(j);

    /* token classification: entities and one tag per word */
    j = post_json(g_srv.port, "/models/tok/predict", "{\"text\": \"John Smith lives in New York\"}", &st);
    assert_int_equal(st, 200);
    t = cJSON_PrintUnformatted(j);
    printf("  token-classify: %s\n", t);
    free(t);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tokens")), 6);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "entities")));
    cJSON_Delete(j);
}

/* entity spans from BIO / BIOES tags, with byte offsets */
static void test_entities_grouping(void **s) {
    (void)s;
    const char *text = "John  Smith met Ana in New York City today";
    char *words[] = {"John", "Smith", "met", "Ana", "in", "New", "York", "City", "today"};
    char *tags[] = {"B-PER", "I-PER", "O", "S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "I-MISC"};
    ft_prediction p;
    memset(&p, 0, sizeof p);
    p.task = FT_TASK_TOKEN;
    p.n_words = 9;
    p.words = words;
    p.tags = tags;
    cJSON *o = cJSON_CreateObject();
    ft__http_entities(o, text, &p);
    char *t = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "entities"));
    printf("  entities: %s\n", t);
    assert_string_equal(t, "[{\"entity\":\"PER\",\"word\":\"John  Smith\",\"start\":0,\"end\":11},"
                           "{\"entity\":\"PER\",\"word\":\"Ana\",\"start\":16,\"end\":19},"
                           "{\"entity\":\"LOC\",\"word\":\"New York City\",\"start\":23,\"end\":36},"
                           "{\"entity\":\"MISC\",\"word\":\"today\",\"start\":37,\"end\":42}]");
    free(t);
    cJSON_Delete(o);
}

/* status and, when given, a substring the error message must hold */
static void expect_error(const char *path, const char *body, int status, const char *msg_part) {
    int st;
    cJSON *j = post_json(g_srv.port, path, body, &st);
    char *t = j ? cJSON_PrintUnformatted(j) : strdup("(none)");
    printf("  %-22s %-50.50s -> %d %s\n", path, body, st, t);
    assert_int_equal(st, status);
    assert_non_null(j);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    const char *msg = cJSON_IsObject(e) ? cJSON_GetObjectItem(e, "message")->valuestring : cJSON_GetObjectItem(j, "message")->valuestring;
    if (!cJSON_IsObject(e)) {
        assert_true(cJSON_IsString(e));
        assert_int_equal((int)num(j, "status_code"), status);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "request_id")));
    }
    if (msg_part) assert_non_null(strstr(msg, msg_part));
    free(t);
    cJSON_Delete(j);
}

static void test_errors(void **s) {
    (void)s;
    expect_error("/models/cls/predict", "{\"text\": ", 400, "not valid JSON");
    expect_error("/models/cls/predict", "[1, 2]", 400, "must be a JSON object");
    expect_error("/models/cls/predict", "{\"text\": \"\xff\xfe\"}", 400, "UTF-8");
    expect_error("/models/nope/predict", "{\"text\": \"hi\"}", 404, "nope");
    expect_error("/models/cls/predict", "{\"text\": 5}", 422, "'text' must be a string");
    expect_error("/models/cls/predict", "{}", 422, "'text'");
    expect_error("/models/cls/predict", "{\"text\": \"  \"}", 422, "must not be empty");
    expect_error("/models/cls/predict", "{\"text\": \"hi\", \"confidence_threshold\": 1.5}", 422, "'confidence_threshold' must be a number between 0 and 1");
    expect_error("/models/cls/predict", "{\"text\": \"hi\", \"confidence_threshold\": \"high\"}", 422, "confidence_threshold");
    expect_error("/models/cls/predict", "{\"texts\": [\"a\", 3]}", 422, "'texts[1]' must be a string");
    expect_error("/models/cls/predict", "{\"texts\": []}", 422, "must not be empty");
    expect_error("/models/cls/predict", "{\"text\": \"a\", \"texts\": [\"b\"]}", 422, "not both");
    expect_error("/models/cls/predict", "{\"text\": \"a\", \"threshold\": 0.5}", 422, "unknown field 'threshold'");
    expect_error("/models/default/predict", "{\"text\": \"a\"}", 422, "generator");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"max_tokens\": -1}", 400, "'max_tokens' must be an integer");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"max_tokens\": \"ten\"}", 400, "max_tokens");
    expect_error("/v1/completions", "{\"model\": \"default\"}", 400, "'prompt' is required");
    expect_error("/v1/completions", "{\"prompt\": \"x\"}", 400, "'model' is required");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"foo\": 1}", 400, "unknown field 'foo'");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"user\": 5}", 400, "'user' must be a string");
    expect_error("/v1/chat/completions", "{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 0}", 400, "'max_tokens'");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"seed\": 1e30}", 400, "'seed'");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"temperature\": -1}", 400, "'temperature'");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": [1, 99999]}", 400, "token ids");
    expect_error("/v1/completions", "{\"model\": \"default\", \"prompt\": \"x\", \"stop\": 3}", 400, "'stop'");
    expect_error("/v1/completions", "{\"model\": \"ghost\", \"prompt\": \"x\"}", 404, "ghost");
    expect_error("/v1/chat/completions", "{\"model\": \"default\", \"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", 400, "role");
    expect_error("/v1/chat/completions", "{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": 7}]}", 400, "content");
    expect_error("/v1/embeddings", "{\"model\": \"default\", \"input\": \"x\"}", 400, "generator");
    expect_error("/v1/embeddings", "{\"model\": \"cls\", \"input\": 5}", 400, "'input'");

    /* 413: a body over --max-body 65536, declared or not */
    size_t n = 70000;
    char *big = malloc(n + 32);
    snprintf(big, n + 32, "{\"text\": \"");
    memset(big + 10, 'a', n);
    snprintf(big + 10 + n, 22, "\"}");
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(g_srv.port, "POST", "/models/cls/predict", AUTH, big, &r), 0);
    printf("  70 kB body: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"status_code\":413"));
    ft_test_http_resp_free(&r);
    /* chunked, no Content-Length: cut while it arrives */
    int fd = ft_test_http_connect(g_srv.port);
    assert_true(fd >= 0);
    char head[512];
    snprintf(head, sizeof head, "POST /models/cls/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sTransfer-Encoding: chunked\r\n\r\n", AUTH);
    ft_test_http_send_all(fd, head, strlen(head));
    char chunk[32];
    snprintf(chunk, sizeof chunk, "%zx\r\n", n);
    ft_test_http_send_all(fd, chunk, strlen(chunk));
    ft_test_http_send_all(fd, big, n);
    ft_test_http_send_all(fd, "\r\n0\r\n\r\n", 7);
    char *raw;
    size_t rn;
    ft_test_http_read_all(fd, &raw, &rn);
    close(fd);
    printf("  70 kB chunked body: %.40s\n", raw);
    assert_int_equal(ft_test_http_parse(raw, rn, &r), 0);
    assert_int_equal(r.status, 413);
    ft_test_http_resp_free(&r);
    free(raw);
    free(big);
    /* the server still answers */
    assert_true(health_ok(g_srv.port));
}

/* ---- generation helpers ---- */

static char *completion_text(int port, const char *model, const char *prompt, int max_tokens, int *status) {
    char body[2048];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"prompt\": \"%s\", \"max_tokens\": %d, \"temperature\": 0}", model, prompt, max_tokens);
    cJSON *j = post_json(port, "/v1/completions", body, status);
    char *text = NULL;
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    if (*status == 200 && c) text = strdup(cJSON_GetObjectItem(c, "text")->valuestring);
    cJSON_Delete(j);
    return text;
}

static void test_greedy_matches_generate(void **s) {
    (void)s;
    const char *prompt = "Once upon a time";
    const char *cases[][2] = {{"default", NULL}, {"lora_a", "serve/lora_a"}};
    char *texts[2];
    for (int i = 0; i < 2; i++) {
        int st;
        char *http = completion_text(g_srv.port, cases[i][0], prompt, 40, &st);
        assert_int_equal(st, 200);
        char *out = NULL;
        char adapter[1200] = "", cmd[3000];
        if (cases[i][1]) snprintf(adapter, sizeof adapter, "--adapter '%s'", ft_fixture(cases[i][1]));
        snprintf(cmd, sizeof cmd, "%s generate --temperature 0 --max-tokens 40 --prompt '%s' %s 2>/dev/null", g_bin, prompt, adapter);
        assert_int_equal(ft_test_run(cmd, &out), 0);
        size_t pl = strlen(prompt), ol = strlen(out);
        if (ol > 0 && out[ol - 1] == '\n') out[--ol] = '\0';
        int same = strncmp(out, prompt, pl) == 0 && strcmp(out + pl, http) == 0;
        printf("  %-8s http:     %s\n  %-8s generate: %s\n  -> %s\n", cases[i][0], http, "", out + pl, same ? "identical" : "DIFFERENT");
        assert_true(same);
        texts[i] = http;
        free(out);
    }
    assert_string_not_equal(texts[0], texts[1]);   /* the adapter changes the story */
    free(texts[0]);
    free(texts[1]);
}

/* `finetune serve --precision bf16` (bf16.h): its generators' matmul weights in bf16; base and adapter answers
 * equal `finetune generate --precision bf16` (the same kernels) */
static void test_bf16_server(void **s) {
    (void)s;
    if (ft_bf16_check_cpu() != FT_OK) { printf("SKIP: %s\n", ft_last_error()); return; }
    char lora[1024], args[2048];
    snprintf(lora, sizeof lora, "%s", ft_fixture("serve/lora_a"));
    snprintf(args, sizeof args, "--model default=models/stories260K --adapter lora_a='%s'@default --precision bf16 --api-key " KEY
             " --log-file none --parallel 2", lora);
    server b;
    assert_int_equal(server_start(&b, "bf16", args), 0);
    const char *prompt = "Once upon a time";
    const char *cases[][2] = {{"default", NULL}, {"lora_a", "serve/lora_a"}};
    for (int i = 0; i < 2; i++) {
        int st;
        char *http = completion_text(b.port, cases[i][0], prompt, 32, &st);
        assert_int_equal(st, 200);
        char *out = NULL, adapter[1200] = "", cmd[3000];
        if (cases[i][1]) snprintf(adapter, sizeof adapter, "--adapter '%s'", ft_fixture(cases[i][1]));
        snprintf(cmd, sizeof cmd, "%s generate --precision bf16 --temperature 0 --max-tokens 32 --prompt '%s' %s 2>/dev/null", g_bin,
                 prompt, adapter);
        assert_int_equal(ft_test_run(cmd, &out), 0);
        size_t pl = strlen(prompt), ol = strlen(out);
        if (ol > 0 && out[ol - 1] == '\n') out[--ol] = '\0';
        int same = strncmp(out, prompt, pl) == 0 && strcmp(out + pl, http) == 0;
        printf("  bf16 %-8s http:     %s\n  bf16 %-8s generate: %s\n  -> %s\n", cases[i][0], http, "", out + pl, same ? "identical" : "DIFFERENT");
        assert_true(same);
        free(http);
        free(out);
    }
    assert_int_equal(server_stop(&b), 0);
}

typedef struct conc_job { const char *model, *prompt; char *text; int status; } conc_job;

static void *conc_main(void *arg) {
    conc_job *j = arg;
    j->text = completion_text(g_srv.port, j->model, j->prompt, 48, &j->status);
    return NULL;
}

static void test_concurrent_adapters(void **s) {
    (void)s;
    /* load lora_b at run time for this test */
    char body[1200];
    snprintf(body, sizeof body, "{\"name\": \"lora_b\", \"path\": \"%s\", \"base\": \"default\"}", ft_fixture("serve/lora_b"));
    int st;
    cJSON *j = post_json(g_srv.port, "/v1/adapters", body, &st);
    assert_int_equal(st, 201);
    cJSON_Delete(j);
    const char *models[] = {"default", "lora_a", "lora_b"}, *prompts[] = {"Once upon a time", "The little dog"};
    conc_job alone[6], together[6];
    for (int i = 0; i < 6; i++) {
        alone[i] = (conc_job){models[i % 3], prompts[i / 3], NULL, 0};
        conc_main(&alone[i]);
        assert_int_equal(alone[i].status, 200);
        together[i] = (conc_job){models[i % 3], prompts[i / 3], NULL, 0};
    }
    pthread_t th[6];
    for (int i = 0; i < 6; i++) pthread_create(&th[i], NULL, conc_main, &together[i]);
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 6; i++) {
        int same = together[i].status == 200 && strcmp(alone[i].text, together[i].text) == 0;
        printf("  %-8s %-18s alone == concurrent: %s\n", alone[i].model, alone[i].prompt, same ? "yes" : "NO");
        if (!same) printf("    alone:      %s\n    concurrent: %s\n", alone[i].text, together[i].text);
        assert_true(same);
        free(alone[i].text);
        free(together[i].text);
    }
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/adapters/lora_b", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    ft_test_http_resp_free(&r);
}

static void test_adapters_at_run_time(void **s) {
    (void)s;
    int st;
    char body[1400];
    snprintf(body, sizeof body, "{\"name\": \"hot\", \"path\": \"%s\"}", ft_fixture("serve/lora_b"));
    cJSON *j = post_json(g_srv.port, "/v1/adapters", body, &st);
    assert_int_equal(st, 201);
    assert_string_equal(cJSON_GetObjectItem(j, "base")->valuestring, "default");
    cJSON_Delete(j);
    j = post_json(g_srv.port, "/v1/adapters", body, &st);
    assert_int_equal(st, 409);
    cJSON_Delete(j);
    j = post_json(g_srv.port, "/v1/adapters", "{\"name\": \"bad\", \"path\": \"/nonexistent/adapter\"}", &st);
    printf("  bad path -> %d\n", st);
    assert_int_equal(st, 400);
    cJSON_Delete(j);
    j = post_json(g_srv.port, "/v1/adapters", "{\"name\": \"has space\", \"path\": \"x\"}", &st);
    assert_int_equal(st, 400);
    cJSON_Delete(j);
    j = get_json(g_srv.port, "/v1/adapters", &st);
    char *t = cJSON_PrintUnformatted(j);
    printf("  GET /v1/adapters: %s\n", t);
    assert_non_null(strstr(t, "\"id\":\"hot\""));
    assert_non_null(strstr(t, "\"id\":\"lora_a\""));
    free(t);
    cJSON_Delete(j);

    /* the reference: the same greedy request, non-streamed, before the unload */
    char *ref = completion_text(g_srv.port, "hot", "Once upon a time", 400, &st);
    assert_int_equal(st, 200);
    /* a stream with the adapter; unloaded after its first chunk; it must finish unchanged */
    int fd = ft_test_http_connect(g_srv.port);
    assert_true(fd >= 0);
    const char *req = "{\"model\": \"hot\", \"prompt\": \"Once upon a time\", \"max_tokens\": 400, \"temperature\": 0, \"stream\": true}";
    assert_int_equal(ft_test_http_send(fd, "POST", "/v1/completions", AUTH, req, strlen(req)), 0);
    char *raw = ft_test_http_read_until(fd, "data: {", NULL);
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/adapters/hot", AUTH, NULL, &r), 0);
    printf("  DELETE /v1/adapters/hot while streaming: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    ft_test_http_resp_free(&r);
    raw = ft_test_http_read_until(fd, "data: [DONE]", raw);
    close(fd);
    char *got = ft_test_http_sse_text(raw);
    int same = strcmp(got, ref) == 0;
    printf("  stream begun before the unload: %zu bytes of text, %s the non-streamed reference\n", strlen(got), same ? "equal to" : "DIFFERENT from");
    assert_non_null(strstr(raw, "data: [DONE]"));
    assert_true(same);
    free(got);
    free(raw);
    free(ref);
    /* after the unload the name is gone */
    char *none = completion_text(g_srv.port, "hot", "x", 4, &st);
    assert_int_equal(st, 404);
    free(none);
    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/adapters/hot", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/adapters/default", AUTH, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    ft_test_http_resp_free(&r);
    /* and it can come back */
    j = post_json(g_srv.port, "/v1/adapters", body, &st);
    assert_int_equal(st, 201);
    cJSON_Delete(j);
    assert_int_equal(ft_test_http_do(g_srv.port, "DELETE", "/v1/adapters/hot", AUTH, NULL, &r), 0);
    ft_test_http_resp_free(&r);
}

static void test_openai_client(void **s) {
    (void)s;
    char *out = NULL;
    if (ft_test_run("python3 -c 'import openai' 2>&1", &out) != 0) {
        printf("SKIP: the openai Python package is not installed (scripts/setup.sh installs it)\n");
        free(out);
        return;
    }
    free(out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 tests/serve/openai_client_test.py --base-url http://127.0.0.1:%d/v1 --api-key " KEY
             " --generator default --encoder cls 2>&1", g_srv.port);
    int rc = ft_test_run(cmd, &out);
    printf("%s", out);
    free(out);
    assert_int_equal(rc, 0);
}

static void test_request_log(void **s) {
    (void)s;
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(g_srv.port, "POST", "/models/cls/predict", "Authorization: Bearer " KEY "\r\nX-Request-Id: log-check-1\r\n",
                             "{\"text\": \"fine\"}", &r), 0);
    assert_int_equal(r.status, 200);
    ft_test_http_resp_free(&r);
    usleep(200000);
    char *text = NULL;
    assert_int_equal(ft_file_read_all(g_log, &text, NULL), 0);
    int lines = 0, bad = 0, found = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        cJSON *j = cJSON_Parse(line);
        if (!j || !cJSON_IsString(cJSON_GetObjectItem(j, "request_id")) || !cJSON_IsNumber(cJSON_GetObjectItem(j, "status")) ||
            !cJSON_IsNumber(cJSON_GetObjectItem(j, "latency_ms")) || !cJSON_IsString(cJSON_GetObjectItem(j, "route")))
            bad++;
        else if (strcmp(cJSON_GetObjectItem(j, "request_id")->valuestring, "log-check-1") == 0) {
            found = 1;
            printf("  log line: %s\n", line);
            assert_string_equal(cJSON_GetObjectItem(j, "route")->valuestring, "/models/{id}/predict");
            assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "cls");
            assert_int_equal((int)num(j, "status"), 200);
            assert_true(num(j, "prompt_tokens") > 0);
        }
        cJSON_Delete(j);
    }
    printf("  %d log lines, %d malformed\n", lines, bad);
    free(text);
    assert_int_equal(bad, 0);
    assert_true(found);
}

static void test_rate_limit(void **s) {
    (void)s;
    server rl;
    assert_int_equal(server_start(&rl, "ratelimit", "--rate-limit 2 --log-file none"), 0);
    /* burst 2 x 2 = 4 requests at once, then 429 */
    int codes[6];
    char retry[32] = "";
    for (int i = 0; i < 6; i++) {
        ft_test_http_resp r;
        assert_int_equal(ft_test_http_do(rl.port, "GET", "/v1/models", NULL, NULL, &r), 0);
        codes[i] = r.status;
        if (r.status == 429 && !retry[0]) {
            ft_test_http_header(r.head, "Retry-After", retry, sizeof retry);
            assert_non_null(strstr(r.body, "rate_limit_exceeded"));
        }
        ft_test_http_resp_free(&r);
    }
    printf("  statuses: %d %d %d %d %d %d, Retry-After: %s\n", codes[0], codes[1], codes[2], codes[3], codes[4], codes[5], retry);
    int ok = 0, limited = 0;
    for (int i = 0; i < 6; i++) { ok += codes[i] == 200; limited += codes[i] == 429; }
    assert_true(ok >= 4 && ok <= 5 && limited >= 1);
    assert_true(atoi(retry) >= 1);
    assert_true(health_ok(rl.port));   /* /health is not limited */
    sleep((unsigned)atoi(retry));
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(rl.port, "GET", "/v1/models", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    ft_test_http_resp_free(&r);
    assert_int_equal(server_stop(&rl), 0);
}

static void test_sigterm_drains(void **s) {
    (void)s;
    server d;
    assert_int_equal(server_start(&d, "drain", "--log-file none --drain-timeout 60 --parallel 1 --max-queue 0"), 0);
    int fd = ft_test_http_connect(d.port);
    assert_true(fd >= 0);
    const char *req = "{\"model\": \"default\", \"prompt\": \"Once upon a time\", \"max_tokens\": 480, \"temperature\": 0, \"stream\": true}";
    assert_int_equal(ft_test_http_send(fd, "POST", "/v1/completions", NULL, req, strlen(req)), 0);
    char *raw = ft_test_http_read_until(fd, "data: {", NULL);
    assert_non_null(strstr(raw, "data: {"));
    /* one slot, no queue: a second request while the stream runs is refused with 503 and Retry-After */
    ft_test_http_resp busy;
    char ra[32] = "";
    assert_int_equal(ft_test_http_do(d.port, "POST", "/v1/completions", NULL, "{\"model\": \"default\", \"prompt\": \"x\"}", &busy), 0);
    printf("  second request with the only slot busy: %d %s (Retry-After: %s)\n", busy.status, busy.body,
           ft_test_http_header(busy.head, "Retry-After", ra, sizeof ra) ? ra : "none");
    assert_int_equal(busy.status, 503);
    assert_non_null(strstr(busy.body, "\"code\":\"overloaded\""));
    assert_true(ra[0] != '\0');
    ft_test_http_resp_free(&busy);
    kill(d.pid, SIGTERM);
    raw = ft_test_http_read_until(fd, "data: [DONE]", raw);
    close(fd);
    int done = strstr(raw, "data: [DONE]") != NULL && strstr(raw, "\"finish_reason\":\"") != NULL;
    char *text = ft_test_http_sse_text(raw);
    printf("  stream running at SIGTERM: %zu bytes of text, %s\n", strlen(text), done ? "completed with [DONE]" : "CUT");
    free(text);
    free(raw);
    int st = 0, exited = 0;
    for (int i = 0; i < 1200 && !exited; i++) {
        if (waitpid(d.pid, &st, WNOHANG) == d.pid) exited = 1;
        else usleep(100000);
    }
    if (!exited) { kill(d.pid, SIGKILL); waitpid(d.pid, &st, 0); }
    printf("  server exit status: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    if (!(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0)) print_file(d.err);
    assert_true(done);
    assert_true(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(ft_test_http_connect(d.port) < 0 || !health_ok(d.port));
}

/* the value of the first /metrics sample whose line starts with prefix (-1 if none) */
static double metric(int port, const char *prefix) {
    ft_test_http_resp r;
    if (ft_test_http_do(port, "GET", "/metrics", AUTH, NULL, &r) < 0) return -1;
    double v = -1;
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *sp = strchr(p, ' ');
            if (sp) v = strtod(sp + 1, NULL);
            break;
        }
    ft_test_http_resp_free(&r);
    return v;
}

static void copy_file(const char *from, const char *to) {
    char *t = NULL;
    size_t n = 0;
    assert_int_equal(ft_file_read_all(from, &t, &n), 0);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t, 1, n, f), n);
    fclose(f);
    free(t);
}

/* a client that drops a stream cancels its generation: the slot is free long before max_tokens */
static void test_dropped_stream_cancels(void **s) {
    (void)s;
    enum { MAX = 900 };
    /* a tiny GPT-2 shape with GPT-2's tokenizer: fast, a 1024-token context, random weights that do not
     * emit EOS (checked below: the blocking request runs all MAX tokens) */
    char dir[600];
    snprintf(dir, sizeof dir, "%s", ft_test_path(g_tmp, "gpt2_tiny"));
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, "{\"model_type\":\"gpt2\",\"vocab_size\":50257,\"n_positions\":1024,"
                     "\"n_embd\":32,\"n_layer\":2,\"n_head\":2,\"initializer_range\":0.02}", "test"), 0);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &c, 3, NULL), 0);
    assert_int_equal(ft_model_save(m, dir), 0);
    ft_model_free(m);
    char to[700];
    snprintf(to, sizeof to, "%s/vocab.json", dir);
    copy_file(ft_fixture("tokenizer/gpt2/encoder.json"), to);
    snprintf(to, sizeof to, "%s/merges.txt", dir);
    copy_file(ft_fixture("tokenizer/gpt2/vocab.bpe"), to);
    char args[1200];
    snprintf(args, sizeof args, "--model g='%s' --api-key " KEY " --log-file none --parallel 1", dir);
    server d;
    assert_int_equal(server_start(&d, "cancel", args), 0);
    char body[256];
    snprintf(body, sizeof body, "{\"model\": \"g\", \"prompt\": \"Once upon a time\", \"max_tokens\": %d, \"temperature\": 0%s}", MAX, "");
    /* the reference: not cancelled, the request runs all MAX tokens */
    int st;
    double t0 = ft__now_mono();
    cJSON *j = post_json(d.port, "/v1/completions", body, &st);
    double full_s = ft__now_mono() - t0;
    assert_int_equal(st, 200);
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    int full = cJSON_GetObjectItem(u, "completion_tokens") ? cJSON_GetObjectItem(u, "completion_tokens")->valueint : -1;
    cJSON_Delete(j);
    printf("  blocking request: %d tokens in %.2f s\n", full, full_s);
    assert_int_equal(full, MAX);
    const char *gen = "finetune_generated_tokens_total{";
    double before = metric(d.port, gen);
    assert_true(before >= MAX);
    /* the same, streamed, dropped after the first chunk */
    snprintf(body, sizeof body, "{\"model\": \"g\", \"prompt\": \"Once upon a time\", \"max_tokens\": %d, \"temperature\": 0, \"stream\": true}", MAX);
    int fd = ft_test_http_connect(d.port);
    assert_true(fd >= 0);
    assert_int_equal(ft_test_http_send(fd, "POST", "/v1/completions", AUTH, body, strlen(body)), 0);
    char *raw = ft_test_http_read_until(fd, "data: {", NULL);
    assert_non_null(strstr(raw, "data: {"));
    free(raw);
    t0 = ft__now_mono();
    close(fd);
    double active = 1;
    for (int i = 0; i < 600 && active != 0; i++) {
        active = metric(d.port, "finetune_active_slots ");
        if (active != 0) usleep(50000);
    }
    double free_s = ft__now_mono() - t0, after = metric(d.port, gen);
    printf("  dropped stream: slot free %.3f s after the drop, %.0f of %d tokens generated\n", free_s, after - before, MAX);
    assert_true(active == 0);
    assert_true(after - before < MAX / 2);
    /* the only slot serves the next request */
    snprintf(body, sizeof body, "{\"model\": \"g\", \"prompt\": \"Hi\", \"max_tokens\": 4, \"temperature\": 0}");
    j = post_json(d.port, "/v1/completions", body, &st);
    cJSON_Delete(j);
    assert_int_equal(st, 200);
    assert_int_equal(server_stop(&d), 0);
}

/* in-process: the library server says "loading" until told it is ready */
static void test_health_loading_in_process(void **s) {
    (void)s;
    ft_engine *e = NULL;
    assert_int_equal(ft_engine_create(&e, NULL), FT_OK);
    ft_server_params p = ft_server_default_params();
    p.port = 0;
    p.start_loading = 1;
    ft_server *srv = NULL;
    assert_int_equal(ft_server_start(&srv, e, &p), FT_OK);
    int port = ft_server_port(srv);
    assert_true(port > 0);
    ft_test_http_resp r;
    assert_int_equal(ft_test_http_do(port, "GET", "/health", NULL, NULL, &r), 0);
    printf("  before ready: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "loading"));
    ft_test_http_resp_free(&r);
    assert_int_equal(ft_test_http_do(port, "GET", "/v1/models", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 503);
    ft_test_http_resp_free(&r);
    ft_server_set_ready(srv, 1);
    assert_int_equal(ft_test_http_do(port, "GET", "/health", NULL, NULL, &r), 0);
    printf("  after ready: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    ft_test_http_resp_free(&r);
    /* a second server cannot take the same port */
    ft_server *other = NULL;
    p.port = port;
    assert_int_equal(ft_server_start(&other, e, &p), FT_ERR_IO);
    printf("  port taken: %s\n", ft_last_error());
    assert_int_equal(ft_server_stop(srv, 1), 0);
    ft_engine_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_and_routes),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_entities_grouping),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_greedy_matches_generate),
        cmocka_unit_test(test_bf16_server),
        cmocka_unit_test(test_concurrent_adapters),
        cmocka_unit_test(test_adapters_at_run_time),
        cmocka_unit_test(test_openai_client),
        cmocka_unit_test(test_request_log),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_sigterm_drains),
        cmocka_unit_test(test_dropped_stream_cancels),
        cmocka_unit_test(test_health_loading_in_process),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
