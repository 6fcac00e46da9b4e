/* test_serve_engine_threads.c — the serving engine under concurrent use, built for ThreadSanitizer too
 * (TSAN_TESTS: `make SANITIZE=thread test`; the reference backend only, as libgomp is not instrumented):
 * client threads submit generation requests over the base and two adapters (blocking and with callbacks),
 * one thread loads and unloads a third adapter over and over while requests use it, one cancels requests
 * by id, two call the encoder (predict and embed) at the same time, one reads the stats; then the engine is
 * drained and freed. Every request that was not cancelled must give the ids of the same request run alone
 * (ft_generate_ctx), including those whose adapter was unloaded while they ran; a request naming the
 * unloaded adapter gets FT_ERR_NOT_FOUND and nothing else. */
#include "testutil.h"
#include "finetune/adapter.h"
#include "finetune/backend.h"
#include "finetune/context.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/predict.h"
#include "finetune/serve.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORIES "models/stories260K"
#define CLASSIFIER "tests/fixtures/train_encoder/tiny_bert"
#define NAD 3                     /* adapters; the last is loaded and unloaded while requests run */
#define NCLIENTS 4
#define PER_CLIENT 6
#define NEW_TOKENS 16

static char g_dir[256], g_ad[NAD][512];
static const char *k_names[NAD] = {"t-qv", "t-all", "t-churn"};
static const char *k_prompts[] = {"Once upon a time", "The cat sat", "Tom had a red", "She was happy because"};

/* request j: prompt j % 4, adapter j % (NAD + 1) - 1 (-1: the base) */
static int want_ids[NCLIENTS * PER_CLIENT][NEW_TOKENS], want_n[NCLIENTS * PER_CLIENT];

typedef struct result {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status, n, ids[NEW_TOKENS];
    char finish[16];
} result;

