/* textmetrics.h — text-generation metrics as pure functions: BLEU, chrF, ROUGE, exact match / F1, distinct-n,
 * with per-example scores, bootstrap confidence intervals and paired significance tests.
 *
 * What is here
 *   One call scores a system: hypotheses hyp[i] (i < n) against reference streams refs[r][i] (r < n_refs),
 *   the layout of sacreBLEU (a list of reference "documents", each line-aligned with the hypotheses). A NULL
 *   refs[r][i] means example i has no r-th reference (a variable number of references per example, as
 *   sacreBLEU's None); every example needs at least one unless only distinct-n is asked for.
 *
 *     ft_text_scores_compute    corpus scores in one call (no state kept)
 *     ft_text_stats_compute     the per-example sufficient statistics (an opaque ft_text_stats), from which
 *       ft_text_stats_scores      the corpus scores,
 *       ft_text_stats_example     one example's scores,
 *       ft_text_stats_bootstrap   bootstrap 95% confidence intervals of every score,
 *       ft_text_stats_paired      paired bootstrap significance between two systems on the same references
 *     are computed without re-reading the text.
 *     ft_text_file_read         the reader of `finetune score`'s files: one text per line or JSONL (below)
 *     ft_porter_stem            NLTK's Porter stemmer on one word
 *
 * Example (a caller with generated texts and one reference each)
 *
 *     const char *hyp[2]  = {"The cat sat on the mat.", "Hello world"};
 *     const char *ref0[2] = {"The cat is on the mat.", "Hello, world!"};
 *     const char *const *refs[1] = {ref0};
 *     ft_text_metric_opts o = ft_text_metric_default_opts();   // every metric, no stemming
 *     ft_text_scores s;
 *     int rc = ft_text_scores_compute(hyp, refs, 1, 2, &o, &s);
 *     if (rc < 0) fprintf(stderr, "%s\n", ft_last_error());
 *     else printf("BLEU %.2f  chrF %.2f  ROUGE-L %.4f  (%s)\n", s.v[FT_TS_BLEU], s.v[FT_TS_CHRF],
 *                 s.v[FT_TS_ROUGEL], s.bleu_signature);
 *
 *     // intervals and per-example scores
 *     ft_text_stats *st;
 *     if (ft_text_stats_compute(&st, hyp, refs, 1, 2, &o) == FT_OK) {
 *         ft_text_bootstrap b;
 *         if (ft_text_stats_bootstrap(st, 1000, 12345, &b) == FT_OK)
 *             printf("BLEU 95%% CI [%.2f, %.2f]\n", b.low[FT_TS_BLEU], b.high[FT_TS_BLEU]);
 *         double ex[FT_TS_COUNT];
 *         ft_text_stats_example(st, 0, ex);       // ex[FT_TS_BLEU]: sentence BLEU of example 0
 *         ft_text_stats_free(st);
 *     }
 *
 * Definitions (each reproduces the reference library; tests/test_textmetrics.c checks them against
 * fixtures written by tests/parity/make_text_metrics_fixtures.py and live against the installed packages)
 *   bleu       sacreBLEU 2.x corpus BLEU with its defaults: 13a tokenizer (mteval-v13a: <skipped> and "-\n"
 *              removed, &quot; &amp; &lt; &gt; unescaped, punctuation split, periods and commas split unless
 *              between digits, dashes after digits split), mixed case, n-grams 1..4 with counts clipped by
 *              the max over the references, brevity penalty from the closest reference length (ties to the
 *              shorter), 'exp' smoothing (NIST: the k-th zero precision becomes 1 / (2^k total)), 0..100.
 *              Per example: sacrebleu.sentence_bleu (the same with effective order).
 *   chrf       sacreBLEU chrF: character n-grams 1..6 of the text with all whitespace removed, no word
 *              n-grams, beta 2, statistics of the best-scoring reference per example summed over the corpus,
 *              0..100. Per example: sacrebleu.sentence_chrf.
 *   rouge1/2/L/Lsum   Google rouge-score F-measures (0..1) averaged over examples: lowercase, every run of
 *              characters outside [a-z0-9] a separator, optional Porter stemming (NLTK's PorterStemmer, its
 *              default NLTK_EXTENSIONS mode) of tokens longer than 3 characters; rougeLsum splits the texts on
 *              newlines and uses the union LCS; several references: the best F-measure per type
 *              (RougeScorer.score_multi).
 *   exact_match, f1   SQuAD (v2 script): lowercase, ASCII punctuation removed, articles a / an / the removed,
 *              whitespace collapsed; EM 0/1, F1 of the token multisets (both empty: 1, one empty: 0); best
 *              over the references; averaged and reported 0..100 as the SQuAD script does.
 *   distinct1/2  distinct n-grams / all n-grams over the whitespace tokens of the hypotheses (Li et al. 2016),
 *              corpus-wide; per example within the example. 0..1; 0 when there are no n-grams.
 *   bootstrap  sacreBLEU's resampling: numpy.random.default_rng(seed).choice(n, (samples, n)) — reproduced
 *              draw for draw, so seed 12345 (sacreBLEU's default SACREBLEU_SEED) gives sacreBLEU's numbers —
 *              every score recomputed on each resample from the summed statistics (corpus BLEU / chrF) or the
 *              mean of the per-example scores; mean, and the 2.5 / 97.5 percentiles as sacreBLEU takes them
 *              (sorted[samples / 40], sorted[samples - samples / 40 - 1]); ci = half their distance.
 *              distinct-n is not resampled (NaN in the bootstrap and paired results): it is not a mean over
 *              examples, and repeated examples in a resample push it down, so its "interval" would miss the score.
 *   paired     sacreBLEU's paired bootstrap test (Moses' bootstrap-hypothesis-difference-significance):
 *              the same resamples for both systems, d_s = |sys_s - base_s|, p = (1 + #{d_s - mean(d) > |sys -
 *              base|}) / (samples + 1).
 *
 * Input checks: NULL pointers, n < 1, n_refs < 1 (unless only distinct-n), an example without any reference
 * -> FT_ERR_INVALID; text that is not valid UTF-8 -> FT_ERR_FORMAT naming "hypothesis 12" or "reference
 * stream 2, line 7" and the byte offset; a ROUGE-L table past 2^28 cells (texts of ~16k tokens) -> FT_ERR_RANGE.
 *
 * Ownership: the library copies nothing it keeps from the inputs (statistics only); ft_text_stats belongs to
 * the caller (ft_text_stats_free). Threads: no global state; distinct ft_text_stats may be used on different
 * threads, and one may be read (scores, example, bootstrap, paired) from several threads at once. */
