/* serve.h — the serving engine: models and adapters loaded once, requests from many threads scheduled
 * together (continuous batching). `finetune serve` (src/serve/http_*.c) is a thin HTTP layer over it; a C
 * program can embed the engine without HTTP.
 *
 *   ft_engine_params p = ft_engine_default_params();   p.n_slots = 16;
 *   ft_engine *e;  ft_engine_create(&e, &p);
 *   ft_engine_load_model(e, "stories", "models/stories260K");          // a generator (decoder)
 *   ft_engine_load_model(e, "sst2", "runs/sst2/final");                // a classifier (encoder)
 *   ft_engine_load_adapter(e, "support-bot", "stories", "runs/lora/adapter");
 *
 *   ft_gen_request r = ft_gen_request_default();
 *   r.model = "support-bot";  r.prompt = "Once upon a time";  r.params.max_new_tokens = 64;
 *   ft_gen_result g;
 *   ft_engine_generate(e, &r, NULL, NULL, &g);   // blocking; or ft_engine_submit with callbacks
 *   ... g.text, g.n_prompt_tokens, g.n_tokens; ft_gen_result_free(&g);
 *
 *   const char *texts[] = {"a gorgeous film", "dull"};
 *   ft_prediction preds[2];
 *   ft_engine_predict(e, "sst2", texts, 2, preds);             // batched with other callers' texts
 *
 *   ft_engine_free(e);
 *
 * Scheduling. Each generator model has a scheduler thread and a context (context.h) with n_slots KV-cache
 * slots. Submitted requests wait in a bounded queue (max_queue; beyond it FT_ERR_BUSY) until a slot is free.
 * Every step the scheduler advances all active sequences by one token in ONE batched ft_context_decode
 * call (their adapters may differ: each adds its own x·Aᵢ·Bᵢ to its rows), and adds at most
 * prefill_chunk prompt tokens of newly admitted requests (oldest first) to the same call, so long prompts
 * do not stall running sequences. A finished sequence frees its slot at once for the next queued request. Sampling is
 * per request (own seed, temperature, top-k/p, stop strings), so a request's tokens do not depend on what
 * else is running: greedy output equals `finetune generate` for the same model and adapter.
 * Encoders (classify / regress / token-classify / embeddings) have one worker thread per model that
 * collects the texts of concurrent callers (up to max_batch_texts) into one padded forward with
 * per-sequence adapters (ft_encoder_forward_adapters).
 *
 * Adapters at run time. ft_engine_load_adapter / ft_engine_unload_adapter may be called at any time from
 * any thread. An adapter is reference counted: requests admitted before an unload finish with it; new
 * requests naming it get FT_ERR_NOT_FOUND.
 *
 * Thread safety: every ft_engine_* function may be called from any thread concurrently, except
 * ft_engine_free (once, after the callers are done). Callbacks run on the model's scheduler thread: they
 * must not block for long and must not call ft_engine_free; they may call ft_engine_cancel. Library code:
 * nothing is printed on stdout, nothing exits; errors are negative status codes with ft_last_error() text
 * (thread-local).
 *
 * Implementation: src/serve/engine.c (registry), engine_gen.c (scheduler), engine_encoder.c (encoder worker).
 * Additions since the first version of this header (all additive): ft_gen_token.id -1 for a last call that
 * only hands out held-back text; logprobs are of the raw logits; ft_gen_result.error (the message);
 * ft_engine_entry.embedding_only; ft_engine_params.chat_template; prefill_chunk is the prompt-token budget
 * of a step (shared). An encoder
 * adapter saved with its own task head (PEFT modules_to_save, as finetune's encoder LoRA writes it) is
 * served with that head and its label names (finetune_labels), batched with other adapters and the base. */
#ifndef FINETUNE_SERVE_H
#define FINETUNE_SERVE_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/backend.h"
#include "finetune/chat.h"
#include "finetune/generate.h"
#include "finetune/predict.h"
#include "finetune/tensor.h"
#include "finetune/tokenizer.h"

typedef struct ft_engine ft_engine;

typedef struct ft_engine_params {
    const ft_backend *be;     /* default: ft_backend_cpu() */
    ft_dtype quant;           /* FT_F32 (default), FT_Q8_ROW or FT_NF4: base weights quantized on load; FT_BF16
                                 (--precision bf16): the generators' matmul weights in bf16 (bf16.h), encoders f32 */
    int n_slots;              /* concurrent sequences per generator (default 8) */
    int slot_tokens;          /* KV-cache tokens per slot (default 0 = the model's context length) */
    int prefill_chunk;        /* prompt tokens per step in all, shared by the prefilling sequences, oldest
                                 first (default 64): a step over R decoding sequences has <= R + prefill_chunk rows */
    int max_queue;            /* requests waiting per model beyond the active ones (default 64) */
    int max_batch_texts;      /* encoder texts per forward (default 32) */
    int max_lora_rank;        /* largest adapter rank accepted (default 64) */
    const char *chat_template;/* a built-in template (ft_chat_template_builtin: "chatml", "llama3", "zephyr", ...)
                                 for generators whose directory has none; NULL (default): chat is refused for them */
} ft_engine_params;
ft_engine_params ft_engine_default_params(void);

