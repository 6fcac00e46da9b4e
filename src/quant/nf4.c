/* nf4.c — the NF4 format: codebook, bitsandbytes' quantization decision tree, double quantization
 * of the block scales, tensor layout, and the scalar reference quantize / dequantize. */
#include "quant/quant_internal.h"

#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* bnb functional.get_4bit_type("nf4") (create_normal_map(offset=0.9677083, use_extra_value=True)),
 * the same constants as dDequantizeNF4 / nf4_dequantization_lut in the CUDA kernels. */
const float FT_NF4_CODEBOOK[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/* bnb dQuantizeNF4 thresholds in ascending order; threshold k separates code k and k+1. These are
 * the CUDA source's decimal literals, rounded to float32 by the compiler as nvcc does. 11 of them
 * equal the float32 midpoints (CB[k] + CB[k+1]) / 2; for k = 0, 8, 12, 14 the exact midpoint is a
 * float32 rounding tie and the literal lands one ulp away (the test checks both facts). */
const float FT_NF4_THRESHOLDS[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
    0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
};

/* bnb dQuantizeNF4: the decision tree, literally (x > t takes the upper side; NaN goes to 0). */
static inline uint8_t nf4_code(float x) {
    if (x > 0.03979014977812767f) {
        if (x > 0.3893125355243683f) {
            if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 0xF : 0xE;
            return x > 0.5016634166240692f ? 0xD : 0xC;
        }
        if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 0xB : 0xA;
        return x > 0.1202552504837513f ? 0x9 : 0x8;
    }
    if (x > -0.33967943489551544f) {
        if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 0x7 : 0x6;
        return x > -0.23460740596055984f ? 0x5 : 0x4;
    }
    if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 0x3 : 0x2;
    return x > -0.8480964004993439f ? 0x1 : 0x0;
}

/* ---- layout ----
 * [blocks: 32*nblocks bytes][absmax_q: nblocks bytes][pad to 4][absmax2: 4*nblocks2 bytes] with double
 * quant, [blocks][absmax: 4*nblocks bytes] without. Compact, so that a buffer sized by tensor.h's
 * ft_tensor_nbytes for FT_NF4 (n/2 + n/64 + 8*nblocks2) always holds a double-quant tensor. */
#define ALIGN4(x) (((x) + 3) & ~(size_t)3)

static int check_shape(int64_t rows, int64_t cols) {
    if (rows < 1 || cols < FT_NF4_BLOCK || cols % FT_NF4_BLOCK != 0)
        return ft_error(FT_ERR_SHAPE, "nf4: shape [%lld, %lld]: need rows >= 1 and cols a positive multiple of %d",
                        (long long)rows, (long long)cols, FT_NF4_BLOCK);
    return FT_OK;
}

size_t ft_nf4_nbytes(int64_t rows, int64_t cols, int flags) {
    if (rows < 1 || cols < FT_NF4_BLOCK || cols % FT_NF4_BLOCK) return 0;
    size_t nb = (size_t)(rows * (cols / FT_NF4_BLOCK));
    if (flags & FT_NF4_DOUBLE_QUANT) return ALIGN4(nb * sizeof(ft_nf4_block) + nb) + ((nb + 255) / 256) * sizeof(float);
    return nb * sizeof(ft_nf4_block) + nb * sizeof(float);
}

double ft_nf4_bits_per_weight(int64_t rows, int64_t cols, int flags) {
    if (rows < 1 || cols < FT_NF4_BLOCK || cols % FT_NF4_BLOCK) return 0;
    double n = (double)rows * (double)cols, nb = n / FT_NF4_BLOCK;
    double bytes = n / 2;
    if (flags & FT_NF4_DOUBLE_QUANT) bytes += nb + 4.0 * ceil(nb / 256) + 4.0; /* codes, absmax2, offset */
    else bytes += 4.0 * nb;
    return 8.0 * bytes / n;
}

int ft_nf4_view(ft_nf4_tensor *t, int64_t rows, int64_t cols, int flags, void *mem) {
    if (!t || !mem) return ft_error(FT_ERR_INVALID, "nf4 view: NULL argument");
    FT_TRY(check_shape(rows, cols));
    memset(t, 0, sizeof *t);
    t->rows = rows;
    t->cols = cols;
    t->nblocks = rows * (cols / FT_NF4_BLOCK);
    t->double_quant = (flags & FT_NF4_DOUBLE_QUANT) != 0;
    t->nblocks2 = t->double_quant ? (t->nblocks + 255) / 256 : 0;
    if ((uintptr_t)mem % sizeof(float) != 0) return ft_error(FT_ERR_INVALID, "nf4 view: memory must be 4-byte aligned");
    char *p = mem;
    const size_t qbytes = (size_t)t->nblocks * sizeof(ft_nf4_block);
    t->blocks = (ft_nf4_block *)p;
    if (t->double_quant) {
        t->absmax_q = (uint8_t *)(p + qbytes);
        t->absmax2 = (float *)(p + ALIGN4(qbytes + (size_t)t->nblocks));
    } else {
        t->absmax = (float *)(p + qbytes);
    }
    return FT_OK;
}

int ft_nf4_create(ft_nf4_tensor *t, int64_t rows, int64_t cols, int flags) {
    if (!t) return ft_error(FT_ERR_INVALID, "nf4 create: NULL tensor");
    memset(t, 0, sizeof *t);
    FT_TRY(check_shape(rows, cols));
    size_t n = ft_nf4_nbytes(rows, cols, flags);
    void *mem = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!mem) return ft_error(FT_ERR_NOMEM, "nf4 create [%lld, %lld]: %zu bytes", (long long)rows, (long long)cols, n);
    memset(mem, 0, n);
    int rc = ft_nf4_view(t, rows, cols, flags, mem);
    if (rc < 0) { free(mem); return rc; }
    t->mem_ = mem;
    return FT_OK;
}

