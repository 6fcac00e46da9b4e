/* train.h — the fine-tuning loop: data in, a better model and evidence out.
 *
 * ft_train_config holds every setting of a run. Its fields are described once, in a table
 * (ft_train_options), from which the CLI flags (`--lr 3e-4`), the JSON config file (`"lr": 3e-4`),
 * the run's saved config.json and the --help text are all derived, so they always agree.
 *
 *   ft_train_config cfg;
 *   ft_train_config_defaults(&cfg);
 *   ft_train_config_set(&cfg, "model", "models/gpt2");      // strings as on the command line
 *   ft_train_config_set(&cfg, "data", "dialogues.json");
 *   ft_train_config_set(&cfg, "out", "runs/exp1");
 *   ft_train_result res;
 *   int rc = ft_train(&cfg, &res);                         // or ft_train_resume("runs/exp1", &res)
 *
 * A run directory holds: config.json (the full configuration), metrics.jsonl (one JSON object per
 * logged step / evaluation), checkpoints/step-N/ (weights, optimizer state, schedule position, RNG
 * states, data cursor; written atomically, rotated by keep), final/ and best/ (HF model directories
 * with tokenizer files), samples, and report.html (self-contained: inline SVG curves and samples). */
#ifndef FINETUNE_TRAIN_H
#define FINETUNE_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/optim.h"

typedef enum ft_schedule { FT_SCHED_CONSTANT = 0, FT_SCHED_LINEAR, FT_SCHED_COSINE } ft_schedule;

typedef struct ft_train_config {
    /* inputs / outputs */
    char model[1024], data[1024], val_data[1024], out[1024], format[32], text_column[64], init_from[16];
    /* data preparation */
    int   seq_len, pack, strict, folds, fold, dedup;
    float val_split;
    char  train_on[16], truncate[16], prompt_column[64], completion_column[64], response_speaker[64];
    int   min_chars, max_chars;
    /* parameter-efficient fine-tuning */
    char  method[16], quant[16], lora_targets[512], freeze[512], train_only[512];
    int   lora_r, rslora;
    float lora_alpha, lora_dropout;
    /* optimisation */
    char  optimizer[16], schedule[16];
    float lr, weight_decay, beta1, beta2, eps, momentum, warmup_ratio, max_grad_norm, label_smoothing, min_lr_ratio;
    int   nesterov, warmup_steps, batch_size, grad_accum, epochs, max_steps;
    /* evaluation and checkpoints */
    int   eval_every, save_every, keep, patience, log_every, samples, sample_tokens, eval_batches;
    float min_delta;
    /* encoder tasks (BERT / DistilBERT / RoBERTa) */
    char  task[24], label_column[64], pair_column[64], pooling[8], class_weights[16], resample[8], test_data[1024];
    char  best_metric[24];
    int   num_labels, group_by_length, header;
    float mlm_probability;
    /* misc */
    int64_t seed;
    int   threads, dry_run;
    char  sample_prompts[2048];
} ft_train_config;

typedef enum { FT_OPTV_STR, FT_OPTV_INT, FT_OPTV_FLOAT, FT_OPTV_BOOL, FT_OPTV_I64 } ft_optv_type;
typedef struct ft_train_option {
    const char  *name;     /* CLI flag without "--" and JSON key with '-' -> '_' */
    ft_optv_type type;
    size_t       offset;   /* into ft_train_config */
    size_t       size;     /* for strings */
    const char  *def;      /* default, as text */
    const char  *help;
} ft_train_option;

extern const ft_train_option ft_train_options[];
extern const int ft_train_option_count;

void ft_train_config_defaults(ft_train_config *c);
/* Sets one option from text (CLI value or JSON scalar). Unknown name / bad value -> FT_ERR_INVALID. */
int  ft_train_config_set(ft_train_config *c, const char *name, const char *value);
/* Reads a JSON object of options (keys as flag names, '-' or '_'); path used in messages. */
int  ft_train_config_load_json(ft_train_config *c, const char *path);
/* Writes the full configuration as JSON (atomic). */
int  ft_train_config_save_json(const ft_train_config *c, const char *path);
/* Checks values and combinations; messages name the option. */
int  ft_train_config_validate(const ft_train_config *c);

