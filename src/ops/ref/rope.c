/* ref/rope.c — scalar reference rotary embedding (HF rotate_half layout). The angle is the float
 * product pos * inv_freq[i], as HF computes it in float32; cos/sin are taken in double. */
#include "finetune/ops.h"

#include <math.h>

/* rotates the NH query and NKV key heads of each row of qkv[N,(NH+2*NKV)*HS] by sign*angle */
static void rope_rotate(float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS,
                        double sign) {
    int R = (NH + 2 * NKV) * HS, half = HS / 2;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < NH + NKV; h++) {
            float *x = qkv + (size_t)n * R + (size_t)h * HS;
            for (int i = 0; i < half; i++) {
                float ang = (float)pos[n] * inv_freq[i];
                double c = cos((double)ang), s = sign * sin((double)ang);
                double x1 = x[i], x2 = x[i + half];
                x[i] = (float)(x1 * c - x2 * s);
                x[i + half] = (float)(x2 * c + x1 * s);
            }
        }
}

void ft_ref_rope_forward(void *ctx, float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS) {
    rope_rotate(qkv, pos, inv_freq, N, NH, NKV, HS, 1.0);
}

/* the rotation is orthogonal: the gradient is rotated back by -angle */
void ft_ref_rope_backward(void *ctx, float *dqkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS) {
    rope_rotate(dqkv, pos, inv_freq, N, NH, NKV, HS, -1.0);
}
