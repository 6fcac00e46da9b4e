/* trainer.c — the trainer (train.h): one step loop, evaluation, early stopping, checkpoints and
 * resume for every task (trainer_internal.h: the task interface; trainer_lm.c, trainer_encoder.c).
 *
 * One optimizer step = up to grad_accum micro-batches. Their gradients are summed with the scale
 * 1 / (loss denominator of all of them: target tokens, labelled examples or label weights), so
 * accumulation equals one large batch exactly; steps never straddle an epoch (the last step of an
 * epoch may have fewer micro-batches). Everything random is a function of the seed and the step
 * (shuffle order, dropout and MLM masks), and the checkpoint holds the rest (weights, optimizer
 * moments, step, data cursor, early-stopping state, the sinks' positions), so a run resumed from any
 * checkpoint ends bit-identical to one that never stopped.
 *
 * Checkpoint state.json (one format for every task): step, epoch, cursor (the data stream position),
 * best, bad_evals, last_eval_step, seen, train_time, first/last_val, last_train, first/last/best_main
 * (hex floats, exact), "sinks": {name: position} and "task": the task's own state (if any). */
#include "trainer_internal.h"
#include "train/dist.h"
#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/checkpoint.h"
#include "finetune/continual.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ft_trainer {
    ft_train_config cfg;
    ft_sinks out;                   /* [metrics, the caller's ..., report] */
    const volatile sig_atomic_t *stop;
    ft_task *task;
    ft_optimizer *opt;
    ft_schedule sched;
    /* several processes (dist.h): this rank of world; cfg.grad_accum counts the micro-batches of a step over
     * every rank (--grad-accum x ranks), rounds = grad_accum / world of them are this rank's */
    const ft__dist *dist;
    int rank, world, rounds;
    ft__grad_sync sync;             /* the step's gradient summed over micro-batches and ranks, in order */
    int *owner;                     /* [n_params] --shard-optimizer: the rank updating each parameter; else NULL */
    int *opt_lo_of;                 /* [world + 1] --shard-optimizer: rank r's optimizer updates params [opt_lo_of[r], opt_lo_of[r+1]) */
    double *mb;                     /* [grad_accum][4] per micro-batch of a step: count, den, loss_sum, den_seen */
    int64_t step;                   /* optimizer steps done */
    int64_t epoch, cursor;          /* data stream: next global batch `cursor` of epoch `epoch` */
    int64_t total_steps, warmup, steps_per_epoch;
    int64_t stop_step;              /* --stop-at-epoch / --stop-at-step: this invocation ends there (<= total_steps) */
    double best;                    /* best watched metric so far (+-INFINITY if none) */
    int higher_better, bad_evals;
    int64_t last_eval_step, seen;   /* seen: what the rate counts (tokens, examples) */
    double train_time, rate;
    float first_val, last_val, last_train;
    double first_main, last_main, best_main;
    int started;                    /* step 0 evaluated and checkpointed (or resumed) */
    int own_first, own_last;        /* out.s[0] / out.s[n-1] are the run directory's sinks (closed here) */
    int lock_fd;                    /* RUN/lock, held (flock) for the trainer's life; -1 if not taken */
    long stale_pid;                 /* the killed run whose lock was taken over, 0 if none */
    int stopped_early, interrupted, status;
    int stop_said;                  /* the --stop-at-* message was given */
    ft_l2sp l2sp;                   /* --l2-sp: the starting weights (continual.h); n == 0 when off */
    double l2sp_last;               /* the penalty at the last step */
};

ft_task *ft__trainer_task(ft_trainer *t) { return t->task; }
int64_t ft_trainer_steps_done(const ft_trainer *t) { return t->step; }
int64_t ft_trainer_total_steps(const ft_trainer *t) { return t->total_steps; }


/* ------------------------------------------------------------------ checkpoints */

static int ck_save(void *ctx, const char *dir) { ft_task *k = ctx; return k->ops->save_weights(k, dir); }
static int ck_load(void *ctx, const char *dir) { ft_task *k = ctx; return k->ops->load_weights(k, dir); }
static int save_checkpoint(ft_trainer *t, ft_optimizer *opt);

/* --shard-optimizer: the optimizer of every parameter (what a checkpoint holds, whatever the rank count) on
 * rank 0, assembled from the ranks' shares (to_root) or handed out to them (from root, after a load).
 * The state of a run of parameters is a contiguous run of bytes of the full optimizer's state (the same
 * arena layout: moments of each trainable parameter in order), so shares are concatenated in rank order. */
static int share_bytes(const ft_trainer *t, int r, size_t *off, size_t *len) {
    /* the full optimizer's byte offsets: the same planning as ft_optim_create_params */
    int moments = ft__train_optimizer_moments(&t->cfg);
    size_t at = 0, lo = 0, hi = 0;
    ft_param *params = t->task->params;
    for (int p = 0; p < t->task->n_params; p++) {
        if (p == t->opt_lo_of[r]) lo = at;
        if (p == t->opt_lo_of[r + 1]) hi = at;
        if (params[p].trainable)
            for (int k = 0; k < moments; k++) at += (ft_tensor_nbytes(&params[p].t) + FT_ALIGN - 1) / FT_ALIGN * FT_ALIGN;
    }
    if (t->opt_lo_of[r] >= t->task->n_params) lo = at;
    if (t->opt_lo_of[r + 1] >= t->task->n_params) hi = at;
    *off = lo;
    *len = hi - lo;
    return FT_OK;
}

static int full_optimizer(ft_trainer *t, ft_optimizer **full) {
    return ft__train_make_optimizer(full, &t->cfg, t->task->params, t->task->n_params);
}

/* to_root 1: rank 0's *full := every share; 0: every rank's share := rank 0's *full */
static int exchange_shares(ft_trainer *t, ft_optimizer *full, int to_root) {
    const ft__dist *d = t->dist;
    size_t nb_full = 0, nb_mine = 0;
    char *mine = ft_optim_state(t->opt, &nb_mine), *all = full ? ft_optim_state(full, &nb_full) : NULL;
    int rc = FT_OK;
    for (int r = 0; rc == FT_OK && r < t->world; r++) {
        size_t off, len;
        share_bytes(t, r, &off, &len);
        if (r == t->rank && len != nb_mine)
            return ft_error(FT_ERR_INVALID, "rank %d: optimizer share of %zu bytes, %zu expected", r, nb_mine, len);
        if (t->rank == 0 && off + len > nb_full) return ft_error(FT_ERR_INVALID, "optimizer share past the end of the state");
        if (r == 0) {
            if (t->rank == 0) { if (to_root) memcpy(all + off, mine, len); else memcpy(mine, all + off, len); }
        } else if (t->rank == 0) rc = to_root ? ft__dist_recv(d, all + off, len, r) : ft__dist_send(d, all + off, len, r);
        else if (t->rank == r) rc = to_root ? ft__dist_send(d, mine, len, 0) : ft__dist_recv(d, mine, len, 0);
    }
    return rc;
}

