/* test_generate_batch.c — ft_generate_batch (generate.h): 7 prompts of different lengths over 3 slots, greedy
 * and sampled (seed + i per prompt), with and without a LoRA adapter, equal ft_generate_ctx of each prompt
 * alone — exactly on the reference backend, ids equal on the CPU backend; on_done called once per prompt;
 * a prompt that fills the context is an error. */
#include "testutil.h"
#include "finetune/adapter.h"
#include "finetune/backend.h"
#include "finetune/context.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NP = 7 };

static void count_done(void *user, int i, const ft_generation *g) {
    int *seen = user;
    assert_true(i >= 0 && i < NP);
    assert_non_null(g->ids);
    seen[i]++;
}

static void check_backend(const ft_backend *be, const char *name) {
    ft_model *m;
    ft_adapter *ad;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/llama_gqa"), be), FT_OK);
    assert_int_equal(ft_adapter_load(&ad, m, ft_fixture("lora/llama_gqa_qv/adapter")), FT_OK);
    int *prompts[NP], lens[NP];
    for (int i = 0; i < NP; i++) {
        lens[i] = 1 + (i * 5) % 11;
        prompts[i] = malloc(sizeof(int) * (size_t)lens[i]);
        for (int t = 0; t < lens[i]; t++) prompts[i][t] = 3 + (i * 37 + t * 101) % 500;
    }
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = 3;
    ft_context *ctx, *one;
    assert_int_equal(ft_context_create(&ctx, m, &cp), FT_OK);
    assert_int_equal(ft_context_create(&one, m, NULL), FT_OK);
    for (int mode = 0; mode < 3; mode++) {
        ft_generate_params p = ft_generate_default_params();
        p.max_new_tokens = 6 + mode * 5;
        p.temperature = mode == 0 ? 0.0f : 0.9f;
        p.top_p = mode == 2 ? 0.8f : 1.0f;
        p.seed = 77;
        p.stop_at_eos = 0;
        const ft_adapter *a = mode == 2 ? ad : NULL;
        ft_generation out[NP];
        int seen[NP] = {0};
        assert_int_equal(ft_generate_batch(ctx, a, NULL, (const int *const *)prompts, lens, NP, &p, out, count_done, seen), FT_OK);
        int same = 0;
        for (int i = 0; i < NP; i++) {
            assert_int_equal(seen[i], 1);
            ft_generate_params pi = p;
            pi.seed = p.seed + (uint64_t)i;
            ft_generation g;
            assert_int_equal(ft_generate_ctx(one, 0, a, NULL, prompts[i], lens[i], &pi, NULL, NULL, &g), FT_OK);
            assert_int_equal(g.n_ids, out[i].n_ids);
            same += memcmp(g.ids, out[i].ids, sizeof(int) * (size_t)g.n_ids) == 0;
            ft_generation_free(&g);
            ft_generation_free(&out[i]);
        }
        printf("  %s, mode %d: %d of %d prompts equal alone and batched\n", name, mode, same, NP);
        assert_int_equal(same, NP);
    }
    /* a prompt that fills the context */
    int *big = calloc(200, sizeof(int));
    const int *bp[1] = {big};
    int bl[1] = {200};
    ft_generation o1[1];
    ft_generate_params p = ft_generate_default_params();
    assert_int_equal(ft_generate_batch(ctx, NULL, NULL, bp, bl, 1, &p, o1, NULL, NULL), FT_ERR_RANGE);
    free(big);
    for (int i = 0; i < NP; i++) free(prompts[i]);
    ft_context_free(ctx);
    ft_context_free(one);
    ft_adapter_free(ad);
    ft_model_free(m);
}

static void test_batch_equals_alone(void **state) {
    (void)state;
    check_backend(ft_backend_ref(), "ref");
    check_backend(ft_backend_cpu(), "cpu");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_batch_equals_alone)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
