/* test_serve_metrics.c — the Prometheus exposition of `finetune serve` (src/serve/prom.c, metrics.c): the
 * text format (HELP/TYPE, escaping, cumulative buckets), bounded label cardinality (unknown model names,
 * raw paths, series caps), adapter names resolved to their base, the sliding tokens/s window, process
 * gauges, and counts from many threads at once (also run under ThreadSanitizer). */
#include "testutil.h"
#include "core/strbuf.h"
#include "finetune/status.h"
#include "serve/metrics.h"
#include "serve/prom.h"
#include "serve/web.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render_family(ft__prom_family *f) {
    ft__sb b = {0};
    assert_int_equal(ft__prom_render(f, &b), FT_OK);
    return ft__sb_take(&b, NULL);
}

/* The value on the line that starts with `series ` (exact series text), or -1 when no such line. */
static double sample_value(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}

static void test_counter_format_and_escaping(void **st) {
    (void)st;
    static const char *const lbl[] = {"route", "status"};
    ft__prom_family *f;
    assert_int_equal(ft__prom_family_create(&f, "x_total", "Help with \\ and\nnewline.", FT__PROM_COUNTER, 2, lbl, NULL, 0, 16), FT_OK);
    const char *a[] = {"/v1/completions", "200"};
    const char *b[] = {"we\"ird\\pa\nth", "404"};
    const char *c[] = {"bad\xff" "utf8", "400"};
    ft__prom_add(f, a, 1);
    ft__prom_add(f, a, 2);
    ft__prom_add(f, a, -5);   /* counters never go down */
    ft__prom_add(f, b, 1);
    ft__prom_add(f, c, 1);
    char *t = render_family(f);
    printf("%s", t);
    assert_non_null(strstr(t, "# HELP x_total Help with \\\\ and\\nnewline.\n# TYPE x_total counter\n"));
    assert_true(sample_value(t, "x_total{route=\"/v1/completions\",status=\"200\"}") == 3);
    assert_true(sample_value(t, "x_total{route=\"we\\\"ird\\\\pa\\nth\",status=\"404\"}") == 1);
    assert_true(sample_value(t, "x_total{route=\"bad\xEF\xBF\xBDutf8\",status=\"400\"}") == 1);
    assert_true(ft__prom_get(f, a) == 3);
    free(t);
    ft__prom_family_free(f);
}

static void test_histogram_cumulative(void **st) {
    (void)st;
    static const char *const lbl[] = {"route"};
    static const double bounds[] = {0.005, 0.1, 1};
    ft__prom_family *f;
    assert_int_equal(ft__prom_family_create(&f, "d_seconds", "Latency.", FT__PROM_HISTOGRAM, 1, lbl, bounds, 3, 8), FT_OK);
    const char *v[] = {"/x"};
    double xs[] = {0.001, 0.005, 0.05, 0.5, 0.7, 3};
    for (int i = 0; i < 6; i++) ft__prom_observe(f, v, xs[i]);
    char *t = render_family(f);
    printf("%s", t);
    assert_non_null(strstr(t, "# TYPE d_seconds histogram\n"));
    assert_true(sample_value(t, "d_seconds_bucket{route=\"/x\",le=\"0.005\"}") == 2);   /* le is inclusive */
    assert_true(sample_value(t, "d_seconds_bucket{route=\"/x\",le=\"0.1\"}") == 3);
    assert_true(sample_value(t, "d_seconds_bucket{route=\"/x\",le=\"1\"}") == 5);
    assert_true(sample_value(t, "d_seconds_bucket{route=\"/x\",le=\"+Inf\"}") == 6);
    assert_true(sample_value(t, "d_seconds_count{route=\"/x\"}") == 6);
    double sum = sample_value(t, "d_seconds_sum{route=\"/x\"}");
    assert_true(sum > 4.2559 && sum < 4.2561);
    free(t);
    ft__prom_family_free(f);
}

static void test_series_cap(void **st) {
    (void)st;
    static const char *const lbl[] = {"k"};
    ft__prom_family *f;
    assert_int_equal(ft__prom_family_create(&f, "c_total", "Capped.", FT__PROM_COUNTER, 1, lbl, NULL, 0, 4), FT_OK);
    for (int i = 0; i < 1000; i++) {
        char k[32];
        snprintf(k, sizeof k, "key%d", i);
        const char *v[] = {k};
        ft__prom_add(f, v, 1);
    }
    char *t = render_family(f);
    int lines = 0;
    for (const char *p = t; (p = strstr(p, "c_total{")); p++) lines++;
    printf("  %d series after 1000 distinct keys (cap 4 + overflow)\n", lines);
    assert_int_equal(lines, 5);
    assert_true(sample_value(t, "c_total{k=\"other\"}") == 996);
    free(t);
    ft__prom_family_free(f);
}

