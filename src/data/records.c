/* records.c — the record store (one string pool, message and record arrays) and drop reporting. */
#include "data/data_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft__data_reserve(void **p, size_t elem, int64_t need, int64_t *cap) {
    if (need <= *cap) return FT_OK;
    int64_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ft_error(FT_ERR_NOMEM, "data: out of memory (%lld items of %zu bytes)", (long long)nc, elem);
    *p = q;
    *cap = nc;
    return FT_OK;
}

void ft__recs_free(ft_recs *r) {
    free(r->pool);
    free(r->msgs);
    free(r->recs);
    for (int i = 0; i < r->nfiles; i++) free(r->files[i]);
    free(r->files);
    free(r->file_format);
    memset(r, 0, sizeof *r);
}

int64_t ft__recs_str(ft_recs *r, const char *s, size_t len) {
    if (r->pool_len + len + 1 > r->pool_cap) {
        size_t nc = r->pool_cap ? r->pool_cap : 4096;
        while (nc < r->pool_len + len + 1) nc *= 2;
        char *q = realloc(r->pool, nc);
        if (!q) return -1;
        r->pool = q;
        r->pool_cap = nc;
    }
    int64_t off = (int64_t)r->pool_len;
    if (len) memcpy(r->pool + off, s, len);
    r->pool[off + (int64_t)len] = 0;
    r->pool_len += len + 1;
    return off;
}

int ft__recs_begin(ft_recs *r, int kind, int file, int line, int64_t index) {
    FT_TRY(ft__data_reserve((void **)&r->recs, sizeof *r->recs, r->n + 1, &r->recs_cap));
    ft_rec *x = &r->recs[r->n++];
    memset(x, 0, sizeof *x);
    x->kind = (uint8_t)kind;
    x->file = file;
    x->line = line;
    x->index = index;
    x->msg0 = r->nmsgs;
    return FT_OK;
}

int64_t ft__recs_add_msg(ft_recs *r, int role, int flags, const char *field, const char *name, size_t name_len,
                        const char *text, size_t text_len) {
    if (ft__data_reserve((void **)&r->msgs, sizeof *r->msgs, r->nmsgs + 1, &r->msgs_cap) < 0) return FT_ERR_NOMEM;
    ft_rmsg m;
    memset(&m, 0, sizeof m);
    m.role = (uint8_t)role;
    m.flags = (uint8_t)flags;
    m.field = ft__recs_str(r, field ? field : "", field ? strlen(field) : 0);
    m.name = name ? ft__recs_str(r, name, name_len) : -1;
    m.name_len = name ? (int32_t)name_len : 0;
    m.text = ft__recs_str(r, text, text_len);
    m.text_len = (int64_t)text_len;
    if (m.field < 0 || (name && m.name < 0) || m.text < 0)
        return ft_error(FT_ERR_NOMEM, "data: out of memory for record text");
    r->msgs[r->nmsgs] = m;
    return r->nmsgs++;
}

int ft__recs_msg(ft_recs *r, int role, int flags, const char *field, const char *name, size_t name_len,
                const char *text, size_t text_len) {
    int64_t k = ft__recs_add_msg(r, role, flags, field, name, name_len, text, text_len);
    if (k < 0) return (int)k;
    r->recs[r->n - 1].nmsg++;
    return FT_OK;
}

void ft__recs_cancel(ft_recs *r) {
    if (r->n == 0) return;
    r->nmsgs = r->recs[r->n - 1].msg0;
    r->n--;
}

static int drop_v(ft_data_ctx *c, ft_data_drop reason, const char *path, int line, int64_t record,
                  const char *field, const char *fmt, va_list ap) {
    char detail[1024], msg[1600];
    vsnprintf(detail, sizeof detail, fmt, ap);
    int n = snprintf(msg, sizeof msg, "%s", path ? path : "data");
    if (line > 0 && n < (int)sizeof msg) n += snprintf(msg + n, sizeof msg - (size_t)n, ": line %d", line);
    if (record >= 0 && n < (int)sizeof msg)
        n += snprintf(msg + n, sizeof msg - (size_t)n, ": record %lld", (long long)record);
    if (field && field[0] && n < (int)sizeof msg)
        n += snprintf(msg + n, sizeof msg - (size_t)n, ": field '%s'", field);
    if (n < (int)sizeof msg) snprintf(msg + n, sizeof msg - (size_t)n, ": %s", detail);
    if (c->opt->strict)
        return ft_error(reason == FT_DROP_MALFORMED || reason == FT_DROP_INVALID_UTF8 ||
                                reason == FT_DROP_MISSING_FIELD || reason == FT_DROP_EMPTY
                            ? FT_ERR_FORMAT : FT_ERR_RANGE,
                        "%s (strict mode: a %s record is an error)", msg, ft_data_drop_name(reason));
    c->st->dropped[reason]++;
    /* duplicates and length filters are cleaning the user asked for: counted in the summary, each one
     * logged at debug level; bad input is a warning (the first max_warnings of each reason) */
    if (reason == FT_DROP_DUPLICATE || reason == FT_DROP_TOO_SHORT || reason == FT_DROP_TOO_LONG)
        FT_LOGD("%s (record skipped)", msg);
    else if (c->warned[reason]++ < c->opt->max_warnings)
        FT_LOGW("%s (record skipped)", msg);
    return FT_OK;
}

int ft__data_drop_record(ft_data_ctx *c, ft_data_drop reason, int line, int64_t record, const char *field,
                        const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = drop_v(c, reason, c->path, line, record, field, fmt, ap);
    va_end(ap);
    return rc;
}

int ft__data_drop_rec(ft_data_ctx *c, int64_t rec, ft_data_drop reason, const char *field, const char *fmt, ...) {
    ft_rec *x = &c->rs->recs[rec];
    va_list ap;
    va_start(ap, fmt);
    int rc = drop_v(c, reason, c->rs->files[x->file], x->line, x->index, field, fmt, ap);
    va_end(ap);
    if (rc == FT_OK) x->dropped = (uint8_t)(reason + 1);
    return rc;
}
