/* export.h — write a model for the runtimes people deploy with: GGUF for llama.cpp / Ollama / LM Studio
 * (the model in F32, F16, BF16, Q8_0, Q4_0 or Q4_K, or a LoRA adapter on its own), and a merged
 * Hugging Face safetensors directory (f32 / f16 / bf16, sharded above a size) for the Python side.
 *
 *   ft_model *m;  ft_tokenizer *tok;             // e.g. ft_cli_load_model + ft_tokenizer_load
 *   ft_export_gguf_opts o = ft_export_gguf_default_opts();
 *   o.type = FT_GGML_Q4_0;  o.tokenizer_dir = "models/stories260K";
 *   if (ft_export_gguf(m, tok, &o, "model.gguf", NULL) < 0) puts(ft_last_error());
 *   ft_export_lora_gguf(m, "runs/x/final", "adapter.gguf", NULL);   // m: the adapter's base, no LoRA on it
 *   ft_export_safetensors(m, "models/stories260K", "out_dir", FT_BF16, 5000000000ULL, NULL);
 *
 * GGUF model files (the layout and names of llama.cpp's convert_hf_to_gguf.py):
 *   general.architecture llama (Llama, Mistral, SmolLM, TinyLlama, llama2.c), qwen2, gpt2, with
 *   <arch>.context_length, embedding_length, block_count, feed_forward_length, attention.head_count(_kv),
 *   attention.layer_norm_rms_epsilon (gpt2: layer_norm_epsilon), rope.freq_base, rope.dimension_count,
 *   rope scaling (linear: rope.scaling.type/factor; Llama-3: the rope_freqs.weight factors), vocab_size;
 *   tokenizer.ggml.* (model llama = SentencePiece-style with scores and token types, gpt2 = byte-level BPE
 *   with merges and pre-tokenizer name), special ids, add_bos/eos_token, tokenizer.chat_template.
 *   Tensors token_embd, position_embd (GPT-2), blk.N.{attn_norm, attn_q/k/v, attn_qkv (GPT-2), attn_output,
 *   ffn_norm, ffn_gate/up/down}, output_norm, output. Llama-architecture q/k rows are permuted from the
 *   Hugging Face rotate-half order (ours in memory) to llama.cpp's interleaved pairs; Qwen2 (NEOX rope) is not.
 * Tensor types: 1-D tensors, norms and position_embd stay F32; other matrices take the asked type. A
 * quantized type whose block does not divide a row falls back as llama.cpp's quantize does: Q4_K -> Q5_0,
 * then F16 (Q8_0 / Q4_0 -> F16). The summary counts them.
 *
 * LoRA adapter GGUF (convert_lora_to_gguf.py's form): general.type "adapter", adapter.type "lora",
 * adapter.lora.alpha (alpha such that llama.cpp's alpha / r is the adapter's scale, rsLoRA included),
 * tensors <base tensor>.lora_a (ne = {in, r}) and .lora_b (ne = {r, out}) in F32; llama.cpp applies it with
 * --lora over the base GGUF. The adapter must fit the model passed (FT_ERR_NOT_FOUND / FT_ERR_SHAPE).
 *
 * Every file is written atomically (temporary + rename). Errors name the file and the tensor. The model is
 * only read. */
#ifndef FINETUNE_EXPORT_H
#define FINETUNE_EXPORT_H
#include <stdint.h>
#include "finetune/gguf_quantize.h"
#include "finetune/model.h"
#include "finetune/tokenizer.h"

typedef struct ft_export_gguf_opts {
    uint32_t    type;           /* FT_GGML_F32 (default), _F16, _BF16, _Q8_0, _Q4_0, _Q4_K (gguf_quantize.h) */
    const char *name;           /* general.name; NULL: none */
    const char *tokenizer_dir;  /* where tokenizer_config.json (chat_template) lives; NULL: no template */
} ft_export_gguf_opts;

typedef struct ft_export_summary {
    int      n_tensors;
    int      n_f32, n_f16, n_bf16, n_q8_0, n_q4_0, n_q5_0, n_q4_k;  /* tensors of each type written */
    int      n_fallback;        /* matrices written in another type than asked (row length vs block) */
    uint64_t data_bytes;        /* tensor bytes in the file */
    int      n_shards;          /* safetensors: files written */
} ft_export_summary;

ft_export_gguf_opts ft_export_gguf_default_opts(void);

/* m: a GPT-2 or Llama-family model (LoRA modules on it are ignored: merge first with ft_model_merge_lora
 * to export them folded in). tok: its tokenizer (vocabulary metadata); may be NULL (no tokenizer keys:
 * llama.cpp then refuses the file, so only for tests). summary may be NULL. */
int ft_export_gguf(const ft_model *m, const ft_tokenizer *tok, const ft_export_gguf_opts *o, const char *path,
                   ft_export_summary *summary);

/* The PEFT LoRA adapter in adapter_dir (adapter_config.json + adapter_model.safetensors) over base, as a
 * llama.cpp LoRA GGUF. */
int ft_export_lora_gguf(const ft_model *base, const char *adapter_dir, const char *path, ft_export_summary *summary);

/* A Hugging Face directory: config.json, model.safetensors (or model-0000i-of-0000n.safetensors + 
 * model.safetensors.index.json when the tensors exceed max_shard_bytes; 0 = 5 GB, transformers' default),
 * in dtype FT_F32 / FT_F16 / FT_BF16, plus the tokenizer files copied from tokenizer_dir (may be NULL).
 * Creates out_dir if needed. */
int ft_export_safetensors(const ft_model *m, const char *tokenizer_dir, const char *out_dir, ft_dtype dtype,
                          uint64_t max_shard_bytes, ft_export_summary *summary);
#endif
