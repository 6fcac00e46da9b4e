/* quant_matmul.c — the fused matmuls with a quantized, frozen W[OC, C] (NF4 or int8 rows):
 *   forward   out[N,OC] = inp[N,C] @ W^T (+ bias)
 *   backward  dinp[N,C] = dout[N,OC] @ W      (input gradient only: the base weight is frozen)
 * through one of three paths (quant.h): DIRECT SIMD kernels, TILED per-thread dequantized tiles +
 * single-threaded sgemm, FULL dequantization + one multi-threaded sgemm. The code here only splits
 * the work; the arithmetic is in the kernel tables (kernels_*.c) and OpenBLAS. */
#include "quant/quant_internal.h"

#include "finetune/status.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#define TILE_MIN 64          /* rows (forward) or columns (backward) of the smallest useful tile */
#define PAR_MIN_WORK (1 << 16) /* N*OC*C below this runs on one thread */

/* One quantized weight, whichever format. */
typedef struct qweight {
    const ft_nf4_tensor *nf4;
    const ft_q8row_tensor *q8;
    int64_t OC, C;
    int64_t col_align; /* column tiles are multiples of this (NF4 blocks: 64) */
} qweight;

static void deq_tile(const qweight *w, float *out, size_t ldo, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    if (w->nf4) ft_nf4_dequantize_tile(out, ldo, w->nf4, r0, nr, c0, nc);
    else ft_q8row_dequantize_tile(out, ldo, w->q8, r0, nr, c0, nc);
}

const char *ft_quant_path_name(ft_quant_path p) {
    switch (p) {
    case FT_QUANT_PATH_AUTO: return "auto";
    case FT_QUANT_PATH_DIRECT: return "direct";
    case FT_QUANT_PATH_TILED: return "tiled";
    case FT_QUANT_PATH_FULL: return "full";
    }
    return "?";
}

/* floats one thread's tile needs: TILE_MIN rows of W (forward) or TILE_MIN columns (backward) */
static size_t tile_floats(int64_t C, int64_t OC) {
    size_t f = (size_t)TILE_MIN * (size_t)C, b = (size_t)OC * TILE_MIN;
    return f > b ? f : b;
}

size_t ft_quant_workspace_floats(ft_quant_ws_kind kind, int N_max, int64_t C, int64_t OC, int nthreads) {
    (void)N_max;
    if (C < 1 || OC < 1) return 0;
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    size_t tiles = (size_t)nthreads * tile_floats(C, OC);
    if (kind == FT_QUANT_WS_LEAN) return tiles;
    size_t full = (size_t)C * (size_t)OC;
    return full > tiles ? full : tiles;
}

static int check_args(const void *a, const void *b, const void *w, int N, int64_t C, int64_t OC, const char *what) {
    if (!a || !b || !w) return ft_error(FT_ERR_INVALID, "%s: NULL argument", what);
    if (N < 1 || C < 1 || OC < 1)
        return ft_error(FT_ERR_SHAPE, "%s: N=%d C=%lld OC=%lld must be positive", what, N, (long long)C, (long long)OC);
    return FT_OK;
}

