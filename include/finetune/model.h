/* model.h — decoder-only transformers: the GPT-2 family (gpt2, distilgpt2, DialoGPT) and the Llama
 * family (Llama, Mistral, Qwen2, SmolLM, TinyLlama, llama2.c TinyStories), one engine for both.
 *
 * The model owns three allocations, each made once (see arena.h): the weights, the gradients
 * (made on the first ft_model_zero_grad) and the activations for a fixed batch shape (made by
 * ft_model_prepare). A forward/backward step allocates nothing. The gradients and activations are the
 * model's own training state: ft_model_forward / backward are the one-state convenience; more LoRA
 * trainings over the same weights each take a state of their own (train_state.h).
 *
 *   ft_model *m;
 *   if (ft_model_load(&m, "path/to/hf_dir", ft_backend_cpu()) < 0) { puts(ft_last_error()); ... }
 *   ft_model_prepare(m, B, T);                       // activations for batches of B x T
 *   float loss;
 *   ft_model_forward(m, ids, targets, NULL, NULL, B, T, &loss);   // ids/targets [B*T]
 *   ft_model_zero_grad(m);
 *   ft_model_backward(m, 0.0f);                      // d(mean loss)/d(params) into ft_model_param(m,i)->grad
 *   ...
 *   ft_model_free(m);
 *
 * Internal parameter layout (all f32, row-major, Linear weights as [out, in] like torch.nn.Linear):
 *   wte [V,C]; wpe [maxT,C] (GPT-2);
 *   per layer: ln1_w [C] (+ ln1_b [C] GPT-2); qkv_w [(NH+2*NKV)*HS, C] (q, k, v rows stacked);
 *   qkv_b [(NH+2*NKV)*HS] (GPT-2, Qwen2); attn_w [C, NH*HS] (+ attn_b [C] GPT-2); ln2_w (+ ln2_b);
 *   fc_w [F, C] (GPT-2: F = 4C; Llama: F = 2*I, gate rows then up rows) (+ fc_b [F] GPT-2);
 *   proj_w [C, I] (+ proj_b [C] GPT-2);
 *   lnf_w [C] (+ lnf_b [C]); lm_head [V,C] only when the embeddings are not tied.
 * Hugging Face names and layouts (Conv1D [in,out], separate q/k/v and gate/up) are mapped at load
 * and save time by ft_model_hf_pieces. */
#ifndef FINETUNE_MODEL_H
#define FINETUNE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/backend.h"
#include "finetune/tensor.h"

typedef enum ft_arch { FT_ARCH_GPT2 = 1, FT_ARCH_LLAMA = 2 } ft_arch;
typedef enum ft_rope_scaling { FT_ROPE_NONE = 0, FT_ROPE_LINEAR = 1, FT_ROPE_LLAMA3 = 2 } ft_rope_scaling;

typedef struct ft_model_config {
    ft_arch arch;
    char    model_type[32];   /* "gpt2", "llama", "mistral", "qwen2" */
    int     vocab_size;       /* V */
    int     max_seq_len;      /* n_positions / max_position_embeddings */
    int     n_layer;          /* L */
    int     n_embd;           /* C */
    int     n_head;           /* NH */
    int     n_kv_head;        /* NKV (== NH for GPT-2) */
    int     head_dim;         /* HS */
    int     ffn_hidden;       /* I: GPT-2 4C (n_inner), Llama intermediate_size */
    float   norm_eps;
    int     tied_embeddings;
    int     qkv_bias;         /* bias on the q/k/v projection: GPT-2, Qwen2, Llama attention_bias */
    int     o_bias;           /* bias on the attention output projection: GPT-2, Llama attention_bias */
    int     mlp_bias;         /* biases on the MLP projections: GPT-2, Llama mlp_bias */
    float   rope_theta;
    ft_rope_scaling rope_scaling;
    float   rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int     rope_original_max_pos;
    float   resid_dropout, embd_dropout, attn_dropout; /* read from config; applied in training mode */
    float   initializer_range;
    int     bos_token_id, eos_token_id, pad_token_id;  /* -1 if absent */
} ft_model_config;

/* Reads config.json in dir (GPT2LMHeadModel / GPT2Model, LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM). Unknown architecture, missing fields, or unsupported options (sliding window,
 * non-tanh GELU, unknown rope scaling) get FT_ERR_UNSUPPORTED / FT_ERR_FORMAT naming the file and key. */
