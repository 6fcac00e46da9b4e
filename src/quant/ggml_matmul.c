/* ggml_matmul.c — the matmuls over ggml blocks (ggml_quant.h): the choice of path and kernel table, the
 * split of output rows over threads, the int8 quantization of the activations. The arithmetic is in the
 * kernel tables (ggml_kernels_*.c) and OpenBLAS. */
#include "quant/ggml_internal.h"

#include "finetune/status.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PAR_MIN_WORK (1 << 16) /* N*OC*C below this runs on one thread */

static _Atomic int g_exact = -1;

void ft_ggml_set_exact(int exact) { atomic_store(&g_exact, exact ? 1 : 0); }
int ft_ggml_get_exact(void) {
    int v = atomic_load(&g_exact);
    if (v >= 0) return v;
    const char *e = getenv("FT_GGML_EXACT");
    int want = e && *e && strcmp(e, "0") != 0;
    int expected = -1;
    atomic_compare_exchange_strong(&g_exact, &expected, want);
    return atomic_load(&g_exact);
}

static int cpu_has_vnni(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

const ft__ggml_kernels *ft__ggml_kernels_get(void) {
    static int vnni = -1;
    if (vnni < 0) vnni = cpu_has_vnni();
    switch (ft_quant_isa_get()) {
    case FT_QUANT_ISA_AVX512: return vnni ? &ft__ggml_kernels_avx512 : &ft__ggml_kernels_avx2;
    case FT_QUANT_ISA_AVX2: return &ft__ggml_kernels_avx2;
    default: return &ft__ggml_kernels_scalar;
    }
}

const char *ft_ggml_kernels_name(void) { return ft__ggml_kernels_get()->name; }

/* ---------------------------------------------------------------- int8 activations */

/* bytes of the int8 form of N rows of C values */
static size_t act_bytes(int N, int64_t C) {
    return 3 * (size_t)N * (size_t)C + 3 * sizeof(float) * (size_t)N * (size_t)(C / 32) + 128;
}

/* qs / d / ds of x[N, C] carved from mem (act_bytes); per 32 values: d = max|x| / 127, q = round(x / d)
 * (x * (127 / max|x|), ties to even), ds = d * sum(q) */
static void act_quantize(ft__ggml_act *a, void *mem, const float *x, int N, int64_t C) {
    const int64_t nb = C / 32, np = nb / 2;
    float *dxe = (float *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    float *d = dxe + (size_t)N * (size_t)np * 16, *ds = d + (size_t)N * nb;
    int32_t *xs = (int32_t *)(ds + (size_t)N * nb);
    int8_t *qs = (int8_t *)(xs + (size_t)N * nb);
    uint8_t *qu = (uint8_t *)(qs + (size_t)N * C);
    for (int64_t k = 0; k < (int64_t)N * nb; k++) {
        const float *v = x + k * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        float dd = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)nearbyintf(v[j] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            qs[k * 32 + j] = (int8_t)q;
            qu[k * 32 + j] = (uint8_t)(q + 128);
            s += q;
        }
        xs[k] = s;
        d[k] = dd;
        ds[k] = dd * (float)s;
    }
    for (int n = 0; n < N; n++)
        for (int64_t p = 0; p < np; p++)
            for (int l = 0; l < 16; l++) dxe[((size_t)n * np + p) * 16 + l] = d[n * nb + 2 * p + (l >> 3)];
    a->qs = qs;
    a->d = d;
    a->ds = ds;
    a->dxe = dxe;
    a->qu = qu;
    a->xs = xs;
    a->C = C;
}

/* ---------------------------------------------------------------- forward */

/* contiguous row ranges, one per thread (whole groups of 16 rows), so that each thread streams its part of W */
static void fwd_direct(float *out, const float *inp, const ft__ggml_act *act, const ft_ggml_tensor *w, const float *bias, int N) {
    const ft__ggml_kernels *K = ft__ggml_kernels_get();
    const int64_t OC = w->rows;
    int nthr = (int64_t)N * OC * w->cols >= PAR_MIN_WORK ? omp_get_max_threads() : 1;
    if (nthr > OC / 16) nthr = OC / 16 > 0 ? (int)(OC / 16) : 1;
#pragma omp parallel num_threads(nthr)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t per = ((OC + nt - 1) / nt + 15) / 16 * 16;   /* whole interleaved groups */
        int64_t o0 = (int64_t)t * per, o1 = o0 + per < OC ? o0 + per : OC;
        if (o0 < o1) {
            if (act) K->fwd_q8(out, OC, act, N, w, o0, o1);
            else K->fwd_f32(out, OC, inp, N, w, o0, o1);
            if (bias)
                for (int n = 0; n < N; n++)
                    for (int64_t o = o0; o < o1; o++) out[(int64_t)n * OC + o] += bias[o];
        }
    }
}

