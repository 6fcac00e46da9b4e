/* context.h — per-request state for inference over shared, immutable weights.
 *
 * The split follows llama.cpp's model / context: the ft_model holds the weights (loaded once); an
 * ft_context holds everything a forward pass writes — a KV cache with several sequence slots (each with
 * its own length; a slot can be cleared and reused), activation scratch for a batch of rows, and the
 * quantized-matmul workspace. Any number of contexts can run over one model at the same time, one per
 * thread, each with any adapters (adapter.h).
 *
 * One decode step advances several sequences together: their new tokens are stacked into one batch of
 * rows, every base matmul runs once over all rows, and each sequence's own LoRA adapter adds its
 * x·Aᵢ·Bᵢ to its rows only (the segmented gather of S-LoRA / Punica). Attention reads each sequence's
 * own slot of the KV cache at its own positions. The result equals decoding each sequence alone with
 * its adapter.
 *
 *   ft_context_params p = ft_context_default_params();  p.n_slots = 8;
 *   ft_context *ctx;  ft_context_create(&ctx, model, &p);
 *   ft_decode_seq s[2] = {
 *       { .slot = 0, .adapter = support_bot, .tokens = prompt0, .n_tokens = n0, .logits = lg0 },
 *       { .slot = 1, .adapter = NULL,        .tokens = prompt1, .n_tokens = n1, .logits = lg1 } };
 *   ft_context_decode(ctx, s, 2);      // prefill both; then one token per sequence per call
 *   ft_context_slot_clear(ctx, 1);     // slot 1 free for the next request
 *
 * Memory. The scratch is allocated once at creation; the KV cache grows with use: each slot's cache is
 * reallocated in chunks (doubling, 64-token granules) as its sequence grows, up to slot_tokens, and a cleared
 * slot gives back all but 256 tokens of it. A server with 8 slots of a 1024-token model that serves short
 * requests holds a few hundred tokens per slot, not 8 x 1024. ft_context_kv_bytes says what it holds now.
 *
 * Thread safety: a context belongs to one thread at a time (no internal locking); the model and the
 * adapters it reads are shared read-only. The model must outlive its contexts and must not be changed
 * (training, LoRA merge, quantization) while a context is in use. Training state (gradients, optimizer,
 * training activations) lives elsewhere (ft_model's own training buffers, train.h). */
#ifndef FINETUNE_CONTEXT_H
#define FINETUNE_CONTEXT_H
#include <stddef.h>
#include "finetune/adapter.h"
#include "finetune/model.h"

typedef struct ft_context ft_context;

typedef struct ft_context_params {
    int n_slots;           /* KV-cache sequence slots (default 1) */
    int slot_tokens;       /* tokens each slot holds (default 0 = the model's context length) */
    int batch_tokens;      /* rows processed per internal step (default 64); longer batches are split */
    int max_lora_rank;     /* largest adapter rank this context accepts (default 256) */
} ft_context_params;

ft_context_params ft_context_default_params(void);

/* A context over m (read-only from then on). p NULL = defaults. */
int  ft_context_create(ft_context **out, const ft_model *m, const ft_context_params *p);
void ft_context_free(ft_context *ctx);
/* Bytes a context with these parameters holds at most (p NULL = defaults): its scratch plus every slot's KV
 * cache full (slot_tokens). */
size_t ft_context_bytes(const ft_model *m, const ft_context_params *p);
/* Bytes its KV cache holds now (every slot's k and v at their current capacity). */
size_t ft_context_kv_bytes(const ft_context *ctx);

const ft_model *ft_context_model(const ft_context *ctx);
int  ft_context_n_slots(const ft_context *ctx);
/* Tokens cached in slot (its next position), or a negative status for a bad slot. */
int  ft_context_slot_len(const ft_context *ctx, int slot);
int  ft_context_slot_capacity(const ft_context *ctx);
/* Empties slot (its cached tokens are forgotten); -1 clears every slot. */
int  ft_context_slot_clear(ft_context *ctx, int slot);
/* Keeps the first n cached tokens of slot and forgets the rest (n <= its length). */
int  ft_context_slot_truncate(ft_context *ctx, int slot, int n);

/* Makes slot dst hold a copy of slot src's cached tokens (dst's own are forgotten; dst == src: nothing to do).
 * Beam search forks a hypothesis this way: the copy costs n_layer x 2 x len x n_kv_head x head_dim floats, no
 * forward pass. On an error (bad slot, no memory to grow dst) dst is left empty. */
int  ft_context_slot_copy(ft_context *ctx, int dst, int src);

/* One sequence of a decode call. */
typedef struct ft_decode_seq {
    int              slot;        /* KV slot: its tokens go at positions slot_len.. (each slot at most once per call) */
    const ft_adapter *adapter;    /* NULL = the base alone (plus LoRA attached to the model itself, if any) */
    const int       *tokens;      /* [n_tokens] new tokens */
    int              n_tokens;    /* >= 1 */
    float           *logits;      /* out: [V] of the last new token, or [n_tokens, V] with all_logits; may be NULL */
    int              all_logits;
} ft_decode_seq;

/* Runs the new tokens of every sequence through the model in shared batched steps, appending them to
 * their slots' KV caches (growing them as needed), and writes the requested logits. On an error nothing is
 * appended to any slot the call names: bad slot, a slot twice, token ids outside the vocabulary, a slot that
 * would overflow, no memory to grow a slot's cache,
 * an adapter made for another model shape or of a rank above max_lora_rank. */
int  ft_context_decode(ft_context *ctx, const ft_decode_seq *seqs, int n_seqs);
#endif
