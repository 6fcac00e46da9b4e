/* cpu/gemm_bf16.c — the bf16 GEMM of gemm_bf16.h on AVX-512: operands packed into the pair layout of
 * vdpbf16ps while they are rounded to bf16, a 12 x 32 register-blocked micro-kernel, OpenMP over
 * macro tiles. Two micro-kernels read the same packs: AVX512-BF16 (vdpbf16ps) and the AVX-512F fallback
 * (bf16 -> f32 by a shift, then two FMAs in vdpbf16ps's order), so both give the reference's bits.
 *
 * Blocking (plan_for). K is cut into blocks as long as possible: the whole K up to KC_MAX = 1536 (GPT-2
 * 124M's products of K = 768 and 1024), else equal blocks (2 x 1152, 2 x 1536, and 33 x 1536 for the LM
 * head's input gradient; blocks of 3072 measured 1-4% slower: B strip and A block fit L2 worse); a
 * micro-tile runs a whole block with its 12 x 32 C tile in registers, so C is written once per block
 * (once in all, without being read, for a product that assigns) and the kernel's per-tile cost (C loads
 * and stores, loop set-up) is spread over up to 768 steps instead of 128 (measured on L1/L2-resident
 * packs: 93% of the peak at 128 steps, 97-98% from 256 on). The packs of one block, A [Mpad x kc] and
 * B [kc x Npad] in bf16, must stay within PACK_BUDGET (16 MiB): where they would not, the larger of M
 * and N is cut into chunks (an LM head's 50257 rows or columns) and, with one K block, the other operand
 * is packed once for all chunks;
 * M is never chunked with several K blocks (a source B would be asked for its values more than once).
 * Per chunk and K block:
 *   A pack: micro-panels of MR rows, [Mpad / MR][kpn][MR] words (a word = the bf16 of k = 2p, 2p+1; rows
 *           >= M zero): the kernel reads the MR words of step p from one pointer, in order;
 *   B pack: strips of NR = 32 columns, [strip][kpn][32 words]; columns >= N are zero;
 * then every (MC x NC) macro tile of C runs its micro-kernels (B strip from L1/L2 across the MC rows, the
 * A block in L2). C holds the running f32 sum between blocks, so the summation order is the reference's:
 * no K is ever split across threads, and nothing in the plan depends on the thread count. Where C is read
 * (later blocks, accumulating products), each micro-tile prefetches the next one's C rows while it
 * computes.
 * Packing reads its f32 source in streams and converts with vcvtne2ps2bf16 where the CPU has it, else
 * with integer rounding of the same bits: a B pair of rows from start to end, dealt out to the strips; a
 * transposed operand (A's rows into panels, a transposed B's rows into strips) 16 rows x 32 values at a
 * time, converted to 16 x 16 words and transposed in registers; a transposed A by pairs of its rows,
 * dealt out to 16 panels at a time.
 * The packing workspace is kept between calls (ws_take / ws_give).
 * ft__gemm_bf16_words (gemm_bf16_internal.h, near the end): the products of the bf16 attention on operands
 * it converted once, serial, with A read in place as rows of words or as pairs of rows (its own kernels).
 * The linear layer on top of it (ft_cpu_matmul_bf16_*) is in matmul_bf16.c. */
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"
#include "ops/cpu/gelu_avx512.h"

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
#ifndef KC_MAX
#define KC_MAX 1536 /* longest K block: a micro-tile runs a whole block with C in registers */
#endif
#define KC_MIN 256   /* shortest K block (unless K is shorter) */
#define PACK_BUDGET ((size_t)16 << 20) /* bytes of packed A and B per chunk and K block (plan_for) */
#define KS 256       /* the packs convert K in pieces of KS through a per-thread scratch */
#define MC (8 * MR) /* macro-tile rows (8 micro-rows), fewer for long K blocks (A_L2) */
#ifndef A_L2
#define A_L2 (384 << 10) /* bytes of an A block (macro-tile rows x K block), to stay in L2 with a B strip */
#endif
#ifndef NC
#define NC 256  /* macro-tile columns (8 strips) */
#endif
/* ft_gemm_bf16_src promises its callback columns c0 / nc that are multiples of 64 (an NF4 block) */
_Static_assert(KC_MIN % 64 == 0 && KS % 64 == 0, "K blocks must be whole NF4 blocks (gemm_bf16.h, ft_gemm_bf16_src)");

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

/* words dst[j] = bf16(r0[j]) | bf16(r1[j]) << 16 for j < n (r1 NULL: zeros) */
TGT_F static void pack_pair_words_f(uint32_t *dst, const float *r0, const float *r1, int n, int nt) {
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = tail_mask(n - j);
        __m512i a = cvt_lo16(_mm512_maskz_loadu_ps(m, r0 + j));
        __m512i b = r1 ? _mm512_slli_epi32(cvt_lo16(_mm512_maskz_loadu_ps(m, r1 + j)), 16) : _mm512_setzero_si512();
        if (m == 0xffff && nt) _mm512_stream_si512((__m512i *)(dst + j), _mm512_or_si512(a, b));
        else if (m == 0xffff) _mm512_storeu_si512(dst + j, _mm512_or_si512(a, b)); /* masked stores are slow on some CPUs */
        else _mm512_mask_storeu_epi32(dst + j, m, _mm512_or_si512(a, b));
    }
}

/* the same with AVX512-BF16's own conversion (vcvtne2ps2bf16: the same bits, a few instructions fewer) */
TGT_BF16 static void pack_pair_words_bf16(uint32_t *dst, const float *r0, const float *r1, int n, int nt) {
    /* cvtne2ps gives [r0 x16 | r1 x16]; the permutation interleaves them into words r0[j] | r1[j] << 16 */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int j = 0;
    if (r1)
        for (; j + 16 <= n; j += 16) { /* whole vectors without masks (masked stores are slow on AMD Zen) */
            __m512i v = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + j), _mm512_loadu_ps(r0 + j)));
            if (nt) _mm512_stream_si512((__m512i *)(dst + j), v);
            else _mm512_storeu_si512(dst + j, v);
        }
    for (; j < n; j += 16) {
        __mmask16 m = tail_mask(n - j);
        __m512 a = _mm512_maskz_loadu_ps(m, r0 + j), b = r1 ? _mm512_maskz_loadu_ps(m, r1 + j) : _mm512_setzero_ps();
        __m512i v = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        _mm512_mask_storeu_epi32(dst + j, m, v);
    }
}

/* nat: the CPU has AVX512-BF16; nt: whole vectors with streaming stores (dst 64-byte aligned: a weight pack's
 * refresh, read back only by the next step's products) */
static void pack_pair_words_nt(uint32_t *dst, const float *r0, const float *r1, int n, int nat, int nt) {
    if (nat) pack_pair_words_bf16(dst, r0, r1, n, nt);
    else pack_pair_words_f(dst, r0, r1, n, nt);
}
static void pack_pair_words(uint32_t *dst, const float *r0, const float *r1, int n, int nat) { pack_pair_words_nt(dst, r0, r1, n, nat, 0); }

/* ---- transposing packs: 16 rows of f32 (a panel of A's rows, half a strip of a transposed B) become, per
 * step p, one vector of 16 words: row j's word p in lane j. Each row's 32 floats convert to its 16 words
 * (one vector), then a 16 x 16 transpose of 32-bit elements in registers. */

