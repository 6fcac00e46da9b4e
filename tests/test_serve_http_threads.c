/* test_serve_http_threads.c — the HTTP server (server.h) in-process under concurrent clients, built for
 * ThreadSanitizer too (TSAN_TESTS: `make SANITIZE=thread test`; the reference backend only, as libgomp is
 * not instrumented). Four client threads mix blocking and streamed greedy completions over the base and an
 * adapter, streams they drop after the first chunk (the server cancels those generations), chat streams
 * with n = 2 and malformed requests; one thread loads an adapter over HTTP, uses it and deletes it, over and
 * over; then the server stops (drain) while nothing runs. Every completed greedy request must equal the same
 * request made alone, every malformed one must get 400, the request log must hold one well-formed line per
 * request. */
#include "testutil.h"
#include "http_client.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/server.h"
#include "finetune/serve.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#define NCLIENTS 4
#define PER_CLIENT 6
#define NPROMPTS 3

static int g_port;
static char g_lora_a[1024], g_lora_b[1024];
static const char *k_models[] = {"stories", "a"};
static const char *k_prompts[NPROMPTS] = {"Once upon a time", "The cat sat", "Tom had a red"};
static char *g_want[2][NPROMPTS];       /* the text of each (model, prompt) alone */
static atomic_int g_failures, g_requests, g_churn_loaded;

static char *completion(const char *model, const char *prompt, int *status) {
    char body[512];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"prompt\": \"%s\", \"max_tokens\": 16, \"temperature\": 0}", model, prompt);
    ft_test_http_resp r;
    *status = -1;
    if (ft_test_http_do(g_port, "POST", "/v1/completions", NULL, body, &r) < 0) return NULL;
    atomic_fetch_add(&g_requests, 1);
    *status = r.status;
    char *text = NULL;
    cJSON *j = cJSON_Parse(r.body);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    if (r.status == 200 && cJSON_IsString(cJSON_GetObjectItem(c, "text"))) text = strdup(cJSON_GetObjectItem(c, "text")->valuestring);
    cJSON_Delete(j);
    ft_test_http_resp_free(&r);
    return text;
}

/* a streamed greedy completion; drop: close after the first chunk. Returns the text (NULL when dropped). */
static char *stream(const char *model, const char *prompt, int drop) {
    char body[512];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"prompt\": \"%s\", \"max_tokens\": 16, \"temperature\": 0, \"stream\": true}", model, prompt);
    int fd = ft_test_http_connect(g_port);
    if (fd < 0) return NULL;
    atomic_fetch_add(&g_requests, 1);
    ft_test_http_send(fd, "POST", "/v1/completions", NULL, body, strlen(body));
    char *raw = ft_test_http_read_until(fd, drop ? "data: {" : "data: [DONE]", NULL);
    close(fd);
    char *text = NULL;
    if (!drop && strstr(raw, "data: [DONE]")) text = ft_test_http_sse_text(raw);
    free(raw);
    return text;
}

static void note_failure(const char *what, const char *got, const char *want) {
    printf("  FAIL: %s\n    got:  %s\n    want: %s\n", what, got ? got : "(null)", want ? want : "(null)");
    atomic_fetch_add(&g_failures, 1);
}

static void *client_main(void *arg) {
    int c = (int)(intptr_t)arg;
    for (int i = 0; i < PER_CLIENT; i++) {
        int k = c * PER_CLIENT + i, m = k % 2, p = k % NPROMPTS, st;
        switch (k % 5) {
        case 0: {
            char *t = completion(k_models[m], k_prompts[p], &st);
            if (st != 200 || !t || strcmp(t, g_want[m][p]) != 0) note_failure("blocking completion", t, g_want[m][p]);
            free(t);
            break;
        }
        case 1: {
            char *t = stream(k_models[m], k_prompts[p], 0);
            if (!t || strcmp(t, g_want[m][p]) != 0) note_failure("streamed completion", t, g_want[m][p]);
            free(t);
            break;
        }
        case 2: free(stream(k_models[m], k_prompts[p], 1)); break;
        case 3: {
            const char *body = "{\"model\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 8, "
                               "\"n\": 2, \"seed\": 5, \"stream\": true, \"stream_options\": {\"include_usage\": true}}";
            ft_test_http_resp r;
            if (ft_test_http_do(g_port, "POST", "/v1/chat/completions", NULL, body, &r) < 0 || r.status != 200 ||
                !strstr(r.body, "data: [DONE]") || !strstr(r.body, "\"usage\":{"))
                note_failure("chat stream n=2", r.body, "... data: [DONE]");
            atomic_fetch_add(&g_requests, 1);
            ft_test_http_resp_free(&r);
            break;
        }
        default: {
            ft_test_http_resp r;
            if (ft_test_http_do(g_port, "POST", "/v1/completions", NULL, "{\"model\": \"a\", \"prompt\": ", &r) < 0 || r.status != 400)
                note_failure("malformed request", r.body, "400");
            atomic_fetch_add(&g_requests, 1);
            ft_test_http_resp_free(&r);
        }
        }
    }
    return NULL;
}

