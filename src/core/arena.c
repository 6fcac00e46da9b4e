/* arena.c — see arena.h. */
#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Large arenas (weights: streamed once per decoded token) ask for transparent huge pages before their
 * first touch: with THP in "madvise" mode (Debian's default) they would otherwise be 4 KiB pages, and a
 * matrix-vector product streaming GBs pays a TLB miss every 4 KiB. A refusal changes nothing. */
#define HUGE_MIN ((size_t)32 << 20)
static void hugepages(void *base, size_t cap) {
#ifdef MADV_HUGEPAGE
    if (cap < HUGE_MIN) return;
    uintptr_t b = ((uintptr_t)base + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1);
    uintptr_t e = ((uintptr_t)base + cap) & ~(((uintptr_t)2 << 20) - 1);
    if (e > b) madvise((void *)b, e - b, MADV_HUGEPAGE);
#else
    (void)base; (void)cap;
#endif
}

int ft_arena_init(ft_arena *a, size_t cap) {
    a->be = NULL;
    a->used = 0;
    a->cap = (cap + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    if (a->cap == 0) a->cap = FT_ALIGN;
    a->base = aligned_alloc(FT_ALIGN, a->cap);
    if (!a->base) return ft_error(FT_ERR_NOMEM, "cannot allocate %zu bytes", a->cap);
    hugepages(a->base, a->cap);
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
