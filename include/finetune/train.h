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
 * The same run driven step by step, with a stop flag and a sink of one's own (see ft_trainer below):
 *
 *   static volatile sig_atomic_t stop;                     // set it (signal handler, other thread) to stop
 *   ft_train_sink console;  ft_train_sink_console(&console);
 *   ft_trainer *t;
 *   FT_TRY(ft_trainer_create(&t, &cfg, NULL, &console, 1, &stop));   // resume: cfg NULL, "runs/exp1"
 *   ft_train_step_info si;
 *   while ((rc = ft_trainer_step(t, &si)) == 1) { ... }    // 0: done; FT_ERR_INTERRUPTED: stopped, checkpoint saved
 *   rc = ft_trainer_finish(t, &res);                       // final/, test set, report.html
 *   ft_trainer_close(t);  console.close(console.user);
 *
 * A run may end early on purpose and go on later (what a sweep's continued trials do, hpo.h):
 * stop_at_epoch / stop_at_step end the invocation there, with an evaluation and a checkpoint, while the
 * learning-rate schedule stays planned for all of epochs / max_steps; resuming with a later stop (config.json
 * rewritten, `finetune train --resume RUN --stop-at-epoch M`) trains on to the same model as one run.
 *
 * A run directory holds: config.json (the full configuration), metrics.jsonl (one JSON object per
 * logged step / evaluation), checkpoints/step-N/ (weights, optimizer state, schedule position, RNG
 * states, data cursor; written atomically, rotated by keep), final/ and best/ (HF model directories
 * with tokenizer files), samples, and report.html (self-contained: inline SVG curves and samples). */
#ifndef FINETUNE_TRAIN_H
#define FINETUNE_TRAIN_H
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include "finetune/optim.h"

typedef enum ft_schedule { FT_SCHED_CONSTANT = 0, FT_SCHED_LINEAR, FT_SCHED_COSINE } ft_schedule;

typedef struct ft_train_config {
    /* inputs / outputs */
    char model[1024], data[1024], val_data[1024], out[1024], format[32], text_column[64], init_from[16];
    char clean[256];          /* --clean: cleaning steps (dataquality.h) run on the data first; "" none */
    /* data preparation */
    int   seq_len, pack, strict, folds, fold, dedup;
    float val_split;
    char  train_on[16], truncate[16], prompt_column[64], completion_column[64], response_speaker[64];
    int   min_chars, max_chars;
    /* parameter-efficient fine-tuning */
    char  method[16], quant[16], lora_targets[512], freeze[512], train_only[512];
    int   lora_r, rslora;
    float lora_alpha, lora_dropout;
    /* memory: activation recomputation (decoders; model.h ft_recompute) */
    char  recompute[16];
    int   weight_packs;    /* bf16, one process: keep the linear weights packed in bf16 between steps (optim.h ft_optim_set_prepack) */
    /* optimisation */
    char  optimizer[16], schedule[16];
    float lr, weight_decay, beta1, beta2, eps, momentum, warmup_ratio, max_grad_norm, label_smoothing, min_lr_ratio;
    int   nesterov, warmup_steps, batch_size, grad_accum, epochs, max_steps;
    int   stop_at_epoch, stop_at_step;   /* end the invocation early (0 = off); the schedule still spans the whole run */
    /* evaluation and checkpoints */
    int   eval_start, eval_epoch_end;   /* evaluate at step 0 / at each epoch end (both default on) */
    int   eval_every, save_every, keep, patience, log_every, samples, sample_tokens, eval_batches;
    float min_delta;
    /* encoder tasks (BERT / DistilBERT / RoBERTa) */
    char  task[24], label_column[64], pair_column[64], pooling[8], class_weights[16], resample[8], test_data[1024];
    char  best_metric[24];
    int   num_labels, group_by_length, header;
    float mlm_probability;
    /* multi-task heads and continual learning (trainer_multitask.c, train_continual.c) */
    char  tasks[2048], task_weights[256], task_mix[16], replay[1024], eval_old[1024];
    float replay_ratio, l2_sp;
    int   stream;
    /* misc */
    int64_t seed;
    int   threads, dry_run;
    int   shard_optimizer;   /* ZeRO-1 over the ranks of an mpirun run (README "Several processes") */
    char  sample_prompts[2048];
    char  precision[8];   /* "f32", "bf16" or "auto" (the default; the trainer resolves it with ft_precision_default, backend.h) */
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
 * parameter count (and c->init_from), ft_train_config_resolve, the "defaults: ..." line into line[cap]
 * (the trainer passes it to its sinks: printed by the console sink), and c->out/config.json rewritten with
 * the resolved values when it exists. Prints nothing. */
int ft_train_defaults_apply(ft_train_config *c, const char *task, int is_encoder, int64_t n_params, char *line, size_t cap);

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

/* ---- sinks: where a run's progress, metrics and messages go ----
 * The library prints nothing on stdout and installs no signal handler: everything a run reports goes
 * to its sinks, in the order given. Every member but `name` may be NULL. Callbacks returning int
 * return FT_OK or a negative status, which stops the run (a metrics file that cannot be written). */
typedef struct ft_train_step_info {
    int64_t step, total_steps, steps_per_epoch;   /* step: optimizer steps done, this one included */
    double  epoch;                                /* step / steps_per_epoch */
    double  loss, grad_norm;                      /* mean loss over the step's loss denominator; before clipping */
    float   lr;
    double  rate, train_time;                     /* rate_unit per second of this step; seconds in steps so far */
    const char *rate_key, *rate_unit;             /* "tokens_per_s" / "tok/s", "examples_per_s" / "ex/s" */
    int     log_every, logged;                    /* logged: a metrics line is due (every log_every steps and the last) */
} ft_train_step_info;

typedef struct ft_train_eval {
    const char *type;       /* "eval" (validation set) or "test" (--test-data, after training) */
    const char *label;      /* what the console says: "eval", "test (best model)" */
    int64_t step;
    double  loss;           /* mean validation loss */
    const char *json;       /* one-line JSON object: type, step, epoch, then the task's metrics */
    const char *summary;    /* the metrics in words: "validation loss 1.2345, perplexity 3.437 (812 tokens)" */
    int     is_best;        /* an improvement of the watched metric (--best-metric) */
} ft_train_eval;

typedef struct ft_train_sink {
    const char *name;       /* keys the sink's resume position in checkpoints ("metrics") */
    void *user;
    int  (*on_start)(void *user, const ft_train_config *cfg, const char *defaults_text);
    int  (*on_step)(void *user, const ft_train_step_info *s);
    int  (*on_eval)(void *user, const ft_train_eval *e);
    int  (*on_record)(void *user, const char *json);   /* other metrics lines: samples, memory, k-fold */
    void (*on_message)(void *user, int level, const char *text);   /* level: ft_log_level; text without newline */
    int  (*on_end)(void *user, const ft_train_result *res, int status);
    /* resume: position() is saved with each checkpoint; rewind() gets it back before on_start of the
     * resumed run (metrics.jsonl: its size in bytes, lines written after the checkpoint are dropped) */
    int64_t (*position)(void *user);
    int  (*rewind)(void *user, int64_t position);
    void (*close)(void *user);   /* frees user; called by whoever made the sink */
} ft_train_sink;

/* The console: messages, the progress bar (a terminal) or progress lines every log_every steps /
 * 5% of the run, evaluations — all on stderr. Close with out->close(out->user). */
int ft_train_sink_console(ft_train_sink *out);
/* RUN_DIR/metrics.jsonl, one JSON object a line (train, eval, test, sample, memory). The trainer adds
 * this sink and the report sink for its run directory itself. */
int ft_train_sink_metrics(ft_train_sink *out, const char *run_dir);
/* The metrics.jsonl line of a logged training step into buf (cap bytes): what the metrics sink writes. */
int ft_train_step_json(const ft_train_step_info *s, char *buf, size_t cap);
/* RUN_DIR/report.html, written at on_end from metrics.jsonl and config.json. */
int ft_train_sink_report(ft_train_sink *out, const char *run_dir);

/* ---- the trainer: one object for every task (language modelling, classify, regress,
 * token-classify, mlm) ----
 * Ownership: the trainer copies cfg; sinks are borrowed (the array is copied, each sink's user must
 * outlive the trainer); stop is read before each step and may be set from a signal handler or another
 * thread. A trainer is not thread-safe: one thread calls its functions. Two trainers may run in one
 * process one after the other (they share the BLAS / OpenMP thread pool). */
typedef struct ft_trainer ft_trainer;

/* A new run (resume_dir NULL: checks that cfg->out holds no run, writes cfg->out/config.json), or the
 * run in resume_dir continued from its newest checkpoint (cfg ignored, may be NULL; with no checkpoint
 * yet the run starts over). Loads model and data; with cfg->dry_run nothing more (ft_trainer_plan). */
int  ft_trainer_create(ft_trainer **out, const ft_train_config *cfg, const char *resume_dir,
                       const ft_train_sink *sinks, int n_sinks, const volatile sig_atomic_t *stop);
/* One optimizer step and what the configuration schedules after it (metrics line, evaluation,
 * checkpoint, samples). The first call of a new run evaluates and checkpoints step 0 first.
 * Returns 1 (a step was done; *info filled, may be NULL), 0 (nothing left: last step done or early
 * stop), FT_ERR_INTERRUPTED (stop was set: a checkpoint was written) or a negative status. */
int  ft_trainer_step(ft_trainer *t, ft_train_step_info *info);
/* Evaluates on the validation set now (sinks get it; best/ and early stopping as in the loop).
 * *json (may be NULL): the metrics line, malloc'd (caller frees), NULL when there is no validation data. */
int  ft_trainer_evaluate(ft_trainer *t, char **json);
/* Writes a checkpoint of the current step now (rotated by cfg.keep). */
int  ft_trainer_save(ft_trainer *t);
/* After the last step: final/, the test set, the memory line, on_end of every sink (report.html).
 * Fills *res; returns FT_ERR_INTERRUPTED after an interrupted run, else the run's status. */
int  ft_trainer_finish(ft_trainer *t, ft_train_result *res);
/* The whole run: steps until done, then ft_trainer_finish. */
int  ft_trainer_run(ft_trainer *t, ft_train_result *res);
/* --dry-run: the plan and predicted peak memory, as text (three lines). */
int  ft_trainer_plan(ft_trainer *t, char *buf, size_t cap);
int64_t ft_trainer_steps_done(const ft_trainer *t);
int64_t ft_trainer_total_steps(const ft_trainer *t);
void ft_trainer_close(ft_trainer *t);

/* Runs training as configured (resume_dir: continue that run instead), with the given sinks besides
 * the run directory's own; k-fold runs with fold -1 train every fold. A dry run sends its plan to the
 * sinks as a message. */
int ft_train_ex(const ft_train_config *cfg, const char *resume_dir, const ft_train_sink *sinks, int n_sinks,
                const volatile sig_atomic_t *stop, ft_train_result *res);
/* ft_train_ex with the console sink and no stop flag. */
int ft_train(const ft_train_config *cfg, ft_train_result *res);
/* Continues the run in run_dir from its newest checkpoint, bit-exactly. */
int ft_train_resume(const char *run_dir, ft_train_result *res);
/* Switches the run in run_dir to precision ("f32", "bf16", "auto") for its next resume (checkpoints are f32
 * either way): rewrites run_dir/config.json under the run's lock, so FT_ERR_BUSY "in use by another run
 * (pid N)" while a run holds it, and the running run's configuration is never changed under it. */
int ft_train_run_set_precision(const char *run_dir, const char *precision);
/* The same for any option a run may change when it goes on: "precision", "stop-at-epoch", "stop-at-step"
 * (value as on the command line; "0" clears a stop); another name is FT_ERR_INVALID. */
int ft_train_run_set_option(const char *run_dir, const char *name, const char *value);
#endif
