/* tok13a.c — sacreBLEU's default "13a" tokenizer (mteval-v13a.pl), step for step:
 *
 *   line = line.rstrip()                                   (BLEU._preprocess_segment; Python whitespace)
 *   line = line.replace('<skipped>', '').replace('-\n', '').replace('\n', ' ')
 *   if '&' in line: &quot; -> "   &amp; -> &   &lt; -> <   &gt; -> >   (one pass each, in that order)
 *   line = ' ' + line + ' ', then four regular-expression passes (re.sub, left to right, non-overlapping):
 *     1. ([\{-\~\[-\` -\&\(-\+\:-\@\/])  -> ' \1 '   ASCII punctuation and symbols except ' - . ,
 *     2. ([^0-9])([\.,])                 -> '\1 \2 ' a period / comma after a non-digit
 *     3. ([\.,])([^0-9])                 -> ' \1 \2' a period / comma before a non-digit
 *     4. ([0-9])(-)                      -> '\1 \2 ' a dash after a digit
 *   tokens = line.split()
 *
 * The passes run on UTF-8 bytes: every pattern has one ASCII side, and a multi-byte character can only
 * meet it through its last byte (pass 2) or its first byte (pass 3), so the byte scan makes the same
 * matches as Python's scan over code points. */
#include "eval/textmetrics_internal.h"

#include <stdlib.h>
#include <string.h>

#include "finetune/status.h"

/* replace every non-overlapping `pat` of s[0, *n) by `rep` (rep no longer than pat), in place */
static void replace_all(char *s, size_t *n, const char *pat, const char *rep) {
    size_t pl = strlen(pat), rl = strlen(rep), w = 0, i = 0;
    while (i < *n) {
        if (i + pl <= *n && !memcmp(s + i, pat, pl)) {
            memcpy(s + w, rep, rl);
            w += rl;
            i += pl;
        } else {
            s[w++] = s[i++];
        }
    }
    *n = w;
}

static int is_punct13a(unsigned char c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

int ft__tok13a(ft__tm_ctx *cx, const char *str, size_t n, ft__tm_toks *out) {
    /* rstrip (Python whitespace) */
    size_t end = 0, i = 0;
    while (i < n) {
        uint32_t cp = ft__tm_utf8_next(str, n, &i);
        if (!ft__tm_is_pyspace(cp)) end = i;
    }
    n = end;
    /* worst case growth: pass 1 triples a byte (+6 spaces), passes 2..4 at most double the text each */
    size_t cap = 8 * (3 * n + 6) + 16;
    FT_TRY(ft__tm_ctx_buf(cx, 2 * cap));
    char *a = cx->buf, *b = cx->buf + cap;
    memcpy(a, str, n);
    replace_all(a, &n, "<skipped>", "");
    replace_all(a, &n, "-\n", "");
    for (size_t k = 0; k < n; k++) if (a[k] == '\n') a[k] = ' ';
    if (memchr(a, '&', n)) {
        replace_all(a, &n, "&quot;", "\"");
        replace_all(a, &n, "&amp;", "&");
        replace_all(a, &n, "&lt;", "<");
        replace_all(a, &n, "&gt;", ">");
    }
    /* pass 1 (with the surrounding spaces) into b */
    size_t w = 0;
    b[w++] = ' ';
    b[w++] = ' ';
    b[w++] = ' ';
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)a[k];
        if (is_punct13a(c)) { b[w++] = ' '; b[w++] = (char)c; b[w++] = ' '; }
        else b[w++] = (char)c;
    }
    b[w++] = ' '; b[w++] = ' '; b[w++] = ' ';
    n = w;
    /* pass 2: b -> a */
    w = 0;
    for (size_t k = 0; k < n;) {
        unsigned char c = (unsigned char)b[k];
        if (k + 1 < n && !is_digit(c) && (b[k + 1] == '.' || b[k + 1] == ',')) {
            a[w++] = (char)c; a[w++] = ' '; a[w++] = b[k + 1]; a[w++] = ' ';
            k += 2;
        } else {
            a[w++] = (char)c;
            k++;
        }
    }
    n = w;
    /* pass 3: a -> b */
    w = 0;
    for (size_t k = 0; k < n;) {
        unsigned char c = (unsigned char)a[k];
        if (k + 1 < n && (c == '.' || c == ',') && !is_digit((unsigned char)a[k + 1])) {
            b[w++] = ' '; b[w++] = (char)c; b[w++] = ' '; b[w++] = a[k + 1];
            k += 2;
        } else {
            b[w++] = (char)c;
            k++;
        }
    }
    n = w;
    /* pass 4: b -> a */
    w = 0;
    for (size_t k = 0; k < n;) {
        unsigned char c = (unsigned char)b[k];
        if (k + 1 < n && is_digit(c) && b[k + 1] == '-') {
            a[w++] = (char)c; a[w++] = ' '; a[w++] = '-'; a[w++] = ' ';
            k += 2;
        } else {
            a[w++] = (char)c;
            k++;
        }
    }
    return ft__tm_split_ws(&cx->words, a, w, out);
}
