/* textmetrics_internal.h — pieces shared by the text-metric files of src/eval (not a public header).
 *
 * The public API is include/finetune/textmetrics.h. Here: UTF-8 and Python-whitespace helpers, a string
 * interner (token -> dense id), an n-gram count map keyed by 128-bit packed n-grams, and one function per
 * metric computing one example's sufficient statistics. Every metric works on token ids, never on strings
 * compared twice, so one example costs O(length) hash operations (plus the LCS tables of ROUGE-L).
 *
 * n-gram keys (exact, no hashing of content into fewer bits):
 *   word n-grams (n <= 4): key.a = (id1+1) << 32 | (id2+1), key.b = (id3+1) << 32 | (id4+1), absent = 0
 *   char n-grams (n <= 6): code points + 1, 21 bits each, 3 per 64-bit word (a: 1..3, b: 4..6), absent = 0
 * so the order of a key is the number of its non-zero slots and n-grams of different orders never collide.
 *
 * Threads: nothing global; each ft__tm_* object belongs to one thread at a time. */
#ifndef FT_EVAL_TEXTMETRICS_INTERNAL_H
#define FT_EVAL_TEXTMETRICS_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "finetune/textmetrics.h"

/* ---- UTF-8 and whitespace ---- */

/* 1 when s[0, n) is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF, as Python's
 * strict decoder); else 0 and *bad = offset of the first bad byte. */
int ft__tm_utf8_valid(const char *s, size_t n, size_t *bad);
/* The code point at s[*i] of valid UTF-8; advances *i past it. */
uint32_t ft__tm_utf8_next(const char *s, size_t n, size_t *i);
/* Python's str.isspace(): \t \n \v \f \r, U+001C..U+001F, space, U+0085, U+00A0, U+1680, U+2000..U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000 — what str.split() with no argument splits on. */
int ft__tm_is_pyspace(uint32_t cp);
/* Python's str.lower() of one code point into out[2] (U+0130 lowers to two: i + U+0307); returns the count.
 * Simple case mapping of utf8proc otherwise; Greek final sigma is applied by the caller (ft__tm_lower). */
int ft__tm_lower_cp(uint32_t cp, uint32_t out[2]);
/* Python's str.lower() of s[0, n) (valid UTF-8) into a malloc'd NUL-terminated string (*out_n its length),
 * with Python's final-sigma rule. FT_ERR_NOMEM. */
int ft__tm_lower(const char *s, size_t n, char **out, size_t *out_n);
/* Appends code point cp as UTF-8 to buf (at least 4 bytes free); returns the bytes written. */
int ft__tm_utf8_put(char *buf, uint32_t cp);

/* ---- interner: string -> dense id 0, 1, 2, ... (the strings are copied) ---- */
typedef struct ft__tm_intern {
    char     *pool;      /* [pool_n] the strings, back to back (not NUL-terminated) */
    size_t    pool_n, pool_cap;
    size_t   *off;       /* [n] offset of string id in pool */
    uint32_t *len;       /* [n] its length */
    int32_t  *slot;      /* [mask + 1] id + 1 of the string in that slot, 0 = empty */
    uint32_t  mask;
    int       n, cap;
} ft__tm_intern;
/* The id of s[0, len) (added when new), or FT_ERR_NOMEM. */
int  ft__tm_intern_id(ft__tm_intern *t, const char *s, size_t len);
void ft__tm_intern_free(ft__tm_intern *t);

/* ---- token lists ---- */
typedef struct ft__tm_toks { int32_t *id; int n, cap; } ft__tm_toks;
int  ft__tm_toks_push(ft__tm_toks *t, int32_t id);
void ft__tm_toks_free(ft__tm_toks *t);
/* Python's s.split() of s[0, n) (valid UTF-8), each piece interned, appended to out. */
int  ft__tm_split_ws(ft__tm_intern *in, const char *s, size_t n, ft__tm_toks *out);

