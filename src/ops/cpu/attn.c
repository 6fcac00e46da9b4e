/* cpu/attn.c — the attention family (ops.h, attn_forward / attn_backward) for every mask kind.
 *
 * Forward: one (batch, query head) per task of an OpenMP loop; backward: one (batch, K/V head group) per
 * task, looping over the group's query heads (dK/dV of the shared K/V head accumulate with beta = 1 after
 * the first head). Inside a task the products QK^T, PV, dO V^T, dS K, dS^T Q and P^T dO are cblas_sgemm
 * calls on strided views of q, k, v. With the causal mask the T query rows are cut into ATT_BLK-row blocks
 * and a block [r0,r1) only touches keys [0,r1); without it a task is one block of all T rows and keys.
 * OpenBLAS (OpenMP build) runs single-threaded inside a parallel region, and each task writes memory no
 * other task touches, so the bits are the same for any thread count or schedule: no races, no atomics.
 *
 * Dropout on the probabilities: the forward's PV product reads a per-thread dropped copy of each row
 * block, the backward drops its copy S of P and the dP rows (masks from ft_attn_dropout_row_seed);
 * without dropout the backward's dV product reads att itself. The softmax rows run in AVX-512
 * (vmath_avx512.h) where the compiler targets it, else in vectorised C.
 *
 * att layout: att[b,h,t,j] is the probability where key j is visible and 0 elsewhere (the forward
 * writes every entry). The backward reads att at the keys the causal structure allows and, without
 * dropout, the zeros above the diagonal inside a causal block (its dV product reads whole blocks).
 *
 * bf16 (ft_cpu_attn_bf16_forward / _backward, the "cpu-bf16" backend): the same tasks with the six
 * products through ft_cpu_gemm_bf16 (gemm_bf16.h: operands rounded to bf16, sums in f32), as the linear
 * layers; the softmax, its backward and every reduction stay f32/double. ft_cpu_gemm_bf16 has no alpha:
 * the scores are scaled by 1/sqrt(HS) in f32 after the product (inside the softmax), and dS is scaled
 * before it is rounded for the dQ and dK products (with HS a power of four, as in every GPT-2 / Llama
 * shape, the scale is a power of two and commutes with the rounding). Causal blocks are ATT_BLK_BF16 rows.
 * With an AVX-512 kernel the products do not go through ft_cpu_gemm_bf16 (which packs both operands for
 * every call): each task converts its operands to bf16 once (gemm_bf16_internal.h) — Q and dO as rows of
 * words, K^T, V, V^T, K, dO and Q as B packs, P and dS as rows of words (a block at a time) and as pairs of
 * rows (the transposed A of dV and dK) — and runs the products on them on its own thread
 * (ft__gemm_bf16_words). The same bits as through ft_cpu_gemm_bf16 (tests/test_gemm_bf16.c compares with
 * the scalar reference GEMM's path); at GPT-2 shapes (B 4, T 256, NH 12, HS 64, causal, one thread) the
 * forward + backward took 8.2-8.4 ms before, 6.9-7.1 after. */
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "ops/cpu/gemm_bf16_internal.h"
#include "ops/cpu/vmath.h"
#include "ops/cpu/vmath_avx512.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#define ATT_BLK 32 /* query rows per causal block (32 measured 2-6% faster than 64 at GPT-2 shapes) */
#ifndef ATT_BLK_BF16
#define ATT_BLK_BF16 64 /* the same in bf16: with the operands converted once per task (words below), 64 measured 5-8%
                           * faster than 128 at T = 256 and 1024 (fewer products above the diagonal); through
                           * ft_cpu_gemm_bf16 per product it was the other way round (the per-call cost) */
#endif
/* the bf16 products read K ranges of their packed operands that start on a pair of rows (gemm_bf16_internal.h) */
_Static_assert(ATT_BLK_BF16 % 2 == 0, "bf16 causal blocks must have an even number of rows");

static inline int imin(int a, int b) { return a < b ? a : b; }

/* C[M,N] = alpha op(A) op(B) + beta C (row-major; op = transpose when t*): OpenBLAS in f32; in bf16
 * ft_cpu_gemm_bf16, where every caller passes alpha = 1 and beta 0 or 1 (assign / accumulate) */
