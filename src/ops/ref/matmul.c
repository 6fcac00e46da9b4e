/* ref/matmul.c — scalar reference linear layer and bias add (double dot products). */
#include "finetune/ops.h"

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC] (bias may be NULL) */
void ft_ref_matmul_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = (float)s;
        }
}

/* dinp[N,C] = dout @ w (assigned); dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout (any may be NULL) */
void ft_ref_matmul_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                            const float *w, int N, int C, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                dinp[(size_t)n * C + c] = (float)s;
            }
    if (dw)
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                dw[(size_t)o * C + c] += (float)s;
            }
    if (dbias) ft_ref_bias_backward(ctx, dbias, dout, N, OC);
}

/* out[N,OC] += bias[OC] */
void ft_ref_bias_add_forward(void *ctx, float *out, const float *bias, int N, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

/* dbias[OC] += sum_n dout[N,OC], each column summed over n in order, in double */
void ft_ref_bias_backward(void *ctx, float *dbias, const float *dout, int N, int OC) {
    for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
        dbias[o] += (float)s;
    }
}
