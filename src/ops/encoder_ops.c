/* encoder_ops.c — the kernels the encoders (src/models/encoder.c) add: bidirectional attention with
 * a key padding mask, exact (erf) GELU, tanh and ReLU, forward and backward. Contracts in encoder.h.
 * ft_ref_*: plain loops accumulating in double (the tests' ground truth); ft_cpu_*: float32, OpenMP
 * over (batch, head) pairs / elements, inner loops written for the vectoriser. */
#include "finetune/encoder.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ reference */

void ft_ref_enc_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    int C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        const int *mb = mask ? mask + (size_t)b * T : NULL;
        int any = 0;
        for (int j = 0; j < T; j++) any |= !mb || mb[j];
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                double s[T > 0 ? T : 1], mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    if (any && mb && !mb[j]) { s[j] = -INFINITY; continue; }
                    const float *kj = k + ((size_t)b * T + j) * C + h * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)qt[i] * kj[i];
                    s[j] = any ? d * scale : 0.0;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < T; j++) { s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - mx); sum += s[j]; }
                for (int j = 0; j < T; j++) a[j] = (float)(s[j] / sum);
                float *o = out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += s[j] / sum * v[((size_t)b * T + j) * C + h * HS + i];
                    o[i] = (float)acc;
                }
            }
    }
}

void ft_ref_enc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    int C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    memset(dq, 0, sizeof(float) * (size_t)B * T * C);
    memset(dk, 0, sizeof(float) * (size_t)B * T * C);
    memset(dv, 0, sizeof(float) * (size_t)B * T * C);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                const float *dot = dout + ((size_t)b * T + t) * C + h * HS;
                double da[T > 0 ? T : 1], dot_sum = 0;
                for (int j = 0; j < T; j++) {
                    const float *vj = v + ((size_t)b * T + j) * C + h * HS;
                    float *dvj = dv + ((size_t)b * T + j) * C + h * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) { d += (double)dot[i] * vj[i]; dvj[i] += (float)((double)a[j] * dot[i]); }
                    da[j] = d;
                    dot_sum += a[j] * d;
                }
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *dqt = dq + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++)
                        acc += a[j] * (da[j] - dot_sum) * scale * k[((size_t)b * T + j) * C + h * HS + i];
                    dqt[i] = (float)acc;
                }
                for (int j = 0; j < T; j++) {
                    double ds = a[j] * (da[j] - dot_sum) * scale;
                    if (ds == 0) continue;
                    float *dkj = dk + ((size_t)b * T + j) * C + h * HS;
                    for (int i = 0; i < HS; i++) dkj[i] += (float)(ds * qt[i]);
                }
            }
}

#define FT_SQRT1_2 0.70710678118654752440
#define FT_INV_SQRT_2PI 0.39894228040143267794

void ft_ref_gelu_erf_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) { double x = inp[i]; out[i] = (float)(0.5 * x * (1.0 + erf(x * FT_SQRT1_2))); }
}

void ft_ref_gelu_erf_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double g = 0.5 * (1.0 + erf(x * FT_SQRT1_2)) + x * FT_INV_SQRT_2PI * exp(-0.5 * x * x);
        dinp[i] = (float)(dout[i] * g);
    }
}

void ft_ref_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)tanh((double)inp[i]);
}

void ft_ref_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = (float)(dout[i] * (1.0 - (double)out[i] * out[i]));
}

void ft_ref_relu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_ref_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}

/* ------------------------------------------------------------ optimised CPU */

void ft_cpu_enc_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                                  const int *mask, int B, int T, int NH, int HS) {
    int C = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int *mb = mask ? mask + (size_t)b * T : NULL;
            int any = 0;
            for (int j = 0; j < T; j++) any |= !mb || mb[j];
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if (any && mb && !mb[j]) { a[j] = -INFINITY; continue; }
                    const float *kj = k + ((size_t)b * T + j) * C + h * HS;
                    float d = 0;
                    for (int i = 0; i < HS; i++) d += qt[i] * kj[i];
                    a[j] = any ? d * scale : 0.0f;
                    if (a[j] > mx) mx = a[j];
                }
                float sum = 0;
                for (int j = 0; j < T; j++) { a[j] = a[j] == -INFINITY ? 0.0f : expf(a[j] - mx); sum += a[j]; }
                float inv = 1.0f / sum;
                for (int j = 0; j < T; j++) a[j] *= inv;
                float *o = out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) o[i] = 0;
                for (int j = 0; j < T; j++) {
                    float w = a[j];
                    if (w == 0) continue;
                    const float *vj = v + ((size_t)b * T + j) * C + h * HS;
                    for (int i = 0; i < HS; i++) o[i] += w * vj[i];
                }
            }
        }
}

void ft_cpu_enc_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, const float *att, int B, int T, int NH, int HS) {
    int C = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    /* (b, h) pairs own disjoint columns of dq/dk/dv: no races */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                size_t r = ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) { dq[r + i] = 0; dk[r + i] = 0; dv[r + i] = 0; }
            }
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                const float *dot = dout + ((size_t)b * T + t) * C + h * HS;
                const float *qt = q + ((size_t)b * T + t) * C + h * HS;
                float *dqt = dq + ((size_t)b * T + t) * C + h * HS;
                float dot_sum = 0;
                for (int j = 0; j < T; j++) {
                    if (a[j] == 0) continue;
                    const float *vj = v + ((size_t)b * T + j) * C + h * HS;
                    float d = 0;
                    for (int i = 0; i < HS; i++) d += dot[i] * vj[i];
                    dot_sum += a[j] * d;
                }
                for (int j = 0; j < T; j++) {
                    float aj = a[j];
                    if (aj == 0) continue;
                    size_t rj = ((size_t)b * T + j) * C + h * HS;
                    const float *vj = v + rj, *kj = k + rj;
                    float *dvj = dv + rj, *dkj = dk + rj;
                    float d = 0;
                    for (int i = 0; i < HS; i++) d += dot[i] * vj[i];
                    float ds = aj * (d - dot_sum) * scale;
                    for (int i = 0; i < HS; i++) {
                        dvj[i] += aj * dot[i];
                        dqt[i] += ds * kj[i];
                        dkj[i] += ds * qt[i];
                    }
                }
            }
        }
}

void ft_cpu_gelu_erf_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { float x = inp[i]; out[i] = 0.5f * x * (1.0f + erff(x * (float)FT_SQRT1_2)); }
}

void ft_cpu_gelu_erf_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float g = 0.5f * (1.0f + erff(x * (float)FT_SQRT1_2)) + x * (float)FT_INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] = dout[i] * g;
    }
}

void ft_cpu_tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void ft_cpu_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

void ft_cpu_relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void ft_cpu_relu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : 0.0f;
}
