/* jinja_builtins.c — the filters, tests, global functions and str/dict methods that chat templates use,
 * with the behaviour of Jinja2 3.1 under transformers (tojson = json.dumps(ensure_ascii=False),
 * raise_exception, strftime_now, namespace). Filters return lists where Jinja2 returns generators
 * (selectattr, map, ...): identical once passed through |list, |join, |length or a for loop. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "chat/jinja.h"
#include "finetune/status.h"

enum {
    F_TRIM = 1, F_STRIP, F_LENGTH, F_UPPER, F_LOWER, F_CAPITALIZE, F_TITLE, F_TOJSON, F_DEFAULT, F_FIRST,
    F_LAST, F_JOIN, F_REPLACE, F_STRING, F_LIST, F_ITEMS, F_SELECTATTR, F_REJECTATTR, F_SELECT, F_REJECT,
    F_MAP, F_REVERSE, F_INT, F_FLOAT, F_ABS, F_SAFE, F_ESCAPE, F_INDENT, F_UNIQUE,
};
static const struct { const char *name; int id; } filters[] = {
    {"trim", F_TRIM}, {"strip", F_STRIP}, {"length", F_LENGTH}, {"count", F_LENGTH}, {"upper", F_UPPER},
    {"lower", F_LOWER}, {"capitalize", F_CAPITALIZE}, {"title", F_TITLE}, {"tojson", F_TOJSON},
    {"default", F_DEFAULT}, {"d", F_DEFAULT}, {"first", F_FIRST}, {"last", F_LAST}, {"join", F_JOIN},
    {"replace", F_REPLACE}, {"string", F_STRING}, {"list", F_LIST}, {"items", F_ITEMS},
    {"selectattr", F_SELECTATTR}, {"rejectattr", F_REJECTATTR}, {"select", F_SELECT}, {"reject", F_REJECT},
    {"map", F_MAP}, {"reverse", F_REVERSE}, {"int", F_INT}, {"float", F_FLOAT}, {"abs", F_ABS},
    {"safe", F_SAFE}, {"escape", F_ESCAPE}, {"e", F_ESCAPE}, {"indent", F_INDENT}, {"unique", F_UNIQUE},
};

enum {
    T_DEFINED = 1, T_UNDEFINED, T_NONE, T_BOOLEAN, T_TRUE_, T_FALSE_, T_INTEGER, T_FLOAT_, T_NUMBER, T_STRING_,
    T_MAPPING, T_ITERABLE, T_SEQUENCE, T_CALLABLE, T_SAMEAS, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_IN,
    T_ODD, T_EVEN, T_DIVISIBLEBY, T_LOWER, T_UPPER, T_ESCAPED, T_FILTER, T_TEST,
};
static const struct { const char *name; int id; } tests[] = {
    {"defined", T_DEFINED}, {"undefined", T_UNDEFINED}, {"none", T_NONE}, {"boolean", T_BOOLEAN},
    {"true", T_TRUE_}, {"false", T_FALSE_}, {"integer", T_INTEGER}, {"float", T_FLOAT_}, {"number", T_NUMBER},
    {"string", T_STRING_}, {"mapping", T_MAPPING}, {"iterable", T_ITERABLE}, {"sequence", T_SEQUENCE},
    {"callable", T_CALLABLE}, {"sameas", T_SAMEAS}, {"eq", T_EQ}, {"equalto", T_EQ}, {"==", T_EQ},
    {"ne", T_NE}, {"!=", T_NE}, {"lt", T_LT}, {"lessthan", T_LT}, {"<", T_LT}, {"le", T_LE}, {"<=", T_LE},
    {"gt", T_GT}, {"greaterthan", T_GT}, {">", T_GT}, {"ge", T_GE}, {">=", T_GE}, {"in", T_IN},
    {"odd", T_ODD}, {"even", T_EVEN}, {"divisibleby", T_DIVISIBLEBY}, {"lower", T_LOWER}, {"upper", T_UPPER},
    {"escaped", T_ESCAPED}, {"filter", T_FILTER}, {"test", T_TEST},
};

enum { FN_RAISE = 1, FN_STRFTIME, FN_NAMESPACE, FN_DICT, FN_RANGE };
static const struct { const char *name; int id; } funcs[] = {
    {"raise_exception", FN_RAISE}, {"strftime_now", FN_STRFTIME}, {"namespace", FN_NAMESPACE},
    {"dict", FN_DICT}, {"range", FN_RANGE},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int ft__jfilter_id(const char *name, size_t n) {
    for (int i = 0; i < COUNT(filters); i++)
        if (strlen(filters[i].name) == n && memcmp(filters[i].name, name, n) == 0) return filters[i].id;
    return 0;
}
int ft__jtest_id(const char *name, size_t n) {
    for (int i = 0; i < COUNT(tests); i++)
        if (strlen(tests[i].name) == n && memcmp(tests[i].name, name, n) == 0) return tests[i].id;
    return 0;
}
int ft__jfunc_id(const char *name) {
    for (int i = 0; i < COUNT(funcs); i++)
        if (strcmp(funcs[i].name, name) == 0) return funcs[i].id;
    return 0;
}

static int oom(jrender *r) { return ft__jr_fail(r, NULL, FT_ERR_NOMEM, NULL); }

/* frees b and returns the error of its failed append: past the budget, or out of memory */
static int sb_fail(jrender *r, const jnode *at, ft__sb *b) {
    int rc = ft__jr_fail(r, at, b->err ? b->err : FT_ERR_NOMEM, b);
    ft__sb_free(b);
    return rc;
}

/* ---- argument binding: Python-style positional then keyword ---- */
#define MAXP 6
typedef struct slots { jv v[MAXP]; int given[MAXP]; } slots;

static int bind(jrender *r, const jnode *at, const char *fname, const char *const *params, const jv *args,
                const jstr *kw, int nargs, slots *s) {
    int np = 0;
    while (params[np]) np++;
    memset(s, 0, sizeof *s);
    int pos = 0;
    for (int k = 0; k < nargs; k++) {
        if (!kw || !kw[k].p) {
            if (pos >= np) return ft__jr_error(r, at, FT_ERR_INVALID, "%s() takes at most %d argument(s)", fname, np);
            s->v[pos] = args[k];
            s->given[pos++] = 1;
            continue;
        }
        int p = 0;
        while (p < np && !(strlen(params[p]) == kw[k].n && memcmp(params[p], kw[k].p, kw[k].n) == 0)) p++;
        if (p == np)
            return ft__jr_error(r, at, FT_ERR_INVALID, "%s() got an unexpected keyword argument '%.*s'", fname, (int)kw[k].n, kw[k].p);
        if (s->given[p]) return ft__jr_error(r, at, FT_ERR_INVALID, "%s() got multiple values for argument '%s'", fname, params[p]);
        s->v[p] = args[k];
        s->given[p] = 1;
    }
    return FT_OK;
}

static int need_str(jrender *r, const jnode *at, const char *what, jv v) {
    if (v.t == JV_STR) return FT_OK;
    return ft__jr_error(r, at, FT_ERR_INVALID, "%s must be a string, not '%s'", what, ft__jv_typename(v));
}

static int pool_str(jrender *r, ft__sb *b, jv *out) {
    char *s = ft__jpool_strdup(ft__jr_pool(r), b->p ? b->p : "", b->n);
    *out = jv_str(s, b->n);
    ft__sb_free(b);
    return s ? FT_OK : oom(r);
}

