/* fuse_step.c — the bf16 training step of GPT-2 124M (finetune bench's: random weights, batch 4 x 256, weight packs,
 * AdamW) with the cpu-bf16 GEMM's fused epilogues (the MLP's GELU, the bias gradients: gemm_bf16.h) and without
 * them, alternated inside one process so that both variants see the same minutes of a shared machine. Two models
 * of the same weights: one on the cpu-bf16 table (fused), one on a copy of it without matmul_gelu_forward /
 * _backward and with the kernels' fusions off (ft__gemm_bf16_set_fuse(0): the bias gradient by its own pass), i.e.
 * the calls before the fusion. Rounds of "two steps fused, two unfused" (the order flips every round), the first
 * step of each pair discarded. The two models take the same steps, so their losses match round by round (the
 * fusions give the same bits).
 * Prints each step (wall seconds of the step, forward, zero_grad + backward, optimizer; process CPU seconds of the
 * step, forward, backward: with OMP_WAIT_POLICY=passive the work, whatever else runs on the machine) and the
 * medians per variant of the kept steps.
 *
 *   make build/bench/fuse_step && OMP_WAIT_POLICY=passive build/bench/fuse_step [rounds (8)] [B (4)] [T (256)]
 */
#include "finetune/backend.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"

#define FAIL(rc) do { fprintf(stderr, "fuse_step: %s\n", ft_last_error()); return 1; } while (0)

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 8, B = argc > 2 ? atoi(argv[2]) : 4, T = argc > 3 ? atoi(argv[3]) : 256;
    if (rounds <= 0 || B <= 0 || T <= 0) { fprintf(stderr, "usage: fuse_step [rounds] [B] [T]\n"); return 2; }
    const ft_backend *be;
    ft_model_config cfg;
    ft_model *mm[2];
    ft_optimizer *oo[2];
    if (ft_backend_for_precision("bf16", &be) < 0) FAIL(0);
    static ft_backend plain; /* [0]: the table without the GELU members */
    plain = *be;
    plain.matmul_gelu_forward = NULL;
    plain.matmul_gelu_backward = NULL;
    if (ft_model_config_from_json(&cfg, k_bench_gpt2_124m, "GPT-2 124M") < 0) FAIL(0);
    ft_optim_params op = ft_optim_default_params();
    op.lr = 1e-4f;
    for (int f = 0; f < 2; f++)
        if (ft_model_create_random(&mm[f], &cfg, 1234, f ? be : &plain) < 0 || ft_model_prepare(mm[f], B, T) < 0 ||
            ft_optim_create(&oo[f], mm[f], &op) < 0 || ft_optim_set_prepack(oo[f], 1) < 0)
            FAIL(0);
    int N = B * T, *ids = malloc(sizeof(int) * (size_t)(N + 1));
    for (int i = 0; i <= N; i++) ids[i] = (int)((i * 2654435761u) % (unsigned)cfg.vocab_size);
    /* [variant][kept step][wall: step, forward, backward, optimizer; CPU: step, forward, backward] */
    double (*t)[64][7] = calloc(2, sizeof *t);
    int kept[2] = {0, 0};
    for (int r = 0; r < rounds && r < 64; r++)
        for (int h = 0; h < 2; h++) {
            int fuse = (r + h) % 2; /* rounds alternate which variant goes first */
            ft__gemm_bf16_set_fuse(fuse);
            ft_model *m = mm[fuse];
            ft_optimizer *opt = oo[fuse];
            for (int s = 0; s < 2; s++) {
                float loss;
                double c0 = bench_now(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now(CLOCK_MONOTONIC);
                if (ft_model_forward(m, ids, ids + 1, NULL, NULL, B, T, &loss) < 0) FAIL(0);
                double t1 = bench_now(CLOCK_MONOTONIC), c1 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
                if (ft_model_zero_grad(m) < 0 || ft_model_backward(m, 0.0f) < 0) FAIL(0);
                double t2 = bench_now(CLOCK_MONOTONIC), c2 = bench_now(CLOCK_PROCESS_CPUTIME_ID);
                if (ft_optim_step(opt, op.lr) < 0) FAIL(0);
                double t3 = bench_now(CLOCK_MONOTONIC), c = bench_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
                printf("round %d %s step %d: %.3f s (forward %.3f, backward %.3f, optimizer %.3f; CPU %.3f s: forward %.3f, "
                       "backward %.3f), loss %.6f%s\n", r, fuse ? "fused  " : "unfused", s, t3 - t0, t1 - t0, t2 - t1, t3 - t2, c, c1 - c0,
                       c2 - c1, (double)loss, s == 0 ? " warm-up" : "");
                if (s == 0) continue;
                double *k = t[fuse][kept[fuse]++];
                k[0] = t3 - t0; k[1] = t1 - t0; k[2] = t2 - t1; k[3] = t3 - t2; k[4] = c; k[5] = c1 - c0; k[6] = c2 - c1;
            }
        }
    static const char *what[7] = {"step", "forward", "backward", "optimizer", "CPU step", "CPU forward", "CPU backward"};
    for (int f = 1; f >= 0; f--) {
        printf("%s (%d steps), medians:", f ? "fused  " : "unfused", kept[f]);
        for (int i = 0; i < 7; i++) {
            double v[64];
            for (int k = 0; k < kept[f]; k++) v[k] = t[f][k][i];
            printf(" %s %.3f s%s", what[i], bench_median(v, kept[f]), i < 6 ? "," : "\n");
        }
    }
    ft__gemm_bf16_set_fuse(1);
    free(t);
    free(ids);
    for (int f = 0; f < 2; f++) {
        ft_optim_free(oo[f]);
        ft_model_free(mm[f]);
    }
    return 0;
}
