/* context.c — inference contexts over shared weights (context.h): a multi-slot KV cache and batched
 * decoding where every sequence has its own slot, position and LoRA adapter.
 *
 * One internal step takes up to batch_tokens rows, made of pieces (a sequence's next tokens):
 *   x = wte[tok] (+ wpe[pos])                               pos: each row's own position in its slot
 *   per layer:  h = norm1(x);  qkv = h Wqkv^T (+ b)         one matmul over all rows
 *               qkv[rows of piece i] += LoRA_i(h)            each piece's adapter on its rows only
 *               RoPE(q, k) at the rows' positions; k, v -> cache[slot_i][l][pos]
 *               atty[piece i] = attention(q_i, cache[slot_i][l][0 .. pos])
 *               x += atty Wo^T (+ b) (+ LoRA_i);  x += act(norm2(x) Wfc^T ..) Wproj^T ..
 *   logits of the rows asked for = normf(x) Wlm^T
 * Shapes: R rows (<= batch_tokens), C channels, QKV = (NH+2*NKV)*HS, KV = NKV*HS, AC = NH*HS, F fc width, I hidden,
 * Tm = slot_tokens. Cache layout: one buffer per (slot, layer) for k and one for v, [cap_slot, KV] each.
 *
 * The KV cache grows with use: a slot starts empty and each (slot, layer) buffer is reallocated when a decode
 * would pass its capacity, to max(needed, 2 x capacity) rounded up to KV_CHUNK tokens (at most Tm), so a request
 * of n tokens costs O(log n) reallocations per layer (glibc moves large blocks with mremap: no copy) and the
 * memory follows the sequences actually served, not n_slots x Tm. Clearing a slot gives back what it holds
 * beyond KV_KEEP tokens. Device backends (be->alloc) have no device-to-device copy, so there a slot's buffers are
 * allocated whole (Tm tokens) on its first use and kept. */
#include "model_internal.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

struct ft_context {
    const ft_model *m;
    ft_context_params p;
    ft_arena mem;             /* the one allocation at creation: scratch, workspace, slot bookkeeping */
    int   *slot_len;          /* [n_slots] */
    int   *slot_cap;          /* [n_slots] tokens every layer's buffer of the slot holds */
    float **kc, **vc;         /* [n_slots * L] -> [slot_cap, KV] each, NULL while the slot holds nothing */
    float *x, *ln, *qkv, *q, *atty, *tmp, *fch, *act, *xa;   /* [R, C] [R, C] [R, QKV] [R, AC] [R, AC] [R, SC] [R, F] [R, I] [R, rmax] */
    float *logits;            /* [R, V] */
    int   *tok, *pos;         /* [R] */
    float *ws; size_t wsn;    /* quantized-matmul workspace */
};

enum { KV_CHUNK = 64, KV_KEEP = 256 };   /* growth granule; tokens a cleared slot keeps (both in tokens) */

ft_context_params ft_context_default_params(void) {
    ft_context_params p = {.n_slots = 1, .slot_tokens = 0, .batch_tokens = 64, .max_lora_rank = 256};
    return p;
}

static ft_context_params resolved(const ft_model *m, const ft_context_params *p) {
    ft_context_params r = p ? *p : ft_context_default_params();
    if (r.n_slots <= 0) r.n_slots = 1;
    if (r.slot_tokens <= 0 || r.slot_tokens > m->cfg.max_seq_len) r.slot_tokens = m->cfg.max_seq_len;
    if (r.batch_tokens <= 0) r.batch_tokens = 64;
    if (r.max_lora_rank <= 0) r.max_lora_rank = 256;
    return r;
}