static jv mklist(jlist *l, int tuple) {
    jv v = jv_none();
    v.t = JV_LIST;
    v.tuple = (uint8_t)tuple;
    v.u.l = l;
    return v;
}

/* ---- string helpers ---- */
static int in_chars(int32_t cp, jstr chars) {
    int32_t c;
    for (size_t i = 0; i < chars.n;) {
        i += (size_t)ft__utf8_next(chars.p, chars.n, i, &c);
        if (c == cp) return 1;
    }
    return 0;
}

static size_t prev_char(const char *s, size_t start, size_t end, int32_t *cp) {
    size_t b = end - 1;
    while (b > start && end - b < 4 && ((unsigned char)s[b] & 0xc0) == 0x80) b--;
    if ((size_t)ft__utf8_next(s, end, b, cp) != end - b) { b = end - 1; *cp = (unsigned char)s[b]; }
    return b;
}

static jstr do_strip(jstr s, const jstr *chars, int left, int right) {
    size_t a = 0, b = s.n;
    int32_t cp;
    if (left)
        while (a < b) {
            int k = ft__utf8_next(s.p, b, a, &cp);
            if (chars ? !in_chars(cp, *chars) : !ft__jpy_isspace(cp)) break;
            a += (size_t)k;
        }
    if (right)
        while (b > a) {
            size_t p = prev_char(s.p, a, b, &cp);
            if (chars ? !in_chars(cp, *chars) : !ft__jpy_isspace(cp)) break;
            b = p;
        }
    jstr r = {s.p + a, b - a};
    return r;
}

static int is_cased_cat(int32_t cp, int *upper, int *lower) {
    utf8proc_category_t c = utf8proc_category(cp);
    *upper = c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT;
    *lower = c == UTF8PROC_CATEGORY_LL;
    return *upper || *lower;
}

enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_PYTITLE, CASE_JTITLE };

static int map_case(jrender *r, jstr s, int mode, jv *out) {
    ft__sb b = ft__jr_sb(r);
    int32_t cp;
    int first = 1, prev_cased = 0, prev_sep = 1, rc = FT_OK;
    for (size_t i = 0; i < s.n && rc == FT_OK;) {
        int k = ft__utf8_next(s.p, s.n, i, &cp);
        int32_t o = cp;
        int up, lo;
        switch (mode) {
        case CASE_UPPER: o = utf8proc_toupper(cp); break;
        case CASE_LOWER: o = utf8proc_tolower(cp); break;
        case CASE_CAPITALIZE: o = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp); break;
        case CASE_PYTITLE:
            o = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
            prev_cased = is_cased_cat(cp, &up, &lo);
            break;
        case CASE_JTITLE:
            o = prev_sep ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
            prev_sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || ft__jpy_isspace(cp);
            break;
        }
        first = 0;
        if (k == 1 && cp >= 0x80) rc = ft__sb_put(&b, s.p + i, 1); /* invalid byte: keep */
        else rc = ft__jutf8_put(&b, o);
        i += (size_t)k;
    }
    if (rc) return sb_fail(r, NULL, &b);
    return pool_str(r, &b, out);
}

/* The first occurrence of p[0, m) (m > 0) in s[from, n) into *hit (NULL if none). memmem over windows of a few
 * KiB, overlapping by m - 1 bytes: the same result as one call over the rest, but a loop of searches stays
 * linear where a sanitizer checks the whole region each call is given. The budget is charged one operation
 * per call and per 4 KiB searched. */
static int find_next(jrender *r, const jnode *at, const char *s, size_t n, size_t from, const char *p, size_t m, const char **hit) {
    size_t w = m * 4 > 4096 ? m * 4 : 4096;
    *hit = NULL;
    while (from <= n && n - from >= m) {
        size_t len = n - from < w ? n - from : w;
        FT_TRY(ft__jr_charge(r, at, 1 + (int64_t)(len >> 12)));
        if ((*hit = memmem(s + from, len, p, m)) != NULL || from + len == n) return FT_OK;
        from += len - m + 1;
    }
    return FT_OK;
}

static int str_replace(jrender *r, jstr s, jstr old, jstr rep, int64_t count, jv *out) {
    ft__sb b = ft__jr_sb(r);
    int rc = FT_OK;
    if (count < 0) count = INT64_MAX;
    if (old.n == 0) {
        int32_t cp;
        size_t i = 0;
        int64_t done = 0;
        while (rc == FT_OK) {
            if (done < count) { rc = ft__sb_put(&b, rep.p, rep.n); done++; }
            if (rc == FT_OK && (done & 1023) == 0) rc = ft__jr_charge(r, NULL, 1024);
            if (i >= s.n) break;
            int k = ft__utf8_next(s.p, s.n, i, &cp);
            rc = rc ? rc : ft__sb_put(&b, s.p + i, (size_t)k);
            i += (size_t)k;
        }
    } else {
        size_t i = 0;
        int64_t done = 0;
        while (rc == FT_OK) {
            const char *hit = NULL;
            if (done < count && i <= s.n && (rc = find_next(r, NULL, s.p, s.n, i, old.p, old.n, &hit)) < 0) break;
            if (!hit) { rc = ft__sb_put(&b, s.p + i, s.n - i); break; }
            size_t h = (size_t)(hit - s.p);
            ft__sb_put(&b, s.p + i, h - i);
            rc = ft__sb_put(&b, rep.p, rep.n);
            i = h + old.n;
            done++;
        }
    }
    if (rc == FT_ERR_RANGE && !b.err) { ft__sb_free(&b); return rc; }   /* the budget's own error, recorded */
    if (rc) return sb_fail(r, NULL, &b);
    return pool_str(r, &b, out);
}

