/* ggml_dequant.c — sizes of ggml's quantized blocks and their scalar reference dequantization
 * (ggml_quant.h). The formulas are those of the GGUF format (ggml_blocks.h); written here from them. */
#include "quant/ggml_internal.h"

#include "finetune/status.h"
#include "finetune/tensor.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

int ft_ggml_type_supported(int type) { return type == FT_GGML_Q8_0 || type == FT_GGML_Q4_0 || type == FT_GGML_Q4_K; }

int ft_ggml_block_values(int type) {
    switch (type) {
    case FT_GGML_Q8_0: return FT_QK8_0;
    case FT_GGML_Q4_0: return FT_QK4_0;
    case FT_GGML_Q4_K: return FT_QK_K;
    default: return 0;
    }
}

int ft_ggml_block_bytes(int type) {
    switch (type) {
    case FT_GGML_Q8_0: return (int)sizeof(ft_block_q8_0);
    case FT_GGML_Q4_0: return (int)sizeof(ft_block_q4_0);
    case FT_GGML_Q4_K: return (int)sizeof(ft_block_q4_K);
    default: return 0;
    }
}

size_t ft_ggml_row_bytes(int type, int64_t cols) {
    int bv = ft_ggml_block_values(type);
    if (bv == 0 || cols <= 0 || cols % bv) return 0;
    return (size_t)(cols / bv) * (size_t)ft_ggml_block_bytes(type);
}

/* ---------------------------------------------------------------- interleaved layout */

/* Byte layout of one interleaved block of 16 rows (see ggml_quant.h): the f16 fields of the 16 rows first
 * (Q8_0 / Q4_0: d; Q4_K: d, then dmin), then every later dword of the block (Q4_K: 3 of packed scales, 32 of
 * quants; Q8_0: 8; Q4_0: 4) as 16 rows' dword k. */
static void ilv_geometry(int type, size_t *nhalf, size_t *ndw) {
    *nhalf = type == FT_GGML_Q4_K ? 2 : 1;
    *ndw = ((size_t)ft_ggml_block_bytes(type) - 2 * *nhalf) / 4;
}

int ft_ggml_tensor_interleave(ft_ggml_tensor *t, void *data) {
    if (!ft_ggml_type_supported(t->type)) return ft_error(FT_ERR_UNSUPPORTED, "ggml interleave: Q8_0, Q4_0 and Q4_K only");
    if (t->interleaved) return FT_OK;
    if (t->row_bytes > FT__GGML_ROWBUF)
        return ft_error(FT_ERR_UNSUPPORTED, "ggml interleave: rows of %zu bytes (at most %d)", t->row_bytes, FT__GGML_ROWBUF);
    const size_t rb = t->row_bytes, bb = (size_t)ft_ggml_block_bytes(t->type), nb = rb / bb;
    size_t nh, nd;
    ilv_geometry(t->type, &nh, &nd);
    uint8_t *tmp = malloc(16 * rb);
    if (!tmp) return ft_error(FT_ERR_NOMEM, "ggml interleave: out of memory");
    for (int64_t g = 0; g < t->rows / 16; g++) {
        uint8_t *grp = (uint8_t *)data + (size_t)g * 16 * rb;
        memcpy(tmp, grp, 16 * rb);
        for (size_t j = 0; j < nb; j++) {
            uint8_t *dst = grp + j * 16 * bb;
            for (size_t h = 0; h < nh; h++)
                for (int l = 0; l < 16; l++) memcpy(dst + (h * 16 + (size_t)l) * 2, tmp + l * rb + j * bb + 2 * h, 2);
            for (size_t k = 0; k < nd; k++)
                for (int l = 0; l < 16; l++)
                    memcpy(dst + 32 * nh + (k * 16 + (size_t)l) * 4, tmp + l * rb + j * bb + 2 * nh + 4 * k, 4);
        }
    }
    free(tmp);
    t->data = data;
    t->interleaved = 1;
    return FT_OK;
}