int ft_model_config_load(ft_model_config *cfg, const char *dir);
int ft_model_config_from_json(ft_model_config *cfg, const char *json_text, const char *path_for_errors);
/* Writes config.json in the HF form for cfg (atomic). */
int ft_model_config_save(const ft_model_config *cfg, const char *dir);

typedef struct ft_param {
    char      name[64];      /* internal name, e.g. "h.3.qkv_w" */
    ft_tensor t;             /* the weight (f32) */
    float    *grad;          /* same shape; NULL until gradients exist or when frozen */
    int       decay;         /* 1 for matrices that get weight decay by default (not embeddings, norms, biases) */
    int       trainable;     /* 0 = frozen: no gradient buffer, weight-gradient work skipped */
    void     *qdesc;         /* weights in another storage (t.dtype FT_NF4 / FT_Q8_ROW / FT_BF16 / ggml blocks): the
                                ft_nf4_tensor / ft_q8row_tensor (quant.h) / ft_bf16_tensor (bf16.h) / ft_ggml_tensor
                                describing t.data; NULL for f32 */
    int       linear;        /* 1 when the model loop uses it as a linear layer's W [OC, C] (out = in W^T) */
    void     *pack;          /* the weight pre-packed for the backend's linear layer (backend.h, wpack members),
                                kept current by the optimizer that made it (ft_optim_set_prepack); NULL: none */
    int       grad_pending;  /* 1: grad is ZERO by contract but its buffer not yet cleared (ft_model_zero_grad marks
                                the linear weights so; the next backward's product ASSIGNS it instead of adding to
                                zeros, and the backward clears whatever it did not write). ft_params_settle_grads
                                clears it where a caller reads grad without a backward in between */
} ft_param;

/* Gradient buffers of params[0..n) (used by every model kind): on the first call one allocation in
 * *grads, through backend be, for the trainable params (frozen ones get grad = NULL) and *ready = 1;
 * later calls zero them (every one: none is left pending). */
struct ft_arena;
int ft_params_zero_grad(ft_param *params, int n, struct ft_arena *grads, int *ready, const ft_backend *be);
/* Zeroes the gradients of params[0..n) still marked grad_pending and clears the marks (a loop over the
 * flags when none is pending). After it every grad holds its value: call it before reading gradients
 * that a zero_grad may have left pending with no backward since (the trainer does after a micro-batch
 * without targets; ft_optim_step does). */
void ft_params_settle_grads(ft_param *params, int n);

typedef struct ft_model ft_model;

int  ft_model_load(ft_model **out, const char *dir, const ft_backend *be);
/* A model with random weights (GPT-2 / Llama initialisation with initializer_range), for
 * from-scratch baselines and benchmarks. */
int  ft_model_create_random(ft_model **out, const ft_model_config *cfg, uint64_t seed, const ft_backend *be);
/* The same with the blocks' linear weights (and an untied LM head) stored quantized from the start
 * (FT_NF4 or FT_Q8_ROW; FT_F32 = plain): each tensor is read (or generated) in f32, quantized, and its
 * file pages released, so peak memory stays near the quantized size (QLoRA bases of 1B+ parameters).
 * FT_BF16 (`--precision bf16` of generate / serve, bf16.h): the same linear weights rounded to bf16, frozen,
 * for generation (half the bytes read per token); embeddings, norms and biases stay f32, and a tied LM head
 * gets its own bf16 copy of the embeddings. FT_ERR_UNSUPPORTED on a CPU without AVX-512 (ft_bf16_check_cpu).
 * A GGUF path keeps its file's types (quant ignored with a warning). */
int  ft_model_load_quantized(ft_model **out, const char *dir, const ft_backend *be, ft_dtype quant);
int  ft_model_create_random_quantized(ft_model **out, const ft_model_config *cfg, uint64_t seed, const ft_backend *be, ft_dtype quant);
void ft_model_free(ft_model *m);
/* A GGUF file (llama.cpp's format; general.architecture "llama" or "gpt2") as a model: the block matrices
 * and the LM head of types Q8_0 / Q4_0 / Q4_K stay in their ggml blocks and are multiplied directly
 * (ggml_quant.h: AVX-512 VNNI / AVX2 kernels, int8 activations at batch <= 8); everything else, and
 * matrices of other types (F32 / F16 / BF16) are f32. The quantized weights are frozen (LoRA adapters
 * train over them as over a QLoRA base); ft_model_save refuses such a model. Tokenizer: ft_gguf_tokenizer
 * (convert.h). ft_model_path_is_gguf: 1 when path is a readable file starting with "GGUF". */
