/* bf16_gemm.c — the GEMMs of GPT-2 124M training (batch 4 x 256: N = 1024 rows, C = 768) in GFLOP/s:
 * OpenBLAS sgemm (f32), finetune's bf16 kernel (gemm_bf16.h, operands f32 -> bf16 inside its packing),
 * oneDNN's bf16 matmul primitive (when built with libdnnl: inputs already bf16, the conversion not timed)
 * and the machine's bf16 peak: a tight vdpbf16ps loop on every thread (the kernel's upper bound).
 *
 *   make build/bench/bf16_gemm && build/bench/bf16_gemm [--reps R] [--quick] [--threads T] [--cpu]
 *
 * --peak: print only the peaks (`peak_bf16: X GFLOP/s`, `peak_f32: X GFLOP/s`; bench/precision.sh reads them).
 * --cpu: GFLOP per CPU-second (process CPU time) instead of per wall-second: use it on a shared, loaded
 * machine (run with OMP_WAIT_POLICY=passive so idle threads do not spin); --threads T: T threads.
 *
 * Each product of a linear layer W [OC, C] is timed: fwd out = inp W^T (M = N, n = OC, k = C), dinp =
 * dout W (M = N, n = C, k = OC), dW += dout^T inp (M = OC, n = C, k = N). Best of R runs (default 5). */
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef FT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

/* wall time, or with --cpu the process's CPU time (all threads): on a loaded machine, where other
 * processes take the cores away, GFLOP per CPU-second still measures the kernel */
static int g_cpu_clock;
static double now(void) {
    struct timespec ts;
    clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *randv(size_t n, unsigned seed) {
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    return x;
}

/* ---- the peaks: each thread runs 24 independent chains of one instruction (enough to hide its latency),
 * written in assembly so that the compiler adds nothing to the loop */
#define R24(I) I "0\n\t" I "1\n\t" I "2\n\t" I "3\n\t" I "4\n\t" I "5\n\t" I "6\n\t" I "7\n\t" I "8\n\t" \
    I "9\n\t" I "10\n\t" I "11\n\t" I "12\n\t" I "13\n\t" I "14\n\t" I "15\n\t" I "16\n\t" I "17\n\t" I "18\n\t" \
    I "19\n\t" I "20\n\t" I "21\n\t" I "22\n\t" I "23\n\t"
#define ZCLOB "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
    "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31"

__attribute__((target("avx512f,avx512bf16"))) static void loop_bf16(long n) {
    __asm__ volatile(R24("vpxord %%zmm30, %%zmm30, %%zmm") "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"
                     "1:\n\t" R24("vdpbf16ps %%zmm30, %%zmm31, %%zmm") "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n) : : ZCLOB, "cc");
}
__attribute__((target("avx512f"))) static void loop_f32(long n) {
    __asm__ volatile(R24("vpxord %%zmm30, %%zmm30, %%zmm") "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"
                     "1:\n\t" R24("vfmadd231ps %%zmm30, %%zmm31, %%zmm") "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n) : : ZCLOB, "cc");
}

/* GFLOP/s of all threads: a vdpbf16ps is 16 lanes x 2 multiply-adds = 64 flops, an FMA 32 */
static double peak(int bf16) {
    const long iters = 4000000; /* x 24 instructions per thread */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel
        {
            if (bf16) loop_bf16(iters);
            else loop_f32(iters);
        }
        double dt = now() - t0;
        double g = (double)omp_get_max_threads() * iters * 24 * (bf16 ? 64.0 : 32.0) / dt * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

typedef struct { const char *name; int M, N, K, transA, transB; } shape;

/* f32 -> bf16 (vcvtneps2bf16) of n floats on every thread: what a caller holding f32 activations and
 * master weights must do before a bf16-only matmul such as oneDNN's (our kernel does it while packing) */
__attribute__((target("avx512f,avx512bf16"))) static void cast_bf16(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n / 16; i++) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + 16 * i));
        memcpy(dst + 16 * i, &h, 32);
    }
    for (size_t i = n / 16 * 16; i < n; i++) dst[i] = ft_bf16_round(src[i]);
}

/* seconds to cast op(A) [M,K] and op(B) [K,N] (best of reps) */
static double cast_time(const float *a, const float *b, size_t na, size_t nb, int reps) {
    uint16_t *ha = malloc(na * 2 + 64), *hb = malloc(nb * 2 + 64);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        cast_bf16(ha, a, na);
        cast_bf16(hb, b, nb);
        double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    free(ha);
    free(hb);
    return best;
}

#ifdef FT_HAVE_DNNL
/* oneDNN matmul: src [M,K] bf16 (row-major, or its transpose), weights [K,N] bf16, dst [M,N] f32 */
static double dnnl_time(dnnl_engine_t eng, dnnl_stream_t st, const shape *s, int reps) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t ad = {s->M, s->K}, bd = {s->K, s->N}, cd = {s->M, s->N};
    dnnl_memory_desc_init_by_tag(&a_md, 2, ad, dnnl_bf16, s->transA ? dnnl_ba : dnnl_ab);
    dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dnnl_bf16, s->transB ? dnnl_ba : dnnl_ab);
    dnnl_memory_desc_init_by_tag(&c_md, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md) != dnnl_success) return -1;
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success) return -1;
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_t prim;
    dnnl_primitive_create(&prim, pd);
    dnnl_memory_t am, bm, cm;
    dnnl_memory_create(&am, &a_md, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&bm, &b_md, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_create(&cm, &c_md, eng, DNNL_MEMORY_ALLOCATE);
    void *p;
    dnnl_memory_get_data_handle(am, &p); memset(p, 0x3c, (size_t)s->M * s->K * 2);
    dnnl_memory_get_data_handle(bm, &p); memset(p, 0x3c, (size_t)s->K * s->N * 2);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        dnnl_primitive_execute(prim, st, 3, args);
        dnnl_stream_wait(st);
        double dt = now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    static int shown = 0;
    if (!shown++ && impl) printf("  (oneDNN implementation: %s)\n", impl);
    dnnl_memory_destroy(am); dnnl_memory_destroy(bm); dnnl_memory_destroy(cm);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    return best;
}
#endif

