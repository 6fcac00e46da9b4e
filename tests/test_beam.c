/* test_beam.c — beam search (generate.h: ft_beam_search) against transformers' generate(num_beams=N,
 * do_sample=False): tests/fixtures/beam/cases.json (tests/parity/make_beam_fixtures.py) holds the expected
 * ids and sequences_scores of 64 cases on the tiny GPT-2 and Llama fixtures, a LoRA adapter on the GPT-2 and
 * the embedded stories260K (beams 2..6, length penalties -0.5..2, early_stopping False / True / "never",
 * several returned sequences, no_repeat_ngram_size, EOS reached and not). Ids must be equal, scores within
 * 1e-4. The LoRA cases run twice: the adapter attached to the model, and as a separate ft_adapter on a
 * context shared with other slots. Also: ft_context_slot_copy, parameter errors. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/adapter.h"
#include "finetune/context.h"
#include "finetune/generate.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/backend.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_text(const char *path) {   /* the whole file, NUL-terminated; NULL if unreadable */
    char *s = NULL;
    return ft_file_read_all(path, &s, NULL) == FT_OK ? s : NULL;
}

/* a repository path "tests/fixtures/X" as the fixture path (FT_FIXTURES may move them) */
static const char *repo_path(const char *p) {
    const char *pre = "tests/fixtures/";
    return strncmp(p, pre, strlen(pre)) == 0 ? ft_fixture(p + strlen(pre)) : p;
}

static int *int_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int *v = malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = cJSON_GetArrayItem(a, i)->valueint;
    return v;
}

static ft_beam_params case_params(const cJSON *c) {
    ft_beam_params p = ft_beam_default_params();
    p.num_beams = cJSON_GetObjectItem(c, "num_beams")->valueint;
    p.length_penalty = (float)cJSON_GetObjectItem(c, "length_penalty")->valuedouble;
    const cJSON *es = cJSON_GetObjectItem(c, "early_stopping");
    p.early_stopping = cJSON_IsString(es) ? FT_BEAM_STOP_NEVER : cJSON_IsTrue(es) ? FT_BEAM_STOP_EARLY : FT_BEAM_STOP_HEURISTIC;
    p.max_new_tokens = cJSON_GetObjectItem(c, "max_new_tokens")->valueint;
    p.num_return_sequences = cJSON_GetObjectItem(c, "num_return_sequences")->valueint;
    p.no_repeat_ngram_size = cJSON_GetObjectItem(c, "no_repeat_ngram_size")->valueint;
    p.eos_token_id = cJSON_GetObjectItem(c, "eos_token_id")->valueint;
    return p;
}

/* 0 when r equals the case's expected hypotheses; prints the differences */
static int compare(const char *name, const char *how, const cJSON *c, const ft_beam_result *r, double *max_err) {
    const cJSON *exp = cJSON_GetObjectItem(c, "expected");
    int bad = 0;
    if (r->n != cJSON_GetArraySize(exp)) { printf("  %s (%s): %d hypotheses, expected %d\n", name, how, r->n, cJSON_GetArraySize(exp)); return 1; }
    for (int h = 0; h < r->n; h++) {
        const cJSON *e = cJSON_GetArrayItem(exp, h);
        int n;
        int *ids = int_array(cJSON_GetObjectItem(e, "ids"), &n);
        double score = cJSON_GetObjectItem(e, "score")->valuedouble, err = fabs(score - r->hyps[h].score);
        int same = n == r->hyps[h].n_ids && memcmp(ids, r->hyps[h].ids, sizeof(int) * (size_t)n) == 0;
        if (same && err > *max_err) *max_err = err;
        if (!same || err > 1e-4) {
            printf("  %s (%s) hypothesis %d: %s, score %.6f vs transformers %.6f\n    got     ", name, how, h,
                   same ? "ids equal" : "IDS DIFFER", r->hyps[h].score, score);
            for (int i = 0; i < r->hyps[h].n_ids; i++) printf(" %d", r->hyps[h].ids[i]);
            printf("\n    expected");
            for (int i = 0; i < n; i++) printf(" %d", ids[i]);
            printf("\n");
            bad = 1;
        }
        free(ids);
    }
    return bad;
}