int  ft_engine_create(ft_engine **out, const ft_engine_params *p);
/* Stops accepting requests, waits up to timeout_s (<= 0: no wait) for the admitted ones to finish, then
 * cancels the rest (their on_done gets FT_ERR_INTERRUPTED). Returns the number still running at the
 * deadline (0 = drained). Further submits get FT_ERR_BUSY. */
int  ft_engine_drain(ft_engine *e, double timeout_s);
/* Drains with no wait, joins the threads, frees everything. e NULL: no-op. */
void ft_engine_free(ft_engine *e);

/* ---- models and adapters ---- */
typedef enum ft_engine_kind {
    FT_ENGINE_GENERATOR = 1,  /* decoder: completions, chat */
    FT_ENGINE_ENCODER   = 2,  /* encoder: predict (its task), embeddings */
} ft_engine_kind;

/* Loads a Hugging Face / finetune model directory under `name` (unique among models and adapters).
 * Decoder or encoder is told by config.json; an encoder's task and labels come from its config
 * (encoder.h, FT_TASK_AUTO); the tokenizer and chat template from the same directory. A PEFT adapter
 * directory (adapter_config.json) is refused with a message saying to load its base as a model and the
 * adapter with ft_engine_load_adapter. */
int ft_engine_load_model(ft_engine *e, const char *name, const char *dir);
/* Loads a PEFT LoRA adapter directory under `name` over the loaded model `base` (NULL: the only loaded
 * model whose shape it fits; more than one fits: FT_ERR_INVALID asking for the base). The base's weights
 * are shared, not copied. */
int ft_engine_load_adapter(ft_engine *e, const char *name, const char *base, const char *dir);
/* Forgets adapter `name`; in-flight requests finish with it (reference counted). FT_ERR_NOT_FOUND if none. */
int ft_engine_unload_adapter(ft_engine *e, const char *name);

typedef struct ft_engine_entry {
    char name[128];
    char base[128];           /* the base model's name for an adapter, "" for a model */
    char dir[1024];           /* where it was loaded from */
    ft_engine_kind kind;
    int  is_adapter;
    ft_encoder_task task;     /* encoders: classify / regress / token-classify / mlm */
    int  num_labels;
    char **labels;            /* [num_labels] label names (encoders; NULL otherwise) */
    int  context_length;      /* tokens */
    int  vocab_size;
    int  has_chat_template;
    int64_t n_params;         /* base parameters; an adapter: its own */
    int64_t created;          /* unix seconds of loading */
    int  embedding_only;      /* an encoder whose checkpoint has no trained task head (a sentence-transformers
                                 model such as all-MiniLM-L6-v2): ft_engine_embed only, predict is refused */
} ft_engine_entry;
/* A snapshot of every model and adapter, models first in loading order. Free with ft_engine_entries_free. */
int  ft_engine_list(ft_engine *e, ft_engine_entry **out, int *n);
/* One entry by name; FT_ERR_NOT_FOUND if none. Free with ft_engine_entries_free(out, 1). */
int  ft_engine_find(ft_engine *e, const char *name, ft_engine_entry **out);
void ft_engine_entries_free(ft_engine_entry *v, int n);

/* ---- generation ---- */
typedef struct ft_gen_request {
    const char *model;                 /* a generator model or an adapter over one */
    const char *prompt;                /* text (BOS added as the tokenizer asks), or: */
    const ft_chat_msg *messages;       /* chat messages rendered with the model's chat template */
    int n_messages;                    /* (add_generation_prompt on); or: */
    const int *prompt_ids;             /* token ids as given */
    int n_prompt_ids;
    ft_generate_params params;         /* max_new_tokens, temperature, top_k, top_p, seed, stop strings, ... */
    int logprobs;                      /* 0: none; k >= 1: each token's logprob and the k most likely (k <= 20) */
    int echo;                          /* reserved (refused when set) */
} ft_gen_request;
ft_gen_request ft_gen_request_default(void);

typedef struct ft_gen_token {
    int         id;                    /* the token; -1 in a last call that only hands out text held back for
                                          stop-string matching when the sequence ended without a token (EOS) */
    const char *text;                  /* text safe to show now (may be "": inside a UTF-8 sequence, or held
                                          back because it could begin a stop string); not NUL-terminated */
    size_t      len;
    float       logprob;               /* log-softmax of the model's raw logits (before repetition penalty,
                                          temperature, top-k / top-p, as vLLM reports by default) at id */
    int         n_top;                 /* = request logprobs (0 when none, and in the id -1 call) */
    const int  *top_ids;               /* [n_top] most likely tokens of the raw logits, most likely first */
    const float *top_logprobs;         /* [n_top] their log-softmax */
} ft_gen_token;

