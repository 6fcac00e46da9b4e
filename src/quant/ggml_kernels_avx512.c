/* ggml_kernels_avx512.c — AVX-512 (F, BW, VL, VNNI) kernels of the matmuls over ggml blocks. Compiled
 * with a target attribute whatever the global -march; used only when the CPU has AVX-512 VNNI
 * (ggml_matmul.c).
 *
 * int8 activations: one 512-bit register holds 64 weights, two 32-value blocks (Q8_0, Q4_0) or the two
 * sub-blocks of one 64-value chunk of a Q4_K super-block, in the order of the activation bytes, so one
 * vpdpbusd (u8 x s8 -> 4 products summed per int32 lane) gives 8 lanes per 32-value block; the lanes are
 * converted to float and scaled by that block's d_w * d_x (two broadcasts blended) in one FMA.
 *   Q8_0: both operands are signed; vpdpbusd takes |w| and x with w's sign moved onto it.
 *   Q4_0 / Q4_K: the nibbles (0..15) are the unsigned operand; the offset (-8 for Q4_0) and the Q4_K
 *   mins are applied through the activation block sums ds (scalar, once per block). */
#include "quant/ggml_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")
#endif
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define NMAX FT_QUANT_DIRECT_MAX_N

INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* 16 lanes: s0 in lanes 0..7, s1 in lanes 8..15 */
INLINE __m512 two_scales(float s0, float s1) { return _mm512_insertf32x8(_mm512_set1_ps(s0), _mm256_set1_ps(s1), 1); }

/* 32 nibbles of 16 bytes (low nibbles first, then high) as 32 bytes 0..15 */
INLINE __m256i q4_0_nibbles(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* ---------------------------------------------------------------- int8 activations */

/* One or two activation rows (decoding): per block pair the two f16 scales times the activation's. */
static void fwd1_q8_0(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb = C / 32;
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t o = o0; o < o1; o++) {
        const ft_block_q8_0 *b = (const ft_block_q8_0 *)ft__ggml_row(w, o, rowbuf);
        __m512 acc[NMAX];
        float tail[NMAX] = {0};
        for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 1 < nb; j += 2) {
            __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[j].qs)),
                                            _mm256_loadu_si256((const __m256i *)b[j + 1].qs), 1);
            __mmask64 neg = _mm512_movepi8_mask(wv);
            __m512i wa = _mm512_abs_epi8(wv);
            float dw0 = h2f(b[j].d), dw1 = h2f(b[j + 1].d);
            for (int n = 0; n < N; n++) {
                __m512i xv = _mm512_loadu_si512(a->qs + (size_t)n * C + 32 * j);
                __m512i xs = _mm512_mask_sub_epi8(xv, neg, zero, xv);
                __m512i dot = _mm512_dpbusd_epi32(zero, wa, xs);
                const float *xd = a->d + n * nb + j;
                acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), two_scales(dw0 * xd[0], dw1 * xd[1]), acc[n]);
            }
        }
        for (; j < nb; j++)
            for (int n = 0; n < N; n++) {
                const int8_t *x = a->qs + (size_t)n * C + 32 * j;
                int32_t s = 0;
                for (int k = 0; k < 32; k++) s += (int32_t)b[j].qs[k] * x[k];
                tail[n] += h2f(b[j].d) * a->d[n * nb + j] * (float)s;
            }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = _mm512_reduce_add_ps(acc[n]) + tail[n];
    }
}

