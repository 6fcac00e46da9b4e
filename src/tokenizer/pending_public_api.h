/* pending_public_api.h — public tokenizer declarations that belong in include/finetune/tokenizer.h.
 *
 * That header is owned by another engineer; this block is to be moved there verbatim (and this file
 * deleted, with its #include in tokenizer_impl.h and in tests/test_tokenizer_wordpiece.c,
 * tests/test_tokenizer_roberta.c, tests/test_tokenizer_save.c). Until then code outside
 * src/tokenizer/ that needs these functions includes "tokenizer/pending_public_api.h" (the build
 * has -Isrc). */
#ifndef FT_TOKENIZER_PENDING_PUBLIC_API_H
#define FT_TOKENIZER_PENDING_PUBLIC_API_H
#include "finetune/tokenizer.h"

#include <stddef.h>

/* ---- to move into include/finetune/tokenizer.h ---- */

/* A BERT WordPiece tokenizer from vocab.txt (one token per line, id = line number - 1) as HF's
 * BertTokenizer builds it: BertNormalizer (clean_text; CJK characters spaced; lowercase and accent
 * stripping when uncased), BertPreTokenizer, WordPiece ("##", 100 characters per word at most),
 * [CLS] A [SEP] / [CLS] A [SEP] B [SEP]. config_path: a tokenizer_config.json (do_lower_case,
 * strip_accents, tokenize_chinese_chars, model_max_length, unk/sep/pad/cls/mask_token), or NULL for
 * BertTokenizer's defaults (uncased). ft_tokenizer_load(dir) takes this path for a directory with
 * vocab.txt and no tokenizer.json. */
int ft_tokenizer_load_wordpiece(ft_tokenizer **out, const char *vocab_txt_path, const char *tokenizer_config_path);

/* Encodes a sentence pair (text_b != NULL) or one sequence (text_b == NULL) and gives each token its
 * token type id, as HF's tokenizer(text_a, text_b) does. With FT_TOK_ADD_SPECIAL the post-processor's
 * template is applied:
 *   BERT      [CLS] A [SEP] B [SEP]        type ids 0 for [CLS] A [SEP], 1 for B [SEP]
 *   RoBERTa   <s> A </s> </s> B </s>       type ids all 0
 *   others    their tokenizer.json pair template; without one: prefix A suffix prefix B suffix
 *             (B's part type 1), e.g. Llama <s> A <s> B
 * Without FT_TOK_ADD_SPECIAL: A's ids then B's, type ids 0 then 1 (all 0 for RoBERTa). One sequence:
 * what ft_tokenizer_encode gives, type ids all 0. text_b "" (len_b 0) is an empty second sequence
 * ([CLS] A [SEP] [SEP]); HF's Python __call__ treats text_pair="" as no pair, so pass NULL for that.
 * *ids and *type_ids (n entries each) are malloc'd, the caller frees both; type_ids may be NULL
 * when not wanted.
 * No truncation here: the caller fits the pair to its maximum length (ft_tokenizer_model_max_length):
 * encode A and B without FT_TOK_ADD_SPECIAL, drop ids from the end of the longer one until
 * n_a + n_b + ft_tokenizer_num_special_tokens(tok, 1) fits (HF's truncation="longest_first"), then
 * ft_tokenizer_build_inputs. */
int ft_tokenizer_encode_pair(const ft_tokenizer *tok, const char *text_a, size_t len_a, const char *text_b,
                             size_t len_b, int flags, int **ids, int **type_ids, int *n);
/* The special tokens and type ids around already encoded sequences (ids_b NULL: one sequence),
 * exactly as ft_tokenizer_encode_pair with FT_TOK_ADD_SPECIAL does; *ids / *type_ids malloc'd
 * (type_ids may be NULL). */
int ft_tokenizer_build_inputs(const ft_tokenizer *tok, const int *ids_a, int n_a, const int *ids_b, int n_b,
                              int **ids, int **type_ids, int *n);
/* How many ids FT_TOK_ADD_SPECIAL adds to one sequence (pair 0: BERT 2) or to a pair (pair 1: BERT 3,
 * RoBERTa 4). */
int ft_tokenizer_num_special_tokens(const ft_tokenizer *tok, int pair);

/* Special ids for encoder models: the classifier token ([CLS], <s>), the separator ([SEP], </s>), the
 * mask token ([MASK], <mask>), the unknown token ([UNK], <unk>); -1 if the tokenizer has none. */
int ft_tokenizer_cls(const ft_tokenizer *tok);
int ft_tokenizer_sep(const ft_tokenizer *tok);
int ft_tokenizer_mask(const ft_tokenizer *tok);
int ft_tokenizer_unk(const ft_tokenizer *tok);
/* tokenizer_config.json's model_max_length (512 for BERT), 0 if unknown or "unlimited". */
int ft_tokenizer_model_max_length(const ft_tokenizer *tok);

/* ---- end of the block to move ---- */
#endif
