/* cpu/loss.c — softmax cross-entropy with label smoothing, rows in parallel.
 *
 * The logits are read from memory once: each row is walked in L1-sized chunks; a chunk's max is
 * taken (the chunk comes in from DRAM), then e = exp(x - M) is computed on the still-cached chunk
 * with M the running row max so far, summed, and stored to dlogits when wanted. When the running max
 * grows, the sum is rescaled by exp(M_old - M_new) (online softmax), and the max each chunk used is
 * remembered so that the final pass scales chunk c by exp(M_c - M) / sum. The final pass works on
 * dlogits (written a moment ago). Chunk sums are float SIMD sums, accumulated in double across chunks
 * in a fixed order: deterministic for any thread count.
 *
 * The bf16 variant (ft_cpu_crossentropy_forward_backward_bf16, the cpu-bf16 table's, for the bf16 GEMMs of the LM
 * head's backward) runs the same passes over the logits in place; its final pass rounds each value (RNE, as the
 * GEMM's packing would) and stores it as bf16 into the first half of the row's bytes: the store of values
 * v..v+15 covers f32 elements v/2..v/2+7, all read by then (the target's value is computed before the pass). */
#include "finetune/ops.h"
#include "ops/cpu/vmath.h"
#include "ops/cpu/vmath_avx512.h"

#include "finetune/gemm_bf16.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t u16_alias __attribute__((may_alias)); /* bf16 values stored over the f32 logits */

#define CE_CHUNK 2048     /* elements per chunk (8 KB, stays in L1) */
#define CE_MAXCHUNKS 256  /* chunk maxima kept on the stack; longer rows use longer chunks */

#ifdef FT_VMATH_AVX512
/* The three chunk loops in AVX-512: full vectors unmasked (masked stores are slow on AMD Zen), the tail
 * masked; sums in four (max: two) vector accumulators for the adds' latency. */
/* *cm = max of x[0..n), *cs = their sum when with_sum */
static void chunk_max_sum16(const float *x, int n, int with_sum, float *cm, float *cs) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, s0 = _mm512_setzero_ps(), s1 = s0;
    int v = 0;
    for (; v + 32 <= n; v += 32) {
        __m512 a = _mm512_loadu_ps(x + v), b = _mm512_loadu_ps(x + v + 16);
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
        if (with_sum) { s0 = _mm512_add_ps(s0, a); s1 = _mm512_add_ps(s1, b); }
    }
    for (; v < n; v += 16) {
        __mmask16 k = n - v >= 16 ? 0xffff : (__mmask16)((1u << (n - v)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(k, x + v);
        m0 = _mm512_mask_max_ps(m0, k, m0, a);
        if (with_sum) s0 = _mm512_add_ps(s0, a);
    }
    *cm = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    *cs = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* sum of e = exp(x - M) over x[0..n), e stored to d when d (d may equal x). While it computes, the chunk
 * after next (x + 2n .. x + 3n; past a row's end, the next row's start) is prefetched: the exp loop is
 * compute-bound and the max loop would otherwise wait for memory with nothing to do (a prefetch never
 * faults, even past the end of the logits). One thread, 1024 x 50257: loss only 10.4 -> 7.2 ms, loss +
 * gradient in place 13.8 -> 8.9 ms; one chunk ahead 8.8 / 10.6, four 7.6-8.3 / 9.4-9.7. */
static float chunk_exp_sum16(float *d, const float *x, int n, float M) {
    __m512 mv = _mm512_set1_ps(M), s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int v = 0;
    for (; v + 64 <= n; v += 64) {
        _mm_prefetch((const char *)(x + 2 * n + v), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + 2 * n + v + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + 2 * n + v + 32), _MM_HINT_T0);
        _mm_prefetch((const char *)(x + 2 * n + v + 48), _MM_HINT_T0);
        __m512 e0 = ft_vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + v), mv));
        __m512 e1 = ft_vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + v + 16), mv));
        __m512 e2 = ft_vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + v + 32), mv));
        __m512 e3 = ft_vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + v + 48), mv));
        if (d) {
            _mm512_storeu_ps(d + v, e0);
            _mm512_storeu_ps(d + v + 16, e1);
            _mm512_storeu_ps(d + v + 32, e2);
            _mm512_storeu_ps(d + v + 48, e3);
        }
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
        s2 = _mm512_add_ps(s2, e2);
        s3 = _mm512_add_ps(s3, e3);
    }
    for (; v + 16 <= n; v += 16) {
        __m512 e = ft_vexp16(_mm512_sub_ps(_mm512_loadu_ps(x + v), mv));
        if (d) _mm512_storeu_ps(d + v, e);
        s0 = _mm512_add_ps(s0, e);
    }
    if (v < n) {
        __mmask16 k = (__mmask16)((1u << (n - v)) - 1);
        __m512 e = _mm512_maskz_mov_ps(k, ft_vexp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + v), mv)));
        if (d) _mm512_mask_storeu_ps(d + v, k, e);
        s1 = _mm512_add_ps(s1, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* 16 f32 -> 16 bf16, round to nearest even (ft_bf16_round's bits: subnormals to signed zero, NaN quiet) */
static inline __m256i cvt_bf16x16(__m512 x) {
#ifdef __AVX512BF16__
    return (__m256i)_mm512_cvtneps_pbh(x);
#else
    __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
    __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
    r = _mm512_mask_mov_epi32(r, tiny, _mm512_and_si512(hi, _mm512_set1_epi32(0x8000)));
    return _mm512_cvtepi32_epi16(r);
#endif
}

/* h[0..n) = bf16(d * a - off) (h may overlap d as the in-place row does: see the top) */
static void chunk_scale16_bf16(uint16_t *h, const float *d, int n, float a, float off) {
    __m512 av = _mm512_set1_ps(a), ov = _mm512_set1_ps(off);
    int v = 0;
    for (; v + 16 <= n; v += 16) _mm256_storeu_si256((__m256i *)(h + v), cvt_bf16x16(_mm512_fmsub_ps(_mm512_loadu_ps(d + v), av, ov)));
    if (v < n) {
        __mmask16 k = (__mmask16)((1u << (n - v)) - 1);
        _mm256_mask_storeu_epi16(h + v, k, cvt_bf16x16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, d + v), av, ov)));
    }
}

