/* cli.h — the finetune program: subcommands and a small shared option parser.
 * Each subcommand lives in cmd_<name>.c and is `int ft_cmd_<name>(int argc, char **argv)`,
 * returning the process exit status (0 ok, 1 failure, 2 usage). argv[0] is the subcommand name. */
#ifndef FT_CLI_H
#define FT_CLI_H
#include <stdio.h>
#include "finetune/backend.h"
#include "finetune/tensor.h"

int ft_cmd_generate(int argc, char **argv);
int ft_cmd_tokenize(int argc, char **argv);
int ft_cmd_bench(int argc, char **argv);
int ft_cmd_convert(int argc, char **argv);
int ft_cmd_init(int argc, char **argv);
int ft_cmd_merge(int argc, char **argv);
int ft_cmd_export(int argc, char **argv);
int ft_cmd_train(int argc, char **argv);
int ft_cmd_eval(int argc, char **argv);
int ft_cmd_predict(int argc, char **argv);
int ft_cmd_serve(int argc, char **argv);
int ft_cmd_bias(int argc, char **argv);
int ft_cmd_sweep(int argc, char **argv);
int ft_cmd_runs(int argc, char **argv);
int ft_cmd_score(int argc, char **argv);
int ft_cmd_explain(int argc, char **argv);
/* `finetune data SUB` (cmd_data.c): a table of subcommands, each in cmd_data_<sub>.c, called with argv[0] =
 * "data <sub>". */
int ft_cmd_data(int argc, char **argv);
/* The start of every data subcommand: the input file given first (argv[1] when it is not an option:
 * `finetune data inspect FILE --json out.json`) in *in, then the options parsed into opts. IN is required,
 * and --out too when out is not NULL (*out: its value). Returns -1 to go on, else the exit status for the
 * subcommand to return: 0 after --help, 2 after a usage error (printed, "finetune data <sub>: ...").
 * Borrows argv (reorders it). */
struct ft_opt;
int ft_cli_data_input(int argc, char **argv, struct ft_opt *opts, const char *usage, const char **in, const char **out);
/* The table options of the data-quality subcommands (inspect, clean: dataquality.h's ft_dq_table_options),
 * appended to an ft_opt table; ft_cli_dq_table_options reads them (FT_ERR_INVALID for an unknown --format). */
#define FT_CLI_DQ_TABLE_OPTS \
    {"format", 1, "auto (default), csv, tsv, jsonl, json, text, dailydialog", NULL}, \
    {"text-column", 1, "the text field(s), comma-separated (default: text, sentence, content, ...)", NULL}, \
    {"label-column", 1, "the label field (default: label when present; none: no labels)", NULL}
struct ft_dq_table_options;
int ft_cli_dq_table_options(const struct ft_opt *opts, struct ft_dq_table_options *to);
int ft_cmd_data_inspect(int argc, char **argv);
int ft_cmd_data_clean(int argc, char **argv);
/* `finetune train --clean STEPS` (train_clean.c): cleans cfg->data (all steps) and cfg->val_data / test_data (the text
 * steps only) into RUN_DIR/clean/ with their logs, and points cfg at the cleaned copies. */
struct ft_train_config;
int ft_cli_train_clean(struct ft_train_config *cfg);
/* The shipped stop-word lists (data/stopwords beside the embedded model, or $FINETUNE_HOME/data/stopwords). */
const char *ft_default_stopwords_dir(void);
/* `finetune data augment` (cmd_data_augment.c) and `finetune data balance` (cmd_data_balance.c) */
int ft_cmd_data_augment(int argc, char **argv);
int ft_cmd_data_balance(int argc, char **argv);
/* `finetune train --features FILE` (cmd_train_features.c): a classification head on frozen embeddings */
int ft_cmd_train_features(int argc, char **argv);
/* <repo>/<rel>, found from $FINETUNE_HOME or upwards from the executable (data files shipped with the repo) */
const char *ft_cli_repo_path(const char *rel, char *buf, size_t cap);