/* Python str.split / rsplit */
static int str_split(jrender *r, const jnode *at, jstr s, const jv *sep, int64_t maxsplit, int from_right, jv *out) {
    jlist *l = ft__jlist_new(ft__jr_pool(r), 0);
    if (!l) return oom(r);
    if (maxsplit < 0) maxsplit = INT64_MAX;
    if (sep && sep->t == JV_STR) {
        jstr d = sep->u.s;
        if (d.n == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "empty separator");
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                const char *hit = NULL;
                if (done < maxsplit) FT_TRY(find_next(r, at, s.p, s.n, i, d.p, d.n, &hit));
                if (!hit) { if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + i, s.n - i))) return oom(r); break; }
                size_t h = (size_t)(hit - s.p);
                if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + i, h - i))) return oom(r);
                i = h + d.n;
                done++;
            }
        } else { /* collect from the right, then reverse */
            size_t end = s.n;
            int64_t done = 0;
            for (;;) {
                const char *hit = NULL;
                if (done < maxsplit && end >= d.n) {
                    int64_t work = 0;   /* a comparison per position, charged (long separators in long texts) */
                    for (size_t p = end - d.n + 1; p-- > 0;) {
                        if ((work += 1 + (int64_t)(d.n >> 6)) >= 4096) { FT_TRY(ft__jr_charge(r, at, work)); work = 0; }
                        if (memcmp(s.p + p, d.p, d.n) == 0) { hit = s.p + p; break; }
                    }
                    FT_TRY(ft__jr_charge(r, at, work));
                }
                if (!hit) { if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p, end))) return oom(r); break; }
                size_t h = (size_t)(hit - s.p);
                if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + h + d.n, end - h - d.n))) return oom(r);
                end = h;
                done++;
            }
            for (int i = 0, j = l->n - 1; i < j; i++, j--) { jv t = l->v[i]; l->v[i] = l->v[j]; l->v[j] = t; }
        }
    } else if (sep && sep->t != JV_NONE) {
        return need_str(r, at, "separator", *sep);
    } else { /* runs of whitespace */
        int32_t cp;
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                while (i < s.n) { int k = ft__utf8_next(s.p, s.n, i, &cp); if (!ft__jpy_isspace(cp)) break; i += (size_t)k; }
                if (i >= s.n) break;
                if (done >= maxsplit) { /* the rest, trailing whitespace included */
                    if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + i, s.n - i))) return oom(r);
                    break;
                }
                size_t w = i;
                while (i < s.n) { int k = ft__utf8_next(s.p, s.n, i, &cp); if (ft__jpy_isspace(cp)) break; i += (size_t)k; }
                if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + w, i - w))) return oom(r);
                done++;
            }
        } else {
            size_t e = s.n;
            int64_t done = 0;
            for (;;) {
                while (e > 0) { size_t p = prev_char(s.p, 0, e, &cp); if (!ft__jpy_isspace(cp)) break; e = p; }
                if (e == 0) break;
                if (done >= maxsplit) { /* the rest, leading whitespace included */
                    if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p, e))) return oom(r);
                    break;
                }
                size_t w = e;
                while (e > 0) { size_t p = prev_char(s.p, 0, e, &cp); if (ft__jpy_isspace(cp)) break; e = p; }
                if (ft__jlist_push(ft__jr_pool(r), l, jv_str(s.p + e, w - e))) return oom(r);
                done++;
            }
            for (int i = 0, j = l->n - 1; i < j; i++, j--) { jv t = l->v[i]; l->v[i] = l->v[j]; l->v[j] = t; }
        }
    }
    *out = mklist(l, 0);
    return FT_OK;
}

static int parse_int_str(jstr s, int base, int64_t *out) {
    jstr t = do_strip(s, NULL, 1, 1);
    char buf[80];
    size_t k = 0;
    for (size_t i = 0; i < t.n; i++) {
        char c = t.p[i];
        if (c == '_') {
            if (i == 0 || i + 1 >= t.n || t.p[i - 1] == '_' || !strchr("0123456789abcdefABCDEF", t.p[i + 1])) return 0;
            continue;
        }
        if (k + 1 >= sizeof buf) return 0;
        buf[k++] = c;
    }
    buf[k] = 0;
    if (k == 0) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, base);
    if (*end || errno || end == buf || buf[0] == ' ') return 0;
    if ((buf[0] == '+' || buf[0] == '-') && (k == 1 || buf[1] == ' ')) return 0;
    *out = v;
    return 1;
}

static int parse_float_str(jstr s, double *out) {
    jstr t = do_strip(s, NULL, 1, 1);
    char buf[128];
    size_t k = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.p[i] == '_') continue;
        if (k + 1 >= sizeof buf) return 0;
        buf[k++] = t.p[i];
    }
    buf[k] = 0;
    if (k == 0 || strchr(buf, 'x') || strchr(buf, 'X')) return 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end || end == buf) return 0;
    *out = v;
    return 1;
}

/* Jinja's make_attrgetter: item[part] for each dotted part, ints for numeric parts */
static int attr_path(jrender *r, const jnode *at, jv item, jstr path, jv *out) {
    size_t i = 0;
    jv cur = item;
    while (i <= path.n) {
        size_t j = i;
        while (j < path.n && path.p[j] != '.') j++;
        jstr part = {path.p + i, j - i};
        int numeric = part.n > 0;
        int64_t idx = 0;
        for (size_t q = 0; q < part.n; q++) {
            if (part.p[q] < '0' || part.p[q] > '9') { numeric = 0; break; }
            idx = idx * 10 + (part.p[q] - '0');
        }
        FT_TRY(ft__jr_getitem(r, at, cur, numeric ? jv_int(idx) : jv_str(part.p, part.n), &cur));
        if (j >= path.n) break;
        i = j + 1;
    }
    *out = cur;
    return FT_OK;
}

static int run_test_named(jrender *r, const jnode *at, jv name, jv item, const jv *args, int nargs, int *res) {
    FT_TRY(need_str(r, at, "test name", name));
    int tid = ft__jtest_id(name.u.s.p, name.u.s.n);
    if (!tid) return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "unknown or unsupported test '%.*s'", (int)name.u.s.n, name.u.s.p);
    return ft__jtest_apply(r, at, tid, item, args, nargs, res);
}

static int select_like(jrender *r, const jnode *at, int fid, jv in, const jv *args, const jstr *kw, int nargs, jv *out) {
    int by_attr = fid == F_SELECTATTR || fid == F_REJECTATTR, want = fid == F_SELECT || fid == F_SELECTATTR;
    for (int k = 0; k < nargs; k++)
        if (kw && kw[k].p) return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "keyword arguments to select/reject filters are not supported");
    if (by_attr && nargs < 1) return ft__jr_error(r, at, FT_ERR_INVALID, "missing parameter for attribute name");
    if (by_attr) FT_TRY(need_str(r, at, "attribute name", args[0]));
    int off = by_attr ? 1 : 0;
    jlist *items, *l;
    if (!ft__jv_truthy(in)) in = jv_undef(); /* jinja2: `if value: for item in value: ...` */
    FT_TRY(ft__jr_iterate(r, at, in, &items));
    if (!(l = ft__jlist_new(ft__jr_pool(r), items->n))) return oom(r);
    for (int i = 0; i < items->n; i++) {
        jv v = items->v[i];
        int ok;
        if (by_attr) FT_TRY(attr_path(r, at, v, args[0].u.s, &v));
        if (nargs > off) FT_TRY(run_test_named(r, at, args[off], v, args + off + 1, nargs - off - 1, &ok));
        else ok = ft__jv_truthy(v);
        if (ok == want) l->v[l->n++] = items->v[i];
    }
    *out = mklist(l, 0);
    return FT_OK;
}

static int do_map(jrender *r, const jnode *at, jv in, const jv *args, const jstr *kw, int nargs, jv *out) {
    jlist *items, *l;
    if (!ft__jv_truthy(in)) in = jv_undef(); /* jinja2: `if value: for item in value: ...` */
    FT_TRY(ft__jr_iterate(r, at, in, &items));
    if (!(l = ft__jlist_new(ft__jr_pool(r), items->n))) return oom(r);
    int npos = 0;
    jv attr = jv_undef(), def = jv_none();
    int have_attr = 0;
    for (int k = 0; k < nargs; k++) {
        if (!kw || !kw[k].p) { npos++; continue; }
        if (kw[k].n == 9 && memcmp(kw[k].p, "attribute", 9) == 0) { attr = args[k]; have_attr = 1; }
        else if (kw[k].n == 7 && memcmp(kw[k].p, "default", 7) == 0) def = args[k];
        else if (npos == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "map() got an unexpected keyword argument '%.*s'", (int)kw[k].n, kw[k].p);
    }
    if (npos == 0 && have_attr) {
        FT_TRY(need_str(r, at, "attribute", attr));
        for (int i = 0; i < items->n; i++) {
            jv v;
            FT_TRY(attr_path(r, at, items->v[i], attr.u.s, &v));
            if (v.t == JV_UNDEF && def.t != JV_NONE) v = def;
            l->v[l->n++] = v;
        }
    } else {
        if (npos == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "map() requires a filter name or attribute=");
        FT_TRY(need_str(r, at, "filter name", args[0]));
        int fid = ft__jfilter_id(args[0].u.s.p, args[0].u.s.n);
        if (!fid) return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "unknown or unsupported filter '%.*s'", (int)args[0].u.s.n, args[0].u.s.p);
        for (int i = 0; i < items->n; i++)
            FT_TRY(ft__jfilter_apply(r, at, fid, items->v[i], args + 1, kw ? kw + 1 : NULL, nargs - 1, &l->v[l->n++]));
    }
    *out = mklist(l, 0);
    return FT_OK;
}

