/* jinja_eval.c — renders a parsed template: statements write to an output buffer, expressions evaluate
 * to values (jinja.h) with Python's operator semantics.
 *
 * Scopes follow Jinja2: a {% set %} at the top level is global; every for-loop iteration (and macro call)
 * gets a fresh frame, so a set inside a loop is invisible after the iteration (namespace() objects exist
 * to carry state out of loops). Reads fall through frames to the globals, then to the builtin functions. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "finetune/chat.h"
#include "finetune/status.h"

typedef struct jframe {
    struct jframe *parent;
    int n, cap;
    int *sym;
    jv *val;
} jframe;

enum { CTRL_NONE = 0, CTRL_BREAK, CTRL_CONTINUE };

struct jrender {
    const jtemplate *t;
    jpool *pool;
    ft__sb *main_out;
    ft__sb *out;        /* where output goes now (main_out, or a capture for set blocks / macros) */
    jv *globals;      /* [nsyms] */
    jframe *scope;    /* innermost frame, NULL at the top level */
    int ctrl;
    int depth;
    int sym_loop;
    jspan *gens;
    int ngens, capgens;
    ft_chat_budget budget;
    long long ops;    /* work done so far, against budget.max_ops */
    const jnode *cur; /* the expression or statement being run: where errors without a node point */
};

jpool *ft__jr_pool(jrender *r) { return r->pool; }

int ft__jr_error(jrender *r, const jnode *at, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    if (!at) at = r->cur;
    if (at) ft__jtemplate_linecol(r->t, at->pos, &line, &col);
    return ft_error(status, "chat template: line %d, column %d: %s", line, col, msg);
}

int ft__jr_charge(jrender *r, const jnode *at, int64_t n) {
    r->ops += n;
    if (r->ops <= r->budget.max_ops) return FT_OK;
    return ft__jr_error(r, at, FT_ERR_RANGE, "template exceeds its budget (more than %lld operations)", r->budget.max_ops);
}

int ft__jr_fail(jrender *r, const jnode *at, int status, const ft__sb *b) {
    if (status == FT_ERR_RANGE && b && b->err == FT_ERR_RANGE)
        return ft__jr_error(r, at, FT_ERR_RANGE, "template exceeds its budget (a text longer than %zu bytes)", r->budget.max_output);
    if (status == FT_ERR_RANGE)
        return ft__jr_error(r, at, FT_ERR_RANGE, "template exceeds its budget (values nested deeper than %d levels)", FT_JV_MAX_NESTING);
    if (r->pool->over)
        return ft__jr_error(r, at, FT_ERR_RANGE, "template exceeds its budget (more than %zu bytes of values)", r->budget.max_memory);
    return ft__jr_error(r, at, FT_ERR_NOMEM, "out of memory");
}

ft__sb ft__jr_sb(const jrender *r) {
    ft__sb b = {0};
    b.limit = r->budget.max_output;
    return b;
}

static int oom(jrender *r) { return ft__jr_fail(r, NULL, FT_ERR_NOMEM, NULL); }

