/* fuzz_peft_config.c — a LoRA adapter's adapter_config.json (PEFT) read from arbitrary text, then the
 * adapter built over a small Llama base from it (targets matched, shapes planned; the weights file is absent,
 * so loading stops with a clear error after the config has been used). */
#include "fuzz_util.h"
#include "finetune/adapter.h"
#include "finetune/fileio.h"
#include "finetune/model.h"

static ft_model *g_base;
static char g_dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft_fuzz_quiet();
    if (!g_base) {
        static const char *cfg = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":64,"
                                 "\"hidden_size\":16,\"intermediate_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
                                 "\"num_key_value_heads\":1,\"max_position_embeddings\":32}";
        ft_model_config c;
        if (ft_model_config_from_json(&c, cfg, "fuzz") != FT_OK || ft_model_create_random(&g_base, &c, 1, NULL) != FT_OK) return 0;
        snprintf(g_dir, sizeof g_dir, "/tmp/ft_fuzz_peft_%d", (int)getpid());
        if (ft_mkdirs(g_dir) != FT_OK) return 0;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/adapter_config.json", g_dir);
    if (ft_file_write_atomic(path, data, size) != FT_OK) return 0;
    ft_adapter *a;
    if (ft_adapter_load(&a, g_base, g_dir) == FT_OK) ft_adapter_free(a);
    return 0;
}
