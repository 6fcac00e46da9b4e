/* ggml_dequant_more.c — scalar dequantizers of the ggml types that finetune reads but does not multiply in
 * blocks: Q4_1, Q5_0, Q5_1, Q5_K, Q6_K. A GGUF tensor of one of these types (the Q5_0 / F16 fallbacks of a
 * Q4_K export whose rows do not split into 256-value blocks; the Q5_K / Q6_K tensors of llama.cpp's
 * Q4_K_M / Q5_K_M mixtures) is read as f32 at load time (ft_gguf_read_f32). The formulas are the GGUF
 * format's (ggml-common.h block layouts), written here from them; the values are checked against gguf-py's
 * numpy dequantizers in tests/test_ggml_kernels.c (fixture tests/fixtures/ggml/dequant_more.bin).
 *
 * Layouts (bytes per block):
 *   Q4_1  32 values, 20 B: d, m (f16), qs[16]                      x = d * q + m, q = 4-bit (low nibble j, high j+16)
 *   Q5_0  32 values, 22 B: d (f16), qh[4] (u32 LE), qs[16]         x = d * (q - 16), q = nibble | bit j of qh << 4
 *   Q5_1  32 values, 24 B: d, m (f16), qh[4], qs[16]               x = d * q + m
 *   Q5_K 256 values, 176 B: d, dmin (f16), scales[12], qh[32], qs[128]  8 sub-blocks of 32: x = d*sc * q - dmin*m
 *   Q6_K 256 values, 210 B: ql[128], qh[64], scales[16] (int8), d (f16) 16 sub-blocks of 16: x = d*sc * (q - 32) */
#include "quant/ggml_more.h"
#include "finetune/tensor.h"

#include <string.h>

static float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return ft_f16_to_f32(h);
}

/* the 6-bit scale and min of sub-block j of a K-quant's packed scales[12] */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0xF) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

static void deq_q5(const uint8_t *b, float *y, int with_min) {
    float d = h2f(b), m = with_min ? h2f(b + 2) : 0.0f;
    const uint8_t *p = b + (with_min ? 4 : 2);
    uint32_t qh = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    const uint8_t *qs = p + 4;
    for (int j = 0; j < 16; j++) {
        int x0 = (qs[j] & 0xF) | (int)(((qh >> j) << 4) & 0x10);
        int x1 = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
        if (with_min) {
            y[j] = (float)x0 * d + m;
            y[j + 16] = (float)x1 * d + m;
        } else {
            y[j] = (float)(x0 - 16) * d;
            y[j + 16] = (float)(x1 - 16) * d;
        }
    }
}

static void deq_q5_K(const uint8_t *b, float *y) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        int sc, mn;
        scale_min_k4(is, scales, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(is + 1, scales, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void deq_q6_K(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int)((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            int q2 = (int)((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            int q3 = (int)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            int q4 = (int)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

int ft__ggml_more_block(int type, int *values, int *bytes) {
    switch (type) {
    case FT_GGML_Q4_1: *values = 32; *bytes = 20; return 1;
    case FT_GGML_Q5_0: *values = 32; *bytes = 22; return 1;
    case FT_GGML_Q5_1: *values = 32; *bytes = 24; return 1;
    case FT_GGML_Q5_K: *values = 256; *bytes = 176; return 1;
    case FT_GGML_Q6_K: *values = 256; *bytes = 210; return 1;
    default: return 0;
    }
}

int ft__ggml_more_dequantize(int type, const void *src, float *dst, int64_t n) {
    int bv, bb;
    if (!ft__ggml_more_block(type, &bv, &bb) || n % bv) return 0;
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / bv; i++, b += bb, dst += bv) {
        switch (type) {
        case FT_GGML_Q4_1: deq_q4_1(b, dst); break;
        case FT_GGML_Q5_0: deq_q5(b, dst, 0); break;
        case FT_GGML_Q5_1: deq_q5(b, dst, 1); break;
        case FT_GGML_Q5_K: deq_q5_K(b, dst); break;
        case FT_GGML_Q6_K: deq_q6_K(b, dst); break;
        }
    }
    return 1;
}
