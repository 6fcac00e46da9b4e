/* test_serve_stress.c — the serving engine and the HTTP server under the load that once left a fuzzed
 * /v1/completions request with n = 2 and logprobs = 3 without an answer (issue 14): many concurrent n = 2
 * requests with logprobs, cancellations at every moment (before admission, while prefilling, while decoding,
 * after the end), queue-full refusals, streams dropped after their first chunk and blocking requests whose client
 * leaves at once. What must hold, and what a lost wakeup, a choice that never finishes, a slot leak or a deadlock
 * would break:
 *   - every submitted request ends exactly once (on_done), no token after its end, a refused one never calls back;
 *   - every HTTP request that waits for its answer gets a status line: 200 (with n choices and their logprobs) or
 *     503 (queue full), never nothing and never another 5xx;
 *   - afterwards no request is queued or holds a slot, and a new request is answered at once;
 *   - nothing waits for ever: a watchdog fails the test with the engine's state ("stuck") when no request has
 *     ended for WATCHDOG_S seconds while some are running.
 * Built for ThreadSanitizer too (TSAN_TESTS; the reference backend, as libgomp is not instrumented). */
#include "testutil.h"
#include "http_client.h"
#include "finetune/backend.h"
#include "finetune/server.h"
#include "finetune/serve.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCHDOG_S 60
#define N_THREADS 6

static ft_engine *g_e;
static atomic_int g_failures;
static atomic_long g_progress;     /* requests ended so far (the watchdog's clock) */
static atomic_int g_outstanding;   /* requests submitted or sent and not yet ended */
static atomic_int g_stop_watchdog;

static void note_fail(const char *fmt, const char *detail) {
    printf("  FAIL: %s %s\n", fmt, detail ? detail : "");
    atomic_fetch_add(&g_failures, 1);
}

static void dump_engine(const char *when) {
    ft_engine_stats st;
    ft_engine_get_stats(g_e, &st);
    printf("  engine %s: %d queued, %d active of %d slots; %llu steps, %llu generated tokens\n", when, st.queued, st.active, st.slots,
           (unsigned long long)st.steps, (unsigned long long)st.generated_tokens);
}

/* fails the test (and says where the engine stands) when nothing ends for WATCHDOG_S while requests are out */
static void *watchdog_main(void *arg) {
    (void)arg;
    long last = -1;
    int still = 0;
    while (!atomic_load(&g_stop_watchdog)) {
        usleep(100 * 1000);
        long p = atomic_load(&g_progress);
        if (p != last || atomic_load(&g_outstanding) == 0) { last = p; still = 0; continue; }
        if (++still == WATCHDOG_S * 10) {
            printf("  server stuck: no request ended for %d s with %d outstanding\n", WATCHDOG_S, atomic_load(&g_outstanding));
            dump_engine("when stuck");
            fflush(stdout);
            abort();   /* a hang would otherwise last until the test runner's timeout */
        }
    }
    return NULL;
}

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* ---------------------------------------------------------------- the engine's API */

typedef struct one {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, after_done_tokens, tokens, status;
    char finish[16];
} one;

static int cb_token(void *user, const ft_gen_token *t) {
    one *o = user;
    pthread_mutex_lock(&o->mu);
    if (o->done) o->after_done_tokens++;
    if (t->id >= 0) {
        o->tokens++;
        if (t->n_top != 3 || !t->top_ids || !t->top_logprobs) o->after_done_tokens += 1000;   /* logprobs = 3 asked */
    }
    pthread_mutex_unlock(&o->mu);
    return 0;
}

static void cb_done(void *user, const ft_gen_result *r) {
    one *o = user;
    pthread_mutex_lock(&o->mu);
    o->done++;
    o->status = r->status;
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason ? r->finish_reason : "?");
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    atomic_fetch_add(&g_progress, 1);
    atomic_fetch_sub(&g_outstanding, 1);
}