int ft_trainer_save(ft_trainer *t) {
    if (!t->opt) return ft_error(FT_ERR_INVALID, "a dry run has no checkpoint");
    ft_optimizer *opt = t->opt, *full = NULL;
    if (t->owner) {
        if (t->rank == 0) FT_TRY(full_optimizer(t, &full));
        int rc = exchange_shares(t, full, 1);
        if (rc == FT_OK && full) ft_optim_set_steps(full, ft_optim_steps(t->opt));
        if (rc < 0) { ft_optim_free(full); return rc; }
        opt = full;
    }
    if (t->rank != 0) return FT_OK;   /* rank 0 writes the checkpoint */
    int rc = save_checkpoint(t, opt);
    ft_optim_free(full);
    return rc;
}

static int save_checkpoint(ft_trainer *t, ft_optimizer *opt) {
    char sinks[1024] = "", task[2048] = "";
    size_t at = 0;
    for (int i = 0; i < t->out.n; i++)
        if (t->out.s[i].position && at < sizeof sinks)
            at += (size_t)snprintf(sinks + at, sizeof sinks - at, "%s\"%s\": %lld", at ? ", " : "", t->out.s[i].name,
                                   (long long)t->out.s[i].position(t->out.s[i].user));
    if (t->task->ops->save_state) FT_TRY(t->task->ops->save_state(t->task, task, sizeof task));
    char state[6144];
    snprintf(state, sizeof state,
             "{\"step\": %lld, \"epoch\": %lld, \"cursor\": %lld, \"best\": \"%a\", \"bad_evals\": %d, \"last_eval_step\": %lld,\n"
             " \"seen\": %lld, \"train_time\": \"%a\", \"first_val\": \"%a\", \"last_val\": \"%a\", \"last_train\": \"%a\",\n"
             " \"first_main\": \"%a\", \"last_main\": \"%a\", \"best_main\": \"%a\",\n \"sinks\": {%s}%s%s}\n",
             (long long)t->step, (long long)t->epoch, (long long)t->cursor, t->best, t->bad_evals, (long long)t->last_eval_step,
             (long long)t->seen, t->train_time, (double)t->first_val, (double)t->last_val, (double)t->last_train,
             t->first_main, t->last_main, t->best_main, sinks, task[0] ? ",\n \"task\": " : "", task);
    ft_ckpt_io io = {ck_save, ck_load, t->task};
    return ft_ckpt_save_io(t->cfg.out, t->step, &io, opt, state, t->cfg.keep);
}

/* restores checkpoint `path` (of step dir_step, -1 if unknown): weights and optimizer state, then state.json,
 * validated before anything of it is used */
static int restore(ft_trainer *t, ft_optimizer *opt, const char *path, int64_t dir_step) {
    char *state;
    ft_ckpt_io io = {ck_save, ck_load, t->task};
    FT_TRY(ft_ckpt_load_io(path, &io, opt, &state));
    cJSON *j = cJSON_Parse(state);
    free(state);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return ft_error(FT_ERR_FORMAT, "%s/state.json: not a JSON object", path); }
    ft__run_state st;
    ft__state_limits lim = {t->total_steps, t->steps_per_epoch, t->task->batches_per_epoch, t->higher_better};
    int rc = ft__train_state_parse(j, &lim, dir_step, &st, path);
    if (rc == FT_OK && ft_optim_steps(opt) != st.step)
        rc = ft_error(FT_ERR_FORMAT, "%s: optimizer.bin has taken %lld steps, state.json says %lld", path, (long long)ft_optim_steps(opt),
                      (long long)st.step);
    const cJSON *sk = cJSON_GetObjectItem(j, "sinks"), *old = cJSON_GetObjectItem(j, "metrics_bytes");
    for (int i = 0; rc == FT_OK && i < t->out.n; i++) {
        const ft_train_sink *s = &t->out.s[i];
        const cJSON *p = s->rewind ? cJSON_GetObjectItem(sk, s->name) : NULL;
        if (!p && s->rewind && !strcmp(s->name, "metrics")) p = old;
        if (cJSON_IsNumber(p)) rc = s->rewind(s->user, (int64_t)p->valuedouble);
    }
    const cJSON *tk = cJSON_GetObjectItem(j, "task");
    if (rc == FT_OK && tk && t->task->ops->load_state) {
        char *txt = cJSON_PrintUnformatted(tk);
        rc = txt ? t->task->ops->load_state(t->task, txt) : ft_error(FT_ERR_NOMEM, "out of memory");
        free(txt);
    }
    cJSON_Delete(j);
    if (rc < 0) return rc;
    t->step = st.step;
    t->epoch = st.epoch;
    t->cursor = st.cursor;
    t->best = st.best;
    t->bad_evals = (int)st.bad_evals;
    t->last_eval_step = st.last_eval_step;
    t->seen = st.seen;
    t->train_time = st.train_time;
    t->first_val = (float)st.first_val;
    t->last_val = (float)st.last_val;
    t->last_train = (float)st.last_train;
    t->first_main = st.first_main;
    t->last_main = st.last_main;
    t->best_main = st.best_main;
    ft__sinks_message(&t->out, FT_LOG_INFO, "resuming from %s (step %lld of %lld, epoch %lld)", path, (long long)t->step,
                     (long long)t->total_steps, (long long)t->epoch + 1);
    return FT_OK;
}

/* --resume: the newest checkpoint that verifies against its manifest and restores; one that does not is
 * reported and skipped (left in place: a later save of the same step replaces it). Returns FT_OK with
 * *resumed = 1, FT_OK with *resumed = 0 when the run has no checkpoint, or the newest one's error when none
 * is usable. */
static int resume_newest_good(ft_trainer *t, ft_optimizer *opt, const char *run_dir, int *resumed) {
    *resumed = 0;
    enum { CAP = 4096 };
    int64_t *steps = malloc(sizeof *steps * CAP);
    if (!steps) return ft_error(FT_ERR_NOMEM, "out of memory");
    int n = ft_ckpt_list(run_dir, steps, CAP), rc = FT_OK, first_rc = FT_OK;
    char first_msg[1024] = "";
    for (int i = n - 1; i >= 0 && !*resumed; i--) {
        char path[4400];
        snprintf(path, sizeof path, "%s/checkpoints/step-%08lld", run_dir, (long long)steps[i]);
        char st[4500];
        snprintf(st, sizeof st, "%s/state.json", path);
        rc = ft_ckpt_verify(path);
        if (rc == FT_ERR_NOT_FOUND && ft_path_exists(st)) {   /* written before manifests: used unverified */
            ft__sinks_message(&t->out, FT_LOG_WARN, "%s", ft_last_error());
            rc = FT_OK;
        }
        if (rc == FT_OK) rc = restore(t, opt, path, steps[i]);
        if (rc == FT_OK) { *resumed = 1; break; }
        if (first_rc == FT_OK) { first_rc = rc; snprintf(first_msg, sizeof first_msg, "%s", ft_last_error()); }
        ft__sinks_message(&t->out, FT_LOG_WARN, "checkpoint step %lld is not usable: %s%s", (long long)steps[i], ft_last_error(),
                         i > 0 ? "; trying the previous one" : "");
    }
    free(steps);
    if (n > 0 && !*resumed)
        return ft_error(first_rc, "%s: no usable checkpoint (%d tried; the newest: %s)", run_dir, n, first_msg);
    return FT_OK;
}

