/* ggml_quantize.c — f32 -> ggml block types, bit-identical to ggml's reference quantizers (see
 * gguf_quantize.h), written here from the formulas:
 *
 *   Q8_0  d = max|x| / 127, q = round-half-away(x / d)  (x * (1/d), as ggml)
 *   Q4_0  m = the value of largest magnitude (the first one on ties), d = m / -8,
 *         q = min(15, trunc(x * (1/d) + 8.5))
 *   Q5_0  the same with d = m / -16, q = min(31, trunc(x * (1/d) + 16.5)), the 5th bits in qh
 *   Q4_K  per 32-value sub-block a (scale, min) pair fitted by make_qkx2_quants: weighted least
 *         squares over 21 candidate scales (weights av + |x|, av = rms of the sub-block), then the
 *         8 scales and 8 mins quantized to 6 bits against the largest of each (d, dmin as f16), and
 *         the values requantized with the 6-bit scales: q = clamp(nearest((x + dmin*m) / (d*sc)), 0, 15).
 *
 * Every float operation is done in ggml's order with no contraction (-std=c11 turns gcc's FMA
 * contraction off), so the same inputs give the same bits. */
#include "finetune/gguf_quantize.h"
#include "finetune/quant.h"
#include "finetune/status.h"
#include "finetune/tensor.h"
#include "quant/ggml_quantize.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* ---- scalar references ---- */

void ft__quantize_row_q8_0_ref(const float *x, ft_block_q8_0 *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK8_0; b++, x += FT_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < FT_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ft_f32_to_f16(d);
        for (int j = 0; j < FT_QK8_0; j++) y[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* The value of largest magnitude in x[0..n) (the first one when several tie), 0 for all zeros. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, m = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); m = x[j]; }
    return m;
}

void ft__quantize_row_q4_0_ref(const float *x, ft_block_q4_0 *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK4_0; b++, x += FT_QK4_0) {
        const float d = signed_absmax(x, FT_QK4_0) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ft_f32_to_f16(d);
        for (int j = 0; j < FT_QK4_0 / 2; j++) {
            int lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + FT_QK4_0 / 2] * id + 8.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            y[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void ft__quantize_row_q5_0_ref(const float *x, ft_block_q5_0 *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK5_0; b++, x += FT_QK5_0) {
        const float d = signed_absmax(x, FT_QK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ft_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < FT_QK5_0 / 2; j++) {
            int lo = (int8_t)(x[j] * id + 16.5f), hi = (int8_t)(x[j + FT_QK5_0 / 2] * id + 16.5f);
            lo = lo < 31 ? lo : 31;
            hi = hi < 31 ? hi : 31;
            y[b].qs[j] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
            qh |= (uint32_t)((lo >> 4) & 1) << j;
            qh |= (uint32_t)((hi >> 4) & 1) << (j + FT_QK5_0 / 2);
        }
        for (int i = 0; i < 4; i++) y[b].qh[i] = (uint8_t)(qh >> (8 * i));
    }
}

/* Round to nearest (ties to even) through the 1.5 * 2^23 trick, as ggml's nearest_int: |v| < 2^22. */
static inline int nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* make_qkx2_quants for n values with weights w, levels 0..nmax: returns the scale, *neg_min = -min
 * (>= 0), L the levels. Tries iscale = (rmin + rdelta*is + nmax) / (max - min) for is = 0..nstep and
 * keeps the least weighted squared error of the closed-form (scale, min) fit to each rounding. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

/* The 6-bit scale and min of sub-block j from the packed scales[12]. */
static inline void q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void ft__quantize_row_q4_K_ref(const float *x, ft_block_q4_K *y, int64_t k) {
    uint8_t L[FT_QK_K], Laux[32];
    float w[32], mins[FT_QK_K / 32], scales[FT_QK_K / 32];
    for (int64_t b = 0; b < k / FT_QK_K; b++, x += FT_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < FT_QK_K / 32; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
            float av = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
            scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        ft_block_q4_K *o = &y[b];
        memset(o->scales, 0, sizeof o->scales);
        for (int j = 0; j < FT_QK_K / 32; j++) {
            /* ggml stores nearest_int into a uint8_t before the clamp to 63 */
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            if (ls > 63) ls = 63;
            if (lm > 63) lm = 63;
            if (j < 4) {
                o->scales[j] = ls;
                o->scales[j + 4] = lm;
            } else {
                o->scales[j + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
                o->scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                o->scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        o->d = ft_f32_to_f16(max_scale / 63.0f);
        o->dmin = ft_f32_to_f16(max_min / 63.0f);
        for (int j = 0; j < FT_QK_K / 32; j++) {
            uint8_t sc, m;
            q4k_scale_min(j, o->scales, &sc, &m);
            const float d = ft_f16_to_f32(o->d) * sc;
            if (d == 0.0f) continue;
            const float dm = ft_f16_to_f32(o->dmin) * m;
            for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clampi(nearest_int((x[32 * j + i] + dm) / d), 0, 15);
        }
        for (int c = 0; c < FT_QK_K / 64; c++)
            for (int l = 0; l < 32; l++) o->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + l + 32] << 4));
    }
}

/* ---- dequantization (ggml's dequantize_row_*) ---- */

static void deq_q8_0(const ft_block_q8_0 *x, float *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK8_0; b++) {
        float d = ft_f16_to_f32(x[b].d);
        for (int j = 0; j < FT_QK8_0; j++) y[b * FT_QK8_0 + j] = x[b].qs[j] * d;
    }
}

