/* cmd_merge.c — `finetune merge`: fold a LoRA adapter into its base and write an HF model directory. */
#include "cli.h"
#include "finetune/checkpoint.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"

int ft_cmd_merge(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "base model directory (default: the adapter's base_model_name_or_path)", NULL},
        {"adapter", 1, "LoRA adapter directory (adapter_config.json + adapter_model.safetensors), required", NULL},
        {"out", 1, "output directory for the merged model (required)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, "usage: finetune merge [--model BASE_DIR] --adapter DIR --out DIR");
    if (prc) return prc == 1 ? 0 : prc;
    const char *adapter = ft_opt_str(opts, "adapter", NULL), *out = ft_opt_str(opts, "out", NULL);
    const char *model = ft_opt_str(opts, "model", NULL);
    if (!adapter || !out) { fprintf(stderr, "finetune merge: --adapter and --out are required (see --help)\n"); return 2; }
    ft_model *m = NULL;
    int rc = model ? ft_cli_load_model(&m, model, adapter, ft_backend_cpu()) : ft_cli_load_model(&m, adapter, NULL, ft_backend_cpu());
    if (rc < 0) return ft_cli_fail("merge", rc);
    int n = ft_model_lora_count(m);
    rc = ft_model_merge_lora(m);
    if (rc == FT_OK) rc = ft_model_save(m, out);
    char tbuf[4096];
    if (rc == FT_OK && ft_copy_tokenizer_files(model ? model : ft_cli_tokenizer_dir(adapter, tbuf, sizeof tbuf), out) < 0) rc = FT_ERR_IO;
    if (rc == FT_OK) fprintf(stderr, "finetune merge: %d adapted modules merged -> %s\n", n, out);
    ft_model_free(m);
    return rc < 0 ? ft_cli_fail("merge", rc) : 0;
}
