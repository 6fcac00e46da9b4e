/* arena.h — one allocation per lifetime.
 * An arena is a single 64-byte-aligned block carved into named pieces (weights, gradients,
 * optimizer state, activations each get one). Pieces are never freed one by one:
 * ft_arena_free releases the whole block. Sizing is done up front: plan with
 * ft_arena_plan (a "dry" arena with base == NULL that only counts), then allocate once. */
#ifndef FINETUNE_ARENA_H
#define FINETUNE_ARENA_H
#include <stddef.h>

typedef struct ft_arena {
    char  *base;   /* NULL while planning */
    size_t cap;    /* bytes available (0 while planning) */
    size_t used;   /* bytes handed out so far (aligned) */
} ft_arena;

#define FT_ALIGN 64

/* Allocates `cap` bytes, zero-filled. Returns FT_OK or FT_ERR_NOMEM. */
int   ft_arena_init(ft_arena *a, size_t cap);
/* A planning arena: ft_arena_alloc only counts bytes and returns NULL. */
void  ft_arena_plan(ft_arena *a);
/* Returns `n` bytes aligned to FT_ALIGN, or NULL when planning or out of space
 * (out of space is a programming error: sizes are planned). */
void *ft_arena_alloc(ft_arena *a, size_t n);
void  ft_arena_reset(ft_arena *a);
void  ft_arena_free(ft_arena *a);
#endif