static jv undef_named(const char *p, size_t n) {
    jv v = jv_undef();
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

static int undefined_error(jrender *r, const jnode *at, jv v) {
    if (v.u.s.p) return ft__jr_error(r, at, FT_ERR_INVALID, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
    return ft__jr_error(r, at, FT_ERR_INVALID, "undefined value used");
}

/* ---- scopes ---- */
static jv lookup(jrender *r, int sym) {
    for (jframe *f = r->scope; f; f = f->parent)
        for (int i = f->n - 1; i >= 0; i--)
            if (f->sym[i] == sym) return f->val[i];
    jv v = r->globals[sym];
    if (v.t == JV_UNDEF) {
        if (r->t->sym_fn[sym]) {
            v.t = JV_FUNC;
            v.u.fn = r->t->sym_fn[sym];
            return v;
        }
        return undef_named(r->t->syms[sym], strlen(r->t->syms[sym]));
    }
    return v;
}

static int frame_set(jrender *r, jframe *f, int sym, jv v) {
    for (int i = 0; i < f->n; i++)
        if (f->sym[i] == sym) { f->val[i] = v; return FT_OK; }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        int *s = ft__jpool_alloc(r->pool, sizeof(int) * (size_t)cap);
        jv *vv = ft__jpool_alloc(r->pool, sizeof(jv) * (size_t)cap);
        if (!s || !vv) return oom(r);
        if (f->n) { memcpy(s, f->sym, sizeof(int) * (size_t)f->n); memcpy(vv, f->val, sizeof(jv) * (size_t)f->n); }
        f->sym = s;
        f->val = vv;
        f->cap = cap;
    }
    f->sym[f->n] = sym;
    f->val[f->n] = v;
    f->n++;
    return FT_OK;
}

static int assign(jrender *r, int sym, jv v) {
    if (r->scope) return frame_set(r, r->scope, sym, v);
    r->globals[sym] = v;
    return FT_OK;
}

/* Binds targets (one name, or several unpacked from a sequence) in the current scope. */
static int assign_targets(jrender *r, const jnode *at, const int *syms, int nsyms, jv v) {
    if (nsyms == 1) return assign(r, syms[0], v);
    jlist *l;
    FT_TRY(ft__jr_iterate(r, at, v, &l));
    if (l->n != nsyms)
        return ft__jr_error(r, at, FT_ERR_INVALID, "%s values to unpack (expected %d, got %d)",
                        l->n > nsyms ? "too many" : "not enough", nsyms, l->n);
    for (int i = 0; i < nsyms; i++) FT_TRY(assign(r, syms[i], l->v[i]));
    return FT_OK;
}

/* ---- conversions ---- */
int ft__jr_str(jrender *r, jv v, jstr *out) {
    if (v.t == JV_STR) { *out = v.u.s; return FT_OK; }
    if (v.t == JV_UNDEF) { out->p = ""; out->n = 0; return FT_OK; }
    ft__sb b = ft__jr_sb(r);
    int rc = ft__jv_write(&b, v, 0);
    if (rc) { rc = ft__jr_fail(r, NULL, rc, &b); ft__sb_free(&b); return rc; }
    char *s = ft__jpool_strdup(r->pool, b.p ? b.p : "", b.n);
    out->p = s;
    out->n = b.n;
    ft__sb_free(&b);
    return s ? FT_OK : oom(r);
}

int ft__jr_iterate(jrender *r, const jnode *at, jv v, jlist **out) {
    jlist *l;
    /* whoever iterates walks every item: charged here once for filters, methods and loops alike */
    int64_t n_items = v.t == JV_LIST ? v.u.l->n : v.t == JV_DICT ? v.u.d->n : v.t == JV_STR ? (int64_t)v.u.s.n : 0;
    FT_TRY(ft__jr_charge(r, at, n_items));
    switch (v.t) {
    case JV_LIST: *out = v.u.l; return FT_OK;
    case JV_UNDEF:
        if (!(*out = ft__jlist_new(r->pool, 0))) return oom(r);
        return FT_OK;
    case JV_DICT:
        if (!(l = ft__jlist_new(r->pool, v.u.d->n))) return oom(r);
        for (int i = 0; i < v.u.d->n; i++) l->v[i] = jv_str(v.u.d->k[i].p, v.u.d->k[i].n);
        l->n = v.u.d->n;
        *out = l;
        return FT_OK;
    case JV_STR: {
        size_t n = ft__jutf8_count(v.u.s.p, v.u.s.n);
        if (!(l = ft__jlist_new(r->pool, (int)n))) return oom(r);
        int32_t cp;
        for (size_t i = 0; i < v.u.s.n;) {
            int k = ft__utf8_next(v.u.s.p, v.u.s.n, i, &cp);
            l->v[l->n++] = jv_str(v.u.s.p + i, (size_t)k);
            i += (size_t)k;
        }
        *out = l;
        return FT_OK;
    }
    default:
        return ft__jr_error(r, at, FT_ERR_INVALID, "'%s' object is not iterable", ft__jv_typename(v));
    }
}

/* ---- attribute and item access ---- */
int ft__jr_getattr(jrender *r, const jnode *at, jv obj, jstr name, jv *out) {
    switch (obj.t) {
    case JV_UNDEF: return undefined_error(r, at, obj);
    case JV_DICT: case JV_NS: {
        jv *v = ft__jdict_get(obj.u.d, name.p, name.n);
        *out = v ? *v : undef_named(name.p, name.n);
        return FT_OK;
    }
    case JV_LOOP: {
        const jloop *L = obj.u.loop;
        int64_t i = L->index0, n = L->length;
#define IS(s) (name.n == sizeof(s) - 1 && memcmp(name.p, s, name.n) == 0)
        if (IS("index")) *out = jv_int(i + 1);
        else if (IS("index0")) *out = jv_int(i);
        else if (IS("revindex")) *out = jv_int(n - i);
        else if (IS("revindex0")) *out = jv_int(n - i - 1);
        else if (IS("first")) *out = jv_bool(i == 0);
        else if (IS("last")) *out = jv_bool(i == n - 1);
        else if (IS("length")) *out = jv_int(n);
        else if (IS("depth")) *out = jv_int(1);
        else if (IS("depth0")) *out = jv_int(0);
        else if (IS("previtem")) *out = i > 0 ? L->items[i - 1] : undef_named("previtem", 8);
        else if (IS("nextitem")) *out = i + 1 < n ? L->items[i + 1] : undef_named("nextitem", 8);
        else *out = undef_named(name.p, name.n);
#undef IS
        return FT_OK;
    }
    default:
        *out = undef_named(name.p, name.n);
        return FT_OK;
    }
}

static int as_index(jv k, int64_t *i) {
    if (k.t == JV_INT) { *i = k.u.i; return 1; }
    if (k.t == JV_BOOL) { *i = k.u.b; return 1; }
    return 0;
}

int ft__jr_getitem(jrender *r, const jnode *at, jv obj, jv key, jv *out) {
    int64_t i;
    *out = undef_named("item", 4);
    switch (obj.t) {
    case JV_UNDEF: return undefined_error(r, at, obj);
    case JV_DICT:
        if (key.t == JV_STR) {
            jv *v = ft__jdict_get(obj.u.d, key.u.s.p, key.u.s.n);
            *out = v ? *v : undef_named(key.u.s.p, key.u.s.n);
        }
        return FT_OK;
    case JV_NS: case JV_LOOP:
        if (key.t == JV_STR) return ft__jr_getattr(r, at, obj, key.u.s, out);
        return FT_OK;
    case JV_LIST:
        if (as_index(key, &i)) {
            if (i < 0) i += obj.u.l->n;
            if (i >= 0 && i < obj.u.l->n) *out = obj.u.l->v[i];
        }
        return FT_OK;
    case JV_STR:
        if (as_index(key, &i)) {
            int64_t n = (int64_t)ft__jutf8_count(obj.u.s.p, obj.u.s.n);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t a = ft__jutf8_offset(obj.u.s.p, obj.u.s.n, (size_t)i);
                int32_t cp;
                int k = ft__utf8_next(obj.u.s.p, obj.u.s.n, a, &cp);
                *out = jv_str(obj.u.s.p + a, (size_t)k);
            }
        }
        return FT_OK;
    default:
        return FT_OK;
    }
}

