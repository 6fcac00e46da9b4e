/* generate.c — the generation loop: prefill the prompt through the KV cache, then sample one
 * token at a time, decode it to text, hold back text that may begin a stop string, stream the rest. */
#include "finetune/generate.h"
#include "core/strbuf.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

void ft_generation_free(ft_generation *g) {
    if (!g) return;
    free(g->ids);
    free(g->text);
    memset(g, 0, sizeof *g);
}

/* appends to the generated text (core/strbuf.h), naming the command on failure */
static int sb_append(ft__sb *s, const char *p, size_t n) {
    return ft__sb_put(s, p, n) == FT_OK ? FT_OK : ft_error(FT_ERR_NOMEM, "generate: out of memory");
}

/* length of the longest suffix of text[0..len) that is a proper prefix of a stop string */
static size_t stop_holdback(const char *text, size_t len, const ft_generate_params *p) {
    size_t hold = 0;
    for (int s = 0; s < p->n_stop; s++) {
        size_t sl = strlen(p->stop[s]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > hold; k--)
            if (k <= len && memcmp(text + len - k, p->stop[s], k) == 0) { hold = k; break; }
    }
    return hold;
}

int ft_generate(ft_model *m, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                const ft_generate_params *p, ft_piece_fn on_piece, void *user, ft_generation *out) {
    memset(out, 0, sizeof *out);
    FT_TRY(ft_model_kv_reset(m));
    return ft_generate_ctx(ft_model_context(m), 0, NULL, tok, prompt, n_prompt, p, on_piece, user, out);
}

/* one decode call of n tokens of one sequence */
static int decode1(ft_context *ctx, int slot, const ft_adapter *ad, const int *ids, int n, float *logits) {
    ft_decode_seq s = {.slot = slot, .adapter = ad, .tokens = ids, .n_tokens = n, .logits = logits};
    return ft_context_decode(ctx, &s, 1);
}

int ft_generate_ctx(ft_context *ctx, int slot, const ft_adapter *ad, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                    const ft_generate_params *p, ft_piece_fn on_piece, void *user, ft_generation *out) {
    memset(out, 0, sizeof *out);
    const ft_model_config *c = ft_model_get_config(ft_context_model(ctx));
    int V = c->vocab_size;
    if (n_prompt <= 0) return ft_error(FT_ERR_INVALID, "generate: the prompt is empty (no tokens)");
    int ctx_len = ft_context_slot_capacity(ctx);
    if (n_prompt >= ctx_len)
        return ft_error(FT_ERR_RANGE, "generate: the prompt has %d tokens, the model's context is %d", n_prompt, ctx_len);
    int max_new = p->max_new_tokens;
    int eos = tok ? ft_tokenizer_eos(tok) : c->eos_token_id;
    if (eos < 0) eos = c->eos_token_id;
    int cap_hist = n_prompt + (max_new > 0 ? max_new : 0) + 1;
    int *hist = malloc(sizeof(int) * (size_t)cap_hist);
    float *logits = malloc(sizeof(float) * (size_t)V);
    void *work = malloc(ft_sample_work_size(V));
    ft__sb text = {0};
    int rc = (hist && logits && work) ? FT_OK : ft_error(FT_ERR_NOMEM, "generate: out of memory");
    if (rc == FT_OK) rc = ft_context_slot_clear(ctx, slot);
    if (rc == FT_OK) rc = decode1(ctx, slot, ad, prompt, n_prompt, logits);
    if (rc != FT_OK) goto done;
    memcpy(hist, prompt, sizeof(int) * (size_t)n_prompt);
    int n_hist = n_prompt;
    ft_rng rng;
    ft_rng_seed(&rng, p->seed);
    size_t emitted = 0;
    int prev = prompt[n_prompt - 1];
    out->stopped_by = 0;
    for (int step = 0; step < max_new; step++) {
        int id = ft_sample_logits(logits, V, hist, n_hist, p, &rng, work);
        if (p->stop_at_eos && id == eos) { out->stopped_by = 1; break; }
        hist[n_hist++] = id;
        int done_stop = 0;
        if (tok) {
            char piece[256];
            int n = ft_tokenizer_decode_piece(tok, prev, id, piece, sizeof piece);
            if (n < 0) { rc = n; break; }
            size_t before = text.n;
            if ((rc = sb_append(&text, piece, (size_t)n)) != FT_OK) break;
            size_t limit = text.n;
            for (int s = 0; s < p->n_stop; s++) {
                size_t sl = strlen(p->stop[s]);
                if (!sl) continue;
                size_t from = before >= sl ? before - sl + 1 : 0;
                char *hit = memmem(text.p + from, text.n - from, p->stop[s], sl);
                if (hit && (size_t)(hit - text.p) < limit) { limit = (size_t)(hit - text.p); done_stop = 1; }
            }
            if (done_stop) { text.n = limit; text.p[limit] = 0; }
            size_t ready = done_stop ? text.n : text.n - stop_holdback(text.p, text.n, p);
            if (on_piece && ready > emitted) {
                if (on_piece(user, text.p + emitted, ready - emitted)) { emitted = ready; out->stopped_by = 3; prev = id; break; }
                emitted = ready;
            }
        }
        prev = id;
        if (done_stop) { out->stopped_by = 2; break; }
        if (step + 1 == max_new) break;
        if (n_hist >= ctx_len) { out->stopped_by = 4; break; }
        if ((rc = decode1(ctx, slot, ad, &id, 1, logits)) != FT_OK) break;
    }
    if (rc == FT_OK && tok && on_piece && text.n > emitted) on_piece(user, text.p + emitted, text.n - emitted);
    if (rc == FT_OK) {
        out->n_ids = n_hist - n_prompt;
        out->ids = malloc(sizeof(int) * (size_t)(out->n_ids ? out->n_ids : 1));
        if (!out->ids) rc = ft_error(FT_ERR_NOMEM, "generate: out of memory");
        else memcpy(out->ids, hist + n_prompt, sizeof(int) * (size_t)out->n_ids);
        out->text = ft__sb_take(&text, &out->text_len);   /* "" when nothing was generated */
        if (!out->text) rc = ft_error(FT_ERR_NOMEM, "generate: out of memory");
    }
done:
    free(text.p);
    free(hist);
    free(logits);
    free(work);
    if (rc != FT_OK) ft_generation_free(out);
    return rc;
}