/* d[0..n) = d * a - off */
static void chunk_scale16(float *d, int n, float a, float off) {
    __m512 av = _mm512_set1_ps(a), ov = _mm512_set1_ps(off);
    int v = 0;
    for (; v + 16 <= n; v += 16) _mm512_storeu_ps(d + v, _mm512_fmsub_ps(_mm512_loadu_ps(d + v), av, ov));
    if (v < n) {
        __mmask16 k = (__mmask16)((1u << (n - v)) - 1);
        _mm512_mask_storeu_ps(d + v, k, _mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, d + v), av, ov));
    }
}
#endif

/* one value of the final pass, d * a - off, as chunk_scale16 / its loop computes it */
static inline float scale_off(float d, float a, float off) {
#ifdef FT_VMATH_AVX512
    return fmaf(d, a, -off); /* vfmsub: one rounding */
#else
    return d * a - off;
#endif
}

/* losses[N]; dlogits[N,V] = scale * (softmax - smoothed one-hot) (may alias logits, may be NULL). out16: dlogits ==
 * logits, and the final pass stores the row's values as bf16 over the first half of its bytes */
static void ce_rows(float *losses, float *dlogits, const float *logits, const int *targets, int N, int V, float scale,
                    float label_smoothing, int ignore_index, int out16) {
    float eps = label_smoothing;
    int chunk = CE_CHUNK;
    if ((V + chunk - 1) / chunk > CE_MAXCHUNKS) chunk = ((V + CE_MAXCHUNKS - 1) / CE_MAXCHUNKS + 15) / 16 * 16;
#pragma omp parallel for schedule(static) if ((size_t)N * V >= FT_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *d = dlogits ? dlogits + (size_t)n * V : NULL;
        int tgt = targets[n];
        if (tgt == ignore_index || tgt < 0 || tgt >= V) {
            losses[n] = 0.0f;
            if (d) memset(d, 0, (size_t)V * (out16 ? sizeof(uint16_t) : sizeof(float)));
            continue;
        }
        float xt = x[tgt]; /* before any (aliased) write */
        float cmax[CE_MAXCHUNKS];
        float M = -INFINITY;
        double S = 0.0, sx = 0.0;
        for (int c = 0, v0 = 0; v0 < V; c++, v0 += chunk) {
            int vn = V - v0 < chunk ? V - v0 : chunk;
            const float *xc = x + v0;
            float cm = -INFINITY, cs = 0.0f;
#ifdef FT_VMATH_AVX512
            chunk_max_sum16(xc, vn, eps != 0.0f, &cm, &cs);
            if (eps != 0.0f) sx += cs;
#else
            if (eps != 0.0f) {
#pragma omp simd reduction(max : cm) reduction(+ : cs)
                for (int v = 0; v < vn; v++) {
                    cm = xc[v] > cm ? xc[v] : cm;
                    cs += xc[v];
                }
                sx += cs;
            } else {
#pragma omp simd reduction(max : cm)
                for (int v = 0; v < vn; v++) cm = xc[v] > cm ? xc[v] : cm;
            }
#endif
            if (cm > M) {
                if (S > 0.0) S *= exp((double)M - (double)cm);
                M = cm;
            }
            float es = 0.0f;
#ifdef FT_VMATH_AVX512
            es = chunk_exp_sum16(d ? d + v0 : NULL, xc, vn, M);
#else
            if (d) {
                float *dc = d + v0; /* may equal xc: element-wise read then write */
#pragma omp simd reduction(+ : es)
                for (int v = 0; v < vn; v++) {
                    float e = ft_vexpf(xc[v] - M);
                    dc[v] = e;
                    es += e;
                }
            } else {
#pragma omp simd reduction(+ : es)
                for (int v = 0; v < vn; v++) es += ft_vexpf(xc[v] - M);
            }
#endif
            S += es;
            cmax[c] = M;
        }
        double lse = (double)M + log(S);
        losses[n] = (float)((1.0 - eps) * (lse - xt) + eps * (lse - sx / V));
        if (!d) continue;
        /* dlogits = scale * (e * exp(M_c - M) / S - eps / V), and - scale * (1 - eps) at the target */
        float off = scale * eps / (float)V;
        if (out16) {
            /* the target's value first (its f32 exp is about to be overwritten), with the f32 path's operations */
            int ct = tgt / chunk;
            float at = (float)((double)scale * exp((double)cmax[ct] - (double)M) / S);
            float dt = scale_off(d[tgt], at, off);
            dt -= scale * (1.0f - eps);
            u16_alias *h = (u16_alias *)d;
            for (int c = 0, v0 = 0; v0 < V; c++, v0 += chunk) {
                int vn = V - v0 < chunk ? V - v0 : chunk;
                float a = (float)((double)scale * exp((double)cmax[c] - (double)M) / S);
#ifdef FT_VMATH_AVX512
                chunk_scale16_bf16((uint16_t *)(h + v0), d + v0, vn, a, off);
#else
                for (int v = 0; v < vn; v++) h[v0 + v] = ft_bf16_round(scale_off(d[v0 + v], a, off));
#endif
            }
            h[tgt] = ft_bf16_round(dt);
            continue;
        }
        for (int c = 0, v0 = 0; v0 < V; c++, v0 += chunk) {
            int vn = V - v0 < chunk ? V - v0 : chunk;
            float a = (float)((double)scale * exp((double)cmax[c] - (double)M) / S);
            float *dc = d + v0;
#ifdef FT_VMATH_AVX512
            chunk_scale16(dc, vn, a, off);
#else
#pragma omp simd
            for (int v = 0; v < vn; v++) dc[v] = dc[v] * a - off;
#endif
        }
        d[tgt] -= scale * (1.0f - eps);
    }
}

void ft_cpu_crossentropy_forward_backward(void *ctx, float *losses, float *dlogits, const float *logits, const int *targets,
                                          int N, int V, float scale, float label_smoothing, int ignore_index) {
    ce_rows(losses, dlogits, logits, targets, N, V, scale, label_smoothing, ignore_index, 0);
}

void ft_cpu_crossentropy_forward_backward_bf16(void *ctx, float *losses, float *logits, const int *targets, int N, int V,
                                               float scale, float label_smoothing, int ignore_index) {
    ce_rows(losses, logits, logits, targets, N, V, scale, label_smoothing, ignore_index, 1);
}
