/* bf16_matmul.c — bf16 weights (bf16.h): the view, rounding and widening, the scalar references, and the
 * drivers that split the matmuls between threads and pick DIRECT (SIMD dot products, bf16_kernels_avx512.c)
 * or TILED (widened row blocks + OpenBLAS sgemm). */
#include "finetune/bf16.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "quant/bf16_kernels.h"
#include "quant/quant_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static inline float widen1(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------ storage */

size_t ft_bf16_nbytes(int64_t rows, int64_t cols) { return (size_t)rows * (size_t)cols * sizeof(uint16_t); }

int ft_bf16_view(ft_bf16_tensor *t, int64_t rows, int64_t cols, void *data) {
    if (rows <= 0 || cols <= 0 || rows > INT32_MAX || cols > INT32_MAX || !data)
        return ft_error(FT_ERR_INVALID, "bf16 tensor [%lld, %lld]: bad shape or no data", (long long)rows, (long long)cols);
    t->rows = rows;
    t->cols = cols;
    t->data = data;
    return FT_OK;
}

void ft_bf16_from_f32(ft_bf16_tensor *t, const float *w) {
    int64_t n = t->rows * t->cols;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) t->data[i] = ft_f32_to_bf16(w[i]);
}

static int simd(void) { return ft_quant_isa_get() == FT_QUANT_ISA_AVX512; }

void ft_bf16_rows_to_f32(float *w, const ft_bf16_tensor *t, int64_t r0, int64_t nr) {
    int64_t C = t->cols;
    const uint16_t *src = t->data + (size_t)r0 * C;
    if (simd()) { ft__bf16_widen_avx512(w, src, nr * C); return; }
    for (int64_t i = 0; i < nr * C; i++) w[i] = widen1(src[i]);
}

size_t ft_bf16_workspace_floats(int64_t OC, int64_t C) {
    int64_t rows = OC < 256 ? OC : 256;
    size_t tile = (size_t)rows * (size_t)C;
    size_t act = (size_t)FT_BF16_DIRECT_MAX_N * (size_t)C / 2 + 16;   /* bf16 activations (DPBF16) */
    return tile > act ? tile : act;
}

/* ------------------------------------------------------------------ references */