/* ---- n-gram count map: 128-bit key -> FT__TM_COLS int32 counters ---- */
#define FT__TM_COLS 3
typedef struct ft__tm_key { uint64_t a, b; } ft__tm_key;
typedef struct ft__tm_map {
    ft__tm_key *keys;  /* [mask + 1] */
    int32_t    *cnt;   /* [mask + 1][FT__TM_COLS] */
    uint8_t    *full;  /* [mask + 1] */
    int32_t    *used;  /* [n] occupied slots in insertion order */
    uint32_t    mask;
    int         n, used_cap;
} ft__tm_map;
/* Makes room for `more` insertions without rehashing; FT_ERR_NOMEM. */
int  ft__tm_map_reserve(ft__tm_map *m, int more);
/* The slot of k, inserted with zero counters when absent (call ft__tm_map_reserve first). */
int  ft__tm_map_slot(ft__tm_map *m, ft__tm_key k);
/* The slot of k or -1. */
int  ft__tm_map_find(const ft__tm_map *m, ft__tm_key k);
void ft__tm_map_clear(ft__tm_map *m);
void ft__tm_map_free(ft__tm_map *m);
static inline int32_t *ft__tm_map_cnt(ft__tm_map *m, int slot) { return m->cnt + (size_t)slot * FT__TM_COLS; }
/* key of the word n-gram t[0, n), n in 1..4 */
ft__tm_key ft__tm_word_key(const int32_t *t, int n);
/* order of a word-n-gram key */
int ft__tm_word_key_order(ft__tm_key k);

/* ---- scratch shared by one ft_text_stats_compute run ---- */
typedef struct ft__tm_ctx {
    ft__tm_intern words;   /* 13a / whitespace tokens */
    ft__tm_intern rtoks;   /* ROUGE tokens (after stemming) */
    ft__tm_map    map;     /* per-example n-gram counts */
    ft__tm_map    map2;    /* a second one (ROUGE-Lsum token counts, distinct n-grams) */
    ft__tm_toks   t0, t1;  /* scratch token lists */
    char         *buf;     /* scratch text buffer */
    size_t        buf_cap;
    int32_t      *stem_of; /* [stem_cap] raw ROUGE token id -> stemmed id + 1 (0 = not yet) */
    int           stem_cap;
    ft__tm_intern rraw;    /* raw ROUGE tokens before stemming */
    int32_t      *dp;      /* LCS tables */
    size_t        dp_cap;
} ft__tm_ctx;
void ft__tm_ctx_free(ft__tm_ctx *cx);
/* Grows cx->buf to at least n bytes. */
int  ft__tm_ctx_buf(ft__tm_ctx *cx, size_t n);

/* ---- BLEU (bleu.c, tok13a.c) ---- */
/* sacreBLEU's 13a tokenizer of s[0, n) (valid UTF-8), tokens interned into cx->words, appended to out. */
int ft__tok13a(ft__tm_ctx *cx, const char *s, size_t n, ft__tm_toks *out);
/* One segment's BLEU statistics: st = [hyp_len, ref_len, correct 1..4, total 1..4] against nr >= 1
 * references (max n-gram counts over them; ref_len = the closest length, ties to the shorter). */
#define FT__BLEU_NSTATS 10
int ft__bleu_segment(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int64_t st[FT__BLEU_NSTATS]);
/* sacreBLEU's compute_bleu (smooth 'exp') from summed statistics. */
void ft__bleu_from_stats(const double st[FT__BLEU_NSTATS], int effective_order, ft_bleu_result *out);

/* ---- chrF (chrf.c) ---- */
#define FT__CHRF_ORDER 6
#define FT__CHRF_NSTATS (3 * FT__CHRF_ORDER)
/* One segment's chrF statistics [hyp, ref, match] x orders 1..6 of the best reference (sacreBLEU). */
int ft__chrf_segment(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int64_t st[FT__CHRF_NSTATS]);
/* sacreBLEU's chrF (beta 2, 0-100) from summed statistics. */
double ft__chrf_from_stats(const double st[FT__CHRF_NSTATS]);