/* the buffers for p: planned (arena planning) or carved (ctx != NULL) */
static void layout(ft_arena *a, const ft_model *m, const ft_context_params *p, ft_context *ctx) {
    const ft_model_config *c = &m->cfg;
    size_t S = (size_t)p->n_slots, L = (size_t)c->n_layer, Tm = (size_t)p->slot_tokens, KV = (size_t)c->n_kv_head * c->head_dim;
    size_t R = (size_t)p->batch_tokens, C = (size_t)c->n_embd, QKV = (size_t)ft_qkv_dim(c), F = (size_t)ft_fc_dim(c);
    size_t I = (size_t)c->ffn_hidden, AC = (size_t)c->n_head * c->head_dim, V = (size_t)c->vocab_size;
    size_t SC = C > AC ? C : AC, rmax = (size_t)p->max_lora_rank;
    ft_context tmp;
    ft_context *t = ctx ? ctx : &tmp;
    struct { float **ptr; size_t n; } f[] = {
        {&t->x, R * C}, {&t->ln, R * C},
        {&t->qkv, R * QKV}, {&t->q, R * AC}, {&t->atty, R * AC}, {&t->tmp, R * SC}, {&t->fch, R * F}, {&t->act, R * I},
        {&t->xa, R * rmax}, {&t->logits, R * V}, {&t->ws, m->qws_floats ? m->qws_floats : 1},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i].ptr = ft_arena_alloc(a, f[i].n * sizeof(float));
    t->tok = ft_arena_alloc(a, R * sizeof(int));
    t->pos = ft_arena_alloc(a, R * sizeof(int));
    t->slot_len = ft_arena_alloc(a, S * sizeof(int));
    t->slot_cap = ft_arena_alloc(a, S * sizeof(int));
    t->kc = ft_arena_alloc(a, S * L * sizeof(float *));
    t->vc = ft_arena_alloc(a, S * L * sizeof(float *));
    (void)Tm; (void)KV;
}

/* bytes of k and v of every layer for cap tokens of one slot */
static size_t slot_kv_bytes(const ft_model *m, size_t cap) {
    return 2 * (size_t)m->cfg.n_layer * cap * (size_t)m->cfg.n_kv_head * (size_t)m->cfg.head_dim * sizeof(float);
}

/* the arena: everything but the KV cache */
static size_t scratch_bytes(const ft_model *m, const ft_context_params *r) {
    ft_arena plan;
    ft_arena_plan(&plan);
    layout(&plan, m, r, NULL);
    return plan.used;
}

size_t ft_context_bytes(const ft_model *m, const ft_context_params *p) {
    ft_context_params r = resolved(m, p);
    return scratch_bytes(m, &r) + (size_t)r.n_slots * slot_kv_bytes(m, (size_t)r.slot_tokens);
}

size_t ft_context_kv_bytes(const ft_context *ctx) {
    size_t n = 0;
    for (int s = 0; s < ctx->p.n_slots; s++) n += slot_kv_bytes(ctx->m, (size_t)ctx->slot_cap[s]);
    return n;
}

/* every layer's k and v buffer of slot resized to cap tokens (the first min(old, cap) tokens kept). On failure
 * the slot keeps its old capacity (buffers already resized hold at least the old one). */
static int slot_resize(ft_context *ctx, int slot, int cap) {
    const ft_model *m = ctx->m;
    const ft_backend *be = m->be;
    int L = m->cfg.n_layer;
    size_t row = (size_t)m->cfg.n_kv_head * m->cfg.head_dim * sizeof(float);
    float **kc = ctx->kc + (size_t)slot * L, **vc = ctx->vc + (size_t)slot * L;
    if (be && be->alloc) {   /* device memory: whole on first use, kept (no device copy member to grow it) */
        if (cap == 0 || ctx->slot_cap[slot] == ctx->p.slot_tokens) return FT_OK;
        for (int l = 0; l < L; l++) {
            if (!kc[l]) kc[l] = ft_backend_alloc(be, row * (size_t)ctx->p.slot_tokens);
            if (!vc[l]) vc[l] = ft_backend_alloc(be, row * (size_t)ctx->p.slot_tokens);
            if (!kc[l] || !vc[l]) return ft_error(FT_ERR_NOMEM, "context: cannot allocate the KV cache of slot %d", slot);
        }
        ctx->slot_cap[slot] = ctx->p.slot_tokens;
        return FT_OK;
    }
    for (int l = 0; l < L; l++) {
        float **b[2] = {&kc[l], &vc[l]};
        for (int j = 0; j < 2; j++) {
            if (cap == 0) { free(*b[j]); *b[j] = NULL; continue; }
            float *nb = realloc(*b[j], row * (size_t)cap);
            if (!nb) return ft_error(FT_ERR_NOMEM, "context: cannot grow the KV cache of slot %d to %d tokens", slot, cap);
            *b[j] = nb;
        }
    }
    ctx->slot_cap[slot] = cap;
    return FT_OK;
}