/* the trainer's position and statistics as rank 0 restored them, for the other ranks */
typedef struct run_scalars {
    int64_t step, epoch, cursor, last_eval_step, seen, opt_steps;
    double best, train_time, first_main, last_main, best_main;
    float first_val, last_val, last_train;
    int bad_evals, resumed;
} run_scalars;

/* --resume on every rank: rank 0 reads the checkpoint (the run directory needs to be on rank 0's machine
 * only), then hands the weights, the optimizer state (all of it, or each rank its share) and the trainer's
 * position to the others. */
static int resume_ranks(ft_trainer *t, const char *resume_dir, int *resumed) {
    const ft__dist *d = t->dist;
    ft_optimizer *full = NULL;
    int rc = FT_OK;
    *resumed = 0;
    if (t->rank == 0) {
        if (t->owner) rc = full_optimizer(t, &full);
        if (rc == FT_OK) rc = resume_newest_good(t, full ? full : t->opt, resume_dir, resumed);
    }
    rc = ft__dist_agree(d, rc);
    if (rc < 0 || t->world == 1) { ft_optim_free(full); return rc; }
    run_scalars s = {t->step, t->epoch, t->cursor, t->last_eval_step, t->seen, ft_optim_steps(full ? full : t->opt), t->best,
                     t->train_time, t->first_main, t->last_main, t->best_main, t->first_val, t->last_val, t->last_train,
                     t->bad_evals, *resumed};
    rc = d->bcast(d->user, &s, sizeof s, 0);
    if (rc == FT_OK && t->rank != 0) {
        t->step = s.step; t->epoch = s.epoch; t->cursor = s.cursor; t->last_eval_step = s.last_eval_step; t->seen = s.seen;
        t->best = s.best; t->train_time = s.train_time; t->first_main = s.first_main; t->last_main = s.last_main;
        t->best_main = s.best_main; t->first_val = s.first_val; t->last_val = s.last_val; t->last_train = s.last_train;
        t->bad_evals = s.bad_evals; *resumed = s.resumed;
    }
    if (rc == FT_OK && s.resumed) {
        const ft_task_ops *ops = t->task->ops;
        if (ops->save_state && ops->load_state) {
            char task[2048] = "";
            if (t->rank == 0) rc = ops->save_state(t->task, task, sizeof task);
            if (rc == FT_OK) rc = d->bcast(d->user, task, sizeof task, 0);
            if (rc == FT_OK && t->rank != 0 && task[0]) rc = ops->load_state(t->task, task);
        }
        if (rc == FT_OK && t->owner) rc = exchange_shares(t, full, 0);
        else if (rc == FT_OK) {
            size_t nb;
            void *st = ft_optim_state(t->opt, &nb);
            rc = d->bcast(d->user, st, nb, 0);
        }
        ft_optim_set_steps(t->opt, s.opt_steps);
    }
    ft_optim_free(full);
    return ft__dist_agree(d, rc);
}

/* ------------------------------------------------------------------ evaluation */

/* the value --best-metric watches: the loss, or a key of the metrics */
static double watched(const ft_trainer *t, const ft_task_eval *ev, const cJSON *metrics) {
    const char *bm = t->cfg.best_metric;
    if (!strcmp(bm, "auto") || !strcmp(bm, "val_loss")) return ev->loss;
    const cJSON *x = cJSON_GetObjectItem(metrics, bm);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* a metrics line: type, step, epoch, then the evaluation's keys; *metrics keeps the parsed keys */
static char *eval_line(const ft_trainer *t, const char *type, const char *json) {
    cJSON *j = cJSON_Parse(json);
    if (!j) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "step", (double)t->step);
    cJSON_AddNumberToObject(o, "epoch", t->steps_per_epoch ? (double)t->step / (double)t->steps_per_epoch : 0.0);
    while (j->child) {
        cJSON *it = cJSON_DetachItemViaPointer(j, j->child);
        cJSON_AddItemToObject(o, it->string, it);
    }
    cJSON_Delete(j);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return line;
}

static int emit_eval(ft_trainer *t, const ft_train_eval *e) {
    for (int i = 0; i < t->out.n; i++)
        if (t->out.s[i].on_eval) FT_TRY(t->out.s[i].on_eval(t->out.s[i].user, e));
    return FT_OK;
}

static int do_eval(ft_trainer *t, char **json_out) {
    if (json_out) *json_out = NULL;
    if (t->task->n_val <= 0) return FT_OK;
    ft_task_eval ev = {.loss = NAN, .main = NAN};
    FT_TRY(t->task->ops->evaluate(t->task, &ev));
    if (!ev.json) return FT_OK;
    cJSON *metrics = cJSON_Parse(ev.json);
    char *line = eval_line(t, "eval", ev.json);
    free(ev.json);
    if (!line || !metrics) { free(line); cJSON_Delete(metrics); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    double v = watched(t, &ev, metrics);
    cJSON_Delete(metrics);
    int better = isfinite(v) && (t->higher_better ? v > t->best + t->cfg.min_delta : v < t->best - t->cfg.min_delta);
    t->last_eval_step = t->step;
    if (t->step == 0) { t->first_val = (float)ev.loss; t->first_main = ev.main; t->best_main = ev.main; }
    t->last_val = (float)ev.loss;
    t->last_main = ev.main;
    if (isnan(t->best_main) || (t->task->main_higher_better ? ev.main > t->best_main : ev.main < t->best_main)) t->best_main = ev.main;
    ft_train_eval e = {"eval", "eval", t->step, ev.loss, line, ev.summary, t->step > 0 && better};
    int rc = emit_eval(t, &e);
    if (rc == FT_OK && json_out) { *json_out = line; line = NULL; }
    free(line);
    if (rc < 0) return rc;
    if (t->step == 0) { t->best = v; return FT_OK; }
    if (better) {
        t->best = v;
        t->bad_evals = 0;
        char dir[4096];
        FT_TRY(ft_path_join(dir, sizeof dir, t->cfg.out, "best"));
        if (t->rank == 0) FT_TRY(t->task->ops->save_model(t->task, dir));
    } else if (++t->bad_evals >= t->cfg.patience && t->cfg.patience > 0) {
        const char *bm = t->cfg.best_metric;
        ft__sinks_message(&t->out, FT_LOG_INFO, "early stopping: no improvement of %s in %d evaluations (best %.4f)",
                         !strcmp(bm, "auto") || !strcmp(bm, "val_loss") ? "the validation loss" : bm, t->bad_evals, t->best);
        t->stopped_early = 1;
    }
    return FT_OK;
}

int ft_trainer_evaluate(ft_trainer *t, char **json) {
    if (t->cfg.dry_run) return ft_error(FT_ERR_INVALID, "a dry run does not evaluate");
    return do_eval(t, json);
}

/* after training: the task's test set (best model, else final) */
static int do_test(ft_trainer *t) {
    if (!t->task->ops->test) return FT_OK;
    ft_task_eval ev = {.loss = NAN, .main = NAN};
    char label[64] = "test";
    FT_TRY(t->task->ops->test(t->task, &ev, label, sizeof label));
    if (!ev.json) return FT_OK;
    char *line = eval_line(t, "test", ev.json);
    free(ev.json);
    if (!line) return ft_error(FT_ERR_NOMEM, "out of memory");
    ft_train_eval e = {"test", label, t->step, ev.loss, line, ev.summary, 0};
    int rc = emit_eval(t, &e);
    free(line);
    return rc;
}

/* ------------------------------------------------------------------ one step */

/* the seed of micro-batch j of the step after `step` (dropout, MLM masks): the same on any rank count */
static uint64_t micro_seed(const ft_train_config *c, int64_t step, int j) {
    return ft__splitmix64((uint64_t)c->seed ^ ft__splitmix64((uint64_t)step * 1024 + (uint64_t)j));
}

/* mb rows of every rank: this rank filled rows j = i*W + rank (i < rounds) of cols [col, col + 2); afterwards
 * every rank holds all of them */
static int gather_micro(ft_trainer *t, int col) {
    if (t->world == 1) return FT_OK;
    int R = t->rounds, W = t->world;
    double *mine = calloc(2 * (size_t)R, sizeof(double)), *all = calloc(2 * (size_t)R * (size_t)W, sizeof(double));
    int rc = mine && all ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == FT_OK && i < R; i++) memcpy(mine + 2 * i, t->mb + 4 * (i * W + t->rank) + col, 2 * sizeof(double));
    if (rc == FT_OK) rc = t->dist->allgather(t->dist->user, mine, sizeof(double) * 2 * (size_t)R, all);
    for (int r = 0; rc == FT_OK && r < W; r++)
        for (int i = 0; i < R; i++) memcpy(t->mb + 4 * (i * W + r) + col, all + 2 * ((size_t)r * R + i), 2 * sizeof(double));
    free(mine);
    free(all);
    return rc;
}

