/* cmd_export.c — `finetune export`: a model (optionally with a LoRA adapter merged in) as a GGUF file for
 * llama.cpp / Ollama, a LoRA adapter as a llama.cpp LoRA GGUF, or a merged Hugging Face safetensors
 * directory (export.h). */
#include "cli.h"
#include "finetune/export.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_usage[] =
    "usage: finetune export --model DIR [--adapter DIR [--merge]] --format gguf --type f32|f16|bf16|q8_0|q4_0|q4_k --out FILE.gguf\n"
    "       finetune export --model DIR [--adapter DIR] --format safetensors --dtype f32|f16|bf16 --out DIR [--max-shard-size 5GB]\n"
    "\n"
    "GGUF (llama.cpp, Ollama, LM Studio): GPT-2 and Llama-family models (Llama, Mistral, Qwen2, SmolLM,\n"
    "TinyLlama, stories260K) with their tokenizer and chat template. Norms and biases stay F32; a matrix\n"
    "whose rows do not split into the type's blocks falls back as llama.cpp's quantize does (Q4_K -> Q5_0\n"
    "-> F16, Q8_0/Q4_0 -> F16). With --adapter and no --merge the output is a LoRA adapter GGUF, applied by\n"
    "llama.cpp over the base GGUF (llama-cli -m base.gguf --lora adapter.gguf); --merge folds the adapter\n"
    "into the weights first. A PEFT adapter directory given as --model counts as --adapter over its base.\n"
    "A .gguf file as --model is read in f32 (quantized tensors dequantized) and written in the asked type.\n"
    "\n"
    "safetensors: a merged Hugging Face directory (config.json, tokenizer files, model.safetensors, or\n"
    "shards + model.safetensors.index.json above --max-shard-size) for transformers.\n"
    "\n"
    "example: finetune export --model runs/x/final --format gguf --type q8_0 --out model.gguf";

/* "5GB", "500MB", "2GiB", "123" -> bytes (transformers' decimal units; KiB/MiB/GiB binary) */
static int parse_size(const char *s, uint64_t *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1;
    while (*end == ' ') end++;
    double mul = 1;
    if (!*end || strcasecmp(end, "B") == 0) mul = 1;
    else if (strcasecmp(end, "KB") == 0) mul = 1e3;
    else if (strcasecmp(end, "MB") == 0) mul = 1e6;
    else if (strcasecmp(end, "GB") == 0) mul = 1e9;
    else if (strcasecmp(end, "KiB") == 0) mul = 1024.0;
    else if (strcasecmp(end, "MiB") == 0) mul = 1024.0 * 1024;
    else if (strcasecmp(end, "GiB") == 0) mul = 1024.0 * 1024 * 1024;
    else return -1;
    *out = (uint64_t)(v * mul);
    return *out > 0 ? 0 : -1;
}

static int is_adapter_dir(const char *dir) {
    char p[4096];
    return ft_path_join(p, sizeof p, dir, "adapter_config.json") == FT_OK && ft_path_exists(p);
}

static void print_summary(const char *what, const char *out, const ft_export_summary *s) {
    fprintf(stderr, "finetune export: %s -> %s: %d tensors, %.1f MB", what, out, s->n_tensors, (double)s->data_bytes / 1e6);
    const struct { const char *n; int c; } k[] = {{"F32", s->n_f32}, {"F16", s->n_f16}, {"BF16", s->n_bf16}, {"Q8_0", s->n_q8_0},
                                                  {"Q4_0", s->n_q4_0}, {"Q5_0", s->n_q5_0}, {"Q4_K", s->n_q4_k}};
    const char *sep = " (";
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].c) { fprintf(stderr, "%s%d %s", sep, k[i].c, k[i].n); sep = ", "; }
    if (*sep == ',') fprintf(stderr, ")");
    if (s->n_fallback) fprintf(stderr, "; %d matrices fell back to another type (row length vs block size)", s->n_fallback);
    if (s->n_shards > 1) fprintf(stderr, "; %d shards", s->n_shards);
    fprintf(stderr, "\n");
}