static inline __mmask16 lane_mask(int n) { return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* r[j] lane i -> r[i] lane j */
TGT_F static inline __attribute__((always_inline)) void tr16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 4) { /* 4 x 4 transposes inside each 128-bit lane */
        __m512i t0 = _mm512_unpacklo_epi32(r[i], r[i + 1]), t1 = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        __m512i t2 = _mm512_unpacklo_epi32(r[i + 2], r[i + 3]), t3 = _mm512_unpackhi_epi32(r[i + 2], r[i + 3]);
        t[i] = _mm512_unpacklo_epi64(t0, t2);
        t[i + 1] = _mm512_unpackhi_epi64(t0, t2);
        t[i + 2] = _mm512_unpacklo_epi64(t1, t3);
        t[i + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    for (int c = 0; c < 4; c++) { /* then the 4 x 4 transpose of the 128-bit lanes */
        __m512i u0 = _mm512_shuffle_i32x4(t[c], t[4 + c], 0x44), u1 = _mm512_shuffle_i32x4(t[c], t[4 + c], 0xee);
        __m512i v0 = _mm512_shuffle_i32x4(t[8 + c], t[12 + c], 0x44), v1 = _mm512_shuffle_i32x4(t[8 + c], t[12 + c], 0xee);
        r[c] = _mm512_shuffle_i32x4(u0, v0, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(u0, v0, 0xdd);
        r[8 + c] = _mm512_shuffle_i32x4(u1, v1, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(u1, v1, 0xdd);
    }
}

/* the 16 words of s[0..kv) (kv <= 32; missing values read as 0) */
TGT_BF16 static inline __m512i words16_bf16(const float *s, int kv) {
    if (kv >= 32) return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
    return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(lane_mask(kv - 16), s + 16), _mm512_maskz_loadu_ps(lane_mask(kv), s));
}
TGT_F static inline __m512i words16_f(const float *s, int kv) {
    __m256i lo = _mm512_cvtepi32_epi16(cvt_lo16(_mm512_maskz_loadu_ps(lane_mask(kv), s)));
    __m256i hi = _mm512_cvtepi32_epi16(cvt_lo16(_mm512_maskz_loadu_ps(lane_mask(kv - 16), s + 16)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* d[p * dstride + j] = word p of row j (src + j * ld, kn values) for p < ceil(kn / 2), j < lanes (rows j >= nr:
 * zeros). lanes < 16 (an A panel): each step's vector is stored whole, its extra lanes overwritten by the next
 * step, except the last step's (masked). */
#define TPACK(NAME, TGT, W16)                                                                                  \
    TGT static void NAME(uint32_t *d, size_t dstride, int lanes, const float *src, size_t ld, int nr, int kn, int nt) { \
        int wn = (kn + 1) / 2;                                                                                 \
        for (int k = 0; k < kn; k += 32) {                                                                     \
            __m512i r[16];                                                                                     \
            int kv = kn - k < 32 ? kn - k : 32, p0 = k / 2, pn = wn - p0 < 16 ? wn - p0 : 16;                  \
            for (int j = 0; j < 16; j++) r[j] = j < nr ? W16(src + (size_t)j * ld + k, kv) : _mm512_setzero_si512(); \
            tr16(r);                                                                                           \
            for (int p = 0; p < pn; p++) {                                                                     \
                uint32_t *o = d + (size_t)(p0 + p) * dstride;                                                  \
                if (lanes == 16 && nt) _mm512_stream_si512((__m512i *)o, r[p]);                                \
                else if (lanes == 16 || p0 + p + 1 < wn) _mm512_storeu_si512(o, r[p]);                         \
                else _mm512_mask_storeu_epi32(o, lane_mask(lanes), r[p]);                                      \
            }                                                                                                  \
        }                                                                                                      \
    }
TPACK(tpack_bf16, TGT_BF16, words16_bf16)
TPACK(tpack_f, TGT_F, words16_f)
/* nt: streaming stores (lanes 16, d 64-byte aligned, dstride a multiple of 16: a weight pack's refresh) */
static void tpack_nt(uint32_t *d, size_t dstride, int lanes, const float *src, size_t ld, int nr, int kn, int nat, int nt) {
    if (nat) tpack_bf16(d, dstride, lanes, src, ld, nr, kn, nt);
    else tpack_f(d, dstride, lanes, src, ld, nr, kn, nt);
}
static void tpack(uint32_t *d, size_t dstride, int lanes, const float *src, size_t ld, int nr, int kn, int nat) {
    tpack_nt(d, dstride, lanes, src, ld, nr, kn, nat, 0);
}

/* per-thread scratch of the transposed A's pack: AG panels' words of one step */
#define AG 16
#ifndef PFA
#define PFA 8
#endif
#define TMP_WORDS (AG * MR + 16)

/* ---- the bias gradient while a transposed A is packed (dW = dout^T inp: A = dout [K, M] read by pairs of rows):
 * acc[m] (double) += A's rows in order, then dbias[m] (+)= (float)acc[m] after the last K block: the sum, order
 * and rounding of ft_cpu_bias_backward, so the same bits. Each pack group's columns belong to the thread that
 * packs them. */
typedef struct {
    double *acc;  /* [M] of the chunk, running sums over the K blocks */
    float *dbias; /* [M] of the chunk */
    int assign;   /* dbias = sum (else dbias += sum) */
} colsum;

TGT_F static void colsum_pair(double *acc, const float *r0, const float *r1, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512d a = _mm512_add_pd(_mm512_loadu_pd(acc + j), _mm512_cvtps_pd(_mm256_loadu_ps(r0 + j)));
        if (r1) a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(r1 + j)));
        _mm512_storeu_pd(acc + j, a);
    }
    for (; j < n; j++) {
        acc[j] += r0[j];
        if (r1) acc[j] += r1[j];
    }
}

static void colsum_store(float *dbias, const double *acc, int n, int assign) {
    for (int j = 0; j < n; j++) dbias[j] = assign ? (float)acc[j] : dbias[j] + (float)acc[j];
}

/* A block k0..k0+kc of op(A) into micro-panels of MR rows: ap[m / MR][p][m % MR] (kpn words per row, a
 * panel MR x kpn words), rows >= M zero. The micro-kernel then reads the MR words of step p from one
 * pointer, consecutively (an immediate offset each), whatever A's layout was. Not transposed: a panel's
 * MR rows go through the transposing pack (tpack: converted 32 values at a time and transposed in
 * registers, each step's MR words stored in order); transposed: a pair of A's rows (k, k+1) converts to
 * words over a group of AG panels' rows (in the thread's scratch t) and is dealt out to the panels in
 * MR-word pieces. */
static void pack_a(uint32_t *ap, const float *A, int lda, int transA, int M, int Mpad, int k0, int kc, uint32_t *tmp, int nat,
                   const colsum *cs, int last) {
    int kpn = (kc + 1) / 2, np = Mpad / MR;
    uint32_t *t = tmp + (size_t)omp_get_thread_num() * TMP_WORDS;
    if (!transA) {
#pragma omp for schedule(static) nowait
        for (int q = 0; q < np; q++) {
            int m0 = q * MR, nr = M - m0 < MR ? M - m0 : MR;
            tpack(ap + (size_t)q * kpn * MR, MR, MR, A + (size_t)m0 * lda + k0, (size_t)lda, nr > 0 ? nr : 0, kc, nat);
        }
    } else {
        /* groups of AG panels: per pair of A's rows (k, k+1), the group's AG x MR words convert into t and
         * are dealt out to the panels (each panel's words written in order, a stream per panel) */
        int ng = (np + AG - 1) / AG;
#pragma omp for schedule(static) nowait
        for (int g = 0; g < ng; g++) {
            int q0 = g * AG, nq = np - q0 < AG ? np - q0 : AG, m0 = q0 * MR, mv = M - m0 < nq * MR ? M - m0 : nq * MR;
            double *acc = cs ? cs->acc + m0 : NULL; /* the bias gradient of these columns (cs: this K block's first pack) */
            if (acc && k0 == 0) memset(acc, 0, sizeof(double) * (size_t)mv);
            for (int p = 0; p < kpn; p++) {
                int k = k0 + 2 * p;
                const float *r0 = A + (size_t)k * lda + m0, *r1 = 2 * p + 1 < kc ? r0 + lda : NULL;
                if (PFA && 2 * (p + PFA) + 1 < kc) /* the pair PFA steps ahead: rows jump by 2 lda, which the
                                                    * hardware prefetchers follow late */
                    for (int j = 0; j < mv; j += 16) {
                        _mm_prefetch((const char *)(r0 + (size_t)2 * PFA * lda + j), _MM_HINT_T0);
                        _mm_prefetch((const char *)(r1 + (size_t)2 * PFA * lda + j), _MM_HINT_T0);
                    }
                if (mv > 0) pack_pair_words(t, r0, r1, mv, nat);
                if (acc) colsum_pair(acc, r0, r1, mv);
                if (mv < nq * MR) memset(t + (mv > 0 ? mv : 0), 0, sizeof(uint32_t) * (size_t)(nq * MR - (mv > 0 ? mv : 0)));
                for (int q = 0; q < nq; q++) memcpy(ap + ((size_t)(q0 + q) * kpn + p) * MR, t + q * MR, sizeof(uint32_t) * MR);
            }
            if (acc && last) colsum_store(cs->dbias + m0, acc, mv, cs->assign);
        }
    }
}

/* ---- A given as bf16 values (ft_cpu_gemm_bf16_a16: the LM head's logit gradients, which the cross-entropy
 * stored as bf16): nothing to convert. Not transposed, two adjacent values of a row already are its word, so a
 * panel is the transposing pack without the conversion (32 values = 16 words per row load, then tr16);
 * transposed, a pair of rows interleaves its 16-bit values into words (zero-extended to 32 bits, the second
 * row's shifted up). The words are those pack_a writes for the f32 values these bf16 values round from. */

/* tpack on bf16 rows: d[p * dstride + j] = word p of row j (src + j * ld, kn values), rows j >= nr zero */
TGT_F static void tpack16(uint32_t *d, size_t dstride, int lanes, const uint16_t *src, size_t ld, int nr, int kn) {
    int wn = (kn + 1) / 2;
    for (int k = 0; k < kn; k += 32) {
        __m512i r[16];
        int kv = kn - k < 32 ? kn - k : 32, p0 = k / 2, pn = wn - p0 < 16 ? wn - p0 : 16;
        __mmask32 m = kv >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << kv) - 1); /* an odd kv: the last high half 0 */
        if (kv == 32) /* whole vectors without masks */
            for (int j = 0; j < 16; j++) r[j] = j < nr ? _mm512_loadu_si512(src + (size_t)j * ld + k) : _mm512_setzero_si512();
        else
            for (int j = 0; j < 16; j++) r[j] = j < nr ? _mm512_maskz_loadu_epi16(m, src + (size_t)j * ld + k) : _mm512_setzero_si512();
        tr16(r);
        for (int p = 0; p < pn; p++) {
            uint32_t *o = d + (size_t)(p0 + p) * dstride;
            if (lanes == 16 || p0 + p + 1 < wn) _mm512_storeu_si512(o, r[p]);
            else _mm512_mask_storeu_epi32(o, lane_mask(lanes), r[p]);
        }
    }
}