/* One optimizer step: micro-batches j = 0 .. n-1 of the global batches cursor + j (n = grad_accum, fewer at
 * the end of an epoch), rank r taking j = i*W + r in round i. Their gradients are summed left to right
 * over j (dist.h: one process adds each micro-batch's gradient, computed from zeroed buffers, to the running
 * sum; several ranks pass the running sum along in rank order), the loss and counts too, so any rank count
 * gives the same bits as one process with the same total of micro-batches. */
static int optimizer_step(ft_trainer *t, double *loss_out, double *gnorm_out, float *lr_out, int64_t *count_out) {
    const ft_train_config *c = &t->cfg;
    ft_task *k = t->task;
    const ft_task_ops *ops = k->ops;
    if (t->cursor >= k->batches_per_epoch) { t->epoch++; t->cursor = 0; }
    int n = (int)(k->batches_per_epoch - t->cursor < c->grad_accum ? k->batches_per_epoch - t->cursor : c->grad_accum);
    int W = t->world, R = t->rounds;
    memset(t->mb, 0, sizeof(double) * 4 * (size_t)c->grad_accum);
    /* fill this rank's micro-batches first: the denominator of the whole step is known before any backward */
    for (int i = 0; i < R; i++) {
        int j = i * W + t->rank;
        if (j >= n) break;
        int64_t cnt = 0;
        double den = 0;
        int brc = ops->next_batch(k, i, t->epoch, t->cursor + j, 0, 1, micro_seed(c, t->step, j), &cnt, &den);
        if (brc == FT__END_OF_DATA) { n = j; break; }   /* a stream ended (one process): the step takes what arrived */
        FT_TRY(brc);
        t->mb[4 * j] = (double)cnt;
        t->mb[4 * j + 1] = den;
    }
    if (n == 0) return FT__END_OF_DATA;
    FT_TRY(gather_micro(t, 0));
    double den_total = 0;
    int64_t count = 0;
    for (int j = 0; j < n; j++) { count += (int64_t)t->mb[4 * j]; den_total += t->mb[4 * j + 1]; }
    int rc = FT_OK;
    for (int i = 0; i < R && rc == FT_OK; i++) {
        int j = i * W + t->rank, has = j < n;
        if (has) {
            rc = ops->zero_grad(k);
            double ls = 0, den = 0;
            if (rc == FT_OK) rc = ops->forward_backward(k, i, micro_seed(c, t->step, j), 1.0f / (float)(den_total > 0 ? den_total : 1.0), &ls, &den);
            /* a micro-batch without targets runs no backward: what its zero_grad left pending is zero (model.h) */
            ft_params_settle_grads(k->params, k->n_params);
            t->mb[4 * j + 2] = ls;
            t->mb[4 * j + 3] = den;
        }
        if (rc == FT_OK) rc = ft__grad_sync_round(&t->sync, i, has);
    }
    ops->end_step(k);
    if (rc < 0) return rc;
    FT_TRY(gather_micro(t, 2));
    double loss_sum = 0, den_seen = 0;
    for (int j = 0; j < n; j++) {
        if (t->mb[4 * j + 3] <= 0) continue;
        loss_sum += t->mb[4 * j + 2];
        den_seen += t->mb[4 * j + 3];
    }
    /* with class weights the per-batch denominators are weight sums, not counts: rescale once */
    if (den_seen > 0 && fabs(den_seen - den_total) > 1e-9 * den_seen)
        ft__params_scale_grads(k->params, k->n_params, (float)(den_total / den_seen));
    /* L2-SP: lambda (theta - theta0) added to the (synchronised) data gradient, before the norm and clipping */
    if (t->l2sp.n) t->l2sp_last = ft_l2sp_apply(&t->l2sp, k->params, k->n_params, 1);
    double gn;
    FT_TRY(ft__grad_sync_norm(&t->sync, &gn));
    if (!isfinite(gn)) return ft_error(FT_ERR_RANGE, "step %lld: the gradient is not finite (loss %g); lower --lr?", (long long)t->step + 1, loss_sum);
    if (c->max_grad_norm > 0 && gn > c->max_grad_norm) ft__params_scale_grads(k->params, k->n_params, (float)(c->max_grad_norm / (gn + 1e-6)));
    float lr = ft_schedule_lr(t->sched, c->lr, t->step, t->total_steps, t->warmup, c->min_lr_ratio);
    FT_TRY(ft_optim_step(t->opt, lr));
    FT_TRY(ft__params_sync_from_owners(&t->sync));
    t->step++;
    t->cursor += n;
    t->seen += count;
    *loss_out = den_seen > 0 ? loss_sum / den_seen : NAN;
    *gnorm_out = gn;
    *lr_out = lr;
    *count_out = count;
    return FT_OK;
}

static int interrupt(ft_trainer *t) {
    if (!t->interrupted) {
        t->interrupted = 1;
        ft__sinks_message(&t->out, FT_LOG_INFO, "interrupted: saving a checkpoint at step %lld (resume with: finetune train --resume %s)",
                         (long long)t->step, t->cfg.out);
        int rc = ft_trainer_save(t);
        if (rc < 0) return t->status = rc;
    }
    return ft_error(FT_ERR_INTERRUPTED, "training interrupted at step %lld; checkpoint saved", (long long)t->step);
}

