/* trainer_internal.h — what the trainer core (trainer.c), the tasks it drives (trainer_lm.c,
 * trainer_encoder.c) and the sinks (train_sinks.c) share.
 *
 * The task interface. A task is the part of a run that knows its model family and its data: it loads
 * both, fills micro-batches, runs forward + backward, evaluates and saves weights. The trainer core
 * (optimizer, schedule, gradient accumulation and clipping, evaluations, early stopping, checkpoints,
 * resume, sinks) exists once and drives any task through ft_task_ops:
 *
 *   step s, micro-batch i of k:   ops->next_batch(task, i, epoch, index, rank, world, seed(s, i), &count, &den)
 *                                 ops->zero_grad(task)
 *                                 ops->forward_backward(task, i, seed(s, i), 1 / sum(den), &loss_sum, &den_i)
 *                                 ops->end_step(task)
 *   gradient norm, clipping and the optimizer step over task->params in the core.
 *
 * Each implementation embeds ft_task as its first member and keeps the fields of ft_task up to date. */
#ifndef FT_TRAINER_INTERNAL_H
#define FT_TRAINER_INTERNAL_H
#include "core/clock.h"
#include "core/hash.h"
#include "finetune/data.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- where a run's output goes: the sinks, in order ---- */
typedef struct ft_sinks {
    ft_train_sink s[16];
    int n;
} ft_sinks;
void ft__sinks_message(const ft_sinks *o, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ckpt_state.c: a checkpoint's state.json (the trainer's position and statistics), validated field by field
 * against the run: step within [0, total_steps] and equal to the checkpoint's (dir_step, -1 = unchecked),
 * epoch and cursor within the data, counters non-negative integers, statistics numbers (NaN where "none"),
 * sink positions integers (each sink checks its own against its file when it rewinds). FT_ERR_FORMAT
 * naming path/state.json, the field, its value and what the run needs. */
typedef struct ft__state_limits {
    int64_t total_steps, steps_per_epoch, batches_per_epoch;
    int     higher_better;   /* the watched metric: "best" defaults to -inf (else +inf) */
} ft__state_limits;
typedef struct ft__run_state {
    int64_t step, epoch, cursor, bad_evals, last_eval_step, seen;
    double  best, train_time, first_val, last_val, last_train, first_main, last_main, best_main;
} ft__run_state;
struct cJSON;
int ft__train_state_parse(const struct cJSON *j, const ft__state_limits *lim, int64_t dir_step, ft__run_state *st, const char *path);

/* run_lock.c: the lock on a run directory (RUN/lock, flock), held from before its config.json is written
 * until the run ends. *fd: keep it open while the run lasts, release with ft__run_unlock. FT_ERR_BUSY
 * "RUN is in use by another run (pid N)" when another process holds it. *stale_pid (may be NULL): the pid
 * of a killed run whose lock was taken over, else 0. */
int  ft__run_lock(const char *run_dir, int *fd, long *stale_pid);
void ft__run_unlock(int fd);
/* ft__run_unlock leaving pid in the file (0: empty, as ft__run_unlock): a lock taken over from a killed run
 * and given back at once keeps that run's pid for the next holder to report */
void ft__run_unlock_as(int fd, long pid);
int  ft__sinks_record(const ft_sinks *o, const char *json);

/* ---- the task interface ---- */
#define FT__END_OF_DATA 1   /* next_batch: the input stream has ended */
typedef struct ft_task_ops ft_task_ops;
typedef struct ft_task {
    const ft_task_ops *ops;
    const ft_sinks *out;            /* messages and records */
    ft_param *params;               /* [n_params] what the optimizer updates */
    int n_params;
    int64_t batches_per_epoch;      /* global batches (every rank together) */
    int64_t n_train, n_val;         /* examples */
    int main_higher_better;         /* the headline metric: higher is better (accuracy, F1) */
    const char *metric_name;        /* of ft_train_result: "accuracy", ...; "" for language models */
    const char *rate_key, *rate_unit;
    char defaults_text[1024];       /* the "defaults: ..." line of the settings resolved from task, method, model */
} ft_task;

typedef struct ft_task_eval {
    double loss;                    /* mean loss (NAN: no data) */
    double main;                    /* headline metric (perplexity for language models) */
    char  *json;                    /* malloc'd JSON object of the metrics, without type / step / epoch */
    char   summary[512];            /* "validation loss 1.2345, perplexity 3.437 (812 tokens)" */
} ft_task_eval;

