/* cpu/activation.c — GELU (tanh form), SwiGLU and residual add: element-wise, parallel, vectorised
 * through the branch-free exp of vmath.h. GELU uses the identity 0.5 (1 + tanh(u)) = sigmoid(2u),
 * which avoids the cancellation of 1 + tanh(u) for negative u. */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x * sigmoid(2u) */
void ft_cpu_gelu_forward(void *ctx, float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= FT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        out[i] = x / (1.0f + ft_vexpf(-2.0f * u));
    }
}

/* dinp = dout * (s + 2 x s (1 - s) u'), s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
void ft_cpu_gelu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= FT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float s = 1.0f / (1.0f + ft_vexpf(-2.0f * u));
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] = dout[i] * (s + 2.0f * x * s * (1.0f - s) * du);
    }
}

/* inp[N,2H] = [gate | up]; out[N,H] = silu(gate) * up */
void ft_cpu_swiglu_forward(void *ctx, float *out, const float *inp, int N, int H) {
#pragma omp parallel for schedule(static) if ((size_t)N * H >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H;
        float *o = out + (size_t)n * H;
#pragma omp simd
        for (int i = 0; i < H; i++) o[i] = g[i] * ft_vsigmoidf(g[i]) * u[i];
    }
}

/* dinp[N,2H] = [dout * up * silu'(gate) | dout * silu(gate)] (assigned) */
void ft_cpu_swiglu_backward(void *ctx, float *dinp, const float *dout, const float *inp, int N, int H) {
#pragma omp parallel for schedule(static) if ((size_t)N * H >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H, *d = dout + (size_t)n * H;
        float *dg = dinp + (size_t)n * 2 * H, *du = dg + H;
#pragma omp simd
        for (int i = 0; i < H; i++) {
            float s = ft_vsigmoidf(g[i]);
            dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = d[i] * g[i] * s;
        }
    }
}

/* out[n] = a[n] + b[n] */
void ft_cpu_residual_forward(void *ctx, float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= FT_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
