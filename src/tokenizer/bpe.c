/* bpe.c — BPE on one piece: initial symbols, then merges lowest rank first, leftmost first.
 *
 * Symbols form a doubly linked list over an array (a merge keeps the left symbol and kills the right
 * one); candidate pairs sit in a min-heap ordered by (rank, left index). A popped candidate is stale
 * when either side changed since it was pushed; stale ones are dropped. O(n log n) per piece, so
 * SentencePiece-style tokenizers without a pre-tokenizer (one piece per line) stay fast. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <string.h>

static int cand_less(const ft_bpe_cand *x, const ft_bpe_cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void heap_push(ft_bpe_cand *h, int *n, ft_bpe_cand c) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static ft_bpe_cand heap_pop(ft_bpe_cand *h, int *n) {
    ft_bpe_cand top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        const ft_bpe_cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) { m = l; best = &h[l]; }
        if (r < *n && cand_less(&h[r], best)) { m = r; }
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static void try_push(const ft_tokenizer *tok, ft_tok_work *w, int *nh, int left, int right) {
    int rank, a = w->sym[left].id, b = w->sym[right].id;
    int m = ft__tok_pair_lookup(tok, a, b, &rank);
    if (m >= 0) heap_push(w->heap, nh, (ft_bpe_cand){ rank, left, right, a, b, m });
}

/* Appends a symbol, fusing consecutive unknowns when the model asks for it. */
static void add_sym(const ft_tokenizer *tok, ft_tok_work *w, int *n, int id) {
    if (id == tok->unk_id && tok->fuse_unk && *n > 0 && w->sym[*n - 1].id == id) return;
    w->sym[*n].id = id;
    (*n)++;
}

int ft__bpe_encode_piece(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len) {
    if (len == 0) return FT_OK;
    const unsigned char *u = (const unsigned char *)s;
    if (tok->ignore_merges) {
        int id;
        if (tok->byte_level) {
            FT_TRY(ft__tok_reserve_bytes(&w->tmp, 2 * len, &w->tmp_cap));
            size_t k = 0;
            for (size_t i = 0; i < len; i++) k += (size_t)ft__utf8_encode((uint32_t)ft__byte_to_cp(u[i]), w->tmp + k);
            id = ft__tok_lookup_model(tok, w->tmp, k);
        } else {
            id = ft__tok_lookup_model(tok, s, len);
        }
        if (id >= 0) return ft__tok_push(w, id);
    }
    if (len > (size_t)(INT32_MAX / 4)) return ft_error(FT_ERR_RANGE, "tokenizer: piece of %zu bytes is too long", len);
    FT_TRY(ft__tok_reserve((void **)&w->sym, sizeof *w->sym, (int)len, &w->sym_cap));
    FT_TRY(ft__tok_reserve((void **)&w->heap, sizeof *w->heap, 3 * (int)len + 1, &w->heap_cap));

    int n = 0;
    if (tok->byte_level) {
        for (size_t i = 0; i < len; i++) {
            int id = tok->byte_sym[u[i]];
            if (id < 0) id = tok->unk_id;
            if (id >= 0) add_sym(tok, w, &n, id);   /* no symbol and no unk: the byte is dropped (as HF does) */
        }
    } else {
        for (size_t i = 0; i < len;) {
            int32_t cp;
            int k = ft__tok_utf8_next(u + i, len - i, &cp);
            int id = ft__tok_lookup_model(tok, s + i, (size_t)k);
            if (id >= 0) {
                add_sym(tok, w, &n, id);
            } else {
                int all = tok->byte_fallback;
                for (int j = 0; all && j < k; j++) all = tok->byte_tok[u[i + j]] >= 0;
                if (all) {
                    for (int j = 0; j < k; j++) add_sym(tok, w, &n, tok->byte_tok[u[i + j]]);
                } else if (tok->unk_id >= 0) {
                    add_sym(tok, w, &n, tok->unk_id);
                }
            }
            i += (size_t)k;
        }
    }
    if (n == 0) return FT_OK;
    for (int i = 0; i < n; i++) { w->sym[i].prev = i - 1; w->sym[i].next = i + 1 < n ? i + 1 : -1; }

    int nh = 0;
    for (int i = 0; i + 1 < n; i++) try_push(tok, w, &nh, i, i + 1);
    while (nh > 0) {
        ft_bpe_cand c = heap_pop(w->heap, &nh);
        ft_bpe_sym *L = &w->sym[c.left];
        if (L->id != c.a || L->next != c.right || w->sym[c.right].id != c.b) continue;   /* stale */
        int nx = w->sym[c.right].next;
        L->id = c.merged;
        L->next = nx;
        if (nx >= 0) w->sym[nx].prev = c.left;
        w->sym[c.right].id = -1;
        if (L->prev >= 0) try_push(tok, w, &nh, L->prev, c.left);
        if (nx >= 0) try_push(tok, w, &nh, c.left, nx);
    }
    for (int i = 0; i >= 0; i = w->sym[i].next) FT_TRY(ft__tok_push(w, w->sym[i].id));
    return FT_OK;
}
