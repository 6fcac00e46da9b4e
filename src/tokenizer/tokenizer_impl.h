/* tokenizer_impl.h — internals shared by the files of src/tokenizer/ (not a public header).
 *
 * One engine serves every BPE flavour:
 *
 *   text -> split on added tokens -> normalize -> pre-tokenize into pieces -> BPE per piece -> ids
 *
 * Byte-level BPE (GPT-2, Llama-3, Qwen2) starts a piece from one symbol per byte (the GPT-2
 * byte->unicode table names each byte's symbol); SentencePiece-style BPE starts from one symbol per
 * UTF-8 character, with byte fallback <0xNN> for characters outside the vocabulary. Merges are looked
 * up by (left id, right id) -> (rank, merged id) and applied lowest rank first, leftmost first.
 * llama2.c's score-based merging becomes such a table at load time: every split of every vocabulary
 * string into two vocabulary strings is a merge, ranked by the merged token's score (equal scores
 * share a rank, so ties go to the leftmost pair exactly as llama2.c does).
 *
 * Files:
 *   tokenizer.c       public API: load dispatch, accessors, encode driver, decode
 *   vocab.c           token table, string->id and pair->merge hash maps, finalize
 *   bpe.c             the merge loop (a min-heap of candidate pairs)
 *   pretokenize.c     normalizers, pre-tokenizers, Oniguruma->PCRE2 regex translation
 *   load_hf_json.c    tokenizer.json
 *   load_bpe_files.c  vocab.json + merges.txt, encoder.json + vocab.bpe
 *   load_llama2c.c    llama2.c tokenizer.bin / tok512.bin
 *   config.c          tokenizer_config.json / special_tokens_map.json
 *   save_json.c       ft_tokenizer_save_json
 */
#ifndef FT_TOKENIZER_IMPL_H
#define FT_TOKENIZER_IMPL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include "finetune/tokenizer.h"

#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

/* ---- token table ---- */
enum {
    FT_TOKF_PRESENT = 1,   /* the id has a string */
    FT_TOKF_MODEL   = 2,   /* part of the BPE model's vocabulary (symbols and merges use only these) */
    FT_TOKF_ADDED   = 4,   /* an added token, matched in raw text before normalization */
    FT_TOKF_SPECIAL = 8,   /* special: skipped by FT_TOK_SKIP_SPECIAL, not parsed with FT_TOK_NO_SPECIAL_PARSE */
    FT_TOKF_BYTE    = 16,  /* a byte-fallback token <0xNN> */
};

typedef struct ft_tok_token {
    uint32_t off, len;         /* vocabulary string: tok->pool + off, len bytes (NUL follows) */
    uint32_t dec_off, dec_len; /* decoded bytes: tok->dec_pool + dec_off */
    float    score;            /* llama2.c score (0 for other formats) */
    uint8_t  flags;            /* FT_TOKF_* */
    uint8_t  byte_val;         /* the byte of a FT_TOKF_BYTE token */
} ft_tok_token;

/* string -> id, open addressing with linear probing; keys are the token strings in tok->pool */
typedef struct ft_strmap_slot { uint32_t hash; int32_t id; } ft_strmap_slot;
typedef struct ft_strmap { ft_strmap_slot *slots; uint32_t mask, count; } ft_strmap;

/* (left id, right id) -> (rank, merged id) */
typedef struct ft_pairmap_slot { uint64_t key; int32_t rank, id; } ft_pairmap_slot;
typedef struct ft_pairmap { ft_pairmap_slot *slots; uint32_t mask, count; } ft_pairmap;

/* ---- pipeline steps (kept as loaded so that save_json writes them back) ---- */
typedef enum ft_norm_kind {
    FT_NORM_NFC = 1, FT_NORM_NFD, FT_NORM_NFKC, FT_NORM_NFKD, FT_NORM_LOWERCASE,
    FT_NORM_PREPEND,   /* a = string prepended to a non-empty segment */
    FT_NORM_REPLACE,   /* every literal a -> b */
} ft_norm_kind;
typedef struct ft_norm_step { ft_norm_kind kind; char *a, *b; } ft_norm_step;

typedef enum ft_pretok_kind { FT_PRE_SPLIT = 1, FT_PRE_BYTE_LEVEL, FT_PRE_METASPACE, FT_PRE_DIGITS } ft_pretok_kind;
typedef enum ft_split_behavior {
    FT_SPLIT_REMOVED = 1, FT_SPLIT_ISOLATED, FT_SPLIT_MERGED_PREV, FT_SPLIT_MERGED_NEXT, FT_SPLIT_CONTIGUOUS,
} ft_split_behavior;
typedef enum ft_prepend_scheme { FT_PREPEND_ALWAYS = 1, FT_PREPEND_FIRST, FT_PREPEND_NEVER } ft_prepend_scheme;

