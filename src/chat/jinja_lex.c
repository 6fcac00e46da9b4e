/* jinja_lex.c — template source -> tokens, with Jinja2's whitespace control as transformers configures it
 * (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
 *   {%- / {{- / {#-   strip all whitespace before the tag;
 *   -%} / -}} / -#}   strip all whitespace after it;
 *   lstrip_blocks     spaces and tabs between the start of a line and a {% or {# tag are dropped
 *                     (not before {{ , not with {%+ );
 *   trim_blocks       the first newline after %} or #} is dropped (not after }} , not with +%} ).
 * Inside tags the lexer follows jinja2/lexer.py: the end of a tag is only recognized where (), [] and {}
 * are balanced, floats are tried before integers, adjacent strings are joined by the parser. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "finetune/status.h"

typedef struct lx {
    const char *s;
    size_t n;
    jpool *pool;
    jtok *t;
    int nt, cap;
} lx;

void ft__jsrc_linecol(const char *src, size_t n, int pos, int *line, int *col) {
    size_t p = (size_t)pos > n ? n : (size_t)pos, ls = 0;
    int l = 1;
    for (size_t i = 0; i < p; i++)
        if (src[i] == '\n') { l++; ls = i + 1; }
    *line = l;
    *col = (int)ft__jutf8_count(src + ls, p - ls) + 1;
}

int ft__jsrc_verror(const char *src, size_t n, int pos, int status, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line, col;
    ft__jsrc_linecol(src, n, pos, &line, &col);
    return ft_error(status, "chat template: line %d, column %d: %s", line, col, msg);
}

static int lx_fail(lx *L, size_t pos, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = ft__jsrc_verror(L->s, L->n, (int)pos, status, fmt, ap);
    va_end(ap);
    return rc;
}

static int lx_push(lx *L, int type, int op, size_t pos, const char *p, size_t n) {
    if (L->nt == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        jtok *t = realloc(L->t, sizeof(jtok) * (size_t)cap);
        if (!t) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
        L->t = t;
        L->cap = cap;
    }
    jtok *k = &L->t[L->nt++];
    memset(k, 0, sizeof *k);
    k->type = (uint8_t)type;
    k->op = (uint8_t)op;
    k->pos = (int)pos;
    k->s.p = p;
    k->s.n = n;
    return FT_OK;
}

/* Python \s at byte i: returns its length in bytes, 0 if not whitespace */
static int ws_at(const char *s, size_t n, size_t i) {
    int32_t cp;
    int k = ft__utf8_next(s, n, i, &cp);
    return ft__jpy_isspace(cp) ? k : 0;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    int k;
    while (i < n && (k = ws_at(s, n, i)) > 0) i += (size_t)k;
    return i;
}

/* End of the text [start, end) with trailing whitespace removed (Python str.rstrip()). */
static size_t rstrip_end(const char *s, size_t start, size_t end) {
    while (end > start) {
        size_t b = end - 1;
        while (b > start && end - b < 4 && ((unsigned char)s[b] & 0xc0) == 0x80) b--;
        int32_t cp;
        if ((size_t)ft__utf8_next(s, end, b, &cp) != end - b) { b = end - 1; cp = (unsigned char)s[b]; }
        if (!ft__jpy_isspace(cp)) break;
        end = b;
    }
    return end;
}

/* The text before a {% / {# tag under lstrip_blocks: when only whitespace follows the last newline
 * (or the whole text is whitespace and starts a line), that whitespace is dropped. */
