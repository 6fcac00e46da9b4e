/* dataquality.h — look at a data file before training on it, and clean it.
 *
 * Three parts, each usable alone:
 *
 * 1. Tables (ft_dq_table): a data file as records of named fields, read without changing a byte (invalid
 *    UTF-8 and control characters are kept so that they can be reported), and written back in the same
 *    format. Formats: CSV / TSV with a header row (RFC 4180 quoting), JSONL and JSON (a list of objects;
 *    every top-level key is a field; a nested value — chat "messages", ShareGPT "conversations", a dialogue
 *    list — is read as the text of its string leaves joined by "\n", leaving out the values of the keys
 *    role, from, speaker, name and type), plain text (one record a line, field "text") and DailyDialog
 *    (one dialogue a line, turns separated by "__eou__"; field "text" holds the turns joined by "\n").
 *    The *text fields* are the ones compared, measured and cleaned: those named in text_columns, else the
 *    first present of text, sentence, content, utterance, instruction+input+output, prompt+completion,
 *    question+answer, messages, conversations, dialogue; else every field but the label. The *label
 *    field* is label_column, else "label" when present.
 *
 * 2. Near duplicates (ft_dq_near_duplicates): MinHash over word shingles with LSH banding.
 *    Words are the runs of letters and digits (Unicode, lower-cased); shingles are `shingle` (3)
 *    consecutive words (a text with fewer words is one shingle of all of them). Each shingle is hashed
 *    to 64 bits; the signature is its minimum under num_perm (120) seeded 64-bit mixers; the signature is
 *    cut into `bands` (24) bands of num_perm / bands (5) rows and two texts are candidates when a band
 *    is equal: a pair with Jaccard similarity s is a candidate with probability 1 - (1 - s^5)^24
 *    (0.988 at s = 0.7, 0.53 at 0.5, 0.03 at 0.3). Candidates are then confirmed with the EXACT Jaccard
 *    similarity of their shingle sets >= threshold (0.7), so every reported pair has J >= threshold
 *    (precision 1 with respect to that definition) and recall is the LSH candidate probability above.
 *    Texts with the same shingle set (equal up to case and punctuation) are pairs with J = 1; they form a group
 *    that goes through the LSH once (10,000 copies of "thank you" cost one entry per band). A group of up to 64
 *    texts reports all its pairs, a larger one only (first, other) pairs, and a near pair of two groups is reported
 *    for every member pair (only the first member of a group larger than 64): every text that has a near duplicate
 *    earlier in the list is still the b of some pair, which is what the counts and the cleaner use.
 *
 * 3. The report (ft_dq_inspect) and the cleaner (ft_dq_clean), below.
 *
 * Example (what `finetune data inspect train.tsv --valid dev.tsv --json r.json --html r.html` does):
 *
 *   ft_dq_table_options to = ft_dq_table_default_options();
 *   ft_dq_table t, v;
 *   FT_TRY(ft_dq_table_load(&t, "train.tsv", &to));
 *   FT_TRY(ft_dq_table_load(&v, "dev.tsv", &to));
 *   ft_dq_inspect_options io = ft_dq_inspect_default_options();
 *   io.tokenizer = tok;                       // optional: lengths in tokens
 *   io.stopwords_dir = "data/stopwords";      // optional: the language guess
 *   ft_dq_report r;
 *   FT_TRY(ft_dq_inspect(&r, &t, &v, &io));
 *   printf("score %.1f, %lld near duplicates\n", r.score, (long long)r.near_dup);
 *   FT_TRY(ft_dq_report_write_json(&r, "r.json"));
 *   FT_TRY(ft_dq_report_write_html(&r, "r.html"));
 *   ft_dq_report_free(&r); ft_dq_table_free(&v); ft_dq_table_free(&t);
 *
 * Ownership: every struct filled by a function here owns what it points to and is released by its
 * _free function (NULL-safe on a zeroed struct). Tables are not modified by ft_dq_inspect; ft_dq_clean
 * edits the table in place. Thread safety: no global state; one table / report per thread, or only
 * readers. Errors: negative ft_status codes with ft_last_error() naming the file and line.
 */
