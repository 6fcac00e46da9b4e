/* dq_text.c — UTF-8 decoding, character classes (utf8proc categories), scripts by code-point block,
 * words and lower-casing for the data-quality tools. */
#include "data/dq_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int32_t ft__dq_utf8_next(const char *str, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)str;
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(s + *i, (utf8proc_ssize_t)(n - *i), &cp);
    if (k <= 0) { (*i)++; return -1; }
    *i += (size_t)k;
    return cp;
}

int ft__dq_utf8_put(char *out, int32_t cp) {
    return (int)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
}

int ft__dq_is_letter(int32_t cp) {
    if (cp < 0) return 0;
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

int ft__dq_is_alnum(int32_t cp) {
    if (cp < 0) return 0;
    if (cp < 0x80) return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9');
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME) ||   /* combining marks stay in the word */
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

int ft__dq_is_space(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return 1;
    if (cp < 0x80) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP || cp == 0x85;
}

int ft__dq_is_punct(int32_t cp) {
    if (cp < 0) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

/* Blocks of the scripts worth telling apart in training data; letters elsewhere are "Other". */
static const struct { int32_t lo, hi; const char *name; } k_blocks[] = {
    {0x0041, 0x024F, "Latin"},   {0x0250, 0x02AF, "Latin"},    {0x0370, 0x03FF, "Greek"},
    {0x0400, 0x052F, "Cyrillic"}, {0x0530, 0x058F, "Armenian"}, {0x0590, 0x05FF, "Hebrew"},
    {0x0600, 0x06FF, "Arabic"},  {0x0750, 0x077F, "Arabic"},   {0x08A0, 0x08FF, "Arabic"},
    {0x0900, 0x097F, "Devanagari"}, {0x0980, 0x09FF, "Bengali"}, {0x0A00, 0x0A7F, "Gurmukhi"},
    {0x0A80, 0x0AFF, "Gujarati"}, {0x0B80, 0x0BFF, "Tamil"},    {0x0C00, 0x0C7F, "Telugu"},
    {0x0C80, 0x0CFF, "Kannada"}, {0x0D00, 0x0D7F, "Malayalam"}, {0x0E00, 0x0E7F, "Thai"},
    {0x10A0, 0x10FF, "Georgian"}, {0x1100, 0x11FF, "Hangul"},   {0x1200, 0x139F, "Ethiopic"},
    {0x1C80, 0x1C8F, "Cyrillic"}, {0x1E00, 0x1EFF, "Latin"},    {0x1F00, 0x1FFF, "Greek"},
    {0x2C60, 0x2C7F, "Latin"},   {0x2DE0, 0x2DFF, "Cyrillic"}, {0x3040, 0x309F, "Hiragana"},
    {0x30A0, 0x30FF, "Katakana"}, {0x3130, 0x318F, "Hangul"},   {0x31F0, 0x31FF, "Katakana"},
    {0x3400, 0x4DBF, "Han"},     {0x4E00, 0x9FFF, "Han"},      {0xA640, 0xA69F, "Cyrillic"},
    {0xA720, 0xA7FF, "Latin"},   {0xAC00, 0xD7AF, "Hangul"},   {0xF900, 0xFAFF, "Han"},
    {0xFB50, 0xFDFF, "Arabic"},  {0xFE70, 0xFEFF, "Arabic"},   {0xFF21, 0xFF5A, "Latin"},
    {0xFF66, 0xFF9F, "Katakana"}, {0x20000, 0x2FA1F, "Han"},
};

const char *ft__dq_script(int32_t cp) {
    int lo = 0, hi = (int)(sizeof k_blocks / sizeof *k_blocks) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < k_blocks[mid].lo) hi = mid - 1;
        else if (cp > k_blocks[mid].hi) lo = mid + 1;
        else return k_blocks[mid].name;
    }
    return "Other";
}

int ft__dq_words(const char *s, size_t n, ft_dq_span **spans, int64_t *nw) {
    ft_dq_span *w = NULL;
    int64_t k = 0, cap = 0;
    size_t i = 0;
    while (i < n) {
        size_t at = i;
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        if (!ft__dq_is_alnum(cp)) continue;
        size_t end = i;
        while (i < n) {
            size_t j = i;
            int32_t c2 = ft__dq_utf8_next(s, n, &j);
            if (!ft__dq_is_alnum(c2)) break;
            i = end = j;
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            ft_dq_span *q = realloc(w, (size_t)cap * sizeof *w);
            if (!q) { free(w); return ft_error(FT_ERR_NOMEM, "out of memory (words)"); }
            w = q;
        }
        w[k++] = (ft_dq_span){at, end};
    }
    *spans = w;
    *nw = k;
    return FT_OK;
}

int ft__dq_lower(const char *s, size_t n, char **out, size_t *out_len) {
    char *o = malloc(n * 2 + 8);   /* a lower-case letter takes at most one byte more than its capital */
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory (lower case)");
    size_t i = 0, w = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x80) { o[w++] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b); i++; continue; }
        size_t at = i;
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        if (cp < 0) { o[w++] = s[at]; continue; }
        w += (size_t)ft__dq_utf8_put(o + w, utf8proc_tolower(cp));
    }
    o[w] = 0;
    *out = o;
    if (out_len) *out_len = w;
    return FT_OK;
}

int64_t ft__dq_count_chars(const char *s, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

int64_t ft__dq_count_ws_words(const char *s, size_t n) {
    int64_t k = 0;
    int in = 0;
    size_t i = 0;
    while (i < n) {
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        int sp = ft__dq_is_space(cp);
        if (!sp && !in) k++;
        in = !sp;
    }
    return k;
}

char *ft__dq_utf8_valid_copy(const char *s, size_t n) {
    char *o = malloc(n * 3 + 1);   /* an invalid byte becomes 3 bytes */
    if (!o) return NULL;
    size_t i = 0, w = 0;
    while (i < n) {
        size_t at = i;
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        if (cp < 0) { memcpy(o + w, "\xEF\xBF\xBD", 3); w += 3; }
        else { memcpy(o + w, s + at, i - at); w += i - at; }
    }
    o[w] = 0;
    return o;
}
