/* cpu/gemm_bf16.c — the bf16 GEMM of gemm_bf16.h on AVX-512: operands packed into the pair layout of
 * vdpbf16ps while they are rounded to bf16, a 12 x 32 register-blocked micro-kernel, OpenMP over
 * macro tiles. Two micro-kernels read the same packs: AVX512-BF16 (vdpbf16ps) and the AVX-512F fallback
 * (bf16 -> f32 by a shift, then two FMAs in vdpbf16ps's order), so both give the reference's bits.
 *
 * Blocking. K is cut into KC-long blocks (even, so pairs never straddle blocks). Per block:
 *   A pack: [Mpad rows][kpn words] ("rows": op(A) row-major, a word = the bf16 of k = 2p, 2p+1) when A
 *           is not transposed, or [kpn][Mpad] ("pairs") when it is; rows >= M are zero;
 *   B pack: strips of NR = 32 columns, [strip][kpn][32 words]; columns >= N are zero;
 * then every (MC x NC) macro tile of C runs its micro-kernels; a B strip (kpn x 128 bytes, 16 KiB at
 * KC = 256) stays in L1 across the MC rows, the A block (MC x KC bf16) in L2. C holds the running f32
 * sum between blocks, so the summation order is the reference's: no K is ever split across threads.
 * C is large (up to 12 MiB at GPT-2's widths) and leaves the caches between K blocks, so each micro-tile
 * prefetches the next one's C rows while it computes (before this, a wide forward product lost a quarter
 * of its time waiting for them), and the first K block of a product that assigns starts from the bias in
 * registers instead of reading a C initialised beforehand.
 * Packing reads its f32 source in streams (a B pair of rows from start to end, dealt out to the strips; a
 * transposed B through an [NR][kpn] word tile and gathers) and converts with vcvtne2ps2bf16 where the CPU
 * has it, else with integer rounding of the same bits. */
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef MR     /* (-DMR=.. -DNR=.. to try other tiles: 8 x 48, 6 x 64 and 14 x 32 measured no faster) */
#define MR 12   /* micro-tile rows: 12 x 2 accumulators + 2 B vectors = 26 of 32 zmm */
#define NR 32   /* micro-tile columns: two zmm of 16 f32 */
#endif
#define NV (NR / 16)
#ifndef KC
#define KC 256  /* K block (even) */
#endif
#define MC (8 * MR) /* macro-tile rows (8 micro-rows) */
#define NC 256  /* macro-tile columns (8 strips) */
/* ft_gemm_bf16_src promises its callback columns c0 / nc that are multiples of 64 (an NF4 block) */
_Static_assert(KC % 64 == 0, "K blocks must be whole NF4 blocks (gemm_bf16.h, ft_gemm_bf16_src)");

#define TGT_F __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TGT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* ------------------------------------------------------------------ instruction set */

static _Atomic int g_isa = -1;

ft_bf16_isa ft_bf16_isa_best(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        if (__builtin_cpu_supports("avx512bf16")) return FT_BF16_ISA_AVX512BF16;
        return FT_BF16_ISA_AVX512F;
    }
#endif
    return FT_BF16_ISA_SCALAR;
}

const char *ft_bf16_isa_name(ft_bf16_isa isa) {
    switch (isa) {
    case FT_BF16_ISA_SCALAR: return "scalar";
    case FT_BF16_ISA_AVX512F: return "avx512f";
    case FT_BF16_ISA_AVX512BF16: return "avx512bf16";
    }
    return "?";
}

int ft_bf16_isa_set(ft_bf16_isa isa) {
    if ((int)isa < FT_BF16_ISA_SCALAR || (int)isa > FT_BF16_ISA_AVX512BF16)
        return ft_error(FT_ERR_INVALID, "bf16: unknown instruction set %d", (int)isa);
    if (isa > ft_bf16_isa_best())
        return ft_error(FT_ERR_UNSUPPORTED, "bf16: this CPU lacks %s (best: %s)", ft_bf16_isa_name(isa),
                        ft_bf16_isa_name(ft_bf16_isa_best()));
    atomic_store(&g_isa, (int)isa);
    return FT_OK;
}

