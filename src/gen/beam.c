/* beam.c — beam search equal to transformers' GenerationMixin._beam_search (generate(num_beams=N,
 * do_sample=False), transformers 5.x) for one prompt, written from its semantics:
 *
 *   running scores s[N] = {0, -1e9, ..., -1e9}  (float32: only beam 0 counts at the first step)
 *   loop, g = tokens generated so far:
 *     acc[b, v] = s[b] + log_softmax(logits[b])[v]    (no-repeat-ngram bans: -inf)
 *     cand[0..K) = top K = 2N of acc over all (b, v), best first
 *     hit[k] = token is EOS, or g + 1 == max_new_tokens
 *     finished += {cand[k] : k < N and hit[k]} scored acc / (g + 1)^length_penalty; keep the N best
 *     running = the first N candidates that do not hit, in order
 *     g += 1; stop when every candidate hit, or (N finished and) early_stopping says so (generate.h)
 *   return the num_return_sequences best finished hypotheses
 *
 * Each running beam lives in one KV slot of the context; all beams decode their new token in one batched
 * ft_context_decode. After a step, beam i continues old beam src[i]: the first new beam from each old beam
 * takes over its slot, the others get a copy of it in a slot no new beam claimed (there are exactly as many
 * of those as duplicates). Shapes: N beams, V vocabulary, K = 2N candidates, G = max_new_tokens.
 *
 * A search is a small state machine (search_begin: the prompt's prefill pending; search_step after each decode of
 * the pending rows), so that ft_beam_search_batch runs several searches, each on its own N slots, with the rows of
 * all of them in one ft_context_decode per step. */
#include "finetune/generate.h"
#include "gen/gen_seq.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEG_BIG -1.0e9f   /* transformers' "very large negative" score */

ft_beam_params ft_beam_default_params(void) {
    ft_beam_params p = {.num_beams = 4, .length_penalty = 1.0f, .early_stopping = FT_BEAM_STOP_HEURISTIC,
                        .num_return_sequences = 1, .no_repeat_ngram_size = 0, .max_new_tokens = 128, .eos_token_id = -1};
    return p;
}

void ft_beam_result_free(ft_beam_result *r) {
    if (!r) return;
    for (int i = 0; r->hyps && i < r->n; i++) { free(r->hyps[i].ids); free(r->hyps[i].text); }
    free(r->hyps);
    memset(r, 0, sizeof *r);
}

typedef struct cand { float score; int beam, id; } cand;

/* inserts (score, beam, id) into top[0..*n) kept sorted best first, at most k long; equal scores keep the
 * earlier (lower flat index) first, as scanned in index order */
static void topk_push(cand *top, int *n, int k, float score, int beam, int id) {
    if (*n == k && !(score > top[k - 1].score)) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && score > top[i - 1].score) { top[i] = top[i - 1]; i--; }
    top[i] = (cand){score, beam, id};
}

/* lp[V] = log_softmax(x[V]) in float32, as torch's x - max - log(sum(exp(x - max))) */
static void log_softmax(float *lp, const float *x, int V) {
    float mx = x[0];
    for (int v = 1; v < V; v++) if (x[v] > mx) mx = x[v];
    double sum = 0;
    for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
    float lse = logf((float)sum);
    for (int v = 0; v < V; v++) lp[v] = x[v] - mx - lse;
}

/* transformers' NoRepeatNGramLogitsProcessor: the tokens that would repeat an n-gram of seq[0..len) */
static void ban_ngrams(float *lp, const int *seq, int len, int n, int V) {
    if (n <= 0 || len + 1 < n) return;
    const int *tail = seq + len - (n - 1);   /* the n-1 tokens the next one would follow */
    for (int s = 0; s + n <= len; s++)
        if (memcmp(seq + s, tail, sizeof(int) * (size_t)(n - 1)) == 0) {
            int t = seq[s + n - 1];
            if (t >= 0 && t < V) lp[t] = -INFINITY;
        }
}

/* one finished hypothesis while searching */
typedef struct fin { float score; int n, eos; int *ids; } fin;

