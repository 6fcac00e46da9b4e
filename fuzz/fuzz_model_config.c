/* fuzz_model_config.c — a decoder's config.json (GPT-2 / Llama / Mistral / Qwen2 keys, rope scaling) parsed
 * from arbitrary text and written back. */
#include "fuzz_util.h"
#include "finetune/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    char *text = ft_fuzz_str(data, size);
    if (!text) return 0;
    ft_model_config c;
    ft_model_config_from_json(&c, text, "config.json");
    free(text);
    return 0;
}