static size_t lstrip_text_end(const char *s, size_t start, size_t end, int line_starting) {
    size_t nl = end;
    while (nl > start && s[nl - 1] != '\n') nl--;
    if (nl == start && !line_starting) return end;
    if (nl == end) return end;
    for (size_t q = nl; q < end;) {
        int k = ws_at(s, end, q);
        if (!k) return end;
        q += (size_t)k;
    }
    return nl;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal starting at s[i] (the quote): Python unicode-escape decoding of its body. */
static int lex_string(lx *L, size_t i, size_t *end) {
    const char *s = L->s;
    char q = s[i];
    size_t j = i + 1;
    ft__sb b = {0};
    int rc = FT_OK;
    while (j < L->n && s[j] != q) {
        if (s[j] != '\\') {
            size_t r = j;
            while (j < L->n && s[j] != q && s[j] != '\\') j++;
            rc = ft__sb_put(&b, s + r, j - r);
            if (rc) break;
            continue;
        }
        if (j + 1 >= L->n) break;
        char c = s[j + 1];
        j += 2;
        switch (c) {
        case '\n': break;
        case '\\': rc = ft__sb_putc(&b, '\\'); break;
        case '\'': rc = ft__sb_putc(&b, '\''); break;
        case '"': rc = ft__sb_putc(&b, '"'); break;
        case 'a': rc = ft__sb_putc(&b, 7); break;
        case 'b': rc = ft__sb_putc(&b, 8); break;
        case 'f': rc = ft__sb_putc(&b, 12); break;
        case 'n': rc = ft__sb_putc(&b, '\n'); break;
        case 'r': rc = ft__sb_putc(&b, '\r'); break;
        case 't': rc = ft__sb_putc(&b, '\t'); break;
        case 'v': rc = ft__sb_putc(&b, 11); break;
        case 'x': case 'u': case 'U': {
            int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            int32_t v = 0;
            for (int k = 0; k < nd; k++) {
                int h = j + (size_t)k < L->n ? hexval((unsigned char)s[j + (size_t)k]) : -1;
                if (h < 0) {
                    ft__sb_free(&b);
                    return lx_fail(L, j - 2, FT_ERR_FORMAT, "truncated \\%c escape in string literal", c);
                }
                v = v * 16 + h;
            }
            j += (size_t)nd;
            if (v > 0x10ffff) {
                ft__sb_free(&b);
                return lx_fail(L, j - 2 - (size_t)nd, FT_ERR_FORMAT, "illegal Unicode character in string literal");
            }
            if (v >= 0xd800 && v <= 0xdbff && j + 6 <= L->n && s[j] == '\\' && s[j + 1] == 'u') {
                int32_t lo = 0, ok = 1;
                for (int k = 0; k < 4; k++) {
                    int h = hexval((unsigned char)s[j + 2 + (size_t)k]);
                    if (h < 0) { ok = 0; break; }
                    lo = lo * 16 + h;
                }
                if (ok && lo >= 0xdc00 && lo <= 0xdfff) {
                    v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
                    j += 6;
                }
            }
            rc = ft__jutf8_put(&b, v);
            break;
        }
        case 'N':
            ft__sb_free(&b);
            return lx_fail(L, j - 2, FT_ERR_UNSUPPORTED, "\\N{...} escapes are not supported");
        default:
            if (c >= '0' && c <= '7') {
                int32_t v = c - '0';
                for (int k = 0; k < 2 && j < L->n && s[j] >= '0' && s[j] <= '7'; k++) v = v * 8 + (s[j++] - '0');
                rc = ft__jutf8_put(&b, v);
            } else {
                ft__sb_putc(&b, '\\');
                rc = ft__sb_putc(&b, c);
            }
        }
        if (rc) break;
    }
    if (rc) { ft__sb_free(&b); return ft_error(FT_ERR_NOMEM, "chat template: out of memory"); }
    if (j >= L->n) {
        ft__sb_free(&b);
        return lx_fail(L, i, FT_ERR_FORMAT, "unterminated string literal");
    }
    char *v = ft__jpool_strdup(L->pool, b.p ? b.p : "", b.n);
    size_t vn = b.n;
    ft__sb_free(&b);
    if (!v) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    rc = lx_push(L, T_STRING, 0, i, v, vn);
    *end = j + 1;
    return rc;
}

static int isdig(char c) { return c >= '0' && c <= '9'; }

/* digits with single underscores between them; returns the end (== i if none) */
static size_t scan_digits(const char *s, size_t n, size_t i) {
    if (i >= n || !isdig(s[i])) return i;
    i++;
    while (i < n) {
        if (isdig(s[i])) i++;
        else if (s[i] == '_' && i + 1 < n && isdig(s[i + 1])) i += 2;
        else break;
    }
    return i;
}

static size_t scan_exponent(const char *s, size_t n, size_t i) {
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        size_t k = scan_digits(s, n, j);
        if (k > j) return k;
    }
    return i;
}