/* the search's state: N running beams of prompt + g tokens, up to N finished hypotheses */
typedef struct beam_state {
    int N, K, V, G, n_prompt, eos;
    int *seq;        /* [N, n_prompt + G] running sequences (prompt, then the generated tokens) */
    int *seq_next;   /* [N, n_prompt + G] */
    float *score;    /* [N] running scores */
    int *slot;       /* [N] each running beam's KV slot */
    int *slot_next;  /* [N] */
    char *claimed;   /* [N] per slot index (relative to slot0) */
    float *logits;   /* [N, V] */
    float *lp;       /* [V] */
    cand *top;       /* [K] */
    fin *done;       /* [N] best first */
    int n_done;
    const ft_beam_params *p;
    const ft_adapter *ad;
    const int *prompt;          /* [n_prompt] the caller's (kept alive while the search runs) */
    int slot0, g, ended;        /* first slot; tokens generated so far; 1 once the search stopped */
    int *next_tok;              /* [N] each running beam's token to decode next */
    ft_decode_seq *pending;     /* [N] the rows to decode before the next step */
    int n_pending;
} beam_state;

static void state_free(beam_state *b) {
    free(b->seq); free(b->seq_next); free(b->score); free(b->slot); free(b->slot_next); free(b->claimed);
    free(b->logits); free(b->lp); free(b->top); free(b->next_tok); free(b->pending);
    for (int i = 0; b->done && i < b->N; i++) free(b->done[i].ids);
    free(b->done);
}

static int state_init(beam_state *b, int N, int V, int G, int n_prompt, int eos) {
    memset(b, 0, sizeof *b);
    b->N = N; b->K = 2 * N; b->V = V; b->G = G; b->n_prompt = n_prompt; b->eos = eos;
    size_t W = (size_t)(n_prompt + G);
    b->seq = malloc(sizeof(int) * (size_t)N * W);
    b->seq_next = malloc(sizeof(int) * (size_t)N * W);
    b->score = malloc(sizeof(float) * (size_t)N);
    b->slot = malloc(sizeof(int) * (size_t)N);
    b->slot_next = malloc(sizeof(int) * (size_t)N);
    b->claimed = malloc((size_t)N);
    b->logits = malloc(sizeof(float) * (size_t)N * (size_t)V);
    b->lp = malloc(sizeof(float) * (size_t)V);
    b->top = malloc(sizeof(cand) * (size_t)b->K);
    b->done = calloc((size_t)N, sizeof(fin));
    b->next_tok = malloc(sizeof(int) * (size_t)N);
    b->pending = malloc(sizeof(ft_decode_seq) * (size_t)N);
    int ok = b->next_tok && b->pending && b->seq && b->seq_next && b->score && b->slot && b->slot_next && b->claimed && b->logits && b->lp && b->top && b->done;
    for (int i = 0; ok && i < N; i++) ok = (b->done[i].ids = malloc(sizeof(int) * (size_t)G)) != NULL;
    if (!ok) { state_free(b); return ft_error(FT_ERR_NOMEM, "beam search: out of memory"); }
    return FT_OK;
}

/* adds a finished hypothesis (beam's sequence + id, g + 1 tokens) if it ranks among the N best */
static void add_finished(beam_state *b, const int *gen, int g, int id, float score, int eos) {
    int N = b->N;
    if (b->n_done == N && !(score > b->done[N - 1].score)) return;
    int i = b->n_done < N ? b->n_done++ : N - 1;
    int *spare = b->done[i].ids;   /* the slot that falls off (or the free one) is reused */
    while (i > 0 && score > b->done[i - 1].score) { b->done[i] = b->done[i - 1]; i--; }
    memcpy(spare, gen, sizeof(int) * (size_t)g);
    spare[g] = id;
    b->done[i] = (fin){score, g + 1, eos, spare};
}

/* the best running beam could still beat the worst finished one (transformers' _check_early_stop_heuristic) */
static int can_improve(const beam_state *b, const ft_beam_params *p, int g) {
    if (b->n_done < b->N) return 1;
    int len = p->early_stopping == FT_BEAM_STOP_NEVER && p->length_penalty > 0.0f ? b->G : g;
    float best = b->score[0] / (float)pow((double)len, (double)p->length_penalty);
    return best > b->done[b->N - 1].score;
}

/* new running beams' slots: each old beam's slot goes to the first new beam continuing it, the others get
 * copies in unclaimed slots. first: every beam holds the prompt in slot0 (only beam 0 was prefilled). */
static int reorder_slots(beam_state *b, ft_context *ctx, int slot0, int first) {
    int N = b->N;
    memset(b->claimed, 0, (size_t)N);
    for (int i = 0; i < N; i++) b->slot_next[i] = -1;
    for (int i = 0; i < N; i++) {
        int from = first ? slot0 : b->slot[b->top[i].beam];
        if (!b->claimed[from - slot0]) { b->claimed[from - slot0] = 1; b->slot_next[i] = from; }
    }
    int free_slot = 0;
    for (int i = 0; i < N; i++) {
        if (b->slot_next[i] >= 0) continue;
        while (b->claimed[free_slot]) free_slot++;
        b->claimed[free_slot] = 1;
        b->slot_next[i] = slot0 + free_slot;
        int from = first ? slot0 : b->slot[b->top[i].beam];
        FT_TRY(ft_context_slot_copy(ctx, b->slot_next[i], from));
    }
    memcpy(b->slot, b->slot_next, sizeof(int) * (size_t)N);
    return FT_OK;
}

