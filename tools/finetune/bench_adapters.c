/* bench_adapters.c — `finetune bench --adapters N`: N sequences, each with its own LoRA adapter over one
 * shared base, decoded together (one context with N slots: every step runs the base matmuls once for all
 * N rows and each adapter on its own row) against one after another (the same context, one sequence at a
 * time: what a server without mixed-adapter batching does). Greedy decoding; prompt and generated tokens
 * are the same in both runs, and the ids are checked to be identical.
 * stdout: `adapters_batched: X tok/s`, `adapters_sequential: Y tok/s`, `adapters_speedup: Z` (generated
 * tokens of all sequences per second, prefill included). */
#include "cli.h"
#include "finetune/adapter.h"
#include "finetune/context.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>


/* decodes every sequence for gen tokens; batched: all in each call, else one sequence at a time.
 * ids[i * gen + t] receives the tokens. */
static int run(ft_context *ctx, ft_adapter **ad, int n, const int *prompts, int plen, int gen, int V, int batched, int *ids,
               float *logits) {
    FT_TRY(ft_context_slot_clear(ctx, -1));
    ft_decode_seq *s = calloc((size_t)n, sizeof *s);
    int *next = malloc(sizeof(int) * (size_t)n);
    if (!s || !next) { free(s); free(next); return ft_error(FT_ERR_NOMEM, "bench: out of memory"); }
    int rc = FT_OK;
    for (int i = 0; i < n; i++)
        s[i] = (ft_decode_seq){.slot = batched ? i : 0, .adapter = ad[i], .tokens = prompts + (size_t)i * plen, .n_tokens = plen,
                               .logits = logits + (size_t)i * V};
    if (batched) {
        rc = ft_context_decode(ctx, s, n);
        for (int t = 0; t < gen && rc == FT_OK; t++) {
            for (int i = 0; i < n; i++) {
                next[i] = ids[(size_t)i * gen + t] = ft_cli_argmax(logits + (size_t)i * V, V);
                s[i].tokens = &next[i];
                s[i].n_tokens = 1;
            }
            if (t + 1 < gen) rc = ft_context_decode(ctx, s, n);
        }
    } else {
        for (int i = 0; i < n && rc == FT_OK; i++) {
            rc = ft_context_slot_clear(ctx, 0);
            if (rc == FT_OK) rc = ft_context_decode(ctx, &s[i], 1);
            for (int t = 0; t < gen && rc == FT_OK; t++) {
                next[i] = ids[(size_t)i * gen + t] = ft_cli_argmax(logits + (size_t)i * V, V);
                s[i].tokens = &next[i];
                s[i].n_tokens = 1;
                if (t + 1 < gen) rc = ft_context_decode(ctx, &s[i], 1);
            }
        }
    }
    free(s);
    free(next);
    return rc;
}

int ft_bench_adapters(ft_model *m, int n, int r, const char *targets, int plen, int gen) {
    const ft_model_config *c = ft_model_get_config(m);
    if (plen + gen > c->max_seq_len) gen = c->max_seq_len - plen;
    int V = c->vocab_size;
    ft_adapter **ad = calloc((size_t)n, sizeof *ad);
    int *prompts = malloc(sizeof(int) * (size_t)n * plen), *ids_b = malloc(sizeof(int) * (size_t)n * gen);
    int *ids_s = calloc((size_t)n * gen, sizeof(int));   /* zeroed: the compiler cannot see run() fill it */
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    ft_context *ctx = NULL;
    int rc = ad && prompts && ids_b && ids_s && logits ? FT_OK : ft_error(FT_ERR_NOMEM, "bench: out of memory");
    ft_lora_config lc = ft_lora_default_config();
    lc.r = r;
    lc.dropout = 0;
    snprintf(lc.targets, sizeof lc.targets, "%s", targets ? targets : "");
    for (int i = 0; i < n && rc == FT_OK; i++) {
        rc = ft_adapter_create(&ad[i], m, &lc, 1000 + (uint64_t)i);
        /* B = 0 would make every adapter the identity: give each its own non-zero B, so the sequences differ */
        for (int k = 0; rc == FT_OK && k < ft_adapter_module_count(ad[i]); k++) {
            float *B;
            int rows, rr;
            rc = ft_adapter_module_weights(ad[i], k, NULL, &B, &rows, NULL, &rr);
            uint64_t x = 2000 + (uint64_t)i * 977 + (uint64_t)k;
            for (long e = 0; rc == FT_OK && e < (long)rows * rr; e++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                B[e] = 0.02f * ((float)(x >> 40) / 8388608.0f - 1.0f);
            }
        }
    }
    for (int i = 0; i < n * plen && prompts; i++) prompts[i] = (int)(((long)i * 7919 + 13) % V);
    ft_context_params p = ft_context_default_params();
    p.n_slots = n;
    p.slot_tokens = plen + gen;
    p.batch_tokens = n * plen > 64 ? n * plen : 64;
    if (rc == FT_OK) rc = ft_context_create(&ctx, m, &p);
    if (rc == FT_OK)
        fprintf(stderr, "bench: %d sequences x (%d prompt + %d generated tokens), %d adapters (r %d, %d modules each), "
                "context %.1f MB, %d threads\n", n, plen, gen, n, r, ft_adapter_module_count(ad[0]),
                (double)ft_context_bytes(m, &p) / (1 << 20), ft_get_threads());
    double tb = 0, ts = 0;
    if (rc == FT_OK) rc = run(ctx, ad, n, prompts, plen, 2, V, 1, ids_b, logits); /* warm-up */
    if (rc == FT_OK) { double t0 = ft_cli_now_s(); rc = run(ctx, ad, n, prompts, plen, gen, V, 1, ids_b, logits); tb = ft_cli_now_s() - t0; }
    if (rc == FT_OK) { double t0 = ft_cli_now_s(); rc = run(ctx, ad, n, prompts, plen, gen, V, 0, ids_s, logits); ts = ft_cli_now_s() - t0; }
    if (rc == FT_OK) {
        int same = !memcmp(ids_b, ids_s, sizeof(int) * (size_t)n * gen);
        int differ = 0;
        for (int i = 1; i < n; i++) differ += memcmp(ids_b, ids_b + (size_t)i * gen, sizeof(int) * (size_t)gen) != 0;
        fprintf(stderr, "bench: batched %.2f s, one after another %.2f s; generated ids %s; %d of %d sequences differ from the first\n",
                tb, ts, same ? "identical" : "DIFFERENT", differ, n - 1);
        printf("adapters_batched: %.1f tok/s\n", (double)n * gen / tb);
        printf("adapters_sequential: %.1f tok/s\n", (double)n * gen / ts);
        printf("adapters_speedup: %.2fx\n", ts / tb);
        if (!same) rc = ft_error(FT_ERR_INVALID, "batched and one-by-one decoding gave different tokens");
    }
    ft_context_free(ctx);
    for (int i = 0; i < n && ad; i++) ft_adapter_free(ad[i]);
    free(ad);
    free(prompts);
    free(ids_b);
    free(ids_s);
    free(logits);
    return rc;
}