static void mm(int bf16, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc) {
    if (bf16) ft_cpu_gemm_bf16(C, ldc, A, lda, ta, B, ldb, tb, M, N, K, beta != 0.0f, NULL);
    else cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                     beta, C, ldc);
}

#ifdef FT_VMATH_AVX512
/* the three passes of softmax_row below over p[0..L) in AVX-512 (ft_vexp16; full vectors unmasked, the
 * tail masked; the sum in double, two accumulators of 8) */
/* s0 += e's low 8 lanes, s1 += its high 8, in double */
static inline void add_pd16(__m512d *s0, __m512d *s1, __m512 e) {
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
}

static void softmax_row16(float *p, int L, float scale) {
    int nf = L & ~15;
    __mmask16 kt = (__mmask16)((1u << (L - nf)) - 1);
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nf; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(p + j));
    if (kt) mv = _mm512_mask_max_ps(mv, kt, mv, _mm512_maskz_loadu_ps(kt, p + nf));
    float m = _mm512_reduce_max_ps(mv) * scale;
    __m512 sc = _mm512_set1_ps(scale), mm = _mm512_set1_ps(m);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int j = 0; j < nf; j += 16) {
        __m512 e = ft_vexp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(p + j), sc), mm));
        _mm512_storeu_ps(p + j, e);
        add_pd16(&s0, &s1, e);
    }
    if (kt) {
        __m512 e = _mm512_maskz_mov_ps(kt, ft_vexp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(kt, p + nf), sc), mm)));
        _mm512_mask_storeu_ps(p + nf, kt, e);
        add_pd16(&s0, &s1, e);
    }
    __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
    for (int j = 0; j < nf; j += 16) _mm512_storeu_ps(p + j, _mm512_mul_ps(_mm512_loadu_ps(p + j), inv));
    if (kt) _mm512_mask_storeu_ps(p + nf, kt, _mm512_mul_ps(_mm512_maskz_loadu_ps(kt, p + nf), inv));
}
#endif

/* p[0..T): scores at keys j < L in (L = t+1 causal, T otherwise), times `scale` (> 0; 1 when the product
 * applied it) the probabilities out; keys hidden by seg / pad and j >= L set to 0. A row whose keys pad hid
 * entirely attends uniformly over the keys seg allows. Three passes over the row, all vectorised: the max of
 * the raw scores (scale > 0 and rounding are monotone, so scale * max is the max of the scaled scores), the
 * exponentials stored (the score's scaling folded in), their sum, in double, and the normalisation. */
static void softmax_row(float *p, int t, int L, int T, const int *segb, const int *padb, float scale) {
    if (segb || padb) {
        int st = segb ? segb[t] : 0, nvis = 0;
        for (int j = 0; j < L; j++) {
            int vis = (!segb || segb[j] == st) && (!padb || padb[j]);
            if (!vis) p[j] = -INFINITY;
            nvis += vis;
        }
        if (nvis == 0) {
            int cnt = 0;
            for (int j = 0; j < L; j++) cnt += !segb || segb[j] == st;
            float u = (float)(1.0 / cnt);
            for (int j = 0; j < L; j++) p[j] = !segb || segb[j] == st ? u : 0.0f;
            if (L < T) memset(p + L, 0, (size_t)(T - L) * sizeof(float));
            return;
        }
    }
#ifdef FT_VMATH_AVX512
    softmax_row16(p, L, scale);
#else
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < L; j++) m = p[j] > m ? p[j] : m;
    m *= scale;
    /* exp and sum in separate loops: a float exp feeding a double sum in one loop stays scalar (gcc) */
#pragma omp simd
    for (int j = 0; j < L; j++) p[j] = ft_vexpf(p[j] * scale - m);
    double s = 0.0; /* double sum: keeps the probabilities within an ulp of the exact softmax */
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < L; j++) s += p[j];
    float inv = (float)(1.0 / s);
#pragma omp simd
    for (int j = 0; j < L; j++) p[j] *= inv;
#endif
    if (L < T) memset(p + L, 0, (size_t)(T - L) * sizeof(float));
}