ft_bf16_isa ft_bf16_isa_get(void) {
    int v = atomic_load(&g_isa);
    if (v >= 0) return (ft_bf16_isa)v;
    ft_bf16_isa best = ft_bf16_isa_best(), isa = best;
    const char *env = getenv("FT_BF16_ISA");
    if (env && *env)
        for (int i = FT_BF16_ISA_SCALAR; i <= FT_BF16_ISA_AVX512BF16; i++)
            if (strcmp(env, ft_bf16_isa_name((ft_bf16_isa)i)) == 0 && i <= (int)best) isa = (ft_bf16_isa)i;
    int expected = -1;
    atomic_compare_exchange_strong(&g_isa, &expected, (int)isa);
    return (ft_bf16_isa)atomic_load(&g_isa);
}

/* ------------------------------------------------------------------ packing (AVX-512F) */

/* 16 f32 -> 16 bf16 in the low halves of 32-bit lanes, bit-exact with vcvtneps2bf16 (ft_bf16_round) */
TGT_F static inline __m512i cvt_lo16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i absu = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(absu, _mm512_set1_epi32(0x7f800000));
    __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __m512i hi = _mm512_srli_epi32(u, 16);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
    r = _mm512_mask_mov_epi32(r, tiny, _mm512_and_si512(hi, _mm512_set1_epi32(0x8000)));
    return r;
}

static inline __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* words dst[p] = bf16(src[2p]) | bf16(src[2p+1]) << 16 for p < ceil(n/2) (src[n] read as 0 when n is odd) */
TGT_F static void pack_row_words_f(uint32_t *dst, const float *src, int n) {
    int k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256i lo = _mm512_cvtepi32_epi16(cvt_lo16(_mm512_loadu_ps(src + k)));
        __m256i hi = _mm512_cvtepi32_epi16(cvt_lo16(_mm512_loadu_ps(src + k + 16)));
        _mm256_storeu_si256((__m256i *)(dst + k / 2), lo);
        _mm256_storeu_si256((__m256i *)(dst + k / 2 + 8), hi);
    }
    for (; k < n; k += 2) {
        uint32_t lo = ft_bf16_round(src[k]), hi = k + 1 < n ? ft_bf16_round(src[k + 1]) : 0;
        dst[k / 2] = lo | hi << 16;
    }
}

/* words dst[j] = bf16(r0[j]) | bf16(r1[j]) << 16 for j < n (r1 NULL: zeros) */
TGT_F static void pack_pair_words_f(uint32_t *dst, const float *r0, const float *r1, int n) {
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = tail_mask(n - j);
        __m512i a = cvt_lo16(_mm512_maskz_loadu_ps(m, r0 + j));
        __m512i b = r1 ? _mm512_slli_epi32(cvt_lo16(_mm512_maskz_loadu_ps(m, r1 + j)), 16) : _mm512_setzero_si512();
        if (m == 0xffff) _mm512_storeu_si512(dst + j, _mm512_or_si512(a, b)); /* masked stores are slow on some CPUs */
        else _mm512_mask_storeu_epi32(dst + j, m, _mm512_or_si512(a, b));
    }
}

/* the same two with AVX512-BF16's own conversion (vcvtne2ps2bf16: the same bits, a few instructions fewer) */
TGT_BF16 static void pack_row_words_bf16(uint32_t *dst, const float *src, int n) {
    int k = 0;
    for (; k + 32 <= n; k += 32)
        _mm512_storeu_si512(dst + k / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k)));
    for (; k < n; k += 2) {
        uint32_t lo = ft_bf16_round(src[k]), hi = k + 1 < n ? ft_bf16_round(src[k + 1]) : 0;
        dst[k / 2] = lo | hi << 16;
    }
}
TGT_BF16 static void pack_pair_words_bf16(uint32_t *dst, const float *r0, const float *r1, int n) {
    /* cvtne2ps gives [r0 x16 | r1 x16]; the permutation interleaves them into words r0[j] | r1[j] << 16 */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int j = 0;
    if (r1)
        for (; j + 16 <= n; j += 16) /* whole vectors without masks (masked stores are slow on AMD Zen) */
            _mm512_storeu_si512(dst + j, _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + j),
                                                                                                        _mm512_loadu_ps(r0 + j))));
    for (; j < n; j += 16) {
        __mmask16 m = tail_mask(n - j);
        __m512 a = _mm512_maskz_loadu_ps(m, r0 + j), b = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
        __m512i v = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        _mm512_mask_storeu_epi32(dst + j, m, v);
    }
}