/* one panel's MR words of one step from two rows' values r0[0..n), r1[0..n) (n <= 0: zeros; r1 NULL: high halves 0),
 * stored whole (16 words: the extra ones land on the next step's, written after) when more: else masked */
TGT_F static inline void panel_words16(uint32_t *dst, const uint16_t *r0, const uint16_t *r1, int n, int more) {
    __m512i a;
    if (n >= 16) {
        a = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)r0));
        if (r1) a = _mm512_or_si512(a, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)r1)), 16));
    } else {
        __mmask16 m = lane_mask(n < MR ? n : MR);
        a = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0));
        if (r1) a = _mm512_or_si512(a, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r1)), 16));
    }
    if (more) _mm512_storeu_si512(dst, a);
    else _mm512_mask_storeu_epi32(dst, lane_mask(MR), a);
}

/* transposed: groups of AG16 panels, per pair of A's rows the group's words straight into its panels (one vector per
 * panel). The rows' reads, 201 KB apart at an LM head's V (a page each), bound it, not the conversion that the f32
 * pack does besides: two threads, 1024 x 50257, 16 panels per group took 80-90% of pack_a's time, 8 panels 80%, 32 and
 * 64 more than 16 (perf shares; 8 panels read 192 bytes per row where pack_a's 16 read 768) */
#ifndef AG16
#define AG16 8
#endif

/* pack_a on bf16 values (lda in bf16 elements): the same panels */
static void pack_a16(uint32_t *ap, const uint16_t *A, int lda, int transA, int M, int Mpad, int k0, int kc) {
    int kpn = (kc + 1) / 2, np = Mpad / MR;
    if (!transA) {
#pragma omp for schedule(static) nowait
        for (int q = 0; q < np; q++) {
            int m0 = q * MR, nr = M - m0 < MR ? M - m0 : MR;
            tpack16(ap + (size_t)q * kpn * MR, MR, MR, A + (size_t)m0 * lda + k0, (size_t)lda, nr > 0 ? nr : 0, kc);
        }
        return;
    }
    int ng = (np + AG16 - 1) / AG16;
#pragma omp for schedule(static) nowait
    for (int g = 0; g < ng; g++) {
        int q0 = g * AG16, nq = np - q0 < AG16 ? np - q0 : AG16, m0 = q0 * MR, mv = M - m0 < nq * MR ? M - m0 : nq * MR;
        for (int p = 0; p < kpn; p++) {
            const uint16_t *r0 = A + (size_t)(k0 + 2 * p) * lda + m0, *r1 = 2 * p + 1 < kc ? r0 + lda : NULL;
            if (PFA && 2 * (p + PFA) + 1 < kc) /* the pair PFA steps ahead, as pack_a */
                for (int j = 0; j < mv; j += 32) {
                    _mm_prefetch((const char *)(r0 + (size_t)2 * PFA * lda + j), _MM_HINT_T0);
                    _mm_prefetch((const char *)(r1 + (size_t)2 * PFA * lda + j), _MM_HINT_T0);
                }
            for (int q = 0; q < nq; q++) panel_words16(ap + ((size_t)(q0 + q) * kpn + p) * MR, r0 + q * MR, r1 ? r1 + q * MR : NULL,
                                                       mv - q * MR, p + 1 < kpn);
        }
    }
}

/* B block k0..k0+kc of op(B) into strips bp[s][p][32]. B is read from memory, or (src != NULL) asked for by
 * blocks of f32 values written into the thread's scratch f[fn floats] (ft_gemm_bf16_src: a quantized weight
 * dequantized while it is packed), then packed from there: the same words either way. */
static void pack_b(uint32_t *bp, const float *B, int ldb, const ft_gemm_bf16_src *src, int n_off, int transB, int N, int k0,
                   int kc, float *fs, size_t fn, int nat) {
    int kpn = (kc + 1) / 2, ns = (N + NR - 1) / NR;
    float *f = src ? fs + (size_t)omp_get_thread_num() * fn : NULL;
    if (!transB) {
        /* a pair of rows at a time, read from start to end (streams), its words dealt out to the strips */
#pragma omp for schedule(static) nowait
        for (int p = 0; p < kpn; p++) {
            const float *r0, *r1;
            if (src) { /* rows k0+2p (and k0+2p+1) of B [K, N], whole */
                int nr = 2 * p + 1 < kc ? 2 : 1;
                src->rows(src->ctx, f, (size_t)N, k0 + 2 * p, nr, n_off, N);
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
        /* B[k][n] = Bt[n][k]: the strip's NR rows of Bt, 16 at a time, through the transposing pack */
#pragma omp for schedule(static) nowait
        for (int s = 0; s < ns; s++) {
            int n0 = s * NR, nn = N - n0 < NR ? N - n0 : NR;
            uint32_t *d = bp + (size_t)s * kpn * NR;
            if (!src) {
                for (int j = 0; j < NR; j += 16)
                    tpack(d + j, NR, 16, B + (size_t)(n0 + j) * ldb + k0, (size_t)ldb, nn - j, kc, nat);
                continue;
            }
            for (int ks = 0; ks < kc; ks += KS) { /* the source gives KS values of K at a time */
                int kn = kc - ks < KS ? kc - ks : KS;
                src->rows(src->ctx, f, (size_t)kn, n_off + n0, nn, k0 + ks, kn); /* rows n0.. of Bt [N, K], columns k0 + ks.. */
                for (int j = 0; j < NR; j += 16) tpack(d + (size_t)ks / 2 * NR + j, NR, 16, f + (size_t)j * kn, (size_t)kn, nn - j, kn, nat);
            }
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

/* one step p of the bf16 kernel: the R words a[0..R) broadcast against the strip's b[0..NR) */
#define STEP_BF16(a, b, R)                                                                                     \
    do {                                                                                                      \
        __m512bh bv[NV];                                                                                      \
        for (int j = 0; j < NV; j++) bv[j] = (__m512bh)_mm512_loadu_si512((b) + 16 * j);                     \
        for (int i = 0; i < (R); i++) {                                                                       \
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)(a)[i]);                                         \
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);               \
        }                                                                                                     \
    } while (0)

/* a: the A panel of the tile, [kpn][MR] words; b: the B strip, [kpn][NR] words; the first R rows of the
 * panel (R = MR, or 8 / 4 for the last panel of an M that MR does not divide: M = 1024 leaves 4 rows) */
#define DEFINE_UKR_BF16(NAME, R)                                                                              \
    TGT_BF16 static void NAME(int kpn, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, const float *c0, \
                              const float *pf, int pfr) {                                                     \
        __m512 acc[R][NV];                                                                                    \
        for (int i = 0; i < (R); i++)                                                                         \
            for (int j = 0; j < NV; j++)                                                                      \
                acc[i][j] = c0 ? _mm512_loadu_ps(c0 + 16 * j) : _mm512_loadu_ps(c + i * ldc + 16 * j);        \
        int p = 0;                                                                                            \
        for (; p < kpn && p < MR; p++, a += MR, b += NR) { /* the first MR steps also prefetch the next tile's C */ \
            PF_ROW(p);                                                                                        \
            STEP_BF16(a, b, R);                                                                               \
        }                                                                                                     \
        for (; p < kpn; p++, a += MR, b += NR) STEP_BF16(a, b, R);                                           \
        for (int i = 0; i < (R); i++)                                                                         \
            for (int j = 0; j < NV; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);                   \
    }
DEFINE_UKR_BF16(ukr_bf16, MR)
DEFINE_UKR_BF16(ukr_bf16_8, 8)
DEFINE_UKR_BF16(ukr_bf16_4, 4)

/* AVX-512F: a word w holds bf16 e (low) and o (high): as f32, e = w << 16 and o = w & 0xffff0000 */
#define STEP_F32(a, b)                                                                                         \
    do {                                                                                                      \
        __m512 e[NV], o[NV];                                                                                  \
        for (int j = 0; j < NV; j++) {                                                                        \
            __m512i w = _mm512_loadu_si512((b) + 16 * j);                                                    \
            e[j] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));                                             \
            o[j] = _mm512_castsi512_ps(_mm512_and_si512(w, himask));                                          \
        }                                                                                                     \
        for (int i = 0; i < MR; i++) {                                                                        \
            __m512i aw = _mm512_set1_epi32((int)(a)[i]);                                                      \
            __m512 ae = _mm512_castsi512_ps(_mm512_slli_epi32(aw, 16));                                       \
            __m512 ao = _mm512_castsi512_ps(_mm512_and_si512(aw, himask));                                    \
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(ao, o[j], acc[i][j]);                  \
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(ae, e[j], acc[i][j]);                  \
        }                                                                                                     \
    } while (0)

