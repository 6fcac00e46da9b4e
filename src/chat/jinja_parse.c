/* jinja_parse.c — tokens -> AST, following jinja2/parser.py's grammar and precedence:
 *   expr    := or ('if' or ('else' expr)?)*            (conditional expression)
 *   or      := and ('or' and)*        and := not ('and' not)*       not := 'not' not | compare
 *   compare := math1 (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not' 'in') math1)*
 *   math1   := concat (('+'|'-') concat)*                concat := math2 ('~' math2)*
 *   math2   := pow (('*'|'/'|'//'|'%') pow)*             pow := unary ('**' unary)*
 *   unary   := ('-'|'+') unary | primary postfix* (('|' filter) | ('is' test) | call)*
 * Statements: if/elif/else, for (with inline if, else, tuple targets), set (name, tuple, ns.attr, block),
 * break/continue, macro, print, and transformers' {% generation %}. Unknown filters and tests are
 * rejected here, with their position, like jinja2 does when it compiles a template. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "finetune/status.h"

typedef struct ps {
    jtemplate *t;
    jtok *tk;
    int nt, i;
    int symcap;
    int loop_depth;
    int depth;      /* nesting of expressions and blocks: bounded so that hostile input cannot exhaust the stack */
} ps;

#define MAX_DEPTH 500

/* one more level of nesting (a nested construct, or one more link of an operator / filter chain, which
 * also nests in the tree); fails past MAX_DEPTH */
static int deeper(ps *P, int *added);

static jtok *cur(ps *P) { return &P->tk[P->i]; }
static jtok *peek(ps *P, int k) { return &P->tk[P->i + k < P->nt ? P->i + k : P->nt - 1]; }
static int name_is(const jtok *t, const char *name) {
    return t->type == T_NAME && t->s.n == strlen(name) && memcmp(t->s.p, name, t->s.n) == 0;
}
static int op_is(const jtok *t, int op) { return t->type == T_OP && t->op == op; }

static int perr(ps *P, int pos, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int perr(ps *P, int pos, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = ft__jsrc_verror(P->t->src, P->t->len, pos, status, fmt, ap);
    va_end(ap);
    return rc;
}

static int deeper(ps *P, int *added) {
    (*added)++;
    if (++P->depth > MAX_DEPTH) return perr(P, P->tk[P->i].pos, FT_ERR_UNSUPPORTED, "expression or blocks nested too deeply");
    return FT_OK;
}

static const char *describe(const jtok *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_TEXT: return "template data";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "end of print statement";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "end of statement block";
    case T_EOF: return "end of template";
    default:
        snprintf(buf, cap, "'%.*s'", (int)(t->s.n > 40 ? 40 : t->s.n), t->s.p ? t->s.p : "");
        return buf;
    }
}

static int unexpected(ps *P, const char *expected) {
    char b[64];
    jtok *t = cur(P);
    if (expected) return perr(P, t->pos, FT_ERR_FORMAT, "expected %s, got %s", expected, describe(t, b, sizeof b));
    return perr(P, t->pos, FT_ERR_FORMAT, "unexpected %s", describe(t, b, sizeof b));
}

static int nomem(void) { return ft_error(FT_ERR_NOMEM, "chat template: out of memory"); }

static jnode *mk(ps *P, int kind, int pos) {
    jnode *n = ft__jpool_alloc(&P->t->pool, sizeof *n);
    if (n) { n->kind = (uint8_t)kind; n->pos = pos; }
    return n;
}

static int intern(ps *P, jstr name) {
    jtemplate *t = P->t;
    for (int i = 0; i < t->nsyms; i++)
        if (strlen(t->syms[i]) == name.n && memcmp(t->syms[i], name.p, name.n) == 0) return i;
    if (t->nsyms == P->symcap) {
        int cap = P->symcap ? P->symcap * 2 : 32;
        char **s = ft__jpool_alloc(&t->pool, sizeof(char *) * (size_t)cap);
        if (!s) return -1;
        if (t->nsyms) memcpy(s, t->syms, sizeof(char *) * (size_t)t->nsyms);
        t->syms = s;
        P->symcap = cap;
    }
    char *c = ft__jpool_strdup(&t->pool, name.p, name.n);
    if (!c) return -1;
    t->syms[t->nsyms] = c;
    return t->nsyms++;
}

static int expect_op(ps *P, int op, const char *what) {
    if (!op_is(cur(P), op)) return unexpected(P, what);
    P->i++;
    return FT_OK;
}

static int expect_block_end(ps *P) {
    if (cur(P)->type != T_BLOCK_END) return unexpected(P, "end of statement block");
    P->i++;
    return FT_OK;
}