/* nat: the CPU has AVX512-BF16 */
static void pack_row_words(uint32_t *dst, const float *src, int n, int nat) {
    if (nat) pack_row_words_bf16(dst, src, n);
    else pack_row_words_f(dst, src, n);
}
static void pack_pair_words(uint32_t *dst, const float *r0, const float *r1, int n, int nat) {
    if (nat) pack_pair_words_bf16(dst, r0, r1, n);
    else pack_pair_words_f(dst, r0, r1, n);
}

/* A block k0..k0+kc of op(A) into ap. rows layout (transA 0): ap[m*kpn + p]; pairs (transA 1): ap[p*Mpad + m] */
static void pack_a(uint32_t *ap, const float *A, int lda, int transA, int M, int Mpad, int k0, int kc, int nat) {
    int kpn = (kc + 1) / 2;
    if (!transA) {
#pragma omp for schedule(static) nowait
        for (int m = 0; m < Mpad; m++) {
            if (m < M) pack_row_words(ap + (size_t)m * kpn, A + (size_t)m * lda + k0, kc, nat);
            else memset(ap + (size_t)m * kpn, 0, sizeof(uint32_t) * (size_t)kpn);
        }
    } else {
#pragma omp for schedule(static) nowait
        for (int p = 0; p < kpn; p++) {
            int k = k0 + 2 * p;
            uint32_t *d = ap + (size_t)p * Mpad;
            pack_pair_words(d, A + (size_t)k * lda, 2 * p + 1 < kc ? A + (size_t)(k + 1) * lda : NULL, M, nat);
            if (Mpad > M) memset(d + M, 0, sizeof(uint32_t) * (size_t)(Mpad - M));
        }
    }
}

/* per-thread scratch of the transposed B pack: an [NR][KC/2] tile of words */
#define TMP_WORDS (NR * ((KC + 1) / 2) + 16)

/* d[p][j] = t[j][p] for j < NR, p < kpn (t rows kpn words apart) */
TGT_F static void transpose_words(uint32_t *d, const uint32_t *t, int kpn) {
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(kpn));
    for (int p = 0; p < kpn; p++)
        for (int j = 0; j < NR; j += 16)
            _mm512_storeu_si512(d + (size_t)p * NR + j, _mm512_i32gather_epi32(idx, (const void *)(t + (size_t)j * kpn + p), 4));
}

/* B block k0..k0+kc of op(B) into strips bp[s][p][32]. B is read from memory, or (src != NULL) asked for by
 * blocks of f32 values written into the thread's scratch f[fn floats] (ft_gemm_bf16_src: a quantized weight
 * dequantized while it is packed), then packed from there: the same words either way. */