struct ft_task_ops {
    /* loads model and data for cfg (may lower cfg->seq_len to what the model takes); messages to out */
    int  (*create)(ft_task **out, ft_train_config *cfg, const ft_sinks *sinks);
    void (*free)(ft_task *t);
    /* the allocations a dry run leaves out (activations); after it t->params is final */
    int  (*prepare)(ft_task *t);
    /* micro-batch `slot` := rank's share of global batch `index` of epoch `epoch`. seed: of this step and
     * slot (MLM masks). *count: what the rate counts (tokens, examples); *den: the loss denominator
     * (target tokens, labelled examples), known before any forward. A stream (--stream) returns FT__END_OF_DATA
     * at the end of its input (the step trains the micro-batches filled before it; none: the run ends), and
     * FT_ERR_INTERRUPTED when a signal stopped the wait for input */
    int  (*next_batch)(ft_task *t, int slot, int64_t epoch, int64_t index, int rank, int world, uint64_t seed,
                       int64_t *count, double *den);
    int  (*zero_grad)(ft_task *t);
    /* forward + backward of micro-batch slot, gradients scaled by `scale`; *loss_sum = mean loss x *den,
     * *den: the denominator the model used (class weights: a weight sum); *den <= 0: nothing learned */
    int  (*forward_backward)(ft_task *t, int slot, uint64_t dropout_seed, float scale, double *loss_sum, double *den);
    void (*end_step)(ft_task *t);
    /* validation metrics; ev->json NULL when there is no validation data (the caller frees ev->json) */
    int  (*evaluate)(ft_task *t, ft_task_eval *ev);
    /* best/ and final/: an HF directory (or a PEFT adapter) with tokenizer files */
    int  (*save_model)(ft_task *t, const char *dir);
    /* a checkpoint's weights */
    int  (*save_weights)(ft_task *t, const char *dir);
    int  (*load_weights)(ft_task *t, const char *dir);
    /* optional: after each epoch (sample generations); step: optimizer steps done */
    int  (*after_epoch)(ft_task *t, int64_t step, int epoch);
    /* optional: after training, on held-out test data (best model, else final); label: "test (best model)" */
    int  (*test)(ft_task *t, ft_task_eval *ev, char *label, size_t cap);
    /* "gpt2: 1234 parameters, 80 train / 10 validation examples, 20 batches of 4 x 64 per epoch" */
    void (*describe)(const ft_task *t, char *buf, size_t cap);
    /* --dry-run: the plan, memory and predicted peak (three lines) */
    int  (*plan)(ft_task *t, int64_t total_steps, char *buf, size_t cap);
    /* optional: task state of its own in a checkpoint's state.json */
    int  (*save_state)(ft_task *t, char *buf, size_t cap);
    int  (*load_state)(ft_task *t, const char *state_json);
};

extern const ft_task_ops ft_task_lm_ops;       /* trainer_lm.c */
extern const ft_task_ops ft_task_encoder_ops;  /* trainer_encoder.c */
extern const ft_task_ops ft_task_multitask_ops; /* trainer_multitask.c: --task multi */
/* 1 when cfg asks for an encoder task (--task, or an encoder model with --task auto) */
int ft__train_is_encoder_task(const ft_train_config *cfg);
/* the task of a trainer (k-fold summaries) */
ft_task *ft__trainer_task(ft_trainer *t);
/* encoder k-fold with --fold -1: every fold in OUT/fold-N, then kfold.json */
int ft__train_encoder_all_folds(const ft_train_config *cfg, const ft_train_sink *sinks, int n_sinks,
                               const volatile sig_atomic_t *stop, ft_train_result *res);

/* ---- data-parallel shares ---- */
/* rank's share of n rows out of world: [*first, *first + *count), contiguous, in rank order, sizes
 * differing by at most one (the first n % world ranks take one more) */
void ft__shard_rows(int64_t n, int rank, int world, int64_t *first, int64_t *count);
/* dst := rows [first, first + count) of src (dst allocated for at least count x src->T) */
int  ft__batch_take_rows(ft_batch *dst, const ft_batch *src, int64_t first, int64_t count);
/* rank's share of batch (epoch, index) of a batcher: the whole batch for world 1 */
int  ft__batcher_shard(ft_batcher *b, uint64_t seed, int64_t epoch, int64_t index, int rank, int world,
                      ft_batch *scratch, ft_batch *out);

/* ---- shared helpers (train_util.c) ---- */
size_t ft__rss_now(void);                       /* resident set size now (bytes; 0 if unknown) */
double ft__peak_rss_mb(void);
double ft__params_grad_norm(const ft_param *params, int n_params);   /* deterministic global L2 norm */
void   ft__params_scale_grads(ft_param *params, int n_params, float s);
void   ft__fmt_duration(char *buf, size_t cap, double seconds);
typedef struct ft_progress {
    int64_t step, total_steps, steps_per_epoch;
    double train_time;                         /* seconds spent in steps */
    int is_tty, log_every;
    const char *unit;                          /* "tok/s", "ex/s" */
    int ranks;                                 /* processes training together (mpirun); 1 alone */
} ft_progress;
/* the progress bar (tty) or line on fp */
void   ft__train_progress(FILE *fp, const ft_progress *p, double loss, float lr, double rate, int force);
/* "trainable parameters: N of M (x%)<note>" when some are frozen; FT_ERR_INVALID when none is trainable */
int    ft__train_check_trainable(const ft_sinks *out, int64_t trainable, int64_t all, const char *note);
int    ft__train_make_optimizer(ft_optimizer **out, const ft_train_config *c, ft_param *params, int n_params);
int    ft__train_optimizer_moments(const ft_train_config *c);   /* state tensors per parameter */
/* the backend of the run's --precision (backend.h, ft_backend_for_precision); with bf16 it says so on out,
 * with the way back: "precision bf16 (use --precision f32 for full precision)" */
int    ft__train_backend(const ft_sinks *out, const ft_train_config *c, const ft_backend **be);
/* the bf16 GEMM's packing workspace (gemm_bf16.h) of the largest linear layer of a step over N rows:
 * an LM head / projection W [V, C], a hidden layer [H, C]; 0 for --precision f32 */
size_t ft__train_bf16_workspace_bytes(const ft_train_config *c, int64_t N, int64_t C, int64_t H, int64_t V);
/* the LoRA settings of a run (--lora-r, --lora-alpha, --lora-dropout, --rslora, --lora-targets) */
ft_lora_config ft__train_lora_config(const ft_train_config *c);
/* OpenBLAS's per-thread GEMM buffers and the OpenMP runtime, touched on the first large matmul:
 * measured on this build (see BENCHMARKS.md, --dry-run check) */
#define FT_BLAS_RSS_BYTES ((size_t)8 << 20)

/* mean loss over (at most max_batches, 0 = all) batches of an evaluation batcher */
int ft__eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens);
#endif