typedef struct ft_pretok_step {
    ft_pretok_kind kind;
    /* Split */
    char *pattern;            /* as written in tokenizer.json (Oniguruma syntax) or a literal string */
    int   pattern_is_regex;
    ft_split_behavior behavior;
    int   invert;
    /* ByteLevel */
    int   add_prefix_space, trim_offsets, use_regex;
    /* Metaspace */
    char *replacement;        /* UTF-8, usually "\xe2\x96\x81" (U+2581) */
    ft_prepend_scheme prepend_scheme;
    int   split;
    /* Digits */
    int   individual_digits;
    pcre2_code *re;           /* compiled pattern (Split, ByteLevel with use_regex, Digits) */
} ft_pretok_step;

typedef struct ft_tok_added {
    int32_t id;
    uint8_t lstrip, rstrip, single_word, normalized, special;
} ft_tok_added;

#define FT_TOK_MAX_AFFIX 4

struct ft_tokenizer {
    ft_tokenizer_kind kind;
    char source[512];           /* the file it was loaded from, for messages */

    int           n_tokens;     /* max id + 1 */
    int           cap_tokens;
    ft_tok_token *tokens;
    char   *pool;     size_t pool_len, pool_cap;
    char   *dec_pool; size_t dec_len,  dec_cap;
    ft_strmap  vocab;           /* every present token string -> id (the first id wins) */

    ft_pairmap merges;
    int32_t   (*merge_list)[2]; /* [n_merges][2] in rank order, for save_json */
    int        n_merges, cap_merges;
    int        merges_from_scores;

    /* model options */
    int byte_level;             /* pieces start as bytes (a ByteLevel pre-tokenizer is present) */
    int byte_fallback;          /* unknown characters become <0xNN> tokens */
    int unk_id;                 /* -1 if none */
    int fuse_unk;
    int ignore_merges;          /* a piece that is itself in the vocabulary is one token */
    int32_t byte_sym[256];      /* byte-level: id of byte b's symbol (-1 if absent) */
    int32_t byte_tok[256];      /* byte fallback: id of <0xNN> (-1 if absent) */

    ft_norm_step   *norm;  int n_norm;
    ft_pretok_step *pre;   int n_pre;

    ft_tok_added *added; int n_added;  /* sorted by content length, longest first */
    uint8_t added_first[256];          /* 1 if some added token starts with this byte */

    /* FT_TOK_ADD_SPECIAL: ids put before / after the text */
    int prefix[FT_TOK_MAX_AFFIX], n_prefix;
    int suffix[FT_TOK_MAX_AFFIX], n_suffix;
    int bos, eos, pad;

    /* decoding */
    int   dec_byte_level;       /* token chars map back through the byte->unicode table */
    int   dec_byte_fallback;    /* <0xNN> tokens decode to the byte */
    char *dec_replace_from;     /* e.g. U+2581 -> " " (NULL if none) */
    char *dec_replace_to;
    int   dec_strip_space;      /* drop the leading space of the first token / after BOS (SentencePiece) */
};

/* ---- vocab.c ---- */
int  ft_tok_alloc(ft_tokenizer **out, const char *source);
/* Gives id the string s (len bytes) and ORs flags in. Re-setting an id to the same string only adds flags. */
int  ft_tok_set_token(ft_tokenizer *tok, int id, const char *s, size_t len, int flags);
/* Appends merge (a, b) with the next rank; the merged string must be in the model vocabulary. */
int  ft_tok_add_merge(ft_tokenizer *tok, int a, int b);
int  ft_tok_add_merge_str(ft_tokenizer *tok, const char *a, size_t alen, const char *b, size_t blen);
/* Records an added token (the id must already hold its content). */
int  ft_tok_add_added(ft_tokenizer *tok, int id, int special, int lstrip, int rstrip, int single_word, int normalized);
/* Builds the merge table from llama2.c scores (all two-way splits of each vocabulary string). */
int  ft_tok_merges_from_scores(ft_tokenizer *tok);
/* After a loader has set tokens, merges and options: byte tables, decode strings, added-token order. */
int  ft_tok_finalize(ft_tokenizer *tok);
int  ft_tok_lookup(const ft_tokenizer *tok, const char *s, size_t len);        /* any present token */
int  ft_tok_lookup_model(const ft_tokenizer *tok, const char *s, size_t len);  /* model vocabulary only */
int  ft_tok_pair_lookup(const ft_tokenizer *tok, int a, int b, int *rank);    /* merged id or -1 */
static inline const char *ft_tok_str(const ft_tokenizer *tok, int id) { return tok->pool + tok->tokens[id].off; }
char *ft_tok_strdup(const char *s);
/* U+2581, the SentencePiece space */
#define FT_SPM_SPACE "\xe2\x96\x81"

