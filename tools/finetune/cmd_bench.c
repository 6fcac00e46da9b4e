/* cmd_bench.c — `finetune bench`: tokens/s of a full training step (forward + backward + AdamW)
 * and of KV-cache generation, on a randomly initialised model of a given shape
 * (default: GPT-2 124M — 12 layers, 768 wide, 12 heads, 50257 vocabulary, 1024 positions). */
#include "cli.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *k_gpt2_124m =
    "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":50257,\"n_positions\":1024,"
    "\"n_embd\":768,\"n_layer\":12,\"n_head\":12,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";

int ft_cmd_bench(int argc, char **argv) {
    ft_opt opts[] = {
        {"config", 1, "HF config.json of the shape to time (default: GPT-2 124M)", NULL},
        {"batch-size", 1, "batch size (default 4)", NULL},
        {"seq-len", 1, "sequence length (default 256)", NULL},
        {"steps", 1, "timed training steps; the median is reported (default 3)", NULL},
        {"gen-tokens", 1, "tokens to generate for the generation timing (default 64)", NULL},
        {"skip-train", 0, "only time generation", NULL},
        {"skip-generate", 0, "only time training", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune bench [--config FILE] [--batch-size B] [--seq-len T] [--steps N]");
    if (prc) return prc == 1 ? 0 : prc;
    long B, T, steps, gen_tokens, threads;
    if (ft_opt_int(opts, "batch-size", 4, &B) || ft_opt_int(opts, "seq-len", 256, &T) || ft_opt_int(opts, "steps", 3, &steps) ||
        ft_opt_int(opts, "gen-tokens", 64, &gen_tokens) || ft_opt_int(opts, "threads", 0, &threads))
        return 2;
    if (B <= 0 || T <= 0 || steps <= 0 || gen_tokens <= 0) { fprintf(stderr, "finetune bench: sizes must be positive\n"); return 2; }
    if (threads > 0) ft_set_threads((int)threads);

    ft_model_config cfg;
    const char *cfg_path = ft_opt_str(opts, "config", NULL);
    int rc;
    if (cfg_path) {
        char *text;
        if ((rc = ft_file_read_all(cfg_path, &text, NULL)) < 0) return ft_cli_fail("bench", rc);
        rc = ft_model_config_from_json(&cfg, text, cfg_path);
        free(text);
    } else rc = ft_model_config_from_json(&cfg, k_gpt2_124m, "GPT-2 124M");
    if (rc < 0) return ft_cli_fail("bench", rc);

    ft_model *m;
    if ((rc = ft_model_create_random(&m, &cfg, 1234, ft_backend_cpu())) < 0) return ft_cli_fail("bench", rc);
    fprintf(stderr, "bench: %s, %.1fM parameters, %d threads, batch %ld x %ld\n", cfg.model_type,
            (double)ft_model_param_count(m) / 1e6, ft_get_threads(), B, T);
    int status = 0;
    if (!ft_opt_flag(opts, "skip-train")) {
        size_t N = (size_t)(B * T);
        int *ids = malloc(sizeof(int) * (N + 1));
        ft_rng rng;
        ft_rng_seed(&rng, 7);
        for (size_t i = 0; i <= N && ids; i++) ids[i] = (int)ft_rng_below(&rng, (uint64_t)cfg.vocab_size);
        ft_optimizer *opt = NULL;
        ft_optim_params op = ft_optim_default_params();
        op.lr = 1e-4f;
        double *times = malloc(sizeof(double) * (size_t)steps);
        rc = ids && times ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) rc = ft_model_prepare(m, (int)B, (int)T);
        if (rc == FT_OK) rc = ft_optim_create(&opt, m, &op);
        float loss = 0;
        for (long s = -1; s < steps && rc == FT_OK; s++) { /* step -1: warm-up */
            double t0 = now_s();
            rc = ft_model_forward(m, ids, ids + 1, NULL, NULL, (int)B, (int)T, &loss);
            if (rc == FT_OK) rc = ft_model_zero_grad(m);
            if (rc == FT_OK) rc = ft_model_backward(m, 0.0f);
            if (rc == FT_OK) rc = ft_optim_step(opt, op.lr);
            double dt = now_s() - t0;
            if (s >= 0) times[s] = dt;
            fprintf(stderr, "bench: train step %ld: %.3f s, loss %.4f\n", s + 1, dt, loss);
        }
        if (rc == FT_OK) {
            qsort(times, (size_t)steps, sizeof *times, cmp_double);
            double med = times[steps / 2];
            printf("train: %.1f tok/s\n", (double)N / med);
            fflush(stdout);
        }
        ft_optim_free(opt);
        free(times);
        free(ids);
    }
    if (rc == FT_OK && !ft_opt_flag(opts, "skip-generate")) {
        int prompt[16];
        for (int i = 0; i < 16; i++) prompt[i] = (i * 97) % cfg.vocab_size;
        ft_generate_params p = ft_generate_default_params();
        p.temperature = 0;
        p.stop_at_eos = 0;
        p.max_new_tokens = (int)gen_tokens;
        if (16 + gen_tokens > cfg.max_seq_len) p.max_new_tokens = cfg.max_seq_len - 16;
        ft_generation g;
        double t0 = now_s();
        rc = ft_generate(m, NULL, prompt, 16, &p, NULL, NULL, &g);
        double dt = now_s() - t0;
        if (rc == FT_OK) {
            printf("generate: %.1f tok/s\n", g.n_ids / dt);
            ft_generation_free(&g);
        }
    }
    if (rc < 0) status = ft_cli_fail("bench", rc);
    ft_model_free(m);
    return status;
}
