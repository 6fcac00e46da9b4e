/* peft_config.h — reading a PEFT LoRA adapter_config.json (private to src/models: lora.c for decoders,
 * encoder_lora.c for encoders). */
#ifndef FT_PEFT_CONFIG_H
#define FT_PEFT_CONFIG_H

typedef struct ft_peft_lora_config {
    int   r, rslora;
    float alpha, dropout;
    char  targets[512];          /* comma-separated target_modules, or "all-linear" */
    int   n_modules_to_save;     /* entries of modules_to_save */
} ft_peft_lora_config;

/* The largest LoRA rank an adapter_config.json may ask for (the adapter's matrices are r x width). */
#define FT_MAX_LORA_RANK 65536

/* Reads DIR/adapter_config.json. Refused with a message naming the file: another peft_type, DoRA,
 * bias != "none", rank / alpha patterns, a missing "r" or "lora_alpha", r outside [1, FT_MAX_LORA_RANK],
 * lora_alpha not finite in (0, 1e6], lora_dropout outside [0, 1). */
int ft__peft_lora_config_read(ft_peft_lora_config *out, const char *dir);

/* Reads the adapter matrix of module (which 'A' or 'B') into p (shape checked):
 * base_model.model.MODULE.lora_A.weight, or the same with the adapter name ".default" before ".weight". */
struct ft_safetensors;
struct ft_param;
int ft__peft_read_lora_weight(const struct ft_safetensors *st, const char *module, char which, struct ft_param *p);
#endif