/* slot can take need tokens (need <= slot_tokens) */
static int slot_reserve(ft_context *ctx, int slot, int need) {
    int cap = ctx->slot_cap[slot];
    if (need <= cap) return FT_OK;
    int nc = cap * 2 > need ? cap * 2 : need;
    nc = (nc + KV_CHUNK - 1) / KV_CHUNK * KV_CHUNK;
    if (nc > ctx->p.slot_tokens) nc = ctx->p.slot_tokens;
    return slot_resize(ctx, slot, nc);
}

/* a cleared slot keeps at most KV_KEEP tokens of buffer */
static void slot_trim(ft_context *ctx, int slot) {
    if (ctx->slot_cap[slot] > KV_KEEP && !(ctx->m->be && ctx->m->be->alloc)) slot_resize(ctx, slot, KV_KEEP);
}

int ft_context_create(ft_context **out, const ft_model *m, const ft_context_params *p) {
    *out = NULL;
    ft_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return ft_error(FT_ERR_NOMEM, "context: out of memory");
    ctx->m = m;
    ctx->p = resolved(m, p);
    int rc = ft_arena_init_on(&ctx->mem, scratch_bytes(m, &ctx->p), m->be);
    if (rc < 0) { free(ctx); return rc; }
    layout(&ctx->mem, m, &ctx->p, ctx);
    ctx->wsn = m->qws_floats;
    *out = ctx;
    return FT_OK;
}

void ft_context_free(ft_context *ctx) {
    if (!ctx) return;
    for (size_t i = 0; ctx->kc && i < (size_t)ctx->p.n_slots * (size_t)ctx->m->cfg.n_layer; i++) {
        ft_backend_free(ctx->m->be, ctx->kc[i]);
        ft_backend_free(ctx->m->be, ctx->vc[i]);
    }
    ft_arena_free(&ctx->mem);
    free(ctx);
}

const ft_model *ft_context_model(const ft_context *ctx) { return ctx->m; }
int ft_context_n_slots(const ft_context *ctx) { return ctx->p.n_slots; }
int ft_context_slot_capacity(const ft_context *ctx) { return ctx->p.slot_tokens; }

static int check_slot(const ft_context *ctx, int slot) {
    if (slot < 0 || slot >= ctx->p.n_slots)
        return ft_error(FT_ERR_RANGE, "context: slot %d does not exist (the context has %d slots)", slot, ctx->p.n_slots);
    return FT_OK;
}

int ft_context_slot_len(const ft_context *ctx, int slot) {
    FT_TRY(check_slot(ctx, slot));
    return ctx->slot_len[slot];
}

int ft_context_slot_clear(ft_context *ctx, int slot) {
    if (slot == -1) {
        for (int s = 0; s < ctx->p.n_slots; s++) { ctx->slot_len[s] = 0; slot_trim(ctx, s); }
        return FT_OK;
    }
    FT_TRY(check_slot(ctx, slot));
    ctx->slot_len[slot] = 0;
    slot_trim(ctx, slot);
    return FT_OK;
}

int ft_context_slot_truncate(ft_context *ctx, int slot, int n) {
    FT_TRY(check_slot(ctx, slot));
    if (n < 0 || n > ctx->slot_len[slot])
        return ft_error(FT_ERR_RANGE, "context: cannot keep %d tokens of slot %d, which holds %d", n, slot, ctx->slot_len[slot]);
    ctx->slot_len[slot] = n;
    return FT_OK;
}

/* dst's k and v rows [0, n) = src's, per layer. Device buffers go through the host (the backend has no
 * device-to-device copy): one bounce buffer of n rows. */