static int do_indent(jrender *r, jstr s, jv width, int first, int blank, jv *out) {
    jstr ind;
    char spaces[256];
    if (width.t == JV_STR) {
        ind = width.u.s;
    } else {
        int64_t w = width.t == JV_INT ? width.u.i : width.t == JV_BOOL ? width.u.b : 4;
        if (w < 0) w = 0;
        if (w > 255) w = 255;
        memset(spaces, ' ', (size_t)w);
        ind.p = spaces;
        ind.n = (size_t)w;
    }
    /* s + "\n", split with str.splitlines() (line boundaries: \n \r \r\n \v \f \x1c-\x1e \x85 \u2028 \u2029) */
    ft__sb t = ft__jr_sb(r), b = ft__jr_sb(r);
    if (ft__sb_put(&t, s.p, s.n) || ft__sb_putc(&t, '\n')) return sb_fail(r, NULL, &t);
    int line = 0, rc = FT_OK;
    size_t i = 0;
    while (i < t.n && rc == FT_OK) {
        size_t st = i, en;
        int32_t cp = 0;
        int k = 0;
        while (i < t.n) {
            k = ft__utf8_next(t.p, t.n, i, &cp);
            if (cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
                cp == 0x2028 || cp == 0x2029)
                break;
            i += (size_t)k;
        }
        en = i;
        if (i < t.n) {
            i += (size_t)k;
            if (cp == '\r' && i < t.n && t.p[i] == '\n') i++;
        }
        if (line > 0) ft__sb_putc(&b, '\n');
        int empty = en == st;
        if ((line == 0 && first) || (line > 0 && (blank || !empty))) ft__sb_put(&b, ind.p, ind.n);
        rc = ft__sb_put(&b, t.p + st, en - st);
        line++;
    }
    ft__sb_free(&t);
    if (rc) return sb_fail(r, NULL, &b);
    return pool_str(r, &b, out);
}