/* 0, or -1 when v is neither an integer nor None */
static int slice_bound(jv v, int64_t *out, int *given) {
    *given = 0;
    if (v.t == JV_NONE) return 0;
    if (!as_index(v, out)) return -1;
    *given = 1;
    return 0;
}

static int do_slice(jrender *r, const jnode *at, jv obj, jv start, jv stop, jv step, jv *out) {
    int64_t a = 0, b = 0, s = 1;
    int ga, gb, gs;
    if (obj.t == JV_UNDEF) return undefined_error(r, at, obj);
    /* jinja2 compiles slices to a plain Python subscript (no getitem fallback): errors propagate */
    if (obj.t != JV_LIST && obj.t != JV_STR)
        return ft__jr_error(r, at, FT_ERR_INVALID, "'%s' object is not subscriptable", ft__jv_typename(obj));
    if (slice_bound(start, &a, &ga) || slice_bound(stop, &b, &gb) || slice_bound(step, &s, &gs))
        return ft__jr_error(r, at, FT_ERR_INVALID, "slice indices must be integers or None");
    if (!gs) s = 1;
    if (s == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "slice step cannot be zero");
    int ascii = 1;
    int64_t len;
    if (obj.t == JV_LIST) {
        len = obj.u.l->n;
    } else {
        for (size_t i = 0; i < obj.u.s.n && ascii; i++) ascii = (unsigned char)obj.u.s.p[i] < 0x80;
        len = ascii ? (int64_t)obj.u.s.n : (int64_t)ft__jutf8_count(obj.u.s.p, obj.u.s.n);
    }
    /* CPython's PySlice_AdjustIndices */
    if (!ga) a = s < 0 ? len - 1 : 0;
    else {
        if (a < 0) { a += len; if (a < 0) a = s < 0 ? -1 : 0; }
        else if (a >= len) a = s < 0 ? len - 1 : len;
    }
    if (!gb) b = s < 0 ? -1 : len;
    else {
        if (b < 0) { b += len; if (b < 0) b = s < 0 ? -1 : 0; }
        else if (b >= len) b = s < 0 ? len - 1 : len;
    }
    int64_t count = 0;
    if (s > 0 && a < b) count = (b - a - 1) / s + 1;
    if (s < 0 && b < a) count = (a - b - 1) / (-s) + 1;
    if (obj.t == JV_LIST) {
        jlist *l = ft__jlist_new(r->pool, (int)count);
        if (!l) return oom(r);
        for (int64_t k = 0; k < count; k++) l->v[k] = obj.u.l->v[a + k * s];
        l->n = (int)count;
        out->t = JV_LIST;
        out->tuple = obj.tuple;
        out->u.l = l;
        return FT_OK;
    }
    if (ascii && s == 1) { *out = jv_str(obj.u.s.p + a, (size_t)count); return FT_OK; }
    size_t *off = NULL;
    if (!ascii) {
        off = ft__jpool_alloc(r->pool, sizeof(size_t) * (size_t)(len + 1));
        if (!off) return oom(r);
        int32_t cp;
        size_t i = 0;
        for (int64_t k = 0; k < len; k++) { off[k] = i; i += (size_t)ft__utf8_next(obj.u.s.p, obj.u.s.n, i, &cp); }
        off[len] = obj.u.s.n;
    }
    ft__sb bb = ft__jr_sb(r);
    for (int64_t k = 0; k < count; k++) {
        int64_t c = a + k * s;
        size_t p0 = ascii ? (size_t)c : off[c], p1 = ascii ? (size_t)c + 1 : off[c + 1];
        int rc = ft__sb_put(&bb, obj.u.s.p + p0, p1 - p0);
        if (rc) { rc = ft__jr_fail(r, at, rc, &bb); ft__sb_free(&bb); return rc; }
    }
    char *str = ft__jpool_strdup(r->pool, bb.p ? bb.p : "", bb.n);
    *out = jv_str(str, bb.n);
    ft__sb_free(&bb);
    return str ? FT_OK : oom(r);
}