/* int8 activations for many rows (prompts): all N rows quantized once, then tiles of TILE_O output rows
 * (dynamically over the threads) each run the kernel over the rows in groups of FT_QUANT_DIRECT_MAX_N, so
 * that a tile of W is read from memory once and decoded from the cache N / 8 times */
#define TILE_O 16
static int fwd_int8_tiled(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws, size_t wsn) {
    const ft__ggml_kernels *K = ft__ggml_kernels_get();
    const int64_t OC = w->rows, C = w->cols, nb = C / 32;
    size_t need = act_bytes(N, C);
    void *heap = NULL, *amem = ws;
    if (!ws || wsn * sizeof(float) < need) {
        if (!(amem = heap = malloc(need))) return ft_error(FT_ERR_NOMEM, "ggml matmul forward: out of memory");
    }
    ft__ggml_act act;
    act_quantize(&act, amem, inp, N, C);
    const int64_t ntiles = (OC + TILE_O - 1) / TILE_O;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t o0 = t * TILE_O, o1 = o0 + TILE_O < OC ? o0 + TILE_O : OC;
        int done = K->gemm_q8 && K->gemm_q8(out, OC, &act, N, w, o0, o1);
        for (int n0 = 0; n0 < N && !done; n0 += FT_QUANT_DIRECT_MAX_N) {
            int nn = N - n0 < FT_QUANT_DIRECT_MAX_N ? N - n0 : FT_QUANT_DIRECT_MAX_N;
            ft__ggml_act sub = {act.qs + (size_t)n0 * C, act.d + (size_t)n0 * nb, act.ds + (size_t)n0 * nb,
                                act.qu + (size_t)n0 * C, act.xs + (size_t)n0 * nb, act.dxe + (size_t)n0 * (size_t)(nb / 2) * 16, C};
            K->fwd_q8(out + (size_t)n0 * OC, OC, &sub, nn, w, o0, o1);
        }
        if (bias)
            for (int n = 0; n < N; n++)
                for (int64_t o = o0; o < o1; o++) out[(int64_t)n * OC + o] += bias[o];
    }
    free(heap);
    return FT_OK;
}

static void prefill_bias(float *out, const float *bias, int N, int64_t OC) {
    for (int n = 0; n < N; n++) memcpy(out + (int64_t)n * OC, bias, (size_t)OC * sizeof(float));
}

static int fwd_full(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws) {
    const int64_t OC = w->rows, C = w->cols;
    ft_ggml_dequantize(ws, w);
    if (bias) prefill_bias(out, bias, N, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)OC, (int)C, 1.0f, inp, (int)C, ws, (int)C, bias ? 1.0f : 0.0f, out,
                (int)OC);
    return FT_OK;
}