static void fwd1_q4_0(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb = C / 32;
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t o = o0; o < o1; o++) {
        const ft_block_q4_0 *b = (const ft_block_q4_0 *)ft__ggml_row(w, o, rowbuf);
        __m512 acc[NMAX];
        float corr[NMAX] = {0}, tail[NMAX] = {0};
        for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
        int64_t j = 0;
        for (; j + 1 < nb; j += 2) {
            __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(q4_0_nibbles(b[j].qs)), q4_0_nibbles(b[j + 1].qs), 1);
            float dw0 = h2f(b[j].d), dw1 = h2f(b[j + 1].d);
            for (int n = 0; n < N; n++) {
                __m512i xv = _mm512_loadu_si512(a->qs + (size_t)n * C + 32 * j);
                __m512i dot = _mm512_dpbusd_epi32(zero, wv, xv);
                const float *xd = a->d + n * nb + j, *xds = a->ds + n * nb + j;
                acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), two_scales(dw0 * xd[0], dw1 * xd[1]), acc[n]);
                corr[n] += dw0 * xds[0] + dw1 * xds[1];
            }
        }
        for (; j < nb; j++) {
            float dw = h2f(b[j].d);
            for (int n = 0; n < N; n++) {
                const int8_t *x = a->qs + (size_t)n * C + 32 * j;
                int32_t s = 0;
                for (int k = 0; k < 16; k++) s += (int32_t)(b[j].qs[k] & 0xF) * x[k] + (int32_t)(b[j].qs[k] >> 4) * x[16 + k];
                tail[n] += dw * a->d[n * nb + j] * (float)s;
                corr[n] += dw * a->ds[n * nb + j];
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = _mm512_reduce_add_ps(acc[n]) + tail[n] - 8.0f * corr[n];
    }
}

/* Rows of Q8_0 / Q4_0 blocks. The row is walked in chunks of CHUNK block pairs: first the pairs' f16 scales
 * are converted once into dwv (8 + 8 lanes, as the activation's dxe) and dws, then each pair is decoded once
 * and multiplied with every activation row: vpdpbusd, convert, scale (dwv * dxe: one multiply), FMA. Q4_0's
 * offset -8 is applied once per chunk as a dot product of dws with the activation block sums ds. */
#define CHUNK 32

INLINE float dot_f32(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
    float s = _mm512_reduce_add_ps(acc);
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

INLINE void fwd_q4_0_q8_0(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1,
                          int is_q8) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb = C / 32, np = nb / 2;
    const __m512i zero = _mm512_setzero_si512();
    __m512 dwv[CHUNK];
    float dws[2 * CHUNK];
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *row = ft__ggml_row(w, o, rowbuf);
        const ft_block_q8_0 *b8 = (const ft_block_q8_0 *)row;
        const ft_block_q4_0 *b4 = (const ft_block_q4_0 *)row;
        __m512 acc[NMAX];
        float corr[NMAX] = {0}, tail[NMAX] = {0};
        for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
        for (int64_t p0 = 0; p0 < np; p0 += CHUNK) {
            int nc = np - p0 < CHUNK ? (int)(np - p0) : CHUNK;
            for (int p = 0; p < nc; p++) {
                int64_t j = 2 * (p0 + p);
                dws[2 * p] = h2f(is_q8 ? b8[j].d : b4[j].d);
                dws[2 * p + 1] = h2f(is_q8 ? b8[j + 1].d : b4[j + 1].d);
                dwv[p] = two_scales(dws[2 * p], dws[2 * p + 1]);
            }
            for (int p = 0; p < nc; p++) {
                int64_t j = 2 * (p0 + p);
                const float *dxe = a->dxe + (size_t)(p0 + p) * 16;
                if (is_q8) {
                    __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b8[j].qs)),
                                                    _mm256_loadu_si256((const __m256i *)b8[j + 1].qs), 1);
                    __mmask64 neg = _mm512_movepi8_mask(wv);
                    __m512i wa = _mm512_abs_epi8(wv);
                    for (int n = 0; n < N; n++) {
                        __m512i xv = _mm512_loadu_si512(a->qs + (size_t)n * C + 32 * j);
                        __m512i dot = _mm512_dpbusd_epi32(zero, wa, _mm512_mask_sub_epi8(xv, neg, zero, xv));
                        __m512 sc = _mm512_mul_ps(dwv[p], _mm512_load_ps(dxe + (size_t)n * np * 16));
                        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[n]);
                    }
                } else {
                    __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(q4_0_nibbles(b4[j].qs)), q4_0_nibbles(b4[j + 1].qs), 1);
                    for (int n = 0; n < N; n++) {
                        __m512i dot = _mm512_dpbusd_epi32(zero, wv, _mm512_loadu_si512(a->qs + (size_t)n * C + 32 * j));
                        __m512 sc = _mm512_mul_ps(dwv[p], _mm512_load_ps(dxe + (size_t)n * np * 16));
                        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[n]);
                    }
                }
            }
            if (!is_q8)
                for (int n = 0; n < N; n++) corr[n] += dot_f32(dws, a->ds + n * nb + 2 * p0, 2 * nc);
        }
        if (nb & 1) {   /* an odd last block */
            int64_t j = nb - 1;
            float dw = h2f(is_q8 ? b8[j].d : b4[j].d);
            for (int n = 0; n < N; n++) {
                const int8_t *x = a->qs + (size_t)n * C + 32 * j;
                int32_t s = 0;
                if (is_q8) for (int k = 0; k < 32; k++) s += (int32_t)b8[j].qs[k] * x[k];
                else for (int k = 0; k < 16; k++) s += (int32_t)(b4[j].qs[k] & 0xF) * x[k] + (int32_t)(b4[j].qs[k] >> 4) * x[16 + k];
                tail[n] += dw * a->d[n * nb + j] * (float)s;
                if (!is_q8) corr[n] += dw * a->ds[n * nb + j];
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = _mm512_reduce_add_ps(acc[n]) + tail[n] - 8.0f * corr[n];
    }
}

