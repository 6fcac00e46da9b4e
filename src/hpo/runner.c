/* runner.c — ft_hpo_sweep_run: decide trials (engine.c), run each objective command as a child process
 * (`/bin/sh -c "CMD --name value ..."`, stdout captured through a pipe, stderr inherited), read the last
 * number of its stdout, and record everything in the database (store.c). Up to `jobs` children run at
 * once; the loop waits in poll(2) on their pipes. */
#include "core/sqlite_db.h"
#include "hpo_internal.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/strbuf.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

typedef struct child {
    pid_t  pid;
    int    fd;      /* read end of its stdout, -1 at EOF */
    int    trial;   /* index into the trials array */
    ft__sb out;     /* everything it printed (the tail is kept in the database) */
} child;

/* The last number in text: tokens split at white space and , ; = : ( ) [ ] { } | */
static double last_number(const char *text) {
    double v = NAN;
    const char *p = text;
    while (*p) {
        while (*p && strchr(" \t\r\n,;=:()[]{}|", *p)) p++;
        if (!*p) break;
        const char *b = p;
        while (*p && !strchr(" \t\r\n,;=:()[]{}|", *p)) p++;
        char tok[64];
        size_t len = (size_t)(p - b);
        if (len == 0 || len >= sizeof tok) continue;
        memcpy(tok, b, len);
        tok[len] = 0;
        char *end;
        double x = strtod(tok, &end);
        if (end != tok && *end == 0 && isfinite(x)) v = x;
    }
    return v;
}

