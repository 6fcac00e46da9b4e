/* main.c — `finetune <command> [options]`: dispatch to the subcommands. */
#include "cli.h"
#include "finetune/backend.h"

#include <stdio.h>
#include <string.h>

typedef struct { const char *name; int (*fn)(int, char **); const char *summary; } ft_command;

static const ft_command k_commands[] = {
    {"train",    ft_cmd_train,    "fine-tune a model on a dataset (run directory with checkpoints, metrics, report)"},
    {"eval",     ft_cmd_eval,     "loss and perplexity (decoders) or accuracy / F1 / ... (encoders) of a model on a data file"},
    {"predict",  ft_cmd_predict,  "an encoder's label and probabilities for a text (or each stdin line)"},
    {"bias",     ft_cmd_bias,     "bias probes of a language model: CrowS-Pairs, WinoBias, templates / BOLD generations scored by a classifier"},
    {"explain",  ft_cmd_explain,  "token attributions of a prediction: Shapley values, Integrated Gradients, attention maps"},
    {"generate", ft_cmd_generate, "generate text from a prompt (KV cache; greedy, temperature, top-k, top-p)"},
    {"serve",    ft_cmd_serve,    "serve models and adapters over HTTP (OpenAI-compatible, classification API)"},
    {"score",    ft_cmd_score,    "BLEU / chrF / ROUGE / exact match / F1 / distinct-n of predictions against references"},
    {"data",     ft_cmd_data,     "data tools: finetune data <subcommand> (finetune data --help lists them)"},
    {"tokenize", ft_cmd_tokenize, "print the token ids of a text (or of each stdin line)"},
    {"convert",  ft_cmd_convert,  "convert a llama2.c .bin or a GGUF file into a Hugging Face directory"},
    {"merge",    ft_cmd_merge,    "fold a LoRA adapter into its base model and write an HF directory"},
    {"export",   ft_cmd_export,   "write a model as GGUF (llama.cpp / Ollama; f32..q4_k), a LoRA adapter as GGUF, or safetensors"},
    {"init",     ft_cmd_init,     "write a randomly initialised model (any supported architecture) with a tokenizer"},
    {"runs",     ft_cmd_runs,     "the recorded training runs: list, show, tag, rm, export --csv (SQLite run store)"},
    {"sweep",    ft_cmd_sweep,    "hyperparameter search: grid, random, bayes (GP), tpe; successive halving, hyperband, asha"},
    {"bench",    ft_cmd_bench,    "time a training step and generation (tokens/s)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "usage: finetune <command> [options]   (finetune <command> --help for its options)\n\ncommands:\n");
    for (const ft_command *c = k_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    ft_set_threads(0);
    for (const ft_command *c = k_commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0) return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "finetune: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
