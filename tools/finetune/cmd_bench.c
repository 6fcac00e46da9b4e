/* cmd_bench.c — `finetune bench`: tokens/s of a training step (forward + backward + AdamW) and of
 * KV-cache generation, on a randomly initialised model of a given shape (default: GPT-2 124M —
 * 12 layers, 768 wide, 12 heads, 50257 vocabulary, 1024 positions), and the process's peak RSS.
 *
 * --method full trains every weight; --method lora adds LoRA adapters (lora.h; dropout 0) on a frozen
 * base, so the step is forward + backward (input gradients of the base, adapter gradients) + AdamW on
 * the adapters only — the setting PyTorch + PEFT is compared with in bench/run.sh and bench/memory.sh;
 * --method qlora does the same over a quantized frozen base (--quant nf4, the default, or int8).
 * --recompute none|attention|block times the step with activation recomputation (model.h ft_recompute):
 * less activation memory (peak_rss) for more compute (train tok/s); bench/memory.sh tabulates both.
 *
 * --precision bf16 runs both timings in bf16, as finetune train / generate --precision bf16 do: the training
 * step's linear layers with bf16 matmul inputs and f32 accumulation (the cpu-bf16 backend, f32 master weights),
 * and generation with the matmul weights rounded to bf16 at load (bf16.h; with --skip-train the model is made
 * in bf16, so peak_rss is the bf16 model's). One flag for both: --gen-precision is gone.
 *
 * stdout: `train: X tok/s` (median step), `generate: X tok/s` (greedy, 16-token prompt + --gen-tokens, prefill
 * included; one warm-up, then the median of --steps runs), `peak_rss: X MB` (getrusage ru_maxrss,
 * MB = 2^20 bytes, the whole process: weights, gradients, optimizer state, activations, KV cache).
 * stderr: the shape, trainable parameters, per-step times and the forward / backward / optimizer split. */
#include "cli.h"
#include "finetune/backend.h"
#include "finetune/fileio.h"
#include "finetune/gemm_bf16.h"
#include "finetune/generate.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/rng.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* seconds of CPU time of this process (all threads) */
static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* peak resident set size of this process in MB (2^20 bytes); Linux reports ru_maxrss in KiB */
static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0;
}

static const char *k_gpt2_124m =
    "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":50257,\"n_positions\":1024,"
    "\"n_embd\":768,\"n_layer\":12,\"n_head\":12,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";

/* matmul flops of one training step (forward + backward) of a decoder of shape c on B x T tokens; with a
 * frozen base (LoRA) its weight gradients are skipped: 4 instead of 6 flops per token and weight */
static double train_flops(const ft_model_config *c, int B, int T, int frozen_base) {
    double C = c->n_embd, HS = (double)c->n_embd / c->n_head, N = (double)B * T;
    double qkv = C * (c->n_head + 2.0 * c->n_kv_head) * HS, proj = c->n_head * HS * C;
    double mlp = (c->arch == FT_ARCH_GPT2 ? 2.0 : 3.0) * C * c->ffn_hidden;
    double weights = c->n_layer * (qkv + proj + mlp) + (double)c->vocab_size * C;
    double attn = c->n_layer * 2.0 * 2.0 * B * (double)T * T * c->n_head * HS; /* forward QK^T + PV */
    return (frozen_base ? 4.0 : 6.0) * N * weights + 3.0 * attn;
}

