/* encoder_ops.c — the kernels the encoders (src/models/encoder.c) add: bidirectional attention with
 * a key padding mask (wrappers over the attention family), exact (erf) GELU, tanh and ReLU, forward and
 * backward. Contracts in ops.h (FT_ENCODER_OPS_DECLARE). ft_ref_*: plain loops accumulating in double
 * (the tests' ground truth); ft_cpu_*: float32, OpenMP over elements, written for the vectoriser. */
#include "finetune/backend.h"
#include "finetune/ops.h"

#include "cpu/fast_math.h"
#include <math.h>

/* ------------------------------------------------------------ reference */

/* The encoders' attention (separate q, k, v [B,T,NH*HS], key padding mask) is the attention family with
 * the padding mask kind and row stride NH*HS (ops.h; ref/attn.c, cpu/attn.c). */
void ft_ref_enc_attention_dropout_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                          const int *mask, int B, int T, int NH, int HS, float p, unsigned long long seed) {
    int C = NH * HS;
    ft_attn_mask m = {FT_ATTN_PADDING, mask, NULL};
    ft_ref_attn_forward(ctx, out, att, q, C, k, C, v, C, &m, B, T, NH, NH, HS, p, seed);
}

void ft_ref_enc_attention_dropout_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                           const float *v, const float *att, int B, int T, int NH, int HS, float p,
                                           unsigned long long seed) {
    int C = NH * HS; /* no padding array needed: att is 0 at hidden keys, uniform in all-padding rows */
    ft_attn_mask m = {FT_ATTN_PADDING, NULL, NULL};
    ft_ref_attn_backward(ctx, dq, dk, dv, NULL, dout, q, C, k, C, v, C, att, &m, B, T, NH, NH, HS, p, seed);
}

void ft_ref_enc_attention_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    ft_ref_enc_attention_dropout_forward(ctx, out, att, q, k, v, mask, B, T, NH, HS, 0.0f, 0);
}

void ft_ref_enc_attention_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    ft_ref_enc_attention_dropout_backward(ctx, dq, dk, dv, dout, q, k, v, att, B, T, NH, HS, 0.0f, 0);
}

#define FT_SQRT1_2 0.70710678118654752440
#define FT_INV_SQRT_2PI 0.39894228040143267794

void ft_ref_gelu_erf_forward(void *ctx, float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) { double x = inp[i]; out[i] = (float)(0.5 * x * (1.0 + erf(x * FT_SQRT1_2))); }
}

void ft_ref_gelu_erf_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double g = 0.5 * (1.0 + erf(x * FT_SQRT1_2)) + x * FT_INV_SQRT_2PI * exp(-0.5 * x * x);
        dinp[i] = (float)(dout[i] * g);
    }
}

void ft_ref_tanh_forward(void *ctx, float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)tanh((double)inp[i]);
}

void ft_ref_tanh_backward(void *ctx, float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = (float)(dout[i] * (1.0 - (double)out[i] * out[i]));
}

void ft_ref_relu_forward(void *ctx, float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_ref_relu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}

/* ------------------------------------------------------------ optimised CPU */

void ft_cpu_enc_attention_dropout_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                          const int *mask, int B, int T, int NH, int HS, float p, unsigned long long seed) {
    int C = NH * HS;
    ft_attn_mask m = {FT_ATTN_PADDING, mask, NULL};
    ft_cpu_attn_forward(ctx, out, att, q, C, k, C, v, C, &m, B, T, NH, NH, HS, p, seed);
}

void ft_cpu_enc_attention_dropout_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                           const float *v, const float *att, int B, int T, int NH, int HS, float p,
                                           unsigned long long seed) {
    int C = NH * HS; /* no padding array needed: att is 0 at hidden keys, uniform in all-padding rows */
    ft_attn_mask m = {FT_ATTN_PADDING, NULL, NULL};
    ft_cpu_attn_backward(ctx, dq, dk, dv, NULL, dout, q, C, k, C, v, C, att, &m, B, T, NH, NH, HS, p, seed);
}

void ft_cpu_enc_attention_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    ft_cpu_enc_attention_dropout_forward(ctx, out, att, q, k, v, mask, B, T, NH, HS, 0.0f, 0);
}

void ft_cpu_enc_attention_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    ft_cpu_enc_attention_dropout_backward(ctx, dq, dk, dv, dout, q, k, v, att, B, T, NH, HS, 0.0f, 0);
}

void ft_cpu_gelu_erf_forward(void *ctx, float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { float x = inp[i]; out[i] = 0.5f * x * (1.0f + ft_erff_fast(x * (float)FT_SQRT1_2)); }
}

void ft_cpu_gelu_erf_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float g = 0.5f * (1.0f + ft_erff_fast(x * (float)FT_SQRT1_2)) + x * (float)FT_INV_SQRT_2PI * ft_expf_fast(-0.5f * x * x);
        dinp[i] = dout[i] * g;
    }
}

void ft_cpu_tanh_forward(void *ctx, float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void ft_cpu_tanh_backward(void *ctx, float *dinp, const float *dout, const float *out, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

void ft_cpu_relu_forward(void *ctx, float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_cpu_relu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}