#ifndef FINETUNE_TEXTMETRICS_H
#define FINETUNE_TEXTMETRICS_H
#include <stdint.h>
#include <stddef.h>

/* metric groups, for ft_text_metric_opts.metrics */
enum {
    FT_TEXT_BLEU     = 1u << 0,
    FT_TEXT_CHRF     = 1u << 1,
    FT_TEXT_ROUGE    = 1u << 2,   /* rouge1, rouge2, rougeL, rougeLsum */
    FT_TEXT_EM       = 1u << 3,
    FT_TEXT_F1       = 1u << 4,
    FT_TEXT_DISTINCT = 1u << 5,   /* distinct1, distinct2 */
    FT_TEXT_ALL      = (1u << 6) - 1,
};

/* the individual scores: indices into ft_text_scores.v and the bootstrap arrays */
typedef enum ft_text_score_id {
    FT_TS_BLEU, FT_TS_CHRF, FT_TS_ROUGE1, FT_TS_ROUGE2, FT_TS_ROUGEL, FT_TS_ROUGELSUM,
    FT_TS_EM, FT_TS_F1, FT_TS_DISTINCT1, FT_TS_DISTINCT2,
    FT_TS_COUNT
} ft_text_score_id;

/* The JSON key of a score: "bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match", "f1",
 * "distinct1", "distinct2"; NULL when out of range. */
const char *ft_text_score_name(int id);
/* The metric group (FT_TEXT_*) a score belongs to. */
unsigned ft_text_score_group(int id);

