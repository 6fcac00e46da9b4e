/* ggml_kernels_scalar.c — the portable kernel table of the matmuls over ggml blocks: the reference the
 * SIMD tables are tested against (tests/test_ggml_kernels.c). */
#include "quant/ggml_internal.h"

#include "finetune/tensor.h"

/* f32 activations: each block dequantized (reference formulas), then an f32 dot product */
static void fwd_f32(float *out, int64_t ldo, const float *inp, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = w->cols, bv = ft_ggml_block_values(w->type), bb = ft_ggml_block_bytes(w->type);
    float tmp[FT_QK_K];
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *row = ft__ggml_row(w, o, rowbuf);
        float acc[FT_QUANT_DIRECT_MAX_N] = {0};
        for (int64_t b = 0; b < C / bv; b++) {
            ft_ggml_dequantize_row_ref(w->type, row + b * bb, tmp, bv);
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + b * bv;
                float s = 0;
                for (int64_t k = 0; k < bv; k++) s += tmp[k] * x[k];
                acc[n] += s;
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = acc[n];
    }
}

/* int8 activations: integer dot products per 32 values, one float multiply-add each */
static float dot_q8_0(const ft_block_q8_0 *b, const int8_t *x, const float *xd, int64_t nb) {
    float acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += (int32_t)b[i].qs[j] * x[32 * i + j];
        acc += ft_f16_to_f32(b[i].d) * xd[i] * (float)s;
    }
    return acc;
}

static float dot_q4_0(const ft_block_q4_0 *b, const int8_t *x, const float *xd, const float *xds, int64_t nb) {
    float acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) s += (int32_t)(b[i].qs[j] & 0xF) * x[32 * i + j] + (int32_t)(b[i].qs[j] >> 4) * x[32 * i + 16 + j];
        acc += ft_f16_to_f32(b[i].d) * (xd[i] * (float)s - 8.0f * xds[i]);
    }
    return acc;
}

static float dot_q4_K(const ft_block_q4_K *b, const int8_t *x, const float *xd, const float *xds, int64_t nb) {
    float acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        float d = ft_f16_to_f32(b[i].d), dmin = ft_f16_to_f32(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = b[i].qs + 32 * c;
            const int8_t *xx = x + 256 * i + 64 * c;
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) { s1 += (int32_t)(q[l] & 0xF) * xx[l]; s2 += (int32_t)(q[l] >> 4) * xx[32 + l]; }
            uint8_t sc1, m1, sc2, m2;
            ft__q4k_scale_min(2 * c, b[i].scales, &sc1, &m1);
            ft__q4k_scale_min(2 * c + 1, b[i].scales, &sc2, &m2);
            int j = 8 * (int)i + 2 * c;
            acc += d * ((float)sc1 * xd[j] * (float)s1 + (float)sc2 * xd[j + 1] * (float)s2)
                 - dmin * ((float)m1 * xds[j] + (float)m2 * xds[j + 1]);
        }
    }
    return acc;
}

static void fwd_q8(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb32 = C / 32;
    for (int64_t o = o0; o < o1; o++) {
        const void *row = ft__ggml_row(w, o, rowbuf);
        for (int n = 0; n < N; n++) {
            const int8_t *x = a->qs + (size_t)n * C;
            const float *xd = a->d + n * nb32, *xds = a->ds + n * nb32;
            float v = 0;
            switch (w->type) {
            case FT_GGML_Q8_0: v = dot_q8_0(row, x, xd, C / 32); break;
            case FT_GGML_Q4_0: v = dot_q4_0(row, x, xd, xds, C / 32); break;
            case FT_GGML_Q4_K: v = dot_q4_K(row, x, xd, xds, C / 256); break;
            }
            out[(size_t)n * ldo + o] = v;
        }
    }
}

const ft__ggml_kernels ft__ggml_kernels_scalar = {"scalar", fwd_f32, fwd_q8, NULL, ft_ggml_dequantize_row_ref};
