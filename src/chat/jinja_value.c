/* jinja_value.c — pool, UTF-8 helpers and the Python semantics of template values:
 * truthiness, ==, str(), repr(), json.dumps and repr(float). */
#include "chat/jinja.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "finetune/status.h"

/* ---- pool ---- */
struct jpool_block {
    jpool_block *next;
    size_t used, cap, pad_;
    unsigned char data[];  /* 32-byte header keeps data 16-byte aligned */
};

void *ft__jpool_alloc(jpool *p, size_t n) {
    if (n > SIZE_MAX - 16) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (p->limit && (n > p->limit || p->bytes > p->limit - n)) { p->over = 1; return NULL; }
    p->bytes += n;
    jpool_block *h = p->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = h ? h->cap * 2 : 16384;
        if (cap > (1u << 20)) cap = 1u << 20;
        if (cap < n) cap = n;
        jpool_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        if (h && cap == n && h->cap - h->used >= 1024) {
            /* a one-off big allocation: keep the current block in front, it still has room */
            b->next = h->next;
            h->next = b;
        } else {
            b->next = h;
            p->head = b;
        }
        h = b;
    }
    void *r = h->data + h->used;
    h->used += n;
    memset(r, 0, n);
    return r;
}

char *ft__jpool_strdup(jpool *p, const char *s, size_t n) {
    char *r = ft__jpool_alloc(p, n + 1);
    if (!r) return NULL;
    if (n) memcpy(r, s, n);
    r[n] = 0;
    return r;
}

void ft__jpool_free(jpool *p) {
    jpool_block *b = p->head;
    while (b) {
        jpool_block *next = b->next;
        free(b);
        b = next;
    }
    p->head = NULL;
    p->bytes = 0;
    p->over = 0;
}

/* ---- UTF-8 ---- */
size_t ft__jutf8_count(const char *s, size_t n) {
    size_t k = 0;
    int32_t cp;
    for (size_t i = 0; i < n; k++) i += (size_t)ft__utf8_next(s, n, i, &cp);
    return k;
}

size_t ft__jutf8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    int32_t cp;
    while (k > 0 && i < n) { i += (size_t)ft__utf8_next(s, n, i, &cp); k--; }
    return i;
}

int ft__jpy_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

int ft__jutf8_put(ft__sb *b, int32_t cp) {
    char t[4];
    int k;
    if (cp < 0x80) { t[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { t[0] = (char)(0xc0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3f)); k = 2; }
    else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); t[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        t[0] = (char)(0xf0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); t[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    return ft__sb_put(b, t, (size_t)k);
}

/* ---- lists and dicts ---- */
jlist *ft__jlist_new(jpool *p, int cap) {
    jlist *l = ft__jpool_alloc(p, sizeof *l);
    if (!l) return NULL;
    if (cap > 0) {
        l->v = ft__jpool_alloc(p, sizeof(jv) * (size_t)cap);
        if (!l->v) return NULL;
        l->cap = cap;
    }
    return l;
}

int ft__jlist_push(jpool *p, jlist *l, jv v) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        jv *nv = ft__jpool_alloc(p, sizeof(jv) * (size_t)cap);
        if (!nv) return FT_ERR_NOMEM;
        if (l->n) memcpy(nv, l->v, sizeof(jv) * (size_t)l->n);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return FT_OK;
}

jdict *ft__jdict_new(jpool *p, int cap) {
    jdict *d = ft__jpool_alloc(p, sizeof *d);
    if (!d) return NULL;
    if (cap > 0) {
        d->k = ft__jpool_alloc(p, sizeof(jstr) * (size_t)cap);
        d->v = ft__jpool_alloc(p, sizeof(jv) * (size_t)cap);
        if (!d->k || !d->v) return NULL;
        d->cap = cap;
    }
    return d;
}

jv *ft__jdict_get(const jdict *d, const char *k, size_t n) {
    for (int i = 0; i < d->n; i++)
        if (d->k[i].n == n && memcmp(d->k[i].p, k, n) == 0) return &d->v[i];
    return NULL;
}

int ft__jdict_set(jpool *p, jdict *d, jstr k, jv v) {
    jv *old = ft__jdict_get(d, k.p, k.n);
    if (old) { *old = v; return FT_OK; }
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 4;
        jstr *nk = ft__jpool_alloc(p, sizeof(jstr) * (size_t)cap);
        jv *nv = ft__jpool_alloc(p, sizeof(jv) * (size_t)cap);
        if (!nk || !nv) return FT_ERR_NOMEM;
        if (d->n) {
            memcpy(nk, d->k, sizeof(jstr) * (size_t)d->n);
            memcpy(nv, d->v, sizeof(jv) * (size_t)d->n);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
    return FT_OK;
}

/* ---- Python semantics ---- */
int ft__jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    default: return 1;
    }
}

