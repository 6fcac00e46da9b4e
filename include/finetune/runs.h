/* runs.h — the run store: every `finetune train` recorded in SQLite, and the queries of `finetune runs`.
 *
 * Overview. A run store is one SQLite file (Debian's libsqlite3, WAL mode, the same file the sweeps use:
 * runs/finetune.db by default). The train sink made by ft_train_sink_runstore records a run when it
 * starts (name = the run directory's basename, status "running", start time, command line, the resolved
 * config.json, model path, data path + size + fingerprint, run directory, pid), every metrics.jsonl line
 * as rows (step, key, value) with key "<type>/<field>" ("train/loss", "eval/val_loss", "test/accuracy"),
 * and at the end status "finished", "failed" or "interrupted" with the end time. A run killed with
 * kill -9 stays "running" until the next ft_runs_open, which marks it "killed" (its pid is gone and the
 * run directory's lock is free).
 *
 * Tables: schema_version(component, version) with ("runs", 1); runs(id, name, run_dir, status, pid,
 * started, ended, command, config, model, data, data_size, data_hash, data_hash_kind); run_metrics(run_id,
 * step, key, value); run_tags(run_id, tag). A sweep's trial that trains (hpo.h) points at its run through
 * trials.run_id of the sweep tables in the same file; list (--sweep) and show follow that link. Each change is one transaction (BEGIN IMMEDIATE .. COMMIT),
 * so a process killed at any moment leaves a consistent file, and several processes may write it.
 *
 * Example:
 *     ft_train_sink s;
 *     ft_train_sink_runstore(&s, "runs/finetune.db", "finetune train --lr 1e-4", 0, stderr);
 *     ft_train_ex(&cfg, NULL, &s, 1, NULL, &res);
 *     s.close(s.user);                 // a run that never reached on_end is marked "failed" here
 *
 *     ft_runs_db *db;  ft_runs_open("runs/finetune.db", &db);
 *     ft_runs_list_opts o = {.status = "finished", .sort_metric = "eval/val_loss", .limit = 10};
 *     ft_runs_write_list(db, &o, stdout);  ft_runs_close(db);
 *
 * Ownership: strings passed in are copied; ft_runs_close frees the handle. Thread safety: a handle is
 * used by one thread at a time; separate handles (and processes) may share one file. */
#ifndef FINETUNE_RUNS_H
#define FINETUNE_RUNS_H
#include <stdint.h>
#include <stdio.h>

#include "finetune/train.h"

typedef struct ft_runs_db ft_runs_db;

/* Opens (creates) the store at path, creating its folder and tables, and marks runs left "running" by
 * a dead process "killed". */
int  ft_runs_open(const char *path, ft_runs_db **out);
void ft_runs_close(ft_runs_db *db);
/* 1 when PRAGMA integrity_check says ok. */
int  ft_runs_check(ft_runs_db *db);

/* A train sink recording the run into the store at db_path. command: the command line (may be NULL);
 * resume: the run continues an earlier one (its row, found by run directory, is reused). Never fails
 * the run: a database error is written once to warn (may be NULL) and recording stops. */
int  ft_train_sink_runstore(ft_train_sink *out, const char *db_path, const char *command, int resume, FILE *warn);

/* The run id of RUN: a number (an id) or a name (the newest run of that name). FT_ERR_NOT_FOUND if none. */
int  ft_runs_find(ft_runs_db *db, const char *run, int64_t *id);

typedef struct ft_runs_list_opts {
    const char *status;        /* only this status (NULL: any) */
    const char *tag;           /* only runs with this tag (NULL: any) */
    const char *sweep;         /* only the runs of this sweep's trials (NULL: any; FT_ERR_NOT_FOUND when
                                  the file holds no such sweep) */
    const char *sort_metric;   /* order by the last value of this metric key, ascending (NULL: newest first) */
    int         limit;         /* at most this many (<= 0: all) */
} ft_runs_list_opts;

/* A table: id, name, status, started, duration, steps, the last train/loss and eval/val_loss (or the
 * sort metric), tags. */
int  ft_runs_write_list(ft_runs_db *db, const ft_runs_list_opts *o, FILE *f);
/* Everything about one run: fields, data fingerprint, tags, the sweep and trial it was (when a sweep's
 * trial trained it), config, the last value of each metric. */
int  ft_runs_write_show(ft_runs_db *db, int64_t id, FILE *f);
/* One row per run (newest first): id, name, status, started, ended, run_dir, model, data, tags, then the
 * last value of every metric key any run has, one column each (empty when the run has none). */
int  ft_runs_write_csv(ft_runs_db *db, FILE *f);
/* A self-contained HTML page (no scripts) comparing n runs: each metric's curves overlaid (epochs, token
 * counts and speeds left out), the configs side by side with the keys whose values differ highlighted
 * (class 'diff'), the last value of every metric. */
int  ft_runs_write_compare(ft_runs_db *db, const int64_t *ids, int n, FILE *f);
int  ft_runs_tag(ft_runs_db *db, int64_t id, const char *tag);
/* Deletes the run's rows; *run_dir (may be NULL) receives its directory (caller frees). */
int  ft_runs_remove(ft_runs_db *db, int64_t id, char **run_dir);
#endif