static void test_beam_equals_transformers(void **state) {
    (void)state;
    char *json = read_text(ft_fixture("beam/cases.json"));
    assert_non_null(json);
    cJSON *cases = cJSON_Parse(json);
    assert_non_null(cases);
    ft_model *m = NULL;
    char cur[512] = "";
    int n_cases = 0, n_fail = 0, n_hyps = 0, n_eos = 0;
    double max_err = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char *model = cJSON_GetObjectItem(c, "model")->valuestring;
        const cJSON *ad = cJSON_GetObjectItem(c, "adapter");
        char key[512];
        snprintf(key, sizeof key, "%s|%s", model, cJSON_IsString(ad) ? ad->valuestring : "");
        if (strcmp(key, cur) != 0) {
            ft_model_free(m);
            m = NULL;
            assert_int_equal(ft_model_load(&m, repo_path(model), ft_backend_cpu()), FT_OK);
            if (cJSON_IsString(ad)) assert_int_equal(ft_model_load_adapter(m, repo_path(ad->valuestring)), FT_OK);
            snprintf(cur, sizeof cur, "%s", key);
        }
        int n;
        int *prompt = int_array(cJSON_GetObjectItem(c, "prompt"), &n);
        ft_beam_params p = case_params(c);
        ft_beam_result r;
        int rc = ft_beam_search(m, NULL, prompt, n, &p, &r);
        if (rc != FT_OK) printf("  %s: %s\n", name, ft_last_error());
        assert_int_equal(rc, FT_OK);
        n_fail += compare(name, "model", c, &r, &max_err);
        for (int h = 0; h < r.n; h++) n_eos += r.hyps[h].eos;
        n_hyps += r.n;
        ft_beam_result_free(&r);

        if (cJSON_IsString(ad)) {
            /* the same adapter as an ft_adapter over the bare base, on slots 3.. of a context whose slots 0..2
             * hold another sequence */
            ft_model *base;
            ft_adapter *a;
            ft_context *ctx;
            assert_int_equal(ft_model_load(&base, repo_path(model), ft_backend_cpu()), FT_OK);
            assert_int_equal(ft_adapter_load(&a, base, repo_path(ad->valuestring)), FT_OK);
            ft_context_params cp = ft_context_default_params();
            cp.n_slots = 3 + p.num_beams;
            assert_int_equal(ft_context_create(&ctx, base, &cp), FT_OK);
            ft_decode_seq other = {.slot = 1, .tokens = prompt, .n_tokens = n};
            assert_int_equal(ft_context_decode(ctx, &other, 1), FT_OK);
            assert_int_equal(ft_beam_search_ctx(ctx, 3, a, NULL, prompt, n, &p, &r), FT_OK);
            assert_int_equal(ft_context_slot_len(ctx, 1), n);   /* the other slot is left alone */
            n_fail += compare(name, "ft_adapter on a shared context", c, &r, &max_err);
            ft_beam_result_free(&r);
            ft_context_free(ctx);
            ft_adapter_free(a);
            ft_model_free(base);
        }
        free(prompt);
        n_cases++;
    }
    printf("  %d cases, %d hypotheses (%d ended at EOS): %d differ from transformers; max |score error| %.2e\n",
           n_cases, n_hyps, n_eos, n_fail, max_err);
    assert_true(n_cases >= 60);
    assert_true(n_eos > 10);
    assert_int_equal(n_fail, 0);
    ft_model_free(m);
    cJSON_Delete(cases);
    free(json);
}

