/* augment.h — text data augmentation for classification sets: what `finetune data augment` runs.
 *
 * Three methods, each keeping the label of the text it starts from:
 *
 * 1. EDA (Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for Boosting Performance on Text
 *    Classification"). A text is split at whitespace into words (punctuation tokens stay words); with
 *    n = max(1, floor(alpha * words)):
 *      SR  synonym replacement: the distinct words that are not stop words are shuffled; in that order,
 *          each word with a WordNet synonym (wordnet.h) has every occurrence replaced by one synonym
 *          drawn uniformly, until n words were replaced;
 *      RI  random insertion, n times: a random synonym of a random non-stop word (up to 10 words tried)
 *          inserted at a random position (0..words);
 *      RS  random swap, n times: two distinct random positions swap their words (up to 3 draws for the
 *          second position, as the paper's code);
 *      RD  random deletion: each word is deleted with probability alpha; at least one word stays (a
 *          random one when all were drawn for deletion); a one-word text is kept as it is.
 *    ft_eda_augment does the paper's eda(): floor(n_aug / 4) + 1 texts per operation, shuffled, the first
 *    n_aug kept. Synonyms: only words made of letters, '-' and ' ' (no digits or dots), lower-cased, and
 *    capitalised when the replaced word starts with a capital. Differences from the paper's code, on
 *    purpose: the text is not lower-cased or stripped of punctuation; RI skips stop words ("a" has the
 *    WordNet synonym "angstrom") and may insert at the end; RI picks a random synonym, not the first.
 * 2. Counterfactual swaps (counterfactual data augmentation, Lu et al. 2018): words found in a list of
 *    pairs (he/she, him/her, man/woman, names, ...; data/augment/counterfactual_en.txt) are replaced by
 *    their partner, in both directions, the case pattern kept (he -> she, He -> She, HE -> SHE). A word
 *    listed in several pairs maps to the partner of its first pair ("her" -> "his" when "his her" comes
 *    before "him her"). Words are maximal runs of ASCII letters (bytes >= 0x80 count as letters, so no
 *    word inside a non-ASCII word matches); everything else is copied unchanged. Deterministic.
 * 3. Masked-LM substitution (ft_mlm_augment): alpha of the words (at least one), chosen at random
 *    among the non-stop words made of letters, are replaced one after the other: the word is replaced by
 *    the model's mask token, the encoder (an MLM-task ft_encoder_model: *ForMaskedLM) predicts the top_k
 *    tokens for it, and a prediction that is a whole word (WordPiece: no "##" continuation, letters only;
 *    BPE: a "Ġ"-prefixed word) different from the original (case-insensitively) is drawn with probability
 *    proportional to the model's; with none, that word stays.
 *
 * All draws come from one seeded ft_rng the caller passes (rng.h): the same seed and input give the same
 * output. Outputs are malloc'd strings the caller frees. Nothing prints. Thread safety: functions only
 * read wordnet / pairs; an encoder runs one forward at a time (see encoder.h).
 *
 *   ft_wordnet *wn;  FT_TRY(ft_wordnet_open(&wn, NULL));
 *   ft_rng r;        ft_rng_seed(&r, 42);
 *   ft_eda_options o = ft_eda_default_options();     // alpha 0.1 for all four, 4 texts per input
 *   char **texts; ft_aug_op *ops; int n;
 *   FT_TRY(ft_eda_augment(&texts, &ops, &n, "a gorgeous , witty film", &o, wn, &r));
 *   for (int i = 0; i < n; i++) printf("%s\t%s\n", ft_aug_op_name(ops[i]), texts[i]);
 *   ft_aug_texts_free(texts, n); free(ops);
 */
#ifndef FINETUNE_AUGMENT_H
#define FINETUNE_AUGMENT_H
#include <stddef.h>
#include "finetune/rng.h"
#include "finetune/wordnet.h"

typedef enum ft_aug_op {
    FT_AUG_ORIGINAL = 0, FT_AUG_SR, FT_AUG_RI, FT_AUG_RS, FT_AUG_RD, FT_AUG_MLM, FT_AUG_COUNTERFACTUAL
} ft_aug_op;
/* "original", "synonym_replacement", "random_insertion", "random_swap", "random_deletion", "mlm",
 * "counterfactual" */
const char *ft_aug_op_name(ft_aug_op op);

/* 1 when the lower-cased word is in the built-in English stop-word list (the EDA paper's list). */
int ft_aug_is_stop_word(const char *word);

typedef struct ft_eda_options {
    double alpha_sr, alpha_ri, alpha_rs, p_rd;  /* 0.1 each; 0 leaves that operation out */
    int    n_aug;                               /* augmented texts per input (4) */
} ft_eda_options;
ft_eda_options ft_eda_default_options(void);

/* One operation (SR, RI, RS or RD) on text with its alpha: *out malloc'd, the words joined by single
 * spaces. wn may be NULL for RS and RD. */
int ft_eda_apply(char **out, const char *text, ft_aug_op op, double alpha, const ft_wordnet *wn, ft_rng *r);
/* The paper's eda(): *texts[*n] (n = min(n_aug, texts made)) and the operation of each, *ops[*n]; the
 * original is not among them. An empty text (no words) gives *n = 0. */
int ft_eda_augment(char ***texts, ft_aug_op **ops, int *n, const char *text, const ft_eda_options *o,
                   const ft_wordnet *wn, ft_rng *r);
void ft_aug_texts_free(char **texts, int n);

/* ---- counterfactual swaps ---- */
typedef struct ft_cf_pairs ft_cf_pairs;
/* The pair list: one pair a line, two words separated by whitespace ("he she"), lower-case ASCII
 * letters; blank lines and lines starting with '#' are skipped. A malformed line -> FT_ERR_FORMAT naming
 * what and the line. */
int  ft_cf_pairs_parse(ft_cf_pairs **out, const char *buf, size_t len, const char *what);
int  ft_cf_pairs_load(ft_cf_pairs **out, const char *path);
void ft_cf_pairs_free(ft_cf_pairs *p);
int  ft_cf_pairs_count(const ft_cf_pairs *p);
/* The partner of word (any case; the answer is lower-case), NULL when the word is in no pair. */
const char *ft_cf_partner(const ft_cf_pairs *p, const char *word);
/* text with every listed word swapped: *out malloc'd, *n_swaps (may be NULL) words changed. */
int  ft_cf_swap(char **out, int *n_swaps, const ft_cf_pairs *p, const char *text);

/* ---- masked-LM substitution ---- */
struct ft_encoder_model;
struct ft_tokenizer;
typedef struct ft_mlm_aug_options {
    double alpha;    /* share of the words replaced (0.15); at least one */
    int    top_k;    /* predictions considered per masked word (10) */
    int    max_len;  /* tokens per input (0: the model's limit) */
} ft_mlm_aug_options;
ft_mlm_aug_options ft_mlm_aug_default_options(void);
/* One augmented text (*out malloc'd), *n_replaced (may be NULL) the words that changed. m must be an
 * MLM-task encoder (FT_ERR_INVALID otherwise) whose tokenizer has a mask token. */
int ft_mlm_augment(char **out, int *n_replaced, struct ft_encoder_model *m, const struct ft_tokenizer *tok,
                   const char *text, const ft_mlm_aug_options *o, ft_rng *r);
#endif