static int step_once(ft_trainer *t, ft_train_step_info *info) {
    const ft_train_config *c = &t->cfg;
    if (!t->started) {
        /* step 0: the model before training, and a checkpoint so that resume works from the very start */
        if (c->eval_start) FT_TRY(do_eval(t, NULL));
        FT_TRY(ft_trainer_save(t));
        t->started = 1;
    }
    if (t->step >= t->total_steps || t->stopped_early) return 0;
    if (t->step >= t->stop_step) {   /* --stop-at-*: the invocation ends here (its evaluation and checkpoint were made) */
        if (!t->stop_said)
            ft__sinks_message(&t->out, FT_LOG_INFO, "stopped at step %lld of %lld as asked (--stop-at-*); continue with: finetune train --resume %s "
                              "--stop-at-epoch N (or --stop-at-step N, 0 = to the end)", (long long)t->step, (long long)t->total_steps, c->out);
        t->stop_said = 1;
        return 0;
    }
    /* several ranks stop at the same step: a stop seen by any of them (mpirun forwards Ctrl-C to each) */
    int stop = t->stop && *t->stop;
    if (t->world > 1) stop = ft__dist_any(t->dist, stop);
    if (t->interrupted || stop) return interrupt(t);
    double t0 = ft__now_mono(), loss = 0, gn = 0;
    float lr = 0;
    int64_t count = 0;
    int orc = optimizer_step(t, &loss, &gn, &lr, &count);
    if (orc == FT__END_OF_DATA) {   /* --stream: end of input; the last evaluation and checkpoint, then done */
        ft__sinks_message(&t->out, FT_LOG_INFO, "end of the input stream after %lld steps", (long long)t->step);
        t->total_steps = t->step;
        FT_TRY(do_eval(t, NULL));
        FT_TRY(ft_trainer_save(t));
        return 0;
    }
    if (orc == FT_ERR_INTERRUPTED) return interrupt(t);   /* --stream: a signal while waiting for input */
    FT_TRY(orc);
    double dt = ft__now_mono() - t0;
    t->train_time += dt;
    t->rate = (double)count / dt;
    t->last_train = (float)loss;
    int64_t step = t->step;
    ft_train_step_info si = {step, t->total_steps, t->steps_per_epoch, (double)step / (double)t->steps_per_epoch, loss, gn, lr,
                             t->rate, t->train_time, t->task->rate_key, t->task->rate_unit, c->log_every,
                             step % (c->log_every > 0 ? c->log_every : 1) == 0 || step == t->total_steps};
    if (info) *info = si;
    for (int i = 0; i < t->out.n; i++)
        if (t->out.s[i].on_step) FT_TRY(t->out.s[i].on_step(t->out.s[i].user, &si));
    if (t->l2sp.n && si.logged) {
        char line[160];
        snprintf(line, sizeof line, "{\"type\": \"l2_sp\", \"step\": %lld, \"penalty\": %.9g, \"lambda\": %g}", (long long)step, t->l2sp_last,
                 (double)c->l2_sp);
        FT_TRY(ft__sinks_record(&t->out, line));
    }
    int epoch_end = t->cursor >= t->task->batches_per_epoch;
    if ((c->eval_every > 0 && step % c->eval_every == 0) || (epoch_end && c->eval_epoch_end) || step == t->total_steps || step == t->stop_step)
        FT_TRY(do_eval(t, NULL));
    if (epoch_end && t->task->ops->after_epoch && t->rank == 0) t->task->ops->after_epoch(t->task, t->step, (int)t->epoch + 1);
    if ((c->save_every > 0 && step % c->save_every == 0) || epoch_end || step == t->total_steps || step == t->stop_step || t->stopped_early)
        FT_TRY(ft_trainer_save(t));
    return 1;
}

int ft_trainer_step(ft_trainer *t, ft_train_step_info *info) {
    if (t->cfg.dry_run) return ft_error(FT_ERR_INVALID, "a dry run does not train");
    if (t->status < 0) return t->status;
    int rc = step_once(t, info);
    if (rc < 0 && rc != FT_ERR_INTERRUPTED) t->status = rc;
    return rc;
}

/* ------------------------------------------------------------------ the end of a run */

/* several ranks: what communication cost, as a message and a metrics line ("dist") */
static void dist_summary(ft_trainer *t) {
    int W = t->world;
    double mine[2] = {t->sync.comm_s, (double)t->sync.comm_bytes}, *all = calloc((size_t)W * 2, sizeof *all);
    if (!all || t->dist->allgather(t->dist->user, mine, sizeof mine, all) < 0) { free(all); return; }
    double comm = 0, bytes = 0;
    for (int r = 0; r < W; r++) { comm += all[2 * r]; bytes += all[2 * r + 1]; }
    free(all);
    double steps = t->step > 0 ? (double)t->step : 1.0, comm_step = comm / W / steps, step_s = t->train_time / steps;
    ft__sinks_message(&t->out, FT_LOG_INFO,
                      "%d ranks%s: %.3f s per step in gradient exchange and waiting (%.1f%% of %.3f s), %.1f MiB sent per step by all ranks",
                      W, t->owner ? " (optimizer sharded)" : "", comm_step, step_s > 0 ? 100.0 * comm_step / step_s : 0.0, step_s,
                      bytes / steps / 1048576.0);
    char line[256];
    snprintf(line, sizeof line, "{\"type\": \"dist\", \"step\": %lld, \"ranks\": %d, \"comm_s_per_step\": %.6f, \"step_s\": %.6f, \"bytes_per_step\": %.0f}",
             (long long)t->step, W, comm_step, step_s, bytes / steps);
    ft__sinks_record(&t->out, line);
}

int ft_trainer_finish(ft_trainer *t, ft_train_result *res) {
    const ft_train_config *c = &t->cfg;
    int rc = t->status;
    if (rc == FT_OK && !t->interrupted && !c->dry_run && t->rank == 0) {
        char path[4096];
        rc = ft_path_join(path, sizeof path, c->out, "final");
        if (rc == FT_OK) rc = t->task->ops->save_model(t->task, path);
        if (rc == FT_OK) rc = do_test(t);
    }
    if (t->world > 1 && !c->dry_run) dist_summary(t);
    char line[160];
    snprintf(line, sizeof line, "{\"type\": \"memory\", \"step\": %lld, \"peak_rss_mib\": %.1f}", (long long)t->step, ft__peak_rss_mb());
    int mrc = ft__sinks_record(&t->out, line);
    if (rc == FT_OK) rc = mrc;
    int ex = !strcmp(t->task->rate_unit, "ex/s");
    ft__sinks_message(&t->out, FT_LOG_INFO, "peak RSS: %.1f MiB; training time %.1f s (%.1f %s/s)", ft__peak_rss_mb(), t->train_time,
                     t->train_time > 0 ? (double)t->seen / t->train_time : 0.0, ex ? "examples" : "tokens");
    memset(res, 0, sizeof *res);
    res->steps = t->step;
    res->epochs_done = (int)(t->step / t->steps_per_epoch);
    res->first_val_loss = t->first_val;
    res->final_val_loss = t->last_val;
    int watch_loss = !strcmp(c->best_metric, "auto") || !strcmp(c->best_metric, "val_loss");
    res->best_val_loss = watch_loss && isfinite(t->best) ? (float)t->best : NAN;
    res->final_train_loss = t->last_train;
    res->tokens_per_s = t->rate;
    res->stopped_early = t->stopped_early;
    res->interrupted = t->interrupted;
    snprintf(res->metric_name, sizeof res->metric_name, "%s", t->task->metric_name);
    res->first_metric = t->first_main;
    res->final_metric = t->last_main;
    res->best_metric = t->best_main;
    for (int i = 0; i < t->out.n; i++) {
        const ft_train_sink *s = &t->out.s[i];
        if (!s->on_end) continue;
        int src = s->on_end(s->user, res, rc);
        if (src < 0 && rc == FT_OK) ft__sinks_message(&t->out, FT_LOG_WARN, "%s: %s", s->name, ft_last_error());
    }
    if (rc == FT_OK && t->interrupted)
        return ft_error(FT_ERR_INTERRUPTED, "training interrupted at step %lld; checkpoint saved", (long long)t->step);
    return rc;
}