int main(int argc, char **argv) {
    int reps = 5, quick = 0, threads = 0, peak_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--cpu")) g_cpu_clock = 1;
        else if (!strcmp(argv[i], "--peak")) peak_only = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    }
    ft_set_threads(threads);
    int nt = ft_get_threads();
    printf("threads %d, bf16 kernel: %s, GFLOP per %s second\n", nt, ft_bf16_isa_name(ft_bf16_isa_get()),
           g_cpu_clock ? "CPU" : "wall");
    double pk = ft_bf16_isa_best() == FT_BF16_ISA_AVX512BF16 ? peak(1) : 0, pf = peak(0);
    if (peak_only) {
        printf("peak_bf16: %.1f GFLOP/s\npeak_f32: %.1f GFLOP/s\n", pk, pf);
        return 0;
    }
    printf("peak (tight loops, all threads): bf16 vdpbf16ps %.0f GFLOP/s, f32 FMA %.0f GFLOP/s\n", pk, pf);
    const int N = 1024, C = 768;
    struct { const char *name; int OC, IC; } layers[] = {
        {"attn.qkv 768->2304", 3 * C, C}, {"attn.proj 768->768", C, C}, {"mlp.fc 768->3072", 4 * C, C},
        {"mlp.proj 3072->768", C, 4 * C}, {"lm_head 768->50257", 50257, C}};
    int nl = quick ? 3 : 5;
#ifdef FT_HAVE_DNNL
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_engine_create(&eng, dnnl_cpu, 0);
    dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
    printf("%-22s %-5s %10s %10s %10s %11s %8s\n", "layer", "op", "sgemm", "ft bf16", "oneDNN", "oneDNN+cast", "ft/peak");
#else
    printf("%-22s %-5s %10s %10s %10s %8s\n", "layer", "op", "sgemm", "ft bf16", "(no dnnl)", "ft/peak");
#endif
    double tot_flop = 0, tot_f32 = 0, tot_ft = 0, tot_dn = 0, tot_dc = 0;
    for (int l = 0; l < nl; l++) {
        int OC = layers[l].OC, IC = layers[l].IC;
        float *inp = randv((size_t)N * IC, 1), *w = randv((size_t)OC * IC, 2), *dout = randv((size_t)N * OC, 3);
        float *out = randv((size_t)N * OC, 4), *dinp = randv((size_t)N * IC, 5), *dw = randv((size_t)OC * IC, 6);
        shape sh[3] = {{"fwd", N, OC, IC, 0, 1}, {"dinp", N, IC, OC, 0, 0}, {"dW", OC, IC, N, 1, 0}};
        for (int o = 0; o < 3; o++) {
            const shape *s = &sh[o];
            double flop = 2.0 * s->M * s->N * s->K, b32 = 1e30, bft = 1e30, bdn = -1, bdc = -1;
            for (int r = 0; r < reps + 1; r++) {
                double t0 = now();
                if (o == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
                if (o == 1) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC, 0.0f, dinp, IC);
                if (o == 2) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
                double t1 = now();
                if (o == 0) ft_cpu_gemm_bf16(out, OC, inp, IC, 0, w, IC, 1, N, OC, IC, 0, NULL);
                if (o == 1) ft_cpu_gemm_bf16(dinp, IC, dout, OC, 0, w, IC, 0, N, IC, OC, 0, NULL);
                if (o == 2) ft_cpu_gemm_bf16(dw, IC, dout, OC, 1, inp, IC, 0, OC, IC, N, 1, NULL);
                double t2 = now();
                if (r > 0) { if (t1 - t0 < b32) b32 = t1 - t0; if (t2 - t1 < bft) bft = t2 - t1; }
            }
#ifdef FT_HAVE_DNNL
            bdn = dnnl_time(eng, st, s, reps);
            const float *ca = o == 0 ? inp : dout, *cb = o == 2 ? inp : w;
            if (bdn > 0) bdc = bdn + cast_time(ca, cb, (size_t)s->M * s->K, (size_t)s->K * s->N, reps);
#endif
            tot_flop += flop; tot_f32 += b32; tot_ft += bft; tot_dn += bdn > 0 ? bdn : 0; tot_dc += bdc > 0 ? bdc : 0;
            printf("%-22s %-5s %10.1f %10.1f %10.1f %11.1f %7.0f%%\n", layers[l].name, s->name, flop / b32 * 1e-9, flop / bft * 1e-9,
                   bdn > 0 ? flop / bdn * 1e-9 : 0.0, bdc > 0 ? flop / bdc * 1e-9 : 0.0, pk > 0 ? 100.0 * flop / bft * 1e-9 / pk : 0.0);
        }
        free(inp); free(w); free(dout); free(out); free(dinp); free(dw);
    }
    printf("%-22s %-5s %10.1f %10.1f %10.1f %11.1f %7.0f%%\n", "all (time-weighted)", "", tot_flop / tot_f32 * 1e-9,
           tot_flop / tot_ft * 1e-9, tot_dn > 0 ? tot_flop / tot_dn * 1e-9 : 0.0, tot_dc > 0 ? tot_flop / tot_dc * 1e-9 : 0.0,
           pk > 0 ? 100.0 * tot_flop / tot_ft * 1e-9 / pk : 0.0);
#ifdef FT_HAVE_DNNL
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
#endif
    return 0;
}
