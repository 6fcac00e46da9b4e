/* explain.h — token attributions: exact and sampled Shapley values, Integrated Gradients, attention maps
 * (`finetune explain`).
 *
 * What is explained. An explainer holds one input and a scalar function f of it:
 *   classifiers (encoder.h, task classify)   f = softmax probability of the target class (FT_EXPLAIN_PROB, the
 *                                             default) or its logit (FT_EXPLAIN_LOGIT); regressors: the output
 *   decoders (model.h)                        f = log p(continuation | text) = sum over the continuation's tokens
 *                                             of log softmax(logits)[next id]
 * The input's tokens are grouped into features (one per token, or one per word: ft_explain_features); the
 * special tokens ([CLS], [SEP], <s>, BOS) belong to none and are never masked.
 *
 * Masking rule (Shapley values): a feature that is absent from a coalition has every one of its tokens replaced
 * by the mask id (ft_explain_mask_id: the tokenizer's mask token, [MASK] / <mask>; else its unk token; else its
 * pad token; else EOS); positions, attention mask and token types stay as they are. v(S) = f(input with the
 * features outside S masked), so v(all) = f(x) and v(none) = f(all masked).
 *
 *   Shapley value  phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! (v(S + i) - v(S)),
 *                  efficiency: sum_i phi_i = v(all) - v(none) (reported as the gap, |gap| < 1e-6 for exact values)
 *   exact          all 2^n coalitions in batched forward passes, n <= FT_SHAP_EXACT_MAX features
 *   sampled        permutation sampling with antithetic pairs (each random order and its reverse): phi_i is the
 *                  mean of v(predecessors + i) - v(predecessors) over the orders; unbiased, converges to the exact
 *                  values as the number of orders grows, and every order's contributions sum to v(all) - v(none),
 *                  so efficiency holds exactly at any budget. Seeded.
 *
 * Integrated Gradients (encoders and decoders): along the straight line from a baseline to the input in the space
 * of the word-embedding output (what Captum's LayerIntegratedGradients on embeddings.word_embeddings moves;
 * position and token-type embeddings are added unchanged), with the gradient from our own backward:
 *   attr_t = sum_c (e_tc - e'_tc) * sum_k w_k df/de_tc (e' + a_k (e - e'))
 * with Gauss-Legendre nodes a_k and weights w_k on [0, 1] (Captum's default method 'gausslegendre',
 * n_steps 50). Baseline e': the embedding of the mask id at feature tokens (FT_IG_BASELINE_MASK, Captum's
 * baselines = the masked ids) or zeros there (FT_IG_BASELINE_ZERO); special tokens (and a decoder's continuation)
 * keep their own embedding (attribution 0). The completeness gap sum_t attr_t - (f(x) - f(baseline)) is reported; it shrinks with steps.
 *
 *   ft_explainer *e;
 *   int feat[T], nf = ft_explain_features(tok, ids, T, FT_EXPLAIN_WORD, feat);
 *   ft_explain_encoder_options eo = ft_explain_encoder_default_options();   // target -1: the predicted label
 *   FT_TRY(ft_explainer_encoder(&e, enc, ids, NULL, T, feat, nf, ft_explain_mask_id(tok), &eo));
 *   double phi[nf];  ft_shap_result sr;
 *   FT_TRY(ft_explain_shap_exact(e, phi, &sr));            // sr.gap = sum phi - (f(x) - f(all masked))
 *   double attr[T];  ft_ig_result ir;  ft_ig_options io = ft_ig_default_options();
 *   FT_TRY(ft_explain_ig(e, &io, attr, &ir));
 *   ft_explainer_free(e);
 *
 * Ownership: the explainer borrows the model (which must outlive it) and copies ids / types / features.
 * Thread safety: an explainer runs forward passes on the model's own state (ft_encoder_forward_ex /
 * ft_model_forward): one explainer per model at a time, and no other use of the model meanwhile. */
#ifndef FINETUNE_EXPLAIN_H
#define FINETUNE_EXPLAIN_H
#include <stddef.h>
#include <stdint.h>

struct ft_encoder_model;
struct ft_model;
struct ft_tokenizer;
typedef struct ft_explainer ft_explainer;

#define FT_SHAP_EXACT_MAX 20   /* exact Shapley values up to 2^20 coalitions (the command's default limit is 14) */

typedef enum ft_explain_unit { FT_EXPLAIN_TOKEN = 0, FT_EXPLAIN_WORD = 1 } ft_explain_unit;
typedef enum ft_explain_output { FT_EXPLAIN_PROB = 0, FT_EXPLAIN_LOGIT = 1 } ft_explain_output;

/* Features of ids[T]: feature[t] in [0, n) for each token, -1 for special tokens (never features). TOKEN: every
 * other token is its own feature; WORD: a token continues the previous token's word when it is a WordPiece
 * continuation ("##...") or, for BPE / SentencePiece vocabularies, does not start with a space marker ("Ġ", "▁")
 * and follows a non-special token. Returns n (>= 0). */
int ft_explain_features(const struct ft_tokenizer *tok, const int *ids, int T, ft_explain_unit unit, int *feature);
/* The id a masked token gets: mask, else unk, else pad, else EOS; -1 when the tokenizer has none of them. */
int ft_explain_mask_id(const struct ft_tokenizer *tok);