/* ---- operators ---- */
static int is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double fval(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static int64_t ival(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

static const char *opname(int op) {
    static const char *n[] = {"?", "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=",
                              "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";", "in", "not in"};
    return op > 0 && op < (int)(sizeof n / sizeof n[0]) ? n[op] : "?";
}

static int type_error(jrender *r, const jnode *at, int op, jv a, jv b) {
    return ft__jr_error(r, at, FT_ERR_INVALID, "unsupported operand type(s) for %s: '%s' and '%s'", opname(op),
                    ft__jv_typename(a), ft__jv_typename(b));
}

/* <0, 0, >0; sets *ok = 0 when the types are not ordered (or nested deeper than FT_JV_MAX_NESTING) */
static int order(jv a, jv b, int *ok, int depth) {
    *ok = depth <= FT_JV_MAX_NESTING;
    if (!*ok) return 0;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return ival(a) < ival(b) ? -1 : ival(a) > ival(b);
        double x = fval(a), y = fval(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = memcmp(a.u.s.p, b.u.s.p, n);
        return c ? (c < 0 ? -1 : 1) : (a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.tuple == b.tuple) {
        for (int i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (ft__jv_eq(a.u.l->v[i], b.u.l->v[i])) continue;
            return order(a.u.l->v[i], b.u.l->v[i], ok, depth + 1);
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
    }
    *ok = 0;
    return 0;
}

int ft__jr_compare(jrender *r, const jnode *at, int op, jv a, jv b, int *res) {
    if (op == OP_EQ) { *res = ft__jv_eq(a, b); return FT_OK; }
    if (op == OP_NE) { *res = !ft__jv_eq(a, b); return FT_OK; }
    if (op == OP_IN || op == OP_NOTIN) {
        int found = 0;
        if (b.t == JV_STR) {
            if (a.t != JV_STR)
                return ft__jr_error(r, at, FT_ERR_INVALID, "'in <string>' requires string as left operand, not %s", ft__jv_typename(a));
            found = a.u.s.n == 0 || (a.u.s.n <= b.u.s.n && memmem(b.u.s.p, b.u.s.n, a.u.s.p, a.u.s.n) != NULL);
        } else if (b.t == JV_LIST) {
            FT_TRY(ft__jr_charge(r, at, b.u.l->n));
            for (int i = 0; i < b.u.l->n && !found; i++) found = ft__jv_eq(a, b.u.l->v[i]);
        } else if (b.t == JV_DICT || b.t == JV_NS) {
            if ((a.t == JV_LIST && !a.tuple) || a.t == JV_DICT)
                return ft__jr_error(r, at, FT_ERR_INVALID, "unhashable type: '%s'", ft__jv_typename(a));
            found = a.t == JV_STR && ft__jdict_get(b.u.d, a.u.s.p, a.u.s.n) != NULL;
        } else if (b.t != JV_UNDEF) {
            return ft__jr_error(r, at, FT_ERR_INVALID, "argument of type '%s' is not iterable", ft__jv_typename(b));
        }
        *res = op == OP_IN ? found : !found;
        return FT_OK;
    }
    if (a.t == JV_UNDEF) return undefined_error(r, at, a);
    if (b.t == JV_UNDEF) return undefined_error(r, at, b);
    int ok, c = order(a, b, &ok, 0);
    if (!ok)
        return ft__jr_error(r, at, FT_ERR_INVALID, "'%s' not supported between instances of '%s' and '%s'", opname(op),
                        ft__jv_typename(a), ft__jv_typename(b));
    *res = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
    return FT_OK;
}

static int concat_str(jrender *r, jstr a, jstr b, jv *out) {
    char *s = ft__jpool_alloc(r->pool, a.n + b.n + 1);
    if (!s) return oom(r);
    if (a.n) memcpy(s, a.p, a.n);
    if (b.n) memcpy(s + a.n, b.p, b.n);
    *out = jv_str(s, a.n + b.n);
    return FT_OK;
}

static int repeat(jrender *r, const jnode *at, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > (64u << 20) / seq.u.s.n) return ft__jr_error(r, at, FT_ERR_RANGE, "string repetition too large");
        size_t n = seq.u.s.n * (size_t)times;
        char *s = ft__jpool_alloc(r->pool, n + 1);
        if (!s) return oom(r);
        for (int64_t k = 0; k < times; k++) memcpy(s + (size_t)k * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        *out = jv_str(s, n);
        return FT_OK;
    }
    if (seq.u.l->n && times > (1 << 20) / seq.u.l->n) return ft__jr_error(r, at, FT_ERR_RANGE, "list repetition too large");
    jlist *l = ft__jlist_new(r->pool, (int)(seq.u.l->n * times));
    if (!l) return oom(r);
    for (int64_t k = 0; k < times; k++)
        for (int i = 0; i < seq.u.l->n; i++) l->v[l->n++] = seq.u.l->v[i];
    *out = seq;
    out->u.l = l;
    return FT_OK;
}

static int arith(jrender *r, const jnode *at, int op, jv a, jv b, jv *out) {
    if (op == OP_TILDE) {
        jstr x, y;
        FT_TRY(ft__jr_str(r, a, &x));
        FT_TRY(ft__jr_str(r, b, &y));
        return concat_str(r, x, y, out);
    }
    if (a.t == JV_UNDEF) return undefined_error(r, at, a);
    if (b.t == JV_UNDEF) return undefined_error(r, at, b);
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR) return concat_str(r, a.u.s, b.u.s, out);
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST && a.tuple == b.tuple) {
        jlist *l = ft__jlist_new(r->pool, a.u.l->n + b.u.l->n);
        if (!l) return oom(r);
        for (int i = 0; i < a.u.l->n; i++) l->v[l->n++] = a.u.l->v[i];
        for (int i = 0; i < b.u.l->n; i++) l->v[l->n++] = b.u.l->v[i];
        *out = a;
        out->u.l = l;
        return FT_OK;
    }
    if (op == OP_MUL && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
        return repeat(r, at, a, ival(b), out);
    if (op == OP_MUL && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
        return repeat(r, at, b, ival(a), out);
    if (op == OP_MOD && a.t == JV_STR)
        return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "printf-style string formatting ('%%' on a string) is not supported");
    if (!is_num(a) || !is_num(b)) return type_error(r, at, op, a, b);
    if (a.t != JV_FLOAT && b.t != JV_FLOAT && op != OP_DIV) {
        int64_t x = ival(a), y = ival(b), z = 0;
        int ovf = 0;
        switch (op) {
        case OP_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
        case OP_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
        case OP_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
        case OP_FLOORDIV: case OP_MOD:
            if (y == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) { ovf = 1; break; }
            z = op == OP_FLOORDIV ? x / y : x % y;
            if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) z -= 1;
            if (op == OP_MOD && z != 0 && ((z < 0) != (y < 0))) z += y;
            break;
        case OP_POW:
            if (y < 0 && x == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "0.0 cannot be raised to a negative power");
            if (y < 0) { *out = jv_float(pow((double)x, (double)y)); return FT_OK; }
            /* by squaring: at most 64 steps, whatever the exponent (1 ** 9223372036854775807 is 1) */
            z = 1;
            if (x == 0 || x == 1) z = y == 0 ? 1 : x;
            else if (x == -1) z = (y & 1) ? -1 : 1;
            else
                for (int64_t base = x, e = y; e > 0 && !ovf; e >>= 1) {
                    if (e & 1) ovf = __builtin_mul_overflow(z, base, &z);
                    if (e > 1 && !ovf) ovf = __builtin_mul_overflow(base, base, &base);
                }
            break;
        }
        if (ovf) return ft__jr_error(r, at, FT_ERR_RANGE, "integer overflow in '%s'", opname(op));
        *out = jv_int(z);
        return FT_OK;
    }
    double x = fval(a), y = fval(b), z = 0;
    switch (op) {
    case OP_ADD: z = x + y; break;
    case OP_SUB: z = x - y; break;
    case OP_MUL: z = x * y; break;
    case OP_DIV:
        if (y == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "division by zero");
        z = x / y;
        break;
    case OP_FLOORDIV: case OP_MOD: {
        if (y == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "float modulo or division by zero");
        /* CPython's float_divmod */
        double m = fmod(x, y);
        if (m != 0) { if ((y < 0) != (m < 0)) m += y; }
        else m = copysign(0.0, y);
        if (op == OP_MOD) { z = m; break; }
        double d = (x - m) / y, fd;
        if (d != 0) { fd = floor(d); if (d - fd > 0.5) fd += 1.0; }
        else fd = copysign(0.0, x / y);
        z = fd;
        break;
    }
    case OP_POW:
        if (x == 0 && y < 0) return ft__jr_error(r, at, FT_ERR_INVALID, "0.0 cannot be raised to a negative power");
        if (x < 0 && y != floor(y))
            return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "a negative number to a fractional power is complex");
        z = pow(x, y);
        if (isinf(z) && isfinite(x) && isfinite(y)) return ft__jr_error(r, at, FT_ERR_RANGE, "numerical result out of range");
        break;
    }
    *out = jv_float(z);
    return FT_OK;
}

/* ---- expressions ---- */
static int eval(jrender *r, const jnode *e, jv *out);

static int eval_args(jrender *r, const jnode *e, jv **out) {
    *out = NULL;
    if (e->nargs == 0) return FT_OK;
    jv *a = ft__jpool_alloc(r->pool, sizeof(jv) * (size_t)e->nargs);
    if (!a) return oom(r);
    for (int i = 0; i < e->nargs; i++) FT_TRY(eval(r, e->args[i], &a[i]));
    *out = a;
    return FT_OK;
}

static int call_value(jrender *r, const jnode *at, jv fn, const jv *args, const jstr *kw, int nargs, jv *out) {
    if (fn.t == JV_FUNC) return ft__jfunc_call(r, at, fn.u.fn, args, kw, nargs, out);
    if (fn.t == JV_MACRO) return ft__jr_call_macro(r, at, fn, args, kw, nargs, out);
    if (fn.t == JV_UNDEF) return undefined_error(r, at, fn);
    return ft__jr_error(r, at, FT_ERR_INVALID, "'%s' object is not callable", ft__jv_typename(fn));
}

static int eval(jrender *r, const jnode *e, jv *out) {
    jv a, b, c;
    int res;
    r->cur = e;
    FT_TRY(ft__jr_charge(r, e, 1));
    switch (e->kind) {
    case N_LIT: *out = e->lit; return FT_OK;
    case N_NAME: *out = lookup(r, e->sym); return FT_OK;
    case N_LIST: case N_TUPLE: {
        jlist *l = ft__jlist_new(r->pool, e->nargs);
        if (!l) return oom(r);
        for (int i = 0; i < e->nargs; i++) FT_TRY(eval(r, e->args[i], &l->v[i]));
        l->n = e->nargs;
        *out = jv_none();
        out->t = JV_LIST;
        out->tuple = e->kind == N_TUPLE;
        out->u.l = l;
        return FT_OK;
    }
    case N_DICT: {
        jdict *d = ft__jdict_new(r->pool, e->nargs / 2);
        if (!d) return oom(r);
        for (int i = 0; i + 1 < e->nargs; i += 2) {
            FT_TRY(eval(r, e->args[i], &a));
            FT_TRY(eval(r, e->args[i + 1], &b));
            if (a.t != JV_STR) return ft__jr_error(r, e->args[i], FT_ERR_UNSUPPORTED, "dict keys other than strings are not supported");
            if (ft__jdict_set(r->pool, d, a.u.s, b)) return oom(r);
        }
        *out = jv_none();
        out->t = JV_DICT;
        out->u.d = d;
        return FT_OK;
    }
    case N_GETATTR:
        FT_TRY(eval(r, e->a, &a));
        return ft__jr_getattr(r, e, a, e->s, out);
    case N_GETITEM:
        FT_TRY(eval(r, e->a, &a));
        FT_TRY(eval(r, e->b, &b));
        return ft__jr_getitem(r, e, a, b, out);
    case N_SLICE: {
        jv st = jv_none();
        FT_TRY(eval(r, e->a, &a));
        b = c = jv_none();
        if (e->b) FT_TRY(eval(r, e->b, &b));
        if (e->c) FT_TRY(eval(r, e->c, &c));
        if (e->args[0]) FT_TRY(eval(r, e->args[0], &st));
        return do_slice(r, e, a, b, c, st, out);
    }
    case N_NEG: case N_POS:
        FT_TRY(eval(r, e->a, &a));
        if (a.t == JV_UNDEF) return undefined_error(r, e, a);
        if (!is_num(a)) return ft__jr_error(r, e, FT_ERR_INVALID, "bad operand type for unary %s: '%s'", e->kind == N_NEG ? "-" : "+", ft__jv_typename(a));
        if (e->kind == N_POS) *out = a.t == JV_BOOL ? jv_int(a.u.b) : a;
        else if (a.t == JV_FLOAT) *out = jv_float(-a.u.f);
        else if (ival(a) == INT64_MIN) return ft__jr_error(r, e, FT_ERR_RANGE, "integer overflow");
        else *out = jv_int(-ival(a));
        return FT_OK;
    case N_NOT:
        FT_TRY(eval(r, e->a, &a));
        *out = jv_bool(!ft__jv_truthy(a));
        return FT_OK;
    case N_AND: case N_OR:
        FT_TRY(eval(r, e->a, &a));
        if (ft__jv_truthy(a) == (e->kind == N_OR)) { *out = a; return FT_OK; }
        return eval(r, e->b, out);
    case N_COND:
        FT_TRY(eval(r, e->a, &a));
        if (ft__jv_truthy(a)) return eval(r, e->b, out);
        if (e->c) return eval(r, e->c, out);
        *out = jv_undef();
        return FT_OK;
    case N_BIN:
        FT_TRY(eval(r, e->a, &a));
        FT_TRY(eval(r, e->b, &b));
        if (e->op == OP_EQ || e->op == OP_NE || e->op == OP_LT || e->op == OP_LE || e->op == OP_GT ||
            e->op == OP_GE || e->op == OP_IN || e->op == OP_NOTIN) {
            FT_TRY(ft__jr_compare(r, e, e->op, a, b, &res));
            *out = jv_bool(res);
            return FT_OK;
        }
        return arith(r, e, e->op, a, b, out);
    case N_FILTER: {
        jv *args;
        FT_TRY(eval(r, e->a, &a));
        FT_TRY(eval_args(r, e, &args));
        return ft__jfilter_apply(r, e, e->fid, a, args, e->kw, e->nargs, out);
    }
    case N_TEST: {
        jv *args;
        FT_TRY(eval(r, e->a, &a));
        FT_TRY(eval_args(r, e, &args));
        FT_TRY(ft__jtest_apply(r, e, e->fid, a, args, e->nargs, &res));
        *out = jv_bool(e->neg ? !res : res);
        return FT_OK;
    }
    case N_CALL: {
        jv *args;
        FT_TRY(eval(r, e->a, &a));
        FT_TRY(eval_args(r, e, &args));
        return call_value(r, e, a, args, e->kw, e->nargs, out);
    }
    case N_METHOD: {
        jv *args;
        int found = 0;
        FT_TRY(eval(r, e->a, &a));
        if (a.t == JV_UNDEF) return undefined_error(r, e, a);
        FT_TRY(eval_args(r, e, &args));
        FT_TRY(ft__jmethod_call(r, e, a, e->s, args, e->kw, e->nargs, out, &found));
        if (found) return FT_OK;
        FT_TRY(ft__jr_getattr(r, e, a, e->s, &b));
        if (b.t == JV_UNDEF)
            return ft__jr_error(r, e, FT_ERR_INVALID, "'%s object' has no attribute '%.*s'", ft__jv_typename(a), (int)e->s.n, e->s.p);
        return call_value(r, e, b, args, e->kw, e->nargs, out);
    }
    default:
        return ft__jr_error(r, e, FT_ERR_UNSUPPORTED, "unsupported expression");
    }
}

/* ---- statements ---- */
static int exec(jrender *r, const jnode *s);

static int put_value(jrender *r, const jnode *at, jv v) {
    int rc = v.t == JV_STR ? ft__sb_put(r->out, v.u.s.p, v.u.s.n) : ft__jv_write(r->out, v, 0);
    return rc ? ft__jr_fail(r, at, rc, r->out) : FT_OK;
}

static int exec_for(jrender *r, const jnode *s) {
    jv it;
    jlist *items;
    FT_TRY(eval(r, s->a, &it));
    FT_TRY(ft__jr_iterate(r, s->a, it, &items));
    jframe f = {r->scope, 0, 0, NULL, NULL};
    if (s->b) { /* {% for x in xs if cond %}: filter first, loop.length counts what passes */
        jlist *kept = ft__jlist_new(r->pool, items->n);
        if (!kept) return oom(r);
        r->scope = &f;
        for (int i = 0; i < items->n; i++) {
            jv cond;
            f.n = 0;
            int rc0 = ft__jr_charge(r, s, 1);
            if (rc0) { r->scope = f.parent; return rc0; }
            int rc = assign_targets(r, s, s->syms, s->nsyms, items->v[i]);
            if (rc == FT_OK) rc = eval(r, s->b, &cond);
            if (rc) { r->scope = f.parent; return rc; }
            if (ft__jv_truthy(cond)) kept->v[kept->n++] = items->v[i];
        }
        r->scope = f.parent;
        items = kept;
    }
    if (items->n == 0) return exec(r, s->orelse);
    jloop L = {0, items->n, items->v};
    jv loopv = jv_none();
    loopv.t = JV_LOOP;
    loopv.u.loop = &L;
    r->scope = &f;
    int rc = FT_OK;
    for (int i = 0; i < items->n && rc == FT_OK; i++) {
        f.n = 0;
        L.index0 = i;
        rc = ft__jr_charge(r, s, 1);
        if (rc == FT_OK) rc = assign_targets(r, s, s->syms, s->nsyms, items->v[i]);
        if (rc == FT_OK && r->sym_loop >= 0) rc = frame_set(r, &f, r->sym_loop, loopv);
        if (rc == FT_OK) rc = exec(r, s->body);
        if (r->ctrl == CTRL_CONTINUE) r->ctrl = CTRL_NONE;
        if (r->ctrl == CTRL_BREAK) { r->ctrl = CTRL_NONE; break; }
    }
    r->scope = f.parent;
    return rc;
}

static int capture(jrender *r, const jnode *body, jv *out) {
    ft__sb b = ft__jr_sb(r), *saved = r->out;
    r->out = &b;
    int rc = exec(r, body);
    r->out = saved;
    if (rc == FT_OK) {
        char *s = ft__jpool_strdup(r->pool, b.p ? b.p : "", b.n);
        if (!s) rc = oom(r);
        else *out = jv_str(s, b.n);
    }
    ft__sb_free(&b);
    return rc;
}

int ft__jr_call_macro(jrender *r, const jnode *at, jv fn, const jv *args, const jstr *kw, int nargs, jv *out) {
    const jnode *m = fn.u.macro;
    if (r->depth >= r->budget.max_depth)
        return ft__jr_error(r, at, FT_ERR_RANGE, "template exceeds its budget (macro calls nested deeper than %d)", r->budget.max_depth);
    jframe f = {NULL, 0, 0, NULL, NULL};
    int npos = 0;
    while (npos < nargs && !kw[npos].p) npos++;
    if (npos > m->nargs) return ft__jr_error(r, at, FT_ERR_INVALID, "macro '%.*s' takes not more than %d argument(s)", (int)m->s.n, m->s.p, m->nargs);
    jframe *saved = r->scope;
    r->scope = &f;
    r->depth++;
    int rc = FT_OK;
    for (int k = npos; k < nargs && rc == FT_OK; k++) {
        int p = 0;
        while (p < m->nargs && !(m->kw[p].n == kw[k].n && memcmp(m->kw[p].p, kw[k].p, kw[k].n) == 0)) p++;
        if (p == m->nargs) rc = ft__jr_error(r, at, FT_ERR_INVALID, "macro '%.*s' has no argument '%.*s'", (int)m->s.n, m->s.p, (int)kw[k].n, kw[k].p);
    }
    for (int p = 0; p < m->nargs && rc == FT_OK; p++) {
        jv v = jv_undef();
        int given = 0;
        if (p < npos) { v = args[p]; given = 1; }
        for (int k = npos; k < nargs && !given; k++)
            if (m->kw[p].n == kw[k].n && memcmp(m->kw[p].p, kw[k].p, kw[k].n) == 0) { v = args[k]; given = 1; }
        if (!given && m->args[p]) rc = eval(r, m->args[p], &v);
        if (!given && !m->args[p]) v = undef_named(m->kw[p].p, m->kw[p].n);
        if (rc == FT_OK) rc = frame_set(r, &f, m->syms[p], v);
    }
    if (rc == FT_OK) rc = capture(r, m->body, out);
    r->depth--;
    r->scope = saved;
    return rc;
}

static int exec(jrender *r, const jnode *s) {
    jv v;
    for (; s; s = s->next) {
        r->cur = s;
        FT_TRY(ft__jr_charge(r, s, 1));
        switch (s->kind) {
        case N_TEXT: {
            int rc = ft__sb_put(r->out, s->s.p, s->s.n);
            if (rc) return ft__jr_fail(r, s, rc, r->out);
            break;
        }
        case N_OUTPUT:
            FT_TRY(eval(r, s->a, &v));
            FT_TRY(put_value(r, s->a, v));
            break;
        case N_IF:
            FT_TRY(eval(r, s->a, &v));
            FT_TRY(exec(r, ft__jv_truthy(v) ? s->body : s->orelse));
            break;
        case N_FOR:
            FT_TRY(exec_for(r, s));
            break;
        case N_SET:
            FT_TRY(eval(r, s->a, &v));
            FT_TRY(assign_targets(r, s, s->syms, s->nsyms, v));
            break;
        case N_SET_ATTR: {
            jv ns = lookup(r, s->sym);
            if (ns.t != JV_NS)
                return ft__jr_error(r, s, FT_ERR_INVALID, "cannot assign attribute on non-namespace object '%s'", r->t->syms[s->sym]);
            if (s->s.n && s->s.p[0] == '_')
                return ft__jr_error(r, s, FT_ERR_INVALID, "chat templates cannot store underscore-prefixed attributes on a namespace");
            FT_TRY(eval(r, s->a, &v));
            if (ft__jdict_set(r->pool, ns.u.d, s->s, v)) return oom(r);
            break;
        }
        case N_SET_BLOCK:
            FT_TRY(capture(r, s->body, &v));
            FT_TRY(assign(r, s->syms[0], v));
            break;
        case N_BREAK: r->ctrl = CTRL_BREAK; return FT_OK;
        case N_CONTINUE: r->ctrl = CTRL_CONTINUE; return FT_OK;
        case N_GENERATION: {
            size_t start = r->out->n;
            FT_TRY(exec(r, s->body));
            if (r->out == r->main_out) {
                if (r->ngens == r->capgens) {
                    int cap = r->capgens ? r->capgens * 2 : 8;
                    jspan *g = realloc(r->gens, sizeof(jspan) * (size_t)cap);
                    if (!g) return oom(r);
                    r->gens = g;
                    r->capgens = cap;
                }
                r->gens[r->ngens].start = start;
                r->gens[r->ngens].end = r->out->n;
                r->ngens++;
            }
            break;
        }
        case N_MACRO:
            v = jv_none();
            v.t = JV_MACRO;
            v.u.macro = s;
            FT_TRY(assign(r, s->sym, v));
            break;
        default:
            return ft__jr_error(r, s, FT_ERR_UNSUPPORTED, "unsupported statement");
        }
        if (r->ctrl) return FT_OK;
    }
    return FT_OK;
}

int ft__jtemplate_render(const jtemplate *t, const jvar *vars, int nvars, jpool *pool, ft__sb *out, jspan **gens, int *ngens,
                         const ft_chat_budget *budget) {
    jrender r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.budget = budget ? *budget : ft_chat_default_budget();
    r.pool = pool;
    pool->limit = r.budget.max_memory;
    out->limit = r.budget.max_output;
    r.main_out = r.out = out;
    r.sym_loop = ft__jtemplate_sym(t, "loop");
    r.globals = ft__jpool_alloc(pool, sizeof(jv) * (size_t)(t->nsyms + 1));
    if (!r.globals) return oom(&r);
    for (int i = 0; i < nvars; i++)
        if (vars[i].sym >= 0 && vars[i].sym < t->nsyms) r.globals[vars[i].sym] = vars[i].v;
    int rc = exec(&r, t->root);
    if (rc == FT_OK && gens) {
        *gens = r.gens;
        *ngens = r.ngens;
    } else {
        free(r.gens);
        if (gens) { *gens = NULL; *ngens = 0; }
    }
    return rc;
}
