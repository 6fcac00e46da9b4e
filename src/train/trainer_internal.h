/* trainer_internal.h — the state of a training run, shared by trainer.c (setup, loop, checkpoints)
 * and train_eval.c (validation loss, sample generations, metrics lines). */
#ifndef FT_TRAINER_INTERNAL_H
#define FT_TRAINER_INTERNAL_H
#include "finetune/data.h"
#include "finetune/model.h"
#include "finetune/optim.h"
#include "finetune/tokenizer.h"
#include "finetune/train.h"

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

/* mean loss over the validation batches (NAN when there is no validation data) */
int ft_trainer_evaluate(ft_trainer *t, double *loss, int64_t *tokens);
/* sample generations written to metrics and stderr */
int ft_trainer_samples(ft_trainer *t, int epoch);
/* mean loss over (at most max_batches, 0 = all) batches of an evaluation batcher */
int ft_eval_batches(ft_model *m, ft_batcher *vb, int64_t max_batches, ft_batch *scratch, double *loss, int64_t *tokens);
/* one metrics line: a JSON object (text without newline) */
int ft_trainer_metric(ft_trainer *t, const char *json);
#endif
