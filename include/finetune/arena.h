/* arena.h — one allocation per lifetime.
 * An arena is a single 64-byte-aligned block carved into named pieces (weights, gradients,
 * optimizer state, activations each get one). Pieces are never freed one by one:
 * ft_arena_free releases the whole block. Sizing is done up front: plan with
 * ft_arena_plan (a "dry" arena with base == NULL that only counts), then allocate once. */
#ifndef FINETUNE_ARENA_H
#define FINETUNE_ARENA_H
#include <stddef.h>

struct ft_backend;

typedef struct ft_arena {
    char  *base;   /* NULL while planning */
    size_t cap;    /* bytes available (0 while planning) */
    size_t used;   /* bytes handed out so far (aligned) */
    const struct ft_backend *be; /* whose memory base is (ft_arena_init_on); NULL = host */
} ft_arena;

#define FT_ALIGN 64

/* Allocates `cap` bytes, zero-filled. Returns FT_OK or FT_ERR_NOMEM. */
int   ft_arena_init(ft_arena *a, size_t cap);
/* The same in the memory of backend be (its alloc member, backend.h): weights, gradients, optimizer
 * state and activations then live where be's kernels read them. be NULL, or a backend without an
 * allocator (ref, cpu), is ft_arena_init. ft_arena_free gives the block back to the same backend. */
int   ft_arena_init_on(ft_arena *a, size_t cap, const struct ft_backend *be);
/* A planning arena: ft_arena_alloc only counts bytes and returns NULL. */
void  ft_arena_plan(ft_arena *a);
/* Returns `n` bytes aligned to FT_ALIGN, or NULL when planning or out of space
 * (out of space is a programming error: sizes are planned). */
void *ft_arena_alloc(ft_arena *a, size_t n);
void  ft_arena_reset(ft_arena *a);
void  ft_arena_free(ft_arena *a);
#endif
