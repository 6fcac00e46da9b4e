/* cpu/matmul_acc.c — accumulating strided matmul through OpenBLAS (ldc / lda carry the stride). */
#include "finetune/ops.h"

#include <cblas.h>

void ft_cpu_matmul_acc_forward(void *ctx, float *out, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, rows, K, alpha, inp, K, w, K, 1.0f, out, ldo);
}

void ft_cpu_matmul_acc_backward(void *ctx, float *dinp, float *dw, const float *dout, int ldo, const float *inp, const float *w, int N, int K,
                                int rows, float alpha) {
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, K, rows, alpha, dout, ldo, w, K, 1.0f, dinp, K);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, K, N, alpha, dout, ldo, inp, K, 1.0f, dw, K);
}