static void deq_q4_0(const ft_block_q4_0 *x, float *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK4_0; b++) {
        float d = ft_f16_to_f32(x[b].d);
        for (int j = 0; j < FT_QK4_0 / 2; j++) {
            y[b * FT_QK4_0 + j] = ((x[b].qs[j] & 0x0f) - 8) * d;
            y[b * FT_QK4_0 + j + FT_QK4_0 / 2] = ((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q5_0(const ft_block_q5_0 *x, float *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK5_0; b++) {
        float d = ft_f16_to_f32(x[b].d);
        uint32_t qh = x[b].qh[0] | (uint32_t)x[b].qh[1] << 8 | (uint32_t)x[b].qh[2] << 16 | (uint32_t)x[b].qh[3] << 24;
        for (int j = 0; j < FT_QK5_0 / 2; j++) {
            int lo = (x[b].qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
            int hi = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            y[b * FT_QK5_0 + j] = (lo - 16) * d;
            y[b * FT_QK5_0 + j + FT_QK5_0 / 2] = (hi - 16) * d;
        }
    }
}

static void deq_q4_K(const ft_block_q4_K *x, float *y, int64_t k) {
    for (int64_t b = 0; b < k / FT_QK_K; b++) {
        const float d = ft_f16_to_f32(x[b].d), dmin = ft_f16_to_f32(x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int c = 0, is = 0; c < FT_QK_K / 64; c++, is += 2, q += 32) {
            uint8_t sc, m;
            q4k_scale_min(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            q4k_scale_min(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* ---- the public entry points ---- */

int ft_gguf_type_block_size(uint32_t type) {
    switch (type) {
    case FT_GGML_F32: case FT_GGML_F16: case FT_GGML_BF16: return 1;
    case FT_GGML_Q8_0: case FT_GGML_Q4_0: case FT_GGML_Q5_0: return 32;
    case FT_GGML_Q4_K: return FT_QK_K;
    default: return 0;
    }
}

size_t ft_gguf_type_block_bytes(uint32_t type) {
    switch (type) {
    case FT_GGML_F32: return 4;
    case FT_GGML_F16: case FT_GGML_BF16: return 2;
    case FT_GGML_Q8_0: return sizeof(ft_block_q8_0);
    case FT_GGML_Q4_0: return sizeof(ft_block_q4_0);
    case FT_GGML_Q5_0: return sizeof(ft_block_q5_0);
    case FT_GGML_Q4_K: return sizeof(ft_block_q4_K);
    default: return 0;
    }
}

size_t ft_gguf_type_row_bytes(uint32_t type, int64_t ncols) {
    int bs = ft_gguf_type_block_size(type);
    if (bs <= 0 || ncols < 0 || ncols % bs) return 0;
    return (size_t)(ncols / bs) * ft_gguf_type_block_bytes(type);
}

int ft_gguf_type_from_name(const char *name) {
    static const struct { const char *n; int t; } k[] = {
        {"f32", FT_GGML_F32}, {"f16", FT_GGML_F16}, {"bf16", FT_GGML_BF16},
        {"q8_0", FT_GGML_Q8_0}, {"q4_0", FT_GGML_Q4_0}, {"q4_k", FT_GGML_Q4_K}, {"q5_0", FT_GGML_Q5_0},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcasecmp(name, k[i].n) == 0) return k[i].t;
    return -1;
}

static const char *type_label(uint32_t t) {
    switch (t) {
    case FT_GGML_F32: return "F32";
    case FT_GGML_F16: return "F16";
    case FT_GGML_BF16: return "BF16";
    case FT_GGML_Q8_0: return "Q8_0";
    case FT_GGML_Q4_0: return "Q4_0";
    case FT_GGML_Q5_0: return "Q5_0";
    case FT_GGML_Q4_K: return "Q4_K";
    default: return "?";
    }
}

int ft_gguf_quantize(uint32_t type, const float *src, int64_t nrows, int64_t ncols, void *dst) {
    int bs = ft_gguf_type_block_size(type);
    if (bs <= 0) return ft_error(FT_ERR_UNSUPPORTED, "ggml type %u cannot be written (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K)", type);
    if (nrows < 0 || ncols < 0) return ft_error(FT_ERR_INVALID, "quantize: negative shape (%lld, %lld)", (long long)nrows, (long long)ncols);
    if (ncols % bs)
        return ft_error(FT_ERR_SHAPE, "quantize: a row of %lld values is not a multiple of the %s block size %d",
                        (long long)ncols, type_label(type), bs);
    int simd = ft_quant_isa_get() == FT_QUANT_ISA_AVX512;
    size_t row = ft_gguf_type_row_bytes(type, ncols);
    /* rows are independent: split them over the OpenMP threads (same bytes whatever the split) */
#pragma omp parallel for schedule(static) if (nrows * ncols >= (1 << 18))
    for (int64_t r = 0; r < nrows; r++) {
        const float *x = src + r * ncols;
        uint8_t *y = (uint8_t *)dst + (size_t)r * row;
        switch (type) {
        case FT_GGML_F32: memcpy(y, x, (size_t)ncols * 4); break;
        case FT_GGML_F16:
            for (int64_t i = 0; i < ncols; i++) { uint16_t h = ft_f32_to_f16(x[i]); memcpy(y + 2 * i, &h, 2); }
            break;
        case FT_GGML_BF16:
            for (int64_t i = 0; i < ncols; i++) { uint16_t h = ft_f32_to_bf16(x[i]); memcpy(y + 2 * i, &h, 2); }
            break;
        case FT_GGML_Q8_0:
            if (simd) ft__quantize_row_q8_0_avx512(x, (ft_block_q8_0 *)y, ncols);
            else ft__quantize_row_q8_0_ref(x, (ft_block_q8_0 *)y, ncols);
            break;
        case FT_GGML_Q4_0:
            if (simd) ft__quantize_row_q4_0_avx512(x, (ft_block_q4_0 *)y, ncols);
            else ft__quantize_row_q4_0_ref(x, (ft_block_q4_0 *)y, ncols);
            break;
        case FT_GGML_Q5_0: ft__quantize_row_q5_0_ref(x, (ft_block_q5_0 *)y, ncols); break;
        case FT_GGML_Q4_K: ft__quantize_row_q4_K_ref(x, (ft_block_q4_K *)y, ncols); break;
        }
    }
    return FT_OK;
}

int ft_gguf_dequantize(uint32_t type, const void *src, int64_t n, float *dst) {
    int bs = ft_gguf_type_block_size(type);
    if (bs <= 0) return ft_error(FT_ERR_UNSUPPORTED, "ggml type %u cannot be read back here", type);
    if (n < 0 || n % bs) return ft_error(FT_ERR_SHAPE, "dequantize: %lld values is not a multiple of the %s block size %d",
                                         (long long)n, type_label(type), bs);
    const uint8_t *s = src;
    switch (type) {
    case FT_GGML_F32: memcpy(dst, s, (size_t)n * 4); break;
    case FT_GGML_F16: for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = ft_f16_to_f32(h); } break;
    case FT_GGML_BF16: for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = ft_bf16_to_f32(h); } break;
    case FT_GGML_Q8_0: deq_q8_0(src, dst, n); break;
    case FT_GGML_Q4_0: deq_q4_0(src, dst, n); break;
    case FT_GGML_Q5_0: deq_q5_0(src, dst, n); break;
    case FT_GGML_Q4_K: deq_q4_K(src, dst, n); break;
    }
    return FT_OK;
}
