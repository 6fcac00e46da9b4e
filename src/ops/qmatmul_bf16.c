/* qmatmul_bf16.c — the frozen quantized base of QLoRA (NF4 / int8 rows) in the bf16 tables (cpu-bf16,
 * ref-bf16): its forward and input-gradient matmuls in the bf16 GEMM of gemm_bf16.h instead of f32 sgemm.
 *
 * The CPU version hands the GEMM a source (ft_gemm_bf16_src) that dequantizes the blocks the GEMM packs,
 * straight from the NF4 / int8 codes into a per-thread scratch of a few KiB and on into the bf16 pair
 * words: no f32 copy of the weight is made and the workspace (ws) is not used. The reference dequantizes
 * the weight with the scalar _ref routine into ws (by even blocks of rows when ws is smaller) and runs
 * ft_ref_gemm_bf16; the dequantized values are the same bits (quant.h: the SIMD dequantization is
 * bit-identical to _ref), so the two give the same bits.
 *
 * Below FT_QUANT_DIRECT_MAX_N rows (generation, one token at a time) both run the f32 table's quantized
 * matmul (the direct kernels read 0.5 byte per weight; a GEMM would dequantize and pack the whole weight
 * for one row), as do the other storage formats (bf16 generation weights, ggml blocks). */
#include "finetune/bf16.h"
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/tensor.h"

#include <stdlib.h>
#include <string.h>

/* the bf16 GEMM takes it: an NF4 / int8 base at a training batch */
static int bf16_path(int dt, int N) { return (dt == FT_NF4 || dt == FT_Q8_ROW) && N > FT_QUANT_DIRECT_MAX_N; }

static void q_shape(int dt, const void *qw, int *OC, int *C) {
    if (dt == FT_NF4) { *OC = (int)((const ft_nf4_tensor *)qw)->rows; *C = (int)((const ft_nf4_tensor *)qw)->cols; }
    else { *OC = (int)((const ft_q8row_tensor *)qw)->rows; *C = (int)((const ft_q8row_tensor *)qw)->cols; }
}

/* ------------------------------------------------------------ reference */

/* rows [r0, r0+nr) of W [OC, C] into w[nr, C], scalar: the whole weight through _ref, or a row range */
static void deq_rows_ref(float *w, int dt, const void *qw, int r0, int nr, int OC, int C) {
    if (r0 == 0 && nr == OC) {
        if (dt == FT_NF4) ft_nf4_dequantize_ref(w, (const ft_nf4_tensor *)qw);
        else ft_q8row_dequantize_ref(w, (const ft_q8row_tensor *)qw);
        return;
    }
    if (dt == FT_NF4) { /* NF4: one block = 64 values of a row, the scale as every dequantization uses it */
        const ft_nf4_tensor *t = qw;
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < C; c++) {
                int64_t i = (int64_t)(r0 + r) * C + c, b = i / FT_NF4_BLOCK;
                uint8_t byte = t->blocks[b].qs[(i % FT_NF4_BLOCK) / 2];
                int code = (i % 2) ? (byte & 15) : (byte >> 4);
                w[(size_t)r * C + c] = FT_NF4_CODEBOOK[code] * ft_nf4_block_scale(t, b);
            }
    } else {
        const ft_q8row_tensor *t = qw;
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < C; c++) {
                float v = (float)t->q[(int64_t)(r0 + r) * C + c] * t->absmax[r0 + r];
                w[(size_t)r * C + c] = v * FT_Q8ROW_INV127;
            }
    }
}

/* rows of W per block when ws cannot hold all of it: even (a bf16 pair never straddles two blocks), at least
 * 2: a workspace under two rows is replaced by a buffer of two (*own, freed by the caller; NULL when out of
 * memory: 0 rows) */
