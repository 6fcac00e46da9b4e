/* tokenizer.h — text <-> token ids.
 *
 * Kinds: byte-level BPE (GPT-2, RoBERTa, Llama-3, Qwen2), SentencePiece-style BPE with byte
 * fallback (Llama-2, Mistral, TinyLlama, llama2.c), WordPiece (BERT). One opaque handle for all.
 *
 * ft_tokenizer_load(dir) looks in a model directory for, in this order:
 *   tokenizer.json; vocab.json + merges.txt; encoder.json + vocab.bpe (OpenAI GPT-2 files);
 *   tokenizer.bin / tok512.bin (llama2.c); vocab.txt (WordPiece)
 * and reads tokenizer_config.json / special_tokens_map.json when present (BOS/EOS/PAD names,
 * add_bos_token / add_eos_token). The explicit-file loaders below read only the files they are given.
 *
 * Encoding follows HF tokenizers exactly (added tokens split out first, normalizer, pre-tokenizer,
 * BPE by merge rank); llama2.c .bin tokenizers encode as llama2.c does (dummy-prefix space, merges
 * by score, byte fallback). A tokenizer is immutable after loading: encode/decode may run on several
 * threads at once.
 *
 *   ft_tokenizer *tok;
 *   if (ft_tokenizer_load(&tok, "models/gpt2") < 0) { puts(ft_last_error()); ... }
 *   int *ids = NULL; int n = 0;
 *   ft_tokenizer_encode(tok, "Hello world", 11, FT_TOK_ADD_SPECIAL, &ids, &n);  // free(ids)
 *   char *text; size_t len; ft_tokenizer_decode(tok, ids, n, 0, &text, &len);    // free(text)
 *   ft_tokenizer_free(tok);
 */
#ifndef FINETUNE_TOKENIZER_H
#define FINETUNE_TOKENIZER_H
#include <stddef.h>

typedef struct ft_tokenizer ft_tokenizer;

typedef enum ft_tokenizer_kind {
    FT_TOK_BYTE_BPE = 1,     /* GPT-2 style byte-level BPE */
    FT_TOK_SPM_BPE  = 2,     /* SentencePiece-style BPE (score-based merges or merges list), byte fallback */
    FT_TOK_WORDPIECE = 3,
} ft_tokenizer_kind;

/* encode flags */
#define FT_TOK_ADD_SPECIAL   1  /* add BOS/EOS (or [CLS]/[SEP]) as the tokenizer's config says */
#define FT_TOK_NO_SPECIAL_PARSE 2 /* treat special-token strings in the text as plain text */

/* decode flags */
#define FT_TOK_SKIP_SPECIAL  1

/* dir may also be a tokenizer.json or a llama2.c .bin file. A directory with vocab.txt and no
 * tokenizer.json loads as a BERT WordPiece tokenizer (ft_tokenizer_load_wordpiece with its
 * tokenizer_config.json). A vocabulary with <s> and </s> but no <|endoftext|> is RoBERTa: <s> <pad>
 * </s> <unk> <mask> are special, FT_TOK_ADD_SPECIAL gives <s> A </s>. WordPiece decoding follows HF's
 * WordPiece decoder (a space before every token but the first unless it starts with "##", which is
 * dropped; " ." -> "." style clean-up per token). */
int  ft_tokenizer_load(ft_tokenizer **out, const char *dir);
/* Loads from explicit files: (vocab.json|encoder.json, merges.txt|vocab.bpe) for byte-level BPE.
 * <|endoftext|>, when present, is the special BOS/EOS token (as for GPT-2). */
int  ft_tokenizer_load_bpe_files(ft_tokenizer **out, const char *vocab_path, const char *merges_path);
/* A HF tokenizers tokenizer.json with a BPE model (byte-level or SentencePiece-style). */
int  ft_tokenizer_load_json(ft_tokenizer **out, const char *tokenizer_json_path);
/* A llama2.c tokenizer.bin / tok512.bin (kind FT_TOK_SPM_BPE; FT_TOK_ADD_SPECIAL adds BOS = 1). */
int  ft_tokenizer_load_llama2c(ft_tokenizer **out, const char *path);
void ft_tokenizer_free(ft_tokenizer *tok);