static int is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double num_f(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t num_i(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

static int eq_rec(jv a, jv b, int depth) {
    if (depth > FT_JV_MAX_NESTING) return 0;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return num_i(a) == num_i(b);
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.tuple != b.tuple || a.u.l->n != b.u.l->n) return 0;
        for (int i = 0; i < a.u.l->n; i++)
            if (!eq_rec(a.u.l->v[i], b.u.l->v[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (int i = 0; i < a.u.d->n; i++) {
            jv *o = ft__jdict_get(b.u.d, a.u.d->k[i].p, a.u.d->k[i].n);
            if (!o || !eq_rec(a.u.d->v[i], *o, depth + 1)) return 0;
        }
        return 1;
    case JV_NS: return a.u.d == b.u.d;
    case JV_LOOP: return a.u.loop == b.u.loop;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_MACRO: return a.u.macro == b.u.macro;
    default: return 0;
    }
}

int ft__jv_eq(jv a, jv b) { return eq_rec(a, b, 0); }

const char *ft__jv_typename(jv v) {
    static const char *names[] = {"Undefined", "NoneType", "bool", "int", "float", "str", "list", "dict",
                                  "Namespace", "LoopContext", "function", "Macro"};
    if (v.t == JV_LIST && v.tuple) return "tuple";
    return v.t < sizeof names / sizeof names[0] ? names[v.t] : "object";
}

/* repr(float): the shortest digit string that round-trips, laid out as CPython does (fixed notation
 * for decimal exponents -4..15, else d.ddde+XX). */
void ft__jv_float_repr(char buf[40], double x) {
    if (isnan(x)) { strcpy(buf, "nan"); return; }
    if (isinf(x)) { strcpy(buf, x < 0 ? "-inf" : "inf"); return; }
    if (x == 0) { strcpy(buf, signbit(x) ? "-0.0" : "0.0"); return; }
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0, neg = 0;
    const char *q = tmp;
    if (*q == '-') { neg = 1; q++; }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int e = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char *o = buf;
    if (neg) *o++ = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > e + 1) for (int i = e + 1; i < nd; i++) *o++ = digits[i];
            else *o++ = '0';
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e - 1; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = digits[i];
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++) *o++ = digits[i];
        }
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

static int py_printable(int32_t cp) {
    if (cp == ' ') return 1;
    if (cp < 0x20 || cp == 0x7f) return 0;
    if (cp < 0x7f) return 1;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return 0;
    default:
        return 1;
    }
}

static int repr_str(ft__sb *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    int rc = ft__sb_putc(b, q);
    for (size_t i = 0; i < n && rc == FT_OK;) {
        int32_t cp;
        int k = ft__utf8_next(s, n, i, &cp);
        if (cp == q || cp == '\\') { ft__sb_putc(b, '\\'); rc = ft__sb_putc(b, (char)cp); }
        else if (cp == '\n') rc = ft__sb_puts(b, "\\n");
        else if (cp == '\r') rc = ft__sb_puts(b, "\\r");
        else if (cp == '\t') rc = ft__sb_puts(b, "\\t");
        else if (k == 1 && (unsigned char)s[i] >= 0x80) rc = ft__sb_printf(b, "\\x%02x", (unsigned char)s[i]);
        else if (py_printable(cp)) rc = ft__sb_put(b, s + i, (size_t)k);
        else if (cp <= 0xff) rc = ft__sb_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp <= 0xffff) rc = ft__sb_printf(b, "\\u%04x", (unsigned)cp);
        else rc = ft__sb_printf(b, "\\U%08x", (unsigned)cp);
        i += (size_t)k;
    }
    return rc ? rc : ft__sb_putc(b, q);
}

static int write_rec(ft__sb *b, jv v, int repr, int depth) {
    char num[40];
    int rc;
    if (depth > FT_JV_MAX_NESTING) return FT_ERR_RANGE;
    switch (v.t) {
    case JV_UNDEF: return repr ? ft__sb_puts(b, "Undefined") : FT_OK;
    case JV_NONE: return ft__sb_puts(b, "None");
    case JV_BOOL: return ft__sb_puts(b, v.u.b ? "True" : "False");
    case JV_INT: return ft__sb_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: ft__jv_float_repr(num, v.u.f); return ft__sb_puts(b, num);
    case JV_STR: return repr ? repr_str(b, v.u.s.p, v.u.s.n) : ft__sb_put(b, v.u.s.p, v.u.s.n);
    case JV_LIST:
        rc = ft__sb_putc(b, v.tuple ? '(' : '[');
        for (int i = 0; i < v.u.l->n && rc == FT_OK; i++) {
            if (i) ft__sb_puts(b, ", ");
            rc = write_rec(b, v.u.l->v[i], 1, depth + 1);
        }
        if (rc == FT_OK && v.tuple && v.u.l->n == 1) rc = ft__sb_putc(b, ',');
        return rc ? rc : ft__sb_putc(b, v.tuple ? ')' : ']');
    case JV_DICT: case JV_NS:
        rc = ft__sb_puts(b, v.t == JV_NS ? "<Namespace {" : "{");
        for (int i = 0; i < v.u.d->n && rc == FT_OK; i++) {
            if (i) ft__sb_puts(b, ", ");
            repr_str(b, v.u.d->k[i].p, v.u.d->k[i].n);
            ft__sb_puts(b, ": ");
            rc = write_rec(b, v.u.d->v[i], 1, depth + 1);
        }
        return rc ? rc : ft__sb_puts(b, v.t == JV_NS ? "}>" : "}");
    case JV_LOOP:
        return ft__sb_printf(b, "<LoopContext %lld/%lld>", (long long)v.u.loop->index0 + 1, (long long)v.u.loop->length);
    default:
        return ft__sb_puts(b, "<function>");
    }
}