typedef struct ft_text_metric_opts {
    unsigned metrics;     /* FT_TEXT_* bits; 0 means FT_TEXT_ALL */
    int      rouge_stem;  /* 1: Porter stemming in ROUGE (rouge-score's use_stemmer=True) */
} ft_text_metric_opts;

ft_text_metric_opts ft_text_metric_default_opts(void);  /* every metric, no stemming */

/* Parses a comma-separated list ("bleu,chrf,rouge,em,f1,distinct"; also "exact_match", "all") into FT_TEXT_*
 * bits. FT_ERR_INVALID naming the unknown entry. */
int ft_text_metrics_parse(const char *list, unsigned *out);

typedef struct ft_bleu_result {
    double  score;          /* 0..100 */
    double  precisions[4];  /* n-gram precisions 1..4, 0..100 (smoothed as sacreBLEU shows them) */
    double  bp;             /* brevity penalty */
    double  ratio;          /* sys_len / ref_len (0 when ref_len = 0) */
    int64_t sys_len, ref_len;
    int64_t counts[4], totals[4];  /* matched and total hypothesis n-grams */
} ft_bleu_result;

typedef struct ft_text_scores {
    int      n;             /* examples */
    int      n_refs;        /* references per example, -1 when it varies (sacreBLEU's nrefs:var) */
    unsigned metrics;       /* the FT_TEXT_* groups computed */
    int      rouge_stem;
    double   v[FT_TS_COUNT];       /* scores by ft_text_score_id; groups not computed are 0 */
    ft_bleu_result bleu;           /* BLEU's details (when FT_TEXT_BLEU) */
    char     bleu_signature[128];  /* "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0" */
    char     chrf_signature[128];  /* "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0" */
} ft_text_scores;

/* the sacreBLEU release whose definitions (and signature "version:") these metrics reproduce */
#define FT_TEXT_SACREBLEU_VERSION "2.6.0"

typedef struct ft_text_stats ft_text_stats;

/* Per-example statistics of hyp [n] against refs [n_refs][n] (see the top comment). o may be NULL (defaults).
 * *out is NULL on failure. */
int  ft_text_stats_compute(ft_text_stats **out, const char *const *hyp, const char *const *const *refs,
                           int n_refs, int n, const ft_text_metric_opts *o);
void ft_text_stats_free(ft_text_stats *st);
int  ft_text_stats_count(const ft_text_stats *st);       /* n */
/* Corpus scores. */
int  ft_text_stats_scores(const ft_text_stats *st, ft_text_scores *out);
/* Example i's scores into out [FT_TS_COUNT] (groups not computed: 0). FT_ERR_RANGE for a bad i. */
int  ft_text_stats_example(const ft_text_stats *st, int i, double out[FT_TS_COUNT]);
/* Example i's BLEU details (sentence BLEU, effective order). */
int  ft_text_stats_example_bleu(const ft_text_stats *st, int i, ft_bleu_result *out);

typedef struct ft_text_bootstrap {
    int      n_samples;
    uint64_t seed;
    double   score[FT_TS_COUNT];  /* the scores of the full set (as ft_text_stats_scores) */
    double   mean[FT_TS_COUNT];   /* mean over resamples */
    double   low[FT_TS_COUNT];    /* 2.5th percentile: sorted[n_samples / 40] */
    double   high[FT_TS_COUNT];   /* 97.5th: sorted[n_samples - n_samples / 40 - 1] */
    double   ci[FT_TS_COUNT];     /* (high - low) / 2, sacreBLEU's "mu +- ci" */
    char     bleu_signature[160]; /* with "|bs:N|seed:S" as sacreBLEU writes it after resampling */
    char     chrf_signature[160];
} ft_text_bootstrap;

/* Bootstrap over n_samples >= 1 resamples drawn with numpy's default_rng(seed). */
int ft_text_stats_bootstrap(const ft_text_stats *st, int n_samples, uint64_t seed, ft_text_bootstrap *out);

