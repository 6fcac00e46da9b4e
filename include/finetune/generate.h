/* generate.h — text generation with a KV cache: greedy, temperature, top-k, top-p, repetition
 * penalty, stop strings, max new tokens, seed. Logits processing follows transformers' order:
 * repetition penalty, temperature, top-k, top-p; temperature 0 means greedy (argmax).
 *
 *   ft_generate_params p = ft_generate_default_params();
 *   p.max_new_tokens = 50; p.temperature = 0.8f; p.top_p = 0.95f; p.seed = 42;
 *   ft_generation g;
 *   ft_generate(model, tok, prompt_ids, n_prompt, &p, on_piece, stdout, &g);  // streams pieces
 *   ... g.ids[0..g.n_ids) are the new tokens; ft_generation_free(&g);
 *
 * Beam search (ft_beam_search) is transformers' generate(num_beams=N, do_sample=False), step for step:
 * every running beam's next-token log-softmax is added to its score (float32), the best 2N (beam, token)
 * continuations of all beams are kept, those ending in EOS (or at max_new_tokens) among the first N become
 * finished hypotheses scored sum_logprobs / generated_len^length_penalty (generated_len counts the EOS),
 * the N best that do not end run on, and the search stops as transformers' early_stopping says:
 *   FT_BEAM_STOP_HEURISTIC (early_stopping=False, the default): N finished and the best running beam's
 *       score / cur_generated_len^length_penalty is not above the worst finished one;
 *   FT_BEAM_STOP_EARLY (True): as soon as N hypotheses are finished;
 *   FT_BEAM_STOP_NEVER ("never"): as the heuristic but with max_new_tokens as the hypothetical length when
 *       length_penalty > 0 (the canonical beam search with length_penalty 0).
 * The beams run as the rows of one batched decode, one KV slot each, sharing one prompt prefill; a beam
 * that continues another's hypothesis gets a copy of its slot (ft_context_slot_copy).
 *
 *   ft_beam_params bp = ft_beam_default_params();  bp.num_beams = 4;  bp.max_new_tokens = 40;
 *   ft_beam_result r;
 *   ft_beam_search(model, tok, prompt_ids, n_prompt, &bp, &r);    // r.hyps[0] is the best hypothesis
 *   printf("%s (score %.4f)\n", r.hyps[0].text, r.hyps[0].score);  ft_beam_result_free(&r);
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
/* Called by ft_generate_batch as each prompt's generation ends (i: its index; g: out[i], filled). */
typedef void (*ft_batch_done_fn)(void *user, int i, const ft_generation *g);
/* Generations for prompts[0..n) (prompts[i] has n_prompts[i] tokens) over the slots of ctx, up to
 * ft_context_n_slots(ctx) at a time: every step decodes all running sequences in one batched call and a
 * finished sequence's slot takes the next prompt. Prompt i samples with seed p->seed + i, so it gets what
 * ft_generate_ctx gives it alone with that seed (exactly on the reference backend; on the CPU backend up to
 * the rounding of matmuls over another number of rows). out[n] is filled (free each with
 * ft_generation_free); on_done (may be NULL) is called as each ends, in completion order. An error (a
 * prompt that is empty or fills the slot, ...) frees every out[i] and returns the status. */
int  ft_generate_batch(ft_context *ctx, const ft_adapter *ad, const ft_tokenizer *tok, const int *const *prompts,
                       const int *n_prompts, int n, const ft_generate_params *p, ft_generation *out,
                       ft_batch_done_fn on_done, void *user);
/* The token an empty prompt starts from: the tokenizer's BOS, else its EOS (GPT-2's <|endoftext|> separates
 * documents), else the config's bos_token_id (tok or c may be NULL); -1 when there is none. */
int  ft_generate_start_token(const ft_tokenizer *tok, const ft_model_config *c);

/* Sampling from one logits vector (modified in place). history[n_hist] feeds the repetition
 * penalty. work must hold 2*V floats/ints (see ft_sample_work_size). Deterministic given rng. */