TGT_F static void ukr_f32(int kpn, const uint32_t *a, const uint32_t *b, float *c, size_t ldc, const float *c0,
                          const float *pf, int pfr) {
    __m512 acc[MR][NV];
    const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) acc[i][j] = c0 ? _mm512_loadu_ps(c0 + 16 * j) : _mm512_loadu_ps(c + i * ldc + 16 * j);
    int p = 0;
    for (; p < kpn && p < MR; p++, a += MR, b += NR) {
        PF_ROW(p);
        STEP_F32(a, b);
    }
    for (; p < kpn; p++, a += MR, b += NR) STEP_F32(a, b);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
}

/* ------------------------------------------------------------------ driver */

/* How a product is cut (all of it decided by M, N, K and MR / NR, never by the thread count): K into
 * blocks of kc (the whole K up to KC_MAX, else equal blocks, multiples of 64); the larger of M and N into
 * chunks (mch rows or nch columns, multiples of CH) so that the packs of a chunk and a K block, (rows +
 * columns) x kc bf16 values, stay within PACK_BUDGET. A micro-tile runs a whole K block with its C in
 * registers: C is read and written once per K block (once in all when K <= KC_MAX). */
#define CH 768 /* chunk granularity: a multiple of MC, NC and 64 (the source callback's column blocks) */
typedef struct { int kc, mch, nch; } plan;

static int k_balanced(int K, int kmax) {
    if (K <= kmax) return K;
    int nb = (K + kmax - 1) / kmax;
    return ((K + nb - 1) / nb + 63) / 64 * 64;
}

static _Atomic size_t g_budget; /* 0: PACK_BUDGET */

void ft__gemm_bf16_set_pack_budget(size_t bytes) { atomic_store(&g_budget, bytes); }

static size_t k_fit(size_t budget, size_t rows) { /* K values (a multiple of 64, KC_MIN..KC_MAX) whose packs fit */
    size_t fit = budget / (2 * rows) / 64 * 64;
    return fit < KC_MIN ? KC_MIN : fit > KC_MAX ? KC_MAX : fit;
}

static plan plan_for(int M, int N, int K) {
    size_t budget = atomic_load(&g_budget) ? atomic_load(&g_budget) : PACK_BUDGET;
    size_t Mpad = (size_t)(M + MR - 1) / MR * MR, Npad = (size_t)(N + NR - 1) / NR * NR;
    size_t S = Mpad < Npad ? Mpad : Npad, L = Mpad < Npad ? Npad : Mpad;
    plan pl = {k_balanced(K, (int)k_fit(budget, S + (L < CH ? L : CH))), M, N};
    size_t lroom = budget / (2 * (size_t)pl.kc), lch = lroom > S + CH ? (lroom - S) / CH * CH : CH;
    if (lch >= L) return pl;
    if (Mpad < Npad) pl.nch = (int)lch;
    else if (K <= pl.kc) pl.mch = (int)lch;
    else /* chunks of M would pack B once per chunk and K block: a source B (ft_gemm_bf16_src) promises each
          * value once per call, so shorter K blocks over the whole M instead */
        pl.kc = k_balanced(K, (int)k_fit(budget, Mpad + Npad));
    return pl;
}

size_t ft_gemm_bf16_workspace_bytes(int M, int N, int K) {
    if (M <= 0 || N <= 0 || K <= 0) return 0;
    plan pl = plan_for(M, N, K);
    size_t kpn = (size_t)(pl.kc + 1) / 2;
    size_t Mpad = (size_t)(pl.mch + MR - 1) / MR * MR, Npad = (size_t)(pl.nch + NR - 1) / NR * NR;
    return sizeof(uint32_t) * ((Mpad + Npad) * kpn + (size_t)omp_get_max_threads() * TMP_WORDS) + 64;
}

/* one micro-tile: rows m0.. (mr valid), strip s (nr valid). bias0: the first K block of a product that
 * assigns (bias or NULL for zeros); else NULL and the tile adds to C. pf / pfr: the next tile's C (above). */
static void tile(int isa, int kpn, const uint32_t *ap, const uint32_t *bp, float *C, int ldc,
                 int m0, int mr, int s, int nr, int first, const float *bias, const float *pf, int pfr) {
    const uint32_t *b = bp + (size_t)s * kpn * NR;
    const uint32_t *a = ap + (size_t)m0 * kpn; /* panel m0 / MR */
    float *c = C + (size_t)m0 * ldc + (size_t)s * NR;
    float t[MR * NR], c0[NR];
    const float *pc0 = NULL;
    if (first) { /* the initial value of every row: bias[n] or 0 (columns >= nr padded with zeros) */
        memset(c0, 0, sizeof c0);
        if (bias) memcpy(c0, bias + (size_t)s * NR, sizeof(float) * (size_t)nr);
        pc0 = c0;
    }
    /* rows the kernel computes: MR, or fewer for a short last panel (AVX512-BF16; the fallback computes MR) */
    int R = isa != FT_BF16_ISA_AVX512BF16 || MR != 12 || mr > 8 ? MR : mr > 4 ? 8 : 4;
    float *cc = c;
    size_t ldcc = (size_t)ldc;
    if (mr < R || nr < NR) { /* an edge: through a full-size tile on the stack */
        memset(t, 0, sizeof t);
        if (!first)
            for (int i = 0; i < mr; i++) memcpy(t + i * NR, c + (size_t)i * ldc, sizeof(float) * (size_t)nr);
        cc = t;
        ldcc = NR;
    }
    if (isa != FT_BF16_ISA_AVX512BF16) ukr_f32(kpn, a, b, cc, ldcc, pc0, pf, pfr);
    else if (R == MR) ukr_bf16(kpn, a, b, cc, ldcc, pc0, pf, pfr);
    else if (R == 8) ukr_bf16_8(kpn, a, b, cc, ldcc, pc0, pf, pfr);
    else ukr_bf16_4(kpn, a, b, cc, ldcc, pc0, pf, pfr);
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

/* The packing workspace is kept between calls: one buffer, the last one a call returned (a fresh one
 * of 5-26 MiB per call cost its page faults on every call: up to a tenth of a product's time). A call
 * takes it (atomically: calls from several threads at once each get their own), reallocates it when it
 * is too small, and gives it back, the larger of it and the one it finds there kept, the other freed.
 * Its first 64 bytes hold its size. */
static _Atomic(void *) g_ws;

static void *ws_take(size_t bytes) {
    void *p = atomic_exchange(&g_ws, NULL);
    if (p && *(size_t *)p >= bytes) return p;
    free(p);
    size_t n = (bytes + 64 + 63) / 64 * 64;
    p = aligned_alloc(64, n);
    if (p) *(size_t *)p = n - 64;
    return p;
}

/* keeps the larger of p and the kept one (calls from parallel regions, attention's, give back small ones).
 * Only buffers this call owns are read: a published one may be taken and freed by another thread at any
 * moment, so the kept one is taken out first, compared, and the larger put back only into an empty slot. */
static void ws_give(void *p) {
    for (;;) {
        void *prev = atomic_exchange(&g_ws, NULL);
        if (prev && *(size_t *)prev > *(size_t *)p) {
            void *t = p;
            p = prev;
            prev = t;
        }
        free(prev); /* the smaller of the two (or NULL) */
        void *empty = NULL;
        if (atomic_compare_exchange_strong(&g_ws, &empty, p)) return;
        /* another call gave one back meanwhile: compare with that one too */
    }
}

void ft_gemm_bf16_trim(void) { free(atomic_exchange(&g_ws, NULL)); }

/* ---- epilogues: what a product does besides C (gemm's epi; NULL: nothing).
 * After the last K block of each macro tile (mc x NC: at most 96 x 256 floats), while its C is in L2, so that
 * C is not read back from memory by a separate pass (the MLP's element-wise passes read and write a whole
 * N x 3072 activation once more). (Per micro-tile, in L1, measured slower: one thread, GPT-2's MLP at 1024
 * rows, fc forward +13%, projection input gradient +20% against the unfused pair, the per-macro-tile form
 * +2%/+2% in the same minutes: each micro-tile's 12 rows of the pre-activation, 12 KiB apart, came from
 * memory under the dependent GELU arithmetic, prefetched or not; a macro tile's rows are 1 KiB runs.)
 *   act: act[m][n] = gelu(C[m][n]) (ft_cpu_gelu_forward's vector GELU, so its bits); C keeps the pre-activation,
 *        or (deriv) becomes gelu'(C[m][n]), from the GELU's own exponential and division;
 *   pre: C[m][n] = C[m][n] gelu'(pre[m][n]) (ft_cpu_gelu_backward's bits: the input gradient through the GELU), or
 *        (deriv: pre holds the forward's gelu') C[m][n] pre[m][n], the same bits in one product.
 * While a transposed A is packed (dW = dout^T inp): dbias[m] (+)= sum over k of op(A)[m][k] (colsum above). */
typedef ft__gemm_epi gemm_epi; /* gemm_bf16_internal.h */

/* the GELU epilogue on c [mr, nr] (row stride ldc), at (m, n) of the product: a macro tile */
static void epi_tile(const gemm_epi *e, float *c, size_t ldc, size_t m, size_t n, int mr, int nr) {
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        float *o = e->act ? e->act + (m + (size_t)i) * e->ldact + n : NULL;
        const float *q = e->pre ? e->pre + (m + (size_t)i) * e->ldpre + n : NULL;
#ifdef FT_VMATH_AVX512
        int j = 0;
        if (o && e->deriv) { /* gelu(x) and gelu'(x), one exponential */
            for (; j < nr; j += 16) {
                __mmask16 k = tail_mask(nr - j);
                __m512 x = _mm512_maskz_loadu_ps(k, ci + j), ex = ft_vgelu_e16(x);
                __m512 a = ft_vgelu16e(x, ex), d = ft_vgelu_d16s(x, ft_vgelu_s16(ex));
                if (k == 0xffff) {
                    _mm512_storeu_ps(o + j, a);
                    _mm512_storeu_ps(ci + j, d);
                } else {
                    _mm512_mask_storeu_ps(o + j, k, a);
                    _mm512_mask_storeu_ps(ci + j, k, d);
                }
            }
        } else if (o) {
            for (; j + 16 <= nr; j += 16) _mm512_storeu_ps(o + j, ft_vgelu16(_mm512_loadu_ps(ci + j)));
            if (j < nr) {
                __mmask16 k = tail_mask(nr - j);
                _mm512_mask_storeu_ps(o + j, k, ft_vgelu16(_mm512_maskz_loadu_ps(k, ci + j)));
            }
        } else if (q && e->deriv) { /* the derivative stored by the forward: one product */
            for (; j + 16 <= nr; j += 16) _mm512_storeu_ps(ci + j, _mm512_mul_ps(_mm512_loadu_ps(ci + j), _mm512_loadu_ps(q + j)));
            if (j < nr) {
                __mmask16 k = tail_mask(nr - j);
                _mm512_mask_storeu_ps(ci + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, ci + j), _mm512_maskz_loadu_ps(k, q + j)));
            }
        } else if (q) {
            for (; j + 16 <= nr; j += 16) _mm512_storeu_ps(ci + j, ft_vgelu_bwd16(_mm512_loadu_ps(ci + j), _mm512_loadu_ps(q + j)));
            if (j < nr) {
                __mmask16 k = tail_mask(nr - j);
                _mm512_mask_storeu_ps(ci + j, k, ft_vgelu_bwd16(_mm512_maskz_loadu_ps(k, ci + j), _mm512_maskz_loadu_ps(k, q + j)));
            }
        }