static int64_t round_down(int64_t x, int64_t m) { return x / m * m; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* ---------------------------------------------------------------- forward */

static void fwd_direct(float *out, const float *inp, const qweight *w, const float *bias, int N) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    const float *map = ft_quant_dynamic_map();
    const int64_t OC = w->OC, C = w->C;
    const int64_t chunk = 16, nchunks = (OC + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if ((int64_t)N * OC * C >= PAR_MIN_WORK)
    for (int64_t k = 0; k < nchunks; k++) {
        int64_t o0 = k * chunk, o1 = o0 + chunk < OC ? o0 + chunk : OC;
        if (w->nf4) K->nf4_fwd_rows(out, OC, inp, N, w->nf4, map, o0, o1);
        else K->q8_fwd_rows(out, OC, inp, N, w->q8, o0, o1);
        if (bias)
            for (int n = 0; n < N; n++)
                for (int64_t o = o0; o < o1; o++) out[(int64_t)n * OC + o] += bias[o];
    }
}

static void prefill_bias(float *out, const float *bias, int N, int64_t OC) {
#pragma omp parallel for schedule(static) if ((int64_t)N * OC >= PAR_MIN_WORK)
    for (int n = 0; n < N; n++) memcpy(out + (int64_t)n * OC, bias, (size_t)OC * sizeof(float));
}

static int fwd_full(float *out, const float *inp, const qweight *w, const float *bias, int N, float *ws, size_t ws_floats) {
    const int64_t OC = w->OC, C = w->C;
    if (!ws || ws_floats < (size_t)OC * (size_t)C)
        return ft_error(FT_ERR_INVALID, "quant matmul forward (full): workspace of %zu floats < OC*C = %lld", ws_floats, (long long)(OC * C));
    if (w->nf4) ft_nf4_dequantize(ws, w->nf4);
    else ft_q8row_dequantize(ws, w->q8);
    if (bias) prefill_bias(out, bias, N, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)OC, (int)C, 1.0f, inp, (int)C, ws, (int)C,
                bias ? 1.0f : 0.0f, out, (int)OC);
    return FT_OK;
}

static int fwd_tiled(float *out, const float *inp, const qweight *w, const float *bias, int N, float *ws, size_t ws_floats) {
    const int64_t OC = w->OC, C = w->C;
    int nthr = omp_get_max_threads();
    if ((int64_t)N * OC * C < PAR_MIN_WORK) nthr = 1;
    /* rows per tile: what the workspace allows per thread, at most an even share of OC */
    int64_t TO = 0;
    for (; nthr >= 1; nthr--) {
        TO = (int64_t)(ws ? ws_floats / (size_t)nthr : 0) / C;
        if (TO >= 16 || TO >= OC) break;
    }
    if (nthr < 1 || TO < 1)
        return ft_error(FT_ERR_INVALID, "quant matmul forward (tiled): workspace of %zu floats < one tile (16 x C = %lld)", ws_floats, (long long)(16 * C));
    int64_t share = round_up((OC + nthr - 1) / nthr, 16);
    if (TO > share) TO = share;
    if (TO > OC) TO = OC;
    if (TO < OC && TO >= 16) TO = round_down(TO, 16);
    const int64_t ntiles = (OC + TO - 1) / TO;
    if (nthr > ntiles) nthr = (int)ntiles;
    if (bias) prefill_bias(out, bias, N, OC);
    const float beta = bias ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int64_t t = 0; t < ntiles; t++) {
        float *buf = ws + (size_t)omp_get_thread_num() * (size_t)(TO * C);
        int64_t o0 = t * TO, no = OC - o0 < TO ? OC - o0 : TO;
        deq_tile(w, buf, (size_t)C, o0, no, 0, C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, (int)no, (int)C, 1.0f, inp, (int)C, buf, (int)C, beta,
                    out + o0, (int)OC);
    }
    return FT_OK;
}

static int matmul_forward(float *out, const float *inp, const qweight *w, const float *bias, int N, float *ws, size_t ws_floats,
                          ft_quant_path path) {
    if (path == FT_QUANT_PATH_AUTO) {
        if (N <= FT_QUANT_DIRECT_MAX_N) path = FT_QUANT_PATH_DIRECT;
        else if (ws && ws_floats >= (size_t)w->OC * (size_t)w->C) path = FT_QUANT_PATH_FULL;
        else if (ws && ws_floats >= (size_t)16 * (size_t)w->C) path = FT_QUANT_PATH_TILED;
        else path = FT_QUANT_PATH_DIRECT;
    }
    switch (path) {
    case FT_QUANT_PATH_DIRECT: fwd_direct(out, inp, w, bias, N); return FT_OK;
    case FT_QUANT_PATH_FULL: return fwd_full(out, inp, w, bias, N, ws, ws_floats);
    case FT_QUANT_PATH_TILED: return fwd_tiled(out, inp, w, bias, N, ws, ws_floats);
    default: return ft_error(FT_ERR_INVALID, "quant matmul: unknown path %d", (int)path);
    }
}

/* ---------------------------------------------------------------- backward (input gradient) */

