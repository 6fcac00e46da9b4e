/* data.h — training data: dataset files in, batches of token ids with a loss mask out.
 *
 * The pipeline has four stages, each a separate object so that the trainer can hold, inspect and
 * checkpoint them:
 *
 *   file(s) ──read──> records ──clean──> records ──render + tokenize──> examples      (ft_dataset)
 *   examples ──seeded split / k folds──> train and validation index lists               (ft_data_split)
 *   index list ──window, pack or pad, shuffle per epoch──> ft_batch of B rows x T       (ft_batcher)
 *   the position in that stream: {seed, epoch, cursor}, three integers                   (ft_batch_iter)
 *
 * 1. Formats (FT_DATA_AUTO detects them from the extension and the first record):
 *   dialogue     JSON: a list of dialogues. A dialogue is {"dialogue": ...} or {"turns": ...} or a
 *                bare list; its turns are {"speaker"|"name"|"role"|"from": .., "text"|"utterance"|
 *                "content"|"value": ..} objects, or plain strings whose speakers alternate
 *                (opt.speakers, "A"/"B") unless every string starts with its own "Name: ", or one
 *                string of speaker-labelled text ("Coach: ...\n\n
 *                Player: ..." as in data/fundialogues; labels are found at line starts, and inline
 *                after a sentence end when the name labels turns elsewhere in the same file). A JSON
 *                object whose members hold such lists ({"topic": [...], ...}) is read member by member.
 *                Rendered in speaker format, one turn a line: "Alex: Hello\nBob: Hi there\n".
 *   prompt-completion  JSONL (or a JSON list) of {"prompt": .., "completion": ..}.
 *   chat         JSONL of {"messages": [{"role": system|user|assistant|tool, "content": ..}]};
 *                content may also be a list of {"type": "text", "text": ..} parts.
 *   alpaca       JSON list or JSONL of {"instruction", "input" (optional), "output"}, with optional
 *                "system" and "history": [[instruction, output], ...] (earlier turns).
 *   sharegpt     {"conversations": [{"from": human|gpt|system|function_call|observation, "value"}]},
 *                optional "system"; a "chosen" message (preference data) is taken as the final
 *                assistant turn. function_call counts as assistant, observation as tool.
 *   text         plain text: one document per blank-line-separated block (FT_TEXT_BLOCKS, the
 *                default), or the whole file (FT_TEXT_WHOLE), or one per line (FT_TEXT_LINES);
 *                JSONL/JSON records {"text": ..} are read as text too.
 *   dailydialog  one dialogue per line, turns separated by "__eou__", speakers alternate.
 *   csv          CSV (',') or TSV ('\t', from a .tsv name) with RFC 4180 quoting: quoted fields
 *                may hold the delimiter, "" and newlines (a quote inside an unquoted field is
 *                text). The text comes from opt.text_column ("text", or a 1-based column number);
 *                with prompt_column and completion_column set, rows are prompt-completion records
 *                instead. opt.csv_header = 0: no header row.
 *   A directory is read file by file (*.json, *.jsonl, *.csv, *.tsv, *.txt in name order), each file
 *   detected on its own; LICENSE / README files are ignored.
 *
 * 2. Cleaning, field by field, with counts in the summary:
 *   invalid UTF-8  -> the record is dropped (or, strict, an error) naming file, line, field, byte;
 *   NFC normalisation (utf8proc), only on fields that are not plain ASCII;
 *   whitespace: CRLF and CR -> LF, control characters other than TAB/LF removed, runs of spaces
 *   inside a line -> one space (leading indentation is kept: code stays code), trailing spaces of
 *   lines removed, 3+ newlines -> 2, field trimmed — except a prompt's trailing and a completion's
 *   leading whitespace, which belong to the prompt-completion format (prompt "Q: x\nA:",
 *   completion " y");
 *   empty required fields, missing fields, malformed JSON lines / CSV rows -> dropped with a reason;
 *   exact duplicates (all fields equal after cleaning) -> dropped (opt.dedup);
 *   min_chars / max_chars (Unicode characters over all fields) -> dropped.
 *   Each drop of bad input is logged as a warning "file: line L: record R: field 'F': reason" (the
 *   first opt.max_warnings of each reason; the rest counted); duplicates and length filters only at
 *   debug level (they are counted in the summary). opt.strict turns the first drop of any kind into
 *   an error with that same message. No record left -> FT_ERR_FORMAT naming the file.
 *
 * 3. Rendering and the loss mask. Every example is one token sequence plus one flag per token:
 *   learned[i] = 1 when token i is a prediction target (the model learns to produce it from tokens
 *   0..i-1). What is learned (opt.train_on):
 *     FT_TRAIN_ON_COMPLETION: the completion / output / assistant turns (their content and the
 *       end-of-turn text after it), not prompts, system text or template scaffolding. For dialogue
 *       data: the turns of opt.response_speaker (default: the speaker of the last turn), not the
 *       "Name: " labels.
 *     FT_TRAIN_ON_ALL: every token after the first.
 *     FT_TRAIN_ON_AUTO (default): COMPLETION for prompt-completion, chat, alpaca and sharegpt;
 *       ALL for text, dialogue, dailydialog and CSV text.
 *   With a chat template (opt.chat_template, chat.h) chat, sharegpt, alpaca (user = instruction,
 *   a blank line, input) and prompt-completion records are rendered by it, and the learned bytes
 *   are the assistant spans it reports. Without one: prompt-completion is prompt + completion
 *   concatenated as is (opt.pc_separator between them when set, e.g. "\n" for CSV columns); chat
 *   and sharegpt use speaker format with "System", "User", "Assistant", "Tool" as names; alpaca
 *   uses the Stanford Alpaca layout (a "system" field replaces the opening sentence):
 *       "Below is an instruction that describes a task[, paired with an input that provides further
 *        context]. Write a response that appropriately completes the request.\n\n"
 *       "### Instruction:\n{instruction}\n\n[### Input:\n{input}\n\n]### Response:\n{output}"
 *     (history turns come first as "### Instruction:\n..\n\n### Response:\n..\n\n").
 *   The whole rendered text is tokenized at once (so tokens are those of the text, not of pieces),
 *   and a token is learned when its bytes overlap a learned byte range. Data text is tokenized with
 *   FT_TOK_NO_SPECIAL_PARSE (a literal "<|endoftext|>" in the data stays text); template output is
 *   tokenized with special tokens parsed.
 *   BOS: prepended when the tokenizer's own config adds it (opt.add_bos = -1) or when add_bos = 1,
 *   unless the rendered text already starts with it. EOS: appended to every example (unless it
 *   already ends with it, or for template output with it and whitespace, "</s>\n") and ALWAYS
 *   learned, whatever train_on says, and even when the pad id equals the EOS id — targets come
 *   from the mask, never from comparing ids with pad.
 *   Truncation to opt.seq_len tokens (opt.truncate): RIGHT keeps the start (the EOS is then lost:
 *   the text was cut, it did not end); LEFT keeps the end (and the BOS); NONE keeps long examples
 *   whole and the batcher cuts them into windows of T tokens that overlap by one token, so every
 *   target is learned exactly once. AUTO (default) = NONE for text/CSV text, RIGHT otherwise.
 *   An example left with no learned token is dropped (reason "no learned tokens").
 *   The summary prints a token-length histogram (before truncation) and the truncated count.
 *
 * 4. Splits (ft_data_split_make): a validation file, or a seeded random fraction (default 0.2), or
 *   fold I of K contiguous folds of one seeded permutation. Same seed -> same split.
 *
 * 5. Batches (ft_batcher) for ft_model_forward (model.h), B rows of T tokens:
 *     ids[b*T+t]      token ids; padding uses pad_id (the tokenizer's pad, else EOS, else 0);
 *     targets[b*T+t]  ids[b*T+t+1] when that next token is learned AND belongs to the same example
 *                     (window), else FT_IGNORE_INDEX (-100, ops.h); padding is never a target;
 *     pos[b*T+t]      position inside its example, restarting at 0 for each packed example
 *                     (and for the padding run);
 *     seg[b*T+t]      example index within the row 0, 1, ..; the padding tail gets its own id.
 *   FT_BATCH_PADDED: one example per row, padded to T (or, with dynamic_pad, to the longest row of
 *   the batch rounded up to pad_multiple; batch->T then says which). FT_BATCH_PACKED: several
 *   examples per row, packed once, first-fit-decreasing, never splitting an example that fits in T;
 *   attention (seg) and positions (pos) never cross examples. Rows (packed) or examples (padded)
 *   are shuffled every epoch by a permutation that depends only on (seed, epoch).
 *
 * 6. Resuming. ft_batch_iter is the whole iteration state: {seed, epoch, cursor}. Save its three
 *   integers in a checkpoint; restoring them (with the same data and options) gives bit-exactly the
 *   same next batch.
 *
 * Usage (what `finetune train` does; every call returns FT_OK or a negative ft_status and on error
 * ft_last_error() names the file, line and field):
 *
 *   ft_data_options o = ft_data_default_options();
 *   o.seq_len = 256;                       // o.format, o.train_on, o.strict, o.chat_template, ...
 *   ft_dataset *train = NULL, *val = NULL;
 *   FT_TRY(ft_dataset_load(&train, FT_DATA_DEFAULT_PATH, tok, &o));
 *   ft_dataset_print_summary(train, stderr);
 *   // optional separate validation file: ft_dataset_load(&val, "val.jsonl", tok, &o)
 *   ft_data_split sp;
 *   FT_TRY(ft_data_split_make(&sp, train, val, 0.2, 0, 0, seed));     // val fraction, folds, fold
 *
 *   ft_batcher_options bo = ft_batcher_default_options();
 *   bo.B = 8; bo.T = 256; bo.mode = FT_BATCH_PACKED;
 *   ft_batcher *tb;  FT_TRY(ft_batcher_create(&tb, sp.train_ds, sp.train, sp.n_train, &bo));
 *   ft_batch batch;  FT_TRY(ft_batch_alloc(&batch, bo.B, bo.T));
 *   int64_t steps = epochs * ft_batcher_batches_per_epoch(tb);
 *   ft_batch_iter it = ft_batch_iter_start(seed);        // or the one saved in a checkpoint
 *   for (int64_t s = 0; s < steps; s++) {
 *       FT_TRY(ft_batcher_next(tb, &it, &batch));
 *       ft_model_forward(m, batch.ids, batch.targets, batch.pos, batch.seg, batch.B, batch.T, &loss);
 *       ...                                              // checkpoint: save it.seed/epoch/cursor
 *   }
 *   // evaluation: a batcher over sp.val with bo.shuffle = 0, ft_batch_iter_start(0), one epoch.
 *   ft_batch_free(&batch); ft_batcher_free(tb); ft_data_split_free(&sp);
 *   ft_dataset_free(train); ft_dataset_free(val);
 */