static void on_done(void *user, const ft_gen_result *r) {
    result *o = user;
    pthread_mutex_lock(&o->mu);
    o->status = r->status;
    o->n = r->n_tokens < NEW_TOKENS ? r->n_tokens : NEW_TOKENS;
    memcpy(o->ids, r->ids, sizeof(int) * (size_t)o->n);
    snprintf(o->finish, sizeof o->finish, "%s", r->finish_reason);
    o->done = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static ft_engine *g_e;
static atomic_int g_stop, g_not_found, g_cancelled, g_checked;
static _Atomic uint64_t g_last_id;

static ft_gen_request request(int j) {
    ft_gen_request r = ft_gen_request_default();
    int k = j % (NAD + 1) - 1;
    r.model = k >= 0 ? k_names[k] : "base";
    r.prompt = k_prompts[j % 4];
    r.params.temperature = 0;
    r.params.max_new_tokens = NEW_TOKENS;
    r.params.stop_at_eos = 0;
    return r;
}

static void check(int j, int status, const char *finish, const int *ids, int n) {
    if (status == FT_ERR_INTERRUPTED) { assert_string_equal(finish, "cancelled"); atomic_fetch_add(&g_cancelled, 1); return; }
    assert_int_equal(status, 0);
    assert_int_equal(n, want_n[j]);
    assert_memory_equal(ids, want_ids[j], sizeof(int) * (size_t)n);
    atomic_fetch_add(&g_checked, 1);
}

static void *client(void *arg) {
    int c = (int)(intptr_t)arg;
    for (int i = 0; i < PER_CLIENT; i++) {
        int j = c * PER_CLIENT + i;
        ft_gen_request r = request(j);
        if (i % 2 == 0) {   /* blocking */
            ft_gen_result g;
            int rc = ft_engine_generate(g_e, &r, NULL, NULL, &g);
            if (rc == FT_ERR_NOT_FOUND) atomic_fetch_add(&g_not_found, 1);
            else check(j, rc, g.finish_reason, g.ids, g.n_tokens);
            ft_gen_result_free(&g);
        } else {            /* callbacks */
            result o;
            memset(&o, 0, sizeof o);
            pthread_mutex_init(&o.mu, NULL);
            pthread_cond_init(&o.cv, NULL);
            uint64_t id;
            int rc = ft_engine_submit(g_e, &r, NULL, on_done, &o, &id);
            if (rc == FT_ERR_NOT_FOUND) atomic_fetch_add(&g_not_found, 1);
            else {
                assert_int_equal(rc, 0);
                atomic_store(&g_last_id, id);
                pthread_mutex_lock(&o.mu);
                while (!o.done) pthread_cond_wait(&o.cv, &o.mu);
                pthread_mutex_unlock(&o.mu);
                check(j, o.status, o.finish, o.ids, o.n);
            }
            pthread_cond_destroy(&o.cv);
            pthread_mutex_destroy(&o.mu);
        }
    }
    return NULL;
}

static void *churn(void *arg) {
    (void)arg;
    int cycles = 0;
    while (!atomic_load(&g_stop)) {
        int rc = ft_engine_unload_adapter(g_e, k_names[NAD - 1]);
        assert_true(rc == FT_OK || rc == FT_ERR_NOT_FOUND);
        rc = ft_engine_load_adapter(g_e, k_names[NAD - 1], "base", g_ad[NAD - 1]);
        assert_int_equal(rc, 0);
        cycles++;
        usleep(2000);   /* loaded for a while: requests take it, and it is unloaded under them */
    }
    printf("  adapter %s unloaded and loaded %d times while requests ran\n", k_names[NAD - 1], cycles);
    return NULL;
}

static void *canceller(void *arg) {
    (void)arg;
    int n = 0;
    while (!atomic_load(&g_stop)) {
        uint64_t id = atomic_load(&g_last_id);
        if (id && id % 3 == 0 && ft_engine_cancel(g_e, id) == FT_OK) n++;   /* about a third of those it sees */
        ft_engine_stats s;
        ft_engine_get_stats(g_e, &s);
        assert_true(s.active <= s.slots);
        ft_engine_entry *v;
        int cnt;
        assert_int_equal(ft_engine_list(g_e, &v, &cnt), 0);
        ft_engine_entries_free(v, cnt);
    }
    return NULL;
}

static void *encoder_client(void *arg) {
    int embed = (int)(intptr_t)arg;
    const char *texts[3] = {"a good film", "bad", "the plot is thin but the acting is great"};
    for (int i = 0; i < 8; i++) {
        if (embed) {
            float *v;
            int dim;
            assert_int_equal(ft_engine_embed(g_e, "sst", texts, 3, &v, &dim, NULL), 0);
            free(v);
        } else {
            ft_prediction p[3];
            assert_int_equal(ft_engine_predict(g_e, "sst", texts, 3, p, NULL, NULL), 0);
            for (int k = 0; k < 3; k++) ft_prediction_free(&p[k]);
        }
    }
    return NULL;
}

static void test_engine_threads(void **st) {
    (void)st;
    const ft_backend *be = ft_backend_ref();
    /* the reference ids: each request alone */
    ft_model *m;
    ft_tokenizer *tok;
    ft_adapter *ad[NAD];
    assert_int_equal(ft_model_load(&m, STORIES, be), 0);
    assert_int_equal(ft_tokenizer_load(&tok, STORIES), 0);
    for (int k = 0; k < NAD; k++) assert_int_equal(ft_adapter_load(&ad[k], m, g_ad[k]), 0);
    ft_context *ctx;
    assert_int_equal(ft_context_create(&ctx, m, NULL), 0);
    for (int j = 0; j < NCLIENTS * PER_CLIENT; j++) {
        ft_gen_request r = request(j);
        int k = j % (NAD + 1) - 1, *ids, n;
        assert_int_equal(ft_tokenizer_encode(tok, r.prompt, strlen(r.prompt), FT_TOK_ADD_SPECIAL, &ids, &n), 0);
        ft_generation g;
        assert_int_equal(ft_generate_ctx(ctx, 0, k >= 0 ? ad[k] : NULL, tok, ids, n, &r.params, NULL, NULL, &g), 0);
        want_n[j] = g.n_ids;
        memcpy(want_ids[j], g.ids, sizeof(int) * (size_t)g.n_ids);
        ft_generation_free(&g);
        free(ids);
    }
    ft_context_free(ctx);
    for (int k = 0; k < NAD; k++) ft_adapter_free(ad[k]);
    ft_tokenizer_free(tok);
    ft_model_free(m);

    ft_engine_params p = ft_engine_default_params();
    p.be = be;
    p.n_slots = 3;
    p.prefill_chunk = 2;
    p.max_queue = 64;
    p.max_batch_texts = 4;
    assert_int_equal(ft_engine_create(&g_e, &p), 0);
    assert_int_equal(ft_engine_load_model(g_e, "base", STORIES), 0);
    assert_int_equal(ft_engine_load_model(g_e, "sst", CLASSIFIER), 0);
    for (int k = 0; k < NAD; k++) assert_int_equal(ft_engine_load_adapter(g_e, k_names[k], "base", g_ad[k]), 0);
    pthread_t cl[NCLIENTS], ch, ca, en[2];
    assert_int_equal(pthread_create(&ch, NULL, churn, NULL), 0);
    assert_int_equal(pthread_create(&ca, NULL, canceller, NULL), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&en[i], NULL, encoder_client, (void *)(intptr_t)i), 0);
    for (int c = 0; c < NCLIENTS; c++) assert_int_equal(pthread_create(&cl[c], NULL, client, (void *)(intptr_t)c), 0);
    for (int c = 0; c < NCLIENTS; c++) pthread_join(cl[c], NULL);
    for (int i = 0; i < 2; i++) pthread_join(en[i], NULL);
    atomic_store(&g_stop, 1);
    pthread_join(ch, NULL);
    pthread_join(ca, NULL);
    ft_engine_stats s;
    ft_engine_get_stats(g_e, &s);
    printf("  %d requests from %d threads: %d equal their one-by-one ids, %d cancelled by id, %d named the adapter while "
           "unloaded; %llu steps, %.2f rows per step; %llu encoder forwards for %llu texts\n", NCLIENTS * PER_CLIENT, NCLIENTS,
           atomic_load(&g_checked), atomic_load(&g_cancelled), atomic_load(&g_not_found), (unsigned long long)s.steps,
           s.steps ? (double)s.batched_rows / (double)s.steps : 0.0, (unsigned long long)s.encoder_batches,
           (unsigned long long)s.encoder_texts);
    assert_int_equal(atomic_load(&g_checked) + atomic_load(&g_cancelled) + atomic_load(&g_not_found), NCLIENTS * PER_CLIENT);
    assert_true(atomic_load(&g_checked) >= NCLIENTS * PER_CLIENT / 2);   /* the blocking half is never cancelled */
    assert_int_equal(s.active + s.queued, 0);
    assert_int_equal(ft_engine_drain(g_e, 10), 0);
    ft_engine_free(g_e);
}

static int setup(void **st) {
    (void)st;
    FT_TRY(ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_serve_threads"));
    static const char *targets[NAD] = {"q_proj,v_proj", "all-linear", "o_proj,down_proj"};
    for (int k = 0; k < NAD; k++) {
        snprintf(g_ad[k], sizeof g_ad[k], "%s", ft_test_path(g_dir, k_names[k]));
        FT_TRY(ft_test_make_lora_dir(STORIES, g_ad[k], targets[k], 4, 200 + (uint64_t)k, 0.5f));
    }
    return 0;
}
static int teardown(void **st) { (void)st; return ft_test_tmpdir_remove(g_dir); }

int main(void) {
    ft_set_threads(0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_engine_threads)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
