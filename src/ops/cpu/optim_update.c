/* cpu/optim_update.c — optimizer updates on all cores. Element-wise: each element's arithmetic is the
 * reference's expression for expression (the build does not contract to FMA: -std=c11 implies
 * -ffp-contract=off), so vectorising and splitting across threads leave the bits unchanged. The
 * hyperparameters are copied to locals first so the compiler knows they do not alias the arrays.
 *
 * AdamW, the update of full fine-tuning, is written out in AVX-512 (adamw_avx512): the compiler keeps a
 * loop with sqrtf scalar (sqrtf may set errno, which -std=c11 keeps), and one element then costs a scalar
 * square root and two divisions (~10 cycles), three times what its 28 bytes of memory traffic (read w, m,
 * v, g; write w, m, v) cost. vsqrtps / vdivps round exactly as their scalar forms, so the bits are the
 * reference's. The other updates are left to the compiler, which vectorises them because the Makefile
 * builds this file with -fno-math-errno (a negative argument still gives NaN; only errno is not set). */
#include "finetune/ops.h"
#include "finetune/gemm_bf16.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>

#define PAR_MIN 16384 /* below this, thread start-up costs more than the update */

/* 16 elements of AdamW (k: which lanes are loaded and stored) */
#define ADAMW16(k, i)                                                                                                     \
    do {                                                                                                                   \
        __m512 gi = _mm512_maskz_loadu_ps(k, g + (i));                                                                     \
        __m512 wi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + (i)), vdecay);                                              \
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_maskz_loadu_ps(k, m + (i))), _mm512_mul_ps(vomb1, gi));        \
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_maskz_loadu_ps(k, v + (i))),                                   \
                                  _mm512_mul_ps(_mm512_mul_ps(vomb2, gi), gi));                                            \
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc2), veps);                                         \
        _mm512_mask_storeu_ps(m + (i), k, mi);                                                                             \
        _mm512_mask_storeu_ps(v + (i), k, vi);                                                                             \
        _mm512_mask_storeu_ps(w + (i), k, _mm512_sub_ps(wi, _mm512_div_ps(_mm512_mul_ps(vstep, mi), den)));                \
    } while (0)

/* AdamW's per-step constants, derived from the hyperparameters once (every path computes them alike) */
typedef struct { float decay, b1, omb1, b2, omb2, step, bc2, eps; } adamw_k;
static adamw_k adamw_consts(const ft_update_params *h) {
    adamw_k k = {.decay = 1.0f - h->lr * h->wd, .b1 = h->beta1, .omb1 = 1.0f - h->beta1, .b2 = h->beta2, .omb2 = 1.0f - h->beta2,
                 .step = h->lr / h->bc1, .bc2 = h->bc2_sqrt, .eps = h->eps};
    return k;
}

/* w, m, v, g [n] (any alignment) */
__attribute__((target("avx512f"))) static void adamw_avx512(float *restrict w, float *restrict m, float *restrict v,
                                                              const float *restrict g, size_t n, const adamw_k *c) {
    const __m512 vdecay = _mm512_set1_ps(c->decay), vb1 = _mm512_set1_ps(c->b1), vomb1 = _mm512_set1_ps(c->omb1);
    const __m512 vb2 = _mm512_set1_ps(c->b2), vomb2 = _mm512_set1_ps(c->omb2), vstep = _mm512_set1_ps(c->step);
    const __m512 vbc2 = _mm512_set1_ps(c->bc2), veps = _mm512_set1_ps(c->eps);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) ADAMW16((__mmask16)0xffff, i); /* a constant mask: plain loads and stores */
    if (i < n) ADAMW16((__mmask16)((1u << (n - i)) - 1), i);
}