static void test_numbers(void **st) {
    (void)st;
    ft__sb b = {0};
    double v[] = {0, 3, -2, 0.005, 1e300, 0.1 + 0.2, 1.0 / 0.0, -1.0 / 0.0};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        ft__prom_put_number(&b, v[i]);
        ft__sb_putc(&b, ' ');
    }
    printf("  %s\n", b.p);
    assert_string_equal(b.p, "0 3 -2 0.005 1e+300 0.30000000000000004 +Inf -Inf ");
    ft__sb_free(&b);
}

static void test_route_labels(void **st) {
    (void)st;
    struct { const char *path, *want; } c[] = {
        {"/", "/"}, {"/health", "/health"}, {"/metrics?x=1", "/metrics"}, {"/v1/models", "/v1/models"},
        {"/v1/models/stories", "/v1/models/{id}"}, {"/v1/completions", "/v1/completions"},
        {"/v1/chat/completions", "/v1/chat/completions"}, {"/v1/embeddings", "/v1/embeddings"},
        {"/v1/adapters", "/v1/adapters"}, {"/v1/adapters/bot", "/v1/adapters/{name}"}, {"/models", "/models"},
        {"/models/sst2", "/models/{id}"}, {"/models/sst2/predict", "/models/{id}/predict"},
        {"/models/{id}/predict", "/models/{id}/predict"}, {"/models/a/b/predict", "other"}, {"/models//predict", "other"},
        {"/nope", "other"}, {"/v1/completionsX", "other"}, {"", "other"}, {NULL, "other"}, {"/models/x/predictor", "other"}, {"(auth)", "(auth)"}, {"(rate limit)", "(rate limit)"}, {"(bogus)", "other"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        const char *got = ft__metrics_route_label(c[i].path);
        if (strcmp(got, c[i].want)) printf("  %s -> %s, want %s\n", c[i].path ? c[i].path : "(null)", got, c[i].want);
        assert_string_equal(got, c[i].want);
    }
}

static char *render_metrics(ft__metrics *m, const ft_engine_stats *es, ft__drift *d) {
    ft__sb b = {0};
    assert_int_equal(ft__metrics_render(m, es, d, &b), FT_OK);
    return ft__sb_take(&b, NULL);
}

static void test_server_metrics(void **st) {
    (void)st;
    ft__metrics *m;
    assert_int_equal(ft__metrics_create(&m), FT_OK);
    ft_engine_entry e[3];
    memset(e, 0, sizeof e);
    snprintf(e[0].name, sizeof e[0].name, "stories");
    snprintf(e[1].name, sizeof e[1].name, "bot");
    snprintf(e[1].base, sizeof e[1].base, "stories");
    e[1].is_adapter = 1;
    snprintf(e[2].name, sizeof e[2].name, "sst2");
    assert_int_equal(ft__metrics_set_names(m, e, 3), FT_OK);

    ft__request_obs o = {.route = "/v1/completions", .model = "stories", .status = 200, .latency_s = 0.2,
                         .ttft_s = 0.01, .prompt_tokens = 5, .generated_tokens = 32};
    ft__metrics_observe(m, &o);
    o.model = "bot";   /* an adapter: counted under its base */
    ft__metrics_observe(m, &o);
    ft__request_obs bad = {.route = "/v1/completions", .model = "x\"; DROP", .status = 404, .latency_s = 0.001, .ttft_s = -1};
    for (int i = 0; i < 50; i++) ft__metrics_observe(m, &bad);   /* unknown names make no series */
    ft__request_obs pred = {.route = "/models/sst2/predict", .model = "sst2", .status = 200, .latency_s = 0.03,
                            .ttft_s = -1, .prompt_tokens = 7};
    ft__metrics_observe(m, &pred);
    ft__request_obs raw = {.route = "/some/unknown/route", .status = 404, .latency_s = 0.001, .ttft_s = -1};
    ft__metrics_observe(m, &raw);

    ft_engine_stats es = {.queued = 3, .active = 2, .slots = 8, .steps = 10, .batched_rows = 25, .encoder_batches = 4, .encoder_texts = 9};
    ft__drift *d;
    assert_int_equal(ft__drift_create(&d, NULL, NULL, NULL), FT_OK);
    ft__drift_observe_prompt(d, "stories", 5, 0);
    char *t = render_metrics(m, &es, d);
    printf("%s", t);
    assert_true(sample_value(t, "finetune_requests_total{route=\"/v1/completions\",status=\"200\"}") == 2);
    assert_true(sample_value(t, "finetune_requests_total{route=\"/v1/completions\",status=\"404\"}") == 50);
    assert_true(sample_value(t, "finetune_requests_total{route=\"/models/{id}/predict\",status=\"200\"}") == 1);
    assert_true(sample_value(t, "finetune_requests_total{route=\"other\",status=\"404\"}") == 1);
    assert_true(sample_value(t, "finetune_generated_tokens_total{model=\"stories\",adapter=\"\"}") == 32);
    assert_true(sample_value(t, "finetune_generated_tokens_total{model=\"stories\",adapter=\"bot\"}") == 32);
    assert_true(sample_value(t, "finetune_prompt_tokens_total{model=\"sst2\",adapter=\"\"}") == 7);
    assert_true(sample_value(t, "finetune_model_requests_total{model=\"unknown\",adapter=\"\"}") == 50);
    assert_null(strstr(t, "DROP"));
    assert_true(sample_value(t, "finetune_time_to_first_token_seconds_count{model=\"stories\"}") == 2);
    assert_true(sample_value(t, "finetune_request_duration_seconds_bucket{route=\"/v1/completions\",le=\"0.25\"}") == 52);
    assert_true(sample_value(t, "finetune_generated_tokens_per_second") == 6.4);   /* 64 tokens / 10 s */
    assert_true(sample_value(t, "finetune_queue_depth") == 3);
    assert_true(sample_value(t, "finetune_active_slots") == 2);
    assert_true(sample_value(t, "finetune_slots") == 8);
    assert_true(sample_value(t, "finetune_batch_rows_mean") == 2.5);
    assert_true(sample_value(t, "finetune_encoder_texts_total") == 9);
    double rss = sample_value(t, "process_resident_memory_bytes");
    double start = sample_value(t, "process_start_time_seconds");
    printf("  rss %.0f bytes, start %.2f\n", rss, start);
    assert_true(rss > 1e5);
    assert_true(start > 1.5e9 && start <= (double)time(NULL) + 1);
    assert_true(sample_value(t, "finetune_drift_statistic{model=\"stories\",signal=\"prompt_tokens\"}") == 0);
    assert_true(sample_value(t, "finetune_drift_alarms_total") == 0);
    /* every non-comment line is `name{...} number` or `name number` */
    for (char *line = t; line && *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#') {
            char *sp = nl;
            while (sp > line && sp[-1] != ' ') sp--;
            assert_true(sp > line + 1);
            char *end;
            strtod(sp, &end);
            assert_true(end == nl || !strncmp(sp, "+Inf", 4) || !strncmp(sp, "NaN", 3));
        }
        line = nl + 1;
    }
    free(t);
    ft__drift_free(d);
    ft__metrics_free(m);
}

