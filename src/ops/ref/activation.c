/* ref/activation.c — scalar reference GELU (tanh form), SwiGLU and residual add, in double. */
#include "finetune/ops.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_A 0.044715

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (HF gelu_new) */
void ft_ref_gelu_forward(void *ctx, float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_A * x * x * x))));
    }
}

/* dinp = dout * gelu'(inp) (assigned) */
void ft_ref_gelu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double th = tanh(GELU_K * (x + GELU_A * x * x * x));
        double du = GELU_K * (1.0 + 3.0 * GELU_A * x * x);
        dinp[i] = (float)(dout[i] * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du));
    }
}

/* inp[N,2H] = [gate | up]; out[N,H] = silu(gate) * up */
void ft_ref_swiglu_forward(void *ctx, float *out, const float *inp, int N, int H) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++) {
            double g = inp[(size_t)n * 2 * H + i], u = inp[(size_t)n * 2 * H + H + i];
            out[(size_t)n * H + i] = (float)(g / (1.0 + exp(-g)) * u);
        }
}

/* dinp[N,2H] = [dgate | dup] (assigned) */
void ft_ref_swiglu_backward(void *ctx, float *dinp, const float *dout, const float *inp, int N, int H) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++) {
            size_t gi = (size_t)n * 2 * H + i;
            double g = inp[gi], u = inp[gi + H], d = dout[(size_t)n * H + i];
            double s = 1.0 / (1.0 + exp(-g));
            dinp[gi] = (float)(d * u * s * (1.0 + g * (1.0 - s)));
            dinp[gi + H] = (float)(d * g * s);
        }
}

/* out[n] = a[n] + b[n] */
void ft_ref_residual_forward(void *ctx, float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