static void fwd_q8_0(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    if (N <= 2) fwd1_q8_0(out, ldo, a, N, w, o0, o1);
    else fwd_q4_0_q8_0(out, ldo, a, N, w, o0, o1, 1);
}
static void fwd_q4_0(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    if (N <= 2) fwd1_q4_0(out, ldo, a, N, w, o0, o1);
    else fwd_q4_0_q8_0(out, ldo, a, N, w, o0, o1, 0);
}

static void fwd_q4_K(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = a->C, nb = C / 256, nb32 = C / 32;
    const __m512i zero = _mm512_setzero_si512();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t o = o0; o < o1; o++) {
        const ft_block_q4_K *b = (const ft_block_q4_K *)ft__ggml_row(w, o, rowbuf);
        __m512 acc[NMAX];
        float corr[NMAX] = {0};
        for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
            float sc[8], mn[8];
            for (int j = 0; j < 8; j++) {
                uint8_t s, m;
                ft__q4k_scale_min(j, b[i].scales, &s, &m);
                sc[j] = d * (float)s;
                mn[j] = dmin * (float)m;
            }
            for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
                __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                                _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
                __m512 dwv = two_scales(sc[2 * c], sc[2 * c + 1]);
                for (int n = 0; n < N; n++) {
                    __m512i xv = _mm512_loadu_si512(a->qs + (size_t)n * C + 256 * i + 64 * c);
                    __m512i dot = _mm512_dpbusd_epi32(zero, wv, xv);
                    __m512 scv = _mm512_mul_ps(dwv, _mm512_load_ps(a->dxe + ((size_t)n * (nb32 / 2) + 4 * i + c) * 16));
                    acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scv, acc[n]);
                }
            }
            __m256 mnv = _mm256_loadu_ps(mn);
            for (int n = 0; n < N; n++) {
                __m256 t = _mm256_mul_ps(mnv, _mm256_loadu_ps(a->ds + n * nb32 + 8 * i));
                __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
                h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                corr[n] += _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = _mm512_reduce_add_ps(acc[n]) - corr[n];
    }
}

static int gemm_q8(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1);

static void fwd_q8(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    /* whole interleaved groups through the group kernel, the other rows row by row */
    const int64_t gend = ft__ggml_groups(w) * 16;
    while (o0 < o1 && o0 < gend && o0 % 16 == 0 && o0 + 16 <= o1 && gemm_q8(out, ldo, a, N, w, o0, o0 + 16)) o0 += 16;
    if (o0 >= o1) return;
    switch (w->type) {
    case FT_GGML_Q8_0: fwd_q8_0(out, ldo, a, N, w, o0, o1); break;
    case FT_GGML_Q4_0: fwd_q4_0(out, ldo, a, N, w, o0, o1); break;
    case FT_GGML_Q4_K: fwd_q4_K(out, ldo, a, N, w, o0, o1); break;
    }
}

/* ---------------------------------------------------------------- many activation rows (prompts)
 * A tile of up to 16 weight rows is turned, block by block, into 8 registers W_k whose lane l holds the 4
 * weights 4k..4k+3 of row o0 + l (gathers: the transpose of 16 rows x 8 dwords), and the block's 16 f16
 * scales into one register. Every activation row n then costs 8 vpdpbusd with the activation's dword k
 * broadcast (lane l: the block dot product of row l and n), one conversion and one FMA with
 * d_w[l] * d_x[n]: 512 products in about 12 instructions, the tile read from memory once per call.
 *   Q8_0: the activation is the unsigned operand, as qs + 128; the chain starts at -128 * sum(w) per lane.
 *   Q4_0: the nibbles are the unsigned operand; the chain starts at -8 * sum(x) (the activation's xs). */