size_t ft_sample_work_size(int V);
int    ft_sample_logits(float *logits, int V, const int *history, int n_hist, const ft_generate_params *p,
                        ft_rng *rng, void *work);

/* ------------------------------------------------------------------------------------- beam search */
enum { FT_BEAM_STOP_HEURISTIC = 0, FT_BEAM_STOP_EARLY = 1, FT_BEAM_STOP_NEVER = 2 };

typedef struct ft_beam_params {
    int   num_beams;            /* default 4 (>= 1; 1 is a beam search of one beam, not greedy) */
    float length_penalty;       /* default 1.0: a finished hypothesis scores sum_logprobs / len^length_penalty */
    int   early_stopping;       /* FT_BEAM_STOP_*: default FT_BEAM_STOP_HEURISTIC (transformers' False) */
    int   num_return_sequences; /* hypotheses returned, best first (default 1, <= num_beams) */
    int   no_repeat_ngram_size; /* > 0: no n-gram of this size occurs twice in prompt + generated (default 0) */
    int   max_new_tokens;       /* default 128; capped by the context's room after the prompt */
    int   eos_token_id;         /* -1 (default): the tokenizer's EOS, else the config's; -2: none */
} ft_beam_params;

ft_beam_params ft_beam_default_params(void);

typedef struct ft_beam_hyp {
    int   *ids;      /* [n_ids] the generated ids, the final EOS included when it ended there (malloc'd) */
    int    n_ids;
    float  score;    /* sum of the ids' log-probs / n_ids^length_penalty (transformers' sequences_scores) */
    int    eos;      /* 1: ended with EOS, 0: at max_new_tokens */
    char  *text;     /* the ids decoded as ft_generate does, without EOS (malloc'd; NULL when tok was NULL) */
    size_t text_len;
} ft_beam_hyp;

typedef struct ft_beam_result {
    ft_beam_hyp *hyps;  /* [n] best first */
    int          n;     /* num_return_sequences */
} ft_beam_result;

/* Beam search after prompt[0, n_prompt) on slots [slot0, slot0 + num_beams) of ctx (cleared first; they hold
 * the hypotheses' caches afterwards), with adapter ad (NULL = the base). tok may be NULL (no text). Returns
 * FT_OK (out filled, free it with ft_beam_result_free) or a negative status: FT_ERR_INVALID for bad params
 * or an empty prompt, FT_ERR_RANGE for too few slots or a prompt that fills the slot. */
int  ft_beam_search_ctx(ft_context *ctx, int slot0, const ft_adapter *ad, const ft_tokenizer *tok, const int *prompt,
                        int n_prompt, const ft_beam_params *p, ft_beam_result *out);
/* Called by ft_beam_search_batch as each prompt's search ends (i: its index; r: out[i], filled). */
typedef void (*ft_beam_done_fn)(void *user, int i, const ft_beam_result *r);
/* Beam searches for prompts[0..n) over the slots of ctx: floor(n_slots / num_beams) searches at a time, search k on
 * slots [k * num_beams, (k + 1) * num_beams), the rows of all running searches in one batched decode per step; a
 * finished search's slots take the next prompt. out[i] is what ft_beam_search_ctx gives prompt i alone (exactly on
 * the reference backend; on the CPU backend up to the rounding of matmuls over another number of rows). On an
 * error every out[i] is freed. */
int  ft_beam_search_batch(ft_context *ctx, const ft_adapter *ad, const ft_tokenizer *tok, const int *const *prompts,
                          const int *n_prompts, int n, const ft_beam_params *p, ft_beam_result *out,
                          ft_beam_done_fn on_done, void *user);
/* The same on a context of num_beams slots made for this call over m (with any LoRA attached to m). */
int  ft_beam_search(const ft_model *m, const ft_tokenizer *tok, const int *prompt, int n_prompt,
                    const ft_beam_params *p, ft_beam_result *out);
void ft_beam_result_free(ft_beam_result *r);
#endif