int ft_trainer_run(ft_trainer *t, ft_train_result *res) {
    if (t->cfg.dry_run) return ft_error(FT_ERR_INVALID, "a dry run does not train (ft_trainer_plan)");
    int rc;
    while ((rc = ft_trainer_step(t, NULL)) == 1) {}
    if (rc < 0 && rc != FT_ERR_INTERRUPTED) t->status = rc;
    return ft_trainer_finish(t, res);
}

/* --dry-run: the task's plan, and with several ranks or gradient accumulation what each rank holds besides */
int ft_trainer_plan(ft_trainer *t, char *buf, size_t cap) {
    FT_TRY(t->task->ops->plan(t->task, t->total_steps, buf, cap));
    const ft_train_config *c = &t->cfg;
    if (t->world == 1 && c->grad_accum == 1) return FT_OK;
    ft_task *k = t->task;
    int W = t->world, moments = ft__train_optimizer_moments(c);
    int *owner = calloc((size_t)k->n_params + 1, sizeof *owner);
    if (!owner) return ft_error(FT_ERR_NOMEM, "out of memory");
    ft__zero_plan(k->params, k->n_params, W, owner);
    size_t grads = 0, mine = 0, most = 0;
    size_t *per = calloc((size_t)W, sizeof *per);
    for (int p = 0; per && p < k->n_params; p++)
        if (k->params[p].trainable) {
            size_t b = (size_t)ft_tensor_numel(&k->params[p].t) * sizeof(float);
            grads += b;
            per[owner[p]] += (size_t)moments * b;
        }
    for (int r = 0; per && r < W; r++) most = per[r] > most ? per[r] : most;
    mine = c->shard_optimizer && W > 1 ? most : (size_t)moments * grads;
    free(per);
    free(owner);
    /* the running sum of the gradient between rounds (one process with --grad-accum > 1, rank W-1), and the
     * receive buffers of the chain */
    size_t acc = t->rounds > 1 ? grads : 0, pieces = W > 1 ? 2 * sizeof(float) * FT__PIECE : 0;
    const char *pk = strstr(buf, "predicted peak RSS: ");
    double peak = pk ? strtod(pk + 20, NULL) : 0, MiB = 1048576.0;
    /* several ranks keep no bf16 weight packs (ft_optim_set_prepack: one process only) */
    const char *wp = W > 1 ? strstr(buf, "bf16 weight packs ") : NULL;
    double packs = wp ? strtod(wp + 18, NULL) : 0;
    double rank_peak = peak - packs - (double)moments * (double)grads / MiB + (double)(mine + acc + pieces) / MiB;
    size_t at = strlen(buf);
    snprintf(buf + at, cap - at,
             "\nper rank (%d rank%s x %d micro-batch%s per step): optimizer state %.1f MiB%s; gradient accumulation buffer %.1f MiB; "
             "message buffers %.1f MiB; predicted peak RSS per rank: %.1f MiB",
             W, W > 1 ? "s" : "", t->rounds, t->rounds > 1 ? "es" : "", mine / MiB,
             c->shard_optimizer && W > 1 ? " (sharded over the ranks: the largest share)" : "", acc / MiB, pieces / MiB, rank_peak);
    return FT_OK;
}

/* ------------------------------------------------------------------ create / close */

void ft_trainer_close(ft_trainer *t) {
    if (!t) return;
    ft_optim_free(t->opt); /* first: it clears the weight packs it set in the task's parameters */
    if (t->task) t->task->ops->free(t->task);
    ft__grad_sync_free(&t->sync);
    free(t->owner);
    free(t->opt_lo_of);
    free(t->mb);
    ft_l2sp_free(&t->l2sp);
    /* the run directory's own sinks: the first and the last */
    if (t->own_first) t->out.s[0].close(t->out.s[0].user);
    if (t->own_last) t->out.s[t->out.n - 1].close(t->out.s[t->out.n - 1].user);
    ft__run_unlock(t->lock_fd);   /* last: the run directory is complete */
    free(t);
}

/* a new run: the directory is locked first (a second run into it at the same time is refused before it
 * writes anything), must not hold a run, then gets config.json (an unwritable directory fails here).
 * *lock_fd: the lock, held until the run ends. */
static int new_run_dir(const ft_train_config *cfg, int *lock_fd, long *stale_pid) {
    *lock_fd = -1;
    if (!cfg->model[0] || !cfg->data[0] || !cfg->out[0])
        return ft_error(FT_ERR_INVALID, "train: model, data and out directory are required");
    FT_TRY(ft_train_config_validate(cfg));   /* a bad option fails before the directory exists */
    FT_TRY(ft_mkdirs(cfg->out));
    FT_TRY(ft__run_lock(cfg->out, lock_fd, stale_pid));
    int rc = FT_OK;
    char ck[4096], path[4096];
    if (ft_path_join(ck, sizeof ck, cfg->out, "checkpoints") == FT_OK && ft_path_is_dir(ck)) {
        char latest[4096];
        if (ft_ckpt_latest(cfg->out, latest, sizeof latest) == FT_OK)
            rc = ft_error(FT_ERR_INVALID, "%s already holds a training run (%s); continue it with --resume %s, or choose another --out",
                          cfg->out, latest, cfg->out);
        else ft_error_clear();
    }
    if (rc == FT_OK) rc = ft_path_join(path, sizeof path, cfg->out, "config.json");
    if (rc == FT_OK) rc = ft_train_config_save_json(cfg, path);
    if (rc < 0) { ft__run_unlock(*lock_fd); *lock_fd = -1; }
    return rc;
}

/* a run to resume: locked first, then its config.json read under the lock. A run still being made holds
 * the lock before it writes config.json, so a resume of it is refused as busy (naming its pid) instead of
 * reading no or half a config.json. A directory with neither file is no run (and gets no lock file). */
static int lock_run_config(ft_train_config *cfg, const char *run_dir, int *lock_fd, long *stale_pid) {
    *lock_fd = -1;
    ft_train_config_defaults(cfg);
    char path[4096], lock[4096];
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "config.json"));
    FT_TRY(ft_path_join(lock, sizeof lock, run_dir, "lock"));
    if (!ft_path_exists(path) && !ft_path_exists(lock))
        return ft_error(FT_ERR_NOT_FOUND, "%s: not a run directory (no config.json)", run_dir);
    FT_TRY(ft__run_lock(run_dir, lock_fd, stale_pid));
    int rc = ft_path_exists(path) ? ft_train_config_load_json(cfg, path)
                                  : ft_error(FT_ERR_NOT_FOUND, "%s: not a run directory (no config.json)", run_dir);
    if (rc < 0) { ft__run_unlock(*lock_fd); *lock_fd = -1; return rc; }
    snprintf(cfg->out, sizeof cfg->out, "%s", run_dir);
    return FT_OK;
}

