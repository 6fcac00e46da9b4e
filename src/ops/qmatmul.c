/* qmatmul.c — matmuls with a frozen weight in a storage format other than f32 (NF4 / int8 rows for
 * QLoRA, ggml blocks of GGUF models, bf16 for generation). The reference dequantizes with the scalar
 * _ref routine and runs the plain reference matmul (bf16: its own scalar references); the CPU version
 * calls the fused kernels of src/quant/ (dequantize on the fly, SIMD, OpenMP). */
#include "finetune/bf16.h"
#include "finetune/ggml_quant.h"
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_ggml(int dt) { return dt == FT_Q8_0 || dt == FT_Q4_0 || dt == FT_Q4_K; }

static void ggml_rows_ref(float *w, const ft_ggml_tensor *t, int r0, int nr) {
    ft_ggml_dequantize_rows_ref(w, (size_t)t->cols, t, r0, nr);
}

static void dequant_ref(float *w, int dt, const void *qw) {
    if (is_ggml(dt)) ggml_rows_ref(w, qw, 0, (int)((const ft_ggml_tensor *)qw)->rows);
    else if (dt == FT_NF4) ft_nf4_dequantize_ref(w, (const ft_nf4_tensor *)qw);
    else ft_q8row_dequantize_ref(w, (const ft_q8row_tensor *)qw);
}

static void shape_of(int dt, const void *qw, int *OC, int *C) {
    if (is_ggml(dt)) { *OC = (int)((const ft_ggml_tensor *)qw)->rows; *C = (int)((const ft_ggml_tensor *)qw)->cols; }
    else if (dt == FT_NF4) { *OC = (int)((const ft_nf4_tensor *)qw)->rows; *C = (int)((const ft_nf4_tensor *)qw)->cols; }
    else { *OC = (int)((const ft_q8row_tensor *)qw)->rows; *C = (int)((const ft_q8row_tensor *)qw)->cols; }
}

/* rows [r0, r0+nr) of W, dequantized into w[nr, C] */
static void dequant_rows(float *w, int dt, const void *qw, int r0, int nr, int C) {
    if (is_ggml(dt)) ggml_rows_ref(w, qw, r0, nr);
    else if (dt == FT_NF4) ft_nf4_dequantize_tile(w, (size_t)C, (const ft_nf4_tensor *)qw, r0, nr, 0, C);
    else ft_q8row_dequantize_tile(w, (size_t)C, (const ft_q8row_tensor *)qw, r0, nr, 0, C);
}

/* rows of W per block when ws cannot hold all of it: wsn / C, or, for a workspace under one row (which used to
 * loop forever), a one-row buffer of its own (*own, freed by the caller). 0 when that allocation fails: the
 * caller then fills its output with NaN, which the trainer reports as a non-finite loss, as this void contract
 * has no status to return. */
static int block_rows(float **ws, size_t wsn, int C, float **own) {
    *own = NULL;
    int rows = (int)(wsn / (size_t)C);
    if (rows >= 1) return rows;
    *ws = *own = malloc(sizeof(float) * (size_t)C);
    return *own ? 1 : 0;
}

static void fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

void ft_ref_qmatmul_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn) {
    if (dt == FT_BF16) { ft_bf16_matmul_forward_ref(out, inp, (const ft_bf16_tensor *)qw, bias, N); return; }
    int OC, C;
    shape_of(dt, qw, &OC, &C);
    if (wsn >= (size_t)OC * C) {
        dequant_ref(ws, dt, qw);
        ft_ref_matmul_forward(ctx, out, inp, ws, bias, N, C, OC);
        return;
    }
    /* a weight bigger than the workspace: by blocks of rows (output columns) */
    float *own;
    int rows = block_rows(&ws, wsn, C, &own);
    if (rows == 0) { fill_nan(out, (size_t)N * OC); return; }
    for (int r0 = 0; r0 < OC; r0 += rows) {
        int nr = OC - r0 < rows ? OC - r0 : rows;
        dequant_rows(ws, dt, qw, r0, nr, C);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < nr; o++) {
                double s = bias ? bias[r0 + o] : 0.0;
                for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * ws[(size_t)o * C + c];
                out[(size_t)n * OC + r0 + o] = (float)s;
            }
    }
    free(own);
}

void ft_ref_qmatmul_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    if (dt == FT_BF16) { ft_bf16_matmul_backward_ref(dinp, dout, (const ft_bf16_tensor *)qw, N); return; }
    int OC, C;
    shape_of(dt, qw, &OC, &C);
    if (wsn >= (size_t)OC * C) {
        dequant_ref(ws, dt, qw);
        ft_ref_matmul_backward(ctx, dinp, NULL, NULL, dout, NULL, ws, N, C, OC);
        return;
    }
    float *own;
    int rows = block_rows(&ws, wsn, C, &own);
    if (rows == 0) { fill_nan(dinp, (size_t)N * C); return; }
    memset(dinp, 0, sizeof(float) * (size_t)N * C);
    for (int r0 = 0; r0 < OC; r0 += rows) {
        int nr = OC - r0 < rows ? OC - r0 : rows;
        dequant_rows(ws, dt, qw, r0, nr, C);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int o = 0; o < nr; o++) s += (double)dout[(size_t)n * OC + r0 + o] * ws[(size_t)o * C + c];
                dinp[(size_t)n * C + c] += (float)s;
            }
    }
    free(own);
}

void ft_cpu_qmatmul_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn) {
    if (is_ggml(dt)) ft_ggml_matmul_forward(out, inp, (const ft_ggml_tensor *)qw, bias, N, ws, wsn);
    else if (dt == FT_BF16) ft_bf16_matmul_forward(out, inp, (const ft_bf16_tensor *)qw, bias, N, ws, wsn);
    else if (dt == FT_NF4) ft_nf4_matmul_forward(out, inp, (const ft_nf4_tensor *)qw, bias, N, ws, wsn);
    else ft_q8row_matmul_forward(out, inp, (const ft_q8row_tensor *)qw, bias, N, ws, wsn);
}

void ft_cpu_qmatmul_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    if (is_ggml(dt)) ft_ggml_matmul_backward(dinp, dout, (const ft_ggml_tensor *)qw, N, ws, wsn);
    else if (dt == FT_BF16) ft_bf16_matmul_backward(dinp, dout, (const ft_bf16_tensor *)qw, N, ws, wsn);
    else if (dt == FT_NF4) ft_nf4_matmul_backward(dinp, dout, (const ft_nf4_tensor *)qw, N, ws, wsn);
    else ft_q8row_matmul_backward(dinp, dout, (const ft_q8row_tensor *)qw, N, ws, wsn);
}