static void bwd_direct(float *dinp, const float *dout, const qweight *w, int N) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    const float *map = ft_quant_dynamic_map();
    const int64_t OC = w->OC, C = w->C;
    const int64_t nslices = (C + FT_QUANT_BWD_SLICE - 1) / FT_QUANT_BWD_SLICE;
#pragma omp parallel for schedule(static) if ((int64_t)N * OC * C >= PAR_MIN_WORK)
    for (int64_t s = 0; s < nslices; s++) {
        if (w->nf4) {
            K->nf4_bwd_cols(dinp, dout, N, w->nf4, map, s, s + 1); /* one 64-column block per slice */
        } else {
            int64_t c0 = s * FT_QUANT_BWD_SLICE, c1 = c0 + FT_QUANT_BWD_SLICE < C ? c0 + FT_QUANT_BWD_SLICE : C;
            K->q8_bwd_cols(dinp, dout, N, w->q8, c0, c1);
        }
    }
}

static int bwd_full(float *dinp, const float *dout, const qweight *w, int N, float *ws, size_t ws_floats) {
    const int64_t OC = w->OC, C = w->C;
    if (!ws || ws_floats < (size_t)OC * (size_t)C)
        return ft_error(FT_ERR_INVALID, "quant matmul backward (full): workspace of %zu floats < OC*C = %lld", ws_floats, (long long)(OC * C));
    if (w->nf4) ft_nf4_dequantize(ws, w->nf4);
    else ft_q8row_dequantize(ws, w->q8);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, (int)C, (int)OC, 1.0f, dout, (int)OC, ws, (int)C, 0.0f, dinp, (int)C);
    return FT_OK;
}

/* column tiles: thread tile = W[:, c0:c0+TC] (OC x TC), dinp[:, c0:c0+TC] = dout @ tile */
static int bwd_tiled(float *dinp, const float *dout, const qweight *w, int N, float *ws, size_t ws_floats) {
    const int64_t OC = w->OC, C = w->C, A = w->col_align;
    int nthr = omp_get_max_threads();
    if ((int64_t)N * OC * C < PAR_MIN_WORK) nthr = 1;
    int64_t TC = 0;
    for (; nthr >= 1; nthr--) {
        TC = (int64_t)(ws ? ws_floats / (size_t)nthr : 0) / OC;
        if (TC >= C || TC >= A) break;
    }
    if (nthr < 1 || (TC < C && TC < A))
        return ft_error(FT_ERR_INVALID, "quant matmul backward (tiled): workspace of %zu floats < one tile (OC x %lld = %lld)", ws_floats,
                        (long long)A, (long long)(OC * A));
    int64_t share = round_up((C + nthr - 1) / nthr, A);
    if (TC > share) TC = share;
    if (TC >= C) TC = C;
    else TC = round_down(TC, A);
    const int64_t ntiles = (C + TC - 1) / TC;
    if (nthr > ntiles) nthr = (int)ntiles;
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int64_t t = 0; t < ntiles; t++) {
        float *buf = ws + (size_t)omp_get_thread_num() * (size_t)(OC * TC);
        int64_t c0 = t * TC, nc = C - c0 < TC ? C - c0 : TC;
        deq_tile(w, buf, (size_t)nc, 0, OC, c0, nc);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, (int)nc, (int)OC, 1.0f, dout, (int)OC, buf, (int)nc, 0.0f,
                    dinp + c0, (int)C);
    }
    return FT_OK;
}

static int matmul_backward(float *dinp, const float *dout, const qweight *w, int N, float *ws, size_t ws_floats, ft_quant_path path) {
    if (path == FT_QUANT_PATH_AUTO) {
        if (N <= FT_QUANT_DIRECT_MAX_N) path = FT_QUANT_PATH_DIRECT;
        else if (ws && ws_floats >= (size_t)w->OC * (size_t)w->C) path = FT_QUANT_PATH_FULL;
        else if (ws && ws_floats >= (size_t)w->OC * (size_t)(w->C < w->col_align ? w->C : w->col_align)) path = FT_QUANT_PATH_TILED;
        else path = FT_QUANT_PATH_DIRECT;
    }
    switch (path) {
    case FT_QUANT_PATH_DIRECT: bwd_direct(dinp, dout, w, N); return FT_OK;
    case FT_QUANT_PATH_FULL: return bwd_full(dinp, dout, w, N, ws, ws_floats);
    case FT_QUANT_PATH_TILED: return bwd_tiled(dinp, dout, w, N, ws, ws_floats);
    default: return ft_error(FT_ERR_INVALID, "quant matmul: unknown path %d", (int)path);
    }
}