void ft_bf16_matmul_forward_ref(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N) {
    int64_t OC = w->rows, C = w->cols;
    for (int n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            const uint16_t *wr = w->data + (size_t)o * C;
            for (int64_t c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * widen1(wr[c]);
            out[(size_t)n * OC + o] = (float)s;
        }
}

void ft_bf16_matmul_forward_bf16act_ref(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N) {
    int64_t OC = w->rows, C = w->cols;
    for (int n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            const uint16_t *wr = w->data + (size_t)o * C;
            for (int64_t c = 0; c < C; c++) s += (double)widen1(ft_f32_to_bf16(inp[(size_t)n * C + c])) * widen1(wr[c]);
            out[(size_t)n * OC + o] = (float)s;
        }
}

void ft_bf16_matmul_backward_ref(float *dinp, const float *dout, const ft_bf16_tensor *w, int N) {
    int64_t OC = w->rows, C = w->cols;
    for (int n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * widen1(w->data[(size_t)o * C + c]);
            dinp[(size_t)n * C + c] = (float)s;
        }
}

/* ------------------------------------------------------------------ the dot-product switch */

static _Atomic int g_dot = -1;

const char *ft_bf16_dot_name(ft_bf16_dot d) { return d == FT_BF16_DOT_DPBF16 ? "dpbf16" : "f32fma"; }

int ft_bf16_cpu_has_dpbf16(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && ft_quant_isa_best() == FT_QUANT_ISA_AVX512;
#else
    return 0;
#endif
}

int ft_bf16_set_dot(ft_bf16_dot d) {
    if (d != FT_BF16_DOT_F32FMA && d != FT_BF16_DOT_DPBF16) return ft_error(FT_ERR_INVALID, "bf16: unknown dot product %d", (int)d);
    if (d == FT_BF16_DOT_DPBF16 && !ft_bf16_cpu_has_dpbf16())
        return ft_error(FT_ERR_UNSUPPORTED, "bf16: this CPU lacks AVX512-BF16 (vdpbf16ps)");
    atomic_store(&g_dot, (int)d);
    return FT_OK;
}

ft_bf16_dot ft_bf16_get_dot(void) {
    int v = atomic_load(&g_dot);
    if (v >= 0) return (ft_bf16_dot)v;
    const char *env = getenv("FT_BF16_DOT");
    /* DPBF16 where the CPU has it: measured faster (BENCHMARKS.md, issue 16 / bf16 generation) */
    int d = ft_bf16_cpu_has_dpbf16() ? FT_BF16_DOT_DPBF16 : FT_BF16_DOT_F32FMA;
    if (env && strcmp(env, "f32fma") == 0) d = FT_BF16_DOT_F32FMA;
    int expected = -1;
    atomic_compare_exchange_strong(&g_dot, &expected, d);
    return (ft_bf16_dot)atomic_load(&g_dot);
}

int ft_bf16_check_cpu(void) {
    ft_quant_isa best = ft_quant_isa_best();
    if (best != FT_QUANT_ISA_AVX512)
        return ft_error(FT_ERR_UNSUPPORTED, "bf16 weights need a CPU with AVX-512 (F and BW); this one has %s at best: use --precision f32",
                        ft_quant_isa_name(best));
    return FT_OK;
}

/* ------------------------------------------------------------------ drivers */

static int check(const ft_bf16_tensor *w, int N, const void *a, const void *b) {
    if (!w || !w->data || w->rows <= 0 || w->cols <= 0 || N < 0 || (N > 0 && (!a || !b)))
        return ft_error(FT_ERR_INVALID, "bf16 matmul: bad arguments");
    return FT_OK;
}

static void add_bias(float *out, const float *bias, int N, int64_t OC) {
    if (!bias) return;
    for (int n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

/* rows [o0, o1) of the scalar fallback (a CPU or FT_QUANT_ISA without AVX-512) */
static void rows_scalar(float *out, const float *inp, int N, const ft_bf16_tensor *w, int64_t o0, int64_t o1) {
    int64_t OC = w->rows, C = w->cols;
    for (int n = 0; n < N; n++)
        for (int64_t o = o0; o < o1; o++) {
            float s = 0;
            const uint16_t *wr = w->data + (size_t)o * C;
            for (int64_t c = 0; c < C; c++) s += inp[(size_t)n * C + c] * widen1(wr[c]);
            out[(size_t)n * OC + o] = s;
        }
}

/* the row blocks of one thread: blocks of 4 rows split evenly (each output summed by one thread in a fixed
 * order: the results do not depend on the thread count) */
static void my_rows(int64_t OC, int64_t *o0, int64_t *o1) {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t nb = (OC + 3) / 4, per = nb / nt, extra = nb % nt;
    int64_t b0 = t * per + (t < extra ? t : extra), b1 = b0 + per + (t < extra ? 1 : 0);
    *o0 = b0 * 4 < OC ? b0 * 4 : OC;
    *o1 = b1 * 4 < OC ? b1 * 4 : OC;
}

static void direct(float *out, const float *inp, const ft_bf16_tensor *w, int N, float *ws, size_t wsn) {
    int64_t OC = w->rows, C = w->cols;
    int fast = simd();
    int dp = fast && ft_bf16_get_dot() == FT_BF16_DOT_DPBF16 && ws && wsn * 2 >= (size_t)N * (size_t)C;
    uint16_t *xb = dp ? (uint16_t *)ws : NULL;
    if (dp) ft__bf16_round_avx512(xb, inp, (int64_t)N * C);
    int par = OC * C * (N ? N : 1) > 65536;
#pragma omp parallel if (par)
    {
        int64_t o0, o1;
        my_rows(OC, &o0, &o1);
        if (o0 < o1) {
            if (dp) ft__bf16_fwd_rows_dpbf16(out, OC, xb, N, w, o0, o1);
            else if (fast) ft__bf16_fwd_rows_f32fma(out, OC, inp, N, w, o0, o1);
            else rows_scalar(out, inp, N, w, o0, o1);
        }
    }
}

/* each thread widens blocks of its own rows into its share of ws and runs a single-threaded sgemm on them
 * (OpenBLAS runs single-threaded inside an OpenMP region): no thread waits for another between blocks */
static void tiled(float *out, const float *inp, const ft_bf16_tensor *w, int N, float *ws, size_t wsn) {
    int64_t OC = w->rows, C = w->cols;
    int nt = omp_get_max_threads();
    while (nt > 1 && wsn / (size_t)nt < (size_t)C) nt--;
#pragma omp parallel num_threads(nt)
    {
        int64_t o0, o1;
        my_rows(OC, &o0, &o1);
        size_t share = wsn / (size_t)omp_get_num_threads();
        int64_t rows = (int64_t)(share / (size_t)C);
        float *buf = ws + share * (size_t)omp_get_thread_num();
        for (int64_t r0 = o0; r0 < o1; r0 += rows) {
            int64_t nr = o1 - r0 < rows ? o1 - r0 : rows;
            ft_bf16_rows_to_f32(buf, w, r0, nr);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)nr, (int)C, 1.0f, inp, (int)C, buf, (int)C, 0.0f, out + r0, (int)OC);
        }
    }
}

int ft_bf16_matmul_forward(float *out, const float *inp, const ft_bf16_tensor *w, const float *bias, int N, float *ws, size_t wsn) {
    FT_TRY(check(w, N, out, inp));
    if (N == 0) return FT_OK;
    if (N <= FT_BF16_DIRECT_MAX_N || !ws || wsn < (size_t)w->cols) direct(out, inp, w, N, ws, wsn);
    else tiled(out, inp, w, N, ws, wsn);
    add_bias(out, bias, N, w->rows);
    return FT_OK;
}

int ft_bf16_matmul_backward(float *dinp, const float *dout, const ft_bf16_tensor *w, int N, float *ws, size_t wsn) {
    FT_TRY(check(w, N, dinp, dout));
    if (N == 0) return FT_OK;
    int64_t OC = w->rows, C = w->cols;
    if (!ws || wsn < (size_t)C) { ft_bf16_matmul_backward_ref(dinp, dout, w, N); return FT_OK; }
    int64_t rows = (int64_t)(wsn / (size_t)C);
    if (rows > OC) rows = OC;
    for (int64_t r0 = 0; r0 < OC; r0 += rows) {
        int64_t nr = OC - r0 < rows ? OC - r0 : rows;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < nr; r++) ft_bf16_rows_to_f32(ws + (size_t)r * C, w, r0 + r, 1);
        /* dinp [N, C] (+)= dout[:, r0:r0+nr] [N, nr] @ ws [nr, C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, (int)C, (int)nr, 1.0f, dout + r0, (int)OC, ws, (int)C,
                    r0 == 0 ? 0.0f : 1.0f, dinp, (int)C);
    }
    return FT_OK;
}
