/* strbuf.c — the one growable string builder (see strbuf.h). */
#include "core/strbuf.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft__sb_reserve(ft__sb *b, size_t extra) {
    if (b->err) return b->err;
    if (extra > SIZE_MAX - b->n - 1) return b->err = FT_ERR_NOMEM;
    if (b->limit && b->n + extra > b->limit) return b->err = FT_ERR_RANGE;
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return FT_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) return b->err = FT_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return FT_OK;
}

int ft__sb_put(ft__sb *b, const void *s, size_t n) {
    if (ft__sb_reserve(b, n)) return b->err;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return FT_OK;
}

int ft__sb_putc(ft__sb *b, char c) { return ft__sb_put(b, &c, 1); }

int ft__sb_puts(ft__sb *b, const char *s) { return ft__sb_put(b, s, strlen(s)); }

int ft__sb_vprintf(ft__sb *b, const char *fmt, va_list ap) {
    if (b->err) return b->err;
    va_list again;
    va_copy(again, ap);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    if (k >= 0 && b->p && (size_t)k < b->cap - b->n) {   /* it fitted */
        if (b->limit && b->n + (size_t)k > b->limit) {
            b->p[b->n] = '\0';
            va_end(again);
            return b->err = FT_ERR_RANGE;
        }
        b->n += (size_t)k;
        va_end(again);
        return FT_OK;
    }
    if (k < 0) b->err = FT_ERR_INVALID;
    else if (ft__sb_reserve(b, (size_t)k) == FT_OK) {
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, again);
        b->n += (size_t)k;
    } else if (b->p) {
        b->p[b->n] = '\0';   /* the failed try may have written a truncated tail */
    }
    va_end(again);
    return b->err;
}

int ft__sb_printf(ft__sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = ft__sb_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int ft__utf8_next(const char *s, size_t n, size_t i, int32_t *cp) {
    const unsigned char *u = (const unsigned char *)s + i;
    size_t left = n - i;
    unsigned c = u[0];
    int len;
    int32_t v;
    if (c < 0x80) { *cp = (int32_t)c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; }
    else { *cp = (int32_t)c; return 1; }
    if ((size_t)len > left) { *cp = (int32_t)c; return 1; }
    for (int k = 1; k < len; k++) {
        if ((u[k] & 0xc0) != 0x80) { *cp = (int32_t)c; return 1; }
        v = (v << 6) | (u[k] & 0x3f);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) || (len == 4 && (v < 0x10000 || v > 0x10ffff))) {
        *cp = (int32_t)c;
        return 1;
    }
    *cp = v;
    return len;
}

int ft__sb_put_json(ft__sb *b, const char *s, size_t n, int flags) {
    int ascii = flags & FT__SB_JSON_ASCII;
    ft__sb_putc(b, '"');
    size_t run = 0;   /* start of the bytes not yet copied */
    for (size_t i = 0; i < n && !b->err;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[16];
        int k = 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || (ascii && c == 0x7f)) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            } else if (ascii && c >= 0x80) {
                int32_t cp;
                k = ft__utf8_next(s, n, i, &cp);
                if (cp >= 0x10000) {
                    int32_t v = cp - 0x10000;
                    snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", (unsigned)(0xd800 + (v >> 10)), (unsigned)(0xdc00 + (v & 0x3ff)));
                } else {
                    snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
                }
                esc = tmp;
            }
        }
        if (esc) {
            ft__sb_put(b, s + run, i - run);
            ft__sb_puts(b, esc);
            i += (size_t)k;
            run = i;
        } else {
            i++;
        }
    }
    ft__sb_put(b, s + run, n - run);
    return ft__sb_putc(b, '"');
}

char *ft__sb_take(ft__sb *b, size_t *len) {
    if (!b->err && !b->p) ft__sb_put(b, "", 0);
    if (b->err) {
        ft__sb_free(b);
        if (len) *len = 0;
        return NULL;
    }
    char *p = b->p;
    if (len) *len = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void ft__sb_free(ft__sb *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->err = FT_OK;
}