static int block_rows(float **ws, size_t wsn, int OC, int C, float **own) {
    *own = NULL;
    if (wsn >= (size_t)OC * C) return OC;
    int rows = (int)(wsn / (size_t)C) / 2 * 2;
    if (rows >= 2) return rows;
    *ws = *own = malloc(sizeof(float) * 2 * (size_t)C);
    return *own ? 2 : 0;
}

void ft_ref_qmatmul_bf16_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws,
                                 size_t wsn) {
    if (!bf16_path(dt, N)) { ft_ref_qmatmul_forward(ctx, out, inp, dt, qw, bias, N, ws, wsn); return; }
    int OC, C;
    q_shape(dt, qw, &OC, &C);
    float *own;
    int rows = block_rows(&ws, wsn, OC, C, &own);
    /* by blocks of W's rows = of out's columns: each output still sums over all of C, in the GEMM's order */
    for (int r0 = 0; r0 < OC && rows > 0; r0 += rows) {
        int nr = OC - r0 < rows ? OC - r0 : rows;
        deq_rows_ref(ws, dt, qw, r0, nr, OC, C);
        ft_ref_gemm_bf16(out + r0, OC, inp, C, 0, ws, C, 1, N, nr, C, 0, bias ? bias + r0 : NULL);
    }
    free(own);
}

void ft_ref_qmatmul_bf16_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    if (!bf16_path(dt, N)) { ft_ref_qmatmul_backward(ctx, dinp, dout, dt, qw, N, ws, wsn); return; }
    int OC, C;
    q_shape(dt, qw, &OC, &C);
    float *own;
    int rows = block_rows(&ws, wsn, OC, C, &own);
    /* dinp = dout W: W's rows are the sum index; even blocks of them continue the sum in the same pair order */
    for (int r0 = 0; r0 < OC && rows > 0; r0 += rows) {
        int nr = OC - r0 < rows ? OC - r0 : rows;
        deq_rows_ref(ws, dt, qw, r0, nr, OC, C);
        ft_ref_gemm_bf16(dinp, C, dout + r0, OC, 0, ws, C, 0, N, C, nr, r0 > 0, NULL);
    }
    free(own);
}

/* ------------------------------------------------------------ CPU: dequantized while packed */

typedef struct q_src {
    int dt;
    const void *qw;
} q_src;

/* dst[i*ldd + j] = W[r0+i][c0+j]: the SIMD tile dequantization (bit-identical to _ref) */
static void q_rows(const void *ctx, float *dst, size_t ldd, int r0, int nr, int c0, int nc) {
    const q_src *s = ctx;
    if (s->dt == FT_NF4) ft_nf4_dequantize_tile(dst, ldd, (const ft_nf4_tensor *)s->qw, r0, nr, c0, nc);
    else ft_q8row_dequantize_tile(dst, ldd, (const ft_q8row_tensor *)s->qw, r0, nr, c0, nc);
}

void ft_cpu_qmatmul_bf16_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws,
                                 size_t wsn) {
    if (!bf16_path(dt, N)) { ft_cpu_qmatmul_forward(ctx, out, inp, dt, qw, bias, N, ws, wsn); return; }
    int OC, C;
    q_shape(dt, qw, &OC, &C);
    q_src s = {dt, qw};
    ft_gemm_bf16_src src = {q_rows, &s};
    ft_cpu_gemm_bf16_src(out, OC, inp, C, 0, &src, 1, N, OC, C, 0, bias); /* B = W^T: W [OC, C] as stored */
}

void ft_cpu_qmatmul_bf16_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    if (!bf16_path(dt, N)) { ft_cpu_qmatmul_backward(ctx, dinp, dout, dt, qw, N, ws, wsn); return; }
    int OC, C;
    q_shape(dt, qw, &OC, &C);
    q_src s = {dt, qw};
    ft_gemm_bf16_src src = {q_rows, &s};
    ft_cpu_gemm_bf16_src(dinp, C, dout, OC, 0, &src, 0, N, C, OC, 0, NULL); /* B = W [OC, C] */
}
