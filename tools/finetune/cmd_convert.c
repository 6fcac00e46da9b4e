/* cmd_convert.c — `finetune convert --from FILE [--tokenizer FILE] --to DIR`:
 * a llama2.c .bin or a GGUF llama model -> a Hugging Face Llama directory. */
#include "cli.h"
#include "finetune/convert.h"
#include "finetune/status.h"

#include <stdio.h>

static const char k_usage[] =
    "usage: finetune convert --from FILE [--tokenizer FILE] --to DIR [--context-length N]\n"
    "\n"
    "Converts a llama2.c checkpoint (.bin, legacy or version 1 float32) or a GGUF llama model\n"
    "(F32/F16/BF16 tensors) into a Hugging Face Llama directory: config.json, model.safetensors,\n"
    "tokenizer.json, tokenizer_config.json, generation_config.json. The format is detected from the\n"
    "file's magic. q/k projections are permuted from llama2.c/GGUF's interleaved rotary layout to\n"
    "HF's rotate_half layout, so the result runs in transformers and in finetune unchanged.\n"
    "\n"
    "The tokenizer: --tokenizer (a llama2.c tokenizer.bin / tok512.bin, a tokenizer.json, or a model\n"
    "directory); by default the GGUF's own vocabulary, or for a .bin a tokenizer.bin / tok<V>.bin\n"
    "in the same directory.\n"
    "\n"
    "example: finetune convert --from stories260K.bin --tokenizer tok512.bin --to models/stories260K";

static void group_digits(char *buf, size_t cap, long long v) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%lld", v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
}

int ft_cmd_convert(int argc, char **argv) {
    ft_opt opts[] = {
        {"from", 1, "checkpoint to convert: llama2.c .bin or .gguf", NULL},
        {"tokenizer", 1, "tokenizer file or directory (default: from the GGUF, or beside the .bin)", NULL},
        {"to", 1, "output directory (created if needed)", NULL},
        {"context-length", 1, "max_position_embeddings to write (default: the checkpoint's)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, k_usage);
    if (prc == 1) return 0;   /* --help */
    if (prc) return prc;
    const char *from = ft_opt_str(opts, "from", NULL), *to = ft_opt_str(opts, "to", NULL);
    const char *tok = ft_opt_str(opts, "tokenizer", NULL);
    if (!from || !to) {
        fprintf(stderr, "finetune convert: --from FILE and --to DIR are required (see --help)\n");
        return 2;
    }
    long ctx;
    if (ft_opt_int(opts, "context-length", 0, &ctx) < 0) return 2;
    if (ctx < 0 || ctx > (1L << 24)) {
        fprintf(stderr, "finetune convert: --context-length must be between 1 and %ld, got %ld\n", 1L << 24, ctx);
        return 2;
    }
    ft_convert_opts co = {.context_length = (int)ctx};
    ft_convert_summary s;
    int rc = ft_convert_to_hf(from, tok, to, &co, &s);
    if (rc < 0) return ft_cli_fail("convert", rc);
    char params[48];
    group_digits(params, sizeof params, (long long)s.n_params);
    fprintf(stderr, "converted %s (%s) -> %s\n", from, s.format, to);
    fprintf(stderr, "  architecture  llama (LlamaForCausalLM)\n");
    fprintf(stderr, "  dims          dim %d, hidden %d, layers %d, heads %d, kv heads %d, head size %d\n",
            s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, s.dim / s.n_heads);
    fprintf(stderr, "  vocab         %d tokens, max positions %d, embeddings %s\n",
            s.vocab_size, s.seq_len, s.tied ? "tied" : "untied (lm_head.weight)");
    fprintf(stderr, "  params        %s\n", params);
    fprintf(stderr, "  written       model.safetensors (%d tensors, F32), config.json, tokenizer.json,\n"
                    "                tokenizer_config.json, generation_config.json\n", s.n_tensors);
    return 0;
}