static int hyp_text(const ft_tokenizer *tok, int prev, const int *ids, int n, ft_beam_hyp *h) {
    ft__sb sb = {0};
    char piece[256];
    for (int i = 0; i < n; i++) {
        int len = ft_tokenizer_decode_piece(tok, prev, ids[i], piece, sizeof piece);
        if (len < 0) { ft__sb_free(&sb); return len; }
        ft__sb_put(&sb, piece, (size_t)len);
        prev = ids[i];
    }
    ft__sb_put(&sb, "", 0);
    if (sb.err) { ft__sb_free(&sb); return ft_error(FT_ERR_NOMEM, "beam search: out of memory"); }
    h->text = ft__sb_take(&sb, &h->text_len);
    return FT_OK;
}

static int check_params(const ft_beam_params *p, int n_prompt) {
    if (p->num_beams < 1) return ft_error(FT_ERR_INVALID, "beam search: num_beams must be >= 1 (got %d)", p->num_beams);
    if (p->num_return_sequences < 1 || p->num_return_sequences > p->num_beams)
        return ft_error(FT_ERR_INVALID, "beam search: num_return_sequences must be in 1..num_beams (%d), got %d",
                        p->num_beams, p->num_return_sequences);
    if (p->max_new_tokens < 1) return ft_error(FT_ERR_INVALID, "beam search: max_new_tokens must be >= 1 (got %d)", p->max_new_tokens);
    if (p->early_stopping < FT_BEAM_STOP_HEURISTIC || p->early_stopping > FT_BEAM_STOP_NEVER)
        return ft_error(FT_ERR_INVALID, "beam search: early_stopping must be FT_BEAM_STOP_HEURISTIC, _EARLY or _NEVER");
    if (p->no_repeat_ngram_size < 0) return ft_error(FT_ERR_INVALID, "beam search: no_repeat_ngram_size must be >= 0");
    if (n_prompt <= 0) return ft_error(FT_ERR_INVALID, "beam search: the prompt is empty (no tokens)");
    return FT_OK;
}

/* one step's scoring: acc of every (beam, token), the top K candidates into b->top */
static void score_step(beam_state *b, const ft_beam_params *p, int g, int first) {
    int N = b->N, V = b->V, W = b->n_prompt + b->G, n_top = 0;
    for (int i = 0; i < N; i++) {
        log_softmax(b->lp, b->logits + (size_t)(first ? 0 : i) * V, V);
        ban_ngrams(b->lp, b->seq + (size_t)i * W, b->n_prompt + g, p->no_repeat_ngram_size, V);
        float s = b->score[i];
        for (int v = 0; v < V; v++) topk_push(b->top, &n_top, b->K, s + b->lp[v], i, v);
    }
}

/* ---- one search as a state machine: begin (the prefill is pending), then after each decode of its pending rows
 * one step (score, finish, select, fork slots, the next rows pending), until it ended ---- */