static int parse_expr(ps *P, int with_cond, jnode **out);
static int parse_unary(ps *P, int with_filter, jnode **out);
static int parse_or(ps *P, jnode **out);

/* growable argument vector while parsing */
typedef struct argv_ { jnode **a; jstr *kw; int n, cap; } argv_;
static int argv_push(ps *P, argv_ *v, jnode *e, jstr kw) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        jnode **a = ft__jpool_alloc(&P->t->pool, sizeof(jnode *) * (size_t)cap);
        jstr *k = ft__jpool_alloc(&P->t->pool, sizeof(jstr) * (size_t)cap);
        if (!a || !k) return nomem();
        if (v->n) { memcpy(a, v->a, sizeof(jnode *) * (size_t)v->n); memcpy(k, v->kw, sizeof(jstr) * (size_t)v->n); }
        v->a = a; v->kw = k; v->cap = cap;
    }
    v->a[v->n] = e;
    v->kw[v->n] = kw;
    v->n++;
    return FT_OK;
}

static int is_tuple_end(ps *P, const char *extra) {
    jtok *t = cur(P);
    if (t->type == T_VAR_END || t->type == T_BLOCK_END || op_is(t, OP_RPAREN) || t->type == T_EOF) return 1;
    return extra && name_is(t, extra);
}

static int parse_tuple(ps *P, int with_cond, const char *extra_end, int explicit_paren, jnode **out) {
    int pos = cur(P)->pos, is_tuple = 0;
    argv_ v = {0};
    for (;;) {
        if (v.n) FT_TRY(expect_op(P, OP_COMMA, "','"));
        if (is_tuple_end(P, extra_end)) break;
        jnode *e = NULL;
        FT_TRY(parse_expr(P, with_cond, &e));
        FT_TRY(argv_push(P, &v, e, (jstr){0}));
        if (op_is(cur(P), OP_COMMA)) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (v.n) { *out = v.a[0]; return FT_OK; }
        if (!explicit_paren) return unexpected(P, "an expression");
    }
    jnode *n = mk(P, N_TUPLE, pos);
    if (!n) return nomem();
    n->args = v.a;
    n->nargs = v.n;
    *out = n;
    return FT_OK;
}

static int parse_call_args(ps *P, argv_ *v) {
    FT_TRY(expect_op(P, OP_LPAREN, "'('"));
    while (!op_is(cur(P), OP_RPAREN)) {
        if (v->n) {
            FT_TRY(expect_op(P, OP_COMMA, "','"));
            if (op_is(cur(P), OP_RPAREN)) break;
        }
        jtok *t = cur(P);
        if (op_is(t, OP_MUL) || op_is(t, OP_POW))
            return perr(P, t->pos, FT_ERR_UNSUPPORTED, "*args and **kwargs in calls are not supported");
        jstr kw = {0};
        if (t->type == T_NAME && op_is(peek(P, 1), OP_ASSIGN)) {
            kw = t->s;
            P->i += 2;
        } else {
            for (int k = 0; k < v->n; k++)
                if (v->kw[k].p) return perr(P, t->pos, FT_ERR_FORMAT, "positional argument after keyword argument");
        }
        jnode *e = NULL;
        FT_TRY(parse_expr(P, 1, &e));
        FT_TRY(argv_push(P, v, e, kw));
    }
    P->i++;
    return FT_OK;
}

static int parse_call(ps *P, jnode *callee, jnode **out) {
    int pos = cur(P)->pos;
    argv_ v = {0};
    FT_TRY(parse_call_args(P, &v));
    jnode *n = mk(P, N_CALL, pos);
    if (!n) return nomem();
    if (callee->kind == N_GETATTR) { /* obj.name(...) : a method call */
        n->kind = N_METHOD;
        n->a = callee->a;
        n->s = callee->s;
        n->pos = callee->pos;
    } else {
        n->a = callee;
    }
    n->args = v.a;
    n->kw = v.kw;
    n->nargs = v.n;
    *out = n;
    return FT_OK;
}

static int parse_subscribed(ps *P, jnode **out) {
    int pos = cur(P)->pos;
    jnode *parts[3] = {NULL, NULL, NULL};
    if (op_is(cur(P), OP_COLON)) {
        P->i++;
    } else {
        FT_TRY(parse_expr(P, 1, &parts[0]));
        if (!op_is(cur(P), OP_COLON)) { *out = parts[0]; return FT_OK; }
        P->i++;
    }
    if (!op_is(cur(P), OP_COLON) && !op_is(cur(P), OP_RBRACKET) && !op_is(cur(P), OP_COMMA))
        FT_TRY(parse_expr(P, 1, &parts[1]));
    if (op_is(cur(P), OP_COLON)) {
        P->i++;
        if (!op_is(cur(P), OP_RBRACKET) && !op_is(cur(P), OP_COMMA)) FT_TRY(parse_expr(P, 1, &parts[2]));
    }
    jnode *n = mk(P, N_SLICE, pos);
    if (!n) return nomem();
    n->b = parts[0];
    n->c = parts[1];
    n->args = ft__jpool_alloc(&P->t->pool, sizeof(jnode *));
    if (!n->args) return nomem();
    n->args[0] = parts[2];
    n->nargs = 1;
    *out = n;
    return FT_OK;
}