/* Option table: long name, whether it takes a value, help text. */
typedef struct ft_opt {
    const char *name;       /* without leading "--" */
    int         has_value;  /* 0: a flag, 1: needs a value, FT_OPT_OPTIONAL_VALUE: `--name [V]` */
    const char *help;
    const char *value;      /* set by ft_parse_opts: the value, or "1" for flags ("" for an optional value
                               not given), NULL if absent */
} ft_opt;
#define FT_OPT_OPTIONAL_VALUE 2

/* Parses argv[1..] against opts (terminated by a {NULL} entry). Unknown options or a missing value
 * print an error naming the option and return 2. --help / -h prints usage + options and returns 1. */
int ft_parse_opts(int argc, char **argv, ft_opt *opts, const char *usage);
const char *ft_opt_str(const ft_opt *opts, const char *name, const char *def);
/* Parses a number option; on a malformed value prints "--name: expected ..." and returns -1. */
int ft_opt_int(const ft_opt *opts, const char *name, long def, long *out);
int ft_opt_float(const ft_opt *opts, const char *name, double def, double *out);
int ft_opt_flag(const ft_opt *opts, const char *name);
/* `finetune bench --adapters N` (bench_adapters.c): N sequences with N adapters, batched vs one by one */
struct ft_model;
int ft_bench_adapters(struct ft_model *m, int n, int r, const char *targets, int prompt_len, int gen_tokens);
/* `finetune bench --model PATH` (bench_decode.c): prefill and decode tokens/s of a stored model (HF or GGUF) */
int ft_bench_decode(const char *path, ft_dtype weights, int prompt_len, int gen_tokens, int reps);
/* `finetune eval` on an encoder directory (cmd_eval_encoder.c) */
int ft_cmd_eval_encoder(const ft_opt *opts, const char *dir, const char *data);
/* `finetune eval --group-column` (eval_fairness.c): reads the group column of data for the examples of d and
 * computes fairness.h's report from ev->pred; json: adds "fairness" to ev->json, else writes the table to text. */
struct ft_enc_data;
struct ft_enc_eval;
int ft_cli_eval_fairness(const ft_opt *opts, const char *data, const struct ft_enc_data *d, struct ft_enc_eval *ev, int json, FILE *text);
/* `finetune eval --generate` on a decoder (cmd_eval_generate.c) */
int ft_cmd_eval_generate(const ft_opt *opts, const char *dir, const char *data);

/* The directory of the embedded default model (models/stories260K next to the executable's repo,
 * or $FINETUNE_HOME/models/stories260K). */
const char *ft_default_model_dir(void);
 /* The bundled default training data (data/fundialogues beside the embedded model). */
const char *ft_default_data_path(void);
/* Loads a model for generate / eval / merge: dir is an HF model directory, or a PEFT adapter directory
 * (adapter_config.json), whose base_model_name_or_path is loaded first; adapter_dir (may be NULL) is a
 * LoRA adapter applied on top without merging. */
struct ft_model;
int ft_cli_load_model(struct ft_model **out, const char *dir, const char *adapter_dir, const ft_backend *be);
/* The same with the matmul weights stored as `weights` (FT_F32, or FT_BF16 for --precision bf16: bf16.h). */
int ft_cli_load_model_as(struct ft_model **out, const char *dir, const char *adapter_dir, const ft_backend *be, ft_dtype weights);
/* --precision f32|bf16 of the generation commands (generate, serve, bench --model) into *weights (FT_F32 /
 * FT_BF16); absent: FT_F32. Prints "finetune <cmd>: ..." and returns 2 on a bad value. */
int ft_cli_weights_precision(const ft_opt *opts, const char *cmd, ft_dtype *weights);
#define FT_CLI_PRECISION_HELP "f32 (default) or bf16: the matmul weights rounded to bf16 at load (half the memory read per token; needs AVX-512)"
/* The directory holding the tokenizer for dir (dir itself, or an adapter's base). */
const char *ft_cli_tokenizer_dir(const char *dir, char *buf, size_t cap);
/* Prints "finetune <cmd>: <last error>" to stderr and returns 1. */
int ft_cli_fail(const char *cmd, int status);
/* Monotonic seconds (CLOCK_MONOTONIC), for the timings the commands print. */
double ft_cli_now_s(void);
/* The index of the largest of x[0..n) (the first on ties): greedy decoding in the benchmarks. */
int ft_cli_argmax(const float *x, int n);
#endif