/* ---- ROUGE (rouge.c, porter.c) ---- */
/* F-measures [rouge1, rouge2, rougeL, rougeLsum] of hyp against the best of nr references (rouge-score's
 * score_multi: the max per type). FT_ERR_RANGE when an LCS table would pass FT__TM_LCS_MAX cells. */
#define FT__TM_LCS_MAX ((size_t)1 << 28)
int ft__rouge_example(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, int stem, double f[4]);

/* ---- SQuAD exact match / token F1 (qa_f1.c) ---- */
/* max over references of EM (0 or 1) and token F1 (0..1), SQuAD v2 evaluation script definitions. */
int ft__qa_example(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, double *em, double *f1);

/* ---- distinct-n (distinct.c) ---- */
/* Whitespace tokens of hyp as unigram / bigram keys: the n-grams are numbered densely corpus-wide through
 * `ids` (the map's column 0 holds dense id + 1), and their dense ids appended to uni / bi. */
int ft__distinct_example(ft__tm_ctx *cx, ft__tm_map *ids, int *n_dense, const char *hyp, ft__tm_toks *uni, ft__tm_toks *bi);

/* ---- numpy-compatible random numbers (pcg64.c) ---- */
/* numpy.random.default_rng(seed) (SeedSequence -> PCG64) and Generator.integers(0, n) for n < 2^32
 * (Lemire's method on buffered 32-bit halves), so a resampling plan equals numpy's draw for draw. */
typedef struct ft__pcg64 {
    uint64_t st_hi, st_lo, inc_hi, inc_lo;  /* 128-bit state and increment */
    int      has32;  uint32_t u32;          /* buffered upper half for 32-bit draws */
} ft__pcg64;
void     ft__pcg64_seed(ft__pcg64 *r, uint64_t seed);
uint64_t ft__pcg64_next64(ft__pcg64 *r);
uint32_t ft__pcg64_next32(ft__pcg64 *r);
/* integers(0, n) with numpy's algorithm, 1 <= n <= 2^32 - 1 */
uint32_t ft__pcg64_below(ft__pcg64 *r, uint32_t n);
/* ---- the statistics object (textmetrics.c computes it, bootstrap.c resamples it) ---- */
struct ft_text_stats {
    int       n;           /* examples */
    int       n_refs;      /* references per example, -1 when it varies */
    unsigned  metrics;     /* FT_TEXT_* groups */
    int       stem;
    int64_t  *bleu;        /* [n][FT__BLEU_NSTATS] when FT_TEXT_BLEU */
    int64_t  *chrf;        /* [n][FT__CHRF_NSTATS] when FT_TEXT_CHRF */
    double   *ex;          /* [n][FT_TS_COUNT] per-example scores (sentence BLEU / chrF, ROUGE, EM, F1, distinct) */
    int32_t  *uni, *bi;    /* distinct: dense n-gram numbers of all hypotheses, back to back */
    int64_t  *uni_off, *bi_off;  /* [n + 1] example i's numbers: uni[uni_off[i], uni_off[i + 1]) */
    int       n_dense;     /* n-gram numbers in use (unigrams and bigrams share one numbering) */
};

/* Scores of the examples idx[0, n) (repeats allowed; NULL = every example once) into v [FT_TS_COUNT];
 * stamp [st->n_dense] is zeroed scratch for distinct-n with *gen a counter the call increments. */
void ft__text_score_subset(const ft_text_stats *st, const int32_t *idx, int32_t *stamp, int32_t *gen, double v[FT_TS_COUNT]);
/* sacreBLEU's signature lines; bs / seed added when n_bootstrap > 0 */
void ft__text_signatures(const ft_text_stats *st, int n_bootstrap, uint64_t seed, char *bleu, size_t bleu_cap,
                         char *chrf, size_t chrf_cap);
#endif
