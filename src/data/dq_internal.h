/* dq_internal.h — internals shared by the data-quality files of src/data/ (not a public header).
 *
 * Files (public API in include/finetune/dataquality.h):
 *   dq_table.c     reading a file into an ft_dq_table and writing it back in its format
 *   dq_text.c      UTF-8 decoding, words, the script of a code point, lower-casing
 *   dq_minhash.c   word shingles, MinHash signatures, LSH banding, ft_dq_near_duplicates
 *   dq_lang.c      stop-word lists and the stop-word-profile language guess
 *   dq_stem.c      Snowball stemmers (libstemmer) and NLTK's Porter
 *   dq_scan.c      invalid UTF-8, control characters, URLs / e-mails / phone numbers (PCRE2)
 *   dq_inspect.c   ft_dq_inspect: the report's numbers and the score
 *   dq_report.c    the report as JSON and as text
 *   dq_report_html.c  the report as one HTML page with SVG charts
 *   dq_clean.c     ft_dq_clean: the cleaning steps, their counts and the JSONL log
 */
#ifndef FT_DQ_INTERNAL_H
#define FT_DQ_INTERNAL_H
#include "finetune/dataquality.h"
#include "finetune/status.h"

#include <stddef.h>
#include <stdint.h>

/* ---- dq_text.c ---- */
/* Decodes the code point at s[*i] (n bytes), advancing *i; an invalid byte gives -1 and advances by one. */
int32_t ft__dq_utf8_next(const char *s, size_t n, size_t *i);
/* Appends code point cp as UTF-8 to out (4 bytes of room needed); returns the bytes written. */
int     ft__dq_utf8_put(char *out, int32_t cp);
/* 1 for letters and digits (Unicode L* and N*). */
int     ft__dq_is_alnum(int32_t cp);
int     ft__dq_is_letter(int32_t cp);
int     ft__dq_is_space(int32_t cp);   /* Unicode Z*, TAB, LF, CR, VT, FF */
int     ft__dq_is_punct(int32_t cp);   /* Unicode P* */
/* The script name of a letter from its code-point block ("Latin", "Cyrillic", ... "Other"). */
const char *ft__dq_script(int32_t cp);
/* Word spans: the runs of letters / digits of s[0..n) ([start, end) byte offsets), *nw of them, malloc'd. */
typedef struct ft_dq_span { size_t s, e; } ft_dq_span;
int ft__dq_words(const char *s, size_t n, ft_dq_span **spans, int64_t *nw);
/* Lower-cases s[0..n) into a malloc'd string (*out, *out_len); invalid bytes are copied as they are. */
int ft__dq_lower(const char *s, size_t n, char **out, size_t *out_len);
/* Unicode characters (non-continuation bytes) and whitespace-separated words. */
int64_t ft__dq_count_chars(const char *s, size_t n);
int64_t ft__dq_count_ws_words(const char *s, size_t n);
/* A malloc'd copy of s[0..n) with every invalid UTF-8 byte replaced by U+FFFD (for JSON and HTML output). */
char   *ft__dq_utf8_valid_copy(const char *s, size_t n);

/* ---- dq_table.c ---- */
/* Replaces the text units of cell (i, field) through fn: a string cell is one unit; a nested JSON value
 * has one unit per string leaf (the keys role / from / speaker / name / type left alone). fn returns a
 * malloc'd replacement (or NULL to keep the unit, or sets *err). The cell text is rebuilt afterwards.
 * Returns 1 when something changed, 0 when not, < 0 on error. */
typedef char *(*ft_dq_map_fn)(void *ctx, const char *s, size_t n, int *err);
int ft__dq_table_map(ft_dq_table *t, int64_t i, int field, ft_dq_map_fn fn, void *ctx);
/* The file ft_dq_table_write writes, in memory (*out malloc'd, *out_len bytes). */
int ft__dq_table_render(const ft_dq_table *t, const uint8_t *keep, char **out, size_t *out_len);

/* ---- dq_scan.c ---- */
typedef struct ft_dq_scanner ft_dq_scanner;
int  ft__dq_scanner_new(ft_dq_scanner **out);
void ft__dq_scanner_free(ft_dq_scanner *sc);
/* Calls fn for every hit in s[0..n): kind, byte range. Returns FT_OK or an error. */
typedef int (*ft_dq_hit_fn)(void *ctx, int kind, size_t s, size_t e);
int  ft__dq_scan(ft_dq_scanner *sc, const char *s, size_t n, int kinds_mask, ft_dq_hit_fn fn, void *ctx);
/* URL and e-mail spans (for the "urls" cleaning step), mentions and hashtags: the same matcher. */
enum { FT_DQ_PAT_URL = 0, FT_DQ_PAT_EMAIL, FT_DQ_PAT_PHONE, FT_DQ_PAT_MENTION, FT_DQ_PAT_HASHTAG, FT_DQ_PATS };
/* Removes (or, hashtag, strips the '#' of) every match of pattern pat in s; malloc'd result or NULL when
 * nothing matched; *err set on failure. */
char *ft__dq_scan_replace(ft_dq_scanner *sc, int pat, const char *s, size_t n, int *err);
#endif
