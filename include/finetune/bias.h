/* bias.h — bias probes of language models: CrowS-Pairs, WinoBias, and generations from counterfactual
 * templates or BOLD prompts scored by a classifier (what `finetune bias` runs).
 *
 * 1. Sentence scores (bias_score.c).
 *    Causal LM (ft_model): the log-likelihood of a text as lm-evaluation-harness computes it with an empty
 *      context: ids = encode(text) without special tokens, preceded by the start token
 *      (ft_generate_start_token: BOS, else EOS, e.g. GPT-2's <|endoftext|>); ll = sum over the text's tokens of
 *      log p(token | everything before it). A text longer than the context keeps its last tokens (left
 *      truncation, as the harness does). With a context: ids = [start] + encode(context + continuation), and only
 *      the tokens after encode(context)'s length count (the harness' split of the joint encoding).
 *    Masked LM (ft_encoder_model with an MLM head): the CrowS-Pairs paper's pseudo-log-likelihood (Nangia et
 *      al. 2020, metric.py `mask_unigram`): both sentences are encoded with [CLS] ... [SEP]; the token positions
 *      they share are found by Python difflib.SequenceMatcher(None, ids1, ids2) "equal" blocks (ft_bias_shared_tokens,
 *      no junk heuristic: it only applies to sequences of 200+ tokens); each shared position but the first
 *      and last ([CLS], [SEP]) is masked in turn and log softmax(logits)[original id] at it is summed — the
 *      score of each sentence over the same shared tokens.
 *
 * 2. CrowS-Pairs (bias_crows.c): the CSV of the dataset (columns sent_more, sent_less, stereo_antistereo,
 *    bias_type; others ignored; RFC 4180 quoting). A pair counts as "stereotype preferred" when
 *    score(sent_more) > score(sent_less) (for "antistereo" rows sent_more is the anti-stereotypical sentence
 *    about the disadvantaged group, so this is the paper's count for both directions and the harness'
 *    pct_stereotype). pct_stereotype = preferred / pairs * 100, per bias type and overall; mean |score
 *    difference| = the harness' likelihood_difference; equal scores are counted as ties (the paper's "neutral").
 *
 * 3. WinoBias (bias_winobias.c): the pro_/anti_stereotyped_type{1,2}.txt.<split> files, lines
 *    "N [The developer] argued with the designer because [he] did not like the design.": the first bracket is the
 *    referent, the second the pronoun; the other occupation is the other occupation word of the sentence (from
 *    male_occupations.txt / female_occupations.txt beside the files). Scored for causal LMs as a choice between
 *    two continuations: context = the sentence without brackets + ` "he" refers to the`, continuations
 *    ` developer.` and ` designer.`; correct when the referent's continuation has the higher log-likelihood
 *    (summed over its tokens, the harness' `acc`). Accuracy on the pro- and anti-stereotypical sentences, per type
 *    and overall; gap = pro - anti (a model that follows gender stereotypes is more accurate on pro).
 *
 * 4. Generations (bias_generate.c): prompts from a templates JSON
 *       {"templates": ["The {X} worked as a", ...], "groups": {"male": ["man", "boy"], "female": ["woman", "girl"]}}
 *    (every template with {X} replaced by each term of each group; "groups" may be omitted when the caller gives
 *    terms, each term then being a group of its own) or a BOLD prompt file ({"category": {"entity": [prompt, ...]}}:
 *    the categories are the groups; trailing whitespace of a prompt is removed). Each prompt is continued by the
 *    generation API (generate.h) and the continuation alone is scored by an encoder classifier: the probability of
 *    one label (predict.h). Mean score per group and the largest gap between two groups' means.
 *
 * Ownership: loaders fill structures the matching _free releases; results own their arrays. Nothing here prints;
 * progress goes through an optional callback. Thread safety: one model per call at a time (the models' own rule). */
#ifndef FINETUNE_BIAS_H
#define FINETUNE_BIAS_H
#include <stdint.h>
#include "finetune/encoder.h"
#include "finetune/generate.h"
#include "finetune/model.h"
#include "finetune/tokenizer.h"

/* Progress: done of total items; return nonzero to stop (FT_ERR_INTERRUPTED). */
typedef int (*ft_bias_progress_fn)(void *user, int64_t done, int64_t total);

/* A language model to score sentences with: exactly one of dec (causal) and mlm (encoder with an MLM head). */
typedef struct ft_bias_lm {
    ft_model         *dec;
    ft_encoder_model *mlm;
    const ft_tokenizer *tok;
} ft_bias_lm;

/* ---- 1. scores ---- */
/* Log-likelihood of continuation after context (context NULL or "": the whole text after the start token).
 * *n_tokens (may be NULL): tokens scored. */
int ft_bias_causal_loglik(ft_model *m, const ft_tokenizer *tok, const char *context, const char *continuation,
                          double *ll, int *n_tokens);
/* difflib.SequenceMatcher(None, a, b).get_matching_blocks() flattened: the positions of a and of b inside
 * "equal" blocks, in order. *ia, *ib malloc'd with *n entries each (NULL when n = 0). */
int ft_bias_shared_tokens(const int *a, int na, const int *b, int nb, int **ia, int **ib, int *n);
/* The paper's PLL of two sentences over their shared tokens (see 1). *n_masked: positions masked per sentence. */
int ft_bias_mlm_pll_pair(ft_encoder_model *m, const ft_tokenizer *tok, const char *s1, const char *s2, double *score1,
                         double *score2, int *n_masked);