/* rows [r0, r1) of the probabilities of pair bh (row stride T, first n columns) through the attention-
 * dropout mask (backend.h) into D (row stride T; may be P). The reference dropout is the single-threaded
 * mask function: this runs inside the parallel loop. */
static void drop_rows(float *D, const float *P, int r0, int r1, int n, int T, size_t bh, float p, unsigned long long seed) {
    for (int t = r0; t < r1; t++)
        ft_ref_dropout_forward(NULL, D + (size_t)(t - r0) * T, P + (size_t)(t - r0) * T, (size_t)n, p,
                               ft_attn_dropout_row_seed(seed, bh * (size_t)T + (size_t)t));
}

/* per-thread buffers kept for the life of the thread (grown when needed): the forward's dropped copy of a
 * row block, the backward's S when the caller passes no scratch, the bf16 operands of a task (WORDS).
 * A thread-specific key frees them when the thread ends (OpenMP workers of a thread that trained and
 * exited), so nothing outlives its thread. */
#define NBUF 3
#define WORDS 2 /* the slot of the bf16 words (gemm_bf16_internal.h), 4 bytes each like a float */
static _Thread_local float *tl_buf[NBUF];
static _Thread_local size_t tl_n[NBUF];
static pthread_key_t  tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_key_ok;

static void tl_free(void *unused) {
    (void)unused;
    for (int i = 0; i < NBUF; i++) { free(tl_buf[i]); tl_buf[i] = NULL; tl_n[i] = 0; }
}
static void tl_key_make(void) { tl_key_ok = pthread_key_create(&tl_key, tl_free) == 0; }

static float *thread_buf(int i, size_t n) {
    if (n > tl_n[i]) {
        if (!tl_buf[0] && !tl_buf[1] && !tl_buf[2]) { /* the thread's first buffer: have it freed at thread exit */
            pthread_once(&tl_once, tl_key_make);
            if (tl_key_ok) pthread_setspecific(tl_key, (void *)1);
        }
        float *p = realloc(tl_buf[i], n * sizeof(float));
        if (!p) return NULL;
        tl_buf[i] = p;
        tl_n[i] = n;
    }
    return tl_buf[i];
}

static int mask_causal(const ft_attn_mask *m) { return m && (m->kind & FT_ATTN_CAUSAL); }
static const int *mask_seg(const ft_attn_mask *m, int b, int T) {
    return m && (m->kind & FT_ATTN_SEGMENTS) && m->seg ? m->seg + (size_t)b * T : NULL;
}
static const int *mask_pad(const ft_attn_mask *m, int b, int T) {
    return m && (m->kind & FT_ATTN_PADDING) && m->pad ? m->pad + (size_t)b * T : NULL;
}

/* bf16 with an AVX-512 kernel: the products on operands converted once per task (gemm_bf16_internal.h), in
 * one per-thread buffer carved into 64-byte aligned pieces; else (f32, or the scalar bf16 reference) mm() */
static int use_words(int bf16) { return bf16 && ft_bf16_isa_get() != FT_BF16_ISA_SCALAR; }
static size_t up16(size_t n) { return (n + 15) / 16 * 16; }
static uint32_t *carve(uint32_t **at, size_t words) {
    uint32_t *p = *at;
    *at += up16(words);
    return p;
}
/* w floats at p into L2, ahead of their use by the thread's next task (its rows are ld apart: the hardware
 * prefetchers do not see them coming) */
static inline void pf_l2(const float *p, int w) {
    for (int i = 0; i < w; i += 16) __builtin_prefetch(p + i, 0, 2);
    __builtin_prefetch(p + w - 1, 0, 2);
}

/* rows [0, n) of src (row stride ld, w values each) as rows of words, kw = ceil(w / 2) words apart */
static void rows_words(uint32_t *dst, size_t kw, const float *src, size_t ld, int n, int w) {
    for (int t = 0; t < n; t++) ft__bf16_row_words(dst + (size_t)t * kw, src + (size_t)t * ld, w);
}

