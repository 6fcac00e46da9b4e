/* tensor.c — dtype tables, sizes, half-precision conversion. */
#include "finetune/tensor.h"
#include "finetune/status.h"

#include <stdio.h>
#include <string.h>

static const char *k_names[FT_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "I64", "I8", "U8", "Q8_ROW", "NF4", "Q8_0", "Q4_0", "Q4_K"};
static const size_t k_sizes[FT_DTYPE_COUNT] = {4, 2, 2, 4, 8, 1, 1, 0, 0, 0, 0, 0};

const char *ft_dtype_name(ft_dtype t) { return (unsigned)t < FT_DTYPE_COUNT ? k_names[t] : "?"; }

int ft_dtype_from_name(const char *s, ft_dtype *out) {
    for (int i = 0; i < FT_DTYPE_COUNT; i++)
        if (strcmp(s, k_names[i]) == 0) { *out = (ft_dtype)i; return FT_OK; }
    return ft_error(FT_ERR_DTYPE, "unknown dtype '%s'", s);
}

size_t ft_dtype_size(ft_dtype t) { return (unsigned)t < FT_DTYPE_COUNT ? k_sizes[t] : 0; }

int64_t ft_tensor_numel(const ft_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t ft_tensor_nbytes(const ft_tensor *t) {
    int64_t n = ft_tensor_numel(t);
    switch (t->dtype) {
    case FT_Q8_ROW: {
        int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1;
        return (size_t)n + (size_t)(n / (cols ? cols : 1)) * sizeof(float);
    }
    case FT_NF4: /* 64 values -> 32 bytes + 1 byte quantized scale; 256 scales share an f32 */
        return (size_t)(n / 2) + (size_t)(n / 64) + (size_t)((n / 64 + 255) / 256) * 2 * sizeof(float);
    case FT_Q8_0: return (size_t)(n / 32) * 34;
    case FT_Q4_0: return (size_t)(n / 32) * 18;
    case FT_Q4_K: return (size_t)(n / 256) * 144;
    default: return (size_t)n * ft_dtype_size(t->dtype);
    }
}

const char *ft_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

float ft_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ft_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - exp;
        uint32_t half = 1u << (shift - 1), rem = man & ((1u << shift) - 1);
        uint32_t r = man >> shift;
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float ft_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ft_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