#ifndef FINETUNE_DATAQUALITY_H
#define FINETUNE_DATAQUALITY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "finetune/tokenizer.h"

/* ---- tables ---- */
typedef enum ft_dq_format {
    FT_DQ_AUTO = 0,      /* from the extension (.csv .tsv .jsonl .json .txt) and the content */
    FT_DQ_CSV, FT_DQ_TSV, FT_DQ_JSONL, FT_DQ_JSON, FT_DQ_TEXT, FT_DQ_DAILYDIALOG,
} ft_dq_format;
int         ft_dq_format_from_name(const char *name, ft_dq_format *out);  /* "csv", "tsv", "jsonl", ... */
const char *ft_dq_format_name(ft_dq_format f);

#define FT_DQ_MAX_TEXT_FIELDS 8

typedef struct ft_dq_table_options {
    ft_dq_format format;        /* FT_DQ_AUTO */
    const char  *text_columns;  /* comma-separated field names; NULL: automatic (see 1.) */
    const char  *label_column;  /* NULL: "label" when present; "" or "none": no label */
} ft_dq_table_options;
ft_dq_table_options ft_dq_table_default_options(void);

typedef struct ft_dq_table {
    char        *path;          /* as given */
    ft_dq_format format;        /* as detected */
    int          nfields;
    char       **fields;        /* [nfields] names */
    int64_t      n;             /* records */
    char       **cell;          /* [n * nfields] NUL-terminated text, NULL when the record lacks the field */
    int         *line;          /* [n] 1-based line where the record starts */
    int          text[FT_DQ_MAX_TEXT_FIELDS];  /* field indices of the text fields */
    int          n_text;
    int          label;         /* field index of the label, -1 none */
    int64_t      malformed;     /* rows / lines that could not be read (skipped) */
    int          malformed_line;/* the first of them (0 none) */
    void        *json;          /* JSON formats: [n] cJSON * objects, for writing back (internal) */
} ft_dq_table;

int  ft_dq_table_load(ft_dq_table *t, const char *path, const ft_dq_table_options *o);
/* The same from a buffer: path names it in messages and picks the format under FT_DQ_AUTO. */
int  ft_dq_table_parse(ft_dq_table *t, const char *path, const char *buf, size_t len, const ft_dq_table_options *o);
void ft_dq_table_free(ft_dq_table *t);
/* Record i's text fields joined by "\n" (absent ones left out), malloc'd; NULL when out of memory. */
char *ft_dq_table_text(const ft_dq_table *t, int64_t i, size_t *len);
/* The label of record i (a string owned by t) or NULL. */
const char *ft_dq_table_label(const ft_dq_table *t, int64_t i);
/* Writes the records i with keep[i] != 0 (keep NULL: all) to path in the table's format (atomic). */
int  ft_dq_table_write(const ft_dq_table *t, const uint8_t *keep, const char *path);

/* ---- near duplicates ---- */
typedef struct ft_dq_minhash_options {
    int      num_perm;          /* 120 */
    int      bands;             /* 24 (rows = num_perm / bands = 5) */
    int      shingle;           /* 3 words */
    double   threshold;         /* 0.7: exact Jaccard of the shingle sets */
    uint64_t seed;              /* 1 */
} ft_dq_minhash_options;
ft_dq_minhash_options ft_dq_minhash_default_options(void);

typedef struct ft_dq_pair { int64_t a, b; double jaccard; } ft_dq_pair;  /* a < b, J >= threshold */

/* Every pair of texts[0..n) with shingle-set Jaccard >= threshold found by the LSH (see 2.), sorted by
 * (a, b); texts without any word are never paired. n_first in (0, n): only pairs with a < n_first <= b
 * (two sets concatenated: train overlap with validation). *pairs malloc'd (NULL when none). */
int ft_dq_near_duplicates(ft_dq_pair **pairs, int64_t *npairs, const char *const *texts, int64_t n,
                          int64_t n_first, const ft_dq_minhash_options *o);