static int lex_number(lx *L, size_t i, size_t *end) {
    const char *s = L->s;
    size_t n = L->n;
    char tmp[128];
    size_t d = scan_digits(s, n, i), fe = i;
    if (i == 0 || s[i - 1] != '.') {
        if (d < n && s[d] == '.' && d + 1 < n && isdig(s[d + 1])) {
            size_t f = scan_digits(s, n, d + 1);
            fe = scan_exponent(s, n, f);
        } else {
            fe = scan_exponent(s, n, d);
            if (fe == d) fe = i;
        }
    }
    if (fe > i) {
        size_t k = 0;
        for (size_t j = i; j < fe && k < sizeof tmp - 1; j++)
            if (s[j] != '_') tmp[k++] = s[j];
        tmp[k] = 0;
        int rc = lx_push(L, T_FLOAT, 0, i, s + i, fe - i);
        if (rc) return rc;
        L->t[L->nt - 1].f = strtod(tmp, NULL);
        *end = fe;
        return FT_OK;
    }
    int base = 10;
    size_t j = i;
    if (s[i] == '0' && i + 1 < n && s[i + 1] && strchr("bBoOxX", s[i + 1])) {
        base = (s[i + 1] | 32) == 'b' ? 2 : (s[i + 1] | 32) == 'o' ? 8 : 16;
        j = i + 2;
        while (j < n && (s[j] == '_' || (hexval((unsigned char)s[j]) >= 0 && hexval((unsigned char)s[j]) < base))) j++;
    } else {
        j = d;
    }
    size_t k = 0;
    for (size_t q = base == 10 ? i : i + 2; q < j && k < sizeof tmp - 1; q++)
        if (s[q] != '_') tmp[k++] = s[q];
    tmp[k] = 0;
    if (k == 0 || k >= 20) return lx_fail(L, i, FT_ERR_UNSUPPORTED, "integer literal out of range");
    unsigned long long v = strtoull(tmp, NULL, base);
    if (v > (unsigned long long)INT64_MAX) return lx_fail(L, i, FT_ERR_UNSUPPORTED, "integer literal out of range");
    int rc = lx_push(L, T_INT, 0, i, s + i, j - i);
    if (rc) return rc;
    L->t[L->nt - 1].i = (int64_t)v;
    *end = j;
    return FT_OK;
}