/* The GPT-2 byte <-> unicode table: byte b is the code point ft_byte_to_cp(b). */
int ft_byte_to_cp(int b);
int ft_cp_to_byte(int cp);        /* -1 if cp is not in the table */
int ft_utf8_encode(uint32_t cp, char out[4]);
/* Length of the UTF-8 character at s (1..4), or 1 for an invalid byte; *cp gets the code point or -1. */
int ft_utf8_next(const unsigned char *s, size_t len, int32_t *cp);

/* ---- work buffers of one encode call ---- */
typedef struct ft_tok_piece { uint32_t off, len; uint8_t origin; } ft_tok_piece;
typedef struct ft_bpe_sym { int32_t id, prev, next; } ft_bpe_sym;
typedef struct ft_bpe_cand { int32_t rank, left, right, a, b, merged; } ft_bpe_cand;

typedef struct ft_tok_work {
    char *buf[2]; size_t bcap[2];         /* pre-tokenizer ping-pong buffers */
    ft_tok_piece *pc[2]; int npc[2], pccap[2];
    int cur;                               /* which buffer holds the current pieces */
    char *nbuf[2]; size_t ncap[2];         /* normalizer ping-pong buffers */
    ft_bpe_sym  *sym;  int sym_cap;
    ft_bpe_cand *heap; int heap_cap;
    char *tmp; size_t tmp_cap;             /* byte-level mapped piece (ignore_merges) */
    pcre2_match_data *md;
    struct { size_t s, e; uint8_t m; } *spans; int nspans, spans_cap;
    int *ids; int n, cap;                  /* the output */
} ft_tok_work;

int  ft_tok_work_init(ft_tok_work *w, const ft_tokenizer *tok);
void ft_tok_work_free(ft_tok_work *w);
int  ft_tok_push(ft_tok_work *w, int id);
int  ft_tok_reserve(void **p, size_t elem, int need, int *cap);
int  ft_tok_reserve_bytes(char **p, size_t need, size_t *cap);

/* ---- pretokenize.c ---- */
/* Compiles an Oniguruma-syntax pattern (as in tokenizer.json) or a literal for PCRE2 (UTF, UCP). */
int  ft_tok_regex_compile(pcre2_code **out, const char *pattern, int is_regex);
/* Normalizes len bytes of s; *out points to s itself or into w's buffers. */
int  ft_tok_normalize(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len, const char **out, size_t *out_len);
/* Splits s into pieces: afterwards w->buf[w->cur] / w->pc[w->cur] / w->npc[w->cur] hold them. */
int  ft_tok_pretokenize(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len, int origin);
void ft_pretok_step_free(ft_pretok_step *p);
extern const char ft_gpt2_pattern[];

/* ---- bpe.c ---- */
/* Encodes one piece and appends its ids to w->ids. */
int  ft_bpe_encode_piece(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len);

/* ---- loaders ---- */
int  ft_tok_load_hf_json(ft_tokenizer **out, const char *path);
int  ft_tok_load_bpe_files(ft_tokenizer **out, const char *vocab_path, const char *merges_path);
int  ft_tok_load_llama2c(ft_tokenizer **out, const char *path);
/* Applies tokenizer_config.json and special_tokens_map.json from dir when present. */
int  ft_tok_apply_config(ft_tokenizer *tok, const char *dir);
/* Sets prefix/suffix from bos/eos and the add flags. */
void ft_tok_set_affixes(ft_tokenizer *tok, int add_bos, int add_eos);
/* Sets up the GPT-2 pipeline (ByteLevel pre-tokenizer with the GPT-2 pattern, ByteLevel decoder). */
int  ft_tok_setup_gpt2_pipeline(ft_tokenizer *tok);
/* Picks BOS / EOS from well-known token names when nothing else said (-1 stays -1 if absent). */
void ft_tok_guess_bos_eos(ft_tokenizer *tok);

/* cJSON glue (config.c) */
struct cJSON;
int  ft_tok_json_bool(const struct cJSON *obj, const char *key, int def);
const char *ft_tok_json_str(const struct cJSON *obj, const char *key);   /* NULL if absent or not a string */
/* A special-token value: "name" or {"content": "name"}; NULL otherwise. */
const char *ft_tok_json_token_name(const struct cJSON *v);
int  ft_tok_json_parse_file(struct cJSON **out, const char *path);
#endif