#else
        if (o) ft_cpu_gelu_forward(NULL, o, ci, (size_t)nr);
        if (o && e->deriv) /* gelu'(x) = 1 x gelu'(x): ft_cpu_gelu_backward's bits */
            for (int j = 0; j < nr; j++) {
                float one = 1.0f;
                ft_cpu_gelu_backward(NULL, ci + j, &one, ci + j, 1);
            }
        else if (q && e->deriv)
            for (int j = 0; j < nr; j++) ci[j] *= q[j];
        else if (q) ft_cpu_gelu_backward(NULL, ci, ci, q, (size_t)nr);
#endif
    }
}

/* the epilogues over the whole product, after it (the unfused calls, the reference fallback, K = 0), rows in
 * parallel; the bias gradient of an A that is not transposed (no caller) too: ft_cpu_bias_backward's order and
 * rounding */
static void epi_whole(const gemm_epi *e, float *C, int ldc, const float *A, int lda, int transA, int M, int N, int K, int gelu,
                      int dbias) {
    if (gelu && (e->act || e->pre)) {
#pragma omp parallel for schedule(static) if ((size_t)M * N >= ((size_t)1 << 16))
        for (int m = 0; m < M; m++) epi_tile(e, C + (size_t)m * ldc, (size_t)ldc, (size_t)m, 0, 1, N);
    }
    if (dbias && e->dbias)
        for (int m = 0; m < M; m++) {
            double acc = 0;
            for (int k = 0; k < K; k++) acc += transA ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
            e->dbias[m] = e->dbias_assign ? (float)acc : e->dbias[m] + (float)acc;
        }
}

/* the plan of a product whose B is pre-packed (a weight pack, below): K blocks as the pack was made (kc_pre);
 * nothing of B to pack, so N is never cut; M in chunks only where A's pack would pass PACK_BUDGET */
static plan plan_pre(int M, int N, int K, int kc_pre) {
    size_t budget = atomic_load(&g_budget) ? atomic_load(&g_budget) : PACK_BUDGET;
    size_t Mpad = (size_t)(M + MR - 1) / MR * MR, rows = budget / (2 * (size_t)kc_pre) / CH * CH;
    plan pl = {kc_pre, M, N};
    if (Mpad * 2 * (size_t)kc_pre > budget) pl.mch = (int)(rows > CH ? rows : CH);
    return pl;
}

/* transA | A_H16: A holds bf16 values (uint16_t, lda in bf16 elements; ft_cpu_gemm_bf16_a16), else f32 */
#define A_H16 FT__GEMM_A16

/* the GEMM with B in memory (src NULL), produced by src, or pre-packed (bpre: every K block of kc_pre, strips of
 * each block at that block's kpn, blocks ns x ceil(kc_pre / 2) x NR words apart); epi: the epilogues (above; an
 * f32 A only) */
