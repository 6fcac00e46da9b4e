/* sqlite_db.h — what the two SQLite stores (the sweep store src/hpo/store.c and the run store
 * src/runs/runs_db.c, one file runs/finetune.db) share: opening a database file in WAL mode with its schema,
 * statements with errors that name the file, the integrity check, wall-clock time and the liveness of the
 * process that owns a row. */
#ifndef FT_CORE_SQLITE_DB_H
#define FT_CORE_SQLITE_DB_H
#include <sqlite3.h>

/* Opens (creating it and its folder) the database at path: busy timeout busy_ms, journal_mode=WAL,
 * synchronous=sync ("FULL", "NORMAL"), foreign keys on, then schema (CREATE ... IF NOT EXISTS statements) in one
 * immediate transaction. Switching a new file to WAL needs it alone: a second process creating it at the same
 * moment gets SQLITE_BUSY at once (the busy handler is not called for it), so that is retried for up to
 * busy_ms. On error *out is NULL and the message names path. */
int    ft__sqlite_open(sqlite3 **out, const char *path, int busy_ms, const char *sync, const char *schema);
/* sqlite3_exec of sql; FT_ERR_IO naming path on failure */
int    ft__sqlite_exec(sqlite3 *db, const char *path, const char *sql);
/* FT_ERR_IO "path: what: <sqlite's message>" */
int    ft__sqlite_fail(sqlite3 *db, const char *path, const char *what);
/* 1 when PRAGMA integrity_check answers "ok"; else 0 with the error set */
int    ft__sqlite_integrity_ok(sqlite3 *db, const char *path);
double ft__wall_now(void);      /* Unix time in seconds */
int    ft__pid_alive(long pid); /* a process with this id exists (ours or another user's) */
#endif
