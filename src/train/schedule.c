/* schedule.c — learning-rate schedules with linear warmup (transformers' get_*_schedule_with_warmup). */
#include "finetune/train.h"
#include "finetune/status.h"

#include <math.h>
#include <string.h>

int ft_schedule_from_name(const char *name, ft_schedule *out) {
    if (!strcmp(name, "constant")) *out = FT_SCHED_CONSTANT;
    else if (!strcmp(name, "linear")) *out = FT_SCHED_LINEAR;
    else if (!strcmp(name, "cosine")) *out = FT_SCHED_COSINE;
    else return ft_error(FT_ERR_INVALID, "--schedule must be constant, linear or cosine (got '%s')", name);
    return FT_OK;
}

float ft_schedule_lr(ft_schedule s, float base_lr, int64_t step, int64_t total, int64_t warmup, float min_lr_ratio) {
    if (warmup > 0 && step < warmup) return base_lr * (float)step / (float)warmup;
    if (s == FT_SCHED_CONSTANT) return base_lr;
    /* transformers divides by max(1, total - warmup); with warmup >= total that makes the linear
     * schedule 0 from step `total` on (the run is over) while the cosine one is still 1 at step == warmup */
    double span = total - warmup > 1 ? (double)(total - warmup) : 1.0;
    double f;
    if (s == FT_SCHED_LINEAR) {
        f = (double)(total - step) / span;
        if (f < 0) f = 0;
    } else {
        double progress = (double)(step - warmup) / span;
        if (progress > 1) progress = 1;  /* transformers' cosine would rise again after `total` */
        f = 0.5 * (1.0 + cos(M_PI * progress));
    }
    return (float)(base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * f));
}
