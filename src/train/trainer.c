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
#include "finetune/checkpoint.h"
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
    int rank, world;                /* data-parallel share of each global batch (0 of 1 today) */
    int64_t step;                   /* optimizer steps done */
    int64_t epoch, cursor;          /* data stream: next global batch `cursor` of epoch `epoch` */
    int64_t total_steps, warmup, steps_per_epoch;
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
};

ft_task *ft__trainer_task(ft_trainer *t) { return t->task; }
int64_t ft_trainer_steps_done(const ft_trainer *t) { return t->step; }
int64_t ft_trainer_total_steps(const ft_trainer *t) { return t->total_steps; }


/* ------------------------------------------------------------------ checkpoints */

static int ck_save(void *ctx, const char *dir) { ft_task *k = ctx; return k->ops->save_weights(k, dir); }
static int ck_load(void *ctx, const char *dir) { ft_task *k = ctx; return k->ops->load_weights(k, dir); }

int ft_trainer_save(ft_trainer *t) {
    if (!t->opt) return ft_error(FT_ERR_INVALID, "a dry run has no checkpoint");
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
    return ft_ckpt_save_io(t->cfg.out, t->step, &io, t->opt, state, t->cfg.keep);
}

/* restores checkpoint `path` (of step dir_step, -1 if unknown): weights and optimizer state, then state.json,
 * validated before anything of it is used */