enum { N_THREADS = 4, PER_THREAD = 5000 };

static void *observe_many(void *arg) {
    ft__metrics *m = arg;
    ft__request_obs o = {.route = "/v1/completions", .model = "stories", .status = 200, .latency_s = 0.01,
                         .ttft_s = 0.001, .prompt_tokens = 1, .generated_tokens = 2};
    for (int i = 0; i < PER_THREAD; i++) ft__metrics_observe(m, &o);
    return NULL;
}

static void test_concurrent_observe(void **st) {
    (void)st;
    ft__metrics *m;
    assert_int_equal(ft__metrics_create(&m), FT_OK);
    ft_engine_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.name, sizeof e.name, "stories");
    assert_int_equal(ft__metrics_set_names(m, &e, 1), FT_OK);
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, observe_many, m), 0);
    for (int k = 0; k < 20; k++) {   /* scrapes while the counts run */
        char *t = render_metrics(m, NULL, NULL);
        free(t);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    char *t = render_metrics(m, NULL, NULL);
    assert_true(sample_value(t, "finetune_requests_total{route=\"/v1/completions\",status=\"200\"}") == N_THREADS * PER_THREAD);
    assert_true(sample_value(t, "finetune_generated_tokens_total{model=\"stories\",adapter=\"\"}") == 2.0 * N_THREADS * PER_THREAD);
    assert_true(sample_value(t, "finetune_time_to_first_token_seconds_count{model=\"stories\"}") == N_THREADS * PER_THREAD);
    free(t);
    ft__metrics_free(m);
}

/* the page at GET / is the file src/serve/web/index.html, byte for byte (the build embeds it) */
static void test_web_page_embedded(void **st) {
    (void)st;
    FILE *f = fopen("src/serve/web/index.html", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    assert_true(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    printf("  index.html: %ld bytes, embedded %zu\n", n, ft__web_index_html_len);
    assert_int_equal((long)ft__web_index_html_len, n);
    assert_memory_equal(ft__web_index_html, b, (size_t)n);
    assert_int_equal(ft__web_index_html[n], 0);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_format_and_escaping),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_route_labels),
        cmocka_unit_test(test_server_metrics),
        cmocka_unit_test(test_concurrent_observe),
        cmocka_unit_test(test_web_page_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