static void pack_b(uint32_t *bp, const float *B, int ldb, const ft_gemm_bf16_src *src, int transB, int N, int k0, int kc,
                   uint32_t *tmp, float *fs, size_t fn, int nat) {
    int kpn = (kc + 1) / 2, ns = (N + NR - 1) / NR;
    float *f = src ? fs + (size_t)omp_get_thread_num() * fn : NULL;
    if (!transB) {
        /* a pair of rows at a time, read from start to end (streams), its words dealt out to the strips */
#pragma omp for schedule(static)
        for (int p = 0; p < kpn; p++) {
            const float *r0, *r1;
            if (src) { /* rows k0+2p (and k0+2p+1) of B [K, N], whole */
                int nr = 2 * p + 1 < kc ? 2 : 1;
                src->rows(src->ctx, f, (size_t)N, k0 + 2 * p, nr, 0, N);
                r0 = f;
                r1 = nr == 2 ? f + N : NULL;
            } else {
                r0 = B + (size_t)(k0 + 2 * p) * ldb;
                r1 = 2 * p + 1 < kc ? r0 + ldb : NULL;
            }
            for (int s = 0; s < ns; s++) {
                int n0 = s * NR, nn = N - n0 < NR ? N - n0 : NR;
                uint32_t *d = bp + ((size_t)s * kpn + p) * NR;
                pack_pair_words(d, r0 + n0, r1 ? r1 + n0 : NULL, nn, nat);
                if (nn < NR) memset(d + nn, 0, sizeof(uint32_t) * (size_t)(NR - nn));
            }
        }
    } else {
        /* B[k][n] = Bt[n][k]: the strip's NR rows of Bt convert to words (a [NR][kpn] tile), then each word
         * column p of the tile is gathered into the strip's row p */
        uint32_t *t = tmp + (size_t)omp_get_thread_num() * TMP_WORDS;
#pragma omp for schedule(static)
        for (int s = 0; s < ns; s++) {
            int n0 = s * NR, nn = N - n0 < NR ? N - n0 : NR;
            uint32_t *d = bp + (size_t)s * kpn * NR;
            if (src) src->rows(src->ctx, f, (size_t)kc, n0, nn, k0, kc); /* rows n0.. of Bt [N, K], columns k0.. */
            for (int j = 0; j < NR; j++) {
                if (j < nn) pack_row_words(t + (size_t)j * kpn, src ? f + (size_t)j * kc : B + (size_t)(n0 + j) * ldb + k0, kc, nat);
                else memset(t + (size_t)j * kpn, 0, sizeof(uint32_t) * (size_t)kpn);
            }
            transpose_words(d, t, kpn);
        }
    }
}

/* ------------------------------------------------------------------ micro-kernels
 * c[MR][NR] (row stride ldc) = (c0 ? c0[j] : c[i][j]) + sum_p a-words x b-words; a word of row i at
 * a[i*sm + p*sk]; b[p][32]. c0 (NR floats: the bias, or zeros) starts the first K block of a product that
 * does not accumulate, so C is not read (and need not be initialised) there. pf: the next micro-tile's C
 * (row stride ldc, pfr rows), prefetched into L1 during the first MR iterations: its rows are ldc apart,
 * which the hardware prefetchers do not follow, and loading them cold at the start of the next tile would
 * stall its first dot products on memory (C is up to 12 MiB: it leaves the caches between K blocks). A row
 * of the tile is 128 bytes: three cache lines unless it starts on a line (an LM head's C, ldc = 50257), so
 * the line of its last element is fetched too (measured: without it the LM head's forward lost 5%, with
 * it gained 20%). */

#define PF_ROW(p)                                                                                             \
    do {                                                                                                      \
        if ((p) < pfr) {                                                                                      \
            _mm_prefetch((const char *)(pf + (size_t)(p) * ldc), _MM_HINT_T0);                               \
            _mm_prefetch((const char *)(pf + (size_t)(p) * ldc + 16), _MM_HINT_T0);                          \
            _mm_prefetch((const char *)(pf + (size_t)(p) * ldc + NR - 1), _MM_HINT_T0);                      \
        }                                                                                                     \
    } while (0)