/* each thread dequantizes TO rows of W into its part of ws and runs a single-threaded sgemm on them */
static int fwd_tiled(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws, size_t wsn) {
    const int64_t OC = w->rows, C = w->cols;
    int nthr = omp_get_max_threads();
    int64_t TO = 0;
    for (; nthr >= 1; nthr--) {
        TO = (int64_t)(wsn / (size_t)nthr) / C;
        if (TO >= 16 || TO >= OC) break;
    }
    if (nthr < 1 || TO < 1)
        return ft_error(FT_ERR_INVALID, "ggml matmul forward (tiled): workspace of %zu floats < one tile (16 x C = %lld)", wsn,
                        (long long)(16 * C));
    if (TO > 256) TO = 256;   /* tiles that stay in the cache while sgemm reads them */
    if (TO > OC) TO = OC;
    const int64_t ntiles = (OC + TO - 1) / TO;
    if (nthr > ntiles) nthr = (int)ntiles;
    if (bias) prefill_bias(out, bias, N, OC);
    const float beta = bias ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (int64_t t = 0; t < ntiles; t++) {
        float *buf = ws + (size_t)omp_get_thread_num() * (size_t)(TO * C);
        int64_t o0 = t * TO, no = OC - o0 < TO ? OC - o0 : TO;
        ft_ggml_dequantize_rows(buf, (size_t)C, w, o0, no);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)no, (int)C, 1.0f, inp, (int)C, buf, (int)C, beta, out + o0, (int)OC);
    }
    return FT_OK;
}

static int check(const void *a, const void *b, const ft_ggml_tensor *w, int N, const char *what) {
    if (!a || !b || !w || !w->data) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (N < 1 || w->rows < 1 || w->cols < 1) return ft_error(FT_ERR_SHAPE, "%s: N=%d and the weight's shape must be positive", what, N);
    if (!ft_ggml_type_supported(w->type) || w->row_bytes != ft_ggml_row_bytes(w->type, w->cols) || w->row_bytes > FT__GGML_ROWBUF)
        return ft_error(FT_ERR_INVALID, "%s: weight of ggml type %d with %lld columns and %zu bytes a row is not a valid Q8_0 / Q4_0 / Q4_K tensor",
                        what, w->type, (long long)w->cols, w->row_bytes);
    return FT_OK;
}

/* FT_GGML_PATH=direct|tiled|full forces AUTO's choice for N > FT_QUANT_DIRECT_MAX_N (experiments, bench) */
static ft_quant_path env_path(void) {
    static _Atomic int cached = -1;
    int v = atomic_load(&cached);
    if (v < 0) {
        const char *e = getenv("FT_GGML_PATH");
        v = FT_QUANT_PATH_AUTO;
        if (e && !strcmp(e, "tiled")) v = FT_QUANT_PATH_TILED;
        else if (e && !strcmp(e, "full")) v = FT_QUANT_PATH_FULL;
        else if (e && !strcmp(e, "direct")) v = FT_QUANT_PATH_DIRECT;
        atomic_store(&cached, v);
    }
    return (ft_quant_path)v;
}

