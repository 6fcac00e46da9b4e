/* jinja.h — internal: the Jinja2 subset behind chat templates (see include/finetune/chat.h).
 *
 * Pipeline: ft__jlex (source -> tokens, whitespace control applied) -> jparse (tokens -> AST, once per
 * template) -> ft__jtemplate_render (AST + variables -> text, many times).
 *
 * Memory: a template owns one jpool holding its normalized source, AST and symbol table. Each render
 * allocates its values (strings built by +, lists made by filters, message dicts) in a jpool that the
 * caller frees after the render, so a render never leaks and never mutates the template: one parsed
 * template can be rendered from several threads at once.
 *
 * Values follow Python/Jinja2 semantics (str(), repr(), ==, truthiness, json.dumps) because the
 * reference is transformers' apply_chat_template, which renders with Jinja2 under CPython. */
#ifndef FT_CHAT_JINJA_H
#define FT_CHAT_JINJA_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "core/strbuf.h"

/* ---- pool: zeroed, 16-byte-aligned bump allocations in chained blocks, freed all at once ---- */
typedef struct jpool_block jpool_block;
typedef struct jpool {
    jpool_block *head;
    size_t bytes;   /* allocated so far */
    size_t limit;   /* 0 = none; else an allocation that would pass it fails (NULL) and sets over */
    int    over;
} jpool;
void *ft__jpool_alloc(jpool *p, size_t n);               /* NULL on out-of-memory or past the limit */
char *ft__jpool_strdup(jpool *p, const char *s, size_t n); /* copies n bytes, adds a NUL */
void  ft__jpool_free(jpool *p);

/* ---- growable byte buffer: the core string builder (core/strbuf.h); appends return FT_OK or FT_ERR_NOMEM ---- */

/* ---- values ---- */
enum {
    JV_UNDEF = 0,  /* jinja2.Undefined: prints "", falsy, iterates empty; u.s holds the name (may be empty) */
    JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR,
    JV_LIST,       /* list, or tuple when .tuple is set (only repr differs) */
    JV_DICT,       /* str keys, insertion order */
    JV_NS,         /* namespace(): a dict whose attributes may be assigned */
    JV_LOOP,       /* the `loop` variable of a for loop */
    JV_FUNC,       /* a global function (raise_exception, namespace, range, ...); u.fn */
    JV_MACRO,      /* a {% macro %}; u.macro */
};
typedef struct jstr { const char *p; size_t n; } jstr;
typedef struct jv jv;
typedef struct jlist { int n, cap; jv *v; } jlist;
typedef struct jdict { int n, cap; jstr *k; jv *v; } jdict;
typedef struct jloop { int64_t index0, length; const jv *items; } jloop;
struct jnode;
struct jv {
    uint8_t t;
    uint8_t tuple;
    union { int b; int64_t i; double f; jstr s; jlist *l; jdict *d; jloop *loop; int fn; const struct jnode *macro; } u;
};

static inline jv jv_undef(void) { jv v = {0}; v.t = JV_UNDEF; return v; }
static inline jv jv_none(void) { jv v = {0}; v.t = JV_NONE; return v; }
static inline jv jv_bool(int b) { jv v = {0}; v.t = JV_BOOL; v.u.b = !!b; return v; }
static inline jv jv_int(int64_t i) { jv v = {0}; v.t = JV_INT; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {0}; v.t = JV_FLOAT; v.u.f = f; return v; }
static inline jv jv_str(const char *p, size_t n) { jv v = {0}; v.t = JV_STR; v.u.s.p = p; v.u.s.n = n; return v; }

int  ft__jv_truthy(jv v);
/* Values nest at most this deep where they are printed, compared or serialised: a namespace can hold
 * itself ({% set ns.n = ns %}) or grow one level per loop iteration, and the recursion must stay bounded. */
#define FT_JV_MAX_NESTING 100
/* Python == (1 == 1.0 == True, deep for lists/dicts); values nested deeper than FT_JV_MAX_NESTING compare unequal */
int  ft__jv_eq(jv a, jv b);
const char *ft__jv_typename(jv v);             /* Python type name for messages: "str", "list", ... */
/* Python str(v) (repr = 0) or repr(v) (repr = 1) appended to b. FT_OK, b's error (FT_ERR_NOMEM, or
 * FT_ERR_RANGE past its limit), or FT_ERR_RANGE for values nested deeper than FT_JV_MAX_NESTING. */