/* a copied slot continues exactly as the original */
static void test_slot_copy(void **state) {
    (void)state;
    ft_model *m;
    ft_context *ctx;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/llama_gqa"), ft_backend_cpu()), FT_OK);
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = 3;
    assert_int_equal(ft_context_create(&ctx, m, &cp), FT_OK);
    int V = ft_model_get_config(m)->vocab_size;
    int prompt[7] = {5, 99, 4, 300, 17, 42, 8}, next = 77;
    float *a = malloc(sizeof(float) * (size_t)V), *b = malloc(sizeof(float) * (size_t)V);
    ft_decode_seq s = {.slot = 0, .tokens = prompt, .n_tokens = 7, .logits = a};
    assert_int_equal(ft_context_decode(ctx, &s, 1), FT_OK);
    ft_decode_seq junk = {.slot = 2, .tokens = prompt + 2, .n_tokens = 3};
    assert_int_equal(ft_context_decode(ctx, &junk, 1), FT_OK);
    assert_int_equal(ft_context_slot_copy(ctx, 2, 0), FT_OK);   /* replaces what slot 2 held */
    assert_int_equal(ft_context_slot_len(ctx, 2), 7);
    ft_decode_seq two[2] = {{.slot = 0, .tokens = &next, .n_tokens = 1, .logits = a},
                            {.slot = 2, .tokens = &next, .n_tokens = 1, .logits = b}};
    assert_int_equal(ft_context_decode(ctx, two, 2), FT_OK);
    assert_memory_equal(a, b, sizeof(float) * (size_t)V);
    assert_int_equal(ft_context_slot_copy(ctx, 1, 1), FT_OK);
    assert_int_equal(ft_context_slot_copy(ctx, 5, 0), FT_ERR_RANGE);
    free(a);
    free(b);
    ft_context_free(ctx);
    ft_model_free(m);
}

static void test_beam_errors(void **state) {
    (void)state;
    ft_model *m;
    ft_context *ctx;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/gpt2_tiny"), ft_backend_cpu()), FT_OK);
    int prompt[3] = {1, 2, 3};
    ft_beam_result r;
    ft_beam_params p = ft_beam_default_params();
    p.num_return_sequences = 5;
    assert_int_equal(ft_beam_search(m, NULL, prompt, 3, &p, &r), FT_ERR_INVALID);
    p = ft_beam_default_params();
    p.num_beams = 0;
    assert_int_equal(ft_beam_search(m, NULL, prompt, 3, &p, &r), FT_ERR_INVALID);
    p = ft_beam_default_params();
    assert_int_equal(ft_beam_search(m, NULL, prompt, 0, &p, &r), FT_ERR_INVALID);
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = 3;
    assert_int_equal(ft_context_create(&ctx, m, &cp), FT_OK);
    assert_int_equal(ft_beam_search_ctx(ctx, 0, NULL, NULL, prompt, 3, &p, &r), FT_ERR_RANGE);   /* 4 beams, 3 slots */
    p.num_beams = 2;
    p.max_new_tokens = 1000;   /* capped by the 64-token context */
    p.eos_token_id = -2;       /* no EOS: every hypothesis runs to the cap */
    assert_int_equal(ft_beam_search_ctx(ctx, 1, NULL, NULL, prompt, 3, &p, &r), FT_OK);
    assert_int_equal(r.hyps[0].n_ids, 64 - 3);
    assert_int_equal(r.hyps[0].eos, 0);
    ft_beam_result_free(&r);
    ft_context_free(ctx);
    ft_model_free(m);
}

/* finetune generate --num-beams prints the ids of the first case (4 beams, transformers' defaults) */
static void test_generate_cli(void **state) {
    (void)state;
    char *json = read_text(ft_fixture("beam/cases.json"));
    assert_non_null(json);
    cJSON *cases = cJSON_Parse(json);
    const cJSON *c = cJSON_GetArrayItem(cases, 0);
    assert_int_equal(cJSON_GetObjectItem(c, "num_beams")->valueint, 4);
    char prompt[256] = "", want[1024] = "";
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "prompt")) snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "%s%d", *prompt ? " " : "", v->valueint);
    const cJSON *exp = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "expected"), 0);
    int eos = cJSON_GetObjectItem(c, "eos_token_id")->valueint;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(exp, "ids"))
        if (v->valueint != eos) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", *want ? " " : "", v->valueint);
    char *out = NULL;
    assert_int_equal(ft_test_finetune(&out, "generate --model %s --prompt-ids '%s' --ids --num-beams 4 --max-tokens %d",
                                      repo_path(cJSON_GetObjectItem(c, "model")->valuestring), prompt,
                                      cJSON_GetObjectItem(c, "max_new_tokens")->valueint), 0);
    printf("  finetune generate --num-beams 4: %s", out);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "generate --model %s --prompt-ids '%s' --ids --num-beams 2 --num-return-sequences 3 2>&1",
                                      repo_path(cJSON_GetObjectItem(c, "model")->valuestring), prompt), 2);
    free(out);
    cJSON_Delete(cases);
    free(json);
}

