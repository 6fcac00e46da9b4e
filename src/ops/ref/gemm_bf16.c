/* ref/gemm_bf16.c — the scalar bf16 GEMM and linear layer (gemm_bf16.h): the ground truth the CPU
 * kernels are tested against bit for bit. */
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/tensor.h"

#include <string.h>

/* The file-format conversion (tensor.h: ft_f32_to_bf16, quiet NaN and round to nearest even, subnormals
 * kept as torch keeps them) with vcvtneps2bf16's one difference: a subnormal becomes a signed zero. */
uint16_t ft_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000); /* zero / subnormal: signed 0 */
    return ft_f32_to_bf16(x);
}

float ft_bf16_roundtrip(float x) {
    uint32_t u = (uint32_t)ft_bf16_round(x) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void ft_ref_gemm_bf16(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, int transB,
                      int M, int N, int K, int accumulate, const float *bias) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = accumulate ? C[(size_t)m * ldc + n] : (bias ? bias[n] : 0.0f);
            for (int k = 0; k < K; k += 2) { /* one vdpbf16ps lane: the odd term first, then the even one */
                float a0 = ft_bf16_roundtrip(transA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k]);
                float b0 = ft_bf16_roundtrip(transB ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n]);
                float a1 = 0.0f, b1 = 0.0f;
                if (k + 1 < K) {
                    a1 = ft_bf16_roundtrip(transA ? A[(size_t)(k + 1) * lda + m] : A[(size_t)m * lda + k + 1]);
                    b1 = ft_bf16_roundtrip(transB ? B[(size_t)n * ldb + k + 1] : B[(size_t)(k + 1) * ldb + n]);
                }
                float p1 = a1 * b1, p0 = a0 * b0; /* exact in f32 (8-bit x 8-bit significands) */
                acc = acc + p1;
                acc = acc + p0;
            }
            C[(size_t)m * ldc + n] = acc;
        }
}

void ft_ref_gemm_bf16_a16(float *C, int ldc, const uint16_t *A, int lda, int transA, const float *B, int ldb, int transB,
                          int M, int N, int K, int accumulate, const float *bias) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = accumulate ? C[(size_t)m * ldc + n] : (bias ? bias[n] : 0.0f);
            for (int k = 0; k < K; k += 2) { /* as ft_ref_gemm_bf16, A's values widened (and rounded: a subnormal is 0) */
                float a0 = ft_bf16_roundtrip(ft_bf16_to_f32(transA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k]));
                float b0 = ft_bf16_roundtrip(transB ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n]);
                float a1 = 0.0f, b1 = 0.0f;
                if (k + 1 < K) {
                    a1 = ft_bf16_roundtrip(ft_bf16_to_f32(transA ? A[(size_t)(k + 1) * lda + m] : A[(size_t)m * lda + k + 1]));
                    b1 = ft_bf16_roundtrip(transB ? B[(size_t)n * ldb + k + 1] : B[(size_t)(k + 1) * ldb + n]);
                }
                float p1 = a1 * b1, p0 = a0 * b0;
                acc = acc + p1;
                acc = acc + p0;
            }
            C[(size_t)m * ldc + n] = acc;
        }
}

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC] */
void ft_ref_matmul_bf16_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    ft_ref_gemm_bf16(out, OC, inp, C, 0, w, C, 1, N, OC, C, 0, bias);
}

/* dinp[N,C] = dout @ w (assigned); dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout */
void ft_ref_matmul_bf16_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, int N, int C, int OC) {
    if (dinp) ft_ref_gemm_bf16(dinp, C, dout, OC, 0, w, C, 0, N, C, OC, 0, NULL);
    if (dw) ft_ref_gemm_bf16(dw, C, dout, OC, 1, inp, C, 0, OC, C, N, 1, NULL);
    if (dbias) ft_ref_bias_backward(ctx, dbias, dout, N, OC);
}