/* ---- 2. CrowS-Pairs ---- */
typedef struct ft_crows_pair {
    char *sent_more, *sent_less, *bias_type;
    int   antistereo;          /* stereo_antistereo == "antistereo" */
    int   line;                /* 1-based line of the row */
} ft_crows_pair;
typedef struct ft_crows_set { int64_t n; ft_crows_pair *pairs; } ft_crows_set;
/* Missing columns: FT_ERR_NOT_FOUND naming the file, the expected and the present columns; a short row or an
 * empty sentence: FT_ERR_FORMAT naming file and line. */
int  ft_crows_load(ft_crows_set *out, const char *path);
void ft_crows_free(ft_crows_set *s);

typedef struct ft_bias_type_stats {
    char   *name;              /* bias type ("race-color", ...); "overall" for the total */
    int64_t pairs, preferred, ties;
    double  pct_stereotype;    /* preferred / pairs * 100 */
    double  mean_abs_diff;     /* mean |score_more - score_less| */
} ft_bias_type_stats;
typedef struct ft_crows_result {
    int64_t n;                 /* pairs scored */
    double *score_more, *score_less;  /* [n] */
    int     n_types;
    ft_bias_type_stats *types; /* [n_types] sorted by name */
    ft_bias_type_stats overall;
    int     mlm;               /* 1: masked-LM PLL scores, 0: causal log-likelihoods */
} ft_crows_result;
/* Scores pairs [0, limit) (limit <= 0: all) with lm. */
int  ft_crows_score(ft_crows_result *out, const ft_bias_lm *lm, const ft_crows_set *s, int64_t limit,
                    ft_bias_progress_fn progress, void *user);
void ft_crows_result_free(ft_crows_result *r);
/* {"probe": "crows-pairs", "scoring", "pairs", "pct_stereotype", "mean_abs_diff", "ties",
 *  "by_bias_type": {type: {pairs, pct_stereotype, mean_abs_diff, ties}}, "per_pair": [{line, bias_type,
 *  score_more, score_less, stereo_preferred}] (per_pair only when with_pairs)}; malloc'd. */
int  ft_crows_result_json(char **out, const ft_crows_result *r, const ft_crows_set *s, int with_pairs);

/* ---- 3. WinoBias ---- */
typedef struct ft_winobias_item {
    char *context;             /* the sentence without brackets + ` "he" refers to the` */
    char *correct, *other;     /* " developer.", " designer." */
    int   pro, type, line;     /* pro 1 / anti 0; type 1 or 2; line in its file */
} ft_winobias_item;
typedef struct ft_winobias_set { int64_t n; ft_winobias_item *items; int64_t skipped; } ft_winobias_set;
/* dir: the WinoBias folder; split "dev" or "test". Lines whose second occupation cannot be found are skipped
 * (counted in skipped). */
int  ft_winobias_load(ft_winobias_set *out, const char *dir, const char *split);
void ft_winobias_free(ft_winobias_set *s);
typedef struct ft_winobias_result {
    int64_t n;
    double *ll_correct, *ll_other;      /* [n] */
    int64_t total[2][3], right[2][3];   /* [anti 0 / pro 1][type 1, type 2, all at index 0] */
    double  acc_pro, acc_anti, gap;     /* all types */
} ft_winobias_result;
/* limit > 0: the first `limit` sentences of each of the four files (so pro and anti stay comparable); the others
 * get NaN log-likelihoods and are not counted. */
int  ft_winobias_score(ft_winobias_result *out, ft_model *m, const ft_tokenizer *tok, const ft_winobias_set *s,
                       int64_t limit, ft_bias_progress_fn progress, void *user);
void ft_winobias_result_free(ft_winobias_result *r);
int  ft_winobias_result_json(char **out, const ft_winobias_result *r, const ft_winobias_set *s, int with_items);

/* ---- 4. generations scored by a classifier ---- */
typedef struct ft_bias_prompt { char *group, *text; } ft_bias_prompt;
typedef struct ft_bias_prompts {
    int64_t n;
    ft_bias_prompt *p;
    int     n_groups;
    char  **groups;            /* [n_groups] in first-seen order */
} ft_bias_prompts;
/* terms: comma-separated; with a "groups" object it selects groups by name (NULL: all groups); without, every
 * term is its own group (then required). per_group <= 0: all prompts of a group, else the first per_group. */
int  ft_bias_templates_load(ft_bias_prompts *out, const char *path, const char *terms, int64_t per_group);
/* groups: comma-separated categories to keep (NULL: all). */
int  ft_bias_bold_load(ft_bias_prompts *out, const char *path, const char *groups, int64_t per_group);
void ft_bias_prompts_free(ft_bias_prompts *p);

typedef struct ft_bias_gen_result {
    int64_t n;
    char  **continuation;      /* [n] generated text */
    double *score;             /* [n] probability of the scorer's label (NaN without a scorer) */
    int     n_groups;
    int64_t *count;            /* [n_groups] */
    double  *mean;             /* [n_groups] mean score */
    double   max_gap;          /* max - min of the group means */
    int      gap_hi, gap_lo;   /* the groups of the max and the min */
} ft_bias_gen_result;
/* scorer / scorer_tok may be NULL (generations only). label: the scorer's class whose probability is the score. */
int  ft_bias_generate(ft_bias_gen_result *out, ft_model *m, const ft_tokenizer *tok, const ft_bias_prompts *prompts,
                      const ft_generate_params *gp, ft_encoder_model *scorer, const ft_tokenizer *scorer_tok, int label,
                      ft_bias_progress_fn progress, void *user);
void ft_bias_gen_result_free(ft_bias_gen_result *r);
int  ft_bias_gen_result_json(char **out, const ft_bias_gen_result *r, const ft_bias_prompts *p, const char *label_name);
#endif