int ft__jfilter_apply(jrender *r, const jnode *at, int fid, jv in, const jv *args, const jstr *kw, int nargs, jv *out) {
    slots s;
    jstr str;
    jlist *items, *l;
    switch (fid) {
    case F_TRIM: case F_STRIP: {
        static const char *const p[] = {"chars", NULL};
        FT_TRY(bind(r, at, "trim", p, args, kw, nargs, &s));
        FT_TRY(ft__jr_str(r, in, &str));
        jstr chars;
        int have = s.given[0] && s.v[0].t != JV_NONE;
        if (have) { FT_TRY(need_str(r, at, "chars", s.v[0])); chars = s.v[0].u.s; }
        jstr t = do_strip(str, have ? &chars : NULL, 1, 1);
        *out = jv_str(t.p, t.n);
        return FT_OK;
    }
    case F_LENGTH:
        switch (in.t) {
        case JV_STR: *out = jv_int((int64_t)ft__jutf8_count(in.u.s.p, in.u.s.n)); return FT_OK;
        case JV_LIST: *out = jv_int(in.u.l->n); return FT_OK;
        case JV_DICT: case JV_NS: *out = jv_int(in.u.d->n); return FT_OK;
        case JV_UNDEF: *out = jv_int(0); return FT_OK;
        case JV_LOOP: *out = jv_int(in.u.loop->length); return FT_OK;
        default: return ft__jr_error(r, at, FT_ERR_INVALID, "object of type '%s' has no len()", ft__jv_typename(in));
        }
    case F_UPPER: case F_LOWER: case F_CAPITALIZE: case F_TITLE:
        FT_TRY(ft__jr_str(r, in, &str));
        return map_case(r, str, fid == F_UPPER ? CASE_UPPER : fid == F_LOWER ? CASE_LOWER : fid == F_CAPITALIZE ? CASE_CAPITALIZE : CASE_JTITLE, out);
    case F_TOJSON: {
        static const char *const p[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
        FT_TRY(bind(r, at, "tojson", p, args, kw, nargs, &s));
        int ensure = s.given[0] && ft__jv_truthy(s.v[0]), sortk = s.given[3] && ft__jv_truthy(s.v[3]);
        const char *ind = NULL, *isep = NULL, *ksep = NULL;
        size_t indn = 0;
        char spaces[256];
        if (s.given[1] && s.v[1].t != JV_NONE) {
            if (s.v[1].t == JV_STR) { ind = s.v[1].u.s.p; indn = s.v[1].u.s.n; }
            else if (s.v[1].t == JV_INT) {
                int64_t w = s.v[1].u.i < 0 ? 0 : s.v[1].u.i > 255 ? 255 : s.v[1].u.i;
                memset(spaces, ' ', (size_t)w);
                ind = spaces;
                indn = (size_t)w;
            } else return ft__jr_error(r, at, FT_ERR_INVALID, "tojson: indent must be an int or a string");
        }
        if (s.given[2] && s.v[2].t != JV_NONE) {
            jv sp = s.v[2];
            if (sp.t != JV_LIST || sp.u.l->n != 2 || sp.u.l->v[0].t != JV_STR || sp.u.l->v[1].t != JV_STR)
                return ft__jr_error(r, at, FT_ERR_INVALID, "tojson: separators must be a pair of strings");
            jstr a, b;
            FT_TRY(ft__jr_str(r, sp.u.l->v[0], &a));
            FT_TRY(ft__jr_str(r, sp.u.l->v[1], &b));
            isep = ft__jpool_strdup(ft__jr_pool(r), a.p, a.n);
            ksep = ft__jpool_strdup(ft__jr_pool(r), b.p, b.n);
            if (!isep || !ksep) return oom(r);
        }
        ft__sb b = ft__jr_sb(r);
        const char *bad = NULL;
        int rc = ft__jv_tojson(&b, in, ensure, ind, indn, isep, ksep, sortk, &bad);
        if (rc == FT_ERR_INVALID) {
            ft__sb_free(&b);
            if (in.t == JV_UNDEF) return ft__jr_error(r, at, FT_ERR_INVALID, "tojson: '%.*s' is undefined", (int)in.u.s.n, in.u.s.p ? in.u.s.p : "");
            return ft__jr_error(r, at, FT_ERR_INVALID, "tojson: object of type %s is not JSON serializable", bad ? bad : "?");
        }
        if (rc) { rc = ft__jr_fail(r, at, rc, &b); ft__sb_free(&b); return rc; }
        return pool_str(r, &b, out);
    }
    case F_DEFAULT: {
        static const char *const p[] = {"default_value", "boolean", NULL};
        FT_TRY(bind(r, at, "default", p, args, kw, nargs, &s));
        int boolean = s.given[1] && ft__jv_truthy(s.v[1]);
        if (in.t == JV_UNDEF || (boolean && !ft__jv_truthy(in))) *out = s.given[0] ? s.v[0] : jv_str("", 0);
        else *out = in;
        return FT_OK;
    }
    case F_FIRST: case F_LAST:
        if (in.t == JV_UNDEF) { *out = in; return FT_OK; }
        FT_TRY(ft__jr_iterate(r, at, in, &items));
        if (items->n == 0) *out = jv_undef();
        else *out = items->v[fid == F_FIRST ? 0 : items->n - 1];
        return FT_OK;
    case F_JOIN: {
        static const char *const p[] = {"d", "attribute", NULL};
        FT_TRY(bind(r, at, "join", p, args, kw, nargs, &s));
        jstr sep = {"", 0};
        if (s.given[0]) FT_TRY(ft__jr_str(r, s.v[0], &sep));
        FT_TRY(ft__jr_iterate(r, at, in, &items));
        ft__sb b = ft__jr_sb(r);
        int rc = FT_OK;
        for (int i = 0; i < items->n && rc == FT_OK; i++) {
            jv v = items->v[i];
            if (s.given[1] && s.v[1].t != JV_NONE) {
                FT_TRY(need_str(r, at, "attribute", s.v[1]));
                if ((rc = attr_path(r, at, v, s.v[1].u.s, &v))) break;
            }
            if ((rc = ft__jr_str(r, v, &str))) break;
            if ((i && ft__sb_put(&b, sep.p, sep.n)) || ft__sb_put(&b, str.p, str.n)) return sb_fail(r, at, &b);
        }
        if (rc) { ft__sb_free(&b); return rc; }
        return pool_str(r, &b, out);
    }
    case F_REPLACE: {
        static const char *const p[] = {"old", "new", "count", NULL};
        FT_TRY(bind(r, at, "replace", p, args, kw, nargs, &s));
        if (!s.given[0] || !s.given[1]) return ft__jr_error(r, at, FT_ERR_INVALID, "replace() needs old and new");
        jstr o, nw;
        FT_TRY(ft__jr_str(r, in, &str));
        FT_TRY(ft__jr_str(r, s.v[0], &o));
        FT_TRY(ft__jr_str(r, s.v[1], &nw));
        int64_t count = -1;
        if (s.given[2] && s.v[2].t != JV_NONE) {
            if (s.v[2].t != JV_INT) return ft__jr_error(r, at, FT_ERR_INVALID, "replace(): count must be an integer");
            count = s.v[2].u.i;
        }
        return str_replace(r, str, o, nw, count, out);
    }
    case F_STRING: case F_SAFE:
        if (fid == F_SAFE) { *out = in; return FT_OK; }
        FT_TRY(ft__jr_str(r, in, &str));
        *out = jv_str(str.p, str.n);
        return FT_OK;
    case F_LIST:
        FT_TRY(ft__jr_iterate(r, at, in, &items));
        if (!(l = ft__jlist_new(ft__jr_pool(r), items->n))) return oom(r);
        if (items->n) memcpy(l->v, items->v, sizeof(jv) * (size_t)items->n);
        l->n = items->n;
        *out = mklist(l, 0);
        return FT_OK;
    case F_ITEMS:
        if (in.t == JV_UNDEF) { if (!(l = ft__jlist_new(ft__jr_pool(r), 0))) return oom(r); *out = mklist(l, 0); return FT_OK; }
        if (in.t != JV_DICT) return ft__jr_error(r, at, FT_ERR_INVALID, "can only get item pairs from a mapping");
        if (!(l = ft__jlist_new(ft__jr_pool(r), in.u.d->n))) return oom(r);
        for (int i = 0; i < in.u.d->n; i++) {
            jlist *pair = ft__jlist_new(ft__jr_pool(r), 2);
            if (!pair) return oom(r);
            pair->v[0] = jv_str(in.u.d->k[i].p, in.u.d->k[i].n);
            pair->v[1] = in.u.d->v[i];
            pair->n = 2;
            l->v[l->n++] = mklist(pair, 1);
        }
        *out = mklist(l, 0);
        return FT_OK;
    case F_SELECTATTR: case F_REJECTATTR: case F_SELECT: case F_REJECT:
        return select_like(r, at, fid, in, args, kw, nargs, out);
    case F_MAP:
        return do_map(r, at, in, args, kw, nargs, out);
    case F_REVERSE:
        if (in.t == JV_STR) {
            ft__sb b = ft__jr_sb(r);
            size_t e = in.u.s.n;
            int32_t cp;
            while (e > 0) {
                size_t p = prev_char(in.u.s.p, 0, e, &cp);
                if (ft__sb_put(&b, in.u.s.p + p, e - p)) return sb_fail(r, NULL, &b);
                e = p;
            }
            return pool_str(r, &b, out);
        }
        FT_TRY(ft__jr_iterate(r, at, in, &items));
        if (!(l = ft__jlist_new(ft__jr_pool(r), items->n))) return oom(r);
        for (int i = items->n - 1; i >= 0; i--) l->v[l->n++] = items->v[i];
        *out = mklist(l, 0);
        return FT_OK;
    case F_UNIQUE:
        FT_TRY(ft__jr_iterate(r, at, in, &items));
        if (!(l = ft__jlist_new(ft__jr_pool(r), items->n))) return oom(r);
        for (int i = 0; i < items->n; i++) {
            int dup = 0;
            FT_TRY(ft__jr_charge(r, at, 1 + l->n));
            for (int j = 0; j < l->n && !dup; j++) {
                jv a = items->v[i], b = l->v[j];
                if (a.t == JV_STR && b.t == JV_STR) { /* case-insensitive like Jinja's default */
                    jv la, lb;
                    FT_TRY(map_case(r, a.u.s, CASE_LOWER, &la));
                    FT_TRY(map_case(r, b.u.s, CASE_LOWER, &lb));
                    dup = ft__jv_eq(la, lb);
                } else {
                    dup = ft__jv_eq(a, b);
                }
            }
            if (!dup) l->v[l->n++] = items->v[i];
        }
        *out = mklist(l, 0);
        return FT_OK;
    case F_INT: {
        static const char *const p[] = {"default", "base", NULL};
        if (in.t == JV_UNDEF) return ft__jr_error(r, at, FT_ERR_INVALID, "'%.*s' is undefined", (int)in.u.s.n, in.u.s.p ? in.u.s.p : "");
        FT_TRY(bind(r, at, "int", p, args, kw, nargs, &s));
        jv def = s.given[0] ? s.v[0] : jv_int(0);
        int base = s.given[1] && s.v[1].t == JV_INT ? (int)s.v[1].u.i : 10;
        int64_t iv;
        double fv;
        if (in.t == JV_INT || in.t == JV_BOOL) *out = jv_int(in.t == JV_INT ? in.u.i : in.u.b);
        else if (in.t == JV_FLOAT && isfinite(in.u.f) && fabs(in.u.f) < 9.2e18) *out = jv_int((int64_t)in.u.f);
        else if (in.t == JV_STR && parse_int_str(in.u.s, base, &iv)) *out = jv_int(iv);
        else if (in.t == JV_STR && parse_float_str(in.u.s, &fv) && isfinite(fv) && fabs(fv) < 9.2e18) *out = jv_int((int64_t)fv);
        else *out = def;
        return FT_OK;
    }
    case F_FLOAT: {
        static const char *const p[] = {"default", NULL};
        if (in.t == JV_UNDEF) return ft__jr_error(r, at, FT_ERR_INVALID, "'%.*s' is undefined", (int)in.u.s.n, in.u.s.p ? in.u.s.p : "");
        FT_TRY(bind(r, at, "float", p, args, kw, nargs, &s));
        double fv;
        if (in.t == JV_INT || in.t == JV_BOOL || in.t == JV_FLOAT)
            *out = jv_float(in.t == JV_FLOAT ? in.u.f : in.t == JV_INT ? (double)in.u.i : (double)in.u.b);
        else if (in.t == JV_STR && parse_float_str(in.u.s, &fv)) *out = jv_float(fv);
        else *out = s.given[0] ? s.v[0] : jv_float(0.0);
        return FT_OK;
    }
    case F_ABS:
        if (in.t == JV_INT) { if (in.u.i == INT64_MIN) return ft__jr_error(r, at, FT_ERR_RANGE, "integer overflow"); *out = jv_int(in.u.i < 0 ? -in.u.i : in.u.i); }
        else if (in.t == JV_BOOL) *out = jv_int(in.u.b);
        else if (in.t == JV_FLOAT) *out = jv_float(fabs(in.u.f));
        else return ft__jr_error(r, at, FT_ERR_INVALID, "bad operand type for abs(): '%s'", ft__jv_typename(in));
        return FT_OK;
    case F_ESCAPE: {
        FT_TRY(ft__jr_str(r, in, &str));
        ft__sb b = ft__jr_sb(r);
        int rc = FT_OK;
        for (size_t i = 0; i < str.n && rc == FT_OK; i++) {
            char c = str.p[i];
            rc = c == '&' ? ft__sb_puts(&b, "&amp;") : c == '<' ? ft__sb_puts(&b, "&lt;") : c == '>' ? ft__sb_puts(&b, "&gt;")
               : c == '"' ? ft__sb_puts(&b, "&#34;") : c == '\'' ? ft__sb_puts(&b, "&#39;") : ft__sb_putc(&b, c);
        }
        if (rc) return sb_fail(r, NULL, &b);
        return pool_str(r, &b, out);
    }
    case F_INDENT: {
        static const char *const p[] = {"width", "first", "blank", NULL};
        FT_TRY(bind(r, at, "indent", p, args, kw, nargs, &s));
        if (in.t != JV_STR) return ft__jr_error(r, at, FT_ERR_INVALID, "indent needs a string, not '%s'", ft__jv_typename(in));
        str = in.u.s;
        return do_indent(r, str, s.given[0] ? s.v[0] : jv_int(4), s.given[1] && ft__jv_truthy(s.v[1]),
                         s.given[2] && ft__jv_truthy(s.v[2]), out);
    }
    default:
        return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "unsupported filter");
    }
}