#ifndef FINETUNE_DATA_H
#define FINETUNE_DATA_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "finetune/tokenizer.h"

/* The bundled training set (Apache-2.0, see data/fundialogues/LICENSE), relative to the repo root:
 * what `finetune train` reads when no --data is given. */
#define FT_DATA_DEFAULT_PATH "data/fundialogues"

typedef struct ft_chat_template ft_chat_template;  /* chat.h */

typedef enum ft_data_format {
    FT_DATA_AUTO = 0,
    FT_DATA_DIALOGUE,           /* "dialogue" */
    FT_DATA_PROMPT_COMPLETION,  /* "prompt-completion" (also "completion") */
    FT_DATA_CHAT,               /* "chat" (also "messages") */
    FT_DATA_ALPACA,             /* "alpaca" */
    FT_DATA_SHAREGPT,           /* "sharegpt" */
    FT_DATA_TEXT,               /* "text" */
    FT_DATA_DAILYDIALOG,        /* "dailydialog" */
    FT_DATA_CSV,                /* "csv" (also "tsv") */
    FT_DATA_FORMAT_COUNT
} ft_data_format;

typedef enum ft_train_on {
    FT_TRAIN_ON_AUTO = 0,       /* "auto": completion for prompt/chat/alpaca/sharegpt, all otherwise */
    FT_TRAIN_ON_COMPLETION,     /* "completion" */
    FT_TRAIN_ON_ALL,            /* "all" */
} ft_train_on;

typedef enum ft_truncate {
    FT_TRUNC_AUTO = 0,          /* "auto": none for text (plain, CSV, {"text"}), right otherwise */
    FT_TRUNC_RIGHT,             /* "right": keep the first seq_len tokens */
    FT_TRUNC_LEFT,              /* "left": keep BOS + the last tokens */
    FT_TRUNC_NONE,              /* "none": keep whole; the batcher cuts windows of T */
} ft_truncate;

typedef enum ft_text_split {
    FT_TEXT_BLOCKS = 0,         /* "blocks": documents separated by blank lines */
    FT_TEXT_WHOLE,              /* "whole": the whole file is one document */
    FT_TEXT_LINES,              /* "lines": one document per non-empty line */
} ft_text_split;

/* Name <-> value ("dialogue", "completion", "right", ...). Unknown name -> FT_ERR_INVALID listing
 * the accepted names. */
int         ft_data_format_from_name(const char *name, ft_data_format *out);
const char *ft_data_format_name(ft_data_format f);
int         ft_train_on_from_name(const char *name, ft_train_on *out);
const char *ft_train_on_name(ft_train_on t);
int         ft_truncate_from_name(const char *name, ft_truncate *out);
const char *ft_truncate_name(ft_truncate t);
int         ft_text_split_from_name(const char *name, ft_text_split *out);

typedef struct ft_data_options {
    /* reading */
    ft_data_format format;          /* FT_DATA_AUTO */
    const char *text_column;        /* CSV: column name or 1-based number; "text" */
    const char *prompt_column;      /* CSV: with completion_column, rows are prompt-completion; NULL */
    const char *completion_column;  /* NULL */
    char        csv_delimiter;      /* 0: '\t' for *.tsv, ',' otherwise */
    int         csv_header;         /* 1: the first row names the columns */
    ft_text_split text_split;       /* FT_TEXT_BLOCKS */
    const char *speakers[2];        /* names of alternating unnamed turns: "A", "B" */
    /* cleaning */
    int strict;                     /* 0; 1: every dropped record is an error instead */
    int nfc;                        /* 1 */
    int clean_whitespace;           /* 1 */
    int dedup;                      /* 1 */
    int min_chars, max_chars;       /* 1, 0 (0 = no limit) */
    int max_warnings;               /* 10 warnings printed per drop reason */
    /* rendering */
    ft_train_on train_on;           /* FT_TRAIN_ON_AUTO */
    const char *response_speaker;   /* dialogue + COMPLETION: whose turns are learned; NULL = last turn's */
    const char *pc_separator;       /* put between prompt and completion without a template; NULL = "" */
    int seq_len;                    /* 1024 */
    ft_truncate truncate;           /* FT_TRUNC_AUTO */
    int add_bos;                    /* -1: as the tokenizer adds it with FT_TOK_ADD_SPECIAL; 0; 1 */
    const ft_chat_template *chat_template; /* NULL: built-in layouts */
} ft_data_options;

ft_data_options ft_data_default_options(void);

