/* cpu/activation.c — GELU (tanh form), SwiGLU and residual add: element-wise, parallel, vectorised
 * through the branch-free exp of vmath.h. GELU's 16-lane form (gelu_avx512.h: x sigmoid(2u)) is
 * shared with the bf16 GEMM's fused epilogues (gemm_bf16.c), which give these kernels' bits. */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"
#include "ops/cpu/gelu_avx512.h"

#define GELU_K FT_GELU_K
#define GELU_A FT_GELU_A

#ifdef FT_VMATH_AVX512
#define GELU_BLK 4096 /* elements per task of the parallel loops */
/* the backward's two input streams are prefetched GELU_PF floats ahead: 1024 x 3072, one thread, 1.00 ->
 * 0.87-0.91 ms (the forward's one stream measured no gain) */
#define GELU_PF 2048
#endif

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x * sigmoid(2u) */
void ft_cpu_gelu_forward(void *ctx, float *out, const float *inp, size_t n) {
#ifdef FT_VMATH_AVX512
    size_t nb = (n + GELU_BLK - 1) / GELU_BLK;
#pragma omp parallel for schedule(static) if (n >= FT_PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * GELU_BLK, i1 = i0 + GELU_BLK < n ? i0 + GELU_BLK : n;
        size_t i = i0;
        for (; i + 16 <= i1; i += 16) { /* full vectors unmasked: masked stores are slow on AMD Zen */
            __m512 x = _mm512_loadu_ps(inp + i);
            _mm512_storeu_ps(out + i, ft_vgelu16(x));
        }
        if (i < i1) {
            __mmask16 k = (__mmask16)((1u << (i1 - i)) - 1);
            _mm512_mask_storeu_ps(out + i, k, ft_vgelu16(_mm512_maskz_loadu_ps(k, inp + i)));
        }
    }
#else
#pragma omp parallel for simd schedule(static) if (n >= FT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        out[i] = x / (1.0f + ft_vexpf(-2.0f * u));
    }
#endif
}

/* dinp = dout * (s + 2 x s (1 - s) u'), s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
void ft_cpu_gelu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
#ifdef FT_VMATH_AVX512
    size_t nb = (n + GELU_BLK - 1) / GELU_BLK;
#pragma omp parallel for schedule(static) if (n >= FT_PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * GELU_BLK, i1 = i0 + GELU_BLK < n ? i0 + GELU_BLK : n;
        size_t i = i0;
        for (; i + 16 <= i1; i += 16) {
            _mm_prefetch((const char *)(dout + i + GELU_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(inp + i + GELU_PF), _MM_HINT_T0);
            _mm512_storeu_ps(dinp + i, ft_vgelu_bwd16(_mm512_loadu_ps(dout + i), _mm512_loadu_ps(inp + i)));
        }
        if (i < i1) {
            __mmask16 k = (__mmask16)((1u << (i1 - i)) - 1);
            _mm512_mask_storeu_ps(dinp + i, k, ft_vgelu_bwd16(_mm512_maskz_loadu_ps(k, dout + i), _mm512_maskz_loadu_ps(k, inp + i)));
        }
    }
#else
#pragma omp parallel for simd schedule(static) if (n >= FT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float s = 1.0f / (1.0f + ft_vexpf(-2.0f * u));
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] = dout[i] * (s + 2.0f * x * s * (1.0f - s) * du);
    }
#endif
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
