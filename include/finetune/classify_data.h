/* classify_data.h — data for sequence classification and token classification (encoders).
 *
 * 1. Label maps (ft_label_map): id -> name, ids 0..n-1. Built from the data as the sorted (strcmp)
 *    distinct label names, except when every label is a non-negative integer: then the integers are
 *    the ids themselves and the names are their decimal strings ("0", "1", ..., up to the largest).
 *    A map can be given instead (e.g. a model's id2label): a label is then looked up by name, and an
 *    integer label that is not a name is taken as an id when it is < n; anything else is an error
 *    naming file, line and column. Saved / loaded as HF config.json does:
 *        {"id2label": {"0": "neg", "1": "pos"}, "label2id": {"neg": 0, "pos": 1}}
 *    (loading reads id2label, else label2id, from any JSON object, so a config.json works).
 *
 * 2. Text classification files (ft_cls_dataset_load): CSV (','), TSV ('\t', from a .tsv name) with
 *    RFC 4180 quoting (a field starting with '"' is quoted: it may hold the delimiter, newlines and
 *    "" for a quote; a quote inside an unquoted field is text), or JSONL (.jsonl / .json: one object a
 *    line; labels may be strings or integers). Columns are chosen by header name (exact, then
 *    case-insensitive) or by a 1-BASED column number ("1" is the first column; needed with
 *    header = 0). Defaults: text "text", label "label", no pair column. Errors (FT_ERR_NOT_FOUND /
 *    FT_ERR_FORMAT) name the file, line and column: missing column, short row, empty (or
 *    whitespace-only) text or pair, empty label, unknown label with a given map. Texts are kept as
 *    they are; labels are trimmed of surrounding whitespace.
 *
 * 3. Encoder inputs: [CLS] A [SEP] (B [SEP]) (RoBERTa: <s> A </s></s> B </s>) through
 *    ft_tokenizer_build_inputs, truncated "longest_first" to max_len (tokens removed one at a time
 *    from the end of the longer sequence, from B on ties, as HF does), token type ids, and
 *    ft_cls_batch rows padded to the longest row (or to T) with attention mask 0 on padding.
 *
 * 4. Imbalance and splits: per-class counts; class weights (inverse frequency n / count_k, or
 *    sklearn's "balanced" n / (K * count_k); 0 for an absent class); seeded random over-sampling
 *    (every class drawn with replacement up to the largest class) and under-sampling (every present
 *    class cut without replacement to the smallest present class); stratified train/validation split
 *    and stratified k-fold. All outputs are index lists sorted ascending, the same for the same seed.
 *
 * 5. CoNLL (token classification): "token<TAB>tag" lines (or whitespace-separated: first field is
 *    the token, last the tag), blank lines between sentences, -DOCSTART- lines skipped. Tags map to
 *    ids by a tag map (built sorted, or given). ft_conll_encode aligns word tags to subtokens: the
 *    first subtoken of a word gets the word's tag, the other subtokens and special tokens get -100
 *    (FT_CLS_IGNORE), as HF's token-classification examples do. Each word is tokenized on its own
 *    (is_split_into_words); for byte-level BPE a space is put before every word (add_prefix_space).
 *
 *   ft_cls_options o = ft_cls_default_options();  o.text_column = "sentence";
 *   ft_cls_dataset ds;  FT_TRY(ft_cls_dataset_load(&ds, "train.tsv", &o));
 *   ft_cls_features f;  FT_TRY(ft_cls_features_build(&f, &ds, tok, 128));
 *   ft_cls_batch b;     FT_TRY(ft_cls_batch_alloc(&b, 32, 128));
 *   FT_TRY(ft_cls_batch_fill(&b, &f, idx, 32, ft_cls_pad_id(tok), 0));
 */
#ifndef FINETUNE_CLASSIFY_DATA_H
#define FINETUNE_CLASSIFY_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/tokenizer.h"

#define FT_CLS_IGNORE (-100)

/* ---- label maps ---- */
typedef struct ft_label_map {
    int    n;        /* number of labels; ids 0..n-1 */
    char **names;    /* [n] id -> name (malloc'd strings) */
} ft_label_map;

/* A map from names in id order (copied). Duplicate names -> FT_ERR_INVALID. */
int  ft_label_map_init(ft_label_map *m, const char *const *names, int n);
int  ft_label_map_copy(ft_label_map *dst, const ft_label_map *src);
void ft_label_map_free(ft_label_map *m);
int  ft_label_map_id(const ft_label_map *m, const char *name);        /* -1 if absent */
const char *ft_label_map_name(const ft_label_map *m, int id);          /* NULL if out of range */
/* JSON text {"id2label": {...}, "label2id": {...}} (malloc'd, NUL-terminated). */
int  ft_label_map_to_json(const ft_label_map *m, char **out);
int  ft_label_map_from_json(ft_label_map *m, const char *json, size_t len, const char *what);
int  ft_label_map_save(const ft_label_map *m, const char *path);       /* atomic write */
int  ft_label_map_load(ft_label_map *m, const char *path);

