/* ref/matmul_acc.c — accumulating strided matmul (LoRA branches), plain loops, double sums. */
#include "finetune/ops.h"

/* out[N, rows] (row stride ldo) += alpha * inp[N,K] @ w[rows,K]^T */
void ft_ref_matmul_acc_forward(void *ctx, float *out, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < rows; o++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)inp[(size_t)n * K + k] * w[(size_t)o * K + k];
            out[(size_t)n * ldo + o] += (float)(alpha * s);
        }
}

/* dinp[N,K] += alpha * dout @ w; dw[rows,K] += alpha * dout^T @ inp */
void ft_ref_matmul_acc_backward(void *ctx, float *dinp, float *dw, const float *dout, int ldo, const float *inp, const float *w, int N, int K,
                                int rows, float alpha) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                double s = 0;
                for (int o = 0; o < rows; o++) s += (double)dout[(size_t)n * ldo + o] * w[(size_t)o * K + k];
                dinp[(size_t)n * K + k] += (float)(alpha * s);
            }
    if (dw)
        for (int o = 0; o < rows; o++)
            for (int k = 0; k < K; k++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * ldo + o] * inp[(size_t)n * K + k];
                dw[(size_t)o * K + k] += (float)(alpha * s);
            }
}
