/* dynamic_map.c — bitsandbytes' 8-bit dynamic quantization map (create_dynamic_map) and the
 * blockwise 8-bit quantizer built on it (quantize_blockwise: kQuantizeBlockwise + dQuantize).
 * Scalar reference code; NF4 double quantization uses it for the block scales. */
#include "quant/quant_internal.h"

#include "finetune/status.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* torch.linspace(0.1, 1, steps, dtype=float32) on CPU: start, end and step are float32, the first
 * half is start + step*i, the second end - step*(steps-1-i), each one rounding (fused multiply-add,
 * as torch's vectorised kernel computes them; checked against torch 2.x for the steps the map
 * uses: 2, 3, 5, 9, 17, 33, 65). */
static void linspace_f32(float *out, int steps) {
    const float start = (float)0.1, end = 1.0f;
    if (steps == 1) { out[0] = start; return; }
    const float step = (end - start) / (float)(steps - 1);
    const int half = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - 1 - i), end);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Appends scale * means (and -scale * means when is_signed) for `items` linspace boundaries:
 * means = (b[:-1] + b[1:]) / 2 in float32; the Python scale (a double) multiplies a float32
 * tensor, so torch rounds it to float32 first. */
static int append_means(float *data, int n, int cap, int items, double scale, int is_signed) {
    float b[1 + 512];
    if (items < 1 || items > 512) return -1;
    linspace_f32(b, items);
    const float s = (float)scale, ns = (float)(-scale);
    for (int k = 0; k + 1 < items; k++) {
        float m = (b[k] + b[k + 1]) / 2.0f;
        if (n >= cap) return -1;
        data[n++] = s * m;
    }
    if (is_signed) {
        for (int k = 0; k + 1 < items; k++) {
            float m = (b[k] + b[k + 1]) / 2.0f;
            if (n >= cap) return -1;
            data[n++] = ns * m;
        }
    }
    return n;
}

int ft_quant_dynamic_map_create(float code[256], int is_signed, int max_exponent_bits, int total_bits) {
    if (!code) return ft_error(FT_ERR_INVALID, "dynamic map: NULL output");
    if (total_bits < 1 || total_bits > 8 || max_exponent_bits < 1 || max_exponent_bits > 8)
        return ft_error(FT_ERR_INVALID, "dynamic map: total_bits %d / max_exponent_bits %d out of range", total_bits, max_exponent_bits);
    float data[1024];
    const int cap = 1024;
    int n = 0;
    const int non_sign_bits = total_bits - 1; /* bnb: total_bits - 1 whether signed or not */
    /* bnb: additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1 (0 for the default map) */
    const double add_d = ldexp(1.0, non_sign_bits - max_exponent_bits) - 1.0;
    int i;
    for (i = 0; i < max_exponent_bits; i++) {
        int e = i + non_sign_bits - max_exponent_bits + (is_signed ? 0 : 1);
        int items = (int)(ldexp(1.0, e) + 1.0); /* int(2 ** e + 1) */
        double scale = pow(10.0, (double)(-(max_exponent_bits - 1) + i)); /* 10 ** (-(meb-1) + i) */
        n = append_means(data, n, cap, items, scale, is_signed);
        if (n < 0) return ft_error(FT_ERR_INVALID, "dynamic map: too many values");
    }
    if (add_d > 0) {
        int items = (int)add_d + 1;
        double scale = pow(10.0, (double)(-(max_exponent_bits - 1) + (i - 1))); /* Python's loop variable keeps its last value */
        n = append_means(data, n, cap, items, scale, is_signed);
        if (n < 0) return ft_error(FT_ERR_INVALID, "dynamic map: too many values");
    }
    if (n + 2 > cap) return ft_error(FT_ERR_INVALID, "dynamic map: too many values");
    data[n++] = 0.0f;
    data[n++] = 1.0f;
    if (n != (1 << total_bits))
        return ft_error(FT_ERR_INVALID, "dynamic map: %d values for total_bits %d (bitsandbytes asserts 2^total_bits)", n, total_bits);
    while (n < 256) data[n++] = 0.0f; /* gap padded with zeros, then sorted */
    qsort(data, 256, sizeof(float), cmp_float);
    for (int k = 0; k < 256; k++) code[k] = data[k];
    return FT_OK;
}

static float g_map[256];
static pthread_once_t g_map_once = PTHREAD_ONCE_INIT;
static void build_default_map(void) { (void)ft_quant_dynamic_map_create(g_map, 1, 7, 8); }

const float *ft_quant_dynamic_map(void) {
    pthread_once(&g_map_once, build_default_map);
    return g_map;
}

/* bnb dQuantize<0>: a 7-step binary search from index 127, then the float midpoint with the
 * neighbour on the side of x. NaN compares false everywhere and ends at index 0. */
uint8_t ft_quant_code8_nearest(const float code[256], float x) {
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = -1.0f, upper = 1.0f;
    float val = code[pivot];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = code[pivot];
    }
    if (upper_pivot == 255) upper = code[upper_pivot];
    if (lower_pivot == 0) lower = code[lower_pivot];
    if (x > val) {
        float midpoint = (upper + val) * 0.5f;
        return (uint8_t)(x > midpoint ? upper_pivot : pivot);
    }
    float midpoint = (lower + val) * 0.5f;
    return (uint8_t)(x < midpoint ? lower_pivot : pivot);
}

/* bnb kQuantizeBlockwise (General8bit): absmax per block, values scaled by the float reciprocal. */
void ft_quant_blockwise8_ref(uint8_t *codes, float *absmax, const float *x, int64_t n, int blocksize, const float code[256]) {
    for (int64_t b0 = 0, bi = 0; b0 < n; b0 += blocksize, bi++) {
        int64_t m = n - b0 < blocksize ? n - b0 : blocksize;
        float amax = 0.0f;
        for (int64_t i = 0; i < m; i++) amax = fmaxf(amax, fabsf(x[b0 + i]));
        absmax[bi] = amax;
        float inv = 1.0f / amax;
        for (int64_t i = 0; i < m; i++) codes[b0 + i] = ft_quant_code8_nearest(code, x[b0 + i] * inv);
    }
}

/* bnb kDequantizeBlockwise (General8bit): code[q] * absmax */
void ft_quant_blockwise8_dequantize_ref(float *out, const uint8_t *codes, const float *absmax, int64_t n, int blocksize, const float code[256]) {
    for (int64_t i = 0; i < n; i++) out[i] = code[codes[i]] * absmax[i / blocksize];
}
