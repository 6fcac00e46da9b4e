/* generate_batch.c — generations for many prompts over the slots of one context (generate.h:
 * ft_generate_batch): up to n_slots sequences at a time; each step every active sequence adds its rows
 * (a whole prompt when it starts, then its last token) to ONE ft_context_decode call; an ended sequence's
 * slot takes the next prompt at once. Each sequence has its own ft__gen_seq (gen_seq.h: sampling with seed
 * p->seed + i, stop strings, EOS, max tokens), so prompt i gets the tokens ft_generate_ctx gives it alone
 * with that seed (exactly on the reference backend; on the CPU backend up to the rounding of matmuls over
 * another number of rows). */
#include "finetune/generate.h"
#include "gen/gen_seq.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

typedef struct run {
    int i;              /* prompt index; -1: the slot is free */
    int fed;            /* 0 until the prompt was decoded */
    int next;           /* the token to decode next */
    ft_generate_params p;
    ft__gen_seq s;
} run;

int ft_generate_batch(ft_context *ctx, const ft_adapter *ad, const ft_tokenizer *tok, const int *const *prompts,
                      const int *n_prompts, int n, const ft_generate_params *p, ft_generation *out,
                      ft_batch_done_fn on_done, void *user) {
    if (n < 0 || (n > 0 && (!prompts || !n_prompts || !out)))
        return ft_error(FT_ERR_INVALID, "ft_generate_batch: bad arguments (n %d)", n);
    memset(out, 0, sizeof *out * (size_t)n);
    const ft_model_config *c = ft_model_get_config(ft_context_model(ctx));
    int S = ft_context_n_slots(ctx), V = c->vocab_size, eos = ft__gen_eos(c, tok), cap = ft_context_slot_capacity(ctx);
    run *r = calloc((size_t)S, sizeof *r);
    float *logits = malloc(sizeof(float) * (size_t)S * (size_t)V);
    ft_decode_seq *seqs = malloc(sizeof *seqs * (size_t)S);
    int *row_slot = malloc(sizeof(int) * (size_t)S);
    int rc = r && logits && seqs && row_slot ? FT_OK : ft_error(FT_ERR_NOMEM, "generate: out of memory");
    for (int k = 0; r && k < S; k++) r[k].i = -1;
    int next_prompt = 0, active = 0;
    while (rc == FT_OK) {
        /* admit prompts into free slots */
        for (int k = 0; k < S && next_prompt < n && rc == FT_OK; k++) {
            if (r[k].i >= 0) continue;
            int i = next_prompt++;
            r[k].p = *p;
            r[k].p.seed = p->seed + (uint64_t)i;
            rc = ft__gen_seq_init(&r[k].s, &r[k].p, tok, V, eos, cap, prompts[i], n_prompts[i]);
            if (rc == FT_OK) rc = ft_context_slot_clear(ctx, k);
            if (rc != FT_OK) { ft__gen_seq_free(&r[k].s); break; }
            r[k].i = i;
            r[k].fed = 0;
            active++;
        }
        if (rc != FT_OK || active == 0) break;
        /* one batched step */
        int m = 0;
        for (int k = 0; k < S; k++) {
            if (r[k].i < 0) continue;
            int i = r[k].i;
            seqs[m] = (ft_decode_seq){.slot = k, .adapter = ad, .logits = logits + (size_t)m * V,
                                      .tokens = r[k].fed ? &r[k].next : prompts[i], .n_tokens = r[k].fed ? 1 : n_prompts[i]};
            row_slot[m++] = k;
        }
        rc = ft_context_decode(ctx, seqs, m);
        for (int j = 0; j < m && rc == FT_OK; j++) {
            run *q = &r[row_slot[j]];
            q->fed = 1;
            const char *piece;
            size_t len;
            int more = ft__gen_seq_next(&q->s, logits + (size_t)j * V, &q->next, &piece, &len);
            if (more < 0) { rc = more; break; }
            if (more) continue;
            rc = ft__gen_seq_result(&q->s, &out[q->i]);
            ft__gen_seq_free(&q->s);
            if (rc == FT_OK && on_done) on_done(user, q->i, &out[q->i]);
            q->i = -1;
            active--;
        }
    }
    for (int k = 0; r && k < S; k++)
        if (r[k].i >= 0) ft__gen_seq_free(&r[k].s);
    if (rc != FT_OK)
        for (int i = 0; i < n; i++) ft_generation_free(&out[i]);
    free(r);
    free(logits);
    free(seqs);
    free(row_slot);
    return rc;
}
