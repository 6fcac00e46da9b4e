/* q8row.c — int8 weights with one absmax per row (bitsandbytes int8_vectorwise_quant /
 * int8_vectorwise_dequant): layout, scalar reference quantize / dequantize, SIMD dequantize. */
#include "quant/quant_internal.h"

#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* layout: [absmax: 4*rows bytes][q: rows*cols bytes], exactly tensor.h's ft_tensor_nbytes for FT_Q8_ROW */
size_t ft_q8row_nbytes(int64_t rows, int64_t cols) {
    if (rows < 1 || cols < 1) return 0;
    return (size_t)rows * sizeof(float) + (size_t)(rows * cols);
}

int ft_q8row_view(ft_q8row_tensor *t, int64_t rows, int64_t cols, void *mem) {
    if (!t || !mem) return ft_error(FT_ERR_INVALID, "q8row view: NULL argument");
    if (rows < 1 || cols < 1) return ft_error(FT_ERR_SHAPE, "q8row: shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    if ((uintptr_t)mem % sizeof(float) != 0) return ft_error(FT_ERR_INVALID, "q8row view: memory must be 4-byte aligned");
    memset(t, 0, sizeof *t);
    t->rows = rows;
    t->cols = cols;
    t->absmax = mem;
    t->q = (int8_t *)((char *)mem + (size_t)rows * sizeof(float));
    return FT_OK;
}

int ft_q8row_create(ft_q8row_tensor *t, int64_t rows, int64_t cols) {
    if (!t) return ft_error(FT_ERR_INVALID, "q8row create: NULL tensor");
    memset(t, 0, sizeof *t);
    if (rows < 1 || cols < 1) return ft_error(FT_ERR_SHAPE, "q8row: shape [%lld, %lld] must be positive", (long long)rows, (long long)cols);
    size_t n = ft_q8row_nbytes(rows, cols);
    void *mem = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!mem) return ft_error(FT_ERR_NOMEM, "q8row create [%lld, %lld]: %zu bytes", (long long)rows, (long long)cols, n);
    memset(mem, 0, n);
    int rc = ft_q8row_view(t, rows, cols, mem);
    if (rc < 0) { free(mem); return rc; }
    t->mem_ = mem;
    return FT_OK;
}

void ft_q8row_destroy(ft_q8row_tensor *t) {
    if (!t) return;
    free(t->mem_);
    memset(t, 0, sizeof *t);
}

/* q = round-half-even(x * (127.0f / absmax)): torch.round on the float32 product. |q| <= 127 since
 * |x| <= absmax; a zero row (127/0 = inf, 0*inf = NaN) is stored as zeros. */
int ft_q8row_quantize_ref(ft_q8row_tensor *t, const float *w) {
    if (!t || !w || !t->q) return ft_error(FT_ERR_INVALID, "q8row quantize: NULL argument");
    for (int64_t r = 0; r < t->rows; r++) {
        const float *x = w + r * t->cols;
        int8_t *q = t->q + r * t->cols;
        float amax = 0.0f;
        for (int64_t c = 0; c < t->cols; c++) amax = fmaxf(amax, fabsf(x[c]));
        t->absmax[r] = amax;
        const float s = 127.0f / amax;
        for (int64_t c = 0; c < t->cols; c++) {
            float v = nearbyintf(x[c] * s); /* default rounding mode: to nearest, ties to even */
            q[c] = (int8_t)(v == v ? (v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v)) : 0.0f);
        }
    }
    return FT_OK;
}

void ft_q8row_dequantize_ref(float *out, const ft_q8row_tensor *t) {
    for (int64_t r = 0; r < t->rows; r++)
        for (int64_t c = 0; c < t->cols; c++) out[r * t->cols + c] = ft_q8_deq_(t->q[r * t->cols + c], t->absmax[r]);
}

void ft_q8row_dequantize_tile(float *out, size_t ldo, const ft_q8row_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    for (int64_t r = 0; r < nr; r++) K->q8_span(out + (size_t)r * ldo, t->q + (r0 + r) * t->cols + c0, t->absmax[r0 + r], nc);
}

void ft_q8row_dequantize(float *out, const ft_q8row_tensor *t) {
    const ft_quant_kernels *K = ft__quant_kernels_get();
    const int64_t rows = t->rows, cols = t->cols;
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 16))
    for (int64_t r = 0; r < rows; r++) K->q8_span(out + r * cols, t->q + r * cols, t->absmax[r], cols);
}