static void count_beam_done(void *user, int i, const ft_beam_result *r) {
    int *seen = user;
    assert_true(r->n > 0);
    seen[i]++;
}

/* ft_beam_search_batch: 2 searches at a time over 7 slots (3 beams each) equal each search alone */
static void check_batch(const ft_backend *be, const char *name) {
    ft_model *m;
    assert_int_equal(ft_model_load(&m, ft_fixture("decoder/llama_gqa"), be), FT_OK);
    enum { NP = 6 };
    int *prompts[NP], lens[NP];
    for (int i = 0; i < NP; i++) {
        lens[i] = 2 + (i * 3) % 7;
        prompts[i] = malloc(sizeof(int) * (size_t)lens[i]);
        for (int t = 0; t < lens[i]; t++) prompts[i][t] = 3 + (i * 53 + t * 97) % 500;
    }
    ft_beam_params p = ft_beam_default_params();
    p.num_beams = 3;
    p.num_return_sequences = 2;
    p.max_new_tokens = 9;
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = 7;
    ft_context *ctx, *one;
    assert_int_equal(ft_context_create(&ctx, m, &cp), FT_OK);
    cp.n_slots = 3;
    assert_int_equal(ft_context_create(&one, m, &cp), FT_OK);
    for (int eos_mode = 0; eos_mode < 2; eos_mode++) {
        p.eos_token_id = -1;
        if (eos_mode) {   /* a token prompt 0's best hypothesis reaches at step 3, so that searches end at different steps */
            ft_beam_result r;
            assert_int_equal(ft_beam_search_ctx(one, 0, NULL, NULL, prompts[0], lens[0], &p, &r), FT_OK);
            p.eos_token_id = r.hyps[0].ids[2];
            ft_beam_result_free(&r);
        }
        ft_beam_result out[NP];
        int seen[NP] = {0}, same = 0, ended_eos = 0;
        assert_int_equal(ft_beam_search_batch(ctx, NULL, NULL, (const int *const *)prompts, lens, NP, &p, out, count_beam_done, seen), FT_OK);
        for (int i = 0; i < NP; i++) {
            ft_beam_result r;
            assert_int_equal(seen[i], 1);
            assert_int_equal(ft_beam_search_ctx(one, 0, NULL, NULL, prompts[i], lens[i], &p, &r), FT_OK);
            int eq = r.n == out[i].n;
            for (int h = 0; eq && h < r.n; h++) {
                eq = r.hyps[h].n_ids == out[i].hyps[h].n_ids &&
                     memcmp(r.hyps[h].ids, out[i].hyps[h].ids, sizeof(int) * (size_t)r.hyps[h].n_ids) == 0 &&
                     fabsf(r.hyps[h].score - out[i].hyps[h].score) <= (be == ft_backend_ref() ? 0.0f : 1e-5f);
                ended_eos += out[i].hyps[h].eos;
            }
            same += eq;
            ft_beam_result_free(&r);
            ft_beam_result_free(&out[i]);
        }
        printf("  %s, eos %d: %d of %d searches equal alone and batched (%d hypotheses ended at EOS)\n", name,
               p.eos_token_id, same, NP, ended_eos);
        assert_int_equal(same, NP);
    }
    for (int i = 0; i < NP; i++) free(prompts[i]);
    ft_context_free(ctx);
    ft_context_free(one);
    ft_model_free(m);
}

static void test_beam_batch(void **state) {
    (void)state;
    check_batch(ft_backend_ref(), "ref");
    check_batch(ft_backend_cpu(), "cpu");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_copy),
        cmocka_unit_test(test_beam_errors),
        cmocka_unit_test(test_beam_equals_transformers),
        cmocka_unit_test(test_generate_cli),
        cmocka_unit_test(test_beam_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
