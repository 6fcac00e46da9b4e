/* generate.c — the generation loop: prefill the prompt through the KV cache, then one token at a time
 * (gen_seq.h: sampling, text, stop strings, EOS), streaming the text as it becomes safe to show. */
#include "finetune/generate.h"
#include "gen/gen_seq.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

int ft_generate_start_token(const ft_tokenizer *tok, const ft_model_config *c) {
    int start = tok ? ft_tokenizer_bos(tok) : -1;
    if (start < 0 && tok) start = ft_tokenizer_eos(tok);
    if (start < 0 && c) start = c->bos_token_id;
    return start;
}

void ft_generation_free(ft_generation *g) {
    if (!g) return;
    free(g->ids);
    free(g->text);
    memset(g, 0, sizeof *g);
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
    ft__gen_seq s;
    FT_TRY(ft__gen_seq_init(&s, p, tok, V, ft__gen_eos(c, tok), ft_context_slot_capacity(ctx), prompt, n_prompt));
    float *logits = malloc(sizeof(float) * (size_t)V);
    int rc = logits ? FT_OK : ft_error(FT_ERR_NOMEM, "generate: out of memory");
    if (rc == FT_OK) rc = ft_context_slot_clear(ctx, slot);
    if (rc == FT_OK) rc = decode1(ctx, slot, ad, prompt, n_prompt, logits);
    while (rc == FT_OK) {
        int id;
        const char *piece;
        size_t len;
        int more = ft__gen_seq_next(&s, logits, &id, &piece, &len);
        if (more < 0) { rc = more; break; }
        if (on_piece && len && on_piece(user, piece, len)) { ft__gen_seq_end(&s, FT__GEN_CALLBACK); break; }
        if (!more) break;
        rc = decode1(ctx, slot, ad, &id, 1, logits);
    }
    if (rc == FT_OK) rc = ft__gen_seq_result(&s, out);
    ft__gen_seq_free(&s);
    free(logits);
    return rc;
}