static int op_at(const char *s, size_t n, size_t i, int *len) {
    static const struct { const char *t; int op; } ops[] = {
        {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE}, {"<=", OP_LE},
        {"+", OP_ADD}, {"-", OP_SUB}, {"/", OP_DIV}, {"*", OP_MUL}, {"%", OP_MOD}, {"~", OP_TILDE},
        {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN}, {")", OP_RPAREN}, {"{", OP_LBRACE},
        {"}", OP_RBRACE}, {">", OP_GT}, {"<", OP_LT}, {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
        {"|", OP_PIPE}, {",", OP_COMMA}, {";", OP_SEMICOLON},
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t l = strlen(ops[k].t);
        if (i + l <= n && memcmp(s + i, ops[k].t, l) == 0) { *len = (int)l; return ops[k].op; }
    }
    return 0;
}

/* Tokens of one {{ }} or {% %} tag, starting after its opening delimiter. Returns the end position. */
static int lex_tag(lx *L, size_t i, size_t open, int block, size_t *end, int *line_starting) {
    const char *s = L->s;
    size_t n = L->n;
    char stack[256];
    int depth = 0;
    for (;;) {
        i = skip_ws(s, n, i);
        if (i >= n)
            return lx_fail(L, open, FT_ERR_FORMAT, "unexpected end of template: the tag opened here is never closed");
        if (depth == 0) {
            const char *close = block ? "%}" : "}}";
            if (block && i + 3 <= n && s[i] == '+' && memcmp(s + i + 1, close, 2) == 0) {
                *end = i + 3;
                *line_starting = 0;
                return lx_push(L, T_BLOCK_END, 0, i, NULL, 0);
            }
            if (i + 3 <= n && s[i] == '-' && memcmp(s + i + 1, close, 2) == 0) {
                size_t e = skip_ws(s, n, i + 3);
                *end = e;
                *line_starting = e > i + 3 && s[e - 1] == '\n';
                return lx_push(L, block ? T_BLOCK_END : T_VAR_END, 0, i, NULL, 0);
            }
            if (i + 2 <= n && memcmp(s + i, close, 2) == 0) {
                size_t e = i + 2;
                if (block && e < n && s[e] == '\n') e++; /* trim_blocks */
                *end = e;
                *line_starting = s[e - 1] == '\n';
                return lx_push(L, block ? T_BLOCK_END : T_VAR_END, 0, i, NULL, 0);
            }
        }
        char c = s[i];
        int rc;
        if (isdig(c)) {
            rc = lex_number(L, i, &i);
        } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t j = i + 1;
            while (j < n && (s[j] == '_' || isdig(s[j]) || (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z'))) j++;
            rc = lx_push(L, T_NAME, 0, i, s + i, j - i);
            i = j;
        } else if (c == '\'' || c == '"') {
            rc = lex_string(L, i, &i);
        } else {
            int len = 0, op = op_at(s, n, i, &len);
            if (!op) return lx_fail(L, i, FT_ERR_FORMAT, "unexpected character '%c'", c);
            if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE) {
                if (depth == (int)sizeof stack) return lx_fail(L, i, FT_ERR_UNSUPPORTED, "brackets nested too deeply");
                stack[depth++] = op == OP_LPAREN ? ')' : op == OP_LBRACKET ? ']' : '}';
            } else if (op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) {
                if (depth == 0) return lx_fail(L, i, FT_ERR_FORMAT, "unexpected '%c'", c);
                if (stack[depth - 1] != c)
                    return lx_fail(L, i, FT_ERR_FORMAT, "unexpected '%c', expected '%c'", c, stack[depth - 1]);
                depth--;
            }
            rc = lx_push(L, T_OP, op, i, s + i, (size_t)len);
            i += (size_t)len;
        }
        if (rc) return rc;
    }
}

/* "{%" [-+]? \s* "raw" \s* ("-%}" \s* | "%}") at i; returns the end or 0 */
static size_t raw_begin_at(const char *s, size_t n, size_t i, char *mod) {
    size_t j = i + 2;
    *mod = 0;
    if (j < n && (s[j] == '-' || s[j] == '+')) *mod = s[j++];
    j = skip_ws(s, n, j);
    if (j + 3 > n || memcmp(s + j, "raw", 3) != 0) return 0;
    j = skip_ws(s, n, j + 3);
    if (j + 3 <= n && memcmp(s + j, "-%}", 3) == 0) return skip_ws(s, n, j + 3);
    if (j + 2 <= n && memcmp(s + j, "%}", 2) == 0) return j + 2;
    return 0;
}

/* {% endraw %} at i: returns the end (0 if not), *mod = begin modifier */
static size_t raw_end_at(const char *s, size_t n, size_t i, char *mod) {
    if (i + 2 > n || s[i] != '{' || s[i + 1] != '%') return 0;
    size_t j = i + 2;
    *mod = 0;
    if (j < n && (s[j] == '-' || s[j] == '+')) *mod = s[j++];
    j = skip_ws(s, n, j);
    if (j + 6 > n || memcmp(s + j, "endraw", 6) != 0) return 0;
    j = skip_ws(s, n, j + 6);
    if (j + 3 <= n && memcmp(s + j, "+%}", 3) == 0) return j + 3;
    if (j + 3 <= n && memcmp(s + j, "-%}", 3) == 0) return skip_ws(s, n, j + 3);
    if (j + 2 <= n && memcmp(s + j, "%}", 2) == 0) return j + 2 + (j + 2 < n && s[j + 2] == '\n');
    return 0;
}

static size_t strip_before(const char *s, size_t start, size_t end, char mod, int lstrip, int line_starting) {
    if (mod == '-') return rstrip_end(s, start, end);
    if (mod != '+' && lstrip) return lstrip_text_end(s, start, end, line_starting);
    return end;
}

int ft__jlex(jpool *pool, const char *src, size_t n, jtok **toks, int *ntoks) {
    lx L = {src, n, pool, NULL, 0, 0};
    size_t pos = 0;
    int line_starting = 1, rc = FT_OK;
    while (pos < n && rc == FT_OK) {
        size_t q = pos;
        char kind = 0;
        for (; q + 1 < n; q++)
            if (src[q] == '{' && (src[q + 1] == '{' || src[q + 1] == '%' || src[q + 1] == '#')) { kind = src[q + 1]; break; }
        if (!kind) {
            rc = lx_push(&L, T_TEXT, 0, pos, src + pos, n - pos);
            break;
        }
        char rmod;
        size_t raw_end = kind == '%' ? raw_begin_at(src, n, q, &rmod) : 0;
        char mod = (q + 2 < n && (src[q + 2] == '-' || src[q + 2] == '+')) ? src[q + 2] : 0;
        size_t text_end = strip_before(src, pos, q, mod, kind != '{', line_starting);
        if (text_end > pos && (rc = lx_push(&L, T_TEXT, 0, pos, src + pos, text_end - pos))) break;
        if (raw_end) {
            size_t e = raw_end, r = raw_end, after = 0;
            char emod = 0;
            line_starting = raw_end > 0 && src[raw_end - 1] == '\n';
            for (; r < n; r++)
                if ((after = raw_end_at(src, n, r, &emod)) != 0) break;
            if (!after) { rc = lx_fail(&L, q, FT_ERR_FORMAT, "missing end of raw directive"); break; }
            size_t te = strip_before(src, e, r, emod, 1, line_starting);
            if (te > e && (rc = lx_push(&L, T_TEXT, 0, e, src + e, te - e))) break;
            pos = after;
            line_starting = src[pos - 1] == '\n';
            continue;
        }
        size_t body = q + 2 + (mod ? 1 : 0);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(src[e] == '#' && src[e + 1] == '}')) e++;
            if (e + 1 >= n) { rc = lx_fail(&L, q, FT_ERR_FORMAT, "missing end of comment tag"); break; }
            char emod = (e > body && (src[e - 1] == '-' || src[e - 1] == '+')) ? src[e - 1] : 0;
            pos = e + 2;
            if (emod == '-') pos = skip_ws(src, n, pos);
            else if (emod != '+' && pos < n && src[pos] == '\n') pos++;
            line_starting = src[pos - 1] == '\n';
            continue;
        }
        int block = kind == '%';
        if ((rc = lx_push(&L, block ? T_BLOCK_BEGIN : T_VAR_BEGIN, 0, q, NULL, 0))) break;
        rc = lex_tag(&L, body, q, block, &pos, &line_starting);
    }
    if (rc == FT_OK) rc = lx_push(&L, T_EOF, 0, n, NULL, 0);
    if (rc) { free(L.t); return rc; }
    *toks = L.t;
    *ntoks = L.nt;
    return FT_OK;
}