int ft_train_run_set_precision(const char *run_dir, const char *precision) {
    return ft_train_run_set_option(run_dir, "precision", precision);
}

int ft_train_run_set_option(const char *run_dir, const char *name, const char *value) {
    if (strcmp(name, "precision") && strcmp(name, "stop-at-epoch") && strcmp(name, "stop-at-step"))
        return ft_error(FT_ERR_INVALID, "--%s cannot change when a run goes on (--precision, --stop-at-epoch and --stop-at-step can)", name);
    ft_train_config c;
    int fd;
    long stale = 0;
    FT_TRY(lock_run_config(&c, run_dir, &fd, &stale));
    char path[4096];
    int rc = ft_path_join(path, sizeof path, run_dir, "config.json");
    if (rc == FT_OK) rc = ft_train_config_set(&c, name, value);
    if (rc == FT_OK) rc = ft_train_config_validate(&c);
    if (rc == FT_OK) rc = ft_train_config_save_json(&c, path);
    ft__run_unlock_as(fd, stale);   /* a killed run's pid stays for the resume that follows to report */
    return rc;
}

static int check_folds(const ft_train_config *cfg, int resume) {
    if (cfg->folds <= 0 || cfg->fold >= 0) return FT_OK;
    if (!ft__train_is_encoder_task(cfg))
        return ft_error(FT_ERR_INVALID, "--fold -1 (every fold) is available for encoder tasks; for language models run --fold 0 ... %d one by one", cfg->folds - 1);
    if (resume) return ft_error(FT_ERR_INVALID, "resume a k-fold run fold by fold: --resume %s/fold-N", cfg->out);
    return ft_error(FT_ERR_INVALID, "--fold -1 trains every fold: run it with ft_train_ex");
}

/* --shard-optimizer on several ranks: who updates which parameter, and the params of each rank's optimizer */
static int plan_shards(ft_trainer *t) {
    ft_task *k = t->task;
    if (!t->cfg.shard_optimizer || t->world == 1) return FT_OK;
    t->owner = calloc((size_t)k->n_params + 1, sizeof *t->owner);
    t->opt_lo_of = calloc((size_t)t->world + 1, sizeof *t->opt_lo_of);
    if (!t->owner || !t->opt_lo_of) return ft_error(FT_ERR_NOMEM, "out of memory");
    ft__zero_plan(k->params, k->n_params, t->world, t->owner);
    for (int r = 1; r <= t->world; r++) {
        int p = 0;
        while (p < k->n_params && !(k->params[p].trainable && t->owner[p] >= r)) p++;
        t->opt_lo_of[r] = p;
    }
    return FT_OK;
}

static int setup(ft_trainer *t, const char *resume_dir) {
    ft_train_config *c = &t->cfg;
    FT_TRY(ft_train_config_validate(c));
    /* --precision auto: bf16 where the CPU has AVX512-BF16; config.json keeps the resolved value */
    if (!strcmp(c->precision, "auto")) snprintf(c->precision, sizeof c->precision, "%s", ft_precision_default());
    if (c->threads > 0) ft_set_threads(c->threads);
    FT_TRY(ft_schedule_from_name(c->schedule, &t->sched));
    const ft_task_ops *ops = !strcmp(c->task, "multi") ? &ft_task_multitask_ops : ft__train_is_encoder_task(c) ? &ft_task_encoder_ops : &ft_task_lm_ops;
    if ((c->replay[0] || c->eval_old[0] || c->stream) && ops != &ft_task_encoder_ops)
        return ft_error(FT_ERR_UNSUPPORTED, "--replay, --eval-old and --stream are available for encoder tasks (classify); language models and "
                        "--task multi take --l2-sp");
    if (c->stream && t->world > 1) return ft_error(FT_ERR_UNSUPPORTED, "--stream reads stdin in one process: not under mpirun");
    FT_TRY(ops->create(&t->task, c, &t->out));
    ft_task *k = t->task;
    if (k->defaults_text[0]) ft__sinks_message(&t->out, FT_LOG_INFO, "%s", k->defaults_text);
    t->steps_per_epoch = (k->batches_per_epoch + c->grad_accum - 1) / c->grad_accum;
    t->total_steps = c->max_steps > 0 ? c->max_steps : (int64_t)c->epochs * t->steps_per_epoch;
    t->warmup = c->warmup_steps >= 0 ? c->warmup_steps : (int64_t)llround(c->warmup_ratio * (double)t->total_steps);
    /* --stop-at-*: where this invocation ends; the schedule above still spans the whole run */
    t->stop_step = t->total_steps;
    if (c->stop_at_epoch > 0 && (int64_t)c->stop_at_epoch * t->steps_per_epoch < t->stop_step) t->stop_step = (int64_t)c->stop_at_epoch * t->steps_per_epoch;
    if (c->stop_at_step > 0 && c->stop_at_step < t->stop_step) t->stop_step = c->stop_at_step;
    if (c->stream) {   /* the number of steps is unknown: a constant rate after --warmup-steps */
        t->sched = FT_SCHED_CONSTANT;
        t->warmup = c->warmup_steps > 0 ? c->warmup_steps : 0;
        ft__sinks_message(&t->out, FT_LOG_INFO, "--stream: training on stdin records as they arrive, constant learning rate %g (warmup %lld steps)",
                         (double)c->lr, (long long)t->warmup);
    }
    /* a dry run stops before the big allocations, so that it can predict them */
    if (c->dry_run) return FT_OK;
    FT_TRY(ops->prepare(k));
    FT_TRY(plan_shards(t));
    int lo = t->owner ? t->opt_lo_of[t->rank] : 0, hi = t->owner ? t->opt_lo_of[t->rank + 1] : k->n_params;
    FT_TRY(ft__train_make_optimizer(&t->opt, c, k->params + lo, hi - lo));
    FT_TRY(ft__grad_sync_init(&t->sync, t->dist, k->params, k->n_params, t->rounds, t->owner));
    if (!(t->mb = calloc(4 * (size_t)c->grad_accum, sizeof *t->mb))) return ft_error(FT_ERR_NOMEM, "out of memory");
    /* every rank starts from rank 0's weights (they loaded the same files; this makes sure) */
    FT_TRY(ft__dist_agree(t->dist, ft__params_bcast(t->dist, k->params, k->n_params)));
    /* L2-SP: the starting weights (rank 0's on every rank), before a resumed run loads its checkpoint */
    if (c->l2_sp > 0) {
        FT_TRY(ft_l2sp_init(&t->l2sp, k->params, k->n_params, c->l2_sp));
        ft__sinks_message(&t->out, FT_LOG_INFO, "L2-SP: penalty %g/2 * |theta - theta_0|^2 towards the starting weights", (double)c->l2_sp);
    }
    if (resume_dir) {
        int resumed;
        FT_TRY(resume_ranks(t, resume_dir, &resumed));
        if (resumed) t->started = 1;
        else ft__sinks_message(&t->out, FT_LOG_INFO, "%s: no checkpoint yet; starting the run from the beginning", resume_dir);
        if (resumed && t->world > 1) FT_TRY(ft__params_bcast(t->dist, k->params, k->n_params));
    }
    /* bf16, one process: the linear weights pre-packed in bf16, refreshed by each optimizer step in its pass over
     * them (ft_optim_set_prepack); the weights change only through it from here on (several ranks write weights
     * when they synchronise: there, none) */
    if (t->world == 1 && c->weight_packs && ft_optim_set_prepack(t->opt, 1) < 0) /* a speed-up only: go on without */
        ft__sinks_message(&t->out, FT_LOG_INFO, "no bf16 weight packs (%s): the weights are packed at each use", ft_last_error());
    for (int i = 0; i < t->out.n; i++)
        if (t->out.s[i].on_start) FT_TRY(t->out.s[i].on_start(t->out.s[i].user, c, k->defaults_text));
    char desc[1024];
    ops->describe(k, desc, sizeof desc);
    char ranks[96] = "";
    if (t->world > 1)
        snprintf(ranks, sizeof ranks, " = %d ranks x %d%s", t->world, t->rounds, t->owner ? ", optimizer sharded" : "");
    if (c->stream && c->max_steps <= 0)
        ft__sinks_message(&t->out, FT_LOG_INFO, "training %s until the input ends (grad-accum %d), warmup %lld", desc, c->grad_accum, (long long)t->warmup);
    else
        ft__sinks_message(&t->out, FT_LOG_INFO, "training %s, %lld steps (grad-accum %d%s), warmup %lld", desc, (long long)t->total_steps,
                         c->grad_accum, ranks, (long long)t->warmup);
    return FT_OK;
}

