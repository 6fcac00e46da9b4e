/* sqlite_db.c — the shared part of the SQLite stores (sqlite_db.h). */
#include "core/sqlite_db.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "finetune/fileio.h"
#include "finetune/status.h"

int ft__sqlite_fail(sqlite3 *db, const char *path, const char *what) {
    return ft_error(FT_ERR_IO, "%s: %s: %s", path, what, sqlite3_errmsg(db));
}

int ft__sqlite_exec(sqlite3 *db, const char *path, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = ft_error(FT_ERR_IO, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return FT_OK;
}

int ft__sqlite_open(sqlite3 **out, const char *path, int busy_ms, const char *sync, const char *schema) {
    *out = NULL;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) return ft_error(FT_ERR_RANGE, "%s: path too long", path);
    char *d = dirname(dir);
    if (strcmp(d, ".") != 0 && ft_mkdirs(d) < 0) return ft_error_wrap(FT_ERR_IO, "%s", path);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        int rc = ft_error(FT_ERR_IO, "%s: cannot open the database: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, busy_ms);
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;", sync);
    int rc;
    for (int waited = 0;; waited += 20) {
        rc = ft__sqlite_exec(db, path, pragmas);
        int e = sqlite3_errcode(db);
        if (rc == FT_OK || (e != SQLITE_BUSY && e != SQLITE_LOCKED) || waited >= busy_ms) break;
        usleep(20000);
    }
    if (rc == FT_OK) rc = ft__sqlite_exec(db, path, "BEGIN IMMEDIATE;");
    if (rc == FT_OK) {
        rc = ft__sqlite_exec(db, path, schema);
        if (rc == FT_OK) rc = ft__sqlite_exec(db, path, "COMMIT;");
        else ft__sqlite_exec(db, path, "ROLLBACK;");
    }
    if (rc < 0) { sqlite3_close(db); return rc; }
    *out = db;
    return FT_OK;
}

int ft__sqlite_integrity_ok(sqlite3 *db, const char *path) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check;", -1, &st, NULL) != SQLITE_OK) { ft__sqlite_fail(db, path, "integrity_check"); return 0; }
    int ok = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        ok = r && strcmp(r, "ok") == 0;
        if (!ok) ft_error(FT_ERR_FORMAT, "%s: integrity_check: %s", path, r ? r : "?");
    }
    sqlite3_finalize(st);
    return ok;
}

double ft__wall_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

int ft__pid_alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }
