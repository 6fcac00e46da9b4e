/* data_internal.h — internals shared by the files of src/data/ (not a public header).
 *
 * Reading produces records (ft_recs): every record is a kind plus a list of messages, each message
 * a role, an optional speaker name and a text, all strings in one growing pool (offsets, so the
 * pool may move). Cleaning edits the texts (in place, or by appending a new copy to the pool) and
 * marks dropped records. Rendering turns each kept record into one text with learned byte ranges,
 * and encoding turns that into token ids and learned flags (the ft_dataset of data.h).
 *
 * Files:
 *   dataset.c        ft_dataset_load: files -> records -> examples; accessors; names; summary
 *   records.c        the record store and drop reporting
 *   read_json.c      JSON arrays / objects / JSONL: finds records and their line numbers
 *   records_json.c   one cJSON record -> messages (dialogue, prompt-completion, chat, alpaca, sharegpt, text)
 *   read_text.c      plain text, DailyDialog, CSV/TSV
 *   dialogue_turns.c speaker-labelled dialogue strings -> turns
 *   clean.c          UTF-8 check, NFC, whitespace, empty fields, duplicates, length filters
 *   render.c         record -> text + learned byte ranges (speaker format, Alpaca, templates)
 *   encode.c         text + ranges -> token ids + learned flags, BOS/EOS, truncation
 *   split.c          validation split and folds
 *   batch.c          ft_batch, windows, packing, the per-epoch order, ft_batcher_next
 */
#ifndef FT_DATA_INTERNAL_H
#define FT_DATA_INTERNAL_H
#include "finetune/classify_data.h"
#include "finetune/data.h"
#include "finetune/status.h"

#include <stddef.h>
#include <stdint.h>

/* record kinds: how a record is rendered */
typedef enum ft_rec_kind {
    FT_REC_TEXT = 1,       /* one FT_ROLE_TEXT message */
    FT_REC_DIALOGUE,       /* FT_ROLE_TURN messages (name may be absent) */
    FT_REC_DIALOGUE_RAW,   /* one FT_ROLE_TURN message holding speaker-labelled text, split after reading */
    FT_REC_PC,             /* FT_ROLE_USER (prompt) + FT_ROLE_ASSISTANT (completion) */
    FT_REC_CHAT,           /* system / user / assistant / tool messages (chat and sharegpt) */
    FT_REC_ALPACA,         /* [system] [user assistant]* user(instruction) [input] assistant(output) */
} ft_rec_kind;

typedef enum ft_role {
    FT_ROLE_TEXT = 0, FT_ROLE_TURN, FT_ROLE_SYSTEM, FT_ROLE_USER, FT_ROLE_ASSISTANT, FT_ROLE_TOOL,
    FT_ROLE_INPUT,         /* alpaca "input" (may be empty) */
} ft_role;

enum {
    FT_MSGF_KEEP_LEAD  = 1,  /* cleaning keeps leading whitespace (completion) */
    FT_MSGF_KEEP_TRAIL = 2,  /* cleaning keeps trailing whitespace (prompt) */
    FT_MSGF_OPTIONAL   = 4,  /* may be empty (prompt, alpaca input, system) */
};

typedef struct ft_rmsg {
    uint8_t role, flags;
    int64_t field;          /* pool offset of the field's name for messages ("messages[2].content") */
    int64_t name;           /* pool offset of the speaker name, -1 if none */
    int64_t text;           /* pool offset */
    int64_t text_len;       /* bytes */
    int32_t name_len;
} ft_rmsg;

typedef struct ft_rec {
    uint8_t kind;
    uint8_t dropped;        /* 0, or ft_data_drop + 1 */
    int32_t file;           /* index into ft_recs.files */
    int32_t line;           /* 1-based line where the record starts (0 unknown) */
    int64_t index;          /* 0-based record index within its file */
    int64_t msg0;           /* first message */
    int32_t nmsg;
} ft_rec;

typedef struct ft_recs {
    char   *pool;  size_t pool_len, pool_cap;
    ft_rmsg *msgs; int64_t nmsgs, msgs_cap;
    ft_rec  *recs; int64_t n, recs_cap;
    char   **files; int nfiles;          /* the files read, in order */
    ft_data_format *file_format;   /* per file, as detected */
} ft_recs;

void    ft__recs_free(ft_recs *r);
/* Appends bytes (and a NUL) to the pool; returns the offset or -1 (out of memory). */
int64_t ft__recs_str(ft_recs *r, const char *s, size_t len);
/* Starts a record (kind, line, index in the current file); messages added next belong to it. */
int     ft__recs_begin(ft_recs *r, int kind, int file, int line, int64_t index);
/* Adds a message to the last record. name may be NULL. field is the field's name for messages.
 * text and name must not point into the pool (it may move). */
int     ft__recs_msg(ft_recs *r, int role, int flags, const char *field, const char *name, size_t name_len,
                    const char *text, size_t text_len);
/* Appends a message that belongs to no record yet (the caller sets msg0/nmsg); returns its index
 * or a negative status. The strings are copied (they must not point into the pool). */
int64_t ft__recs_add_msg(ft_recs *r, int role, int flags, const char *field, const char *name, size_t name_len,
                        const char *text, size_t text_len);
/* Removes the last record (and its messages) — used when a record turns out to be bad while read. */
void    ft__recs_cancel(ft_recs *r);

/* The state of one ft_dataset_load call. */
typedef struct ft_data_ctx {
    const ft_data_options *opt;
    ft_data_stats *st;
    ft_recs *rs;
    const char *path;           /* the current file */
    int file;                   /* its index */
    ft_data_format format;      /* the current file's format (AUTO until detected) */
    int64_t warned[FT_DROP_COUNT];
} ft_data_ctx;