int ft__jv_write(ft__sb *b, jv v, int repr) { return write_rec(b, v, repr, 0); }

/* ---- json.dumps ---- */
typedef struct jsonopt {
    int ensure_ascii, sort_keys;
    const char *indent; size_t indent_n;
    const char *item_sep, *key_sep;
    const char **bad;
} jsonopt;

static int json_str(ft__sb *b, const char *s, size_t n, int ensure_ascii) {
    return ft__sb_put_json(b, s, n, ensure_ascii ? FT__SB_JSON_ASCII : 0);
}

static int json_newline(ft__sb *b, const jsonopt *o, int level) {
    int rc = ft__sb_putc(b, '\n');
    for (int i = 0; i < level && rc == FT_OK; i++) rc = ft__sb_put(b, o->indent, o->indent_n);
    return rc;
}

static int key_cmp(const jstr *a, const jstr *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->n < b->n ? -1 : a->n > b->n);
}

static int json_val(ft__sb *b, jv v, const jsonopt *o, int level) {
    char num[40];
    int rc = FT_OK;
    if (level > FT_JV_MAX_NESTING) return FT_ERR_RANGE;
    switch (v.t) {
    case JV_NONE: return ft__sb_puts(b, "null");
    case JV_BOOL: return ft__sb_puts(b, v.u.b ? "true" : "false");
    case JV_INT: return ft__sb_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        if (isnan(v.u.f)) return ft__sb_puts(b, "NaN");
        if (isinf(v.u.f)) return ft__sb_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        ft__jv_float_repr(num, v.u.f);
        return ft__sb_puts(b, num);
    case JV_STR: return json_str(b, v.u.s.p, v.u.s.n, o->ensure_ascii);
    case JV_LIST: {
        if (v.u.l->n == 0) return ft__sb_puts(b, "[]");
        rc = ft__sb_putc(b, '[');
        for (int i = 0; i < v.u.l->n && rc == FT_OK; i++) {
            if (i) ft__sb_puts(b, o->item_sep);
            if (o->indent) json_newline(b, o, level + 1);
            rc = json_val(b, v.u.l->v[i], o, level + 1);
        }
        if (rc == FT_OK && o->indent) json_newline(b, o, level);
        return rc ? rc : ft__sb_putc(b, ']');
    }
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (d->n == 0) return ft__sb_puts(b, "{}");
        int *ord = malloc(sizeof(int) * (size_t)d->n);
        if (!ord) return FT_ERR_NOMEM;
        for (int i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (int i = 1; i < d->n; i++)
                for (int j = i; j > 0 && key_cmp(&d->k[ord[j - 1]], &d->k[ord[j]]) > 0; j--) {
                    int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t;
                }
        rc = ft__sb_putc(b, '{');
        for (int i = 0; i < d->n && rc == FT_OK; i++) {
            if (i) ft__sb_puts(b, o->item_sep);
            if (o->indent) json_newline(b, o, level + 1);
            json_str(b, d->k[ord[i]].p, d->k[ord[i]].n, o->ensure_ascii);
            ft__sb_puts(b, o->key_sep);
            rc = json_val(b, d->v[ord[i]], o, level + 1);
        }
        free(ord);
        if (rc == FT_OK && o->indent) json_newline(b, o, level);
        return rc ? rc : ft__sb_putc(b, '}');
    }
    default:
        *o->bad = ft__jv_typename(v);
        return FT_ERR_INVALID;
    }
}

int ft__jv_tojson(ft__sb *b, jv v, int ensure_ascii, const char *indent, size_t indent_n, const char *item_sep,
              const char *key_sep, int sort_keys, const char **bad) {
    jsonopt o = {ensure_ascii, sort_keys, indent, indent_n, item_sep, key_sep, bad};
    if (!o.item_sep) o.item_sep = indent ? "," : ", ";
    if (!o.key_sep) o.key_sep = ": ";
    return json_val(b, v, &o, 0);
}