TGT_BF16 static inline __attribute__((always_inline)) void ukr_bf16(int kpn, const uint32_t *a, size_t sm, size_t sk,
                                                                      const uint32_t *b, float *c, size_t ldc,
                                                                      const float *c0, const float *pf, int pfr) {
    __m512 acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = c0 ? _mm512_loadu_ps(c0 + 16 * j) : _mm512_loadu_ps(c + i * ldc + 16 * j);
    for (int p = 0; p < kpn; p++) {
        if (p < MR) PF_ROW(p);
        __m512bh bv[NV];
        for (int j = 0; j < NV; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + 16 * j);
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * sm]);
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
        }
        a += sk;
        b += NR;
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
}
TGT_BF16 static void ukr_bf16_rows(int kpn, const uint32_t *a, size_t sm, const uint32_t *b, float *c, size_t ldc,
                                   const float *c0, const float *pf, int pfr) {
    ukr_bf16(kpn, a, sm, 1, b, c, ldc, c0, pf, pfr);
}
TGT_BF16 static void ukr_bf16_pairs(int kpn, const uint32_t *a, size_t sk, const uint32_t *b, float *c, size_t ldc,
                                    const float *c0, const float *pf, int pfr) {
    ukr_bf16(kpn, a, 1, sk, b, c, ldc, c0, pf, pfr);
}

