/* strbuf.h — the one growable string builder (internal: not installed).
 *
 * Naming: headers under src/ are internal; functions shared between files of the library but not
 * part of the public API (include/finetune/) are named ft__<module>_<verb> (two underscores), so a
 * reader and scripts/check_names.sh can tell them from the public ft_ names.
 *
 *     ft__sb b = {0};                          // empty: p == NULL, n == 0
 *     ft__sb_puts(&b, "{\"name\": ");
 *     ft__sb_put_json(&b, name, strlen(name), 0);
 *     ft__sb_printf(&b, ", \"n\": %d}", n);
 *     if (b.err) { ft__sb_free(&b); return ft_error(b.err, "...: out of memory"); }
 *     char *text = ft__sb_take(&b, &len);      // caller frees; b is empty again
 *
 * Errors are sticky: the first failed allocation (FT_ERR_NOMEM) or failed format (FT_ERR_INVALID) is
 * kept in err, every later append does nothing and returns it, so a long sequence of appends needs
 * one check at the end. Appends return err (FT_OK = 0 while all went well) for callers that stop at
 * once. The builder never calls ft_error: the caller names what ran out of memory.
 *
 * Ownership: p is malloc'd, NUL-terminated after every successful append (also of 0 bytes, so an
 * append of "" gives a valid empty string), and moves to the caller with ft__sb_take. Any append
 * may move p: pointers into it are invalidated. */
#ifndef FT_CORE_STRBUF_H
#define FT_CORE_STRBUF_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ft__sb {
    char  *p;    /* the text, NUL-terminated; NULL until the first append */
    size_t n;    /* bytes of text, not counting the NUL */
    size_t cap;  /* bytes allocated at p */
    int    err;  /* FT_OK, or the first error (sticky) */
    size_t limit; /* 0 = none; else an append that would make n exceed it fails with FT_ERR_RANGE (sticky):
                     a budget for text built from untrusted input (chat templates) */
} ft__sb;

/* Room for `extra` more bytes plus the NUL (grows by doubling; FT_ERR_RANGE past b->limit). */
int  ft__sb_reserve(ft__sb *b, size_t extra);
/* Appends n bytes of s (s may be NULL when n == 0). */
int  ft__sb_put(ft__sb *b, const void *s, size_t n);
int  ft__sb_putc(ft__sb *b, char c);
int  ft__sb_puts(ft__sb *b, const char *s);
int  ft__sb_printf(ft__sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  ft__sb_vprintf(ft__sb *b, const char *fmt, va_list ap);

/* flags of ft__sb_put_json */
enum {
    FT__SB_JSON_ASCII = 1,  /* Python's ensure_ascii: bytes >= 0x7f as \uXXXX (surrogate pairs above
                             * U+FFFF; an invalid UTF-8 byte is escaped as the code point of its value) */
};
/* Appends s[0, n) as a JSON string literal with its quotes: \" \\ \n \r \t \b \f, other bytes
 * below 0x20 as \u00XX (lower-case hex, as serde_json and Python's json write them); other bytes
 * copied as they are (the caller checks UTF-8 where it matters) unless FT__SB_JSON_ASCII. */
int  ft__sb_put_json(ft__sb *b, const char *s, size_t n, int flags);

/* The text (malloc'd, the caller frees it; "" when nothing was appended), its length in *len when
 * len is not NULL; b is empty afterwards. NULL when b->err is set (the text is freed). */
char *ft__sb_take(ft__sb *b, size_t *len);
/* Frees the text; b is empty with no error afterwards. */
void ft__sb_free(ft__sb *b);

/* UTF-8 decoding as Python sees a str decoded with errors="surrogateescape"-like leniency: returns
 * the byte length of the character at s[i] (1 .. 4, i < n) and its code point in *cp; an invalid or
 * truncated sequence, overlong form or surrogate counts as one byte with *cp = that byte. */
int  ft__utf8_next(const char *s, size_t n, size_t i, int32_t *cp);
#endif