static int parse_postfix(ps *P, jnode *node, jnode **out) {
    int added = 0;
    for (;;) {
        FT_TRY(deeper(P, &added));
        jtok *t = cur(P);
        if (op_is(t, OP_DOT)) {
            P->i++;
            jtok *a = cur(P);
            if (a->type == T_NAME) {
                jnode *n = mk(P, N_GETATTR, t->pos);
                if (!n) return nomem();
                n->a = node;
                n->s = a->s;
                P->i++;
                node = n;
            } else if (a->type == T_INT) {
                jnode *k = mk(P, N_LIT, a->pos), *n = mk(P, N_GETITEM, t->pos);
                if (!k || !n) return nomem();
                k->lit = jv_int(a->i);
                n->a = node;
                n->b = k;
                P->i++;
                node = n;
            } else {
                return unexpected(P, "name or number");
            }
        } else if (op_is(t, OP_LBRACKET)) {
            P->i++;
            argv_ v = {0};
            while (!op_is(cur(P), OP_RBRACKET)) {
                if (v.n) FT_TRY(expect_op(P, OP_COMMA, "','"));
                jnode *e = NULL;
                FT_TRY(parse_subscribed(P, &e));
                FT_TRY(argv_push(P, &v, e, (jstr){0}));
            }
            P->i++;
            if (v.n == 0) return perr(P, t->pos, FT_ERR_FORMAT, "expected subscript expression");
            jnode *key = v.a[0];
            if (v.n > 1) {
                /* x[a:b, c]: a tuple holding a slice object — Python's extended slicing, which no chat template
                 * uses and the subset has no value for */
                for (int i = 0; i < v.n; i++)
                    if (v.a[i]->kind == N_SLICE)
                        return perr(P, t->pos, FT_ERR_UNSUPPORTED, "a slice inside a tuple subscript (x[a:b, c]) is not supported");
                key = mk(P, N_TUPLE, t->pos);
                if (!key) return nomem();
                key->args = v.a;
                key->nargs = v.n;
            }
            if (key->kind == N_SLICE) {
                key->a = node;
                node = key;
            } else {
                jnode *n = mk(P, N_GETITEM, t->pos);
                if (!n) return nomem();
                n->a = node;
                n->b = key;
                node = n;
            }
        } else if (op_is(t, OP_LPAREN)) {
            FT_TRY(parse_call(P, node, &node));
        } else {
            break;
        }
    }
    P->depth -= added;
    *out = node;
    return FT_OK;
}

static int parse_primary(ps *P, jnode **out) {
    jtok *t = cur(P);
    jnode *n;
    if (t->type == T_NAME) {
        P->i++;
        n = mk(P, N_LIT, t->pos);
        if (!n) return nomem();
        if (name_is(t, "true") || name_is(t, "True")) n->lit = jv_bool(1);
        else if (name_is(t, "false") || name_is(t, "False")) n->lit = jv_bool(0);
        else if (name_is(t, "none") || name_is(t, "None")) n->lit = jv_none();
        else {
            n->kind = N_NAME;
            n->s = t->s;
            if ((n->sym = intern(P, t->s)) < 0) return nomem();
        }
    } else if (t->type == T_STRING) {
        n = mk(P, N_LIT, t->pos);
        if (!n) return nomem();
        if (peek(P, 1)->type != T_STRING) {
            n->lit = jv_str(t->s.p, t->s.n);
            P->i++;
        } else {
            ft__sb b = {0};
            int rc = FT_OK;
            while (cur(P)->type == T_STRING && rc == FT_OK) { rc = ft__sb_put(&b, cur(P)->s.p, cur(P)->s.n); P->i++; }
            char *s = rc ? NULL : ft__jpool_strdup(&P->t->pool, b.p ? b.p : "", b.n);
            size_t sn = b.n;
            ft__sb_free(&b);
            if (!s) return nomem();
            n->lit = jv_str(s, sn);
        }
    } else if (t->type == T_INT || t->type == T_FLOAT) {
        n = mk(P, N_LIT, t->pos);
        if (!n) return nomem();
        n->lit = t->type == T_INT ? jv_int(t->i) : jv_float(t->f);
        P->i++;
    } else if (op_is(t, OP_LPAREN)) {
        P->i++;
        FT_TRY(parse_tuple(P, 1, NULL, 1, &n));
        FT_TRY(expect_op(P, OP_RPAREN, "')'"));
    } else if (op_is(t, OP_LBRACKET) || op_is(t, OP_LBRACE)) {
        int dict = op_is(t, OP_LBRACE), close = dict ? OP_RBRACE : OP_RBRACKET;
        P->i++;
        argv_ v = {0};
        while (!op_is(cur(P), close)) {
            if (v.n) {
                FT_TRY(expect_op(P, OP_COMMA, "','"));
                if (op_is(cur(P), close)) break;
            }
            jnode *e = NULL;
            FT_TRY(parse_expr(P, 1, &e));
            FT_TRY(argv_push(P, &v, e, (jstr){0}));
            if (dict) {
                FT_TRY(expect_op(P, OP_COLON, "':'"));
                FT_TRY(parse_expr(P, 1, &e));
                FT_TRY(argv_push(P, &v, e, (jstr){0}));
            }
        }
        P->i++;
        n = mk(P, dict ? N_DICT : N_LIST, t->pos);
        if (!n) return nomem();
        n->args = v.a;
        n->nargs = v.n;
    } else {
        return unexpected(P, NULL);
    }
    *out = n;
    return FT_OK;
}