int ft_context_slot_copy(ft_context *ctx, int dst, int src) {
    FT_TRY(check_slot(ctx, dst));
    FT_TRY(check_slot(ctx, src));
    if (dst == src) return FT_OK;
    const ft_model *m = ctx->m;
    int L = m->cfg.n_layer, n = ctx->slot_len[src];
    size_t bytes = (size_t)n * (size_t)m->cfg.n_kv_head * (size_t)m->cfg.head_dim * sizeof(float);
    ctx->slot_len[dst] = 0;
    if (n == 0) return FT_OK;
    FT_TRY(slot_reserve(ctx, dst, n));
    int dev = m->be && m->be->alloc;
    float *bounce = dev ? malloc(bytes) : NULL;
    if (dev && !bounce) return ft_error(FT_ERR_NOMEM, "context: out of memory copying slot %d", src);
    for (int l = 0; l < L; l++) {
        float *from[2] = {ctx->kc[(size_t)src * L + l], ctx->vc[(size_t)src * L + l]};
        float *to[2] = {ctx->kc[(size_t)dst * L + l], ctx->vc[(size_t)dst * L + l]};
        for (int j = 0; j < 2; j++) {
            if (!dev) { memcpy(to[j], from[j], bytes); continue; }
            ft_backend_to_host(m->be, bounce, from[j], bytes);
            ft_backend_to_device(m->be, to[j], bounce, bytes);
        }
    }
    free(bounce);
    ctx->slot_len[dst] = n;
    return FT_OK;
}

/* ------------------------------------------------------------------ one batched step */

typedef struct piece {
    int seq;            /* index into the call's sequences */
    int off, n;         /* tokens [off, off+n) of that sequence */
    int row;            /* first row in the step */
    int pos0;           /* cached tokens of its slot before this piece */
} piece;

/* the hooks of one step: the step's pieces and sequences */
typedef struct step_hooks {
    ft_context *ctx;
    const ft_decode_seq *seqs;
    const piece *pc;
    int npc, R;
} step_hooks;

/* LoRA of the model itself (attached for training) on every row, then each piece's adapter on its rows */
static void step_lora(void *hp, int l, int slot, const float *inp, float *out, int ldo, int R) {
    step_hooks *h = hp;
    ft_context *ctx = h->ctx;
    const ft_model *m = ctx->m;
    const ft_backend *be = m->be;
    for (int k = 0; k < m->ts.n_lora; k++) {
        const ft_lora *a = &m->ts.lora[k];
        if (a->layer != l || a->slot != slot) continue;
        ft__lora_module_forward(be, out + a->row0, ldo, inp, m->params[a->pa].t.data, m->params[a->pb].t.data, ctx->xa,
                               R, a->in, a->r, a->rows, a->scale);
    }
    int site = l * 4 + ft__lora_site_index(slot);
    for (int i = 0; i < h->npc; i++) {
        const piece *p = &h->pc[i];
        const ft_adapter *ad = h->seqs[p->seq].adapter;
        if (!ad) continue;
        for (int k = ad->site_first[site]; k < ad->site_first[site + 1]; k++) {
            const ft_adapter_module *md = &ad->mods[k];
            ft__lora_module_forward(be, out + (size_t)p->row * ldo + md->row0, ldo, inp + (size_t)p->row * md->in,
                                   md->A, md->B, ctx->xa, p->n, md->in, md->r, md->rows, md->scale);
        }
    }
}

/* each piece's k, v into its slot at its positions, then its queries against the slot's cache */
static void step_attention(void *hp, int l, float *atty, const float *qkv) {
    step_hooks *h = hp;
    ft_context *ctx = h->ctx;
    const ft_model *m = ctx->m;
    const ft_model_config *c = &m->cfg;
    int NH = c->n_head, NKV = c->n_kv_head, HS = c->head_dim, QKV = ft_qkv_dim(c), AC = NH * HS, KV = NKV * HS;
    for (int r = 0; r < h->R; r++) memcpy(ctx->q + (size_t)r * AC, qkv + (size_t)r * QKV, sizeof(float) * (size_t)AC);
    for (int i = 0; i < h->npc; i++) {
        const piece *p = &h->pc[i];
        size_t at = (size_t)h->seqs[p->seq].slot * c->n_layer + l;
        float *kc = ctx->kc[at], *vc = ctx->vc[at];
        const float *rows = qkv + (size_t)p->row * QKV;
        m->be->kv_cache_write(m->be->ctx, kc, vc, KV, rows + AC, rows + AC + KV, QKV, NULL, p->pos0, p->n, KV);
        m->be->attention_cached_forward(m->be->ctx, atty + (size_t)p->row * AC, ctx->q + (size_t)p->row * AC, kc, vc, KV, p->pos0, p->n,
                                        NH, NKV, HS);
    }
}