/* appends s single-quoted for sh */
static void put_quoted(ft__sb *b, const char *s) {
    ft__sb_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'') ft__sb_puts(b, "'\\''");
        else ft__sb_putc(b, *s);
    }
    ft__sb_putc(b, '\'');
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* the command of a "train" trial: TRAIN_EXE train --config RUNS/train.json --out RUNS/trial-<idx> [--db DB] --name value ...
 * [--tensorboard [DIR/trial-<idx>]] [--max-steps | --epochs | --seq-len BUDGET]; with scheduler.continue
 * --epochs / --max-steps MAX_RESOURCE --stop-at-epoch / --stop-at-step BUDGET (the schedule planned for the
 * top rung), and a continued trial (parent >= 0, its directory a copy of the parent's):
 * TRAIN_EXE train --resume RUNS/trial-<idx> [--db DB] [--tensorboard ...] --stop-at-epoch / --stop-at-step BUDGET */
static char *train_command(const ft_hpo_spec *s, const ft_hpo_run_opts *o, const ft_hpo_trial *t) {
    ft__sb b = {0};
    char path[4200];
    int epochs = strcmp(s->fidelity, "epochs") == 0;
    ft__sb_puts(&b, "exec ");
    put_quoted(&b, o->train_exe);
    snprintf(path, sizeof path, "%s/trial-%d", o->runs_dir, t->idx);
    if (t->parent >= 0) {
        ft__sb_puts(&b, " train --resume ");
        put_quoted(&b, path);
    } else {
        ft__sb_puts(&b, " train --config ");
        char cfg[4200];
        snprintf(cfg, sizeof cfg, "%s/train.json", o->runs_dir);
        put_quoted(&b, cfg);
        ft__sb_puts(&b, " --out ");
        put_quoted(&b, path);
    }
    if (o->train_db) {
        ft__sb_puts(&b, " --db ");
        put_quoted(&b, o->train_db);
    }
    if (t->parent < 0) {   /* a continued trial has its parameters in its config.json already */
        char *args = ft_hpo_params_args(s, t->x);
        if (!args) { ft__sb_free(&b); return NULL; }
        /* " --batch_size '8'" -> " --batch-size '8'": flags spell with '-' */
        for (char *p = args; (p = strstr(p, " --")); p += 3)
            for (char *q = p + 3; *q && *q != ' '; q++) if (*q == '_') *q = '-';
        ft__sb_puts(&b, args);
        free(args);
    }
    if (o->tensorboard) {  /* event files: each trial's own RUN/tensorboard, or DIR/trial-<idx> */
        ft__sb_puts(&b, " --tensorboard");
        if (o->tensorboard[0]) {
            snprintf(path, sizeof path, "%s/trial-%d", o->tensorboard, t->idx);
            ft__sb_putc(&b, ' ');
            put_quoted(&b, path);
        }
    }
    if (s->continue_trials) {
        if (t->parent < 0) ft__sb_printf(&b, " %s '%.17g'", epochs ? "--epochs" : "--max-steps", s->max_resource);
        ft__sb_printf(&b, " %s '%.0f'", epochs ? "--stop-at-epoch" : "--stop-at-step", t->budget);
    } else if (s->sched != FT_HPO_SCHED_NONE || s->max_resource > 0) {
        const char *flag = epochs ? "--epochs" : strcmp(s->fidelity, "seq_len") == 0 ? "--seq-len" : "--max-steps";
        ft__sb_printf(&b, " %s '%.17g'", flag, t->budget);
    }
    return ft__sb_take(&b, NULL);
}

/* spec->metric of the last evaluation line in DIR/metrics.jsonl; NaN when there is none */
static double read_metric(const char *dir, const char *metric) {
    char path[4300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return NAN;
    double v = NAN;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type"), *m = cJSON_GetObjectItemCaseSensitive(o, metric);
        if (cJSON_IsString(ty) && strcmp(ty->valuestring, "eval") == 0 && cJSON_IsNumber(m) && isfinite(m->valuedouble)) v = m->valuedouble;
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return v;
}

static int start_child(const ft_hpo_spec *s, const char *cmd, const ft_hpo_run_opts *o, const ft_hpo_trial *t, child *c) {
    char *full;
    char log_path[4200] = "";
    if (cmd) {
        char *args = ft_hpo_params_args(s, t->x);
        if (!args) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
        size_t len = strlen(cmd) + strlen(args) + 1;
        full = malloc(len);
        if (!full) { free(args); return ft_error(FT_ERR_NOMEM, "sweep: out of memory"); }
        snprintf(full, len, "%s%s", cmd, args);
        free(args);
    } else {
        /* a train trial run again starts from an empty run directory; a continued one from a fresh copy of
         * its parent's (prepare_trial checked that the parent has a checkpoint) */
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/trial-%d", o->runs_dir, t->idx);
        if (ft_path_exists(dir) && nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return ft_error(FT_ERR_IO, "sweep: cannot remove %s: %s", dir, strerror(errno));
        if (t->parent >= 0) {
            char from[4200];
            snprintf(from, sizeof from, "%s/trial-%d", o->runs_dir, t->parent);
            FT_TRY(ft__hpo_dir_copy_for_continue(from, dir));
        }
        snprintf(log_path, sizeof log_path, "%s/trial-%d.log", o->runs_dir, t->idx);
        if (!(full = train_command(s, o, t))) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    }
    char id[32], budget[64], parent[32], from[32] = "", from_budget[64] = "";
    snprintf(id, sizeof id, "%d", t->idx);
    if (t->parent >= 0) {
        snprintf(from, sizeof from, "%d", t->parent);
        snprintf(from_budget, sizeof from_budget, "%.17g", t->budget - t->cost);
    }
    if (t->budget > 0) snprintf(budget, sizeof budget, "%.17g", t->budget);
    else budget[0] = 0;
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { free(full); return ft_error(FT_ERR_IO, "sweep: pipe: %s", strerror(errno)); }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]); close(fds[1]); free(full);
        return ft_error(FT_ERR_IO, "sweep: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        if (log_path[0]) {  /* a train trial's log (stderr) beside its run directory */
            int lf = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (lf >= 0) { dup2(lf, 2); close(lf); }
        }
        setenv("FT_TRIAL_ID", id, 1);
        setenv("FT_BUDGET", budget, 1);
        setenv("FT_SWEEP", s->name, 1);
        setenv("FT_SWEEP_PID", parent, 1);
        setenv("FT_PARENT_TRIAL", from, 1);          /* scheduler.continue: the trial this one goes on from */
        setenv("FT_PARENT_BUDGET", from_budget, 1);  /* and the budget it reached ("" for a fresh start) */
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    free(full);
    c->pid = pid;
    c->fd = fds[0];
    memset(&c->out, 0, sizeof c->out);
    return FT_OK;
}

/* Before a trial starts: a continued train trial whose parent has no checkpoint (removed, or a killed sweep's
 * parent that never wrote one) trains from the start instead, at the full cost, and says so. */
static int prepare_trial(const ft_hpo_spec *s, const char *cmd, const ft_hpo_run_opts *o, ft_hpo_trial *t) {
    if (cmd || t->parent < 0) return FT_OK;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/trial-%d", o->runs_dir, t->parent);
    if (ft__hpo_dir_has_checkpoint(dir)) return FT_OK;
    FT_LOGW("sweep %s: trial %d: trial %d's checkpoint (%s/checkpoints) is missing: training from the start (budget %g)", s->name, t->idx,
            t->parent, dir, t->budget);
    t->parent = -1;
    t->cost = t->budget;
    return FT_OK;
}

/* "cleanup": after trial tr ended, the checkpoints nothing will continue from any more: its parent's (a
 * configuration is promoted once from each rung), and its own when no promotion can follow (no scheduler,
 * or the top budget) */
static void cleanup_after(const ft_hpo_spec *s, const ft_hpo_run_opts *o, const ft_hpo_trial *tr) {
    char dir[4200];
    if (tr->parent >= 0 && tr->status == FT_HPO_FINISHED) {
        snprintf(dir, sizeof dir, "%s/trial-%d", o->runs_dir, tr->parent);
        if (ft__hpo_dir_drop_checkpoints(dir) < 0) FT_LOGW("sweep %s: %s", s->name, ft_last_error());
    }
    if (!s->continue_trials || tr->budget >= s->max_resource * (1 - 1e-9)) {
        snprintf(dir, sizeof dir, "%s/trial-%d", o->runs_dir, tr->idx);
        if (ft__hpo_dir_drop_checkpoints(dir) < 0) FT_LOGW("sweep %s: %s", s->name, ft_last_error());
    }
}

/* keeps the trials array growable: returns a pointer to slot n (capacity doubled when full) */
static int grow(ft_hpo_trial **t, int *cap, int n) {
    if (n < *cap) return FT_OK;
    int nc = *cap ? 2 * *cap : 64;
    ft_hpo_trial *nt = realloc(*t, sizeof *nt * (size_t)nc);
    if (!nt) return ft_error(FT_ERR_NOMEM, "sweep: out of memory");
    *t = nt;
    *cap = nc;
    return FT_OK;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

int ft_hpo_sweep_run(ft_hpo_db *db, const ft_hpo_spec *s, const ft_hpo_run_opts *opts) {
    const char *cmd = opts->objective_cmd ? opts->objective_cmd : s->objective_cmd;
    if (cmd && !*cmd) cmd = NULL;
    if (!cmd && !s->train_json)
        return ft_error(FT_ERR_INVALID, "sweep \"%s\": no objective: give --objective-cmd CMD (or \"objective_cmd\" or a \"train\" section in the config)", s->name);
    if (!cmd) {  /* train trials: the shared options in RUNS_DIR/train.json */
        if (!opts->train_exe || !opts->runs_dir)
            return ft_error(FT_ERR_INVALID, "sweep \"%s\": a \"train\" sweep needs the finetune program and a runs folder", s->name);
        char path[4200];
        snprintf(path, sizeof path, "%s/train.json", opts->runs_dir);
        FT_TRY(ft_mkdirs(opts->runs_dir));
        FT_TRY(ft_file_write_atomic(path, s->train_json, strlen(s->train_json)));
    }
    int jobs = opts->jobs;
    long long sid;
    FT_TRY(ft__hpo_store_take(db, s->name, s->json, 1, &jobs, &sid, NULL));
    if (jobs > 256) jobs = 256;
    ft_hpo_trial *t = NULL;
    int n = 0, cap = 0;
    int rc = ft__hpo_store_trials(db, sid, s->n_params, &t, &n);
    if (rc < 0) { ft__hpo_store_release(db, sid, "stopped"); return rc; }
    cap = n;
    int active = 0, finished_all = 0;
    child *kids = calloc((size_t)jobs, sizeof *kids);
    struct pollfd *pfd = calloc((size_t)jobs, sizeof *pfd);
    if (!kids || !pfd) { rc = ft_error(FT_ERR_NOMEM, "sweep: out of memory"); goto out; }
    /* trials a killed run left pending or running are run again, in order */
    int redo = 0;
    for (int i = 0; i < n; i++) if (t[i].status == FT_HPO_PENDING || t[i].status == FT_HPO_RUNNING) { t[i].status = FT_HPO_PENDING; redo++; }
    int done_n = 0;
    for (int i = 0; i < n; i++) done_n += t[i].status == FT_HPO_FINISHED || t[i].status == FT_HPO_FAILED;
    if (n > 0) FT_LOGI("sweep %s: resuming: %d trials recorded (%d ended, %d to run again)", s->name, n, done_n, redo);
    /* ended train trials not linked to their run yet (a sweep stopped between a trial's end and its link,
     * or run by an older finetune): link them now */
    for (int i = 0; !cmd && i < n; i++)
        if (t[i].status == FT_HPO_FINISHED || t[i].status == FT_HPO_FAILED) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/trial-%d", opts->runs_dir, t[i].idx);
            if (ft__hpo_store_link_run(db, sid, t[i].idx, dir) < 0) FT_LOGW("sweep %s: trial %d: %s", s->name, t[i].idx, ft_last_error());
        }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    double t0 = ft__wall_now();
    for (;;) {
        /* fill the free slots */
        while (active < jobs && !g_stop) {
            int pick = -1;
            for (int i = 0; i < n && pick < 0; i++) if (t[i].status == FT_HPO_PENDING) pick = i;
            if (pick < 0) {
                if (s->max_seconds > 0 && ft__wall_now() - t0 >= s->max_seconds) { finished_all = 1; break; }
                if ((rc = grow(&t, &cap, n)) < 0) goto stop;
                int d = ft_hpo_next(s, t, n, jobs, &t[n]);
                if (d < 0) { rc = d; goto stop; }
                if (d == FT_HPO_DONE) { finished_all = 1; break; }
                if (d == FT_HPO_WAIT) break;
                t[n].status = FT_HPO_PENDING;
                t[n].started = 0;
                if ((rc = ft__hpo_store_insert(db, sid, s, &t[n])) < 0) { ft_hpo_trial_free(&t[n]); goto stop; }
                pick = n++;
            }
            int slot = 0;
            while (kids[slot].pid) slot++;
            if ((rc = prepare_trial(s, cmd, opts, &t[pick])) < 0) goto stop;
            t[pick].status = FT_HPO_RUNNING;
            t[pick].started = ft__wall_now();
            if ((rc = ft__hpo_store_update(db, sid, &t[pick], NULL)) < 0) goto stop;
            if ((rc = start_child(s, cmd, opts, &t[pick], &kids[slot])) < 0) goto stop;
            kids[slot].trial = pick;
            active++;
        }
        if (active == 0) break;
        int np = 0;
        for (int k = 0; k < jobs; k++) if (kids[k].pid) { pfd[np].fd = kids[k].fd; pfd[np].events = POLLIN; pfd[np].revents = 0; np++; }
        int pr = poll(pfd, (nfds_t)np, 500);
        if (pr < 0 && errno != EINTR) { rc = ft_error(FT_ERR_IO, "sweep: poll: %s", strerror(errno)); goto stop; }
        for (int k = 0, p = 0; k < jobs; k++) {
            if (!kids[k].pid) continue;
            struct pollfd *q = &pfd[p++];
            if (!(q->revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t got = read(kids[k].fd, buf, sizeof buf);
            if (got > 0) {
                if (kids[k].out.n < (64u << 20)) ft__sb_put(&kids[k].out, buf, (size_t)got);
                continue;
            }
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            /* EOF: the child is done (or closed its stdout): reap it */
            close(kids[k].fd);
            int status = 0;
            while (waitpid(kids[k].pid, &status, 0) < 0 && errno == EINTR) {}
            ft_hpo_trial *tr = &t[kids[k].trial];
            const char *text = kids[k].out.p ? kids[k].out.p : "";
            double v;
            if (cmd) {
                v = last_number(text);
            } else {
                char dir[4200];
                snprintf(dir, sizeof dir, "%s/trial-%d", opts->runs_dir, tr->idx);
                v = read_metric(dir, s->metric);
                /* the trial's run in the run store (its `finetune train` recorded it there) */
                if (ft__hpo_store_link_run(db, sid, tr->idx, dir) < 0) FT_LOGW("sweep %s: trial %d: %s", s->name, tr->idx, ft_last_error());
            }
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && isfinite(v);
            tr->value = ok ? v : NAN;
            tr->status = ok ? FT_HPO_FINISHED : FT_HPO_FAILED;
            tr->finished = ft__wall_now();
            if (!ok && !opts->quiet)
                FT_LOGW("sweep %s: trial %d failed (%s%d%s)", s->name, tr->idx,
                        WIFEXITED(status) ? "exit status " : "signal ", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                        WIFEXITED(status) && WEXITSTATUS(status) == 0 ? (cmd ? ", no number on stdout" : ", no such metric in its metrics.jsonl") : "");
            size_t tail = kids[k].out.n > 4096 ? kids[k].out.n - 4096 : 0;
            int urc = ft__hpo_store_update(db, sid, tr, text + tail);
            ft__sb_free(&kids[k].out);
            kids[k].pid = 0;
            active--;
            if (urc < 0) { rc = urc; goto stop; }
            if (!cmd && s->cleanup) cleanup_after(s, opts, tr);
            if (opts->on_trial) opts->on_trial(opts->ud, s, tr);
        }
    }
stop:
    /* an error or a signal: stop the children that still run; their trials stay "running" and are run
     * again on resume */
    for (int k = 0; kids && k < jobs; k++) {
        if (!kids[k].pid) continue;
        kill(kids[k].pid, SIGTERM);
        close(kids[k].fd);
        while (waitpid(kids[k].pid, NULL, 0) < 0 && errno == EINTR) {}
        ft__sb_free(&kids[k].out);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc == FT_OK && g_stop) rc = ft_error(FT_ERR_INTERRUPTED, "sweep %s: interrupted; continue it with --resume", s->name);
    /* "cleanup" at the end of the sweep: no trial will be continued any more */
    if (rc == FT_OK && finished_all && !cmd && s->cleanup)
        for (int i = 0; i < n; i++) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/trial-%d", opts->runs_dir, t[i].idx);
            if (ft__hpo_dir_drop_checkpoints(dir) < 0) FT_LOGW("sweep %s: %s", s->name, ft_last_error());
        }
out:
    ft__hpo_store_release(db, sid, rc == FT_OK && finished_all ? "finished" : "stopped");
    ft_hpo_trials_free(t, n);
    free(kids);
    free(pfd);
    return rc;
}