/* Counts a dropped record and warns (first max_warnings per reason), or in strict mode records
 * the error and returns it. Message: "path: line L: record R: field 'F': <detail>" (parts that are
 * unknown are left out: line <= 0, record < 0, field NULL). Returns FT_OK when the caller should go on. */
int ft__data_drop_record(ft_data_ctx *c, ft_data_drop reason, int line, int64_t record, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same for a record already in c->rs (file, line, index from the record; marks it dropped). */
int ft__data_drop_rec(ft_data_ctx *c, int64_t rec, ft_data_drop reason, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- readers: append records of one file to c->rs ---- */
int ft__data_read_json(ft_data_ctx *c, const char *buf, size_t len, int jsonl);
int ft__data_read_text(ft_data_ctx *c, const char *buf, size_t len);
int ft__data_read_dailydialog(ft_data_ctx *c, const char *buf, size_t len);
int ft__data_read_csv(ft_data_ctx *c, const char *buf, size_t len, char delim);

/* records_json.c: one parsed JSON value -> a record (or a drop). cjson is a cJSON *. */
int ft__data_json_record(ft_data_ctx *c, const void *cjson, int line, int64_t index);

/* dialogue_turns.c: splits every FT_REC_DIALOGUE_RAW record of file `file` into turns.
 * ft__data_label_at: length of the speaker name when s[i..n) starts with "Name: ", else 0. */
int ft__data_label_at(const char *s, size_t i, size_t n);
int ft__data_split_dialogue_strings(ft_data_ctx *c, int file, int64_t rec_begin);

/* clean.c: cleans records [rec_begin, rs->n) (UTF-8, NFC, whitespace, empty); then
 * ft__data_filter applies duplicates and length filters over all records. */
int ft__data_clean(ft_data_ctx *c, int64_t rec_begin);
int ft__data_filter(ft_data_ctx *c);
/* Whitespace clean-up of s[0..len) into out (capacity >= len + 1); returns the new length. */
size_t ft__data_clean_ws(char *out, const char *s, size_t len, int keep_lead, int keep_trail);
/* Offset of the first invalid UTF-8 byte of s, or -1 if valid. */
int64_t ft__data_utf8_invalid_at(const char *s, size_t len);

/* render.c: one record -> text with learned byte ranges. */
typedef struct ft_lspan { int64_t s, e; } ft_lspan;  /* learned bytes [s, e) */
typedef struct ft_render {
    char   *text;  size_t len, cap;
    ft_lspan *spans; int64_t nspans, spans_cap;
    int     templated;          /* text came from a chat template (parse special tokens) */
} ft_render;
void ft__render_free(ft_render *r);
/* Renders record i; train_on resolved (COMPLETION or ALL). Returns FT_OK, a negative status, or
 * 1 when the record has nothing to learn under train_on (the caller drops it). */
int  ft__data_render(ft_render *out, const ft_recs *rs, int64_t i, ft_train_on train_on,
                    const ft_data_options *opt);
/* AUTO -> the default of the record kind */
ft_train_on ft__data_resolve_train_on(ft_train_on t, int kind);

/* encode.c */
typedef struct ft_encoder {
    const ft_tokenizer *tok;
    int bos, eos, add_bos;
    int  *ids;  int ids_cap;
    int64_t *off; int off_cap;  /* byte offsets of token starts */
    uint8_t *learn; int learn_cap;
} ft_encoder;
int  ft__encoder_init(ft_encoder *e, const ft_tokenizer *tok, int add_bos_opt);
void ft__encoder_free(ft_encoder *e);
/* Tokenizes r into e->ids / e->learn (n tokens, BOS and EOS included, not truncated). */
int  ft__encoder_run(ft_encoder *e, const ft_render *r, int *n);
/* Truncates e->ids / e->learn of length *n to seq_len in place (RIGHT or LEFT); returns 1 if cut. */
int  ft__encoder_truncate(ft_encoder *e, int *n, int seq_len, ft_truncate mode);

/* growth helper: ensures *cap >= need elements of size elem (doubling). */
int ft__data_reserve(void **p, size_t elem, int64_t need, int64_t *cap);

/* One RFC 4180 row (read_text.c; also used by the classification reader). */
typedef struct csv_row {
    char   *buf;   int64_t len, cap;     /* unquoted field bytes, each NUL-terminated */
    int64_t *off;  int64_t n, off_cap;   /* field start offsets */
} csv_row;
/* Reads one row starting at *pos. Returns 1 with a row, 0 at end of input, < 0 on error.
 * *bad is set (with a reason) when the row is malformed, *bad_col (may be NULL) to the 1-based field
 * where it was found; *line advances over the row's newlines. */
int ft__csv_read_row(const char *s, size_t n, size_t *pos, int *line, char delim, csv_row *r, const char **bad, int64_t *bad_col);
/* The column of a CSV file chosen by want: a header name (exact, then case-insensitive) when header is set,
 * else / otherwise a 1-based column number (at most 5 digits; within ncol when ncol > 0). -1 if none. */
int ft__csv_find_column(const char *want, char **names, int ncol, int header);
/* Frees the header names (names[0, ncol), then names; NULL is fine) and the row's buffers. */
void ft__csv_free(char **names, int ncol, csv_row *row);

/* Encoder batches (classify_encode.c): rows idx[0..n) of examples stored as off [n_ex+1] into ids /
 * type_ids, padded with pad_id to the longest (or cap_T), mask 1 on real tokens; sets b->B, b->T.
 * what names the batch kind in errors. The caller fills b->labels. */
int ft__cls_fill_rows(ft_cls_batch *b, const int64_t *off, const int *ids, const int *type_ids, int64_t n_ex,
                     const int64_t *idx, int n, int pad_id, int pad_to_T, const char *what);
#endif