/* ---- tokenizer files recognised by their content (detect.c), whatever their name ---- */
typedef enum ft_tokenizer_file_kind {
    FT_TOKFILE_UNKNOWN = 0,
    FT_TOKFILE_HF_JSON,      /* HF tokenizer.json: a JSON object with a "model" object */
    FT_TOKFILE_LLAMA2C,      /* llama2.c tokenizer.bin: int32 max length, then {float score, int32 len, bytes} */
    FT_TOKFILE_BPE_VOCAB,    /* GPT-2 encoder.json / HF vocab.json: a JSON object of token -> id */
    FT_TOKFILE_BPE_MERGES,   /* vocab.bpe / merges.txt: a "#version" line or lines "a b" */
    FT_TOKFILE_WORDPIECE,    /* vocab.txt: one token per line, with [UNK] / [CLS] / [SEP] */
} ft_tokenizer_file_kind;
/* The kind of the file at path, from its content. FT_ERR_FORMAT (message listing the recognised
 * formats) when it is none of them; *kind is then FT_TOKFILE_UNKNOWN. */
int ft_tokenizer_detect_file(const char *path, ft_tokenizer_file_kind *kind);
ft_tokenizer_file_kind ft_tokenizer_classify_bytes(const void *data, size_t n);
/* The name ft_tokenizer_load(dir) looks for ("tokenizer.json", "tokenizer.bin", "vocab.json",
 * "merges.txt", "vocab.txt"); NULL for FT_TOKFILE_UNKNOWN. */
const char *ft_tokenizer_file_canonical_name(ft_tokenizer_file_kind k);
const char *ft_tokenizer_file_kind_name(ft_tokenizer_file_kind k);
/* One sentence listing the recognised formats (for error messages). */
const char *ft_tokenizer_file_formats(void);

/* Writes a HF tokenizers tokenizer.json (atomically) that HF's PreTrainedTokenizerFast and our
 * ft_tokenizer_load_json encode exactly like tok. For a llama2.c tokenizer: the Llama-2 layout
 * (Prepend/Replace normalizer, byte_fallback, merges derived from the scores, BOS post-processor).
 * The output is byte-identical for equal tokenizers. FT_ERR_UNSUPPORTED if a token is not UTF-8. */
int  ft_tokenizer_save_json(const ft_tokenizer *tok, const char *path);

ft_tokenizer_kind ft_tokenizer_get_kind(const ft_tokenizer *tok);
int ft_tokenizer_vocab_size(const ft_tokenizer *tok);
int ft_tokenizer_bos(const ft_tokenizer *tok);   /* -1 if none */
int ft_tokenizer_eos(const ft_tokenizer *tok);   /* -1 if none */
int ft_tokenizer_pad(const ft_tokenizer *tok);   /* -1 if none */
int ft_tokenizer_token_id(const ft_tokenizer *tok, const char *token); /* -1 if absent */
/* The vocabulary string of a token (e.g. "Ġhello", "▁the", "<0x0A>"), NULL if out of range. */
const char *ft_tokenizer_token_str(const ft_tokenizer *tok, int id);
int ft_tokenizer_is_special(const ft_tokenizer *tok, int id);

/* Encodes len bytes of UTF-8 text. *ids is malloc'd (caller frees), *n its length. */
int ft_tokenizer_encode(const ft_tokenizer *tok, const char *text, size_t len, int flags, int **ids, int *n);
/* Decodes ids to UTF-8 bytes (invalid sequences kept as bytes). *out malloc'd, NUL-terminated.
 * SentencePiece-style: the dummy-prefix space of the first token, and of a token right after BOS,
 * is dropped (so decode(encode(x)) == x, and decode equals the concatenation of decode_piece). */
int ft_tokenizer_decode(const ft_tokenizer *tok, const int *ids, int n, int flags, char **out, size_t *len);

/* Streaming decode for generation: the bytes token `id` adds when it follows `prev` (-1 at the
 * start of the text). Handles SentencePiece's dummy-prefix space at the start and byte tokens.
 * Writes at most cap bytes into buf (NUL-terminated when there is room) and returns the byte count
 * (>= 0), FT_ERR_RANGE if the piece does not fit or id is not a token. A piece can be part of a
 * UTF-8 character (byte tokens); concatenating pieces gives the exact bytes. */
int ft_tokenizer_decode_piece(const ft_tokenizer *tok, int prev, int id, char *buf, size_t cap);
/* ---- encoder models: WordPiece, sentence pairs, special ids ---- */

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

#endif
