/* ref/kv_cache.c — scalar reference KV-cache write (see ops.h). */
#include "finetune/ops.h"

void ft_ref_kv_cache_write(void *ctx, float *k_cache, float *v_cache, int ldc, const float *k, const float *v, int ldkv,
                           const int *rows, int row0, int n, int KV) {
    for (int i = 0; i < n; i++) {
        size_t r = (size_t)(rows ? rows[i] : row0 + i);
        for (int c = 0; c < KV; c++) {
            k_cache[r * ldc + c] = k[(size_t)i * ldkv + c];
            v_cache[r * ldc + c] = v[(size_t)i * ldkv + c];
        }
    }
}