static int str_case_test(jv v, int want_upper) {
    if (v.t != JV_STR) return 0;
    int cased = 0;
    int32_t cp;
    for (size_t i = 0; i < v.u.s.n;) {
        i += (size_t)ft__utf8_next(v.u.s.p, v.u.s.n, i, &cp);
        int up, lo;
        if (!is_cased_cat(cp, &up, &lo)) continue;
        if (want_upper ? lo : up) return 0;
        cased = 1;
    }
    return cased;
}

int ft__jtest_apply(jrender *r, const jnode *at, int tid, jv v, const jv *args, int nargs, int *out) {
    int need = (tid == T_SAMEAS || tid == T_EQ || tid == T_NE || tid == T_LT || tid == T_LE || tid == T_GT ||
                tid == T_GE || tid == T_IN || tid == T_DIVISIBLEBY);
    if (need && nargs < 1) return ft__jr_error(r, at, FT_ERR_INVALID, "this test needs an argument");
    switch (tid) {
    case T_DEFINED: *out = v.t != JV_UNDEF; return FT_OK;
    case T_UNDEFINED: *out = v.t == JV_UNDEF; return FT_OK;
    case T_NONE: *out = v.t == JV_NONE; return FT_OK;
    case T_BOOLEAN: *out = v.t == JV_BOOL; return FT_OK;
    case T_TRUE_: *out = v.t == JV_BOOL && v.u.b; return FT_OK;
    case T_FALSE_: *out = v.t == JV_BOOL && !v.u.b; return FT_OK;
    case T_INTEGER: *out = v.t == JV_INT; return FT_OK;
    case T_FLOAT_: *out = v.t == JV_FLOAT; return FT_OK;
    case T_NUMBER: *out = v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; return FT_OK;
    case T_STRING_: *out = v.t == JV_STR; return FT_OK;
    case T_MAPPING: *out = v.t == JV_DICT; return FT_OK;
    case T_ITERABLE: *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF || v.t == JV_LOOP; return FT_OK;
    case T_SEQUENCE: *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF; return FT_OK;
    case T_CALLABLE: *out = v.t == JV_FUNC || v.t == JV_MACRO; return FT_OK;
    case T_ESCAPED: *out = 0; return FT_OK;
    case T_SAMEAS: {
        jv o = args[0];
        if (v.t != o.t) *out = 0;
        else if (v.t == JV_NONE || v.t == JV_UNDEF) *out = 1;
        else if (v.t == JV_BOOL) *out = v.u.b == o.u.b;
        else if (v.t == JV_INT) *out = v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256;
        else if (v.t == JV_STR) *out = v.u.s.p == o.u.s.p && v.u.s.n == o.u.s.n;
        else if (v.t == JV_LIST) *out = v.u.l == o.u.l;
        else if (v.t == JV_DICT || v.t == JV_NS) *out = v.u.d == o.u.d;
        else *out = ft__jv_eq(v, o);
        return FT_OK;
    }
    case T_EQ: return ft__jr_compare(r, at, OP_EQ, v, args[0], out);
    case T_NE: return ft__jr_compare(r, at, OP_NE, v, args[0], out);
    case T_LT: return ft__jr_compare(r, at, OP_LT, v, args[0], out);
    case T_LE: return ft__jr_compare(r, at, OP_LE, v, args[0], out);
    case T_GT: return ft__jr_compare(r, at, OP_GT, v, args[0], out);
    case T_GE: return ft__jr_compare(r, at, OP_GE, v, args[0], out);
    case T_IN: return ft__jr_compare(r, at, OP_IN, v, args[0], out);
    case T_ODD: case T_EVEN: case T_DIVISIBLEBY: {
        /* value % 2 == 1, value % 2 == 0, value % num == 0 with Python's % */
        jv d = tid == T_DIVISIBLEBY ? args[0] : jv_int(2);
        int isnum = (v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT) && (d.t == JV_INT || d.t == JV_BOOL || d.t == JV_FLOAT);
        if (!isnum) return ft__jr_error(r, at, FT_ERR_INVALID, "unsupported operand type(s) for %%: '%s' and '%s'", ft__jv_typename(v), ft__jv_typename(d));
        double x = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
        double y = d.t == JV_FLOAT ? d.u.f : d.t == JV_INT ? (double)d.u.i : d.u.b;
        if (y == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "integer division or modulo by zero");
        double m;
        if (v.t != JV_FLOAT && d.t != JV_FLOAT) {
            int64_t xi = v.t == JV_INT ? v.u.i : v.u.b, yi = d.t == JV_INT ? d.u.i : d.u.b;
            int64_t mi = yi == -1 ? 0 : xi % yi;
            if (mi != 0 && ((mi < 0) != (yi < 0))) mi += yi;
            m = (double)mi;
        } else {
            m = fmod(x, y);
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
        }
        *out = tid == T_ODD ? m == 1 : m == 0;
        return FT_OK;
    }
    case T_LOWER: case T_UPPER: {
        jstr s;
        FT_TRY(ft__jr_str(r, v, &s));
        *out = str_case_test(jv_str(s.p, s.n), tid == T_UPPER);
        return FT_OK;
    }
    case T_FILTER: case T_TEST:
        if (v.t != JV_STR) { *out = 0; return FT_OK; }
        *out = (tid == T_FILTER ? ft__jfilter_id(v.u.s.p, v.u.s.n) : ft__jtest_id(v.u.s.p, v.u.s.n)) != 0;
        return FT_OK;
    default:
        return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "unsupported test");
    }
}