static int search_begin(beam_state *b, ft_context *ctx, int slot0, const ft_adapter *ad, const ft_tokenizer *tok,
                        const int *prompt, int n_prompt, const ft_beam_params *p) {
    memset(b, 0, sizeof *b);
    FT_TRY(check_params(p, n_prompt));
    int N = p->num_beams;
    if (slot0 < 0 || slot0 + N > ft_context_n_slots(ctx))
        return ft_error(FT_ERR_RANGE, "beam search: %d beams need slots %d..%d, the context has %d", N, slot0,
                        slot0 + N - 1, ft_context_n_slots(ctx));
    int cap = ft_context_slot_capacity(ctx);
    if (n_prompt >= cap)
        return ft_error(FT_ERR_RANGE, "beam search: the prompt has %d tokens, the model's context is %d", n_prompt, cap);
    const ft_model_config *c = ft_model_get_config(ft_context_model(ctx));
    int V = c->vocab_size, G = p->max_new_tokens < cap - n_prompt ? p->max_new_tokens : cap - n_prompt;
    int eos = p->eos_token_id == -1 ? ft__gen_eos(c, tok) : p->eos_token_id;
    if (eos >= V) return ft_error(FT_ERR_INVALID, "beam search: eos_token_id %d is outside the vocabulary (%d)", eos, V);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V) return ft_error(FT_ERR_INVALID, "beam search: prompt token %d is outside the vocabulary (%d)", prompt[i], V);
    FT_TRY(state_init(b, N, V, G, n_prompt, eos));
    b->p = p;
    b->ad = ad;
    b->slot0 = slot0;
    b->prompt = prompt;
    int W = n_prompt + G, rc = FT_OK;
    for (int i = 0; i < N; i++) {
        memcpy(b->seq + (size_t)i * W, prompt, sizeof(int) * (size_t)n_prompt);
        b->score[i] = i == 0 ? 0.0f : NEG_BIG;
        b->slot[i] = slot0 + i;
        if (rc == FT_OK) rc = ft_context_slot_clear(ctx, slot0 + i);
    }
    if (rc != FT_OK) { state_free(b); return rc; }
    b->pending[0] = (ft_decode_seq){.slot = slot0, .adapter = ad, .tokens = prompt, .n_tokens = n_prompt, .logits = b->logits};
    b->n_pending = 1;
    return FT_OK;
}

/* one step after the pending rows were decoded: b->ended, or the next rows pending */
static int search_step(beam_state *b, ft_context *ctx) {
    const ft_beam_params *p = b->p;
    int N = b->N, g = b->g, n_prompt = b->n_prompt, W = n_prompt + b->G, first = g == 0;
    score_step(b, p, g, first);
    /* finished hypotheses among the first N candidates; the first N others run on */
    int all_hit = 1, n_run = 0;
    for (int k = 0; k < b->K; k++) {
        cand *ck = &b->top[k];
        int is_eos = b->eos >= 0 && ck->id == b->eos, hit = is_eos || g + 1 >= b->G;
        const int *src = b->seq + (size_t)ck->beam * W;
        if (hit && k < N) {
            float len_pen = (float)pow((double)(g + 1), (double)p->length_penalty);
            add_finished(b, src + n_prompt, g, ck->id, ck->score / len_pen, is_eos);
        }
        if (!hit) all_hit = 0;
        if (!hit && n_run < N) {
            int *dst = b->seq_next + (size_t)n_run * W;
            memcpy(dst, src, sizeof(int) * (size_t)(n_prompt + g));
            dst[n_prompt + g] = ck->id;
            b->top[n_run] = *ck;     /* running beam n_run (k >= n_run: this entry is read no more) */
            n_run++;
        }
    }
    b->n_pending = 0;
    b->g = g + 1;
    if (all_hit || n_run < N) { b->ended = 1; return FT_OK; }
    for (int i = 0; i < N; i++) b->score[i] = b->top[i].score;
    int *t = b->seq; b->seq = b->seq_next; b->seq_next = t;
    if (!can_improve(b, p, g + 1) || (p->early_stopping == FT_BEAM_STOP_EARLY && b->n_done == N)) { b->ended = 1; return FT_OK; }
    FT_TRY(reorder_slots(b, ctx, b->slot0, first));
    for (int i = 0; i < N; i++) {
        b->next_tok[i] = b->seq[(size_t)i * W + n_prompt + g];
        b->pending[i] = (ft_decode_seq){.slot = b->slot[i], .adapter = b->ad, .tokens = &b->next_tok[i], .n_tokens = 1,
                                        .logits = b->logits + (size_t)i * b->V};
    }
    b->n_pending = N;
    return FT_OK;
}

/* the num_return_sequences best finished hypotheses into out */
static int search_result(beam_state *b, const ft_tokenizer *tok, ft_beam_result *out) {
    memset(out, 0, sizeof *out);
    int R = b->p->num_return_sequences, rc = FT_OK;
    if (b->n_done < R) return ft_error(FT_ERR_UNSUPPORTED, "beam search: %d finished hypotheses, %d asked for", b->n_done, R);
    out->hyps = calloc((size_t)R, sizeof(ft_beam_hyp));
    if (!out->hyps) return ft_error(FT_ERR_NOMEM, "beam search: out of memory");
    out->n = R;
    for (int i = 0; rc == FT_OK && i < R; i++) {
        ft_beam_hyp *h = &out->hyps[i];
        fin *f = &b->done[i];
        h->ids = malloc(sizeof(int) * (size_t)f->n);
        if (!h->ids) { rc = ft_error(FT_ERR_NOMEM, "beam search: out of memory"); break; }
        memcpy(h->ids, f->ids, sizeof(int) * (size_t)f->n);
        h->n_ids = f->n;
        h->score = f->score;
        h->eos = f->eos;
        if (tok) rc = hyp_text(tok, b->prompt[b->n_prompt - 1], h->ids, h->n_ids - h->eos, h);
    }
    if (rc != FT_OK) ft_beam_result_free(out);
    return rc;
}