static void step(ft_context *ctx, const ft_decode_seq *seqs, const piece *pc, int npc, int R) {
    const ft_model *m = ctx->m;
    const ft_model_config *c = &m->cfg;
    int C = c->n_embd, L = c->n_layer, V = c->vocab_size;
    for (int i = 0; i < npc; i++)
        for (int t = 0; t < pc[i].n; t++) {
            ctx->tok[pc[i].row + t] = seqs[pc[i].seq].tokens[pc[i].off + t];
            ctx->pos[pc[i].row + t] = pc[i].pos0 + t;
        }
    m->be->embedding_forward(m->be->ctx, ctx->x, ctx->tok, ctx->pos, ft_gp(m, G_WTE), ft_gp(m, G_WPE), R, R, C);
    step_hooks h = {ctx, seqs, pc, npc, R};
    ft_block_ops ops = {.attention = step_attention, .lora = step_lora, .ctx = &h, .ws = ctx->ws, .wsn = ctx->wsn, .resid_p = 0};
    /* the residual stream is updated in place; one set of scratch buffers serves every layer */
    ft_block_io io = {.x = ctx->x, .ln1 = ctx->ln, .qkv = ctx->qkv, .atty = ctx->atty, .res2 = ctx->x, .ln2 = ctx->ln,
                      .fch = ctx->fch, .fch_act = ctx->act, .res3 = ctx->x, .scratch = ctx->tmp};
    for (int l = 0; l < L; l++) ft__block_forward(m, l, &io, R, ctx->pos, &ops);
    /* logits: gather the rows asked for (every row of an all_logits piece, else a sequence's last row) */
    int nsel = 0;
    for (int i = 0; i < npc; i++) {
        const ft_decode_seq *s = &seqs[pc[i].seq];
        if (!s->logits) continue;
        int last = pc[i].off + pc[i].n == s->n_tokens;
        int from = s->all_logits ? 0 : (last ? pc[i].n - 1 : pc[i].n);
        for (int t = from; t < pc[i].n; t++, nsel++)
            memmove(ctx->ln + (size_t)nsel * C, ctx->x + (size_t)(pc[i].row + t) * C, sizeof(float) * (size_t)C);
    }
    if (!nsel) return;
    ft__norm_forward(m, ctx->tmp, NULL, NULL, ctx->ln, ft_gp(m, G_LNF_W), ft_gp(m, G_LNF_B), nsel);
    ft__head_forward_ws(m, ctx->logits, ctx->tmp, nsel, ctx->ws, ctx->wsn);
    int k = 0;
    for (int i = 0; i < npc; i++) {
        const ft_decode_seq *s = &seqs[pc[i].seq];
        if (!s->logits) continue;
        int last = pc[i].off + pc[i].n == s->n_tokens;
        if (s->all_logits) {
            memcpy(s->logits + (size_t)pc[i].off * V, ctx->logits + (size_t)k * V, sizeof(float) * (size_t)pc[i].n * V);
            k += pc[i].n;
        } else if (last) {
            memcpy(s->logits, ctx->logits + (size_t)k * V, sizeof(float) * (size_t)V);
            k++;
        }
    }
}

