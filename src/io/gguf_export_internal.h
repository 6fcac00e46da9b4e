/* gguf_export_internal.h — shared by the GGUF export files (src/io/gguf_*.c, src/tokenizer/gguf_vocab.c). */
#ifndef FT_GGUF_EXPORT_INTERNAL_H
#define FT_GGUF_EXPORT_INTERNAL_H
#include "finetune/gguf_write.h"
#include "finetune/model.h"
#include "finetune/tokenizer.h"

/* The llama.cpp tensor name of a Hugging Face tensor name ("model.layers.3.self_attn.q_proj.weight" ->
 * "blk.3.attn_q.weight", "transformer.h.0.attn.c_attn.bias" -> "blk.0.attn_qkv.bias"); FT_ERR_NOT_FOUND
 * for a name with no counterpart. */
int ft__gguf_tensor_name(ft_arch arch, const char *hf_name, char *out, size_t cap);
/* "llama", "qwen2" or "gpt2" for the model's config. */
const char *ft__gguf_arch_name(const ft_model_config *c);

/* The tokenizer.ggml.* keys for tok, padded to vocab_size tokens ("[PAD<id>]", type unused) as
 * convert_hf_to_gguf.py does. model_type chooses the pre-tokenizer name of byte-level BPE. */
int ft__tokenizer_gguf_meta(const ft_tokenizer *tok, int vocab_size, const char *model_type, ft_gguf_writer *w);
#endif
