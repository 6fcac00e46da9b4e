/* lora.h — parameter-efficient fine-tuning: frozen layers and LoRA adapters, in the PEFT layout.
 *
 * LoRA (Hu et al. 2021) adds to a frozen linear layer y = x W^T a low-rank update
 *     y += scale * (dropout(x) A^T) B^T,     A [r, in], B [out, r], scale = alpha / r (rsLoRA: alpha / sqrt(r))
 * initialised as PEFT does: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0.
 * Only A and B get gradients and optimizer state; the base weights' gradient matmuls are skipped.
 *
 * Targets use PEFT's module names: GPT-2 c_attn, c_proj (attention and MLP), c_fc, attn.c_proj,
 * mlp.c_proj; Llama family q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; "all-linear"
 * (every linear layer of the blocks, not the LM head). A target matches a module whose name equals it or
 * ends with "." + target. Adapters are saved as adapter_config.json + adapter_model.safetensors with
 * PEFT's keys (base_model.model.<module>.lora_A.weight / lora_B.weight), so peft.PeftModel loads them,
 * and PEFT adapters load here.
 *
 *   ft_lora_config lc = ft_lora_default_config();      // r 8, alpha 16, dropout 0.05, c_attn / q_proj,v_proj
 *   ft_model_add_lora(m, &lc, seed);                   // freezes every base weight
 *   ... train ...
 *   ft_model_save_adapter(m, "run/final", "path/to/base");
 *   ft_model_merge_lora(m);  ft_model_save(m, "merged");
 */
#ifndef FINETUNE_LORA_H
#define FINETUNE_LORA_H
#include <stdint.h>
#include "finetune/model.h"

typedef struct ft_lora_config {
    int   r;              /* rank (8) */
    float alpha;          /* lora_alpha (16) */
    float dropout;        /* lora_dropout on the adapter input (0.05; training only) */
    int   rslora;         /* scale alpha/sqrt(r) instead of alpha/r */
    char  targets[512];   /* comma-separated module names, "all-linear"; "" = family default */
} ft_lora_config;

ft_lora_config ft_lora_default_config(void);

/* Adds adapters to every matching module and freezes all base parameters. FT_ERR_NOT_FOUND if no
 * module matches (the message lists the model's module names). Call before ft_model_prepare /
 * ft_model_zero_grad / creating the optimizer. */
int ft_model_add_lora(ft_model *m, const ft_lora_config *c, uint64_t seed);
/* Loads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) onto the model. */
int ft_model_load_adapter(ft_model *m, const char *adapter_dir);
/* Writes adapter_config.json (base_model_name_or_path = base_path) + adapter_model.safetensors. */
int ft_model_save_adapter(const ft_model *m, const char *dir, const char *base_path);
/* Folds every adapter into its base weight (W += scale * B A) and removes the adapters. */
int ft_model_merge_lora(ft_model *m);
/* Number of adapted modules (0 = none). */
int ft_model_lora_count(const ft_model *m);

/* Partial fine-tuning. Patterns, comma-separated: "embeddings" (token and position embeddings),
 * "head" (the LM head; with tied embeddings, the embeddings), "norm" (the final norm),
 * "layers:A-B" or "layers:A" (0-based blocks), or a glob on HF tensor names ("*.attn.*", "transformer.h.0.*").
 * ft_model_freeze marks matching parameters frozen; ft_model_train_only freezes everything else.
 * Frozen parameters get no gradient buffer and no optimizer state. Returns the number matched
 * (FT_ERR_NOT_FOUND when a pattern matches nothing). Call before gradients / optimizer exist. */
int ft_model_freeze(ft_model *m, const char *patterns);
int ft_model_train_only(ft_model *m, const char *patterns);
/* Trainable scalars (after freezing / LoRA). */
int64_t ft_model_trainable_count(const ft_model *m);

/* ---- LoRA on encoders (BERT / DistilBERT / RoBERTa; src/models/encoder_lora.c) ----
 * Targets are the blocks' linear layers by HF leaf name (query key value dense / q_lin k_lin v_lin out_lin
 * lin1 lin2, or all-linear); "" = PEFT's default (query,value / q_lin,v_lin). The base is frozen except the
 * task head, which stays trainable as PEFT's SEQ_CLS / TOKEN_CLS modules_to_save (BERT's pooler is frozen).
 * Saved adapters (adapter_config.json + adapter_model.safetensors: lora_A / lora_B and the head) load with
 * peft's PeftModel.from_pretrained; adapter_config.json also records finetune_task, finetune_num_labels,
 * finetune_pooling and finetune_labels (the label names) so that an adapter directory is a usable model. */
struct ft_encoder_model;
struct ft_encoder_options;
const char *ft_encoder_lora_default_targets(const struct ft_encoder_model *m);
int ft_encoder_add_lora(struct ft_encoder_model *m, const ft_lora_config *c, uint64_t seed);
int ft_encoder_lora_count(const struct ft_encoder_model *m);
/* label_names [num_labels] or NULL (the model's). */
int ft_encoder_save_adapter(const struct ft_encoder_model *m, const char *dir, const char *base_path, const char *const *label_names);
/* Adds the adapters described by dir (unless present) and reads their weights and the saved head. */
int ft_encoder_load_adapter(struct ft_encoder_model *m, const char *dir);
/* An adapter directory as a model: its base (base_model_name_or_path), task, labels and pooling, then the adapter. */
int ft_encoder_load_with_adapter(struct ft_encoder_model **out, const char *adapter_dir, const struct ft_encoder_options *o,
                                 const struct ft_backend *be);
/* 1 when dir is a PEFT adapter directory for an encoder (written by finetune, or SEQ_CLS / TOKEN_CLS on an encoder base). */
int ft_encoder_dir_is_adapter(const char *dir);
/* W += scale B A for every adapter; the adapters are removed and every parameter is trainable again. */
int ft_encoder_merge_lora(struct ft_encoder_model *m);
#endif