static int parse_filter_expr(ps *P, jnode *node, jnode **out) {
    int added = 0;
    for (;;) {
        FT_TRY(deeper(P, &added));
        jtok *t = cur(P);
        if (op_is(t, OP_PIPE)) {
            P->i++;
            jtok *nm = cur(P);
            if (nm->type != T_NAME) return unexpected(P, "filter name");
            int fid = ft__jfilter_id(nm->s.p, nm->s.n);
            if (!fid) return perr(P, nm->pos, FT_ERR_UNSUPPORTED, "unknown or unsupported filter '%.*s'", (int)nm->s.n, nm->s.p);
            P->i++;
            jnode *n = mk(P, N_FILTER, nm->pos);
            if (!n) return nomem();
            n->a = node;
            n->s = nm->s;
            n->fid = fid;
            if (op_is(cur(P), OP_LPAREN)) {
                argv_ v = {0};
                FT_TRY(parse_call_args(P, &v));
                n->args = v.a;
                n->kw = v.kw;
                n->nargs = v.n;
            }
            node = n;
        } else if (name_is(t, "is")) {
            P->i++;
            int neg = 0;
            if (name_is(cur(P), "not")) { neg = 1; P->i++; }
            jtok *nm = cur(P);
            if (nm->type != T_NAME) return unexpected(P, "test name");
            int tid = ft__jtest_id(nm->s.p, nm->s.n);
            if (!tid) return perr(P, nm->pos, FT_ERR_UNSUPPORTED, "unknown or unsupported test '%.*s'", (int)nm->s.n, nm->s.p);
            P->i++;
            jnode *n = mk(P, N_TEST, nm->pos);
            if (!n) return nomem();
            n->a = node;
            n->s = nm->s;
            n->fid = tid;
            n->neg = (uint8_t)neg;
            jtok *a = cur(P);
            if (op_is(a, OP_LPAREN)) {
                argv_ v = {0};
                FT_TRY(parse_call_args(P, &v));
                n->args = v.a;
                n->kw = v.kw;
                n->nargs = v.n;
            } else if ((a->type == T_NAME && !name_is(a, "else") && !name_is(a, "or") && !name_is(a, "and")) ||
                       a->type == T_STRING || a->type == T_INT || a->type == T_FLOAT || op_is(a, OP_LBRACKET) ||
                       op_is(a, OP_LBRACE)) {
                if (name_is(a, "is")) return perr(P, a->pos, FT_ERR_FORMAT, "you cannot chain multiple tests with is");
                jnode *arg;
                FT_TRY(parse_primary(P, &arg));
                FT_TRY(parse_postfix(P, arg, &arg));
                n->args = ft__jpool_alloc(&P->t->pool, sizeof(jnode *));
                if (!n->args) return nomem();
                n->args[0] = arg;
                n->nargs = 1;
            }
            node = n;
        } else if (op_is(t, OP_LPAREN)) {
            FT_TRY(parse_call(P, node, &node));
        } else {
            break;
        }
    }
    P->depth -= added;
    *out = node;
    return FT_OK;
}

static int parse_unary_(ps *P, int with_filter, jnode **out);
static int parse_unary(ps *P, int with_filter, jnode **out) {
    if (++P->depth > MAX_DEPTH) return perr(P, cur(P)->pos, FT_ERR_UNSUPPORTED, "expression nested too deeply");
    int rc = parse_unary_(P, with_filter, out);
    P->depth--;
    return rc;
}