/* ---------------------------------------------------------------- public entry points */

static qweight from_nf4(const ft_nf4_tensor *w) {
    qweight q = {w, NULL, w->rows, w->cols, FT_NF4_BLOCK};
    return q;
}
static qweight from_q8(const ft_q8row_tensor *w) {
    qweight q = {NULL, w, w->rows, w->cols, 16};
    return q;
}

int ft_nf4_matmul_forward_path(float *out, const float *inp, const ft_nf4_tensor *w, const float *bias, int N, float *ws, size_t ws_floats,
                               ft_quant_path path) {
    if (!w) return ft_error(FT_ERR_INVALID, "nf4 matmul forward: NULL weight");
    FT_TRY(check_args(out, inp, w->blocks, N, w->cols, w->rows, "nf4 matmul forward"));
    qweight q = from_nf4(w);
    return matmul_forward(out, inp, &q, bias, N, ws, ws_floats, path);
}
int ft_nf4_matmul_forward(float *out, const float *inp, const ft_nf4_tensor *w, const float *bias, int N, float *ws, size_t ws_floats) {
    return ft_nf4_matmul_forward_path(out, inp, w, bias, N, ws, ws_floats, FT_QUANT_PATH_AUTO);
}
int ft_nf4_matmul_backward_path(float *dinp, const float *dout, const ft_nf4_tensor *w, int N, float *ws, size_t ws_floats, ft_quant_path path) {
    if (!w) return ft_error(FT_ERR_INVALID, "nf4 matmul backward: NULL weight");
    FT_TRY(check_args(dinp, dout, w->blocks, N, w->cols, w->rows, "nf4 matmul backward"));
    qweight q = from_nf4(w);
    return matmul_backward(dinp, dout, &q, N, ws, ws_floats, path);
}
int ft_nf4_matmul_backward(float *dinp, const float *dout, const ft_nf4_tensor *w, int N, float *ws, size_t ws_floats) {
    return ft_nf4_matmul_backward_path(dinp, dout, w, N, ws, ws_floats, FT_QUANT_PATH_AUTO);
}

int ft_q8row_matmul_forward_path(float *out, const float *inp, const ft_q8row_tensor *w, const float *bias, int N, float *ws, size_t ws_floats,
                                 ft_quant_path path) {
    if (!w) return ft_error(FT_ERR_INVALID, "q8row matmul forward: NULL weight");
    FT_TRY(check_args(out, inp, w->q, N, w->cols, w->rows, "q8row matmul forward"));
    qweight q = from_q8(w);
    return matmul_forward(out, inp, &q, bias, N, ws, ws_floats, path);
}
int ft_q8row_matmul_forward(float *out, const float *inp, const ft_q8row_tensor *w, const float *bias, int N, float *ws, size_t ws_floats) {
    return ft_q8row_matmul_forward_path(out, inp, w, bias, N, ws, ws_floats, FT_QUANT_PATH_AUTO);
}
int ft_q8row_matmul_backward_path(float *dinp, const float *dout, const ft_q8row_tensor *w, int N, float *ws, size_t ws_floats, ft_quant_path path) {
    if (!w) return ft_error(FT_ERR_INVALID, "q8row matmul backward: NULL weight");
    FT_TRY(check_args(dinp, dout, w->q, N, w->cols, w->rows, "q8row matmul backward"));
    qweight q = from_q8(w);
    return matmul_backward(dinp, dout, &q, N, ws, ws_floats, path);
}
int ft_q8row_matmul_backward(float *dinp, const float *dout, const ft_q8row_tensor *w, int N, float *ws, size_t ws_floats) {
    return ft_q8row_matmul_backward_path(dinp, dout, w, N, ws, ws_floats, FT_QUANT_PATH_AUTO);
}
