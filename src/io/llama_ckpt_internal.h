/* llama_ckpt_internal.h — helpers shared by llama2c.c, gguf_llama.c and hf_export.c. */
#ifndef FT_IO_LLAMA_CKPT_INTERNAL_H
#define FT_IO_LLAMA_CKPT_INTERNAL_H
#include "finetune/convert.h"

/* Rejects absurd or inconsistent dimensions (message names path). */
int ft__llama_ckpt_check_dims(const ft_llama_ckpt *ck, const char *path);
/* Number of f32 weights (the classifier added when with_cls). */
uint64_t ft__llama_ckpt_weight_floats(const ft_llama_ckpt *ck, int with_cls);
/* Allocates ck->mem for the config in ck (ck->tied decides wcls) and sets the pointers. */
int ft__llama_ckpt_alloc(ft_llama_ckpt *ck, const char *path);
#endif
