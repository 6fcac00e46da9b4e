/* generate.h — text generation with a KV cache: greedy, temperature, top-k, top-p, repetition
 * penalty, stop strings, max new tokens, seed. Logits processing follows transformers' order:
 * repetition penalty, temperature, top-k, top-p; temperature 0 means greedy (argmax).
 *
 *   ft_generate_params p = ft_generate_default_params();
 *   p.max_new_tokens = 50; p.temperature = 0.8f; p.top_p = 0.95f; p.seed = 42;
 *   ft_generation g;
 *   ft_generate(model, tok, prompt_ids, n_prompt, &p, on_piece, stdout, &g);  // streams pieces
 *   ... g.ids[0..g.n_ids) are the new tokens; ft_generation_free(&g);
 */
#ifndef FINETUNE_GENERATE_H
#define FINETUNE_GENERATE_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/context.h"
#include "finetune/model.h"
#include "finetune/rng.h"
#include "finetune/tokenizer.h"

typedef struct ft_generate_params {
    int         max_new_tokens;     /* default 128 */
    float       temperature;        /* 0 = greedy; default 1 */
    int         top_k;              /* 0 = off */
    float       top_p;              /* 1 = off */
    float       repetition_penalty; /* 1 = off (CTRL / transformers rule: divide positive logits, multiply negative) */
    uint64_t    seed;
    int         stop_at_eos;        /* default 1: stop after the model's EOS token (not emitted as text) */
    const char *const *stop;        /* stop strings: generation ends before the first occurrence */
    int         n_stop;
} ft_generate_params;

ft_generate_params ft_generate_default_params(void);

/* Called with each newly decoded piece of text; return nonzero to stop early. */
typedef int (*ft_piece_fn)(void *user, const char *text, size_t len);

typedef struct ft_generation {
    int   *ids;      /* the generated token ids (malloc'd) */
    int    n_ids;
    char  *text;     /* the generated text (malloc'd, NUL-terminated; stop string removed) */
    size_t text_len;
    int    stopped_by; /* 0 max tokens, 1 eos, 2 stop string, 3 callback, 4 context full */
} ft_generation;

/* Runs the prompt through the model (clearing its KV cache) and generates. tok may be NULL (then no
 * text, no stop strings). on_piece may be NULL. Returns FT_OK or a negative status. */
int  ft_generate(ft_model *m, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                 const ft_generate_params *p, ft_piece_fn on_piece, void *user, ft_generation *out);
/* The same in slot `slot` of ctx (cleared first), with LoRA adapter ad (NULL = the base): generations over
 * one shared model from several threads, one context each (context.h). */
int  ft_generate_ctx(ft_context *ctx, int slot, const ft_adapter *ad, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                     const ft_generate_params *p, ft_piece_fn on_piece, void *user, ft_generation *out);
void ft_generation_free(ft_generation *g);
/* The token an empty prompt starts from: the tokenizer's BOS, else its EOS (GPT-2's <|endoftext|> separates
 * documents), else the config's bos_token_id (tok or c may be NULL); -1 when there is none. */
int  ft_generate_start_token(const ft_tokenizer *tok, const ft_model_config *c);

/* Sampling from one logits vector (modified in place). history[n_hist] feeds the repetition
 * penalty. work must hold 2*V floats/ints (see ft_sample_work_size). Deterministic given rng. */
size_t ft_sample_work_size(int V);
int    ft_sample_logits(float *logits, int V, const int *history, int n_hist, const ft_generate_params *p,
                        ft_rng *rng, void *work);
#endif
