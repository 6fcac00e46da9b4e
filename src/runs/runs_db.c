/* runs_db.c — the run store's file: schema, open (marking runs of dead processes "killed"), find, tag,
 * remove. See runs.h for the tables. */
#include "runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sqlite_db.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS schema_version(component TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO schema_version VALUES('runs', 1);"
    "CREATE TABLE IF NOT EXISTS runs("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL, run_dir TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER,"
    " started REAL NOT NULL, ended REAL, command TEXT, config TEXT, model TEXT, data TEXT, data_size INTEGER,"
    " data_hash TEXT, data_hash_kind TEXT);"
    "CREATE INDEX IF NOT EXISTS runs_name ON runs(name);"
    "CREATE INDEX IF NOT EXISTS runs_dir ON runs(run_dir);"
    "CREATE TABLE IF NOT EXISTS run_metrics("
    " id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS run_metrics_key ON run_metrics(run_id, key, step);"
    "CREATE TABLE IF NOT EXISTS run_tags("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, tag TEXT NOT NULL, UNIQUE(run_id, tag));";

int ft__runs_fail(ft_runs_db *db, const char *what) { return ft__sqlite_fail(db->db, db->path, what); }

int ft__runs_exec(ft_runs_db *db, const char *sql) { return ft__sqlite_exec(db->db, db->path, sql); }

/* runs left "running" by a process that is gone: "killed" (one transaction) */
static int mark_killed(ft_runs_db *db) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "SELECT id, pid FROM runs WHERE status = 'running';", -1, &st, NULL) != SQLITE_OK)
        return ft__runs_fail(db, "select running");
    int64_t dead[256];
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < 256) {
        long pid = (long)sqlite3_column_int64(st, 1);
        if (pid != (long)getpid() && !ft__pid_alive(pid)) dead[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (!n) return FT_OK;
    FT_TRY(ft__runs_exec(db, "BEGIN IMMEDIATE;"));
    int rc = FT_OK;
    if (sqlite3_prepare_v2(db->db, "UPDATE runs SET status = 'killed' WHERE id = ?1 AND status = 'running';", -1, &st, NULL) != SQLITE_OK)
        rc = ft__runs_fail(db, "mark killed");
    for (int i = 0; rc == FT_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, dead[i]);
        if (sqlite3_step(st) != SQLITE_DONE) rc = ft__runs_fail(db, "mark killed");
    }
    sqlite3_finalize(st);
    if (rc == FT_OK) return ft__runs_exec(db, "COMMIT;");
    ft__runs_exec(db, "ROLLBACK;");
    return rc;
}

int ft__runs_open_ex(const char *path, int busy_ms, const char *sync, ft_runs_db **out) {
    *out = NULL;
    if (strlen(path) >= sizeof ((ft_runs_db *)0)->path) return ft_error(FT_ERR_RANGE, "%s: path too long", path);
    ft_runs_db *db = calloc(1, sizeof *db);
    if (!db) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    strcpy(db->path, path);
    int rc = ft__sqlite_open(&db->db, path, busy_ms, sync, k_schema);
    if (rc == FT_OK) rc = mark_killed(db);
    if (rc < 0) { ft_runs_close(db); return rc; }
    *out = db;
    return FT_OK;
}

int ft_runs_open(const char *path, ft_runs_db **out) { return ft__runs_open_ex(path, 30000, "FULL", out); }

void ft_runs_close(ft_runs_db *db) {
    if (!db) return;
    if (db->db) sqlite3_close(db->db);
    free(db);
}

int ft_runs_check(ft_runs_db *db) { return ft__sqlite_integrity_ok(db->db, db->path); }

int ft_runs_find(ft_runs_db *db, const char *run, int64_t *id) {
    *id = -1;
    char *end;
    long long n = strtoll(run, &end, 10);
    int numeric = *run && !*end;
    sqlite3_stmt *st;
    const char *sql = numeric ? "SELECT id FROM runs WHERE id = ?1 OR name = ?2 ORDER BY id = ?1 DESC, started DESC, id DESC LIMIT 1;"
                              : "SELECT id FROM runs WHERE name = ?2 ORDER BY started DESC, id DESC LIMIT 1;";
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return ft__runs_fail(db, "find run");
    if (numeric) sqlite3_bind_int64(st, 1, n);
    sqlite3_bind_text(st, 2, run, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return FT_OK;
    if (rc == SQLITE_DONE) return ft_error(FT_ERR_NOT_FOUND, "%s: no run with id or name \"%s\"", db->path, run);
    return ft__runs_fail(db, "find run");
}

/* one statement with an id and an optional text as one transaction */
static int exec_id(ft_runs_db *db, const char *sql, int64_t id, const char *text, const char *what) {
    FT_TRY(ft__runs_exec(db, "BEGIN IMMEDIATE;"));
    sqlite3_stmt *st;
    int rc = FT_OK;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) rc = ft__runs_fail(db, what);
    else {
        sqlite3_bind_int64(st, 1, id);
        if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) rc = ft__runs_fail(db, what);
        sqlite3_finalize(st);
    }
    if (rc == FT_OK) return ft__runs_exec(db, "COMMIT;");
    ft__runs_exec(db, "ROLLBACK;");
    return rc;
}

int ft_runs_tag(ft_runs_db *db, int64_t id, const char *tag) {
    if (!tag || !*tag) return ft_error(FT_ERR_INVALID, "an empty tag");
    return exec_id(db, "INSERT OR IGNORE INTO run_tags(run_id, tag) VALUES (?1, ?2);", id, tag, "tag run");
}

int ft_runs_remove(ft_runs_db *db, int64_t id, char **run_dir) {
    if (run_dir) *run_dir = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "SELECT run_dir FROM runs WHERE id = ?1;", -1, &st, NULL) != SQLITE_OK) return ft__runs_fail(db, "select run");
    sqlite3_bind_int64(st, 1, id);
    char *dir = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) dir = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!dir) return ft_error(FT_ERR_NOT_FOUND, "%s: no run %lld", db->path, (long long)id);
    /* the metrics and tags go with the row (ON DELETE CASCADE) */
    int rc = exec_id(db, "DELETE FROM runs WHERE id = ?1;", id, NULL, "remove run");
    if (rc == FT_OK && run_dir) *run_dir = dir;
    else free(dir);
    return rc;
}