void ft_nf4_destroy(ft_nf4_tensor *t) {
    if (!t) return;
    free(t->mem_);
    memset(t, 0, sizeof *t);
}

/* ---- quantization (scalar reference) ---- */
static float block_absmax(const float *x) {
    float a = 0.0f;
    for (int i = 0; i < FT_NF4_BLOCK; i++) a = fmaxf(a, fabsf(x[i]));
    return a;
}

int ft_nf4_quantize_ref(ft_nf4_tensor *t, const float *w, float *absmax_out) {
    if (!t || !w || !t->blocks) return ft_error(FT_ERR_INVALID, "nf4 quantize: NULL argument");
    const int64_t nb = t->nblocks;
    /* codes: bnb kQuantizeBlockwise<NF4>: x * (1.0f / absmax) through the tree, element 2j high */
    double sum = 0.0;
    for (int64_t b = 0; b < nb; b++) {
        const float *x = w + b * FT_NF4_BLOCK;
        float amax = block_absmax(x);
        float inv = 1.0f / amax;
        uint8_t *q = t->blocks[b].qs;
        for (int j = 0; j < FT_NF4_BLOCK / 2; j++)
            q[j] = (uint8_t)((nf4_code(x[2 * j] * inv) << 4) | nf4_code(x[2 * j + 1] * inv));
        if (absmax_out) absmax_out[b] = amax;
        if (!t->double_quant) t->absmax[b] = amax;
        sum += (double)amax;
    }
    if (!t->double_quant) return FT_OK;
    /* double quant: offset = mean(absmax); (absmax - offset) through the blockwise 8-bit quantizer,
     * 256 per block. The absmax values are recomputed per group (no scratch allocation). */
    const float offset = (float)(sum / (double)nb);
    const float *map = ft_quant_dynamic_map();
    t->offset = offset;
    for (int64_t g = 0; g < t->nblocks2; g++) {
        float v[FT_NF4_DQ_BLOCK];
        int64_t b0 = g * FT_NF4_DQ_BLOCK, m = nb - b0 < FT_NF4_DQ_BLOCK ? nb - b0 : FT_NF4_DQ_BLOCK;
        for (int64_t k = 0; k < m; k++) v[k] = block_absmax(w + (b0 + k) * FT_NF4_BLOCK) - offset;
        ft_quant_blockwise8_ref(t->absmax_q + b0, t->absmax2 + g, v, m, FT_NF4_DQ_BLOCK, map);
    }
    return FT_OK;
}

float ft_nf4_block_scale(const ft_nf4_tensor *t, int64_t b) {
    return ft_nf4_scale_(t, ft_quant_dynamic_map(), b);
}

void ft_nf4_dequantize_ref(float *out, const ft_nf4_tensor *t) {
    const float *map = ft_quant_dynamic_map();
    for (int64_t b = 0; b < t->nblocks; b++) {
        const float s = ft_nf4_scale_(t, map, b);
        const uint8_t *q = t->blocks[b].qs;
        float *o = out + b * FT_NF4_BLOCK;
        for (int j = 0; j < FT_NF4_BLOCK / 2; j++) {
            o[2 * j] = FT_NF4_CODEBOOK[q[j] >> 4] * s;
            o[2 * j + 1] = FT_NF4_CODEBOOK[q[j] & 0x0F] * s;
        }
    }
}

/* ---- SIMD dequantization (kernel table), bit-identical to the reference ---- */

/* Row r, column blocks [cb0, cb0+ncb) into out: scales in chunks of 64 blocks on the stack. */
static void dequant_row_span(const ft_quant_kernels *K, const float *map, float *out, const ft_nf4_tensor *t,
                             int64_t r, int64_t cb0, int64_t ncb) {
    const int64_t bpr = t->cols / FT_NF4_BLOCK;
    float sc[64];
    for (int64_t k0 = 0; k0 < ncb; k0 += 64) {
        int64_t m = ncb - k0 < 64 ? ncb - k0 : 64;
        int64_t b0 = r * bpr + cb0 + k0;
        for (int64_t k = 0; k < m; k++) sc[k] = ft_nf4_scale_(t, map, b0 + k);
        K->nf4_span(out + k0 * FT_NF4_BLOCK, t->blocks + b0, sc, m);
    }
}

void ft_nf4_dequantize_tile(float *out, size_t ldo, const ft_nf4_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    const float *map = ft_quant_dynamic_map();
    for (int64_t r = 0; r < nr; r++)
        dequant_row_span(K, map, out + (size_t)r * ldo, t, r0 + r, c0 / FT_NF4_BLOCK, nc / FT_NF4_BLOCK);
}

void ft_nf4_dequantize(float *out, const ft_nf4_tensor *t) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    const float *map = ft_quant_dynamic_map();
    const int64_t rows = t->rows, cols = t->cols;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 16))
    for (int64_t r = 0; r < rows; r++) dequant_row_span(K, map, out + r * cols, t, r, 0, cols / FT_NF4_BLOCK);
}