static void attn_forward(int bf16, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v,
                         int ldv, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float pdrop,
                         unsigned long long seed) {
    int G = NH / NKV, OC = NH * HS, causal = mask_causal(mask), step = causal ? (bf16 ? ATT_BLK_BF16 : ATT_BLK) : T;
    float scale = 1.0f / sqrtf((float)HS);
    int failed = 0, words = use_words(bf16);
    /* words: kq words per row of Q (per column of a K^T / V^T pack), kt per row of P (per column of a V pack) */
    size_t kq = (size_t)(HS + 1) / 2, kt = (size_t)(T + 1) / 2;
    size_t nw = words ? up16(T * kq) + up16(ft__bf16_bpack_words(T, HS)) + up16(ft__bf16_bpack_words(HS, T)) + up16(step * kt) : 0;
#pragma omp parallel for schedule(static) reduction(|: failed) if ((size_t)B * NH * T * T * HS >= FT_PAR_MIN)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, g = h / G;
        const float *qh = q + (size_t)b * T * ldq + (size_t)h * HS;
        const float *kh = k + (size_t)b * T * ldk + (size_t)g * HS, *vh = v + (size_t)b * T * ldv + (size_t)g * HS;
        const int *segb = mask_seg(mask, b, T), *padb = mask_pad(mask, b, T);
        float *P = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * OC + (size_t)h * HS;
        /* words: Qw [T][kq] (rows of Q), Kp (K^T [HS, T] packed), Vp (V [T, HS] packed), Pw [step][kt] (a block of P) */
        uint32_t *Qw = NULL, *Kp = NULL, *Vp = NULL, *Pw = NULL;
        if (words) {
            uint32_t *at = (uint32_t *)thread_buf(WORDS, nw);
            if (!at) { failed = 1; continue; }
            Qw = carve(&at, T * kq);
            Kp = carve(&at, ft__bf16_bpack_words(T, HS));
            Vp = carve(&at, ft__bf16_bpack_words(HS, T));
            Pw = carve(&at, step * kt);
            rows_words(Qw, kq, qh, (size_t)ldq, T, HS);
            ft__bf16_pack_b(Kp, kh, ldk, 1, T, HS);
            ft__bf16_pack_b(Vp, vh, ldv, 0, HS, T);
        }
        for (int r0 = 0; r0 < T; r0 += step) {
            int r1 = imin(T, r0 + step), M = r1 - r0, nk = causal ? r1 : T;
            float *Pb = P + (size_t)r0 * T;
            if (words) ft__gemm_bf16_words(Pb, T, Qw + r0 * kq, kq, 1, Kp, kq, 0, M, nk, (int)kq, 0);
            else mm(bf16, 0, 1, M, nk, HS, scale, qh + (size_t)r0 * ldq, ldq, kh, ldk, 0.0f, Pb, T);
            /* bf16: the scale the product has no alpha for, applied inside the softmax */
            for (int t = r0; t < r1; t++) softmax_row(P + (size_t)t * T, t, causal ? t + 1 : T, T, segb, padb, bf16 ? scale : 1.0f);
            if (words && bh + 1 < B * NH) { /* rows r0..r1 of the next task's q, k, v */
                int b1 = (bh + 1) / NH, h1 = (bh + 1) % NH, g1 = h1 / G;
                for (int t = r0; t < r1; t++) {
                    pf_l2(q + ((size_t)b1 * T + t) * ldq + (size_t)h1 * HS, HS);
                    pf_l2(k + ((size_t)b1 * T + t) * ldk + (size_t)g1 * HS, HS);
                    pf_l2(v + ((size_t)b1 * T + t) * ldv + (size_t)g1 * HS, HS);
                }
            }
            const float *Pv = Pb;
            if (pdrop > 0) {
                float *D = thread_buf(0, (size_t)M * T);
                if (!D) { failed = 1; break; }
                drop_rows(D, Pb, r0, r1, nk, T, (size_t)bh, pdrop, seed);
                Pv = D;
            }
            if (words) { /* nk: a block's end (even, ATT_BLK_BF16) or T */
                rows_words(Pw, kt, Pv, (size_t)T, M, nk);
                ft__gemm_bf16_words(o + (size_t)r0 * OC, OC, Pw, kt, 1, Vp, kt, 0, M, HS, (nk + 1) / 2, 0);
            } else mm(bf16, 0, 0, M, HS, nk, 1.0f, Pv, T, vh, ldv, 0.0f, o + (size_t)r0 * OC, OC);
        }
    }
    /* out of memory for the dropped copy: poison the output so the trainer's finite checks stop the run */
    if (failed) for (size_t i = 0; i < (size_t)B * T * OC; i++) out[i] = NAN;
}