int  ft_model_load_gguf(ft_model **out, const char *path, const ft_backend *be);
/* The same with every tensor read as f32 (quantized ones dequantized by the reference): the ground truth
 * of the quantized matmuls, or a base for full fine-tuning. */
int  ft_model_load_gguf_f32(ft_model **out, const char *path, const ft_backend *be);
int  ft_model_path_is_gguf(const char *path);
/* Reads the weights of a safetensors checkpoint directory into an existing model of the same shape. */
int  ft_model_load_weights(ft_model *m, const char *dir);
/* Writes config.json + model.safetensors (HF names and layouts, atomic). */
int  ft_model_save(const ft_model *m, const char *dir);

const ft_model_config *ft_model_get_config(const ft_model *m);
int              ft_model_num_params(const ft_model *m);          /* number of parameter tensors */
ft_param        *ft_model_param(ft_model *m, int i);
int64_t          ft_model_param_count(const ft_model *m);         /* number of scalars */
const ft_backend *ft_model_backend(const ft_model *m);

/* The Hugging Face tensors that make up internal parameter i: up to 3 pieces, each a block of
 * rows [row0, row0+rows) of the internal [rows, cols] matrix (or the whole 1-D vector), stored
 * transposed in the checkpoint when `transpose` (GPT-2 Conv1D). prefix: "transformer." / "model." etc. */
typedef struct ft_hf_piece { char name[128]; int64_t row0, rows; int transpose; } ft_hf_piece;
int ft_model_hf_pieces(const ft_model *m, int i, ft_hf_piece pieces[3]);

/* Bytes that ft_model_prepare(m, B, T) allocates (activations + backward buffers), and that the KV
 * cache of ft_model_kv_reset allocates: for memory planning (finetune train --dry-run). */
size_t ft_model_activation_bytes(ft_model *m, int B, int T);
size_t ft_model_kv_bytes(const ft_model *m);
/* Bytes held now: f32 weights, quantized weights (+ their matmul workspace), LoRA adapters. */
size_t ft_model_weight_bytes(const ft_model *m);
/* Temporary bytes ft_model_save needs (GPT-2's Conv1D weights are written transposed). */
size_t ft_model_save_bytes(const ft_model *m);
/* Bytes the gradients of the trainable parameters will take. */
size_t ft_model_grad_bytes(const ft_model *m);

/* Activations for batches of B sequences of T tokens (T <= max_seq_len). Call again to change. */
int ft_model_prepare(ft_model *m, int B, int T);

/* Forward pass over ids[B*T]. targets[B*T] (may be NULL): next-token ids, FT_IGNORE_INDEX where
 * no loss is taken; then *loss = mean cross-entropy over the counted targets.
 * pos[B*T] (may be NULL => 0..T-1 per row): position ids; seg[B*T] (may be NULL): attention stays
 * within equal segment ids (packed examples). Token ids out of range -> FT_ERR_RANGE. */
int ft_model_forward(ft_model *m, const int *ids, const int *targets, const int *pos, const int *seg,
                     int B, int T, float *loss);
/* Logits [B*T, V] of the last forward (valid until the next backward). In training mode (ft_model_set_training)
 * with targets, the LM head runs only over the rows that have a target (prompt, padding and masked rows have no
 * loss and no gradient, so their logits would be wasted work): the logits then hold those ft_model_num_targets
 * rows, in order, [num_targets, V]. Evaluation mode always gives every row. */
const float *ft_model_logits(const ft_model *m);
/* Number of counted targets in the last forward. */
int  ft_model_num_targets(const ft_model *m);
/* Allocates gradients on first use (trainable params only) and zeroes them. The linear weights' gradients
 * (ft_param.linear: the blocks' four matrices and the LM head, 99% of GPT-2's gradient bytes) are not
 * cleared here but marked grad_pending: the next backward's weight-gradient product assigns them (no
 * memset, no read of the old buffer) and clears any it does not write. Read p->grad after a backward (as
 * always), or call ft_params_settle_grads first. */
int  ft_model_zero_grad(ft_model *m);
/* Backward of the last forward (which must have had targets). Gradients ACCUMULATE into the
 * params' grad buffers (a gradient pending after ft_model_zero_grad counts as zero; none is pending
 * after the call, even when it fails). grad_scale multiplies d(sum of token losses); 0 means 1/num_targets
 * (the gradient of the mean loss). For accumulation over micro-batches pass 1/total_targets. */
int  ft_model_backward(ft_model *m, float grad_scale);