int  ft__jv_write(ft__sb *b, jv v, int repr);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter.
 * indent: NULL for none. item_sep/key_sep: NULL for the json.dumps defaults.
 * Returns FT_OK, FT_ERR_NOMEM, FT_ERR_RANGE (b's limit, or nesting deeper than FT_JV_MAX_NESTING), or
 * FT_ERR_INVALID (value not serializable: *bad names its type). */
int  ft__jv_tojson(ft__sb *b, jv v, int ensure_ascii, const char *indent, size_t indent_n, const char *item_sep,
               const char *key_sep, int sort_keys, const char **bad);
void ft__jv_float_repr(char buf[40], double x); /* Python repr(float) */

jlist *ft__jlist_new(jpool *p, int cap);
int    ft__jlist_push(jpool *p, jlist *l, jv v);
jdict *ft__jdict_new(jpool *p, int cap);
jv    *ft__jdict_get(const jdict *d, const char *k, size_t n);
int    ft__jdict_set(jpool *p, jdict *d, jstr k, jv v);

/* ---- UTF-8 (decoding: ft__utf8_next, core/strbuf.h) and Python character classes ---- */
size_t ft__jutf8_count(const char *s, size_t n);                          /* Python len() of the str */
size_t ft__jutf8_offset(const char *s, size_t n, size_t k);               /* byte offset of char k (n if past the end) */
int    ft__jpy_isspace(int32_t cp);                                       /* Python str.isspace() */
int    ft__jutf8_put(ft__sb *b, int32_t cp);

/* ---- lexer ---- */
enum { T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF };
enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE, OP_EQ, OP_NE, OP_LT, OP_LE,
    OP_GT, OP_GE, OP_ASSIGN, OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE,
    OP_COMMA, OP_DOT, OP_COLON, OP_PIPE, OP_SEMICOLON,
    OP_IN, OP_NOTIN, /* not tokens: binary operators built by the parser */
};
typedef struct jtok {
    uint8_t type, op;
    int     pos;      /* byte offset in the normalized source */
    jstr    s;        /* TEXT: slice of the source; NAME: the name; STRING: the decoded value (pool) */
    int64_t i;
    double  f;
} jtok;
/* Tokenizes src (already normalized: see ft__jtemplate_parse). *toks is malloc'd, ends with T_EOF. */
int ft__jlex(jpool *pool, const char *src, size_t n, jtok **toks, int *ntoks);
/* 1-based line and column (in characters) of byte offset pos. */
void ft__jsrc_linecol(const char *src, size_t n, int pos, int *line, int *col);
/* ft_error(status, "chat template: line L, column C: <fmt...>") for byte pos of src (jinja_lex.c) */
int  ft__jsrc_verror(const char *src, size_t n, int pos, int status, const char *fmt, va_list ap);

/* ---- AST ---- */
enum {
    /* statements (linked through next) */
    N_TEXT = 1, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_ATTR, N_SET_BLOCK, N_BREAK, N_CONTINUE, N_GENERATION,
    N_MACRO,
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_GETATTR, N_GETITEM, N_SLICE, N_NEG, N_POS, N_NOT, N_BIN,
    N_AND, N_OR, N_COND, N_FILTER, N_TEST, N_CALL, N_METHOD,
};
typedef struct jnode jnode;
struct jnode {
    uint8_t kind, op, neg;  /* op: N_BIN operator; neg: N_TEST "is not" */
    int     pos;            /* byte offset in the normalized source, for messages */
    jnode  *a, *b, *c;      /* operands; N_IF/N_COND: a = test; N_FOR: a = iterable, b = filter;
                               N_SLICE: a = subject, b/c = start/stop, args[0] = step */
    jnode  *body, *orelse;  /* statement lists */
    jnode  *next;
    jnode **args;           /* call / filter / test arguments; list and tuple items; dict k0,v0,k1,v1,... */
    jstr   *kw;             /* kw[i].p != NULL: args[i] is keyword argument kw[i] (macro: parameter names) */
    int     nargs;
    jstr    s;              /* TEXT text; GETATTR/METHOD/FILTER/TEST/SET_ATTR/MACRO name */
    int     sym;            /* NAME / SET_ATTR / MACRO: symbol */
    int    *syms;           /* FOR / SET / SET_BLOCK targets */
    int     nsyms;
    int     fid;            /* FILTER / TEST: builtin id */
    jv      lit;            /* LIT */
};