static void gemm(float *C, int ldc, const void *A, int lda, int transA, const float *B, int ldb, const ft_gemm_bf16_src *src,
                 const uint32_t *bpre, int kc_pre, int transB, int M, int N, int K, int accumulate, const float *bias,
                 const gemm_epi *epi) {
    if (M <= 0 || N <= 0) return;
    int isa = (int)ft_bf16_isa_get(), a16 = transA & A_H16;
    transA &= 1;
    if (K <= 0) {
        if (!accumulate) init_c(C, ldc, M, N, bias);
        if (epi) epi_whole(epi, C, ldc, A, lda, transA, M, N, K, 1, 1);
        return;
    }
    plan pl = bpre ? plan_pre(M, N, K, kc_pre) : plan_for(M, N, K);
    int kpn0 = (pl.kc + 1) / 2, nkb = (K + pl.kc - 1) / pl.kc;
    size_t ns_all = (size_t)(N + NR - 1) / NR;
    int Mpad = (pl.mch + MR - 1) / MR * MR, Npad = (pl.nch + NR - 1) / NR * NR; /* of a chunk */
    /* a source's scratch per thread: a strip of the transposed B (NR x KS) or a pair of rows of B (2 x N) */
    size_t fn = src ? (transB ? (size_t)NR * KS : 2 * (size_t)N) + 16 : 0;
    size_t wsb = bpre ? sizeof(uint32_t) * (size_t)((pl.mch + MR - 1) / MR * MR) * (size_t)kpn0 + 64 /* A's pack only */
                      : ft_gemm_bf16_workspace_bytes(M, N, K);
    void *ws = isa == FT_BF16_ISA_SCALAR ? NULL : ws_take(wsb);
    uint32_t *ap = ws ? (uint32_t *)((char *)ws + 64) : NULL;
    float *fs = src && ap ? malloc(sizeof(float) * fn * (size_t)omp_get_max_threads()) : NULL;
    if (!ap || (src && !fs)) { /* no AVX-512, or out of memory: the reference loop gives the same bits */
        if (ws) ws_give(ws);
        float *b = src ? materialize_b(src, transB, N, K) : NULL;
        if (src && b) ft_ref_gemm_bf16(C, ldc, A, lda, transA, b, transB ? K : N, transB, M, N, K, accumulate, bias);
        else if (!src && a16) ft_ref_gemm_bf16_a16(C, ldc, A, lda, transA, B, ldb, transB, M, N, K, accumulate, bias);
        else if (!src) ft_ref_gemm_bf16(C, ldc, A, lda, transA, B, ldb, transB, M, N, K, accumulate, bias);
        free(b);
        if (epi) epi_whole(epi, C, ldc, A, lda, transA, M, N, K, 1, 1);
        return;
    }
    /* the bias gradient in A's pack (transposed A; running sums in double over the K blocks), else after */
    double *dacc = epi && epi->dbias && transA && !a16 ? malloc(sizeof(double) * (size_t)M) : NULL;
    int gelu = epi && (epi->act || epi->pre);
    uint32_t *bp = ap + (size_t)Mpad * kpn0, *tmp = bp + (size_t)Npad * kpn0;
    int nat = isa == FT_BF16_ISA_AVX512BF16;
    double flops = 2.0 * M * N * K;
    /* one parallel region per call; per chunk and K block two barriers: after the packing, after the
     * products. At most one of the two chunk loops has more than one turn; with a single K block, the
     * operand that is not chunked is packed once. */
#pragma omp parallel num_threads(flops >= 4e6 ? omp_get_max_threads() : 1)
    for (int mc0 = 0; mc0 < M; mc0 += pl.mch)
        for (int nc0 = 0; nc0 < N; nc0 += pl.nch) {
            int Mc = M - mc0 < pl.mch ? M - mc0 : pl.mch, Nc = N - nc0 < pl.nch ? N - nc0 : pl.nch;
            int Mcp = (Mc + MR - 1) / MR * MR;
            size_t a_off = transA ? (size_t)mc0 : (size_t)mc0 * lda; /* elements of A to the chunk's first */
            const void *Ac = a16 ? (const void *)((const uint16_t *)A + a_off) : (const void *)((const float *)A + a_off);
            const float *Bc = !B ? NULL : transB ? B + (size_t)nc0 * ldb : B + nc0;
            float *Cc = C + (size_t)mc0 * ldc + nc0;
            const float *bc = bias ? bias + nc0 : NULL;
            gemm_epi ec = {0}; /* the epilogue's operands at the chunk */
            if (gelu) {
                ec = *epi;
                if (ec.act) ec.act += (size_t)mc0 * ec.ldact + nc0;
                if (ec.pre) ec.pre += (size_t)mc0 * ec.ldpre + nc0;
            }
            /* the bias gradient: the first pack of A's chunk in each K block (A is packed again for every chunk of N
             * when there are several K blocks) */
            colsum cs = {dacc ? dacc + mc0 : NULL, dacc ? epi->dbias + mc0 : NULL, epi ? epi->dbias_assign : 0};
            int mc = (int)((size_t)A_L2 / ((size_t)kpn0 * 4 * MR)) * MR;
            mc = mc < MR ? MR : mc > MC ? MC : mc;
            int mt = (Mc + mc - 1) / mc, nt = (Nc + NC - 1) / NC;
            /* row blocks of A outer (each A block stays in L2 while B passes), unless the B pack is both the
             * larger and too large for the caches: then B panels outer, so that B is read from memory once
             * and the smaller A passes over each panel */
            int n_major = Nc > Mc && (size_t)Nc * kpn0 * 4 > ((size_t)4 << 20);
            for (int k0 = 0; k0 < K; k0 += pl.kc) {
                int kc = K - k0 < pl.kc ? K - k0 : pl.kc, kpn = (kc + 1) / 2, first = k0 == 0 && !accumulate;
                int last = k0 + kc >= K;
                if ((nkb > 1 || nc0 == 0) && a16) pack_a16(ap, Ac, lda, transA, Mc, Mcp, k0, kc);
                else if (nkb > 1 || nc0 == 0) pack_a(ap, Ac, lda, transA, Mc, Mcp, k0, kc, tmp, nat, dacc && nc0 == 0 ? &cs : NULL, last);
                const uint32_t *bq = bpre ? bpre + (size_t)(k0 / pl.kc) * ns_all * kpn0 * NR : bp;
                if (!bpre && (nkb > 1 || mc0 == 0)) pack_b(bp, Bc, ldb, src, nc0, transB, Nc, k0, kc, fs, fn, nat);
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
                for (int ti = 0; ti < mt * nt; ti++) {
                    int mi = n_major ? ti % mt : ti / nt, ni = n_major ? ti / mt : ti % nt;
                    int m_beg = mi * mc, mend = (mi + 1) * mc < Mc ? (mi + 1) * mc : Mc;
                    int s_end = ((ni + 1) * NC < Nc ? (ni + 1) * NC : Nc);
                    for (int n0 = ni * NC; n0 < s_end; n0 += NR)
                        for (int m0 = m_beg; m0 < mend; m0 += MR) {
                            /* the next tile: the next rows of this strip, else the first rows of the next strip */
                            int pm = m0 + MR < mend ? m0 + MR : m_beg, pn = m0 + MR < mend ? n0 : n0 + NR;
                            int pfr = pn < s_end ? (mend - pm < MR ? mend - pm : MR) : 0;
                            int mr = mend - m0 < MR ? mend - m0 : MR, nr = s_end - n0 < NR ? s_end - n0 : NR;
                            tile(isa, kpn, ap, bq, Cc, ldc, m0, mr, n0 / NR, nr, first, bc, Cc + (size_t)pm * ldc + pn, pfr);
                        }
                    if (gelu && last) /* the macro tile's GELU while its C is in L2 */
                        epi_tile(&ec, Cc + (size_t)m_beg * ldc + ni * NC, (size_t)ldc, (size_t)m_beg, (size_t)ni * NC, mend - m_beg,
                                 s_end - ni * NC);
                }
            }
        }
    free(fs);
    ws_give(ws);
    if (epi && epi->dbias && !dacc) epi_whole(epi, C, ldc, A, lda, transA, M, N, K, 0, 1);
    free(dacc);
}

void ft_cpu_gemm_bf16(float *C, int ldc, const float *A, int lda, int transA, const float *B, int ldb, int transB,
                      int M, int N, int K, int accumulate, const float *bias) {
    gemm(C, ldc, A, lda, transA != 0, B, ldb, NULL, NULL, 0, transB, M, N, K, accumulate, bias, NULL);
}

void ft_cpu_gemm_bf16_src(float *C, int ldc, const float *A, int lda, int transA, const ft_gemm_bf16_src *B, int transB,
                          int M, int N, int K, int accumulate, const float *bias) {
    gemm(C, ldc, A, lda, transA != 0, NULL, 0, B, NULL, 0, transB, M, N, K, accumulate, bias, NULL);
}

void ft_cpu_gemm_bf16_a16(float *C, int ldc, const uint16_t *A, int lda, int transA, const float *B, int ldb, int transB,
                          int M, int N, int K, int accumulate, const float *bias) {
    gemm(C, ldc, A, lda, (transA != 0) | A_H16, B, ldb, NULL, NULL, 0, transB, M, N, K, accumulate, bias, NULL);
}

void ft__gemm_bf16_ex(float *C, int ldc, const void *A, int lda, int transA, const float *B, int ldb, const uint32_t *bpre, int kc_pre,
                      int transB, int M, int N, int K, int accumulate, const float *bias, const ft__gemm_epi *epi) {
    gemm(C, ldc, A, lda, transA, B, ldb, NULL, bpre, kc_pre, transB, M, N, K, accumulate, bias, epi);
}

void ft__gemm_bf16_epi_pass(const ft__gemm_epi *e, float *C, int ldc, int M, int N) { epi_whole(e, C, ldc, NULL, 0, 0, M, N, 0, 1, 0); }

/* ------------------------------------------------------------------ operands converted once (gemm_bf16_internal.h)
 * For many small products on the same operands (attention: per head, up to 12 products of 1-4 MFLOP over
 * the same Q, K, V, dO), run on the calling thread: no parallel region, no workspace, no packing per call.
 * A is read in place as bf16 words, rows (a word (m, p) at a[m * sm + p], the row's values converted in
 * order) or columns (at a[m + p * sk]: pairs of rows of a transposed operand); B is a strip pack made once. */

size_t ft__bf16_bpack_words(int N, int K) {
    return N <= 0 || K <= 0 ? 0 : (size_t)((N + NR - 1) / NR) * (size_t)((K + 1) / 2) * NR;
}