/* ---- words, stop words, stemming, language ---- */
typedef struct ft_dq_stopwords ft_dq_stopwords;
/* Loads every <lang>.txt of dir (one word a line, '|' starts a comment: the Snowball format). */
int  ft_dq_stopwords_load(ft_dq_stopwords **out, const char *dir);
void ft_dq_stopwords_free(ft_dq_stopwords *sw);
int  ft_dq_stopwords_count(const ft_dq_stopwords *sw);                 /* languages */
const char *ft_dq_stopwords_lang(const ft_dq_stopwords *sw, int i);   /* "en", "de", ... */
/* 1 when the lower-cased word (n bytes) is a stop word of lang. */
int  ft_dq_is_stopword(const ft_dq_stopwords *sw, const char *lang, const char *w, size_t n);
/* A language guess from the stop-word profile: the language whose list holds the most of the text's words of two
 * or more letters, when that is at least 2 words, at least 10% of them, and more than any other language holds;
 * else "und" (undetermined: short texts, ties, no stop words). Returns a string owned by sw (or the literal "und"). */
const char *ft_dq_guess_lang(const ft_dq_stopwords *sw, const char *text, size_t len);

typedef struct ft_dq_stemmer ft_dq_stemmer;
/* algo: a Snowball language of libstemmer ("english", "german", "french", "spanish", ... or the codes
 * "en", "de", "fr", "es"), or "porter": NLTK's PorterStemmer (textmetrics.h ft_porter_stem). */
int  ft_dq_stemmer_new(ft_dq_stemmer **out, const char *algo);
void ft_dq_stemmer_free(ft_dq_stemmer *s);
/* Stems one lower-case word (UTF-8, n bytes) into out (cap bytes, NUL-terminated); returns the length or
 * a negative status (FT_ERR_RANGE when cap is too small). Not thread-safe for one stemmer. */
int  ft_dq_stem(ft_dq_stemmer *s, const char *w, size_t n, char *out, size_t cap);

/* ---- the report ---- */
#define FT_DQ_HIST_BINS 20
typedef struct ft_dq_dist {
    int64_t n;                  /* values */
    double  mean;
    int64_t min, p50, p90, p99, max;
    int64_t hist[FT_DQ_HIST_BINS];  /* hist[0]: value 0; hist[i]: values in [2^(i-1), 2^i) */
} ft_dq_dist;

typedef struct ft_dq_count { char *name; int64_t count; } ft_dq_count;

typedef enum ft_dq_hit_kind {
    FT_DQ_HIT_INVALID_UTF8 = 0, FT_DQ_HIT_CONTROL, FT_DQ_HIT_URL, FT_DQ_HIT_EMAIL, FT_DQ_HIT_PHONE,
    FT_DQ_HIT_KINDS
} ft_dq_hit_kind;
const char *ft_dq_hit_kind_name(ft_dq_hit_kind k);  /* "invalid_utf8", "control", "url", "email", "phone" */

typedef struct ft_dq_hit {
    int     kind;               /* ft_dq_hit_kind */
    int64_t record;             /* 0-based */
    int     line;               /* 1-based line of the hit in the file */
    int     field;              /* field index */
    char   *text;               /* what was found (escaped bytes for invalid UTF-8 / control characters) */
} ft_dq_hit;

/* The score's parts, each in [0, 1], and their weights (sum 1). */
enum { FT_DQ_PART_COMPLETENESS = 0, FT_DQ_PART_UNIQUENESS, FT_DQ_PART_VALIDITY, FT_DQ_PART_CONSISTENCY,
       FT_DQ_PART_BALANCE, FT_DQ_PARTS };
extern const double ft_dq_part_weight[FT_DQ_PARTS];   /* 0.25 0.25 0.20 0.15 0.15 */
const char *ft_dq_part_name(int part);