int ft_cmd_export(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "model directory (HF), or a PEFT adapter directory (its base is loaded)", NULL},
        {"adapter", 1, "LoRA adapter directory: a LoRA GGUF (gguf without --merge) or merged in", NULL},
        {"merge", 0, "fold the adapter into the weights before exporting", NULL},
        {"format", 1, "gguf or safetensors (default gguf)", NULL},
        {"type", 1, "GGUF tensor type: f32 (default), f16, bf16, q8_0, q4_0, q4_k", NULL},
        {"dtype", 1, "safetensors dtype: f32 (default), f16, bf16", NULL},
        {"max-shard-size", 1, "safetensors: largest shard, e.g. 5GB (default), 500MB", NULL},
        {"name", 1, "GGUF general.name (default: none)", NULL},
        {"out", 1, "output file (gguf) or directory (safetensors), required", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts, k_usage);
    if (prc) return prc == 1 ? 0 : prc;
    const char *model = ft_opt_str(opts, "model", NULL), *adapter = ft_opt_str(opts, "adapter", NULL);
    const char *format = ft_opt_str(opts, "format", "gguf"), *out = ft_opt_str(opts, "out", NULL);
    int merge = ft_opt_flag(opts, "merge");
    if (!out) { fprintf(stderr, "finetune export: --out is required (see --help)\n"); return 2; }
    if (!model && !adapter) model = ft_default_model_dir();
    int gguf = strcmp(format, "gguf") == 0;
    if (!gguf && strcmp(format, "safetensors") != 0) {
        fprintf(stderr, "finetune export: --format must be gguf or safetensors, got '%s'\n", format);
        return 2;
    }
    int type = ft_gguf_type_from_name(ft_opt_str(opts, "type", "f32"));
    if (type < 0 || type == FT_GGML_Q5_0) {
        fprintf(stderr, "finetune export: --type must be f32, f16, bf16, q8_0, q4_0 or q4_k, got '%s'\n", ft_opt_str(opts, "type", ""));
        return 2;
    }
    const char *dt = ft_opt_str(opts, "dtype", "f32");
    ft_dtype dtype = strcasecmp(dt, "f32") == 0 ? FT_F32 : strcasecmp(dt, "f16") == 0 ? FT_F16 : strcasecmp(dt, "bf16") == 0 ? FT_BF16 : (ft_dtype)-1;
    if ((int)dtype < 0) { fprintf(stderr, "finetune export: --dtype must be f32, f16 or bf16, got '%s'\n", dt); return 2; }
    uint64_t max_shard = 0;
    const char *ms = ft_opt_str(opts, "max-shard-size", NULL);
    if (ms && parse_size(ms, &max_shard) < 0) {
        fprintf(stderr, "finetune export: --max-shard-size: expected a size like 5GB, 500MB or a byte count, got '%s'\n", ms);
        return 2;
    }
    /* a PEFT directory as --model means that adapter over its base */
    if (model && !adapter && is_adapter_dir(model)) { adapter = model; model = NULL; }
    int lora_gguf = gguf && adapter && !merge;
    if (lora_gguf && type != FT_GGML_F32)
        fprintf(stderr, "finetune export: a LoRA adapter GGUF is written in F32 (--type applies to models; add --merge to export the merged model)\n");

    ft_model *m = NULL;
    int from_gguf = model && ft_model_path_is_gguf(model);
    int rc;
    if (from_gguf) {
        /* a GGUF file as the source: every tensor dequantized to f32, then written in the asked type */
        rc = ft_model_load_gguf_f32(&m, model, ft_backend_cpu());
        if (rc == FT_OK && adapter && !lora_gguf) rc = ft_model_load_adapter(m, adapter);
    } else {
        rc = model ? ft_cli_load_model(&m, model, lora_gguf ? NULL : adapter, ft_backend_cpu())
                   : ft_cli_load_model(&m, adapter, NULL, ft_backend_cpu());
    }
    if (rc < 0) return ft_cli_fail("export", rc);
    ft_export_summary s;
    memset(&s, 0, sizeof s);
    if (lora_gguf) {
        rc = ft_export_lora_gguf(m, adapter, out, &s);
        if (rc == FT_OK) print_summary("LoRA adapter", out, &s);
    } else {
        if (ft_model_lora_count(m) > 0) {
            int n = ft_model_lora_count(m);
            rc = ft_model_merge_lora(m);
            if (rc == FT_OK) fprintf(stderr, "finetune export: %d adapted modules merged\n", n);
        }
        char tbuf[4096];
        const char *tokdir = ft_cli_tokenizer_dir(model ? model : adapter, tbuf, sizeof tbuf);
        if (rc == FT_OK && gguf) {
            ft_tokenizer *tok = NULL;
            rc = ft_tokenizer_load(&tok, tokdir);
            ft_export_gguf_opts o = ft_export_gguf_default_opts();
            o.type = (uint32_t)type;
            o.name = ft_opt_str(opts, "name", NULL);
            o.tokenizer_dir = tokdir;
            if (rc == FT_OK) rc = ft_export_gguf(m, tok, &o, out, &s);
            if (rc == FT_OK) print_summary(ft_opt_str(opts, "type", "f32"), out, &s);
            ft_tokenizer_free(tok);
        } else if (rc == FT_OK) {
            rc = ft_export_safetensors(m, from_gguf ? NULL : tokdir, out, dtype, max_shard, &s);
            if (rc == FT_OK && from_gguf) {
                /* the GGUF's vocabulary as tokenizer.json */
                ft_tokenizer *tok = NULL;
                char tj[4096];
                rc = ft_tokenizer_load(&tok, model);
                if (rc == FT_OK) rc = ft_path_join(tj, sizeof tj, out, "tokenizer.json");
                if (rc == FT_OK) rc = ft_tokenizer_save_json(tok, tj);
                ft_tokenizer_free(tok);
            }
            if (rc == FT_OK) print_summary(dt, out, &s);
        }
    }
    ft_model_free(m);
    if (rc < 0) return ft_cli_fail("export", rc);
    printf("%s\n", out);
    return 0;
}