/* ---- text classification datasets ---- */
typedef enum ft_cls_format { FT_CLS_AUTO = 0, FT_CLS_CSV, FT_CLS_JSONL } ft_cls_format;

typedef struct ft_cls_options {
    ft_cls_format format;         /* AUTO: .jsonl/.json -> JSONL, else CSV/TSV */
    const char *text_column;      /* "text": header name or 1-based column number */
    const char *pair_column;      /* NULL: single sentences */
    const char *label_column;     /* "label" */
    char        delimiter;        /* 0: '\t' for *.tsv, ',' otherwise */
    int         header;           /* 1: the first row names the columns */
    const ft_label_map *label_map;/* NULL: built from the data */
    int         no_labels;        /* 1: texts only (MLM): no label column is read, labels are all 0 and
                                     the label map is empty; a .txt file (any format) is then one text per
                                     line that is not blank (line numbers kept; CRLF and a BOM handled) */
} ft_cls_options;
ft_cls_options ft_cls_default_options(void);

typedef struct ft_cls_dataset {
    int64_t n;
    char  **text;      /* [n] */
    char  **pair;      /* [n] or NULL without a pair column */
    int    *label;     /* [n] ids */
    int    *line;      /* [n] 1-based line of the row */
    ft_label_map labels;
} ft_cls_dataset;

int  ft_cls_dataset_load(ft_cls_dataset *out, const char *path, const ft_cls_options *opt);
/* The same from a buffer; path is used in messages and to pick the format / delimiter. */
int  ft_cls_dataset_parse(ft_cls_dataset *out, const char *path, const char *buf, size_t len,
                          const ft_cls_options *opt);
void ft_cls_dataset_free(ft_cls_dataset *ds);

/* ---- encoder inputs ---- */
/* Encodes (a, b) (b NULL: one sequence) with special tokens, truncated longest_first so that the
 * result has at most max_len ids (max_len <= 0: ft_tokenizer_model_max_length, or no limit).
 * *ids, *type_ids malloc'd; *truncated = tokens removed. */
int ft_cls_encode_one(const ft_tokenizer *tok, const char *a, const char *b, int max_len,
                      int **ids, int **type_ids, int *n, int *truncated);

typedef struct ft_cls_features {
    int64_t  n;
    int64_t *off;        /* [n+1] example i is ids[off[i] .. off[i+1]) */
    int     *ids, *type_ids;
    int     *labels;     /* [n] */
    int      max_len;    /* longest example */
    int64_t  truncated;  /* examples that were cut */
} ft_cls_features;
int  ft_cls_features_build(ft_cls_features *f, const ft_cls_dataset *ds, const ft_tokenizer *tok, int max_len);
void ft_cls_features_free(ft_cls_features *f);

/* Padding id for encoder batches: the tokenizer's pad, else 0. */
int ft_cls_pad_id(const ft_tokenizer *tok);

typedef struct ft_cls_batch {
    int  B, T;           /* rows and columns of this batch */
    int *ids;            /* [B*T] */
    int *type_ids;       /* [B*T] 0 on padding */
    int *mask;           /* [B*T] 1 real token, 0 padding */
    int *labels;         /* sequence classification: [B]; token classification: [B*T], -100 on padding */
    int  cap_B, cap_T;
} ft_cls_batch;
int  ft_cls_batch_alloc(ft_cls_batch *b, int B, int T);  /* labels get B*T entries */
void ft_cls_batch_free(ft_cls_batch *b);
/* Rows idx[0..n) of f (n <= cap_B): T = the longest of them (pad_to_T = 0) or cap_T (1).
 * An example longer than cap_T -> FT_ERR_RANGE. */
int  ft_cls_batch_fill(ft_cls_batch *b, const ft_cls_features *f, const int64_t *idx, int n,
                       int pad_id, int pad_to_T);

/* ---- imbalance, resampling, splits ---- */
typedef enum ft_class_weighting { FT_CLASS_WEIGHT_INVERSE = 0, FT_CLASS_WEIGHT_BALANCED = 1 } ft_class_weighting;
typedef enum ft_resample { FT_RESAMPLE_OVER = 0, FT_RESAMPLE_UNDER = 1 } ft_resample;