int ft_cmd_bench(int argc, char **argv) {
    ft_opt opts[] = {
        {"config", 1, "HF config.json of the shape to time (default: GPT-2 124M)", NULL},
        {"model", 1, "time inference of this stored model (HF directory or .gguf): prefill of --prompt-len tokens, then --gen-tokens greedy steps", NULL},
        {"batch-size", 1, "batch size (default 4)", NULL},
        {"seq-len", 1, "sequence length (default 256)", NULL},
        {"steps", 1, "timed training steps; the median is reported (default 3)", NULL},
        {"gen-tokens", 1, "tokens to generate for the generation timing (default 64)", NULL},
        {"skip-train", 0, "only time generation", NULL},
        {"skip-generate", 0, "only time training", NULL},
        {"threads", 1, "threads (default: all cores)", NULL},
        {"method", 1, "full (every weight trained, the default), lora (adapters on a frozen base) or qlora (adapters on a quantized base)", NULL},
        {"quant", 1, "qlora base format: nf4 (default) or int8", NULL},
        {"recompute", 1, "activation recomputation: none (default), attention or block", NULL},
        {"no-weight-packs", 0, "bf16: pack the weights at each use instead of keeping them packed between steps (finetune train --no-weight-packs)", NULL},
        {"lora-r", 1, "LoRA rank (default 8)", NULL},
        {"lora-alpha", 1, "LoRA alpha, scale alpha/r (default 16)", NULL},
        {"lora-targets", 1, "modules to adapt, comma-separated or all-linear (default: GPT-2 c_attn, Llama q_proj,v_proj)", NULL},
        {"adapters", 1, "time N sequences with N different LoRA adapters decoded together vs one after another (no training)", NULL},
        {"prompt-len", 1, "prompt tokens per sequence for --adapters (default 16)", NULL},
        {"precision", 1, "f32 (default), bf16 or auto: the training step's linear layers with bf16 matmul inputs and f32 accumulation (finetune train --precision), and the generation timing's (and --model's) weights rounded to bf16 at load (finetune generate --precision)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
                            "usage: finetune bench [--config FILE] [--batch-size B] [--seq-len T] [--steps N] "
                            "[--method full|lora|qlora [--quant nf4|int8] [--lora-r 8] [--lora-alpha 16] [--lora-targets LIST]] [--recompute none|attention|block] [--no-weight-packs] "
                            "| [--adapters N [--prompt-len 16]]");
    if (prc) return prc == 1 ? 0 : prc;
    long B, T, steps, gen_tokens, threads, lora_r, n_adapters, prompt_len;
    double lora_alpha;
    if (ft_opt_int(opts, "batch-size", 4, &B) || ft_opt_int(opts, "seq-len", 256, &T) || ft_opt_int(opts, "steps", 3, &steps) ||
        ft_opt_int(opts, "gen-tokens", 64, &gen_tokens) || ft_opt_int(opts, "threads", 0, &threads) ||
        ft_opt_int(opts, "lora-r", 8, &lora_r) || ft_opt_float(opts, "lora-alpha", 16.0, &lora_alpha) ||
        ft_opt_int(opts, "adapters", 0, &n_adapters) || ft_opt_int(opts, "prompt-len", 16, &prompt_len))
        return 2;
    if (n_adapters < 0 || n_adapters > 256 || prompt_len <= 0) {
        fprintf(stderr, "finetune bench: --adapters must be in 1..256 and --prompt-len positive\n");
        return 2;
    }
    if (B <= 0 || T <= 0 || steps <= 0 || gen_tokens <= 0) { fprintf(stderr, "finetune bench: sizes must be positive\n"); return 2; }
    const char *method = ft_opt_str(opts, "method", "full");
    int use_qlora = !strcmp(method, "qlora"), use_lora = use_qlora || !strcmp(method, "lora");
    if (!use_lora && strcmp(method, "full")) {
        fprintf(stderr, "finetune bench: --method must be full, lora or qlora (got '%s')\n", method);
        return 2;
    }
    const char *quant = ft_opt_str(opts, "quant", "nf4");
    if (strcmp(quant, "nf4") && strcmp(quant, "int8")) {
        fprintf(stderr, "finetune bench: --quant must be nf4 or int8 (got '%s')\n", quant);
        return 2;
    }
    ft_recompute recompute;
    if (ft_recompute_from_name(ft_opt_str(opts, "recompute", "none"), &recompute) < 0) {
        fprintf(stderr, "finetune bench: %s\n", ft_last_error());
        return 2;
    }
    if (use_lora && (lora_r <= 0 || lora_r > 4096 || !(lora_alpha > 0))) {
        fprintf(stderr, "finetune bench: LoRA needs 0 < --lora-r <= 4096 and --lora-alpha > 0\n");
        return 2;
    }
    if (use_lora && n_adapters > 0) {
        fprintf(stderr, "finetune bench: --adapters makes its own adapters (with --lora-r / --lora-targets); drop --method lora\n");
        return 2;
    }
    const char *lora_targets = ft_opt_str(opts, "lora-targets", "");
    if (strlen(lora_targets) >= sizeof(((ft_lora_config *)0)->targets)) {
        fprintf(stderr, "finetune bench: --lora-targets is too long\n");
        return 2;
    }
    const char *precision = ft_opt_str(opts, "precision", "f32");
    if (!strcmp(precision, "auto")) precision = ft_precision_default();
    if (strcmp(precision, "f32") && strcmp(precision, "bf16")) {
        fprintf(stderr, "finetune bench: --precision must be f32, bf16 or auto (got '%s')\n", precision);
        return 2;
    }
    ft_dtype gen_weights = !strcmp(precision, "bf16") ? FT_BF16 : FT_F32;
    if (threads > 0) ft_set_threads((int)threads);
    if (ft_opt_str(opts, "model", NULL)) {
        int brc = ft_bench_decode(ft_opt_str(opts, "model", NULL), gen_weights, (int)prompt_len, (int)gen_tokens, (int)steps);
        return brc < 0 ? ft_cli_fail("bench", brc) : 0;
    }

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

    /* generation only in bf16: the model is made in bf16 (peak_rss then shows its memory); with training too,
     * the generation timing makes its own bf16 copy below */
    int gen_only = ft_opt_flag(opts, "skip-train") && !use_lora && n_adapters == 0;
    ft_model *m;
    ft_dtype q = use_qlora ? (!strcmp(quant, "int8") ? FT_Q8_ROW : FT_NF4) : gen_only ? gen_weights : FT_F32;
    /* the training step's backend; a generation-only model has its weights in bf16 already (the f32 backend,
     * as finetune generate --precision bf16) */
    const ft_backend *be = ft_backend_cpu();
    if (!gen_only && (rc = ft_backend_for_precision(precision, &be)) < 0) return ft_cli_fail("bench", rc);
    if ((rc = ft_model_create_random_quantized(&m, &cfg, 1234, be, q)) < 0) return ft_cli_fail("bench", rc);
    ft_model_set_recompute(m, recompute);
    fprintf(stderr, "bench: %s, %.1fM parameters, %d threads, batch %ld x %ld, recompute %s, activations %.1f MiB, precision %s%s%s\n",
            cfg.model_type, (double)ft_model_param_count(m) / 1e6, ft_get_threads(), B, T, ft_recompute_name(recompute),
            (double)ft_model_activation_bytes(m, (int)B, (int)T) / 1048576.0, precision, strcmp(precision, "bf16") ? "" : " kernel ",
            strcmp(precision, "bf16") ? "" : ft_bf16_isa_name(ft_bf16_isa_get()));
    if (use_lora) {
        ft_lora_config lc = ft_lora_default_config();
        lc.r = (int)lora_r;
        lc.alpha = (float)lora_alpha;
        lc.dropout = 0.0f; /* the benchmark times the adapters' matmuls, not dropout masks */
        snprintf(lc.targets, sizeof lc.targets, "%s", lora_targets);
        if ((rc = ft_model_add_lora(m, &lc, 1234)) < 0) {
            ft_model_free(m);
            return ft_cli_fail("bench", rc);
        }
        fprintf(stderr, "bench: method %s, r %d, alpha %g, dropout 0, targets %s: %d adapters, %lld trainable of %lld parameters\n",
                use_qlora ? (q == FT_NF4 ? "qlora (nf4 base)" : "qlora (int8 base)") : "lora", lc.r, (double)lc.alpha, *lora_targets ? lora_targets : "(family default)", ft_model_lora_count(m),
                (long long)ft_model_trainable_count(m), (long long)ft_model_param_count(m));
    } else fprintf(stderr, "bench: method full, %lld trainable parameters\n", (long long)ft_model_trainable_count(m));
    int status = 0;
    if (n_adapters > 0) {
        rc = ft_bench_adapters(m, (int)n_adapters, (int)lora_r, lora_targets, (int)prompt_len, (int)gen_tokens);
        if (rc == FT_OK) printf("peak_rss: %.1f MB\n", peak_rss_mb());
        else status = ft_cli_fail("bench", rc);
        ft_model_free(m);
        return status;
    }
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
        /* bf16: the linear weights kept packed between steps, refreshed by AdamW, as finetune train does */
        if (rc == FT_OK && !ft_opt_flag(opts, "no-weight-packs")) rc = ft_optim_set_prepack(opt, 1);
        float loss = 0;
        double sum_fwd = 0, sum_bwd = 0, sum_opt = 0;
        double *cpu = malloc(sizeof(double) * (size_t)steps); /* process CPU seconds of each timed step */
        if (!cpu && rc == FT_OK) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (long s = -1; s < steps && rc == FT_OK; s++) { /* step -1: warm-up */
            double c0 = cpu_now_s();
            double t0 = ft_cli_now_s();
            rc = ft_model_forward(m, ids, ids + 1, NULL, NULL, (int)B, (int)T, &loss);
            double t1 = ft_cli_now_s();
            if (rc == FT_OK) rc = ft_model_zero_grad(m);
            if (rc == FT_OK) rc = ft_model_backward(m, 0.0f);
            double t2 = ft_cli_now_s();
            if (rc == FT_OK) rc = ft_optim_step(opt, op.lr);
            double t3 = ft_cli_now_s(), dt = t3 - t0, dc = cpu_now_s() - c0;
            if (s >= 0) {
                times[s] = dt;
                cpu[s] = dc;
                sum_fwd += t1 - t0; sum_bwd += t2 - t1; sum_opt += t3 - t2;
            }
            fprintf(stderr, "bench: train step %ld: %.3f s (CPU %.3f s), loss %.4f\n", s + 1, dt, dc, loss);
            fprintf(stderr, "bench:   forward %.3f s, zero_grad + backward %.3f s, optimizer %.3f s\n", t1 - t0, t2 - t1, t3 - t2);
        }
        if (rc == FT_OK) {
            qsort(times, (size_t)steps, sizeof *times, cmp_double);
            /* median; with an even count the mean of the middle two (as Python's statistics.median,
             * which bench/pytorch_bench.py reports) */
            double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
            fprintf(stderr, "bench: mean of the timed steps: forward %.3f s, zero_grad + backward %.3f s, optimizer %.3f s\n",
                    sum_fwd / steps, sum_bwd / steps, sum_opt / steps);
            printf("train: %.1f tok/s\n", (double)N / med);
            /* the step's matmul work: 6 flops per token and weight of the linear layers (forward 2, backward 4; the
             * LoRA adapters' small matmuls and a frozen base's weight gradient are not counted) plus attention's
             * QK^T and PV (full T x T, as usual), over the median step */
            printf("train_gflops: %.1f\n", train_flops(&cfg, (int)B, (int)T, use_lora) / med * 1e-9);
            /* the median step in process CPU seconds (all threads): on a loaded machine, where the wall clock
             * counts other processes' turns, the work of a step (run with OMP_WAIT_POLICY=passive, so that
             * waiting threads do not spin); GFLOP per CPU second compares with a per-core peak */
            qsort(cpu, (size_t)steps, sizeof *cpu, cmp_double);
            double cmed = steps % 2 ? cpu[steps / 2] : 0.5 * (cpu[steps / 2 - 1] + cpu[steps / 2]);
            printf("train_cpu_s: %.3f\n", cmed);
            printf("train_gflops_per_cpu_s: %.1f\n", train_flops(&cfg, (int)B, (int)T, use_lora) / cmed * 1e-9);
            fflush(stdout);
        }
        free(cpu);
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
        ft_model *gm = m;
        if (gen_weights != FT_F32 && !gen_only) rc = ft_model_create_random_quantized(&gm, &cfg, 1234, ft_backend_cpu(), gen_weights);
        if (rc == FT_OK)
            fprintf(stderr, "bench: generation with %s weights, %.1f MB of weights\n", gen_weights == FT_BF16 ? "bf16" : "f32",
                    (double)ft_model_weight_bytes(gm) / 1048576.0);
        /* one warm-up run, then the median of --steps runs (as bench/pytorch_bench.py times model.generate) */
        double *gt = malloc(sizeof(double) * (size_t)steps);
        int n_ids = 0;
        if (!gt && rc == FT_OK) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (long r = -1; r < steps && rc == FT_OK; r++) {
            double t0 = ft_cli_now_s();
            rc = ft_generate(gm, NULL, prompt, 16, &p, NULL, NULL, &g);
            double dt = ft_cli_now_s() - t0;
            if (rc != FT_OK) break;
            n_ids = g.n_ids;
            ft_generation_free(&g);
            fprintf(stderr, "bench: generate run %ld%s: %.1f ms, %.1f tok/s\n", r + 1, r < 0 ? " (warm-up)" : "", dt * 1e3, n_ids / dt);
            if (r >= 0) gt[r] = dt;
        }
        if (rc == FT_OK) {
            qsort(gt, (size_t)steps, sizeof *gt, cmp_double);
            double med = steps % 2 ? gt[steps / 2] : 0.5 * (gt[steps / 2 - 1] + gt[steps / 2]);
            printf("generate: %.1f tok/s\n", n_ids / med);
        }
        free(gt);
        if (gm != m) ft_model_free(gm);
    }
    if (rc == FT_OK) {
        printf("peak_rss: %.1f MB\n", peak_rss_mb());
        fflush(stdout);
    }
    if (rc < 0) status = ft_cli_fail("bench", rc);
    ft_model_free(m);
    return status;
}