int ft_beam_search_ctx(ft_context *ctx, int slot0, const ft_adapter *ad, const ft_tokenizer *tok, const int *prompt,
                       int n_prompt, const ft_beam_params *p, ft_beam_result *out) {
    memset(out, 0, sizeof *out);
    beam_state b;
    FT_TRY(search_begin(&b, ctx, slot0, ad, tok, prompt, n_prompt, p));
    int rc = FT_OK;
    while (rc == FT_OK && !b.ended) {
        rc = ft_context_decode(ctx, b.pending, b.n_pending);
        if (rc == FT_OK) rc = search_step(&b, ctx);
    }
    if (rc == FT_OK) rc = search_result(&b, tok, out);
    state_free(&b);
    return rc;
}

int ft_beam_search_batch(ft_context *ctx, const ft_adapter *ad, const ft_tokenizer *tok, const int *const *prompts,
                         const int *n_prompts, int n, const ft_beam_params *p, ft_beam_result *out,
                         ft_beam_done_fn on_done, void *user) {
    if (n < 0 || (n > 0 && (!prompts || !n_prompts || !out)) || p->num_beams < 1)
        return ft_error(FT_ERR_INVALID, "ft_beam_search_batch: bad arguments (n %d, num_beams %d)", n, p->num_beams);
    memset(out, 0, sizeof *out * (size_t)n);
    int N = p->num_beams, S = ft_context_n_slots(ctx) / N;
    if (S < 1) return ft_error(FT_ERR_RANGE, "beam search: %d beams need %d slots, the context has %d", N, N, ft_context_n_slots(ctx));
    beam_state *b = calloc((size_t)S, sizeof *b);
    int *who = malloc(sizeof(int) * (size_t)S);
    ft_decode_seq *seqs = malloc(sizeof *seqs * (size_t)S * (size_t)N);
    int rc = b && who && seqs ? FT_OK : ft_error(FT_ERR_NOMEM, "beam search: out of memory");
    for (int k = 0; who && k < S; k++) who[k] = -1;
    int next = 0, active = 0;
    while (rc == FT_OK) {
        for (int k = 0; k < S && next < n && rc == FT_OK; k++) {
            if (who[k] >= 0) continue;
            rc = search_begin(&b[k], ctx, k * N, ad, tok, prompts[next], n_prompts[next], p);
            if (rc == FT_OK) { who[k] = next++; active++; }
        }
        if (rc != FT_OK || active == 0) break;
        int m = 0;
        for (int k = 0; k < S; k++)
            if (who[k] >= 0) { memcpy(seqs + m, b[k].pending, sizeof *seqs * (size_t)b[k].n_pending); m += b[k].n_pending; }
        rc = ft_context_decode(ctx, seqs, m);
        for (int k = 0; k < S && rc == FT_OK; k++) {
            if (who[k] < 0) continue;
            rc = search_step(&b[k], ctx);
            if (rc != FT_OK || !b[k].ended) continue;
            rc = search_result(&b[k], tok, &out[who[k]]);
            if (rc == FT_OK && on_done) on_done(user, who[k], &out[who[k]]);
            state_free(&b[k]);
            who[k] = -1;
            active--;
        }
    }
    for (int k = 0; b && who && k < S; k++)
        if (who[k] >= 0) state_free(&b[k]);
    if (rc != FT_OK)
        for (int i = 0; i < n; i++) ft_beam_result_free(&out[i]);
    free(b);
    free(who);
    free(seqs);
    return rc;
}

int ft_beam_search(const ft_model *m, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                   const ft_beam_params *p, ft_beam_result *out) {
    memset(out, 0, sizeof *out);
    FT_TRY(check_params(p, n_prompt));
    ft_context_params cp = ft_context_default_params();
    cp.n_slots = p->num_beams;
    long need = (long)n_prompt + p->max_new_tokens;
    cp.slot_tokens = need < ft_model_get_config(m)->max_seq_len ? (int)need : 0;
    ft_context *ctx;
    FT_TRY(ft_context_create(&ctx, m, &cp));
    int rc = ft_beam_search_ctx(ctx, 0, NULL, tok, prompt, n_prompt, p, out);
    ft_context_free(ctx);
    return rc;
}