static int kw_to_dict(jrender *r, const jnode *at, const char *fname, const jv *args, const jstr *kw, int nargs, int ns, jdict **out) {
    jdict *d = ft__jdict_new(ft__jr_pool(r), 4);
    if (!d) return oom(r);
    for (int k = 0; k < nargs; k++) {
        if (!kw || !kw[k].p) {
            if (k > 0 || args[k].t != JV_DICT)
                return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "%s(): only a dict or keyword arguments are supported", fname);
            for (int i = 0; i < args[k].u.d->n; i++) {
                if (ns && args[k].u.d->k[i].n && args[k].u.d->k[i].p[0] == '_')
                    return ft__jr_error(r, at, FT_ERR_INVALID, "chat templates cannot store underscore-prefixed attributes on a namespace");
                if (ft__jdict_set(ft__jr_pool(r), d, args[k].u.d->k[i], args[k].u.d->v[i])) return oom(r);
            }
            continue;
        }
        if (ns && kw[k].n && kw[k].p[0] == '_')
            return ft__jr_error(r, at, FT_ERR_INVALID, "chat templates cannot store underscore-prefixed attributes on a namespace");
        if (ft__jdict_set(ft__jr_pool(r), d, kw[k], args[k])) return oom(r);
    }
    *out = d;
    return FT_OK;
}

int ft__jfunc_call(jrender *r, const jnode *at, int fn, const jv *args, const jstr *kw, int nargs, jv *out) {
    jstr s;
    switch (fn) {
    case FN_RAISE: {
        if (nargs < 1) return ft__jr_error(r, at, FT_ERR_INVALID, "raise_exception() needs a message");
        FT_TRY(ft__jr_str(r, args[0], &s));
        return ft__jr_error(r, at, FT_ERR_INVALID, "raise_exception: %.*s", (int)s.n, s.p);
    }
    case FN_STRFTIME: {
        if (nargs != 1 || args[0].t != JV_STR) return ft__jr_error(r, at, FT_ERR_INVALID, "strftime_now() needs one format string");
        char fmt[256], buf[512];
        if (args[0].u.s.n >= sizeof fmt) return ft__jr_error(r, at, FT_ERR_RANGE, "strftime_now(): format too long");
        memcpy(fmt, args[0].u.s.p, args[0].u.s.n);
        fmt[args[0].u.s.n] = 0;
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        size_t n = strftime(buf, sizeof buf, fmt, &tmv);
        char *p = ft__jpool_strdup(ft__jr_pool(r), buf, n);
        if (!p) return oom(r);
        *out = jv_str(p, n);
        return FT_OK;
    }
    case FN_NAMESPACE: case FN_DICT: {
        jdict *d = NULL;
        FT_TRY(kw_to_dict(r, at, fn == FN_DICT ? "dict" : "namespace", args, kw, nargs, fn == FN_NAMESPACE, &d));
        *out = jv_none();
        out->t = fn == FN_DICT ? JV_DICT : JV_NS;
        out->u.d = d;
        return FT_OK;
    }
    case FN_RANGE: {
        int64_t a = 0, b = 0, st = 1;
        for (int k = 0; k < nargs; k++)
            if ((kw && kw[k].p) || (args[k].t != JV_INT && args[k].t != JV_BOOL))
                return ft__jr_error(r, at, FT_ERR_INVALID, "range() takes integer arguments");
#define IV(k) (args[k].t == JV_INT ? args[k].u.i : args[k].u.b)
        if (nargs == 1) b = IV(0);
        else if (nargs == 2 || nargs == 3) { a = IV(0); b = IV(1); if (nargs == 3) st = IV(2); }
        else return ft__jr_error(r, at, FT_ERR_INVALID, "range() takes 1 to 3 arguments");
#undef IV
        if (st == 0) return ft__jr_error(r, at, FT_ERR_INVALID, "range() arg 3 must not be zero");
        int64_t count = 0;
        if (st > 0 && a < b) count = (b - a - 1) / st + 1;
        if (st < 0 && a > b) count = (a - b - 1) / (-st) + 1;
        if (count > 100000) return ft__jr_error(r, at, FT_ERR_RANGE, "range too big (at most 100000 items)");
        jlist *l = ft__jlist_new(ft__jr_pool(r), (int)count);
        if (!l) return oom(r);
        for (int64_t k = 0; k < count; k++) l->v[l->n++] = jv_int(a + k * st);
        *out = mklist(l, 0);
        return FT_OK;
    }
    default:
        return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "unsupported function");
    }
}

#define NAME_IS(nm, lit) ((nm).n == sizeof(lit) - 1 && memcmp((nm).p, lit, (nm).n) == 0)

static int prefix_test(jrender *r, const jnode *at, jstr s, jv pre, int suffix, int *res) {
    if (pre.t == JV_LIST && pre.tuple) {
        *res = 0;
        for (int i = 0; i < pre.u.l->n && !*res; i++) FT_TRY(prefix_test(r, at, s, pre.u.l->v[i], suffix, res));
        return FT_OK;
    }
    FT_TRY(need_str(r, at, suffix ? "endswith() argument" : "startswith() argument", pre));
    jstr p = pre.u.s;
    *res = p.n <= s.n && memcmp(suffix ? s.p + s.n - p.n : s.p, p.p, p.n) == 0;
    return FT_OK;
}