int ft_ggml_matmul_forward_path(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws,
                                size_t ws_floats, ft_quant_path path) {
    FT_TRY(check(out, inp, w, N, "ggml matmul forward"));
    const size_t full = (size_t)w->rows * (size_t)w->cols;
    if (!ws) ws_floats = 0;
    if (path == FT_QUANT_PATH_AUTO && N > FT_QUANT_DIRECT_MAX_N) {
        ft_quant_path e = env_path();
        if (e == FT_QUANT_PATH_DIRECT || (e == FT_QUANT_PATH_FULL && ws_floats >= full) ||
            (e == FT_QUANT_PATH_TILED && ws_floats >= (size_t)16 * (size_t)w->cols))
            path = e;
    }
    if (path == FT_QUANT_PATH_AUTO) {
        if (N <= FT_QUANT_DIRECT_MAX_N || !ft_ggml_get_exact()) path = FT_QUANT_PATH_DIRECT;
        else if (ws_floats >= full) path = FT_QUANT_PATH_FULL;
        else if (ws_floats >= (size_t)16 * (size_t)w->cols) path = FT_QUANT_PATH_TILED;
        else path = FT_QUANT_PATH_DIRECT;
    }
    switch (path) {
    case FT_QUANT_PATH_DIRECT: break;
    case FT_QUANT_PATH_FULL:
        if (ws_floats < full)
            return ft_error(FT_ERR_INVALID, "ggml matmul forward (full): workspace of %zu floats < OC*C = %zu", ws_floats, full);
        return fwd_full(out, inp, w, bias, N, ws);
    case FT_QUANT_PATH_TILED: return fwd_tiled(out, inp, w, bias, N, ws, ws_floats);
    default: return ft_error(FT_ERR_INVALID, "ggml matmul: unknown path %d", (int)path);
    }
    /* DIRECT, N rows at a time (the kernels keep up to FT_QUANT_DIRECT_MAX_N accumulators) */
    const int exact = ft_ggml_get_exact();
    const int64_t C = w->cols;
    if (!exact && N > FT_QUANT_DIRECT_MAX_N) return fwd_int8_tiled(out, inp, w, bias, N, ws, ws_floats);
    void *heap = NULL, *amem = NULL;
    if (!exact) {
        size_t need = act_bytes(N < FT_QUANT_DIRECT_MAX_N ? N : FT_QUANT_DIRECT_MAX_N, C);
        if (ws_floats * sizeof(float) >= need) amem = ws;
        else if (!(amem = heap = malloc(need))) return ft_error(FT_ERR_NOMEM, "ggml matmul forward: out of memory");
    }
    for (int n0 = 0; n0 < N; n0 += FT_QUANT_DIRECT_MAX_N) {
        int nn = N - n0 < FT_QUANT_DIRECT_MAX_N ? N - n0 : FT_QUANT_DIRECT_MAX_N;
        ft__ggml_act act;
        if (!exact) act_quantize(&act, amem, inp + (size_t)n0 * C, nn, C);
        fwd_direct(out + (size_t)n0 * w->rows, inp + (size_t)n0 * C, exact ? NULL : &act, w, bias, nn);
    }
    free(heap);
    return FT_OK;
}

int ft_ggml_matmul_forward(float *out, const float *inp, const ft_ggml_tensor *w, const float *bias, int N, float *ws, size_t ws_floats) {
    return ft_ggml_matmul_forward_path(out, inp, w, bias, N, ws, ws_floats, FT_QUANT_PATH_AUTO);
}

/* ---------------------------------------------------------------- backward (input gradient) */

int ft_ggml_matmul_backward(float *dinp, const float *dout, const ft_ggml_tensor *w, int N, float *ws, size_t ws_floats) {
    FT_TRY(check(dinp, dout, w, N, "ggml matmul backward"));
    const int64_t OC = w->rows, C = w->cols;
    if (!ws) ws_floats = 0;
    float *heap = NULL;
    int64_t rows = (int64_t)(ws_floats / (size_t)C);
    if (rows < 1) {
        if (!(heap = malloc(sizeof(float) * (size_t)C * 16))) return ft_error(FT_ERR_NOMEM, "ggml matmul backward: out of memory");
        ws = heap;
        rows = 16;
    }
    if (rows > OC) rows = OC;
    /* dinp = sum over row blocks of dout[:, r0:r0+nr] @ W[r0:r0+nr, :] */
    for (int64_t r0 = 0; r0 < OC; r0 += rows) {
        int64_t nr = OC - r0 < rows ? OC - r0 : rows;
        if (nr == OC) ft_ggml_dequantize(ws, w);
        else ft_ggml_dequantize_rows(ws, (size_t)C, w, r0, nr);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, (int)C, (int)nr, 1.0f, dout + r0, (int)OC, ws, (int)C,
                    r0 ? 1.0f : 0.0f, dinp, (int)C);
    }
    free(heap);
    return FT_OK;
}
