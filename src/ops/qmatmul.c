/* qmatmul.c — matmuls with a quantized frozen weight (NF4 / int8 rows), for QLoRA. The reference
 * dequantizes with the scalar _ref routine and runs the plain reference matmul; the CPU version calls
 * the fused kernels of src/quant/ (dequantize on the fly, SIMD, OpenMP). */
#include "finetune/ops.h"
#include "finetune/quant.h"
#include "finetune/tensor.h"

#include <string.h>

static void dequant_ref(float *w, int dt, const void *qw) {
    if (dt == FT_NF4) ft_nf4_dequantize_ref(w, (const ft_nf4_tensor *)qw);
    else ft_q8row_dequantize_ref(w, (const ft_q8row_tensor *)qw);
}

static void shape_of(int dt, const void *qw, int *OC, int *C) {
    if (dt == FT_NF4) { *OC = (int)((const ft_nf4_tensor *)qw)->rows; *C = (int)((const ft_nf4_tensor *)qw)->cols; }
    else { *OC = (int)((const ft_q8row_tensor *)qw)->rows; *C = (int)((const ft_q8row_tensor *)qw)->cols; }
}

void ft_ref_qmatmul_forward(float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn) {
    int OC, C;
    shape_of(dt, qw, &OC, &C);
    (void)wsn;
    dequant_ref(ws, dt, qw);
    ft_ref_matmul_forward(out, inp, ws, bias, N, C, OC);
}

void ft_ref_qmatmul_backward(float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    int OC, C;
    shape_of(dt, qw, &OC, &C);
    (void)wsn;
    dequant_ref(ws, dt, qw);
    ft_ref_matmul_backward(dinp, NULL, NULL, dout, NULL, ws, N, C, OC);
}

void ft_cpu_qmatmul_forward(float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn) {
    if (dt == FT_NF4) ft_nf4_matmul_forward(out, inp, (const ft_nf4_tensor *)qw, bias, N, ws, wsn);
    else ft_q8row_matmul_forward(out, inp, (const ft_q8row_tensor *)qw, bias, N, ws, wsn);
}

void ft_cpu_qmatmul_backward(float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn) {
    if (dt == FT_NF4) ft_nf4_matmul_backward(dinp, dout, (const ft_nf4_tensor *)qw, N, ws, wsn);
    else ft_q8row_matmul_backward(dinp, dout, (const ft_q8row_tensor *)qw, N, ws, wsn);
}