/* Attributions (explain.h): the word-embedding output as an input.
 *   ft_model_forward_embeds   ft_model_forward with wte[ids] replaced by word_embeds [B*T, C] (NULL: the lookup);
 *                             GPT-2's position embeddings are added as usual; positions 0..T-1, no segments.
 *   ft_model_backward_embeds  dword_embeds [B*T, C] (ASSIGNED) = d( sum of the last forward's token losses ) /
 *                             d(word-embedding output); the forward must have had targets; training mode off, no LoRA
 *                             adapters on the model. Parameter gradients are neither computed nor touched; the logits
 *                             of the forward are overwritten (by their gradient).
 *   ft_model_attention        the attention probabilities of the last forward, [L, B, NH, T, T] (query t, key j; 0 for
 *                             the future keys), kept by every forward for the backward anyway; valid until the next
 *                             forward. NULL under a recompute mode (ft_model_set_recompute), which keeps one layer's. */
int ft_model_forward_embeds(ft_model *m, const int *ids, const int *targets, const float *word_embeds, int B, int T, float *loss);
int ft_model_backward_embeds(ft_model *m, float *dword_embeds);
const float *ft_model_attention(const ft_model *m);

/* QLoRA: stores the frozen linear weights of every block (q/k/v, o, MLP) quantized — FT_NF4 (4-bit
 * NormalFloat, blocks of 64, double-quantized scales) or FT_Q8_ROW (int8, absmax per row) — and
 * releases their f32 copies; those weights become frozen. Embeddings, norms, biases and the LM head
 * stay f32. Input widths must be multiples of 64 for NF4. Call before LoRA / gradients / prepare. */
int ft_model_quantize_base(ft_model *m, ft_dtype q);

/* Training mode turns on the dropout the config asks for: embedding, residual, and on the attention
 * probabilities after the softmax (GPT-2 attn_pdrop, Llama family attention_dropout), as torch does in
 * train(). Evaluation mode applies none. seed selects the masks: use a new
 * one for every micro-batch (e.g. hash of run seed and step) — the same seed gives the same masks. */
void ft_model_set_training(ft_model *m, int training, uint64_t seed);
/* Label smoothing of the training loss (applied in training mode only). */
void ft_model_set_label_smoothing(ft_model *m, float eps);

/* Activation recomputation: what a forward keeps for the backward, trading compute for memory.
 *   FT_RECOMPUTE_NONE       every layer's activations (the default; fastest)
 *   FT_RECOMPUTE_ATTENTION  everything but the attention probabilities [B, NH, T, T] of each layer (the
 *                           largest buffers at long T): one layer's worth, which the backward recomputes from
 *                           the stored q, k, v before the attention backward of each layer
 *   FT_RECOMPUTE_BLOCK      only each block's input (the residual stream [N, C] per layer) and one layer's
 *                           working buffers: the backward reruns the block's forward before its backward
 * The gradients are bit-identical in every mode: the recomputation calls the same kernels on the same inputs
 * in the same order, and dropout masks (embedding, residual, attention, LoRA input) are regenerated from their
 * (seed, layer, site) streams, so they replay exactly. The cost: one more attention forward per layer
 * (attention), one more forward of every block (block). ft_model_activation_bytes / ft_model_prepare size the
 * activation arena for the mode (one allocation); changing the mode re-plans it on the next prepare / forward.
 * With a recompute mode on, ft_model_attention returns NULL (the probabilities of every layer are not kept). */
typedef enum ft_recompute { FT_RECOMPUTE_NONE = 0, FT_RECOMPUTE_ATTENTION = 1, FT_RECOMPUTE_BLOCK = 2 } ft_recompute;
void ft_model_set_recompute(ft_model *m, ft_recompute mode);
/* "none" / "attention" / "block" -> *out; FT_ERR_INVALID naming the choices otherwise. */
int  ft_recompute_from_name(const char *name, ft_recompute *out);
const char *ft_recompute_name(ft_recompute mode);

/* Inference with a KV cache (one sequence; see context.h for many sequences, adapters and threads). ft_model_kv_reset clears it (allocating for up to
 * max_seq_len tokens on first use). ft_model_decode runs n tokens at positions pos0.. (pos0 must
 * equal the number of tokens already cached) and writes the logits of the last one to logits[V]. */
int ft_model_kv_reset(ft_model *m);
/* The one-slot context (context.h) ft_model_kv_reset / ft_model_decode use, made by ft_model_kv_reset;
 * owned by m. For several sequences or threads, make contexts of your own with ft_context_create. */
struct ft_context *ft_model_context(ft_model *m);
int ft_model_decode(ft_model *m, const int *tokens, int n, int pos0, float *logits);
#endif