typedef struct ft_gen_result {
    int status;                        /* FT_OK, or the error that ended it (FT_ERR_INTERRUPTED: cancelled / drained) */
    char  *text;                       /* generated text (stop string removed), malloc'd */
    size_t text_len;
    int   *ids;                        /* generated ids, malloc'd */
    int    n_tokens;
    int    n_prompt_tokens;
    int    n_unknown_tokens;           /* prompt tokens that are the tokenizer's unknown token */
    const char *finish_reason;         /* "stop" (EOS or a stop string), "length" (max tokens or context full), "cancelled", "error" */
    double queue_s, prefill_s, total_s;/* waiting for a slot, first token ready, all (from submit) */
    char   error[256];                 /* status < 0: the message ("cancelled" for FT_ERR_INTERRUPTED) */
} ft_gen_result;
void ft_gen_result_free(ft_gen_result *r);

/* Called on the scheduler thread for each generated token (its text has passed stop-string holding: text
 * that could start a stop string is delivered later or never); return nonzero to cancel. */
typedef int  (*ft_gen_token_fn)(void *user, const ft_gen_token *t);
/* Called once when the request ends (any way). r is valid during the call only. */
typedef void (*ft_gen_done_fn)(void *user, const ft_gen_result *r);

/* Queues a request (copied: the caller's strings may be freed on return). Errors returned at once (the
 * callbacks are then never called): FT_ERR_NOT_FOUND unknown model, FT_ERR_INVALID bad parameters or a
 * model that is not a generator, FT_ERR_RANGE a prompt longer than the context, FT_ERR_BUSY queue full or
 * draining. *id (may be NULL) identifies it for ft_engine_cancel. */
int ft_engine_submit(ft_engine *e, const ft_gen_request *r, ft_gen_token_fn on_token, ft_gen_done_fn on_done,
                     void *user, uint64_t *id);
/* Ends a queued or running request (on_done with finish_reason "cancelled"). FT_ERR_NOT_FOUND if it ended. */
int ft_engine_cancel(ft_engine *e, uint64_t id);
/* Submit and wait. on_token may be NULL. out is filled (ft_gen_result_free) also when it ends in error. */
int ft_engine_generate(ft_engine *e, const ft_gen_request *r, ft_gen_token_fn on_token, void *user, ft_gen_result *out);

/* ---- encoders ---- */
/* Predictions (predict.h) for n texts with encoder model or adapter `model`, batched with concurrent
 * callers. preds[n] filled on FT_OK (ft_prediction_free each). n_tokens / n_unknown (each may be NULL): [n]
 * tokens (after truncation) and unknown-token counts of each text. FT_ERR_INVALID for a generator or an
 * embedding-only encoder, FT_ERR_BUSY when max_queue calls wait already or the engine is draining. */
int ft_engine_predict(ft_engine *e, const char *model, const char *const *texts, int n, ft_prediction *preds,
                      int *n_tokens, int *n_unknown);
/* Multi-task models (multitask.h, `finetune train --task multi`): ft_engine_predict gives the first task's head;
 * ft_engine_model_heads tells the task names (names[cap][64]; returns their count H, 0 for any other model) and
 * ft_engine_predict_heads every head's prediction, preds[n * H] (text i, head h at i * H + h). The body runs once
 * per head in the same batched forward pass as the other callers' texts. */
int ft_engine_model_heads(ft_engine *e, const char *model, char (*names)[64], int cap);
int ft_engine_predict_heads(ft_engine *e, const char *model, const char *const *texts, int n, ft_prediction *preds,
                            int *n_tokens, int *n_unknown);
/* Sentence embeddings: mean of the last hidden states over the real tokens, L2-normalised (as
 * sentence-transformers does for all-MiniLM-L6-v2). out: malloc'd [n, *dim]; n_tokens (may be NULL): [n]. */
int ft_engine_embed(ft_engine *e, const char *model, const char *const *texts, int n, float **out, int *dim,
                    int *n_tokens);

/* ---- tokenizer access (for the HTTP layer: chat prompts, token counts) ---- */
/* Renders messages with the model's chat template (malloc'd text); FT_ERR_NOT_FOUND without one. */
int ft_engine_render_chat(ft_engine *e, const char *model, const ft_chat_msg *msgs, int n, char **out);
/* The tokenizer the engine loaded for model `model` (an adapter: its base's), or NULL (no such name; the error
 * is set). Owned by the engine and valid until ft_engine_free (models are never unloaded; unloading an adapter
 * leaves its base's tokenizer). Immutable: encode / decode from any thread (tokenizer.h). */
const ft_tokenizer *ft_engine_tokenizer(ft_engine *e, const char *model);

/* ---- statistics (for /metrics) ---- */
typedef struct ft_engine_stats {
    int  queued;               /* requests waiting for a slot (all models) */
    int  active;               /* sequences holding a slot */
    int  slots;                /* slots in all */
    uint64_t steps;            /* batched decode steps run */
    uint64_t batched_rows;     /* rows over all steps (rows / steps = mean batch) */
    uint64_t prompt_tokens, generated_tokens;
    uint64_t encoder_batches, encoder_texts;
} ft_engine_stats;
void ft_engine_get_stats(ft_engine *e, ft_engine_stats *out);
#endif
