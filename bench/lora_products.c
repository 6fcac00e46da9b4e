/* lora_products.c — the matmuls of a LoRA / QLoRA training step of GPT-2 124M (batch 4 x 256: N = 1024
 * rows), each in the f32 table's kernel and in bf16, in milliseconds per call (best of R):
 *   - the frozen quantized base (NF4 and int8 rows) of each linear layer, forward (out = inp W^T) and input
 *     gradient (dinp = dout W): f32 (dequantize the whole W into a workspace, then sgemm: the f32 table),
 *     "deq + bf16" (the same dequantization, then the bf16 GEMM on the f32 copy) and "bf16 src" (the bf16
 *     table: dequantized while the GEMM packs it, ft_cpu_gemm_bf16_src);
 *   - the six products of a rank-r adapter on c_attn (in 768, rows 2304): xa = x A^T, out += s xa B^T,
 *     dxa = s dout B, dB += s dout^T xa, dA += dxa^T x, dinp += dxa A: OpenBLAS sgemm against the bf16 GEMM
 *     (the bf16 GEMM has no alpha; the timing of a scaled product is the unscaled one's).
 *
 *   make build/bench/lora_products && OMP_WAIT_POLICY=passive build/bench/lora_products [--reps R] [--threads T] [--cpu] [--r 8]
 *
 * --cpu: milliseconds of process CPU time (all threads) instead of wall time: on a shared, loaded machine
 * (other processes taking the cores do not count; run with OMP_WAIT_POLICY=passive). */
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/tensor.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_cpu_clock;
static double now(void) {
    struct timespec ts;
    clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randv(size_t n, unsigned seed, float sd) {
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((seed >> 8) / 16777216.0f - 0.5f) * sd;
    }
    return x;
}

static int g_reps = 5;

/* best of g_reps, in ms */
#define TIME_BEST(best, stmt)                                  \
    do {                                                       \
        best = 1e30;                                           \
        for (int rep_ = 0; rep_ <= g_reps; rep_++) {           \
            double t0_ = now();                                \
            stmt;                                              \
            double dt_ = (now() - t0_) * 1e3;                  \
            if (rep_ > 0 && dt_ < best) best = dt_;            \
        }                                                      \
    } while (0)

static void deq_full(float *ws, int dt, const void *qw) {
    if (dt == FT_NF4) ft_nf4_dequantize(ws, qw);
    else ft_q8row_dequantize(ws, qw);
}

static void base_layer(const char *name, int N, int OC, int C) {
    float *w = randv((size_t)OC * C, 1, 0.1f), *inp = randv((size_t)N * C, 2, 2), *dout = randv((size_t)N * OC, 3, 2);
    float *out = malloc(sizeof(float) * (size_t)N * OC), *dinp = malloc(sizeof(float) * (size_t)N * C);
    size_t wsn = (size_t)OC * C;
    float *ws = malloc(sizeof(float) * wsn);
    const ft_backend *f32 = ft_backend_cpu(), *b16 = ft_backend_cpu_bf16();
    for (int dt = FT_NF4, k = 0; k < 2; k++, dt = FT_Q8_ROW) {
        ft_nf4_tensor nf4;
        ft_q8row_tensor q8;
        const void *qw;
        if (dt == FT_NF4) { ft_nf4_create(&nf4, OC, C, FT_NF4_DOUBLE_QUANT); ft_nf4_quantize_ref(&nf4, w, NULL); qw = &nf4; }
        else { ft_q8row_create(&q8, OC, C); ft_q8row_quantize_ref(&q8, w); qw = &q8; }
        double t_f32, t_deq, t_src, b_f32, b_deq, b_src, t_dq;
        TIME_BEST(t_f32, f32->qmatmul_forward(NULL, out, inp, dt, qw, NULL, N, ws, wsn));
        TIME_BEST(t_deq, { deq_full(ws, dt, qw); ft_cpu_gemm_bf16(out, OC, inp, C, 0, ws, C, 1, N, OC, C, 0, NULL); });
        TIME_BEST(t_src, b16->qmatmul_forward(NULL, out, inp, dt, qw, NULL, N, ws, wsn));
        TIME_BEST(b_f32, f32->qmatmul_backward(NULL, dinp, dout, dt, qw, N, ws, wsn));
        TIME_BEST(b_deq, { deq_full(ws, dt, qw); ft_cpu_gemm_bf16(dinp, C, dout, OC, 0, ws, C, 0, N, C, OC, 0, NULL); });
        TIME_BEST(b_src, b16->qmatmul_backward(NULL, dinp, dout, dt, qw, N, ws, wsn));
        TIME_BEST(t_dq, deq_full(ws, dt, qw));
        printf("%-16s %-5s  fwd  %8.2f %8.2f %8.2f   %5.2fx  | dinp %8.2f %8.2f %8.2f   %5.2fx  | dequantize %.2f\n", name,
               dt == FT_NF4 ? "nf4" : "int8", t_f32, t_deq, t_src, t_f32 / t_src, b_f32, b_deq, b_src, b_f32 / b_src, t_dq);
        if (dt == FT_NF4) ft_nf4_destroy(&nf4);
        else ft_q8row_destroy(&q8);
    }
    free(w); free(inp); free(dout); free(out); free(dinp); free(ws);
}