void ft__bf16_pack_b(uint32_t *bp, const float *B, int ldb, int transB, int N, int K) {
    if (N <= 0 || K <= 0) return;
    int nat = ft_bf16_isa_get() == FT_BF16_ISA_AVX512BF16, kpn = (K + 1) / 2, ns = (N + NR - 1) / NR;
    if (!transB) /* a pair of rows of B at a time, dealt out to the strips (pack_b) */
        for (int p = 0; p < kpn; p++) {
            const float *r0 = B + (size_t)(2 * p) * ldb, *r1 = 2 * p + 1 < K ? r0 + ldb : NULL;
            for (int s = 0; s < ns; s++) {
                int n0 = s * NR, nn = N - n0 < NR ? N - n0 : NR;
                uint32_t *d = bp + ((size_t)s * kpn + p) * NR;
                pack_pair_words(d, r0 + n0, r1 ? r1 + n0 : NULL, nn, nat);
                if (nn < NR) memset(d + nn, 0, sizeof(uint32_t) * (size_t)(NR - nn));
            }
        }
    else /* B[k][n] = Bt[n][k]: a strip's rows of Bt, 16 at a time, through the transposing pack */
        for (int s = 0; s < ns; s++) {
            int n0 = s * NR, nn = N - n0 < NR ? N - n0 : NR;
            for (int j = 0; j < NR; j += 16)
                tpack(bp + (size_t)s * kpn * NR + j, NR, 16, B + (size_t)(n0 + j) * ldb, (size_t)ldb, nn - j, K, nat);
        }
}

/* d[p] = the word of s[2p], s[2p+1] for p < ceil(n / 2) (the last one's high half 0 for an odd n) */
#define ROW_WORDS(NAME, TGT, W16)                                                                             \
    TGT static void NAME(uint32_t *d, const float *s, int n) {                                                \
        int k = 0;                                                                                            \
        for (; k + 32 <= n; k += 32) _mm512_storeu_si512(d + k / 2, W16(s + k, 32));                        \
        if (k < n) _mm512_mask_storeu_epi32(d + k / 2, lane_mask((n - k + 1) / 2), W16(s + k, n - k));       \
    }
ROW_WORDS(row_words_bf16, TGT_BF16, words16_bf16)
ROW_WORDS(row_words_f, TGT_F, words16_f)

void ft__bf16_row_words(uint32_t *dst, const float *src, int n) {
    if (n <= 0) return;
    if (ft_bf16_isa_get() == FT_BF16_ISA_AVX512BF16) row_words_bf16(dst, src, n);
    else row_words_f(dst, src, n);
}

void ft__bf16_pair_words(uint32_t *dst, const float *r0, const float *r1, int n) {
    if (n > 0) pack_pair_words(dst, r0, r1, n, ft_bf16_isa_get() == FT_BF16_ISA_AVX512BF16);
}

/* the micro-kernels on A in place: R rows of words from a (columns: row i's word of step p at a[i + p * sk];
 * rows: at a[i * sm + p]) against a B strip; C assigned (assign: from 0) or accumulated */
#define UKR_ACC_INIT(R, ASSIGN)                                                                                      \
    __m512 acc[R][NV];                                                                                        \
    _Pragma("GCC unroll 12") for (int i = 0; i < (R); i++)                                                    \
        _Pragma("GCC unroll 2") for (int j = 0; j < NV; j++) acc[i][j] = ASSIGN ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * ldc + 16 * j);
#define UKR_ACC_STORE(R)                                                                                      \
    _Pragma("GCC unroll 12") for (int i = 0; i < (R); i++)                                                    \
        _Pragma("GCC unroll 2") for (int j = 0; j < NV; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
/* (ASSIGN is a constant of each function: a flag read at run time made the compiler keep acc on the stack) */
#define DEFINE_UKR_COLS(NAME, R, ASSIGN)                                                                      \
    TGT_BF16 static void NAME(int kpn, const uint32_t *a, size_t sk, const uint32_t *b, float *c, size_t ldc) { \
        UKR_ACC_INIT(R, ASSIGN)                                                                                    \
        for (int p = 0; p < kpn; p++, a += sk, b += NR) STEP_BF16(a, b, R);                                  \
        UKR_ACC_STORE(R)                                                                                      \
    }
#define DEFINE_UKR_ROWS(NAME, R, ASSIGN)                                                                      \
    TGT_BF16 static void NAME(int kpn, const uint32_t *a, size_t sm, const uint32_t *b, float *c, size_t ldc) { \
        const uint32_t *ar[R];                                                                                \
        for (int i = 0; i < (R); i++) ar[i] = a + (size_t)i * sm;                                             \
        UKR_ACC_INIT(R, ASSIGN)                                                                                    \
        for (int p = 0; p < kpn; p++, b += NR) {                                                              \
            __m512bh bv[NV];                                                                                  \
            for (int j = 0; j < NV; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + 16 * j);                   \
            for (int i = 0; i < (R); i++) {                                                                   \
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)ar[i][p]);                                    \
                for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);           \
            }                                                                                                 \
        }                                                                                                     \
        UKR_ACC_STORE(R)                                                                                      \
    }
DEFINE_UKR_COLS(ukr_cols_12, 12, 0)
DEFINE_UKR_COLS(ukr_cols_8, 8, 0)
DEFINE_UKR_COLS(ukr_cols_4, 4, 0)
DEFINE_UKR_ROWS(ukr_rows_12, 12, 0)
DEFINE_UKR_ROWS(ukr_rows_8, 8, 0)
DEFINE_UKR_ROWS(ukr_rows_4, 4, 0)
DEFINE_UKR_COLS(ukr_cols_12a, 12, 1)
DEFINE_UKR_COLS(ukr_cols_8a, 8, 1)
DEFINE_UKR_COLS(ukr_cols_4a, 4, 1)
DEFINE_UKR_ROWS(ukr_rows_12a, 12, 1)
DEFINE_UKR_ROWS(ukr_rows_8a, 8, 1)
DEFINE_UKR_ROWS(ukr_rows_4a, 4, 1)
/* the AVX-512F kernel on columns (MR rows): the fallback's every tile */
#define DEFINE_UKR_F32_COLS(NAME, ASSIGN)                                                                     \
    TGT_F static void NAME(int kpn, const uint32_t *a, size_t sk, const uint32_t *b, float *c, size_t ldc) {  \
        const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);                                          \
        UKR_ACC_INIT(MR, ASSIGN)                                                                              \
        for (int p = 0; p < kpn; p++, a += sk, b += NR) STEP_F32(a, b);                                      \
        UKR_ACC_STORE(MR)                                                                                     \
    }
DEFINE_UKR_F32_COLS(ukr_f32_cols, 0)
DEFINE_UKR_F32_COLS(ukr_f32_cols_a, 1)
typedef void (*ukr_words_fn)(int kpn, const uint32_t *a, size_t s, const uint32_t *b, float *c, size_t ldc);
/* [rows layout][assign][12, 8, 4 rows] */
static const ukr_words_fn ukr_words[2][2][3] = {
    {{ukr_cols_12, ukr_cols_8, ukr_cols_4}, {ukr_cols_12a, ukr_cols_8a, ukr_cols_4a}},
    {{ukr_rows_12, ukr_rows_8, ukr_rows_4}, {ukr_rows_12a, ukr_rows_8a, ukr_rows_4a}}};

#define EDGE_KP 128 /* steps per piece of an edge tile's A panel (on the stack) */

/* one tile the kernels above do not take (rows other than 12 / 8 / 4, columns < NR, the AVX-512F kernel, A
 * strides of neither form): A copied into MR-row panel pieces of EDGE_KP steps (rows >= mr zero), the tile
 * through a full-size one on the stack where it is an edge; C between pieces in f32 as between K blocks.
 * (Its own kernels, not tile()'s: a second caller made the compiler stop inlining those into tile(), and
 * the GEMM lost 1-2%.) */
static void words_edge(int isa, float *c, int ldc, const uint32_t *a, size_t sm, size_t sk, const uint32_t *b, int mr, int nr,
                       int kpn, int accumulate) {
    uint32_t pa[EDGE_KP * MR];
    float t[MR * NR];
    int R = isa != FT_BF16_ISA_AVX512BF16 || MR != 12 || mr > 8 ? MR : mr > 4 ? 8 : 4;
    float *cc = c;
    size_t ldcc = (size_t)ldc;
    if (mr < R || nr < NR) {
        memset(t, 0, sizeof t);
        if (accumulate)
            for (int i = 0; i < mr; i++) memcpy(t + i * NR, c + (size_t)i * ldc, sizeof(float) * (size_t)nr);
        cc = t;
        ldcc = NR;
    }
    for (int q0 = 0; q0 < kpn; q0 += EDGE_KP) {
        int qn = kpn - q0 < EDGE_KP ? kpn - q0 : EDGE_KP;
        for (int p = 0; p < qn; p++)
            for (int i = 0; i < MR; i++) pa[p * MR + i] = i < mr ? a[(size_t)i * sm + (size_t)(q0 + p) * sk] : 0;
        int assign = q0 == 0 && !accumulate;
        const uint32_t *bq = b + (size_t)q0 * NR;
        if (isa != FT_BF16_ISA_AVX512BF16) (assign ? ukr_f32_cols_a : ukr_f32_cols)(qn, pa, MR, bq, cc, ldcc);
        else ukr_words[0][assign][R == 12 ? 0 : R == 8 ? 1 : 2](qn, pa, MR, bq, cc, ldcc);
    }
    if (cc == t)
        for (int i = 0; i < mr; i++) memcpy(c + (size_t)i * ldc, t + i * NR, sizeof(float) * (size_t)nr);
}