void ft_cpu_adamw_update(void *ctx, float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                         const ft_update_params *h) {
    const adamw_k c = adamw_consts(h);
    const float decay = c.decay, b1 = c.b1, omb1 = c.omb1, b2 = c.b2, omb2 = c.omb2, step = c.step, bc2 = c.bc2, eps = c.eps;
    if (__builtin_cpu_supports("avx512f")) {
        /* one contiguous chunk per thread, starting on a multiple of 16 floats (a cache line when aligned) */
#pragma omp parallel if (n >= PAR_MIN)
        {
            int nt = omp_get_num_threads(), t = omp_get_thread_num();
            size_t per = (n + 16 * (size_t)nt - 1) / (16 * (size_t)nt) * 16, i0 = per * (size_t)t;
            size_t i1 = i0 + per < n ? i0 + per : n;
            if (i0 < i1) adamw_avx512(w + i0, m + i0, v + i0, g + i0, i1 - i0, &c);
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float mi = b1 * m[i] + omb1 * g[i];
        float vi = b2 * v[i] + omb2 * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

/* AdamW on W [OC, C] with its bf16 pack (gemm_bf16.h) made in the same pass: the rows are updated NR at a time
 * (one strip of the pack's forward layout) and packed right after, from the cache, so the pack costs its writes
 * and not another read of W. The update's bits are ft_cpu_adamw_update's (element-wise). */
void ft_cpu_adamw_update_wpack(void *ctx, float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                               const ft_update_params *h, void *pack) {
    int OC, C;
    ft_gemm_bf16_wpack_shape(pack, &OC, &C);
    if (!__builtin_cpu_supports("avx512f") || (size_t)OC * (size_t)C != n) {
        ft_cpu_adamw_update(ctx, w, m, v, g, n, h);
        ft_gemm_bf16_wpack_fill(pack, w);
        return;
    }
    const adamw_k k = adamw_consts(h);
    int rows = ft_gemm_bf16_wpack_chunk_rows(), nch = (OC + rows - 1) / rows;
    ft_gemm_bf16_wpack_invalidate(pack);
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int c = 0; c < nch; c++) {
        int r0 = c * rows, r1 = r0 + rows < OC ? r0 + rows : OC;
        size_t i0 = (size_t)r0 * C, len = (size_t)(r1 - r0) * C;
        adamw_avx512(w + i0, m + i0, v + i0, g + i0, len, &k);
        ft_gemm_bf16_wpack_rows(pack, w, r0, r1);
    }
    ft__gemm_bf16_wpack_set_valid(pack);
}

void ft_cpu_adam_update(void *ctx, float *restrict w, float *restrict m, float *restrict v, const float *restrict g, size_t n,
                        const ft_update_params *h) {
    const float wd = h->wd, b1 = h->beta1, b2 = h->beta2, eps = h->eps, bc2 = h->bc2_sqrt;
    const float step = h->lr / h->bc1;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

void ft_cpu_sgd_update(void *ctx, float *restrict w, float *restrict buf, const float *restrict g, size_t n, const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, mu = h->momentum;
    if (!buf) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
        return;
    }
    const int first = h->first_step, nesterov = h->nesterov;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float bi = first ? gi : mu * buf[i] + gi;
        buf[i] = bi;
        gi = nesterov ? gi + mu * bi : bi;
        w[i] -= lr * gi;
    }
}

void ft_cpu_adagrad_update(void *ctx, float *restrict w, float *restrict acc, const float *restrict g, size_t n,
                           const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, eps = h->eps;
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float ai = acc[i] + gi * gi;
        acc[i] = ai;
        w[i] -= lr * gi / (sqrtf(ai) + eps);
    }
}

void ft_cpu_rmsprop_update(void *ctx, float *restrict w, float *restrict v, float *restrict buf, const float *restrict g, size_t n,
                           const ft_update_params *h) {
    const float lr = h->lr, wd = h->wd, a = h->beta2, eps = h->eps, mu = h->momentum;
    if (!buf) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float vi = a * v[i] + (1.0f - a) * gi * gi;
            v[i] = vi;
            w[i] -= lr * (gi / (sqrtf(vi) + eps));
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = a * v[i] + (1.0f - a) * gi * gi;
        v[i] = vi;
        float bi = mu * buf[i] + gi / (sqrtf(vi) + eps);
        buf[i] = bi;
        w[i] -= lr * bi;
    }
}