static int submit(one *o, int max_tokens, float temperature, uint64_t seed, uint64_t *id) {
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    ft_gen_request q = ft_gen_request_default();
    q.model = "stories";
    q.prompt = "Once upon a time";
    q.params.max_new_tokens = max_tokens;
    q.params.temperature = temperature;
    q.params.seed = seed;
    q.logprobs = 3;
    atomic_fetch_add(&g_outstanding, 1);
    int rc = ft_engine_submit(g_e, &q, cb_token, cb_done, o, id);
    if (rc < 0) atomic_fetch_sub(&g_outstanding, 1);
    return rc;
}

static void wait_one(one *o) {
    pthread_mutex_lock(&o->mu);
    while (!o->done) pthread_cond_wait(&o->cv, &o->mu);   /* the watchdog ends a wait that never returns */
    pthread_mutex_unlock(&o->mu);
}

static void check_one(one *o, const char *what) {
    wait_one(o);
    usleep(200);   /* a late callback would land here */
    pthread_mutex_lock(&o->mu);
    char d[160];
    snprintf(d, sizeof d, "%s: on_done %d times, %d calls after it or without 3 logprobs, status %d (%s)", what, o->done,
             o->after_done_tokens, o->status, o->finish);
    int bad = o->done != 1 || o->after_done_tokens != 0 || (o->status < 0 && o->status != FT_ERR_INTERRUPTED);
    pthread_mutex_unlock(&o->mu);
    if (bad) note_fail("engine request", d);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
}

static atomic_int g_busy, g_cancelled_found, g_pairs;

/* pairs of requests (an n = 2 completion's two choices), cancelled at random moments */
static void *engine_client(void *arg) {
    unsigned seed = 77u + (unsigned)(intptr_t)arg;
    for (int i = 0; i < 100; i++) {
        one o[2];
        uint64_t id[2] = {0, 0};
        int rc[2];
        int max_tokens = 1 + (int)(rnd(&seed) % 12);
        for (int k = 0; k < 2; k++) rc[k] = submit(&o[k], max_tokens, k ? 0.8f : 0.0f, seed + (unsigned)k, &id[k]);
        int action = (int)(rnd(&seed) % 4);
        if (action == 1 && rc[0] == FT_OK) ft_engine_cancel(g_e, id[0]);   /* at once: mostly still queued */
        if (action == 2) {
            usleep(rnd(&seed) % 3000);   /* while prefilling or decoding */
            for (int k = 0; k < 2; k++)
                if (rc[k] == FT_OK && ft_engine_cancel(g_e, id[k]) == FT_OK) atomic_fetch_add(&g_cancelled_found, 1);
        }
        for (int k = 0; k < 2; k++) {
            if (rc[k] == FT_ERR_BUSY) { atomic_fetch_add(&g_busy, 1); continue; }
            if (rc[k] < 0) { note_fail("submit", ft_last_error()); continue; }
            check_one(&o[k], "pair");
        }
        if (action == 3)   /* after the end: nothing to cancel */
            for (int k = 0; k < 2; k++)
                if (rc[k] == FT_OK && ft_engine_cancel(g_e, id[k]) != FT_ERR_NOT_FOUND) note_fail("cancel after the end", "found it");
        atomic_fetch_add(&g_pairs, 1);
    }
    return NULL;
}

static void expect_idle(const char *when) {
    ft_engine_stats st;
    for (int i = 0; i < 100; i++) {   /* cancelled requests end within a step; abandoned HTTP ones within a poll */
        ft_engine_get_stats(g_e, &st);
        if (st.queued == 0 && st.active == 0) break;
        usleep(50 * 1000);
    }
    dump_engine(when);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.active, 0);
}

static void start_engine(void) {
    ft_engine_params ep = ft_engine_default_params();
    ep.be = ft_backend_by_name("ref");
    ep.n_slots = 2;
    ep.max_queue = 8;
    assert_int_equal(ft_engine_create(&g_e, &ep), FT_OK);
    assert_int_equal(ft_engine_load_model(g_e, "stories", "models/stories260K"), FT_OK);
}