#define GEMM_NCHUNK 256

/* Q4_K, interleaved groups only: per super-block the 16 rows' d, dmin and packed 6-bit scales (3 dwords a
 * row) are decoded in registers; per sub-block j, W_k = the nibbles of quant dword 8 * (j / 2) + k (low for
 * even j, high for odd); per input row: 8 vpdpbusd, then acc += s * d sc_j d_x - dmin m_j ds_x. */
static int gemm_q4k(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    if (!(o0 < ft__ggml_groups(w) * 16) || o1 - o0 != 16) return 0;
    const int64_t C = a->C, nsb = C / 256, nb32 = C / 32;
    const uint8_t *gbase = (const uint8_t *)w->data + (size_t)o0 * w->row_bytes;
    const __m512i m4 = _mm512_set1_epi32(0x0F0F0F0F), m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    float acc[GEMM_NCHUNK][16] __attribute__((aligned(64)));
    for (int n0 = 0; n0 < N; n0 += GEMM_NCHUNK) {
        int nn = N - n0 < GEMM_NCHUNK ? N - n0 : GEMM_NCHUNK;
        memset(acc, 0, sizeof(float) * 16 * (size_t)nn);
        for (int64_t i = 0; i < nsb; i++) {
            const uint8_t *blk = gbase + (size_t)i * 16 * 144;
            if (i + 2 < nsb)   /* two super-blocks ahead: the decoding per byte is long enough to stall the stream */
                for (int off = 0; off < 16 * 144; off += 64) _mm_prefetch((const char *)blk + 2 * 16 * 144 + off, _MM_HINT_T0);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
            __m512i S0 = _mm512_loadu_si512(blk + 64), S1 = _mm512_loadu_si512(blk + 128), S2 = _mm512_loadu_si512(blk + 192);
            const uint8_t *qs = blk + 256;   /* 32 dwords x 16 rows */
            for (int j = 0; j < 8; j++) {
                __m512i sc, mn;
                if (j < 4) {
                    sc = _mm512_and_si512(_mm512_srli_epi32(S0, 8 * j), m63);
                    mn = _mm512_and_si512(_mm512_srli_epi32(S1, 8 * j), m63);
                } else {
                    int b = 8 * (j - 4);
                    sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(S2, b), m15),
                                         _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S0, b + 6), m3), 4));
                    mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(S2, b + 4), m15),
                                         _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S1, b + 6), m3), 4));
                }
                __m512 dsc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)), dmn = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn));
                __m512i W[8];
                for (int k = 0; k < 8; k++) {
                    __m512i q = _mm512_loadu_si512(qs + (size_t)(8 * (j / 2) + k) * 64);
                    W[k] = _mm512_and_si512(j & 1 ? _mm512_srli_epi32(q, 4) : q, m4);
                }
                for (int n = 0; n < nn; n++) {
                    const int32_t *x = (const int32_t *)(a->qs + (size_t)(n0 + n) * C + 256 * i + 32 * j);
                    __m512i s = _mm512_setzero_si512();
                    for (int k = 0; k < 8; k++) s = _mm512_dpbusd_epi32(s, W[k], _mm512_set1_epi32(x[k]));
                    size_t bi = (size_t)(n0 + n) * nb32 + 8 * i + j;
                    __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dsc, _mm512_set1_ps(a->d[bi])), _mm512_load_ps(acc[n]));
                    _mm512_store_ps(acc[n], _mm512_fnmadd_ps(dmn, _mm512_set1_ps(a->ds[bi]), t));
                }
            }
        }
        for (int n = 0; n < nn; n++)
            for (int l = 0; l < 16; l++) out[(size_t)(n0 + n) * ldo + o0 + l] = acc[n][l];
    }
    return 1;
}