int ft_trainer_create(ft_trainer **out, const ft_train_config *cfg, const char *resume_dir, const ft_train_sink *sinks,
                      int n_sinks, const volatile sig_atomic_t *stop) {
    *out = NULL;
    if (n_sinks < 0 || n_sinks > 14) return ft_error(FT_ERR_INVALID, "ft_trainer_create: %d sinks (at most 14)", n_sinks);
    ft_trainer *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->lock_fd = -1;
    /* several ranks (mpirun): rank 0 owns the run directory (lock, config.json, metrics, checkpoints, report);
     * the others only compute, and get the configuration of a resumed run from rank 0 */
    t->dist = ft__dist_get();
    t->rank = t->dist->rank;
    t->world = t->dist->world;
    int root = t->rank == 0, rc = FT_OK;
    if (resume_dir) {
        if (root) rc = lock_run_config(&t->cfg, resume_dir, &t->lock_fd, &t->stale_pid);
        if (rc == FT_OK) rc = check_folds(&t->cfg, 1);
        rc = ft__dist_agree(t->dist, rc);
        if (rc == FT_OK && t->world > 1) rc = t->dist->bcast(t->dist->user, &t->cfg, sizeof t->cfg, 0);
    } else if (!cfg) rc = ft_error(FT_ERR_INVALID, "ft_trainer_create: no configuration and no run to resume");
    else {
        t->cfg = *cfg;
        /* every rank runs rank 0's configuration (a default --out names the time: it could differ) */
        if (t->world > 1) rc = t->dist->bcast(t->dist->user, &t->cfg, sizeof t->cfg, 0);
        /* --grad-accum is per rank; the run (config.json, a resume) counts the micro-batches of all of them */
        if (t->world > 1) t->cfg.grad_accum *= t->world;
        if (root && rc == FT_OK) rc = new_run_dir(&t->cfg, &t->lock_fd, &t->stale_pid);
        if (rc == FT_OK) rc = check_folds(&t->cfg, 0);
        rc = ft__dist_agree(t->dist, rc);
    }
    if (rc == FT_OK && t->cfg.grad_accum % t->world)
        rc = ft_error(FT_ERR_INVALID, "%s takes %d micro-batches per step (--grad-accum x ranks): run it on a number of ranks that divides %d, not %d",
                      t->cfg.out, t->cfg.grad_accum, t->cfg.grad_accum, t->world);
    if (t->world > 1) rc = ft__dist_agree(t->dist, rc);
    t->rounds = t->cfg.grad_accum / t->world;
    t->stop = stop;
    t->first_val = t->last_val = t->last_train = NAN;
    t->first_main = t->last_main = t->best_main = NAN;
    const char *bm = t->cfg.best_metric;
    t->higher_better = !strcmp(bm, "accuracy") || !strcmp(bm, "f1_macro") || !strcmp(bm, "f1");
    t->best = t->higher_better ? -INFINITY : INFINITY;
    /* the run directory's own sinks around the caller's: metrics.jsonl first (the report reads it), report.html last */
    if (rc == FT_OK && root) rc = ft_train_sink_metrics(&t->out.s[t->out.n], t->cfg.out);
    if (rc == FT_OK && root) { t->out.n++; t->own_first = 1; }
    for (int i = 0; rc == FT_OK && root && i < n_sinks; i++) t->out.s[t->out.n++] = sinks[i];
    if (rc == FT_OK && root) rc = ft_train_sink_report(&t->out.s[t->out.n], t->cfg.out);
    if (rc == FT_OK && root) { t->out.n++; t->own_last = 1; }
    if (rc == FT_OK && t->stale_pid)
        ft__sinks_message(&t->out, FT_LOG_INFO, "%s: took over the lock of run pid %ld, which ended without releasing it", t->cfg.out,
                         t->stale_pid);
    if (rc == FT_OK) rc = ft__dist_agree(t->dist, setup(t, resume_dir));
    if (rc < 0) { ft_trainer_close(t); return rc; }
    *out = t;
    return FT_OK;
}

/* ------------------------------------------------------------------ one-call runs */

int ft_train_ex(const ft_train_config *cfg, const char *resume_dir, const ft_train_sink *sinks, int n_sinks,
                const volatile sig_atomic_t *stop, ft_train_result *res) {
    memset(res, 0, sizeof *res);
    if (!resume_dir && cfg && cfg->folds > 0 && cfg->fold < 0 && ft__train_is_encoder_task(cfg)) {
        int lock_fd;
        FT_TRY(new_run_dir(cfg, &lock_fd, NULL));   /* the parent directory, held while every fold trains */
        int rc = ft__train_encoder_all_folds(cfg, sinks, n_sinks, stop, res);
        ft__run_unlock(lock_fd);
        return rc;
    }
    ft_trainer *t;
    FT_TRY(ft_trainer_create(&t, cfg, resume_dir, sinks, n_sinks, stop));
    int rc;
    if (t->cfg.dry_run) {
        char plan[2048];
        rc = ft_trainer_plan(t, plan, sizeof plan);
        if (rc == FT_OK) ft__sinks_message(&t->out, FT_LOG_INFO, "%s", plan);
    } else rc = ft_trainer_run(t, res);
    ft_trainer_close(t);
    return rc;
}

static int train_console(const ft_train_config *cfg, const char *resume_dir, ft_train_result *res) {
    ft_train_sink con;
    FT_TRY(ft_train_sink_console(&con));
    int rc = ft_train_ex(cfg, resume_dir, &con, 1, NULL, res);
    con.close(con.user);
    return rc;
}

int ft_train(const ft_train_config *cfg, ft_train_result *res) { return train_console(cfg, NULL, res); }
int ft_train_resume(const char *run_dir, ft_train_result *res) { return train_console(NULL, run_dir, res); }