void ft__gemm_bf16_words(float *C, int ldc, const uint32_t *a, size_t sm, size_t sk, const uint32_t *bp, size_t kpb, int p0,
                         int M, int N, int kpn, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (kpn <= 0) {
        if (!accumulate) init_c(C, ldc, M, N, NULL);
        return;
    }
    int isa = (int)ft_bf16_isa_get(), nat = isa == FT_BF16_ISA_AVX512BF16;
    int rows = nat && sk == 1, cols = nat && !rows && sm == 1;
    for (int n0 = 0; n0 < N; n0 += NR) { /* a B strip (L1) against every row panel of A */
        const uint32_t *b = bp + ((size_t)(n0 / NR) * kpb + (size_t)p0) * NR;
        int nr = N - n0 < NR ? N - n0 : NR;
        for (int m0 = 0; m0 < M; m0 += MR) {
            int mr = M - m0 < MR ? M - m0 : MR;
            const uint32_t *am = a + (size_t)m0 * sm;
            float *c = C + (size_t)m0 * ldc + n0;
            if (nr < NR || (mr != 12 && mr != 8 && mr != 4) || !(rows || cols) || MR != 12)
                words_edge(isa, c, ldc, am, sm, sk, b, mr, nr, kpn, accumulate);
            else
                ukr_words[rows][!accumulate][mr == 12 ? 0 : mr == 8 ? 1 : 2](kpn, am, rows ? sm : sk, b, c, (size_t)ldc);
        }
    }
}

/* ------------------------------------------------------------------ pre-packed weights (gemm_bf16.h)
 * A block of ft_gemm_bf16_wpack_bytes: this header, then (64-byte aligned) the forward layout, B of
 * out = inp W^T (transB: [N = OC, K = C]), then the backward layout, B of dinp = dout W ([K = OC, N = C]); each as
 * gemm()'s bpre: K blocks of kc = k_balanced(K, KC_MAX), strips of 32 columns per block at that block's kpn. */
typedef struct {
    int OC, C, kc_f, kc_b;   /* W [OC, C]; the K blocks of the forward (K = C) and backward (K = OC) layouts */
    _Atomic int valid;       /* the words hold bf16(W) of the weights as they are now */
    size_t off_b;            /* words from the forward layout to the backward one */
} wpack_hdr;
#define WP_HDR 64
_Static_assert(sizeof(wpack_hdr) <= WP_HDR, "the weight pack's header fits its 64 bytes");

static size_t layout_words(int K, int N) { /* words of one layout: blocks x strips x ceil(kc / 2) x NR */
    int kc = k_balanced(K, KC_MAX), nkb = (K + kc - 1) / kc;
    return (size_t)nkb * (size_t)((N + NR - 1) / NR) * (size_t)((kc + 1) / 2) * NR;
}

size_t ft_gemm_bf16_wpack_bytes(int OC, int C) {
    if (OC <= 0 || C <= 0) return WP_HDR;
    size_t f = (layout_words(C, OC) + 15) / 16 * 16;
    return WP_HDR + sizeof(uint32_t) * (f + layout_words(OC, C));
}

void ft_gemm_bf16_wpack_init(void *pack, int OC, int C) {
    wpack_hdr *h = pack;
    h->OC = OC;
    h->C = C;
    h->kc_f = k_balanced(C, KC_MAX);
    h->kc_b = k_balanced(OC, KC_MAX);
    h->off_b = (layout_words(C, OC) + 15) / 16 * 16;
    atomic_store(&h->valid, 0);
}

void ft_gemm_bf16_wpack_invalidate(void *pack) { atomic_store(&((wpack_hdr *)pack)->valid, 0); }
int ft_gemm_bf16_wpack_valid(const void *pack) { return atomic_load(&((const wpack_hdr *)pack)->valid); }
void ft__gemm_bf16_wpack_set_valid(void *pack) { atomic_store(&((wpack_hdr *)pack)->valid, 1); }

static uint32_t *wp_fwd(const void *pack) { return (uint32_t *)((char *)pack + WP_HDR); }
static uint32_t *wp_bwd(const void *pack) { return wp_fwd(pack) + ((const wpack_hdr *)pack)->off_b; }

/* rows r0 .. r1 of w [OC, C] into both layouts (r0 a multiple of 32: one strip of the forward layout, 16 pairs of
 * one K block of the backward one); the words pack_b writes for the same rows, with streaming stores (the pack
 * is 4 bytes per weight, far beyond the caches: read back by the next step, it need not be fetched first) */
static void wpack_rows(void *pack, const float *w, int r0, int r1, int nat) {
    const wpack_hdr *h = pack;
    int OC = h->OC, C = h->C;
    /* forward: strip s = r0 / NR of every K block (tpack of the strip's rows over the block's columns) */
    int s = r0 / NR, nn = r1 - r0, kpn0 = (h->kc_f + 1) / 2, ns = (OC + NR - 1) / NR;
    for (int k0 = 0; k0 < C; k0 += h->kc_f) {
        int kc = C - k0 < h->kc_f ? C - k0 : h->kc_f, kpn = (kc + 1) / 2;
        uint32_t *d = wp_fwd(pack) + (size_t)(k0 / h->kc_f) * ns * kpn0 * NR + (size_t)s * kpn * NR;
        for (int j = 0; j < NR; j += 16) tpack_nt(d + j, NR, 16, w + (size_t)(r0 + j) * C + k0, (size_t)C, nn - j, kc, nat, 1);
    }
    /* backward: the pairs of rows r0 .. r1 in their K block (over OC), dealt out to the strips over C */
    int kb = r0 / h->kc_b, k0 = kb * h->kc_b, kcb = OC - k0 < h->kc_b ? OC - k0 : h->kc_b, kpn = (kcb + 1) / 2;
    int kpnb0 = (h->kc_b + 1) / 2, nsb = (C + NR - 1) / NR;
    uint32_t *base = wp_bwd(pack) + (size_t)kb * nsb * kpnb0 * NR;
    for (int r = r0; r < r1; r += 2) {
        int p = (r - k0) / 2;
        const float *w0 = w + (size_t)r * C, *w1 = r + 1 < k0 + kcb ? w0 + C : NULL;
        for (int t = 0; t < nsb; t++) {
            int n0 = t * NR, m = C - n0 < NR ? C - n0 : NR;
            uint32_t *d = base + ((size_t)t * kpn + p) * NR;
            pack_pair_words_nt(d, w0 + n0, w1 ? w1 + n0 : NULL, m, nat, 1);
            if (m < NR) memset(d + m, 0, sizeof(uint32_t) * (size_t)(NR - m));
        }
    }
    _mm_sfence(); /* the streaming stores above are visible before the pack is marked current */
}

int ft_gemm_bf16_wpack_chunk_rows(void) { return NR; }

void ft_gemm_bf16_wpack_rows(void *pack, const float *w, int r0, int r1) {
    int isa = (int)ft_bf16_isa_get();
    if (isa == FT_BF16_ISA_SCALAR) return; /* the scalar kernel reads w itself; nothing to pack */
    wpack_rows(pack, w, r0, r1, isa == FT_BF16_ISA_AVX512BF16);
}

void ft_gemm_bf16_wpack_fill(void *pack, const float *w) {
    const wpack_hdr *h = pack;
    int nc = (h->OC + NR - 1) / NR;
#pragma omp parallel for schedule(dynamic, 4) if ((size_t)h->OC * h->C >= ((size_t)1 << 16))
    for (int c = 0; c < nc; c++) ft_gemm_bf16_wpack_rows(pack, w, c * NR, (c + 1) * NR < h->OC ? (c + 1) * NR : h->OC);
    ft__gemm_bf16_wpack_set_valid(pack);
}

/* the pack made current first when an update left it stale (its first product after a change of w) */
static const uint32_t *wp_ready(void *pack, const float *w) {
    if (!ft_gemm_bf16_wpack_valid(pack)) ft_gemm_bf16_wpack_fill(pack, w);
    return wp_fwd(pack);
}

const uint32_t *ft__gemm_bf16_wpack_layout(void *pack, const float *w, int backward, int *kc) {
    wp_ready(pack, w);
    *kc = backward ? ((wpack_hdr *)pack)->kc_b : ((wpack_hdr *)pack)->kc_f;
    return backward ? wp_bwd(pack) : wp_fwd(pack);
}

void ft_gemm_bf16_wpack_shape(const void *pack, int *OC, int *C) {
    *OC = ((const wpack_hdr *)pack)->OC;
    *C = ((const wpack_hdr *)pack)->C;
}