static int parse_unary_(ps *P, int with_filter, jnode **out) {
    jtok *t = cur(P);
    jnode *node;
    if (op_is(t, OP_SUB) || op_is(t, OP_ADD)) {
        P->i++;
        node = mk(P, op_is(t, OP_SUB) ? N_NEG : N_POS, t->pos);
        if (!node) return nomem();
        FT_TRY(parse_unary(P, 0, &node->a));
    } else {
        FT_TRY(parse_primary(P, &node));
    }
    FT_TRY(parse_postfix(P, node, &node));
    if (with_filter) FT_TRY(parse_filter_expr(P, node, &node));
    *out = node;
    return FT_OK;
}

static int binop(ps *P, int op, int pos, jnode *a, jnode *b, jnode **out) {
    jnode *n = mk(P, N_BIN, pos);
    if (!n) return nomem();
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    *out = n;
    return FT_OK;
}

static int parse_pow(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL, *b = NULL;
    FT_TRY(parse_unary(P, 1, &a));
    while (op_is(cur(P), OP_POW)) {
        FT_TRY(deeper(P, &added));
        int pos = cur(P)->pos;
        P->i++;
        FT_TRY(parse_unary(P, 1, &b));
        FT_TRY(binop(P, OP_POW, pos, a, b, &a));
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_math2(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL, *b = NULL;
    FT_TRY(parse_pow(P, &a));
    for (;;) {
        FT_TRY(deeper(P, &added));
        jtok *t = cur(P);
        if (!(op_is(t, OP_MUL) || op_is(t, OP_DIV) || op_is(t, OP_FLOORDIV) || op_is(t, OP_MOD))) break;
        P->i++;
        FT_TRY(parse_pow(P, &b));
        FT_TRY(binop(P, t->op, t->pos, a, b, &a));
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_concat(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL, *b = NULL;
    FT_TRY(parse_math2(P, &a));
    while (op_is(cur(P), OP_TILDE)) {
        FT_TRY(deeper(P, &added));
        int pos = cur(P)->pos;
        P->i++;
        FT_TRY(parse_math2(P, &b));
        FT_TRY(binop(P, OP_TILDE, pos, a, b, &a));
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_math1(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL, *b = NULL;
    FT_TRY(parse_concat(P, &a));
    for (;;) {
        FT_TRY(deeper(P, &added));
        jtok *t = cur(P);
        if (!(op_is(t, OP_ADD) || op_is(t, OP_SUB))) break;
        P->i++;
        FT_TRY(parse_concat(P, &b));
        FT_TRY(binop(P, t->op, t->pos, a, b, &a));
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_compare(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL, *result = NULL;
    FT_TRY(parse_math1(P, &a));
    for (;;) {
        FT_TRY(deeper(P, &added));
        jtok *t = cur(P);
        int op = 0, pos = t->pos;
        if (t->type == T_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE ||
                                t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            P->i++;
        } else if (name_is(t, "in")) {
            op = OP_IN;
            P->i++;
        } else if (name_is(t, "not") && name_is(peek(P, 1), "in")) {
            op = OP_NOTIN;
            P->i += 2;
        } else {
            break;
        }
        jnode *b = NULL, *cmp = NULL;
        FT_TRY(parse_math1(P, &b));
        FT_TRY(binop(P, op, pos, a, b, &cmp));
        if (!result) {
            result = cmp;
        } else { /* a < b < c  ==  (a < b) and (b < c) */
            jnode *n = mk(P, N_AND, pos);
            if (!n) return nomem();
            n->a = result;
            n->b = cmp;
            result = n;
        }
        a = b;
    }
    P->depth -= added;
    *out = result ? result : a;
    return FT_OK;
}

static int parse_not(ps *P, jnode **out) {
    jtok *t = cur(P);
    if (name_is(t, "not")) {
        P->i++;
        jnode *n = mk(P, N_NOT, t->pos);
        if (!n) return nomem();
        if (++P->depth > MAX_DEPTH) return perr(P, t->pos, FT_ERR_UNSUPPORTED, "expression nested too deeply");
        FT_TRY(parse_not(P, &n->a));
        P->depth--;
        *out = n;
        return FT_OK;
    }
    return parse_compare(P, out);
}

static int parse_and(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL;
    FT_TRY(parse_not(P, &a));
    while (name_is(cur(P), "and")) {
        FT_TRY(deeper(P, &added));
        jnode *n = mk(P, N_AND, cur(P)->pos);
        if (!n) return nomem();
        P->i++;
        n->a = a;
        FT_TRY(parse_not(P, &n->b));
        a = n;
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_or(ps *P, jnode **out) {
    int added = 0;
    jnode *a = NULL;
    FT_TRY(parse_and(P, &a));
    while (name_is(cur(P), "or")) {
        FT_TRY(deeper(P, &added));
        jnode *n = mk(P, N_OR, cur(P)->pos);
        if (!n) return nomem();
        P->i++;
        n->a = a;
        FT_TRY(parse_and(P, &n->b));
        a = n;
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

static int parse_expr(ps *P, int with_cond, jnode **out) {
    int added = 0;
    jnode *a = NULL;
    FT_TRY(parse_or(P, &a));
    if (with_cond) {
        while (name_is(cur(P), "if")) {
        FT_TRY(deeper(P, &added));
            jnode *n = mk(P, N_COND, cur(P)->pos);
            if (!n) return nomem();
            P->i++;
            n->b = a;
            FT_TRY(parse_or(P, &n->a));
            if (name_is(cur(P), "else")) {
                P->i++;
                FT_TRY(parse_expr(P, 1, &n->c));
            }
            a = n;
        }
    }
    P->depth -= added;
    *out = a;
    return FT_OK;
}

/* ---- statements ---- */
static int parse_body(ps *P, const char *const *enders, int open_pos, const char *open_name, jnode **out, int *which);

/* NAME (',' NAME)* or '(' ... ')' : targets of for / set */
static int parse_targets(ps *P, const char *end_name, int **syms, int *n) {
    int cap = 4, paren = 0;
    *syms = ft__jpool_alloc(&P->t->pool, sizeof(int) * (size_t)cap);
    if (!*syms) return nomem();
    *n = 0;
    if (op_is(cur(P), OP_LPAREN)) { paren = 1; P->i++; }
    for (;;) {
        jtok *t = cur(P);
        if (t->type != T_NAME || name_is(t, end_name)) return unexpected(P, "a variable name");
        if (*n == cap) {
            int *s = ft__jpool_alloc(&P->t->pool, sizeof(int) * (size_t)cap * 2);
            if (!s) return nomem();
            memcpy(s, *syms, sizeof(int) * (size_t)cap);
            *syms = s;
            cap *= 2;
        }
        if (((*syms)[(*n)++] = intern(P, t->s)) < 0) return nomem();
        P->i++;
        if (!op_is(cur(P), OP_COMMA)) break;
        P->i++;
        if (paren && op_is(cur(P), OP_RPAREN)) break;
        if (!paren && (name_is(cur(P), end_name) || op_is(cur(P), OP_ASSIGN))) break;
    }
    if (paren) FT_TRY(expect_op(P, OP_RPAREN, "')'"));
    return FT_OK;
}

static int parse_if(ps *P, jnode *node) {
    static const char *const enders[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    int added = 0; /* each elif nests one more If node */
    for (;;) {
        FT_TRY(parse_tuple(P, 0, NULL, 0, &node->a));
        FT_TRY(expect_block_end(P));
        int which;
        FT_TRY(parse_body(P, enders, node->pos, "if", &node->body, &which));
        P->i++;
        if (which == 0) {
            FT_TRY(deeper(P, &added));
            jnode *n = mk(P, N_IF, cur(P)->pos);
            if (!n) return nomem();
            node->orelse = n;
            node = n;
            continue;
        }
        if (which == 1) {
            FT_TRY(expect_block_end(P));
            FT_TRY(parse_body(P, endif, node->pos, "if", &node->orelse, &which));
            P->i++;
        }
        P->depth -= added;
        return expect_block_end(P);
    }
}

static int parse_for(ps *P, jnode *node) {
    static const char *const enders[] = {"else", "endfor", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    FT_TRY(parse_targets(P, "in", &node->syms, &node->nsyms));
    if (!name_is(cur(P), "in")) return unexpected(P, "'in'");
    P->i++;
    FT_TRY(parse_tuple(P, 0, "recursive", 0, &node->a));
    if (name_is(cur(P), "if")) {
        P->i++;
        FT_TRY(parse_expr(P, 1, &node->b));
    }
    if (name_is(cur(P), "recursive"))
        return perr(P, cur(P)->pos, FT_ERR_UNSUPPORTED, "recursive for loops are not supported");
    FT_TRY(expect_block_end(P));
    int which;
    P->loop_depth++;
    FT_TRY(parse_body(P, enders, node->pos, "for", &node->body, &which));
    P->loop_depth--;
    P->i++;
    if (which == 0) {
        FT_TRY(expect_block_end(P));
        FT_TRY(parse_body(P, endfor, node->pos, "for", &node->orelse, &which));
        P->i++;
    }
    return expect_block_end(P);
}

static int parse_set(ps *P, jnode *node) {
    static const char *const endset[] = {"endset", NULL};
    jtok *t = cur(P);
    if (t->type == T_NAME && op_is(peek(P, 1), OP_DOT)) {
        jtok *attr = peek(P, 2);
        if (attr->type != T_NAME) { P->i += 2; return unexpected(P, "attribute name"); }
        node->kind = N_SET_ATTR;
        if ((node->sym = intern(P, t->s)) < 0) return nomem();
        node->s = attr->s;
        P->i += 3;
        if (!op_is(cur(P), OP_ASSIGN)) return unexpected(P, "'='");
        P->i++;
        FT_TRY(parse_tuple(P, 1, NULL, 0, &node->a));
        return expect_block_end(P);
    }
    FT_TRY(parse_targets(P, "", &node->syms, &node->nsyms));
    if (op_is(cur(P), OP_ASSIGN)) {
        P->i++;
        FT_TRY(parse_tuple(P, 1, NULL, 0, &node->a));
        return expect_block_end(P);
    }
    if (op_is(cur(P), OP_PIPE)) return perr(P, cur(P)->pos, FT_ERR_UNSUPPORTED, "filtered block assignments are not supported");
    if (node->nsyms != 1) return unexpected(P, "'='");
    node->kind = N_SET_BLOCK;
    FT_TRY(expect_block_end(P));
    int which;
    FT_TRY(parse_body(P, endset, node->pos, "set", &node->body, &which));
    P->i++;
    return expect_block_end(P);
}

static int parse_macro(ps *P, jnode *node) {
    static const char *const endmacro[] = {"endmacro", NULL};
    jtok *nm = cur(P);
    if (nm->type != T_NAME) return unexpected(P, "macro name");
    if ((node->sym = intern(P, nm->s)) < 0) return nomem();
    node->s = nm->s;
    P->i++;
    FT_TRY(expect_op(P, OP_LPAREN, "'('"));
    argv_ v = {0};
    while (!op_is(cur(P), OP_RPAREN)) {
        if (v.n) FT_TRY(expect_op(P, OP_COMMA, "','"));
        jtok *p = cur(P);
        if (p->type != T_NAME) return unexpected(P, "parameter name");
        P->i++;
        jnode *def = NULL;
        if (op_is(cur(P), OP_ASSIGN)) {
            P->i++;
            FT_TRY(parse_expr(P, 1, &def));
        } else {
            for (int k = 0; k < v.n; k++)
                if (v.a[k]) return perr(P, p->pos, FT_ERR_FORMAT, "non-default argument follows default argument");
        }
        FT_TRY(argv_push(P, &v, def, p->s));
    }
    P->i++;
    node->args = v.a;
    node->kw = v.kw;
    node->nargs = v.n;
    node->syms = ft__jpool_alloc(&P->t->pool, sizeof(int) * (size_t)(v.n ? v.n : 1));
    if (!node->syms) return nomem();
    node->nsyms = v.n;
    for (int k = 0; k < v.n; k++)
        if ((node->syms[k] = intern(P, v.kw[k])) < 0) return nomem();
    FT_TRY(expect_block_end(P));
    int which, saved = P->loop_depth;
    P->loop_depth = 0;
    FT_TRY(parse_body(P, endmacro, node->pos, "macro", &node->body, &which));
    P->loop_depth = saved;
    P->i++;
    return expect_block_end(P);
}

/* At a T_BLOCK_BEGIN whose tag name is not an ender of the enclosing body. */
static int parse_statement_(ps *P, jnode **out);
static int parse_statement(ps *P, jnode **out) {
    if (++P->depth > MAX_DEPTH) return perr(P, cur(P)->pos, FT_ERR_UNSUPPORTED, "blocks nested too deeply");
    int rc = parse_statement_(P, out);
    P->depth--;
    return rc;
}

static int parse_statement_(ps *P, jnode **out) {
    static const char *const unsupported[] = {"block", "extends", "include", "import", "from", "with",
                                              "autoescape", "filter", "call", "do", "trans", NULL};
    static const char *const endgen[] = {"endgeneration", NULL};
    int open = cur(P)->pos;
    P->i++;
    jtok *t = cur(P);
    if (t->type != T_NAME) return unexpected(P, "a tag name");
    jnode *n = mk(P, N_IF, open);
    if (!n) return nomem();
    *out = n;
    P->i++;
    if (name_is(t, "if")) return parse_if(P, n);
    if (name_is(t, "for")) { n->kind = N_FOR; return parse_for(P, n); }
    if (name_is(t, "set")) { n->kind = N_SET; return parse_set(P, n); }
    if (name_is(t, "macro")) { n->kind = N_MACRO; return parse_macro(P, n); }
    if (name_is(t, "print")) {
        n->kind = N_OUTPUT;
        FT_TRY(parse_tuple(P, 1, NULL, 0, &n->a));
        return expect_block_end(P);
    }
    if (name_is(t, "break") || name_is(t, "continue")) {
        if (P->loop_depth == 0) return perr(P, t->pos, FT_ERR_FORMAT, "'%.*s' outside of a for loop", (int)t->s.n, t->s.p);
        n->kind = name_is(t, "break") ? N_BREAK : N_CONTINUE;
        return expect_block_end(P);
    }
    if (name_is(t, "generation")) {
        int which;
        n->kind = N_GENERATION;
        P->t->has_generation = 1;
        FT_TRY(expect_block_end(P));
        FT_TRY(parse_body(P, endgen, open, "generation", &n->body, &which));
        P->i++;
        return expect_block_end(P);
    }
    for (int k = 0; unsupported[k]; k++)
        if (name_is(t, unsupported[k]))
            return perr(P, t->pos, FT_ERR_UNSUPPORTED, "the '%s' tag is not supported", unsupported[k]);
    return perr(P, t->pos, FT_ERR_FORMAT, "unknown or misplaced tag '%.*s'", (int)t->s.n, t->s.p);
}

/* Parses statements until a {% <ender> %} tag (left with P->i at the ender's name), or EOF when enders
 * is NULL. */
static int parse_body(ps *P, const char *const *enders, int open_pos, const char *open_name, jnode **out, int *which) {
    jnode *head = NULL, **tail = &head;
    for (;;) {
        jtok *t = cur(P);
        jnode *n = NULL;
        if (t->type == T_EOF) {
            if (enders) {
                int line, col;
                ft__jsrc_linecol(P->t->src, P->t->len, open_pos, &line, &col);
                int last = 0;
                while (enders[last + 1]) last++;
                return perr(P, t->pos, FT_ERR_FORMAT,
                            "unexpected end of template: '%s' opened at line %d, column %d needs '%s'", open_name,
                            line, col, enders[last]);
            }
            break;
        }
        if (t->type == T_TEXT) {
            n = mk(P, N_TEXT, t->pos);
            if (!n) return nomem();
            n->s = t->s;
            P->i++;
        } else if (t->type == T_VAR_BEGIN) {
            n = mk(P, N_OUTPUT, t->pos);
            if (!n) return nomem();
            P->i++;
            FT_TRY(parse_tuple(P, 1, NULL, 0, &n->a));
            if (cur(P)->type != T_VAR_END) return unexpected(P, "end of print statement");
            P->i++;
        } else if (t->type == T_BLOCK_BEGIN) {
            jtok *nm = peek(P, 1);
            if (enders && nm->type == T_NAME) {
                for (int k = 0; enders[k]; k++)
                    if (name_is(nm, enders[k])) {
                        P->i++;
                        *which = k;
                        *out = head;
                        return FT_OK;
                    }
            }
            FT_TRY(parse_statement(P, &n));
        } else {
            return unexpected(P, NULL);
        }
        *tail = n;
        tail = &n->next;
    }
    *out = head;
    return FT_OK;
}

int ft__jtemplate_parse(jtemplate **out, const char *src, size_t n) {
    *out = NULL;
    jtemplate *t = calloc(1, sizeof *t);
    if (!t) return nomem();
    /* newlines -> \n, then drop one trailing newline (keep_trailing_newline=False) */
    char *s = ft__jpool_alloc(&t->pool, n + 1);
    if (!s) { free(t); return nomem(); }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k > 0 && s[k - 1] == '\n') k--;
    s[k] = 0;
    t->src = s;
    t->len = k;
    jtok *toks = NULL;
    int ntoks = 0;
    int rc = ft__jlex(&t->pool, s, k, &toks, &ntoks);
    if (rc == FT_OK) {
        ps P = {t, toks, ntoks, 0, 0, 0, 0};
        int which;
        rc = parse_body(&P, NULL, 0, "", &t->root, &which);
        if (rc == FT_OK) {
            t->sym_fn = ft__jpool_alloc(&t->pool, sizeof(int) * (size_t)(t->nsyms + 1));
            if (!t->sym_fn) rc = nomem();
            for (int i = 0; rc == FT_OK && i < t->nsyms; i++) t->sym_fn[i] = ft__jfunc_id(t->syms[i]);
        }
    }
    free(toks);
    if (rc) { ft__jtemplate_free(t); return rc; }
    *out = t;
    return FT_OK;
}

void ft__jtemplate_free(jtemplate *t) {
    if (!t) return;
    ft__jpool_free(&t->pool);
    free(t);
}

int ft__jtemplate_sym(const jtemplate *t, const char *name) {
    for (int i = 0; i < t->nsyms; i++)
        if (strcmp(t->syms[i], name) == 0) return i;
    return -1;
}

void ft__jtemplate_linecol(const jtemplate *t, int pos, int *line, int *col) { ft__jsrc_linecol(t->src, t->len, pos, line, col); }