typedef struct ft_dq_report {
    char        *path;
    ft_dq_format format;
    int64_t      records, malformed;
    /* fields: present = records that have it, empty = present but only whitespace */
    int          nfields;
    char       **fields;
    int64_t     *present, *empty;
    char        *text_fields;   /* "sentence" or "prompt,completion" */
    char        *label_field;   /* NULL without labels */
    int64_t      empty_text;    /* records whose text fields are all empty */
    /* duplicates within the file */
    ft_dq_minhash_options minhash;
    int64_t      exact_dup;     /* records whose text equals (byte for byte) an earlier record's */
    int64_t      near_dup;      /* records, not exact duplicates, with a near duplicate earlier in the file */
    ft_dq_pair  *pairs;         /* near-duplicate pairs (J >= threshold, exact ones included), by (a, b) */
    int64_t      npairs;
    /* lengths of the text: Unicode characters, words (whitespace-separated), tokens (with a tokenizer) */
    ft_dq_dist   chars, words, tokens;
    int          has_tokens;
    /* labels */
    int          nlabels;
    ft_dq_count *labels;        /* by count, largest first */
    double       imbalance;     /* largest / smallest class count (0 without labels) */
    int64_t      conflict_texts;   /* distinct texts that carry more than one label */
    int64_t      conflict_records; /* records with such a text */
    /* scripts of the letters (code-point blocks; utf8proc decides what is a letter) and the language guess */
    int          nscripts;
    ft_dq_count *scripts;       /* letters per script, most first */
    int          nlangs;
    ft_dq_count *langs;         /* records per guessed language, most first (empty without stop words) */
    /* validity and personal data: records with at least one hit of each kind, and the hits
     * (at most max_hits listed per kind) */
    int64_t      hit_records[FT_DQ_HIT_KINDS];
    int64_t      hit_count[FT_DQ_HIT_KINDS];
    ft_dq_hit   *hits;
    int64_t      nhits;
    /* train / validation overlap (has_valid) */
    int          has_valid;
    char        *valid_path;
    int64_t      valid_records;
    int64_t      leak_exact;    /* validation records whose text equals a training record's */
    int64_t      leak_near;     /* others with a near duplicate in the training file */
    ft_dq_pair  *leak_pairs;    /* a: training record, b: validation record */
    int64_t      nleak_pairs;
    /* the score: 100 * sum of weight * part */
    double       part[FT_DQ_PARTS];
    double       score;
    int64_t      max_listed;    /* the JSON / HTML list at most this many pairs of each kind (all are counted) */
    /* the listed pairs: [2 * k] a, [2 * k + 1] b: the first 160 characters of the text and its line */
    char       **pair_text, **leak_text;
    int         *pair_line, *leak_line;
} ft_dq_report;

typedef struct ft_dq_inspect_options {
    ft_dq_minhash_options minhash;
    const ft_tokenizer    *tokenizer;      /* NULL: no token lengths */
    const char            *stopwords_dir;  /* NULL: no language guess */
    const ft_dq_stopwords *stopwords;      /* or lists already loaded (used instead of stopwords_dir; not owned) */
    int                    max_hits;       /* 20 listed per kind */
    int64_t                max_pairs;      /* 1000 listed pairs (counts are over all of them) */
} ft_dq_inspect_options;
ft_dq_inspect_options ft_dq_inspect_default_options(void);

/* valid may be NULL. */
int  ft_dq_inspect(ft_dq_report *r, const ft_dq_table *t, const ft_dq_table *valid, const ft_dq_inspect_options *o);
void ft_dq_report_free(ft_dq_report *r);
/* JSON text of the report (malloc'd). */
int  ft_dq_report_json(const ft_dq_report *r, char **out);
int  ft_dq_report_write_json(const ft_dq_report *r, const char *path);
/* One self-contained HTML page (inline CSS and SVG bar charts, no scripts). */
int  ft_dq_report_write_html(const ft_dq_report *r, const char *path);
/* A short plain-text summary. */
void ft_dq_report_print(const ft_dq_report *r, FILE *fp);