int ft__jmethod_call(jrender *r, const jnode *at, jv obj, jstr name, const jv *args, const jstr *kw, int nargs,
                 jv *out, int *found) {
    slots s;
    *found = 1;
    if (obj.t == JV_STR) {
        jstr str = obj.u.s;
        if (NAME_IS(name, "strip") || NAME_IS(name, "lstrip") || NAME_IS(name, "rstrip")) {
            static const char *const p[] = {"chars", NULL};
            FT_TRY(bind(r, at, "strip", p, args, kw, nargs, &s));
            int have = s.given[0] && s.v[0].t != JV_NONE;
            if (have) FT_TRY(need_str(r, at, "strip() argument", s.v[0]));
            jstr t = do_strip(str, have ? &s.v[0].u.s : NULL, name.p[0] != 'r', name.p[0] != 'l');
            *out = jv_str(t.p, t.n);
            return FT_OK;
        }
        if (NAME_IS(name, "split") || NAME_IS(name, "rsplit")) {
            static const char *const p[] = {"sep", "maxsplit", NULL};
            FT_TRY(bind(r, at, "split", p, args, kw, nargs, &s));
            int64_t maxs = -1;
            if (s.given[1]) {
                if (s.v[1].t != JV_INT) return ft__jr_error(r, at, FT_ERR_INVALID, "split(): maxsplit must be an integer");
                maxs = s.v[1].u.i;
            }
            return str_split(r, at, str, s.given[0] ? &s.v[0] : NULL, maxs, name.p[0] == 'r', out);
        }
        if (NAME_IS(name, "startswith") || NAME_IS(name, "endswith")) {
            if (nargs != 1 || (kw && kw[0].p)) return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "%.*s() with start/end arguments is not supported", (int)name.n, name.p);
            int res;
            FT_TRY(prefix_test(r, at, str, args[0], name.p[0] == 'e', &res));
            *out = jv_bool(res);
            return FT_OK;
        }
        if (NAME_IS(name, "upper") || NAME_IS(name, "lower") || NAME_IS(name, "title") || NAME_IS(name, "capitalize")) {
            if (nargs) return ft__jr_error(r, at, FT_ERR_INVALID, "%.*s() takes no arguments", (int)name.n, name.p);
            return map_case(r, str, name.p[0] == 'u' ? CASE_UPPER : name.p[0] == 'l' ? CASE_LOWER : name.p[0] == 't' ? CASE_PYTITLE : CASE_CAPITALIZE, out);
        }
        if (NAME_IS(name, "replace")) {
            if (nargs < 2 || nargs > 3 || (kw && (kw[0].p || kw[1].p))) return ft__jr_error(r, at, FT_ERR_INVALID, "replace() takes 2 or 3 positional arguments");
            FT_TRY(need_str(r, at, "replace() argument", args[0]));
            FT_TRY(need_str(r, at, "replace() argument", args[1]));
            int64_t count = -1;
            if (nargs == 3) {
                if (args[2].t != JV_INT) return ft__jr_error(r, at, FT_ERR_INVALID, "replace(): count must be an integer");
                count = args[2].u.i;
            }
            return str_replace(r, str, args[0].u.s, args[1].u.s, count, out);
        }
        if (NAME_IS(name, "find") || NAME_IS(name, "count")) {
            if (nargs != 1) return ft__jr_error(r, at, FT_ERR_UNSUPPORTED, "%.*s() with start/end arguments is not supported", (int)name.n, name.p);
            FT_TRY(need_str(r, at, "argument", args[0]));
            jstr sub = args[0].u.s;
            if (name.p[0] == 'f') {
                const char *hit = sub.n == 0 ? str.p : memmem(str.p, str.n, sub.p, sub.n);
                *out = jv_int(hit ? (int64_t)ft__jutf8_count(str.p, (size_t)(hit - str.p)) : -1);
            } else {
                int64_t c = 0;
                if (sub.n == 0) c = (int64_t)ft__jutf8_count(str.p, str.n) + 1;
                else
                    for (size_t i = 0;;) {
                        const char *hit;
                        FT_TRY(find_next(r, at, str.p, str.n, i, sub.p, sub.n, &hit));
                        if (!hit) break;
                        c++;
                        i = (size_t)(hit - str.p) + sub.n;
                    }
                *out = jv_int(c);
            }
            return FT_OK;
        }
        if (NAME_IS(name, "join")) {
            if (nargs != 1) return ft__jr_error(r, at, FT_ERR_INVALID, "join() takes exactly one argument");
            jlist *items;
            FT_TRY(ft__jr_iterate(r, at, args[0], &items));
            ft__sb b = ft__jr_sb(r);
            for (int i = 0; i < items->n; i++) {
                if (items->v[i].t != JV_STR) {
                    ft__sb_free(&b);
                    return ft__jr_error(r, at, FT_ERR_INVALID, "sequence item %d: expected str instance, %s found", i, ft__jv_typename(items->v[i]));
                }
                if ((i && ft__sb_put(&b, str.p, str.n)) || ft__sb_put(&b, items->v[i].u.s.p, items->v[i].u.s.n)) return sb_fail(r, NULL, &b);
            }
            return pool_str(r, &b, out);
        }
    } else if (obj.t == JV_DICT) {
        if (NAME_IS(name, "items") || NAME_IS(name, "keys") || NAME_IS(name, "values")) {
            if (nargs) return ft__jr_error(r, at, FT_ERR_INVALID, "%.*s() takes no arguments", (int)name.n, name.p);
            jlist *l = ft__jlist_new(ft__jr_pool(r), obj.u.d->n);
            if (!l) return oom(r);
            for (int i = 0; i < obj.u.d->n; i++) {
                jv k = jv_str(obj.u.d->k[i].p, obj.u.d->k[i].n);
                if (name.p[0] == 'k') l->v[l->n++] = k;
                else if (name.p[0] == 'v') l->v[l->n++] = obj.u.d->v[i];
                else {
                    jlist *pair = ft__jlist_new(ft__jr_pool(r), 2);
                    if (!pair) return oom(r);
                    pair->v[0] = k;
                    pair->v[1] = obj.u.d->v[i];
                    pair->n = 2;
                    l->v[l->n++] = mklist(pair, 1);
                }
            }
            *out = mklist(l, 0);
            return FT_OK;
        }
        if (NAME_IS(name, "get")) {
            if (nargs < 1 || nargs > 2) return ft__jr_error(r, at, FT_ERR_INVALID, "get() takes 1 or 2 arguments");
            jv *v = args[0].t == JV_STR ? ft__jdict_get(obj.u.d, args[0].u.s.p, args[0].u.s.n) : NULL;
            *out = v ? *v : nargs == 2 ? args[1] : jv_none();
            return FT_OK;
        }
    } else if (obj.t == JV_LIST && (NAME_IS(name, "count") || NAME_IS(name, "index"))) {
        if (nargs != 1) return ft__jr_error(r, at, FT_ERR_INVALID, "%.*s() takes exactly one argument", (int)name.n, name.p);
        int64_t c = 0, first = -1;
        FT_TRY(ft__jr_charge(r, at, obj.u.l->n));
        for (int i = 0; i < obj.u.l->n; i++)
            if (ft__jv_eq(obj.u.l->v[i], args[0])) { c++; if (first < 0) first = i; }
        if (name.p[0] == 'i' && first < 0) return ft__jr_error(r, at, FT_ERR_INVALID, "value is not in list");
        *out = jv_int(name.p[0] == 'c' ? c : first);
        return FT_OK;
    } else if (obj.t == JV_LOOP && NAME_IS(name, "cycle")) {
        if (nargs < 1) return ft__jr_error(r, at, FT_ERR_INVALID, "no items for cycling given");
        *out = args[obj.u.loop->index0 % nargs];
        return FT_OK;
    }
    if (obj.t == JV_LIST || obj.t == JV_DICT) {
        static const char *const mut[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                          "update", "setdefault", "popitem", NULL};
        for (int i = 0; mut[i]; i++)
            if (strlen(mut[i]) == name.n && memcmp(mut[i], name.p, name.n) == 0)
                return ft__jr_error(r, at, FT_ERR_INVALID, "access to attribute '%s' of '%s' object is unsafe (templates cannot modify values)",
                                mut[i], ft__jv_typename(obj));
    }
    *found = 0;
    return FT_OK;
}