static void test_engine_cancel_storm(void **state) {
    (void)state;
    start_engine();
    pthread_t wd;
    atomic_store(&g_stop_watchdog, 0);
    pthread_create(&wd, NULL, watchdog_main, NULL);
    /* a burst beyond 2 slots + 8 queued: the 11th is refused, then all are cancelled where they stand */
    one burst[11];
    uint64_t ids[11];
    int refused = 0;
    for (int k = 0; k < 11; k++) {
        int rc = submit(&burst[k], 400, 0.0f, (uint64_t)k, &ids[k]);
        if (rc == FT_ERR_BUSY) { refused++; ids[k] = 0; burst[k].done = -1; }
        else assert_int_equal(rc, FT_OK);
    }
    printf("  burst of 11 over 2 slots + a queue of 8: %d refused\n", refused);
    assert_true(refused >= 1);
    for (int k = 10; k >= 0; k--) if (ids[k]) ft_engine_cancel(g_e, ids[k]);
    for (int k = 0; k < 11; k++) if (burst[k].done != -1) check_one(&burst[k], "burst");
    expect_idle("after the burst");

    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) pthread_create(&th[t], NULL, engine_client, (void *)(intptr_t)t);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    printf("  %d pairs, %d refused (queue full), %d cancels that found their request\n", atomic_load(&g_pairs), atomic_load(&g_busy),
           atomic_load(&g_cancelled_found));
    expect_idle("after the storm");
    /* a new request runs at once */
    one o;
    uint64_t id;
    assert_int_equal(submit(&o, 8, 0.0f, 1, &id), FT_OK);
    check_one(&o, "after the storm");
    assert_int_equal(o.tokens, 8);
    atomic_store(&g_stop_watchdog, 1);
    pthread_join(wd, NULL);
    ft_engine_free(g_e);
    g_e = NULL;
    assert_int_equal(atomic_load(&g_failures), 0);
}

/* ---------------------------------------------------------------- over HTTP */

static int g_port;
static atomic_int g_http_ok, g_http_busy, g_http_dropped;

/* a blocking n = 2 answer with logprobs: 2 choices, each with as many token logprobs as tokens, <= 3 alternatives */
static void check_blocking(const ft_test_http_resp *r, int chat, const char *body) {
    cJSON *j = cJSON_Parse(r->body);
    cJSON *ch = cJSON_GetObjectItem(j, "choices");
    int ok = cJSON_GetArraySize(ch) == 2;
    for (int i = 0; ok && i < 2; i++) {
        cJSON *lp = cJSON_GetObjectItem(cJSON_GetArrayItem(ch, i), "logprobs");
        cJSON *toks = chat ? cJSON_GetObjectItem(lp, "content") : cJSON_GetObjectItem(lp, "tokens");
        int n = cJSON_GetArraySize(toks);
        ok = cJSON_IsArray(toks) && n >= 1 && n <= 6;
        for (int k = 0; ok && k < n; k++) {
            cJSON *top = chat ? cJSON_GetObjectItem(cJSON_GetArrayItem(toks, k), "top_logprobs")
                              : cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "top_logprobs"), k);
            ok = cJSON_GetArraySize(top) >= 1 && cJSON_GetArraySize(top) <= 3;
        }
    }
    if (!ok) note_fail("n = 2 logprobs answer", body);
    cJSON_Delete(j);
}

