/* adapter.h — LoRA adapters as objects: loaded, shared and freed independently of the base weights.
 *
 * An ft_adapter holds the low-rank matrices of one PEFT LoRA adapter (A [r, in], B [out, r] and the
 * scale alpha/r or alpha/sqrt(r) for every adapted linear layer), laid out for one base model shape.
 * Many adapters can be loaded over one base; the base is never copied or modified. A forward pass picks
 * the adapter per sequence (context.h: rows of one batch may use different adapters or none), so a
 * server holds one base and any number of adapters, and batches requests that use different ones.
 *
 *   ft_model *base;   ft_model_load(&base, "models/gpt2", ft_backend_cpu());
 *   ft_adapter *a;    ft_adapter_load(&a, base, "runs/exp1/final");     // a PEFT adapter directory
 *   ft_context *ctx;  ft_context_create(&ctx, base, NULL);
 *   ft_decode_seq s = { .slot = 0, .adapter = a, .tokens = ids, .n_tokens = n, .logits = lg };
 *   ft_context_decode(ctx, &s, 1);
 *   ... ft_context_free(ctx); ft_adapter_free(a); ft_model_free(base);
 *
 * Thread safety: an adapter is immutable after ft_adapter_load / ft_adapter_from_model returns and may
 * be read by any number of threads and contexts at once. It must outlive every context step that uses it
 * and must be used only with models of the shape it was loaded for (same family and dimensions; checked
 * by ft_context_decode). ft_adapter_free is not safe while another thread uses the adapter. */
#ifndef FINETUNE_ADAPTER_H
#define FINETUNE_ADAPTER_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/model.h"

typedef struct ft_adapter ft_adapter;

/* Reads a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors, as written by
 * finetune train --method lora / qlora or peft's save_pretrained) for the shape of base. The target
 * modules of the config must exist in base (FT_ERR_NOT_FOUND names them otherwise); tensor shapes are
 * checked. base is only read. */
int  ft_adapter_load(ft_adapter **out, const ft_model *base, const char *dir);
/* The same for an encoder base (BERT / DistilBERT / RoBERTa / MiniLM; encoder.h): the adapter's LoRA
 * matrices, for ft_encoder_forward_adapters. A task head saved with the adapter (modules_to_save: finetune's
 * encoder LoRA saves the classifier) is read too, each tensor shaped as base's (another label count:
 * FT_ERR_SHAPE), and replaces base's head for the sequences that use this adapter. */
struct ft_encoder_model;
int  ft_encoder_adapter_load(ft_adapter **out, const struct ft_encoder_model *base, const char *dir);
/* A copy of the LoRA adapters attached to m (ft_model_add_lora / ft_model_load_adapter), e.g. right
 * after training; FT_ERR_INVALID when m has none. */
int  ft_adapter_from_model(ft_adapter **out, const ft_model *m);
/* A new adapter over base's shape for the lora.h settings c (targets, rank, alpha, rsLoRA), initialised as
 * PEFT does (A ~ U(-1/sqrt(in), 1/sqrt(in)) from seed, B = 0: the adapter starts as the identity). */
struct ft_lora_config;
int  ft_adapter_create(ft_adapter **out, const ft_model *base, const struct ft_lora_config *c, uint64_t seed);
void ft_adapter_free(ft_adapter *a);
/* Module k's matrices (A [r, in], B [rows, r], row-major) for filling an adapter in code — tests,
 * benchmarks, conversions — before it is shared; any output pointer may be NULL. */
int  ft_adapter_module_weights(ft_adapter *a, int k, float **A, float **B, int *rows, int *in, int *r);

/* Number of adapted linear layers, the rank, scale and a label (the directory it came from). */
int         ft_adapter_module_count(const ft_adapter *a);
int         ft_adapter_rank(const ft_adapter *a);
float       ft_adapter_scale(const ft_adapter *a);
const char *ft_adapter_name(const ft_adapter *a);
/* Bytes held by the adapter's matrices. */
size_t      ft_adapter_bytes(const ft_adapter *a);
/* Task-head tensors an encoder adapter carries (modules_to_save); 0: it runs with its base's head. */
int         ft_adapter_head_tensors(const ft_adapter *a);
#endif