static int gemm_q8(float *out, int64_t ldo, const ft__ggml_act *a, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    if (w->type == FT_GGML_Q4_K) return gemm_q4k(out, ldo, a, N, w, o0, o1);
    if (w->type != FT_GGML_Q8_0 && w->type != FT_GGML_Q4_0) return 0;
    const int is_q8 = w->type == FT_GGML_Q8_0;
    const int64_t C = a->C, nb = C / 32, bb = is_q8 ? 34 : 18;
    const int nr = (int)(o1 - o0);
    /* an interleaved group (ft_ggml_tensor_interleave): the same registers by plain loads */
    const int grp = o0 < ft__ggml_groups(w) * 16;
    const uint8_t *gbase = (const uint8_t *)w->data + (size_t)o0 * w->row_bytes;
    /* lane l reads row o0 + min(l, nr - 1): the extra lanes repeat the last row and are not stored */
    int32_t rowoff[16];
    for (int l = 0; l < 16; l++) rowoff[l] = (int32_t)((size_t)(l < nr ? l : nr - 1) * w->row_bytes);
    const __m512i vrow = _mm512_loadu_si512(rowoff);
    const __m512i m4 = _mm512_set1_epi32(0x0F0F0F0F), lo16 = _mm512_set1_epi32(0xFFFF);
    const __m512i ones = _mm512_set1_epi8(1);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)o0 * w->row_bytes;
    float acc[GEMM_NCHUNK][16] __attribute__((aligned(64)));
    for (int n0 = 0; n0 < N; n0 += GEMM_NCHUNK) {
        int nn = N - n0 < GEMM_NCHUNK ? N - n0 : GEMM_NCHUNK;
        memset(acc, 0, sizeof(float) * 16 * (size_t)nn);
        for (int64_t j = 0; j < nb; j++) {
            const uint8_t *blk = base + j * bb, *gblk = gbase + j * 16 * bb;
            __m512 dw;
            if (grp) dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)gblk));
            else dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(_mm512_i32gather_epi32(vrow, (const void *)blk, 1), lo16)));
            __m512i W[8], init = _mm512_setzero_si512();
            if (is_q8) {
                for (int k = 0; k < 8; k++) {
                    W[k] = grp ? _mm512_loadu_si512(gblk + 32 + 64 * k) : _mm512_i32gather_epi32(vrow, (const void *)(blk + 2 + 4 * k), 1);
                    init = _mm512_dpbusd_epi32(init, ones, W[k]);   /* sum of the block's weights per lane */
                }
                init = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_setzero_si512(), init), 7);   /* -128 * sum(w) */
            } else {
                for (int k = 0; k < 4; k++) {
                    __m512i q = grp ? _mm512_loadu_si512(gblk + 32 + 64 * k) : _mm512_i32gather_epi32(vrow, (const void *)(blk + 2 + 4 * k), 1);
                    W[k] = _mm512_and_si512(q, m4);
                    W[k + 4] = _mm512_and_si512(_mm512_srli_epi32(q, 4), m4);
                }
            }
            for (int n = 0; n < nn; n++) {
                const int32_t *x = (const int32_t *)((is_q8 ? (const void *)a->qu : (const void *)a->qs) + (size_t)(n0 + n) * C + 32 * j);
                __m512i s = is_q8 ? init : _mm512_set1_epi32(-8 * a->xs[(size_t)(n0 + n) * nb + j]);
                if (is_q8)
                    for (int k = 0; k < 8; k++) s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(x[k]), W[k]);
                else
                    for (int k = 0; k < 8; k++) s = _mm512_dpbusd_epi32(s, W[k], _mm512_set1_epi32(x[k]));
                __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(a->d[(size_t)(n0 + n) * nb + j]));
                _mm512_store_ps(acc[n], _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, _mm512_load_ps(acc[n])));
            }
        }
        for (int n = 0; n < nn; n++)
            for (int l = 0; l < nr; l++) out[(size_t)(n0 + n) * ldo + o0 + l] = acc[n][l];
    }
    return 1;
}

/* ---------------------------------------------------------------- dequantize (bit-identical to _ref) */

/* 32 values of a Q8_0 block: d * q */
INLINE void deq32_q8_0(const ft_block_q8_0 *b, __m512 *lo, __m512 *hi) {
    __m512 d = _mm512_set1_ps(h2f(b->d));
    *lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->qs))));
    *hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16)))));
}