typedef struct jtemplate {
    jpool  pool;
    char  *src;            /* normalized source (newlines -> \n, one trailing \n dropped) */
    size_t len;
    jnode *root;
    char **syms;           /* symbol names, NUL-terminated */
    int    nsyms;
    int   *sym_fn;         /* per symbol: builtin global function id, 0 if none */
    int    has_generation; /* the template has {% generation %} blocks */
} jtemplate;

/* Parses source (n bytes). On failure records "chat template: line L, column C: ..." and returns
 * FT_ERR_FORMAT (syntax) or FT_ERR_UNSUPPORTED (valid Jinja2 this subset does not handle). */
int  ft__jtemplate_parse(jtemplate **out, const char *src, size_t n);
void ft__jtemplate_free(jtemplate *t);
int  ft__jtemplate_sym(const jtemplate *t, const char *name); /* -1 if the template never names it */
void ft__jtemplate_linecol(const jtemplate *t, int pos, int *line, int *col);

/* filters / tests / global functions: ids are resolved at parse time */
int ft__jfilter_id(const char *name, size_t n); /* 0 if unknown */
int ft__jtest_id(const char *name, size_t n);
int ft__jfunc_id(const char *name);

typedef struct jvar { int sym; jv v; } jvar;
typedef struct jspan { size_t start, end; } jspan;
/* the budget of one render (finetune/chat.h: ft_chat_budget) */
struct ft_chat_budget;
/* Renders t with vars bound at the top level, appending to out. Values are allocated in pool.
 * gens (optional): malloc'd [start,end) output ranges of each {% generation %} block, in order.
 * The render stops with FT_ERR_RANGE "template exceeds its budget (...)" when it would pass a limit of budget. */
int ft__jtemplate_render(const jtemplate *t, const jvar *vars, int nvars, jpool *pool, ft__sb *out,
                     jspan **gens, int *ngens, const struct ft_chat_budget *budget);

/* ---- evaluation internals shared by jinja_eval.c and jinja_builtins.c ---- */
typedef struct jrender jrender;
int ft__jr_error(jrender *r, const jnode *at, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
jpool *ft__jr_pool(jrender *r);
/* Counts n operations of work against the budget (loops inside filters and methods call it per item). */
int ft__jr_charge(jrender *r, const jnode *at, int64_t n);
/* The error for a failed allocation or append (status; b: the text builder involved, or NULL): a text past
 * its limit (b->err FT_ERR_RANGE), values nested too deep (FT_ERR_RANGE otherwise) or an exhausted value
 * pool is "template exceeds its budget (...)"; anything else "out of memory". */
int ft__jr_fail(jrender *r, const jnode *at, int status, const ft__sb *b);
/* An empty text builder limited to the budget's output size (for text built while rendering). */
ft__sb ft__jr_sb(const jrender *r);
int ft__jr_str(jrender *r, jv v, jstr *out);                    /* Python str(v), pool-backed */
int ft__jr_getattr(jrender *r, const jnode *at, jv obj, jstr name, jv *out);
int ft__jr_getitem(jrender *r, const jnode *at, jv obj, jv key, jv *out);
int ft__jr_iterate(jrender *r, const jnode *at, jv v, jlist **out); /* list(v) for iteration */
/* a == b, a < b, ... (op: OP_EQ..OP_GE, OP_IN, OP_NOTIN) with Python's rules; *res is 0 or 1 */
int ft__jr_compare(jrender *r, const jnode *at, int op, jv a, jv b, int *res);
int ft__jr_call_macro(jrender *r, const jnode *at, jv fn, const jv *args, const jstr *kw, int nargs, jv *out);
/* Applies builtin filter / test / function / method to evaluated arguments. */
int ft__jfilter_apply(jrender *r, const jnode *at, int fid, jv in, const jv *args, const jstr *kw, int nargs, jv *out);
int ft__jtest_apply(jrender *r, const jnode *at, int tid, jv in, const jv *args, int nargs, int *out);
int ft__jfunc_call(jrender *r, const jnode *at, int fn, const jv *args, const jstr *kw, int nargs, jv *out);
int ft__jmethod_call(jrender *r, const jnode *at, jv obj, jstr name, const jv *args, const jstr *kw, int nargs,
                 jv *out, int *found);

/* ---- chat_builtin.c ---- */
/* Source and default tokens of a built-in template; 0 if the name is unknown. */
int ft__jchat_builtin_lookup(const char *name, const char **source, const char **bos, const char **eos);
#endif