typedef struct ft_explain_encoder_options {
    int target;                 /* class explained; -1: the predicted one (argmax of f(x)'s logits) */
    ft_explain_output output;   /* FT_EXPLAIN_PROB */
    int batch_rows;             /* rows per forward pass; 0: about 4096 tokens a pass */
} ft_explain_encoder_options;
ft_explain_encoder_options ft_explain_encoder_default_options(void);

/* An encoder classifier (or regressor: f = the output) over ids[T] (type_ids NULL: all 0), features as
 * ft_explain_features gives them. Runs the unmasked input once (the target, its probability, all logits).
 * Errors: FT_ERR_INVALID (no features, a feature index out of range, a bad target or mask id), FT_ERR_UNSUPPORTED
 * (token-classify / MLM heads). */
int ft_explainer_encoder(ft_explainer **out, struct ft_encoder_model *m, const int *ids, const int *type_ids, int T,
                         const int *feature, int n_features, int mask_id, const ft_explain_encoder_options *o);
/* A decoder over ids[T] = the text's n_text tokens then the continuation's (T - n_text >= 1):
 * f = sum_{t = n_text}^{T-1} log p(ids[t] | ids[0..t)). Features lie in the text (feature[t] = -1 for t >= n_text). */
int ft_explainer_decoder(ft_explainer **out, struct ft_model *m, const int *ids, int T, int n_text, const int *feature,
                         int n_features, int mask_id, int batch_rows);
void ft_explainer_free(ft_explainer *e);   /* NULL: no-op */

int    ft_explainer_num_features(const ft_explainer *e);
double ft_explainer_f_input(const ft_explainer *e);    /* f(x) */
int    ft_explainer_target(const ft_explainer *e);     /* classifiers: the class explained; decoders -1 */
/* classifiers: the logits / softmax probabilities of the unmasked input [K] (K = *k); decoders NULL */
const float *ft_explainer_logits(const ft_explainer *e, int *k);
/* f of n coalitions: present[j * n_features + i] != 0 when feature i is present in coalition j; f[n]. */
int ft_explainer_values(ft_explainer *e, const uint8_t *present, int64_t n, double *f);
/* Forward passes and rows (coalitions or IG points) evaluated so far. */
int64_t ft_explainer_evaluations(const ft_explainer *e);

typedef struct ft_shap_result {
    double f_input;     /* v(all) = f(x) */
    double f_masked;    /* v(none) = f(all features masked) */
    double sum;         /* sum_i phi_i */
    double gap;         /* sum - (f_input - f_masked) */
    int64_t evaluations;/* coalitions evaluated */
    int exact;          /* 1: exact values; 0: sampled */
    int permutations;   /* sampled: orders used (antithetic pairs count 2) */
} ft_shap_result;
/* Exact Shapley values phi[n_features]; FT_ERR_RANGE when n_features > FT_SHAP_EXACT_MAX. */
int ft_explain_shap_exact(ft_explainer *e, double *phi, ft_shap_result *r);
/* Sampled: `permutations` orders (rounded up to an even number: antithetic pairs), seeded. */
int ft_explain_shap_sample(ft_explainer *e, int permutations, uint64_t seed, double *phi, ft_shap_result *r);

typedef enum ft_ig_baseline { FT_IG_BASELINE_MASK = 0, FT_IG_BASELINE_ZERO = 1 } ft_ig_baseline;
typedef struct ft_ig_options {
    int steps;                  /* Gauss-Legendre nodes (50, Captum's n_steps) */
    ft_ig_baseline baseline;
} ft_ig_options;
ft_ig_options ft_ig_default_options(void);
typedef struct ft_ig_result {
    double f_input, f_baseline; /* f(x), f(baseline) */
    double sum;                 /* sum_t attr_t */
    double gap;                 /* completeness gap: sum - (f_input - f_baseline) */
    int steps;
} ft_ig_result;
/* Per-token attributions attr[T] (specials and a decoder's continuation 0). FT_ERR_UNSUPPORTED for a quantized
 * decoder embedding table. */
int ft_explain_ig(ft_explainer *e, const ft_ig_options *o, double *attr, ft_ig_result *r);
/* Gauss-Legendre nodes x[n] and weights w[n] on [0, 1] (sum w = 1), ascending, in double. */
int ft_gauss_legendre(int n, double *x, double *w);

/* The attention probabilities of the unmasked input, att[L, NH, T, T] (malloc'd, caller frees; query t, key j;
 * decoders: causal, 0 above the diagonal). */
int ft_explain_attention(ft_explainer *e, float **att, int *L, int *NH);

/* Token scores to features: feat_scores[i] = sum of tok_scores[t] over the tokens t of feature i (IG per word). */
void ft_explain_feature_sums(const int *feature, int T, int n_features, const double *tok_scores, double *feat_scores);

/* A self-contained HTML page (no network): tokens coloured by their score (red positive, blue negative), the
 * numbers on hover and in a table, and when att != NULL an attention heat map per layer and head, chosen with
 * two selects. title, subtitle: plain text (escaped). tokens[T]: display strings. Malloc'd, NUL-terminated. */
typedef struct ft_explain_page {
    const char *title, *subtitle;
    int T;
    const char *const *tokens;  /* [T] */
    const double *scores;       /* [T] (NaN: no score, e.g. a special token) */
    const float *att;           /* [L, NH, T, T] or NULL */
    int L, NH;
} ft_explain_page;
int ft_explain_html(const ft_explain_page *p, char **html);
#endif