/* Why a record was dropped. */
typedef enum ft_data_drop {
    FT_DROP_MALFORMED = 0,      /* unparsable JSON line / element, bad CSV row */
    FT_DROP_MISSING_FIELD,      /* required field absent or of the wrong type, unknown role */
    FT_DROP_EMPTY,              /* required field empty after cleaning */
    FT_DROP_INVALID_UTF8,
    FT_DROP_DUPLICATE,
    FT_DROP_TOO_SHORT,          /* < min_chars */
    FT_DROP_TOO_LONG,           /* > max_chars */
    FT_DROP_NO_TARGET,          /* no learned token (no assistant turn, or all cut by truncation) */
    FT_DROP_COUNT
} ft_data_drop;
const char *ft_data_drop_name(ft_data_drop d);

#define FT_DATA_HIST_BINS 24
typedef struct ft_data_stats {
    ft_data_format format;          /* detected (of the first file when files differ) */
    int64_t files;
    int64_t read;                   /* records seen (including dropped ones) */
    int64_t kept;                   /* examples in the dataset */
    int64_t dropped[FT_DROP_COUNT];
    int64_t nfc_changed;            /* records changed by NFC normalisation */
    int64_t ws_changed;             /* records changed by whitespace clean-up */
    int64_t tokens;                 /* tokens of the kept examples after truncation */
    int64_t learned;                /* learned tokens among them */
    int64_t truncated;              /* examples cut to seq_len */
    int64_t over_seq_len;           /* examples longer than seq_len (before truncation; kept or not) */
    int     len_min, len_max, len_p50, len_p90, len_p99;  /* token lengths before truncation */
    double  len_mean;
    int64_t hist[FT_DATA_HIST_BINS];/* examples whose length (before truncation) is in [2^i, 2^(i+1)) */
    int     seq_len;
    ft_truncate truncate;           /* as applied (AUTO resolved) */
    ft_train_on train_on;           /* as applied (AUTO resolved, of the first file) */
} ft_data_stats;

/* ---- datasets ---- */
typedef struct ft_dataset ft_dataset;

/* Reads, cleans, renders and tokenizes a file or a directory of files. tok is used only during the
 * call. On failure *out is NULL and ft_last_error() names the file, line, record and field. */
int  ft_dataset_load(ft_dataset **out, const char *path, const ft_tokenizer *tok, const ft_data_options *opt);
void ft_dataset_free(ft_dataset *ds);

int64_t ft_dataset_size(const ft_dataset *ds);                  /* number of examples */
const ft_data_stats *ft_dataset_stats(const ft_dataset *ds);
/* Example i: its tokens and learned flags (pointers into ds, valid until ft_dataset_free). */
int  ft_dataset_example(const ft_dataset *ds, int64_t i, const int **ids, const uint8_t **learned, int *n);
/* The rendered text of example i (before tokenization and truncation), NUL-terminated, owned by ds. */
const char *ft_dataset_text(const ft_dataset *ds, int64_t i, size_t *len);
/* Where example i came from: file path (owned by ds), 1-based line, 0-based record index in that file. */
const char *ft_dataset_source(const ft_dataset *ds, int64_t i, int *line, int64_t *record);
/* Padding id used by batches (tokenizer pad, else EOS, else 0) and the EOS id (-1 if none). */
int  ft_dataset_pad_id(const ft_dataset *ds);
int  ft_dataset_eos_id(const ft_dataset *ds);
/* The summary: records read / kept / dropped with reasons, cleaning counts, token lengths,
 * truncation and the length histogram. */
void ft_dataset_print_summary(const ft_dataset *ds, FILE *fp);

/* ---- splits ---- */
typedef struct ft_data_split {
    const ft_dataset *train_ds, *val_ds;  /* the same dataset unless a validation file was given */
    int64_t *train, *val;                 /* example indices, ascending; val NULL when n_val = 0 */
    int64_t  n_train, n_val;
} ft_data_split;

