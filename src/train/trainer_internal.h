/* trainer_internal.h — the state of a training run, shared by trainer.c (setup, loop, checkpoints)
 * and train_eval.c (validation loss, sample generations, metrics lines). */
#ifndef FT_TRAINER_INTERNAL_H
#define FT_TRAINER_INTERNAL_H
#include "finetune/data.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/tokenizer.h"
#include "finetune/train.h"

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct ft_trainer {
    ft_train_config cfg;
    ft_tokenizer *tok;
    ft_model *model;
    ft_optimizer *opt;
    ft_dataset *train_ds, *val_file_ds;
    ft_data_split split;
    ft_batcher *tb, *vb;        /* training / validation batchers */
    ft_batch *micro;            /* [grad_accum] micro-batches of the current step */
    ft_batch_iter it;           /* training stream position */
    ft_schedule sched;
    int64_t step;               /* optimizer steps done */
    int64_t total_steps, warmup, steps_per_epoch, batches_per_epoch;
    double best_val;            /* best validation loss so far (INFINITY if none) */
    int bad_evals;              /* evaluations without improvement */
    int64_t last_eval_step;
    int64_t tokens_seen;        /* target tokens trained on */
    double train_time;          /* seconds spent in steps (for tokens/s) */
    FILE *metrics;              /* RUN/metrics.jsonl, appending */
    float first_val, last_val, last_train;
    int is_tty;
    char model_src[1024];       /* where the weights came from (for tokenizer files) */
} ft_trainer;

/* ---- shared by every training loop (train_util.c) ---- */
typedef void (*ft_sighandler)(int);
int    ft_train_stop_requested(void);
void   ft_train_clear_stop(void);
ft_sighandler ft_train_catch_sigint(void);     /* SIGINT -> stop request; returns the old handler */
void   ft_train_restore_sigint(ft_sighandler old);
size_t ft_rss_now(void);                       /* resident set size now (bytes; 0 if unknown) */
double ft_peak_rss_mb(void);
double ft_now_s(void);                         /* monotonic seconds */
uint64_t ft_mix64(uint64_t z);                 /* splitmix64 finaliser */
double ft_params_grad_norm(const ft_param *params, int n_params);   /* deterministic global L2 norm */
void   ft_params_scale_grads(ft_param *params, int n_params, float s);
void   ft_fmt_duration(char *buf, size_t cap, double seconds);
typedef struct ft_progress {
    int64_t step, total_steps, steps_per_epoch;
    double train_time;                         /* seconds spent in steps */
    int is_tty, log_every;
    const char *unit;                          /* "tok/s", "ex/s" */
} ft_progress;
void   ft_train_progress(const ft_progress *p, double loss, float lr, double rate, int force);
int    ft_train_make_optimizer(ft_optimizer **out, const ft_train_config *c, ft_param *params, int n_params);
int    ft_train_optimizer_moments(const ft_train_config *c);   /* state tensors per parameter */
/* the LoRA settings of a run (--lora-r, --lora-alpha, --lora-dropout, --rslora, --lora-targets) */
ft_lora_config ft_train_lora_config(const ft_train_config *c);
/* a number of a checkpoint's state.json: hex-float strings ("%a", exact) or plain numbers; NaN if absent */
double ft_train_state_num(const cJSON *state, const char *key);
/* resume: metrics written after the checkpoint (RUN/metrics.jsonl beyond `bytes`) are dropped, they come again */
int    ft_train_truncate_metrics(const char *run_dir, long bytes);
/* OpenBLAS's per-thread GEMM buffers and the OpenMP runtime, touched on the first large matmul:
 * measured on this build (see BENCHMARKS.md, --dry-run check) */
#define FT_BLAS_RSS_BYTES ((size_t)8 << 20)

/* The step loop both trainers run (train_util.c): evaluation and a checkpoint at step 0 (unless resumed),
 * then steps with metrics lines, progress, evaluations (every eval_every steps, at each epoch end and at
 * the end), checkpoints (every save_every steps, at each epoch end, at the end, on early stop) and, on
 * Ctrl-C, a checkpoint before returning. The trainer supplies the pieces through callbacks. */
typedef struct ft_loop {
    const ft_train_config *cfg;
    void *ctx;
    const int64_t *step;           /* optimizer steps done (the trainer's counter, advanced by step_fn) */
    int64_t total_steps, steps_per_epoch;
    double *train_time;
    float *last_train;
    int is_tty;
    const char *rate_key, *rate_unit;   /* "tokens_per_s" / "tok/s", "examples_per_s" / "ex/s" */
    int  (*step_fn)(void *ctx, double *loss, double *gnorm, float *lr, int64_t *count);
    int  (*epoch_ended)(void *ctx);       /* 1 when the last step finished an epoch */
    int  (*eval)(void *ctx, int *stop);
    int  (*save)(void *ctx);
    void (*after_epoch)(void *ctx);       /* may be NULL (sample generations) */
    int  (*metric)(void *ctx, const char *json_line);
} ft_loop;
/* Runs the loop; *stop: early stopping; *interrupted: Ctrl-C (checkpoint written); *rate: last step's rate. */
int ft_train_loop_run(const ft_loop *L, int resumed, int *stop, int *interrupted, double *rate);

/* the encoder tasks (trainer_encoder.c): classify, regress, token-classify, mlm */
int ft_train_encoder(const ft_train_config *cfg, ft_train_result *res, int resume);
/* 1 when cfg asks for an encoder task (--task, or an encoder model with --task auto) */
int ft_train_is_encoder_task(const ft_train_config *cfg);

/* mean loss over the validation batches (NAN when there is no validation data) */
int ft_trainer_evaluate(ft_trainer *t, double *loss, int64_t *tokens);
/* sample generations written to metrics and stderr */
int ft_trainer_samples(ft_trainer *t, int epoch);
/* mean loss over (at most max_batches, 0 = all) batches of an evaluation batcher */
int ft_eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens);
/* one metrics line: a JSON object (text without newline) */
int ft_trainer_metric(ft_trainer *t, const char *json);
#endif
