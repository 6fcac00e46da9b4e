/* arena.c — see arena.h. */
#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

int ft_arena_init(ft_arena *a, size_t cap) {
    a->be = NULL;
    a->used = 0;
    a->cap = (cap + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    if (a->cap == 0) a->cap = FT_ALIGN;
    a->base = aligned_alloc(FT_ALIGN, a->cap);
    if (!a->base) return ft_error(FT_ERR_NOMEM, "cannot allocate %zu bytes", a->cap);
    memset(a->base, 0, a->cap);
    return FT_OK;
}

int ft_arena_init_on(ft_arena *a, size_t cap, const ft_backend *be) {
    if (!be || !be->alloc) {
        int rc = ft_arena_init(a, cap);
        a->be = be;
        return rc;
    }
    a->be = be;
    a->used = 0;
    a->cap = (cap + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    if (a->cap == 0) a->cap = FT_ALIGN;
    a->base = be->alloc(be->ctx, a->cap); /* zero-filled by contract (backend.h) */
    if (!a->base) return ft_error(FT_ERR_NOMEM, "%s backend: cannot allocate %zu bytes", be->name, a->cap);
    return FT_OK;
}

void ft_arena_plan(ft_arena *a) { a->base = NULL; a->cap = 0; a->used = 0; a->be = NULL; }

void *ft_arena_alloc(ft_arena *a, size_t n) {
    size_t sz = (n + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    if (!a->base) { a->used += sz; return NULL; }
    if (a->used + sz > a->cap) return NULL;
    void *p = a->base + a->used;
    a->used += sz;
    return p;
}

void ft_arena_reset(ft_arena *a) { a->used = 0; }

void ft_arena_free(ft_arena *a) {
    if (a->be && a->be->free) a->be->free(a->be->ctx, a->base);
    else free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