typedef struct ft_text_paired {
    int      n_samples;
    uint64_t seed;
    double   base[FT_TS_COUNT], sys[FT_TS_COUNT];            /* full-set scores */
    double   base_mean[FT_TS_COUNT], base_ci[FT_TS_COUNT];   /* bootstrap mean / ci of each system */
    double   sys_mean[FT_TS_COUNT], sys_ci[FT_TS_COUNT];
    double   p_value[FT_TS_COUNT];                           /* paired bootstrap p-value of sys vs base */
    char     bleu_signature[160], chrf_signature[160];       /* with "|bs:N|seed:S" */
} ft_text_paired;

/* Paired bootstrap test of sys against base: same n, same metric groups and stemming (FT_ERR_INVALID
 * otherwise); the references are whatever each was computed with (normally the same). */
int ft_text_stats_paired(const ft_text_stats *base, const ft_text_stats *sys, int n_samples, uint64_t seed,
                         ft_text_paired *out);

/* ft_text_stats_compute + ft_text_stats_scores + ft_text_stats_free. */
int ft_text_scores_compute(const char *const *hyp, const char *const *const *refs, int n_refs, int n,
                           const ft_text_metric_opts *o, ft_text_scores *out);

/* The Porter stem of the lowercase ASCII word w[0, n) as NLTK's PorterStemmer() (NLTK_EXTENSIONS mode) gives
 * it, into out (cap >= n + 2 bytes, NUL-terminated); returns its length, or FT_ERR_INVALID when cap is short. */
int ft_porter_stem(const char *w, int n, char *out, int cap);
/* ---- reading texts: one per line, or JSONL (what `finetune score` reads; the input is untrusted) ----
 *
 * Lines end at "\n" (a "\r" before it is dropped); a final newline does not start another line, so an empty
 * file has 0 lines and a blank line is an empty text. JSONL: one JSON object per line, the text in a field: the
 * first of `fields` (a NULL-terminated list) that the first object has; a string, null (absent), or a list of
 * strings / nulls (several references on one line: column c holds the c-th). Every line must be valid UTF-8
 * without NUL bytes. Errors (FT_ERR_FORMAT) name the file and line: "ref.txt:12: not valid UTF-8 (byte 0xff at
 * column 5)", "pred.jsonl:3: no field \"prediction\" (fields tried: prediction, text)".
 *
 *     const char *fields[] = {"prediction", "text", NULL};
 *     ft_text_file f;
 *     if (ft_text_file_read(&f, "pred.jsonl", FT_TEXT_FILE_AUTO, fields) == FT_OK) {
 *         const char *const *hyp = ft_text_file_column(&f, 0);   // hyp[i], i < f.n
 *         ...
 *         ft_text_file_free(&f);
 *     }                                                                                                      */
typedef enum ft_text_file_format {
    FT_TEXT_FILE_AUTO,   /* JSONL when the name ends in .jsonl / .ndjson or the first line is a JSON object */
    FT_TEXT_FILE_LINES,  /* one text per line */
    FT_TEXT_FILE_JSONL,  /* one JSON object per line */
} ft_text_file_format;

typedef struct ft_text_file {
    int    n;        /* lines (examples) */
    int    n_cols;   /* texts per line: 1, or the longest list a JSONL field held */
    char **text;     /* [n_cols][n]: text[c * n + i] is column c of line i; NULL = absent */
    int    jsonl;    /* 1 when read as JSONL */
    char   field[64]; /* the JSONL field used ("" for plain lines) */
} ft_text_file;

/* Parses data[0, len) (name is used in messages only). *out is zeroed on failure. */
int  ft_text_file_parse(ft_text_file *out, const char *data, size_t len, const char *name, ft_text_file_format fmt,
                        const char *const *fields);
/* Reads and parses the file at path ("-" = stdin). */
int  ft_text_file_read(ft_text_file *out, const char *path, ft_text_file_format fmt, const char *const *fields);
void ft_text_file_free(ft_text_file *f);
/* Column c as an array of n strings (entries may be NULL), or NULL when c is out of range. Valid until free. */
const char *const *ft_text_file_column(const ft_text_file *f, int c);
#endif
