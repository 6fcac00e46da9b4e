/* cpu/rope.c — rotary embedding in place, rows in parallel. cos/sin of each (row, frequency) are
 * computed once into a small stack chunk and applied to all NH + NKV rotated heads of the row. */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <math.h>

#define ROPE_CHUNK 64 /* frequencies per cos/sin chunk */

static void rope_rotate(float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS,
                        float sign) {
    int R = (NH + 2 * NKV) * HS, half = HS / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * R >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float cs[ROPE_CHUNK], sn[ROPE_CHUNK];
        float p = (float)pos[n];
        for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
            int in = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
            for (int i = 0; i < in; i++) {
                /* the angle as transformers forms it (f32 product), its cos/sin correctly rounded */
                float ang = p * inv_freq[i0 + i];
                cs[i] = (float)cos((double)ang);
                sn[i] = sign * (float)sin((double)ang);
            }
            for (int h = 0; h < NH + NKV; h++) {
                float *x1 = qkv + (size_t)n * R + (size_t)h * HS + i0, *x2 = x1 + half;
#pragma omp simd
                for (int i = 0; i < in; i++) {
                    float a = x1[i], b = x2[i];
                    x1[i] = a * cs[i] - b * sn[i];
                    x2[i] = b * cs[i] + a * sn[i];
                }
            }
        }
    }
}

/* qkv[N,(NH+2*NKV)*HS]: pairs (i, i + HS/2) of the q and k heads rotated by pos[n] * inv_freq[i] */
void ft_cpu_rope_forward(void *ctx, float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS) {
    rope_rotate(qkv, pos, inv_freq, N, NH, NKV, HS, 1.0f);
}

/* the transpose of the rotation: rotate dqkv by -angle in place */
void ft_cpu_rope_backward(void *ctx, float *dqkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS) {
    rope_rotate(dqkv, pos, inv_freq, N, NH, NKV, HS, -1.0f);
}
