/* cpu/kv_cache.c — KV-cache write: one memcpy per row and tensor (rows in parallel when there are many,
 * as in a prefill; the destination rows are distinct, so no two threads write the same bytes). */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"

#include <string.h>

void ft_cpu_kv_cache_write(void *ctx, float *k_cache, float *v_cache, int ldc, const float *k, const float *v, int ldkv,
                           const int *rows, int row0, int n, int KV) {
#pragma omp parallel for schedule(static) if ((size_t)n * KV >= FT_PAR_MIN)
    for (int i = 0; i < n; i++) {
        size_t r = (size_t)(rows ? rows[i] : row0 + i);
        memcpy(k_cache + r * ldc, k + (size_t)i * ldkv, (size_t)KV * sizeof(float));
        memcpy(v_cache + r * ldc, v + (size_t)i * ldkv, (size_t)KV * sizeof(float));
    }
}