/* AVX-512F: a word w holds bf16 e (low) and o (high): as f32, e = w << 16 and o = w & 0xffff0000 */
TGT_F static inline __attribute__((always_inline)) void ukr_f32(int kpn, const uint32_t *a, size_t sm, size_t sk,
                                                                  const uint32_t *b, float *c, size_t ldc,
                                                                  const float *c0, const float *pf, int pfr) {
    __m512 acc[MR][NV];
    const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = c0 ? _mm512_loadu_ps(c0 + 16 * j) : _mm512_loadu_ps(c + i * ldc + 16 * j);
    for (int p = 0; p < kpn; p++) {
        if (p < MR) PF_ROW(p);
        __m512 e[NV], o[NV];
        for (int j = 0; j < NV; j++) {
            __m512i w = _mm512_loadu_si512(b + 16 * j);
            e[j] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
            o[j] = _mm512_castsi512_ps(_mm512_and_si512(w, himask));
        }
        for (int i = 0; i < MR; i++) {
            uint32_t w = a[i * sm], ew = w << 16, ow = w & 0xffff0000u;
            float ef, of;
            memcpy(&ef, &ew, 4);
            memcpy(&of, &ow, 4);
            __m512 ae = _mm512_set1_ps(ef), ao = _mm512_set1_ps(of);
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(ao, o[j], acc[i][j]);
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(ae, e[j], acc[i][j]);
        }
        a += sk;
        b += NR;
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
}
TGT_F static void ukr_f32_rows(int kpn, const uint32_t *a, size_t sm, const uint32_t *b, float *c, size_t ldc,
                               const float *c0, const float *pf, int pfr) {
    ukr_f32(kpn, a, sm, 1, b, c, ldc, c0, pf, pfr);
}
TGT_F static void ukr_f32_pairs(int kpn, const uint32_t *a, size_t sk, const uint32_t *b, float *c, size_t ldc,
                                const float *c0, const float *pf, int pfr) {
    ukr_f32(kpn, a, 1, sk, b, c, ldc, c0, pf, pfr);
}

/* ------------------------------------------------------------------ driver */

size_t ft_gemm_bf16_workspace_bytes(int M, int N, int K) {
    if (M <= 0 || N <= 0 || K <= 0) return 0;
    int kc = K < KC ? K : KC, kpn = (kc + 1) / 2;
    size_t Mpad = (size_t)(M + MR - 1) / MR * MR, Npad = (size_t)(N + NR - 1) / NR * NR;
    return sizeof(uint32_t) * ((Mpad + Npad) * (size_t)kpn + (size_t)omp_get_max_threads() * TMP_WORDS) + 64;
}

/* one micro-tile: rows m0.. (mr valid), strip s (nr valid). bias0: the first K block of a product that
 * assigns (bias or NULL for zeros); else NULL and the tile adds to C. pf / pfr: the next tile's C (above). */
static void tile(int isa, int transA, int kpn, const uint32_t *ap, int Mpad, const uint32_t *bp, float *C, int ldc,
                 int m0, int mr, int s, int nr, int first, const float *bias, const float *pf, int pfr) {
    const uint32_t *b = bp + (size_t)s * kpn * NR;
    const uint32_t *a = transA ? ap + m0 : ap + (size_t)m0 * kpn;
    float *c = C + (size_t)m0 * ldc + (size_t)s * NR;
    float t[MR * NR], c0[NR];
    const float *pc0 = NULL;
    if (first) { /* the initial value of every row: bias[n] or 0 (columns >= nr padded with zeros) */
        memset(c0, 0, sizeof c0);
        if (bias) memcpy(c0, bias + (size_t)s * NR, sizeof(float) * (size_t)nr);
        pc0 = c0;
    }
    float *cc = c;
    size_t ldcc = (size_t)ldc;
    if (mr < MR || nr < NR) { /* an edge: through a full-size tile on the stack */
        memset(t, 0, sizeof t);
        if (!first)
            for (int i = 0; i < mr; i++) memcpy(t + i * NR, c + (size_t)i * ldc, sizeof(float) * (size_t)nr);
        cc = t;
        ldcc = NR;
    }
    if (isa == FT_BF16_ISA_AVX512BF16) {
        if (transA) ukr_bf16_pairs(kpn, a, (size_t)Mpad, b, cc, ldcc, pc0, pf, pfr);
        else ukr_bf16_rows(kpn, a, (size_t)kpn, b, cc, ldcc, pc0, pf, pfr);
    } else {
        if (transA) ukr_f32_pairs(kpn, a, (size_t)Mpad, b, cc, ldcc, pc0, pf, pfr);
        else ukr_f32_rows(kpn, a, (size_t)kpn, b, cc, ldcc, pc0, pf, pfr);
    }
    if (cc == t)
        for (int i = 0; i < mr; i++) memcpy(c + (size_t)i * ldc, t + i * NR, sizeof(float) * (size_t)nr);
}

/* C[M,N] = bias (or 0) */
static void init_c(float *C, int ldc, int M, int N, const float *bias) {
    for (int m = 0; m < M; m++) {
        float *c = C + (size_t)m * ldc;
        if (bias) memcpy(c, bias, sizeof(float) * (size_t)N);
        else memset(c, 0, sizeof(float) * (size_t)N);
    }
}

/* B as one f32 matrix (the scalar fallback): stored [K, N] (transB 0) or [N, K]; NULL when out of memory */
static float *materialize_b(const ft_gemm_bf16_src *src, int transB, int N, int K) {
    int rows = transB ? N : K, cols = transB ? K : N;
    float *b = malloc(sizeof(float) * (size_t)rows * (size_t)cols + 1);
    if (b) src->rows(src->ctx, b, (size_t)cols, 0, rows, 0, cols);
    return b;
}

/* the GEMM with B in memory (src NULL) or produced by src */
static void gemm(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, const ft_gemm_bf16_src *src,
                 int transB, int M, int N, int K, int accumulate, const float *bias) {
    if (M <= 0 || N <= 0) return;
    int isa = (int)ft_bf16_isa_get();
    if (K <= 0) {
        if (!accumulate) init_c(C, ldc, M, N, bias);
        return;
    }
    int kc0 = K < KC ? K : KC, kpn0 = (kc0 + 1) / 2;
    int Mpad = (M + MR - 1) / MR * MR, Npad = (N + NR - 1) / NR * NR;
    /* a source's scratch per thread: a strip of the transposed B (NR x kc) or a pair of rows of B (2 x N) */
    size_t fn = src ? (transB ? (size_t)NR * (size_t)kc0 : 2 * (size_t)N) + 16 : 0;
    uint32_t *ap = isa == FT_BF16_ISA_SCALAR ? NULL : aligned_alloc(64, ft_gemm_bf16_workspace_bytes(M, N, K) / 64 * 64);
    float *fs = src && ap ? malloc(sizeof(float) * fn * (size_t)omp_get_max_threads()) : NULL;
    if (!ap || (src && !fs)) { /* no AVX-512, or out of memory: the reference loop gives the same bits */
        free(ap);
        float *b = src ? materialize_b(src, transB, N, K) : NULL;
        if (src && b) ft_ref_gemm_bf16(C, ldc, A, lda, transA, b, transB ? K : N, transB, M, N, K, accumulate, bias);
        else if (!src) ft_ref_gemm_bf16(C, ldc, A, lda, transA, B, ldb, transB, M, N, K, accumulate, bias);
        free(b);
        return;
    }
    uint32_t *bp = ap + (size_t)Mpad * kpn0, *tmp = bp + (size_t)Npad * kpn0;
    int mt = (M + MC - 1) / MC, nt = (N + NC - 1) / NC;
    /* row blocks of A outer (each A block stays in L2 while B passes), unless the B pack is both the larger
     * and too large for the caches (an LM head's forward: N = 50257, 25 MiB): then B panels outer, so that
     * B is read from memory once and the smaller A passes over each panel */
    int n_major = Npad > Mpad && (size_t)Npad * kpn0 * 4 > ((size_t)4 << 20), nat = isa == FT_BF16_ISA_AVX512BF16;
    double flops = 2.0 * M * N * K;
    /* one parallel region per call; per K block two barriers: after the packing, after the products */
#pragma omp parallel num_threads(flops >= 4e6 ? omp_get_max_threads() : 1)
    {
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, kpn = (kc + 1) / 2, first = k0 == 0 && !accumulate;
            pack_a(ap, A, lda, transA, M, Mpad, k0, kc, nat);
            pack_b(bp, B, ldb, src, transB, N, k0, kc, tmp, fs, fn, nat); /* ends with the barrier */
#pragma omp for schedule(dynamic, 1)
            for (int ti = 0; ti < mt * nt; ti++) {
                int mi = n_major ? ti % mt : ti / nt, ni = n_major ? ti / mt : ti % nt;
                int m_beg = mi * MC, mend = (mi + 1) * MC < M ? (mi + 1) * MC : M;
                int s_end = ((ni + 1) * NC < N ? (ni + 1) * NC : N);
                for (int n0 = ni * NC; n0 < s_end; n0 += NR)
                    for (int m0 = m_beg; m0 < mend; m0 += MR) {
                        /* the next tile: the next rows of this strip, else the first rows of the next strip */
                        int pm = m0 + MR < mend ? m0 + MR : m_beg, pn = m0 + MR < mend ? n0 : n0 + NR;
                        int pfr = pn < s_end ? (mend - pm < MR ? mend - pm : MR) : 0;
                        tile(isa, transA, kpn, ap, Mpad, bp, C, ldc, m0, mend - m0 < MR ? mend - m0 : MR, n0 / NR,
                             s_end - n0 < NR ? s_end - n0 : NR, first, bias, C + (size_t)pm * ldc + pn, pfr);
                    }
            }
        }
    }
    free(fs);
    free(ap);
}

void ft_cpu_gemm_bf16(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, int transB,
                      int M, int N, int K, int accumulate, const float *bias) {
    gemm(C, ldc, A, lda, transA, B, ldb, NULL, transB, M, N, K, accumulate, bias);
}

void ft_cpu_gemm_bf16_src(float *C, int ldc, const float *A, int lda, int transA, const ft_gemm_bf16_src *B, int transB,
                          int M, int N, int K, int accumulate, const float *bias) {
    gemm(C, ldc, A, lda, transA, NULL, 0, B, transB, M, N, K, accumulate, bias);
}

/* ------------------------------------------------------------------ the linear layer */

void ft_cpu_matmul_bf16_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    ft_cpu_gemm_bf16(out, OC, inp, C, 0, w, C, 1, N, OC, C, 0, bias);
}

void ft_cpu_matmul_bf16_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, int N, int C, int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp) ft_cpu_gemm_bf16(dinp, C, dout, OC, 0, w, C, 0, N, C, OC, 0, NULL);
    if (dw) ft_cpu_gemm_bf16(dw, C, dout, OC, 1, inp, C, 0, OC, C, N, 1, NULL);
    if (dbias) ft_cpu_bias_backward(ctx, dbias, dout, N, OC);
}