/* counts[K]; a label outside [0, K) -> FT_ERR_RANGE. */
int ft_cls_class_counts(int64_t *counts, const int *labels, int64_t n, int K);
/* w[K] from counts (n = their sum). */
int ft_cls_class_weights(double *w, const int64_t *counts, int K, ft_class_weighting mode);
/* A resampled index list (*idx malloc'd, *m entries, ascending; over-sampling repeats indices). */
int ft_cls_resample(int64_t **idx, int64_t *m, const int *labels, int64_t n, int K, ft_resample mode, uint64_t seed);
/* Stratified split: class k contributes round(count_k * val_fraction) examples to val, chosen by a
 * seeded shuffle of that class. *train / *val malloc'd (ascending; *val NULL when empty). */
int ft_cls_stratified_split(int64_t **train, int64_t *n_train, int64_t **val, int64_t *n_val,
                            const int *labels, int64_t n, int K, double val_fraction, uint64_t seed);
/* Stratified k-fold: each class is shuffled (seeded) and dealt to the folds in turn, continuing
 * from fold to fold across classes, so every fold holds floor or ceil of count_k / folds of class k
 * and fold sizes differ by at most one. val = fold `fold`, train = the others. */
int ft_cls_stratified_kfold(int64_t **train, int64_t *n_train, int64_t **val, int64_t *n_val,
                            const int *labels, int64_t n, int K, int folds, int fold, uint64_t seed);

/* ---- CoNLL token classification ---- */
typedef struct ft_conll {
    int64_t  n_sent;
    int64_t *sent_off;   /* [n_sent+1] sentence s is tokens sent_off[s] .. sent_off[s+1] */
    int64_t  n_tok;
    char   **tokens;     /* [n_tok] */
    int     *tags;       /* [n_tok] tag ids */
    int     *line;       /* [n_tok] 1-based line */
    ft_label_map tag_map;
} ft_conll;
/* tag_map NULL: sorted distinct tags; given: an unknown tag is an error naming file and line. */
int  ft_conll_load(ft_conll *out, const char *path, const ft_label_map *tag_map);
int  ft_conll_parse(ft_conll *out, const char *path, const char *buf, size_t len, const ft_label_map *tag_map);
void ft_conll_free(ft_conll *c);

/* Encodes n_words words with special tokens and aligns tags: *ids, *labels, *word_ids (each *n long,
 * malloc'd; word_ids may be NULL; -1 on special tokens). Words are dropped from the end so that the
 * result fits max_len (<= 0: no limit). */
int ft_conll_encode(const ft_tokenizer *tok, const char *const *words, const int *tags, int n_words,
                    int max_len, int **ids, int **labels, int **word_ids, int *n);
/* ---- masked language modelling (transformers' DataCollatorForLanguageModeling) ----
 * Over ids[n] (one padded row or a whole batch): every position whose id is not special
 * (ft_tokenizer_is_special: [CLS] [SEP] [PAD] ...; also skipped where attn_mask[i] == 0, attn_mask may be
 * NULL) is chosen with probability prob (0.15). labels[i] = the original id when chosen, else FT_CLS_IGNORE.
 * Of the chosen: 80% become mask_id, 10% a uniformly random id in [0, vocab_size), 10% stay as they are.
 * ids are changed in place. Seeded (xoshiro via rng.h): the same seed gives the same masks. *n_chosen may be
 * NULL. mask_id < 0, vocab_size <= 0 or prob outside [0, 1] -> FT_ERR_INVALID; tok may be NULL (no id is special). */
int ft_mlm_mask(int *ids, int *labels, const int *attn_mask, int n, const ft_tokenizer *tok, int mask_id,
                int vocab_size, double prob, uint64_t seed, int *n_chosen);

/* Token-classification features: each sentence of a CoNLL set encoded by ft_conll_encode into one example
 * (same layout as ft_cls_features, with labels [total ids] aligned to ids, -100 on specials/continuations,
 * and word_ids kept for word-level evaluation). Batches: ft_cls_batch_fill_tokens pads labels with -100. */
typedef struct ft_tok_features {
    int64_t  n;
    int64_t *off;        /* [n+1] */
    int     *ids, *type_ids, *labels, *word_ids;   /* [off[n]] */
    int      max_len;
    int64_t  truncated;  /* sentences that lost words */
} ft_tok_features;
/* max_len <= 0: ft_tokenizer_model_max_length (0: no limit), as ft_cls_features_build. */
int  ft_tok_features_build(ft_tok_features *f, const ft_conll *c, const ft_tokenizer *tok, int max_len);
void ft_tok_features_free(ft_tok_features *f);
/* Rows idx[0..n) into b (labels [B*T], -100 on padding). */
int  ft_cls_batch_fill_tokens(ft_cls_batch *b, const ft_tok_features *f, const int64_t *idx, int n, int pad_id, int pad_to_T);

#endif