/* one adapter W [rows, in] += s B A, A [r, in], B [rows, r], over N rows */
static void adapter(int N, int in, int rows, int r) {
    float *x = randv((size_t)N * in, 4, 2), *A = randv((size_t)r * in, 5, 0.1f), *B = randv((size_t)rows * r, 6, 0.1f);
    float *xa = randv((size_t)N * r, 7, 1), *out = randv((size_t)N * rows, 8, 1), *dout = randv((size_t)N * rows, 9, 1);
    float *dxa = malloc(sizeof(float) * (size_t)N * r), *dA = calloc((size_t)r * in, 4), *dB = calloc((size_t)rows * r, 4);
    float *dinp = calloc((size_t)N * in, 4);
    const float s = 2.0f;
    double f[6], b[6];
    /* xa [N, r] = x A^T */
    TIME_BEST(f[0], ft_cpu_matmul_forward(NULL, xa, x, A, NULL, N, in, r));
    TIME_BEST(b[0], ft_cpu_gemm_bf16(xa, r, x, in, 0, A, in, 1, N, r, in, 0, NULL));
    /* out [N, rows] += s xa B^T */
    TIME_BEST(f[1], ft_cpu_matmul_acc_forward(NULL, out, rows, xa, B, N, r, rows, s));
    TIME_BEST(b[1], ft_cpu_gemm_bf16(out, rows, xa, r, 0, B, r, 1, N, rows, r, 1, NULL));
    /* dxa [N, r] = s dout B */
    TIME_BEST(f[2], cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, rows, s, dout, rows, B, r, 0.0f, dxa, r));
    TIME_BEST(b[2], ft_cpu_gemm_bf16(dxa, r, dout, rows, 0, B, r, 0, N, r, rows, 0, NULL));
    /* dB [rows, r] += s dout^T xa */
    TIME_BEST(f[3], cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, r, N, s, dout, rows, xa, r, 1.0f, dB, r));
    TIME_BEST(b[3], ft_cpu_gemm_bf16(dB, r, dout, rows, 1, xa, r, 0, rows, r, N, 1, NULL));
    /* dA [r, in] += dxa^T x */
    TIME_BEST(f[4], cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, N, 1.0f, dxa, r, x, in, 1.0f, dA, in));
    TIME_BEST(b[4], ft_cpu_gemm_bf16(dA, in, dxa, r, 1, x, in, 0, r, in, N, 1, NULL));
    /* dinp [N, in] += dxa A */
    TIME_BEST(f[5], cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, r, 1.0f, dxa, r, A, in, 1.0f, dinp, in));
    TIME_BEST(b[5], ft_cpu_gemm_bf16(dinp, in, dxa, r, 0, A, in, 0, N, in, r, 1, NULL));
    const char *names[6] = {"xa = x A^T", "out += s xa B^T", "dxa = s dout B", "dB += s dout^T xa", "dA += dxa^T x", "dinp += dxa A"};
    double sf = 0, sb = 0;
    for (int i = 0; i < 6; i++) {
        printf("adapter r=%-3d %-20s f32 %7.3f  bf16 %7.3f   bf16/f32 time %.2f\n", r, names[i], f[i], b[i], b[i] / f[i]);
        sf += f[i];
        sb += b[i];
    }
    printf("adapter r=%-3d %-20s f32 %7.3f  bf16 %7.3f   bf16/f32 time %.2f\n", r, "all six", sf, sb, sb / sf);
    free(x); free(A); free(B); free(xa); free(out); free(dout); free(dxa); free(dA); free(dB); free(dinp);
}

int main(int argc, char **argv) {
    int threads = 0, r = 8, N = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--r") && i + 1 < argc) r = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cpu")) g_cpu_clock = 1;
        else {
            fprintf(stderr, "usage: lora_products [--reps R] [--threads T] [--cpu] [--r RANK]\n");
            return 2;
        }
    }
    ft_set_threads(threads);
    printf("GPT-2 124M, N = %d rows, %d threads, %s ms per call, best of %d (bf16 ISA %s)\n", N, ft_get_threads(),
           g_cpu_clock ? "CPU" : "wall", g_reps, ft_bf16_isa_name(ft_bf16_isa_get()));
    printf("quantized base (W [OC, C])     f32(deq+sgemm) deq+bf16 bf16-src  f32/src | f32(deq+sgemm) deq+bf16 bf16-src f32/src\n");
    base_layer("attn.qkv 768>2304", N, 2304, 768);
    base_layer("attn.proj 768>768", N, 768, 768);
    base_layer("mlp.fc 768>3072", N, 3072, 768);
    base_layer("mlp.proj 3072>768", N, 768, 3072);
    adapter(N, 768, 2304, r);
    return 0;
}