const uint8_t *ft__ggml_row(const ft_ggml_tensor *t, int64_t o, uint8_t *buf) {
    const uint8_t *base = t->data;
    if (o >= ft__ggml_groups(t) * 16) return base + (size_t)o * t->row_bytes;
    const size_t rb = t->row_bytes, bb = (size_t)ft_ggml_block_bytes(t->type), nb = rb / bb;
    size_t nh, nd;
    ilv_geometry(t->type, &nh, &nd);
    const uint8_t *grp = base + (size_t)(o / 16) * 16 * rb;
    size_t l = (size_t)(o % 16);
    for (size_t j = 0; j < nb; j++) {
        const uint8_t *src = grp + j * 16 * bb;
        for (size_t h = 0; h < nh; h++) memcpy(buf + j * bb + 2 * h, src + (h * 16 + l) * 2, 2);
        for (size_t k = 0; k < nd; k++) memcpy(buf + j * bb + 2 * nh + 4 * k, src + 32 * nh + (k * 16 + l) * 4, 4);
    }
    return buf;
}

int ft_ggml_tensor_init(ft_ggml_tensor *t, int type, int64_t rows, int64_t cols, const void *data) {
    if (!ft_ggml_type_supported(type)) return ft_error(FT_ERR_UNSUPPORTED, "ggml type %d: only Q8_0, Q4_0 and Q4_K are supported", type);
    if (rows < 1 || cols < 1 || cols % ft_ggml_block_values(type))
        return ft_error(FT_ERR_SHAPE, "ggml tensor [%lld, %lld]: the row length must be a positive multiple of %d", (long long)rows,
                        (long long)cols, ft_ggml_block_values(type));
    t->type = type;
    t->rows = rows;
    t->cols = cols;
    t->row_bytes = ft_ggml_row_bytes(type, cols);
    t->data = data;
    t->interleaved = 0;
    return FT_OK;
}

/* ---------------------------------------------------------------- scalar reference */

static void deq_q8_0(const ft_block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ft_f16_to_f32(b[i].d);
        for (int j = 0; j < FT_QK8_0; j++) y[i * FT_QK8_0 + j] = d * (float)b[i].qs[j];
    }
}

static void deq_q4_0(const ft_block_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ft_f16_to_f32(b[i].d);
        float *o = y + i * FT_QK4_0;
        for (int j = 0; j < FT_QK4_0 / 2; j++) {
            o[j] = d * (float)((b[i].qs[j] & 0xF) - 8);
            o[j + FT_QK4_0 / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

static void deq_q4_K(const ft_block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = ft_f16_to_f32(b[i].d), dmin = ft_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float *o = y + i * FT_QK_K;
        for (int c = 0; c < 4; c++, q += 32, o += 64) {   /* 64 values: sub-blocks 2c (low nibbles), 2c+1 (high) */
            uint8_t sc, m;
            ft__q4k_scale_min(2 * c, b[i].scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            ft__q4k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) o[l] = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) o[32 + l] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void ft_ggml_dequantize_row_ref(int type, const void *src, float *dst, int64_t n) {
    switch (type) {
    case FT_GGML_Q8_0: deq_q8_0(src, dst, n / FT_QK8_0); break;
    case FT_GGML_Q4_0: deq_q4_0(src, dst, n / FT_QK4_0); break;
    case FT_GGML_Q4_K: deq_q4_K(src, dst, n / FT_QK_K); break;
    default: break;
    }
}

/* ---------------------------------------------------------------- SIMD, threaded */

void ft_ggml_dequantize_rows_ref(float *out, size_t ldo, const ft_ggml_tensor *t, int64_t r0, int64_t nr) {
    uint8_t buf[FT__GGML_ROWBUF];
    for (int64_t r = 0; r < nr; r++) ft_ggml_dequantize_row_ref(t->type, ft__ggml_row(t, r0 + r, buf), out + (size_t)r * ldo, t->cols);
}

void ft_ggml_dequantize_rows(float *out, size_t ldo, const ft_ggml_tensor *t, int64_t r0, int64_t nr) {
    const ft__ggml_kernels *K = ft__ggml_kernels_get();
    uint8_t buf[FT__GGML_ROWBUF];
    for (int64_t r = 0; r < nr; r++) K->deq_row(t->type, ft__ggml_row(t, r0 + r, buf), out + (size_t)r * ldo, t->cols);
}

void ft_ggml_dequantize(float *out, const ft_ggml_tensor *t) {
#pragma omp parallel if (t->rows * t->cols >= (1 << 16))
    {
        int nt = omp_get_num_threads(), it = omp_get_thread_num();
        int64_t per = (t->rows + nt - 1) / nt, r0 = it * per, r1 = r0 + per < t->rows ? r0 + per : t->rows;
        if (r0 < r1) ft_ggml_dequantize_rows(out + (size_t)r0 * (size_t)t->cols, (size_t)t->cols, t, r0, r1 - r0);
    }
}
