/* gen_seq.h — one sequence's generation after its prompt (internal): sampling, EOS, incremental
 * detokenisation, stop strings with hold-back, max new tokens and slot capacity. The one state machine
 * behind ft_generate_ctx (one sequence, src/gen/generate.c) and the serving engine (many sequences, one
 * batched decode per step, src/serve/engine_gen.c), so that both give the same tokens and text.
 *
 *   ft__gen_seq s;
 *   FT_TRY(ft__gen_seq_init(&s, &params, tok, V, eos, capacity, prompt, n_prompt));
 *   decode the prompt -> logits [V]
 *   for (;;) {
 *       int id; const char *piece; size_t len;
 *       int more = ft__gen_seq_next(&s, logits, &id, &piece, &len);   // < 0 error, 0 ended, 1 goes on
 *       if (more < 0) ...; hand out piece[0, len) (may be empty);
 *       if (!more) break;                   // s.stopped_by says why
 *       decode id -> logits
 *   }
 *   ft__gen_seq_result(&s, &generation);  ft__gen_seq_free(&s);
 *
 * Ownership: p and tok are only pointed to (the caller keeps them alive while the sequence runs);
 * everything else is owned by the state and released by ft__gen_seq_free. Not thread-safe: one
 * thread at a time per sequence. */
#ifndef FT_GEN_SEQ_H
#define FT_GEN_SEQ_H
#include <stddef.h>
#include "core/strbuf.h"
#include "finetune/generate.h"

/* why a sequence ended: the values of ft_generation.stopped_by */
enum { FT__GEN_RUNNING = -1, FT__GEN_MAX_TOKENS = 0, FT__GEN_EOS = 1, FT__GEN_STOP_STRING = 2, FT__GEN_CALLBACK = 3,
       FT__GEN_CONTEXT_FULL = 4 };

typedef struct ft__gen_seq {
    const ft_generate_params *p;   /* sampling settings, stop strings, max_new_tokens */
    const ft_tokenizer *tok;       /* NULL: ids only (no text, no stop strings) */
    int    V, eos, capacity;       /* vocabulary size; EOS id (-1: none); tokens the slot holds */
    int   *hist;                   /* [min(n_prompt + max_new, capacity) + 1] the prompt, then the generated ids */
    int    n_hist, n_prompt;
    ft_rng rng;                    /* seeded with p->seed */
    void  *work;                   /* ft_sample_work_size(V) bytes */
    ft__sb text;                   /* the generated text (stop string cut off) */
    size_t emitted;                /* bytes of text already handed out */
    int    prev;                   /* the previous token, for ft_tokenizer_decode_piece */
    int    stopped_by;             /* FT__GEN_RUNNING, then why it ended */
} ft__gen_seq;

/* The end-of-sequence id generation stops at: the tokenizer's (tok may be NULL), else the config's (-1: none). */
int  ft__gen_eos(const ft_model_config *c, const ft_tokenizer *tok);
/* A sequence after prompt[0, n_prompt) (copied). FT_ERR_INVALID for an empty prompt, FT_ERR_RANGE for a
 * prompt that fills the slot (n_prompt >= capacity). */
int  ft__gen_seq_init(ft__gen_seq *s, const ft_generate_params *p, const ft_tokenizer *tok, int V, int eos, int capacity,
                      const int *prompt, int n_prompt);
/* Picks the next token from logits [V] (modified in place: penalty, temperature) and advances the text.
 * Returns 1 when the sequence goes on (*id: the token to decode next), 0 when it ended (s->stopped_by says
 * why; *id: the last token, -1 after EOS), or a negative status. *piece / *piece_len: text that is now safe
 * to hand out (past the stop-string hold-back; when it ended, all that is left); points into s until the
 * next call. A sequence whose max_new_tokens is 0 ends at the first call with no token. */
int  ft__gen_seq_next(ft__gen_seq *s, float *logits, int *id, const char **piece, size_t *piece_len);
/* Ends a running sequence from outside (why: FT__GEN_CALLBACK, ...). */
void ft__gen_seq_end(ft__gen_seq *s, int why);
/* Generated tokens so far. */
static inline int ft__gen_seq_n_generated(const ft__gen_seq *s) { return s->n_hist - s->n_prompt; }
/* Moves the generated ids and text into out (ft_generation_free); s keeps nothing of them. */
int  ft__gen_seq_result(ft__gen_seq *s, ft_generation *out);
void ft__gen_seq_free(ft__gen_seq *s);
#endif
