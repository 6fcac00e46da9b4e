/* test_context_threads.c — one shared weights object, several threads: each thread owns a context and
 * greedily decodes its own prompt with its own LoRA adapter (or none) from the same ft_model and the same
 * ft_adapter objects; the ids must equal running the same generations one by one. Built and run by
 * `make SANITIZE=thread test` (ThreadSanitizer) as well as by the plain `make test`.
 * Under ThreadSanitizer only the reference backend runs (libgomp, which the CPU backend uses inside its
 * kernels, is not instrumented and would be reported falsely); the plain build runs both backends. */
#include "testutil.h"
#include "finetune/adapter.h"
#include "finetune/backend.h"
#include "finetune/context.h"
#include "finetune/generate.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_THREAD__)
#define FT_TSAN 1
#else
#define FT_TSAN 0
#endif

#define NTHREADS 6
#define NAD 3
#define NEW_TOKENS 24

static char g_dir[256];
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":211,\"hidden_size\":64,"
                             "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":96,\"rms_norm_eps\":1e-5,\"initializer_range\":0.3}";

typedef struct job {
    const ft_model *m;
    const ft_adapter *ad;
    int prompt[8], n_prompt;
    int ids[NEW_TOKENS], n_ids;
    int rc;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    ft_context *ctx;
    j->rc = ft_context_create(&ctx, j->m, NULL);
    if (j->rc < 0) return NULL;
    ft_generate_params p = ft_generate_default_params();
    p.temperature = 0;
    p.max_new_tokens = NEW_TOKENS;
    p.stop_at_eos = 0;
    ft_generation g;
    j->rc = ft_generate_ctx(ctx, 0, j->ad, NULL, j->prompt, j->n_prompt, &p, NULL, NULL, &g);
    if (j->rc == FT_OK) {
        j->n_ids = g.n_ids;
        memcpy(j->ids, g.ids, sizeof(int) * (size_t)g.n_ids);
        ft_generation_free(&g);
    }
    ft_context_free(ctx);
    return NULL;
}

static void run_backend(const ft_backend *be, const char *bname) {
    ft_model_config c;
    assert_int_equal(ft_model_config_from_json(&c, k_llama, "test"), 0);
    ft_model *base;
    assert_int_equal(ft_model_create_random(&base, &c, 7, be), 0);
    ft_adapter *ad[NAD];
    for (int k = 0; k < NAD; k++) {
        ft_model *t;
        assert_int_equal(ft_model_create_random(&t, &c, 7, be), 0);
        ft_lora_config lc = ft_lora_default_config();
        lc.r = 4 + 4 * k;
        snprintf(lc.targets, sizeof lc.targets, "%s", k == 1 ? "all-linear" : "q_proj,v_proj,down_proj");
        assert_int_equal(ft_model_add_lora(t, &lc, 11 + (uint64_t)k), 0);
        /* non-zero B so that each adapter changes the generation */
        for (int i = 0; i < ft_model_num_params(t); i++) {
            ft_param *p = ft_model_param(t, i);
            if (strncmp(p->name, "lora.", 5)) continue;
            float *w = p->t.data;
            for (int64_t e = 0; e < ft_tensor_numel(&p->t); e++) w[e] = 0.4f * (float)(((e * 7919 + i * 104729 + k * 31) % 2001) - 1000) / 1000.0f;
        }
        assert_int_equal(ft_adapter_from_model(&ad[k], t), 0);
        ft_model_free(t);
    }
    job jobs[NTHREADS], ref[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].m = base;
        jobs[i].ad = i % (NAD + 1) < NAD ? ad[i % (NAD + 1)] : NULL;
        jobs[i].n_prompt = 3 + i % 5;
        for (int t = 0; t < jobs[i].n_prompt; t++) jobs[i].prompt[t] = (17 * i + 29 * t + 3) % c.vocab_size;
        ref[i] = jobs[i];
    }
    /* one by one */
    for (int i = 0; i < NTHREADS; i++) { run_job(&ref[i]); assert_int_equal(ref[i].rc, 0); }
    /* all at once over the same model and adapters */
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    int distinct = 0;
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(jobs[i].rc, 0);
        assert_int_equal(jobs[i].n_ids, ref[i].n_ids);
        assert_memory_equal(jobs[i].ids, ref[i].ids, sizeof(int) * (size_t)ref[i].n_ids);
        if (i && memcmp(ref[i].ids, ref[0].ids, sizeof ref[0].ids)) distinct++;
    }
    printf("  %s backend: %d threads x %d tokens (adapters: %d objects + base) over one shared model: ids identical to "
           "one-by-one runs; %d of %d generations differ from thread 0's%s\n", bname, NTHREADS, NEW_TOKENS, NAD, distinct,
           NTHREADS - 1, FT_TSAN ? " (ThreadSanitizer build)" : "");
    assert_true(distinct >= NTHREADS / 2);
    for (int k = 0; k < NAD; k++) ft_adapter_free(ad[k]);
    ft_model_free(base);
}

static void test_threads_share_weights(void **st) {
    (void)st;
    run_backend(ft_backend_ref(), "ref");
    if (!FT_TSAN) run_backend(ft_backend_cpu(), "cpu");
}

static int setup(void **st) { (void)st; return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_ctx_threads"); }
static int teardown(void **st) { (void)st; return ft_test_tmpdir_remove(g_dir); }

int main(void) {
    ft_set_threads(FT_TSAN ? 1 : 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_threads_share_weights)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