/* loads adapter "churn" over HTTP, uses it, deletes it */
static void *churn_main(void *arg) {
    (void)arg;
    char body[1400];
    snprintf(body, sizeof body, "{\"name\": \"churn\", \"path\": \"%s\", \"base\": \"stories\"}", g_lora_b);
    for (int i = 0; i < 6; i++) {
        ft_test_http_resp r;
        if (ft_test_http_do(g_port, "POST", "/v1/adapters", NULL, body, &r) < 0 || r.status != 201) note_failure("POST /v1/adapters", r.body, "201");
        else atomic_fetch_add(&g_churn_loaded, 1);
        atomic_fetch_add(&g_requests, 1);
        ft_test_http_resp_free(&r);
        int st;
        char *t = completion("churn", k_prompts[i % NPROMPTS], &st);
        if (st != 200 || !t) note_failure("completion with the churned adapter", t, "200");
        free(t);
        if (ft_test_http_do(g_port, "DELETE", "/v1/adapters/churn", NULL, NULL, &r) < 0 || r.status != 200) note_failure("DELETE /v1/adapters/churn", r.body, "200");
        atomic_fetch_add(&g_requests, 1);
        ft_test_http_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients(void **s) {
    (void)s;
    char tmp[512];
    assert_int_equal(ft_test_tmpdir_make(tmp, sizeof tmp, "ft_serve_threads"), 0);
    snprintf(g_lora_a, sizeof g_lora_a, "%s", ft_fixture("serve/lora_a"));
    snprintf(g_lora_b, sizeof g_lora_b, "%s", ft_fixture("serve/lora_b"));
    ft_engine_params ep = ft_engine_default_params();
    ep.be = ft_backend_by_name("ref");
    ep.n_slots = 4;
    ft_engine *e;
    assert_int_equal(ft_engine_create(&e, &ep), FT_OK);
    assert_int_equal(ft_engine_load_model(e, "stories", "models/stories260K"), FT_OK);
    assert_int_equal(ft_engine_load_adapter(e, "a", "stories", g_lora_a), FT_OK);
    char log_path[600];
    snprintf(log_path, sizeof log_path, "%s/requests.jsonl", tmp);
    FILE *log = fopen(log_path, "w");
    assert_non_null(log);
    ft_server_params sp = ft_server_default_params();
    sp.port = 0;
    sp.log = log;
    sp.keepalive_s = 0.2;
    ft_server *srv;
    assert_int_equal(ft_server_start(&srv, e, &sp), FT_OK);
    g_port = ft_server_port(srv);

    for (int m = 0; m < 2; m++)
        for (int p = 0; p < NPROMPTS; p++) {
            int st;
            g_want[m][p] = completion(k_models[m], k_prompts[p], &st);
            assert_int_equal(st, 200);
            printf("  %-8s %-18s -> %s\n", k_models[m], k_prompts[p], g_want[m][p]);
        }
    pthread_t th[NCLIENTS + 1];
    for (int c = 0; c < NCLIENTS; c++) pthread_create(&th[c], NULL, client_main, (void *)(intptr_t)c);
    pthread_create(&th[NCLIENTS], NULL, churn_main, NULL);
    for (int c = 0; c <= NCLIENTS; c++) pthread_join(th[c], NULL);
    ft_engine_stats st;
    ft_engine_get_stats(e, &st);
    printf("  %d requests, %d failures; engine: %llu steps, %.2f rows per step\n", atomic_load(&g_requests), atomic_load(&g_failures),
           (unsigned long long)st.steps, st.steps ? (double)st.batched_rows / (double)st.steps : 0.0);
    assert_int_equal(ft_server_stop(srv, 10), 0);
    fclose(log);

    /* one well-formed log line per request */
    char *text = NULL;
    assert_int_equal(ft_file_read_all(log_path, &text, NULL), 0);
    int lines = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        bad += !j || !cJSON_IsNumber(cJSON_GetObjectItem(j, "status"));
        lines++;
        cJSON_Delete(j);
    }
    free(text);
    printf("  request log: %d lines (%d requests made, %d malformed lines)\n", lines, atomic_load(&g_requests), bad);
    assert_int_equal(bad, 0);
    assert_int_equal(lines, atomic_load(&g_requests));
    ft_engine_free(e);
    for (int m = 0; m < 2; m++)
        for (int p = 0; p < NPROMPTS; p++) free(g_want[m][p]);
    ft_test_tmpdir_remove(tmp);
    assert_int_equal(atomic_load(&g_failures), 0);
    assert_int_equal(atomic_load(&g_churn_loaded), 6);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_concurrent_clients)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