static void *http_client(void *arg) {
    unsigned seed = 991u + (unsigned)(intptr_t)arg;
    static const char *const completion = "{\"model\": \"stories\", \"prompt\": \"Once upon a time\", \"max_tokens\": %d, \"n\": 2, "
                                          "\"logprobs\": 3, \"temperature\": 0.7, \"seed\": %u%s}";
    static const char *const chat = "{\"model\": \"stories\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                                    "\"max_tokens\": %d, \"n\": 2, \"logprobs\": true, \"top_logprobs\": 3, \"seed\": %u%s}";
    for (int i = 0; i < 24; i++) {
        int kind = (int)(rnd(&seed) % 8), max_tokens = 1 + (int)(rnd(&seed) % 6);
        if (kind >= 5) kind = kind == 5 ? 0 : 2;   /* more of those that wait for their answer */
        int is_chat = kind == 2;
        char body[512];
        snprintf(body, sizeof body, is_chat ? chat : completion, max_tokens, rnd(&seed),
                 kind == 1 || kind == 3 ? ", \"stream\": true" : "");
        const char *path = is_chat ? "/v1/chat/completions" : "/v1/completions";
        atomic_fetch_add(&g_outstanding, 1);
        if (kind == 3 || kind == 4) {
            /* 3: a stream dropped after its first chunk; 4: a blocking request whose client leaves at once */
            int fd = ft_test_http_connect(g_port);
            if (fd < 0) { note_fail("connect", NULL); atomic_fetch_sub(&g_outstanding, 1); continue; }
            ft_test_http_send(fd, "POST", path, NULL, body, strlen(body));
            if (kind == 3) free(ft_test_http_read_until(fd, "data: {", NULL));
            close(fd);
            atomic_fetch_add(&g_http_dropped, 1);
        } else {
            ft_test_http_resp r;
            if (ft_test_http_do(g_port, "POST", path, NULL, body, &r) < 0) note_fail("no answer (no status line) to", body);
            else {
                if (r.status == 503) atomic_fetch_add(&g_http_busy, 1);
                else if (r.status != 200) note_fail("status other than 200 / 503:", r.body);
                else {
                    atomic_fetch_add(&g_http_ok, 1);
                    if (kind == 1 && (!strstr(r.body, "data: [DONE]") || !strstr(r.body, "\"logprobs\":{"))) note_fail("stream", r.body);
                    if (kind != 1) check_blocking(&r, is_chat, body);
                }
                ft_test_http_resp_free(&r);
            }
        }
        atomic_fetch_sub(&g_outstanding, 1);
        atomic_fetch_add(&g_progress, 1);
    }
    return NULL;
}

static void test_http_n2_logprobs_under_load(void **state) {
    (void)state;
    start_engine();
    ft_server_params sp = ft_server_default_params();
    sp.port = 0;
    sp.keepalive_s = 0.2;
    ft_server *srv;
    assert_int_equal(ft_server_start(&srv, g_e, &sp), FT_OK);
    g_port = ft_server_port(srv);
    pthread_t wd;
    atomic_store(&g_stop_watchdog, 0);
    pthread_create(&wd, NULL, watchdog_main, NULL);
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) pthread_create(&th[t], NULL, http_client, (void *)(intptr_t)t);
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    printf("  %d answered 200, %d answered 503 (queue full), %d dropped by their client\n", atomic_load(&g_http_ok),
           atomic_load(&g_http_busy), atomic_load(&g_http_dropped));
    expect_idle("after the clients");
    ft_test_http_resp r;
    const char *body = "{\"model\": \"stories\", \"prompt\": \"Once\", \"max_tokens\": 4, \"n\": 2, \"logprobs\": 3}";
    assert_int_equal(ft_test_http_do(g_port, "POST", "/v1/completions", NULL, body, &r), 0);
    assert_int_equal(r.status, 200);
    check_blocking(&r, 0, body);
    ft_test_http_resp_free(&r);
    atomic_store(&g_stop_watchdog, 1);
    pthread_join(wd, NULL);
    assert_int_equal(ft_server_stop(srv, 10), 0);
    ft_engine_free(g_e);
    g_e = NULL;
    assert_true(atomic_load(&g_http_ok) > 0);
    assert_int_equal(atomic_load(&g_failures), 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    ft_log_set_level(FT_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_cancel_storm),
        cmocka_unit_test(test_http_n2_logprobs_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