/* ---- defaults chosen from the task, the method and the model (train_defaults.c) ----
 * --lr, --warmup-ratio and --batch-size default to "auto": the value FT_TRAIN_AUTO until the trainer
 * knows the task and has loaded the model, then the value of a table (README "Defaults"):
 *
 *   model                          method       lr     warmup-ratio  batch-size
 *   pretrained encoder (any task)  full         5e-5   0.1           16
 *   pretrained encoder             lora         1e-3   0.1           16
 *   decoder < 10M parameters       full         5e-4   0.05          8      (the embedded stories260K)
 *   decoder 10M .. 1B              full         5e-5   0.05          8
 *   decoder >= 1B                  full         2e-5   0.05          8
 *   decoder < 10M                  lora, qlora  5e-4   0.05          8
 *   decoder 10M .. 30B             lora, qlora  2e-4   0.05          8
 *   decoder >= 30B                 lora, qlora  1e-4   0.05          8
 *   decoder, --init random         any          5e-4   0.05          8
 *
 * Values given on the command line or in a JSON config always win. The trainers resolve once per
 * run and save the resolved numbers in RUN/config.json, so a resumed run reads the same values. */
#define FT_TRAIN_AUTO (-1)

typedef enum ft_model_kind {
    FT_MODEL_KIND_DECODER = 0,     /* a pretrained decoder (llama2.c, GPT-2, Llama, ...) */
    FT_MODEL_KIND_DECODER_RANDOM,  /* a decoder with --init random (trained from scratch) */
    FT_MODEL_KIND_ENCODER,         /* a pretrained BERT-style encoder */
} ft_model_kind;

typedef struct ft_train_defaults_ctx {
    const char   *task;      /* lm, classify, regress, token-classify or mlm (not "auto") */
    ft_model_kind kind;
    int64_t       n_params;  /* the model's parameter count (0 = unknown: treated as large) */
} ft_train_defaults_ctx;

/* Fills every option of c still at FT_TRAIN_AUTO from ctx and c->method, and writes into why
 * (cap bytes, may be NULL) one line saying each value and why, e.g. "lr 5e-05 (full fine-tuning
 * of a pretrained encoder: ...), warmup-ratio 0.1 (...), batch-size 16 (...)"; explicit values are
 * listed as "(set)". Pure: no I/O. FT_ERR_INVALID for an unknown task / method. */
int ft_train_config_resolve(ft_train_config *c, const ft_train_defaults_ctx *ctx, char *why, size_t cap);
/* What the trainers call in their setup: the context from the task name, encoder or decoder and the
 * parameter count (and c->init_from), ft_train_config_resolve, one "defaults: ..." line on stderr,
 * and c->out/config.json rewritten with the resolved values when it exists. */
int ft_train_defaults_apply(ft_train_config *c, const char *task, int is_encoder, int64_t n_params);

typedef struct ft_train_result {
    int64_t steps;
    int     epochs_done;
    float   first_val_loss, final_val_loss, best_val_loss;  /* NAN when no validation data */
    float   final_train_loss;
    double  tokens_per_s;
    int     stopped_early, interrupted;
    /* encoder tasks: the headline validation metric (accuracy, mse, f1, perplexity), first / last / best */
    char    metric_name[24];      /* "" for language models */
    double  first_metric, final_metric, best_metric;
} ft_train_result;

/* Learning rate at optimizer step `step` (0-based) of `total` steps: warmup linear from 0, then
 * constant / linear to min_lr / cosine to min_lr (transformers' schedules when min_lr_ratio = 0). */
float ft_schedule_lr(ft_schedule s, float base_lr, int64_t step, int64_t total, int64_t warmup, float min_lr_ratio);
int   ft_schedule_from_name(const char *name, ft_schedule *out);

/* Runs training as configured. Ctrl-C (SIGINT) writes a checkpoint and returns FT_ERR_INTERRUPTED. */
int ft_train(const ft_train_config *cfg, ft_train_result *res);
/* Continues the run in run_dir from its newest checkpoint, bit-exactly. */
int ft_train_resume(const char *run_dir, ft_train_result *res);

/* Requests a clean stop (checkpoint, then return) — what the SIGINT handler calls. */
void ft_train_request_stop(void);
#endif