/* ---- cleaning ---- */
typedef enum ft_dq_step {
    FT_DQ_STEP_LOWER = 0,   /* "lower": Unicode lower case (utf8proc) */
    FT_DQ_STEP_HTML,        /* "html": tags removed (inline ones glued, others -> space), entities decoded */
    FT_DQ_STEP_PUNCT,       /* "punct": punctuation (Unicode P*) -> space, except an apostrophe or hyphen
                               between letters and a '.' or ',' between digits */
    FT_DQ_STEP_SPACE,       /* "space": every run of whitespace (newlines too) -> one space, trimmed */
    FT_DQ_STEP_URLS,        /* "urls": URLs and e-mail addresses removed */
    FT_DQ_STEP_MENTIONS,    /* "mentions": @user removed */
    FT_DQ_STEP_HASHTAGS,    /* "hashtags": #tag -> tag */
    FT_DQ_STEP_STOPWORDS,   /* "stopwords": words of the language's stop list removed */
    FT_DQ_STEP_STEM,        /* "stem": every word (letters) lower-cased and stemmed */
    FT_DQ_STEP_NEARDUP,     /* "neardup": records with a near duplicate (MinHash) among the kept earlier ones dropped */
    FT_DQ_STEP_LENGTH,      /* "length": records outside [min_words, max_words] / [min_chars, max_chars] dropped */
    FT_DQ_STEP_LANG,        /* "lang": records whose guessed language is not in keep_langs dropped ("und" kept) */
    FT_DQ_STEP_CONFLICTS,   /* "conflicts": identical texts with different labels: majority / drop / report
                               (skipped when the table has no label field) */
    FT_DQ_STEPS
} ft_dq_step;
const char *ft_dq_step_name(ft_dq_step s);
/* "lower,html,space" -> steps[] in that order (*n of them, at most cap). Unknown name -> FT_ERR_INVALID. */
int ft_dq_steps_parse(const char *list, int *steps, int cap, int *n);

typedef enum ft_dq_conflicts { FT_DQ_CONFLICT_MAJORITY = 0, FT_DQ_CONFLICT_DROP, FT_DQ_CONFLICT_REPORT } ft_dq_conflicts;

typedef struct ft_dq_clean_options {
    int         steps[FT_DQ_STEPS * 2];  /* applied in this order, each over all records */
    int         nsteps;
    const char *lang;           /* "en": stop words and the stemmer's language */
    const char *stemmer;        /* NULL: Snowball of lang; "porter": NLTK's Porter */
    const char *stopwords_dir;  /* needed by stopwords and lang */
    const ft_dq_stopwords *stopwords;  /* or lists already loaded (used instead of stopwords_dir; not owned) */
    const char *keep_langs;     /* "en" (comma-separated) */
    int         min_words, max_words, min_chars, max_chars;  /* 1, 0, 0, 0 (0: no limit) */
    ft_dq_conflicts conflicts;  /* MAJORITY: keep the records with the most frequent label (a tie drops all) */
    ft_dq_minhash_options minhash;
    FILE       *log;            /* NULL or a JSONL stream: one line per change or drop */
} ft_dq_clean_options;
ft_dq_clean_options ft_dq_clean_default_options(void);

typedef struct ft_dq_clean_stats {
    int     nsteps;
    int     steps[FT_DQ_STEPS * 2];
    int64_t changed[FT_DQ_STEPS * 2];  /* records changed (text steps) or dropped (filters) by step k */
    int64_t records, kept;
    int64_t conflict_texts;            /* identical texts with different labels found by "conflicts"; -1: the
                                          table has no label field, the step was skipped */
} ft_dq_clean_stats;

/* Runs the steps over t in place; keep[t->n] (caller-allocated) ends 1 for the records kept. */
int ft_dq_clean(ft_dq_table *t, uint8_t *keep, const ft_dq_clean_options *o, ft_dq_clean_stats *st);
/* Reads in, cleans, writes out (same format); the log (JSONL) to log_path when not NULL. */
int ft_dq_clean_file(const char *in, const char *out, const char *log_path, const ft_dq_table_options *to,
                     const ft_dq_clean_options *o, ft_dq_clean_stats *st);
void ft_dq_clean_stats_print(const ft_dq_clean_stats *st, FILE *fp);
#endif
