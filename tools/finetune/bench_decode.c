/* bench_decode.c — `finetune bench --model PATH`: the inference speed of a stored model (an HF directory or
 * a GGUF file, quantized or not; --precision bf16: its matmul weights in bf16) at batch 1, as llama.cpp's
 * llama-bench measures it:
 *   prefill   one ft_model_decode call over prompt_len tokens (the prompt as one batch: sgemm paths)
 *   decode    gen_tokens greedy steps of one token each after the prompt (the matrix-vector kernels)
 * Each is run reps times after one warm-up; the best run is reported (the machine is shared).
 * stdout: `prefill: X tok/s`, `decode: Y tok/s`, and the greedy ids of the last run (`ids: ...`) so that a
 * caller can compare them with another engine's. */
#include "cli.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>


int ft_bench_decode(const char *path, ft_dtype weights, int prompt_len, int gen_tokens, int reps) {
    ft_model *m;
    double t0 = ft_cli_now_s();
    FT_TRY(ft_model_load_quantized(&m, path, NULL, weights));
    const ft_model_config *c = ft_model_get_config(m);
    fprintf(stderr, "bench: %s (%s), %.1fM parameters, %.1f MB of weights, loaded in %.2f s\n", path, c->model_type,
            (double)ft_model_param_count(m) / 1e6, (double)ft_model_weight_bytes(m) / 1e6, ft_cli_now_s() - t0);
    if (prompt_len + gen_tokens > c->max_seq_len) {
        ft_model_free(m);
        return ft_error(FT_ERR_RANGE, "bench: prompt %d + %d tokens exceed the context of %d", prompt_len, gen_tokens, c->max_seq_len);
    }
    int V = c->vocab_size;
    int *ids = malloc(sizeof(int) * (size_t)(prompt_len + gen_tokens));
    float *logits = malloc(sizeof(float) * (size_t)V);
    int rc = ids && logits ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < prompt_len && ids; i++) ids[i] = 1 + (int)((i * 7919L) % (V - 1));   /* fixed pseudo-random prompt */
    double best_pp = 0, best_tg = 0;
    for (int r = -1; r < reps && rc == FT_OK; r++) {
        rc = ft_model_kv_reset(m);
        double a = ft_cli_now_s();
        if (rc == FT_OK) rc = ft_model_decode(m, ids, prompt_len, 0, logits);
        double b = ft_cli_now_s();
        for (int t = 0; t < gen_tokens && rc == FT_OK; t++) {
            ids[prompt_len + t] = ft_cli_argmax(logits, V);
            if (t + 1 < gen_tokens) rc = ft_model_decode(m, &ids[prompt_len + t], 1, prompt_len + t, logits);
        }
        double e = ft_cli_now_s();
        double pp = prompt_len / (b - a), tg = (gen_tokens - 1) / (e - b);
        if (rc == FT_OK && r >= 0) {
            if (pp > best_pp) best_pp = pp;
            if (tg > best_tg) best_tg = tg;
        }
        if (rc == FT_OK) fprintf(stderr, "bench: run %d: prefill %.1f tok/s, decode %.1f tok/s\n", r + 1, pp, tg);
    }
    if (rc == FT_OK) {
        printf("prefill: %.2f tok/s\ndecode: %.2f tok/s\nids:", best_pp, best_tg);
        for (int t = 0; t < gen_tokens; t++) printf(" %d", ids[prompt_len + t]);
        printf("\n");
    }
    free(ids);
    free(logits);
    ft_model_free(m);
    return rc;
}