/* val_ds != NULL: train = all of ds, val = all of val_ds (fraction and folds ignored).
 * folds > 0: a permutation of ds seeded by `seed` cut into `folds` contiguous parts; val = part
 *   `fold` (0 <= fold < folds), train = the rest.
 * otherwise: val = round(n * val_fraction) examples of that permutation (at least 1 when the
 *   fraction is > 0 and n >= 2; train keeps at least 1), train = the rest; 0 -> no validation.
 * Arrays are malloc'd; ft_data_split_free releases them (not the datasets). */
int  ft_data_split_make(ft_data_split *out, const ft_dataset *ds, const ft_dataset *val_ds,
                        double val_fraction, int folds, int fold, uint64_t seed);
void ft_data_split_free(ft_data_split *s);

/* ---- batches ---- */
typedef struct ft_batch {
    int  B, T;              /* rows and columns of this batch (T < cap/B only with dynamic padding) */
    int *ids;               /* [B*T] token ids */
    int *targets;           /* [B*T] next learned token of the same example, or FT_IGNORE_INDEX */
    int *pos;               /* [B*T] position within its example */
    int *seg;               /* [B*T] example index within the row; padding has its own */
    int  n_targets;         /* targets != FT_IGNORE_INDEX */
    int  n_examples;        /* examples (windows) placed in this batch */
    int  cap;               /* B*T allocated by ft_batch_alloc */
} ft_batch;

int  ft_batch_alloc(ft_batch *b, int B, int T);   /* 4 arrays of B*T ints; ft_batch_free releases */
void ft_batch_free(ft_batch *b);

typedef enum ft_batch_mode { FT_BATCH_PADDED = 0, FT_BATCH_PACKED = 1 } ft_batch_mode;

typedef struct ft_batcher_options {
    int B, T;               /* rows per batch, tokens per row: required */
    ft_batch_mode mode;     /* FT_BATCH_PADDED */
    int shuffle;            /* 1: a new order every epoch; 0: dataset order (evaluation) */
    int drop_last;          /* 0: a last partial batch is padded with empty rows; 1: dropped */
    int dynamic_pad;        /* 0; 1: T = the longest row of the batch, rounded up (call ft_model_prepare) */
    int pad_multiple;       /* 8: dynamic T rounded up to a multiple of this (capped at T) */
    int pad_id;             /* -1: ft_dataset_pad_id */
} ft_batcher_options;
ft_batcher_options ft_batcher_default_options(void);

typedef struct ft_batcher ft_batcher;

/* A batcher over examples idx[0..n) of ds (copied; ds must outlive the batcher). Examples longer
 * than T are cut into windows of T tokens overlapping by one (each target learned once; each window
 * is a unit of its own with positions from 0); windows without a learned target are left out. */
int  ft_batcher_create(ft_batcher **out, const ft_dataset *ds, const int64_t *idx, int64_t n,
                       const ft_batcher_options *opt);
void ft_batcher_free(ft_batcher *b);
/* Batches in one epoch (the same for every epoch). */
int64_t ft_batcher_batches_per_epoch(const ft_batcher *b);
/* Examples (windows) and rows in one epoch, and the learned targets they hold. */
int64_t ft_batcher_units(const ft_batcher *b);
int64_t ft_batcher_rows(const ft_batcher *b);
int64_t ft_batcher_targets_per_epoch(const ft_batcher *b);

/* The iteration state: plain integers, checkpoint them as they are. */
typedef struct ft_batch_iter {
    uint64_t seed;          /* shuffling seed: epoch e's order depends only on (seed, e) */
    int64_t  epoch;         /* 0-based */
    int64_t  cursor;        /* next batch within the epoch */
} ft_batch_iter;
ft_batch_iter ft_batch_iter_start(uint64_t seed);   /* {seed, 0, 0} */

/* Fills out with batch (it->epoch, it->cursor) and advances it; at the end of an epoch it moves to
 * the next one first (epoch + 1, cursor 0), so the stream never ends. out must have been allocated
 * with at least B*T ints (B and T of the options). */
int  ft_batcher_next(ft_batcher *b, ft_batch_iter *it, ft_batch *out);
#endif