int ft_context_decode(ft_context *ctx, const ft_decode_seq *seqs, int n_seqs) {
    const ft_model *m = ctx->m;
    const ft_model_config *c = &m->cfg;
    if (n_seqs <= 0) return ft_error(FT_ERR_INVALID, "context: decode needs at least one sequence");
    /* check everything before touching any slot */
    for (int i = 0; i < n_seqs; i++) {
        const ft_decode_seq *s = &seqs[i];
        FT_TRY(check_slot(ctx, s->slot));
        for (int j = 0; j < i; j++)
            if (seqs[j].slot == s->slot) return ft_error(FT_ERR_INVALID, "context: slot %d is named twice in one decode call", s->slot);
        if (s->n_tokens <= 0 || !s->tokens) return ft_error(FT_ERR_INVALID, "context: sequence %d (slot %d) has no tokens", i, s->slot);
        if (ctx->slot_len[s->slot] + s->n_tokens > ctx->p.slot_tokens)
            return ft_error(FT_ERR_RANGE, "context: slot %d would hold %d tokens, more than its %d", s->slot,
                            ctx->slot_len[s->slot] + s->n_tokens, ctx->p.slot_tokens);
        for (int t = 0; t < s->n_tokens; t++)
            if (s->tokens[t] < 0 || s->tokens[t] >= c->vocab_size)
                return ft_error(FT_ERR_RANGE, "token id %d is outside the vocabulary [0, %d)", s->tokens[t], c->vocab_size);
        if (s->adapter) {
            if (!ft__adapter_fits(s->adapter, m))
                return ft_error(FT_ERR_INVALID, "context: adapter %s was made for another model shape", s->adapter->name);
            if (s->adapter->r > ctx->p.max_lora_rank)
                return ft_error(FT_ERR_INVALID, "context: adapter %s has rank %d, above the context's max_lora_rank %d",
                                s->adapter->name, s->adapter->r, ctx->p.max_lora_rank);
        }
    }
    if (m->ts.lora_rmax > ctx->p.max_lora_rank)
        return ft_error(FT_ERR_INVALID, "context: the model's LoRA rank %d is above the context's max_lora_rank %d", m->ts.lora_rmax, ctx->p.max_lora_rank);
    /* room in every slot named (lengths untouched: a failure here appends nothing) */
    for (int i = 0; i < n_seqs; i++) FT_TRY(slot_reserve(ctx, seqs[i].slot, ctx->slot_len[seqs[i].slot] + seqs[i].n_tokens));
    /* pack pieces into steps of at most batch_tokens rows; a sequence has at most one piece per step */
    enum { MAXP = 256 };
    piece pc[MAXP];
    int npc = 0, rows = 0, cap = ctx->p.batch_tokens;
    for (int i = 0; i < n_seqs; i++) {
        int off = 0;
        while (off < seqs[i].n_tokens) {
            if (rows == cap || npc == MAXP) { step(ctx, seqs, pc, npc, rows); npc = rows = 0; }
            int n = seqs[i].n_tokens - off;
            if (n > cap - rows) n = cap - rows;
            int slot = seqs[i].slot;
            pc[npc++] = (piece){.seq = i, .off = off, .n = n, .row = rows, .pos0 = ctx->slot_len[slot]};
            ctx->slot_len[slot] += n;
            rows += n;
            off += n;
        }
    }
    if (npc) step(ctx, seqs, pc, npc, rows);
    return FT_OK;
}

/* ------------------------------------------------------------------ the model's own one-sequence cache */

static ft_context_params model_ctx_params(void) {
    ft_context_params p = ft_context_default_params();
    p.max_lora_rank = 0;   /* resolved below: the model's own LoRA rank */
    return p;
}

/* the model's context still fits it (LoRA added or base quantized since it was made?) */
static int ctx_rank_ok(const ft_model *m) {
    return m->dctx->p.max_lora_rank >= m->ts.lora_rmax && m->dctx->wsn == m->qws_floats;
}

size_t ft_model_kv_bytes(const ft_model *m) {
    ft_context_params p = model_ctx_params();
    p.max_lora_rank = m->ts.lora_rmax > 0 ? m->ts.lora_rmax : 1;
    return ft_context_bytes(m, &p) + sizeof(ft_context);
}

int ft_model_kv_reset(ft_model *m) {
    if (m->dctx && ctx_rank_ok(m)) { ft_context_slot_clear(m->dctx, 0); return FT_OK; }
    ft_context_free(m->dctx);
    m->dctx = NULL;
    ft_context_params p = model_ctx_params();
    p.max_lora_rank = m->ts.lora_rmax > 0 ? m->ts.lora_rmax : 1;
    return ft_context_create(&m->dctx, m, &p);
}

int ft_model_decode(ft_model *m, const int *tokens, int n, int pos0, float *logits) {
    if (!m->dctx || !ctx_rank_ok(m)) FT_TRY(ft_model_kv_reset(m));
    int len = m->dctx->slot_len[0];
    if (pos0 != len) return ft_error(FT_ERR_INVALID, "decode at position %d but %d tokens are cached", pos0, len);
    if (n <= 0) return ft_error(FT_ERR_INVALID, "decode needs at least one token");
    if (pos0 + n > m->cfg.max_seq_len)
        return ft_error(FT_ERR_RANGE, "sequence of %d tokens exceeds the model's context of %d", pos0 + n, m->cfg.max_seq_len);
    ft_decode_seq s = {.slot = 0, .adapter = NULL, .tokens = tokens, .n_tokens = n, .logits = logits};
    return ft_context_decode(m->dctx, &s, 1);
}

ft_context *ft_model_context(ft_model *m) { return m->dctx; }