void ft_cpu_attn_forward(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                         const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float pdrop,
                         unsigned long long seed) {
    attn_forward(0, out, att, q, ldq, k, ldk, v, ldv, mask, B, T, NH, NKV, HS, pdrop, seed);
}
void ft_cpu_attn_bf16_forward(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v,
                              int ldv, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float pdrop,
                              unsigned long long seed) {
    attn_forward(1, out, att, q, ldq, k, ldk, v, ldv, mask, B, T, NH, NKV, HS, pdrop, seed);
}

static void attn_backward(int bf16, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, int ldq,
                          const float *k, int ldk, const float *v, int ldv, const float *att, const ft_attn_mask *mask,
                          int B, int T, int NH, int NKV, int HS, float pdrop, unsigned long long seed) {
    int G = NH / NKV, OC = NH * HS, causal = mask_causal(mask), step = causal ? (bf16 ? ATT_BLK_BF16 : ATT_BLK) : T;
    float scale = 1.0f / sqrtf((float)HS);
    /* bf16: the scale goes into dS (its products take no alpha); f32: into the products' alpha */
    float ds_scale = bf16 ? scale : 1.0f, mm_scale = bf16 ? 1.0f : scale;
    int failed = 0, words = use_words(bf16);
    /* words: kq words per row of Q / dO (per column of a V^T pack), kt per row of P / dS (per column of a K,
     * dO or Q pack, per pair of rows of P^T / dS^T: T words) */
    size_t kq = (size_t)(HS + 1) / 2, kt = (size_t)(T + 1) / 2, nbt = ft__bf16_bpack_words(HS, T);
    size_t nw = words ? up16(T * kq) + up16(ft__bf16_bpack_words(T, HS)) + 3 * up16(nbt) + up16(step * kt) + 2 * up16(kt * T) : 0;
#pragma omp parallel for schedule(static) reduction(|: failed) if ((size_t)B * NH * T * T * HS >= FT_PAR_MIN)
    for (int bg = 0; bg < B * NKV; bg++) {
        int b = bg / NKV, g = bg % NKV;
        const float *kg = k + (size_t)b * T * ldk + (size_t)g * HS, *vg = v + (size_t)b * T * ldv + (size_t)g * HS;
        float *dkg = dk + (size_t)b * T * ldk + (size_t)g * HS, *dvg = dv + (size_t)b * T * ldv + (size_t)g * HS;
        /* words: S in the thread's own buffer even when the caller passes scratch (T x T floats that stay in L2,
         * where the task's slice of a [B,NH,T,T] scratch is written and read back through memory: backward
         * 4.3 -> 4.1 ms at GPT-2 shapes, one thread) */
        int use_own = !scratch || words;
        float *own = use_own ? thread_buf(1, (size_t)T * T) : NULL;
        if (use_own && !own) { failed = 1; continue; }
        /* words: dOw [T][kq] (rows of dO), Vt (V^T [HS, T] packed), Kp (K [T, HS]), dOp (dO [T, HS]), Qp (Q [T, HS]),
         * Sw [step][kt] (a block of dS), PT [kt][T] (pairs of rows of P: P^T as A), ST [kt][T] (the same of dS) */
        uint32_t *dOw = NULL, *Vt = NULL, *Kp = NULL, *dOp = NULL, *Qp = NULL, *Sw = NULL, *PT = NULL, *ST = NULL;
        if (words) {
            uint32_t *at = (uint32_t *)thread_buf(WORDS, nw);
            if (!at) { failed = 1; continue; }
            dOw = carve(&at, T * kq);
            Vt = carve(&at, ft__bf16_bpack_words(T, HS));
            Kp = carve(&at, nbt);
            dOp = carve(&at, nbt);
            Qp = carve(&at, nbt);
            Sw = carve(&at, step * kt);
            PT = carve(&at, kt * T);
            ST = carve(&at, kt * T);
            ft__bf16_pack_b(Vt, vg, ldv, 1, T, HS);
            ft__bf16_pack_b(Kp, kg, ldk, 0, HS, T);
        }
        for (int h = g * G; h < (g + 1) * G; h++) {
            float beta = h == g * G ? 0.0f : 1.0f; /* first head of the group assigns dk/dv */
            size_t bh = (size_t)b * NH + h;
            const float *qh = q + (size_t)b * T * ldq + (size_t)h * HS, *dO = dout + (size_t)b * T * OC + (size_t)h * HS;
            float *dqh = dq + (size_t)b * T * ldq + (size_t)h * HS;
            const float *P = att + bh * T * T;
            float *S = use_own ? own : scratch + bh * T * T;
            /* the probabilities the forward's PV product read: P itself (zero at every hidden key, att layout
             * above), or with dropout S = P dropped on the allowed keys, exact zeros up to the end of each
             * row's block */
            const float *Pv = P;
            if (pdrop > 0) {
                for (int t = 0; t < T; t++) {
                    int L = causal ? t + 1 : T, r1 = causal ? imin(T, (t / step + 1) * step) : T;
                    memset(S + (size_t)t * T + L, 0, (size_t)(r1 - L) * sizeof(float));
                    drop_rows(S + (size_t)t * T, P + (size_t)t * T, t, t + 1, L, T, bh, pdrop, seed);
                }
                Pv = S;
            }
            if (words) { /* rows of dO; dO and Q packed; P^T: the pairs of rows of Pv up to the end of their block */
                rows_words(dOw, kq, dO, (size_t)OC, T, HS);
                ft__bf16_pack_b(dOp, dO, OC, 0, HS, T);
                ft__bf16_pack_b(Qp, qh, ldq, 0, HS, T);
                for (int t = 0; t < T; t += 2)
                    ft__bf16_pair_words(PT + (size_t)(t / 2) * T, Pv + (size_t)t * T, t + 1 < T ? Pv + (size_t)(t + 1) * T : NULL,
                                        causal ? imin(T, (t / step + 1) * step) : T);
            }
            /* dV[c0:c1] (+)= P[rs:T, c0:c1]^T dO[rs:T], rs = c0 causal (rows above see none of these keys), else 0 */
            for (int c0 = 0; c0 < T; c0 += step) {
                int c1 = imin(T, c0 + step), rs = causal ? c0 : 0;
                if (words)
                    ft__gemm_bf16_words(dvg + (size_t)c0 * ldv, ldv, PT + (size_t)(rs / 2) * T + c0, 1, (size_t)T, dOp, kt, rs / 2, c1 - c0, HS,
                                        (T - rs + 1) / 2, beta != 0.0f);
                else
                    mm(bf16, 1, 0, c1 - c0, HS, T - rs, 1.0f, Pv + (size_t)rs * T + c0, T, dO + (size_t)rs * OC, OC, beta,
                       dvg + (size_t)c0 * ldv, ldv);
            }
            /* dP = dO V^T on the allowed blocks, then dS = P * (dP - rowsum(P * dP)) in place */
            for (int r0 = 0; r0 < T; r0 += step) {
                int r1 = imin(T, r0 + step), nk = causal ? r1 : T;
                if (words) ft__gemm_bf16_words(S + (size_t)r0 * T, T, dOw + r0 * kq, kq, 1, Vt, kq, 0, r1 - r0, nk, (int)kq, 0);
                else mm(bf16, 0, 1, r1 - r0, nk, HS, 1.0f, dO + (size_t)r0 * OC, OC, vg, ldv, 0.0f, S + (size_t)r0 * T, T);
                if (words && bh + 1 < (size_t)B * NH) { /* rows r0..r1 of the next head's dO and q (and k, v: the next task's) */
                    int b1 = (int)((bh + 1) / NH), h1 = (int)((bh + 1) % NH), g1 = h1 / G, newg = h1 % G == 0;
                    for (int t = r0; t < r1; t++) {
                        pf_l2(dout + ((size_t)b1 * T + t) * OC + (size_t)h1 * HS, HS);
                        pf_l2(q + ((size_t)b1 * T + t) * ldq + (size_t)h1 * HS, HS);
                        if (newg) {
                            pf_l2(k + ((size_t)b1 * T + t) * ldk + (size_t)g1 * HS, HS);
                            pf_l2(v + ((size_t)b1 * T + t) * ldv + (size_t)g1 * HS, HS);
                        }
                    }
                }
                for (int t = r0; t < r1; t++) {
                    int L = causal ? t + 1 : T;
                    const float *p = P + (size_t)t * T;
                    float *ds = S + (size_t)t * T;
                    if (pdrop > 0) drop_rows(ds, ds, t, t + 1, L, T, bh, pdrop, seed);
                    double dd = 0.0;
#pragma omp simd reduction(+ : dd)
                    for (int j = 0; j < L; j++) dd += (double)p[j] * ds[j];
                    float dot = (float)dd;
                    if (bf16) {
#pragma omp simd
                        for (int j = 0; j < L; j++) ds[j] = p[j] * (ds[j] - dot) * ds_scale;
                    } else {
#pragma omp simd
                        for (int j = 0; j < L; j++) ds[j] = p[j] * (ds[j] - dot);
                    }
                    memset(ds + L, 0, (size_t)(nk - L) * sizeof(float));
                }
                /* dQ[r0:r1] = scale * dS[r0:r1, 0:nk] K[0:nk] */
                if (words) { /* and the block's pairs of rows of dS for dK (r0 even) */
                    rows_words(Sw, kt, S + (size_t)r0 * T, (size_t)T, r1 - r0, nk);
                    ft__gemm_bf16_words(dqh + (size_t)r0 * ldq, ldq, Sw, kt, 1, Kp, kt, 0, r1 - r0, HS, (nk + 1) / 2, 0);
                    for (int t = r0; t < r1; t += 2)
                        ft__bf16_pair_words(ST + (size_t)(t / 2) * T, S + (size_t)t * T, t + 1 < r1 ? S + (size_t)(t + 1) * T : NULL, nk);
                } else mm(bf16, 0, 0, r1 - r0, HS, nk, mm_scale, S + (size_t)r0 * T, T, kg, ldk, 0.0f, dqh + (size_t)r0 * ldq, ldq);
            }
            /* dK[c0:c1] (+)= scale * dS[rs:T, c0:c1]^T Q[rs:T] */
            for (int c0 = 0; c0 < T; c0 += step) {
                int c1 = imin(T, c0 + step), rs = causal ? c0 : 0;
                if (words)
                    ft__gemm_bf16_words(dkg + (size_t)c0 * ldk, ldk, ST + (size_t)(rs / 2) * T + c0, 1, (size_t)T, Qp, kt, rs / 2, c1 - c0, HS,
                                        (T - rs + 1) / 2, beta != 0.0f);
                else
                    mm(bf16, 1, 0, c1 - c0, HS, T - rs, mm_scale, S + (size_t)rs * T + c0, T, qh + (size_t)rs * ldq, ldq, beta,
                       dkg + (size_t)c0 * ldk, ldk);
            }
        }
    }
    /* out of memory for a T x T buffer: poison the gradient so the trainer's finite checks stop the run */
    if (failed)
        for (size_t i = 0; i < (size_t)B * T; i++)
            for (int c = 0; c < OC; c++) dq[i * ldq + c] = NAN;
}

void ft_cpu_attn_backward(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, int ldq,
                          const float *k, int ldk, const float *v, int ldv, const float *att, const ft_attn_mask *mask,
                          int B, int T, int NH, int NKV, int HS, float pdrop, unsigned long long seed) {
    attn_backward(0, dq, dk, dv, scratch, dout, q, ldq, k, ldk, v, ldv, att, mask, B, T, NH, NKV, HS, pdrop, seed);
}
void ft_cpu_attn_bf16_backward(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                               int ldq, const float *k, int ldk, const float *v, int ldv, const float *att,
                               const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float pdrop,
                               unsigned long long seed) {
    attn_backward(1, dq, dk, dv, scratch, dout, q, ldq, k, ldk, v, ldv, att, mask, B, T, NH, NKV, HS, pdrop, seed);
}