/* 32 values of a Q4_0 block: d * (nibble - 8); values 0..15 from the low nibbles, 16..31 from the high */
INLINE void deq32_q4_0(const ft_block_q4_0 *b, __m512 *lo, __m512 *hi) {
    __m512 d = _mm512_set1_ps(h2f(b->d));
    __m128i q = _mm_loadu_si128((const __m128i *)b->qs), m4 = _mm_set1_epi8(0x0F), e8 = _mm_set1_epi8(8);
    __m128i l = _mm_sub_epi8(_mm_and_si128(q, m4), e8), h = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), e8);
    *lo = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(l)));
    *hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(h)));
}

/* 16 nibble values (bytes 0..15) as floats */
INLINE __m512 u8x16_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

static void deq_row(int type, const void *src, float *y, int64_t n) {
    if (type == FT_GGML_Q8_0) {
        const ft_block_q8_0 *b = src;
        for (int64_t i = 0; i < n / 32; i++) {
            __m512 lo, hi;
            deq32_q8_0(&b[i], &lo, &hi);
            _mm512_storeu_ps(y + 32 * i, lo);
            _mm512_storeu_ps(y + 32 * i + 16, hi);
        }
    } else if (type == FT_GGML_Q4_0) {
        const ft_block_q4_0 *b = src;
        for (int64_t i = 0; i < n / 32; i++) {
            __m512 lo, hi;
            deq32_q4_0(&b[i], &lo, &hi);
            _mm512_storeu_ps(y + 32 * i, lo);
            _mm512_storeu_ps(y + 32 * i + 16, hi);
        }
    } else if (type == FT_GGML_Q4_K) {
        const ft_block_q4_K *b = src;
        const __m128i m4 = _mm_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / 256; i++) {
            float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
            for (int c = 0; c < 4; c++) {
                uint8_t sc, m;
                ft__q4k_scale_min(2 * c, b[i].scales, &sc, &m);
                __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(dmin * (float)m);
                ft__q4k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
                __m512 d2 = _mm512_set1_ps(d * (float)sc), m2 = _mm512_set1_ps(dmin * (float)m);
                float *o = y + 256 * i + 64 * c;
                for (int h = 0; h < 2; h++) {
                    __m128i q = _mm_loadu_si128((const __m128i *)(b[i].qs + 32 * c + 16 * h));
                    __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
                    _mm512_storeu_ps(o + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d1, u8x16_ps(lo)), m1));
                    _mm512_storeu_ps(o + 32 + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d2, u8x16_ps(hi)), m2));
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- f32 activations */

static void fwd_f32(float *out, int64_t ldo, const float *inp, int N, const ft_ggml_tensor *w, int64_t o0, int64_t o1) {
    uint8_t rowbuf[FT__GGML_ROWBUF];
    const int64_t C = w->cols;
    float tmp[FT_QK_K] __attribute__((aligned(64)));
    const int bv = ft_ggml_block_values(w->type), bb = ft_ggml_block_bytes(w->type);
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *row = ft__ggml_row(w, o, rowbuf);
        __m512 acc[NMAX];
        for (int n = 0; n < N; n++) acc[n] = _mm512_setzero_ps();
        for (int64_t b = 0; b < C / bv; b++) {
            if (w->type == FT_GGML_Q4_K) {
                deq_row(w->type, row + b * bb, tmp, bv);
                for (int n = 0; n < N; n++) {
                    const float *x = inp + (size_t)n * C + b * bv;
                    for (int k = 0; k < 256; k += 16)
                        acc[n] = _mm512_fmadd_ps(_mm512_load_ps(tmp + k), _mm512_loadu_ps(x + k), acc[n]);
                }
                continue;
            }
            __m512 lo, hi;
            if (w->type == FT_GGML_Q8_0) deq32_q8_0((const ft_block_q8_0 *)(row + b * bb), &lo, &hi);
            else deq32_q4_0((const ft_block_q4_0 *)(row + b * bb), &lo, &hi);
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + 32 * b;
                acc[n] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(x), acc[n]);
                acc[n] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), acc[n]);
            }
        }
        for (int n = 0; n < N; n++) out[(size_t)n * ldo + o] = _mm512_reduce_add_ps(acc[n]);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

const ft__ggml_kernels ft__ggml_kernels_avx512 = {"avx512-vnni", fwd_f32, fwd_q8, gemm_q8, deq_row};
#else
const ft__ggml_kernels ft__ggml_kernels_avx512 = {"scalar", NULL, NULL, NULL, NULL};
#endif