static int restore(ft_trainer *t, const char *path, int64_t dir_step) {
    char *state;
    ft_ckpt_io io = {ck_save, ck_load, t->task};
    FT_TRY(ft_ckpt_load_io(path, &io, t->opt, &state));
    cJSON *j = cJSON_Parse(state);
    free(state);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return ft_error(FT_ERR_FORMAT, "%s/state.json: not a JSON object", path); }
    ft__run_state st;
    ft__state_limits lim = {t->total_steps, t->steps_per_epoch, t->task->batches_per_epoch, t->higher_better};
    int rc = ft__train_state_parse(j, &lim, dir_step, &st, path);
    if (rc == FT_OK && ft_optim_steps(t->opt) != st.step)
        rc = ft_error(FT_ERR_FORMAT, "%s: optimizer.bin has taken %lld steps, state.json says %lld", path, (long long)ft_optim_steps(t->opt),
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
static int resume_newest_good(ft_trainer *t, const char *run_dir, int *resumed) {
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
        if (rc == FT_OK) rc = restore(t, path, steps[i]);
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
        FT_TRY(t->task->ops->save_model(t->task, dir));
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

static int optimizer_step(ft_trainer *t, double *loss_out, double *gnorm_out, float *lr_out, int64_t *count_out) {
    const ft_train_config *c = &t->cfg;
    ft_task *k = t->task;
    const ft_task_ops *ops = k->ops;
    if (t->cursor >= k->batches_per_epoch) { t->epoch++; t->cursor = 0; }
    int n = (int)(k->batches_per_epoch - t->cursor < c->grad_accum ? k->batches_per_epoch - t->cursor : c->grad_accum);
    /* fill every micro-batch first: the denominator of the whole step is known before any backward */
    double den_total = 0;
    int64_t count = 0;
    for (int i = 0; i < n; i++) {
        uint64_t seed = ft__splitmix64((uint64_t)c->seed ^ ft__splitmix64((uint64_t)t->step * 1024 + (uint64_t)i));
        int64_t cnt = 0;
        double den = 0;
        FT_TRY(ops->next_batch(k, i, t->epoch, t->cursor + i, t->rank, t->world, seed, &cnt, &den));
        count += cnt;
        den_total += den;
    }
    FT_TRY(ops->zero_grad(k));
    double loss_sum = 0, den_seen = 0;
    int rc = FT_OK;
    for (int i = 0; i < n && rc == FT_OK; i++) {
        uint64_t seed = ft__splitmix64((uint64_t)c->seed ^ ft__splitmix64((uint64_t)t->step * 1024 + (uint64_t)i));
        double ls = 0, den = 0;
        rc = ops->forward_backward(k, i, seed, 1.0f / (float)(den_total > 0 ? den_total : 1.0), &ls, &den);
        if (den <= 0) continue;
        loss_sum += ls;
        den_seen += den;
    }
    ops->end_step(k);
    if (rc < 0) return rc;
    /* with class weights the per-batch denominators are weight sums, not counts: rescale once */
    if (den_seen > 0 && fabs(den_seen - den_total) > 1e-9 * den_seen)
        ft__params_scale_grads(k->params, k->n_params, (float)(den_total / den_seen));
    double gn = ft__params_grad_norm(k->params, k->n_params);
    if (!isfinite(gn)) return ft_error(FT_ERR_RANGE, "step %lld: the gradient is not finite (loss %g); lower --lr?", (long long)t->step + 1, loss_sum);
    if (c->max_grad_norm > 0 && gn > c->max_grad_norm) ft__params_scale_grads(k->params, k->n_params, (float)(c->max_grad_norm / (gn + 1e-6)));
    float lr = ft_schedule_lr(t->sched, c->lr, t->step, t->total_steps, t->warmup, c->min_lr_ratio);
    FT_TRY(ft_optim_step(t->opt, lr));
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
        FT_TRY(do_eval(t, NULL));
        FT_TRY(ft_trainer_save(t));
        t->started = 1;
    }
    if (t->step >= t->total_steps || t->stopped_early) return 0;
    if (t->interrupted || (t->stop && *t->stop)) return interrupt(t);
    double t0 = ft__now_s(), loss = 0, gn = 0;
    float lr = 0;
    int64_t count = 0;
    FT_TRY(optimizer_step(t, &loss, &gn, &lr, &count));
    double dt = ft__now_s() - t0;
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
    int epoch_end = t->cursor >= t->task->batches_per_epoch;
    if ((c->eval_every > 0 && step % c->eval_every == 0) || epoch_end || step == t->total_steps) FT_TRY(do_eval(t, NULL));
    if (epoch_end && t->task->ops->after_epoch) t->task->ops->after_epoch(t->task, t->step, (int)t->epoch + 1);
    if ((c->save_every > 0 && step % c->save_every == 0) || epoch_end || step == t->total_steps || t->stopped_early)
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

int ft_trainer_finish(ft_trainer *t, ft_train_result *res) {
    const ft_train_config *c = &t->cfg;
    int rc = t->status;
    if (rc == FT_OK && !t->interrupted && !c->dry_run) {
        char path[4096];
        rc = ft_path_join(path, sizeof path, c->out, "final");
        if (rc == FT_OK) rc = t->task->ops->save_model(t->task, path);
        if (rc == FT_OK) rc = do_test(t);
    }
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

int ft_trainer_plan(ft_trainer *t, char *buf, size_t cap) { return t->task->ops->plan(t->task, t->total_steps, buf, cap); }

/* ------------------------------------------------------------------ create / close */

void ft_trainer_close(ft_trainer *t) {
    if (!t) return;
    if (t->task) t->task->ops->free(t->task);
    ft_optim_free(t->opt);
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

static int load_run_config(ft_train_config *cfg, const char *run_dir) {
    ft_train_config_defaults(cfg);
    char path[4096];
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "config.json"));
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: not a run directory (no config.json)", run_dir);
    FT_TRY(ft_train_config_load_json(cfg, path));
    snprintf(cfg->out, sizeof cfg->out, "%s", run_dir);
    return FT_OK;
}

static int check_folds(const ft_train_config *cfg, int resume) {
    if (cfg->folds <= 0 || cfg->fold >= 0) return FT_OK;
    if (!ft__train_is_encoder_task(cfg))
        return ft_error(FT_ERR_INVALID, "--fold -1 (every fold) is available for encoder tasks; for language models run --fold 0 ... %d one by one", cfg->folds - 1);
    if (resume) return ft_error(FT_ERR_INVALID, "resume a k-fold run fold by fold: --resume %s/fold-N", cfg->out);
    return ft_error(FT_ERR_INVALID, "--fold -1 trains every fold: run it with ft_train_ex");
}

static int setup(ft_trainer *t, const char *resume_dir) {
    ft_train_config *c = &t->cfg;
    FT_TRY(ft_train_config_validate(c));
    if (c->threads > 0) ft_set_threads(c->threads);
    FT_TRY(ft_schedule_from_name(c->schedule, &t->sched));
    const ft_task_ops *ops = ft__train_is_encoder_task(c) ? &ft_task_encoder_ops : &ft_task_lm_ops;
    FT_TRY(ops->create(&t->task, c, &t->out));
    ft_task *k = t->task;
    if (k->defaults_text[0]) ft__sinks_message(&t->out, FT_LOG_INFO, "%s", k->defaults_text);
    t->steps_per_epoch = (k->batches_per_epoch + c->grad_accum - 1) / c->grad_accum;
    t->total_steps = c->max_steps > 0 ? c->max_steps : (int64_t)c->epochs * t->steps_per_epoch;
    t->warmup = c->warmup_steps >= 0 ? c->warmup_steps : (int64_t)llround(c->warmup_ratio * (double)t->total_steps);
    /* a dry run stops before the big allocations, so that it can predict them */
    if (c->dry_run) return FT_OK;
    FT_TRY(ops->prepare(k));
    FT_TRY(ft__train_make_optimizer(&t->opt, c, k->params, k->n_params));
    if (resume_dir) {
        int resumed;
        FT_TRY(resume_newest_good(t, resume_dir, &resumed));
        if (resumed) t->started = 1;
        else ft__sinks_message(&t->out, FT_LOG_INFO, "%s: no checkpoint yet; starting the run from the beginning", resume_dir);
    }
    for (int i = 0; i < t->out.n; i++)
        if (t->out.s[i].on_start) FT_TRY(t->out.s[i].on_start(t->out.s[i].user, c, k->defaults_text));
    char desc[1024];
    ops->describe(k, desc, sizeof desc);
    ft__sinks_message(&t->out, FT_LOG_INFO, "training %s, %lld steps (grad-accum %d), warmup %lld", desc, (long long)t->total_steps,
                     c->grad_accum, (long long)t->warmup);
    return FT_OK;
}

int ft_trainer_create(ft_trainer **out, const ft_train_config *cfg, const char *resume_dir, const ft_train_sink *sinks,
                      int n_sinks, const volatile sig_atomic_t *stop) {
    *out = NULL;
    if (n_sinks < 0 || n_sinks > 14) return ft_error(FT_ERR_INVALID, "ft_trainer_create: %d sinks (at most 14)", n_sinks);
    ft_trainer *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "out of memory");
    t->lock_fd = -1;
    int rc = FT_OK;
    if (resume_dir) {
        rc = load_run_config(&t->cfg, resume_dir);
        if (rc == FT_OK) rc = ft__run_lock(resume_dir, &t->lock_fd, &t->stale_pid);
        if (rc == FT_OK) rc = check_folds(&t->cfg, 1);
    } else if (!cfg) rc = ft_error(FT_ERR_INVALID, "ft_trainer_create: no configuration and no run to resume");
    else {
        t->cfg = *cfg;
        rc = new_run_dir(&t->cfg, &t->lock_fd, &t->stale_pid);
        if (rc == FT_OK) rc = check_folds(&t->cfg, 0);
    }
    t->stop = stop;
    t->world = 1;
    t->first_val = t->last_val = t->last_train = NAN;
    t->first_main = t->last_main = t->best_main = NAN;
    const char *bm = t->cfg.best_metric;
    t->higher_better = !strcmp(bm, "accuracy") || !strcmp(bm, "f1_macro") || !strcmp(bm, "f1");
    t->best = t->higher_better ? -INFINITY : INFINITY;
    /* the run directory's own sinks around the caller's: metrics.jsonl first (the report reads it), report.html last */
    if (rc == FT_OK) rc = ft_train_sink_metrics(&t->out.s[t->out.n], t->cfg.out);
    if (rc == FT_OK) { t->out.n++; t->own_first = 1; }
    for (int i = 0; rc == FT_OK && i < n_sinks; i++) t->out.s[t->out.n++] = sinks[i];
    if (rc == FT_OK) rc = ft_train_sink_report(&t->out.s[t->out.n], t->cfg.out);
    if (rc == FT_OK) { t->out.n++; t->own_last = 1; }
    if (rc == FT_OK && t->stale_pid)
        ft__sinks_message(&t->out, FT_LOG_INFO, "%s: took over the lock of run pid %ld, which ended without releasing it", t->cfg.out,
                         t->stale_pid);
    if (rc == FT_OK) rc = setup(t, resume_dir);
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
