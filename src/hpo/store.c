/* store.c — the sweep state in SQLite (Debian's libsqlite3).
 *
 * Tables (one database, runs/finetune.db by default, shared with the run store of runs.h: a trial that
 * trains points at its run through trials.run_id):
 *   sweeps(id, name UNIQUE, config JSON, status 'running' | 'finished' | 'stopped', jobs, owner_pid,
 *          created, updated)
 *   trials(id, sweep_id, idx, config, bracket, rung, budget, params JSON, x JSON (the values exactly,
 *          %.17g), status 'pending' | 'running' | 'finished' | 'failed', value, started, finished,
 *          output (the tail of the command's stdout), run_id (NULL for --objective-cmd trials), parent (the
 *          trial it continued from, NULL if none), cost (the resource it trained; NULL in older files: budget))
 * WAL mode, synchronous=FULL, a 30 s busy timeout, and every change in its own transaction (BEGIN
 * IMMEDIATE ... COMMIT), so a process killed at any moment leaves either the change or nothing, and
 * several processes can write one file. A sweep belongs to one process at a time: owner_pid is set when a
 * process takes it and is honoured while that process lives. */
#include "store.h"

#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/sqlite_db.h"
#include "core/strbuf.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

struct ft_hpo_db {
    sqlite3 *db;
    char     path[4096];
};

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS sweeps("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, config TEXT NOT NULL, status TEXT NOT NULL,"
    " jobs INTEGER NOT NULL DEFAULT 1, owner_pid INTEGER, created REAL NOT NULL, updated REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trials("
    " id INTEGER PRIMARY KEY, sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL, config INTEGER NOT NULL, bracket INTEGER NOT NULL, rung INTEGER NOT NULL,"
    " budget REAL NOT NULL, params TEXT NOT NULL, x TEXT NOT NULL, status TEXT NOT NULL, value REAL,"
    " started REAL, finished REAL, output TEXT, run_id INTEGER, parent INTEGER, cost REAL, UNIQUE(sweep_id, idx));"
    "CREATE INDEX IF NOT EXISTS trials_sweep ON trials(sweep_id, idx);";

static const char *k_status[] = {"pending", "running", "finished", "failed"};

static int sql_fail(ft_hpo_db *db, const char *what) { return ft__sqlite_fail(db->db, db->path, what); }

static int exec(ft_hpo_db *db, const char *sql) { return ft__sqlite_exec(db->db, db->path, sql); }

static int column_exists(sqlite3 *db, const char *table, const char *column) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s';", table, column);
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n > 0;
}

int ft_hpo_db_open(const char *path, ft_hpo_db **out) {
    *out = NULL;
    if (strlen(path) >= sizeof ((ft_hpo_db *)0)->path) return ft_error(FT_ERR_RANGE, "%s: path too long", path);
    ft_hpo_db *db = calloc(1, sizeof *db);
    if (!db) return ft_error(FT_ERR_NOMEM, "%s: out of memory", path);
    strcpy(db->path, path);
    int rc = ft__sqlite_open(&db->db, path, 30000, "FULL", k_schema);
    if (rc < 0) { free(db); return rc; }
    /* files made before trials had parent / cost: add the columns (an error here is another process having
     * just added them, or a read-only file: the columns are then there or not needed) */
    if (!column_exists(db->db, "trials", "cost")) {
        sqlite3_exec(db->db, "ALTER TABLE trials ADD COLUMN parent INTEGER;", NULL, NULL, NULL);
        sqlite3_exec(db->db, "ALTER TABLE trials ADD COLUMN cost REAL;", NULL, NULL, NULL);
    }
    *out = db;
    return FT_OK;
}

void ft_hpo_db_close(ft_hpo_db *db) {
    if (!db) return;
    if (db->db) sqlite3_close(db->db);
    free(db);
}

int ft_hpo_db_check(ft_hpo_db *db) { return ft__sqlite_integrity_ok(db->db, db->path); }

/* 1 when the two configs are equal apart from their "budget" objects (decisions do not depend on it) */
static int same_but_budget(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return 1;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    int same = 0;
    if (x && y) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, "budget");
        cJSON_DeleteItemFromObjectCaseSensitive(y, "budget");
        same = cJSON_Compare(x, y, 1);
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

int ft__hpo_store_take(ft_hpo_db *db, const char *name, const char *config, int create, int *jobs,
                       long long *sweep_id, char **stored_config) {
    *sweep_id = -1;
    if (stored_config) *stored_config = NULL;
    FT_TRY(exec(db, "BEGIN IMMEDIATE;"));
    sqlite3_stmt *st = NULL;
    int rc = FT_OK;
    if (sqlite3_prepare_v2(db->db, "SELECT id, config, jobs, owner_pid FROM sweeps WHERE name = ?1;", -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(db, "select sweep");
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    double now = ft__wall_now();
    if (step == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        const char *cfg = (const char *)sqlite3_column_text(st, 1);
        int stored_jobs = sqlite3_column_int(st, 2);
        long owner = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : (long)sqlite3_column_int64(st, 3);
        if (owner && owner != (long)getpid() && ft__pid_alive(owner)) {
            rc = ft_error(FT_ERR_BUSY, "%s: sweep \"%s\" is being run by process %ld", db->path, name, owner);
            goto out;
        }
        if (config && cfg && !same_but_budget(config, cfg)) {
            rc = ft_error(FT_ERR_INVALID, "%s: sweep \"%s\" exists with another config (more than its budget differs); give it "
                          "another \"name\", or continue it with `finetune sweep --resume %s --db %s` (its stored config)",
                          db->path, name, name, db->path);
            goto out;
        }
        if (stored_config && cfg && !(*stored_config = strdup(cfg))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto out; }
        if (*jobs <= 0) *jobs = stored_jobs > 0 ? stored_jobs : 1;
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db->db, "UPDATE sweeps SET owner_pid = ?1, status = 'running', jobs = ?2, updated = ?3, "
                                       "config = coalesce(?5, config) WHERE id = ?4;", -1, &st, NULL) != SQLITE_OK) {
            rc = sql_fail(db, "update sweep");
            goto out;
        }
        sqlite3_bind_int64(st, 1, getpid());
        sqlite3_bind_int(st, 2, *jobs);
        sqlite3_bind_double(st, 3, now);
        sqlite3_bind_int64(st, 4, id);
        if (config) sqlite3_bind_text(st, 5, config, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_null(st, 5);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = sql_fail(db, "update sweep"); goto out; }
        *sweep_id = id;
    } else if (step == SQLITE_DONE) {
        if (!create || !config) {
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: no sweep named \"%s\"", db->path, name);
            goto out;
        }
        if (*jobs <= 0) *jobs = 1;
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db->db, "INSERT INTO sweeps(name, config, status, jobs, owner_pid, created, updated) "
                                       "VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?5);", -1, &st, NULL) != SQLITE_OK) {
            rc = sql_fail(db, "insert sweep");
            goto out;
        }
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, config, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, *jobs);
        sqlite3_bind_int64(st, 4, getpid());
        sqlite3_bind_double(st, 5, now);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = sql_fail(db, "insert sweep"); goto out; }
        *sweep_id = sqlite3_last_insert_rowid(db->db);
        if (stored_config && !(*stored_config = strdup(config))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto out; }
    } else {
        rc = sql_fail(db, "select sweep");
    }
out:
    sqlite3_finalize(st);
    if (rc == FT_OK) rc = exec(db, "COMMIT;");
    if (rc < 0) {
        exec(db, "ROLLBACK;");
        if (stored_config) { free(*stored_config); *stored_config = NULL; }
    }
    return rc;
}

int ft__hpo_store_release(ft_hpo_db *db, long long sweep_id, const char *status) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "UPDATE sweeps SET owner_pid = NULL, status = ?1, updated = ?2 WHERE id = ?3;", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "release sweep");
    sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 2, ft__wall_now());
    sqlite3_bind_int64(st, 3, sweep_id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? FT_OK : sql_fail(db, "release sweep");
    sqlite3_finalize(st);
    return rc;
}

static char *x_json(const ft_hpo_spec *s, const double *x) {
    ft__sb b = {0};
    ft__sb_putc(&b, '[');
    for (int j = 0; j < s->n_params; j++) ft__sb_printf(&b, j ? ", %.17g" : "%.17g", x[j]);
    ft__sb_putc(&b, ']');
    return ft__sb_take(&b, NULL);
}

int ft__hpo_store_insert(ft_hpo_db *db, long long sweep_id, const ft_hpo_spec *s, const ft_hpo_trial *t) {
    char *params = ft_hpo_params_json(s, t->x), *xj = x_json(s, t->x);
    if (!params || !xj) { free(params); free(xj); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    sqlite3_stmt *st = NULL;
    int rc = exec(db, "BEGIN IMMEDIATE;");
    if (rc < 0) goto out;
    if (sqlite3_prepare_v2(db->db, "INSERT INTO trials(sweep_id, idx, config, bracket, rung, budget, params, x, status, started, parent, cost) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);", -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(db, "insert trial");
        goto out;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    sqlite3_bind_int(st, 2, t->idx);
    sqlite3_bind_int(st, 3, t->config);
    sqlite3_bind_int(st, 4, t->bracket);
    sqlite3_bind_int(st, 5, t->rung);
    sqlite3_bind_double(st, 6, t->budget);
    sqlite3_bind_text(st, 7, params, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, xj, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, k_status[t->status], -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 10, t->started);
    if (t->parent >= 0) sqlite3_bind_int(st, 11, t->parent);
    else sqlite3_bind_null(st, 11);
    sqlite3_bind_double(st, 12, t->cost);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sql_fail(db, "insert trial");
out:
    sqlite3_finalize(st);
    if (rc == FT_OK) rc = exec(db, "COMMIT;");
    else if (rc != FT_OK && st) exec(db, "ROLLBACK;");
    free(params);
    free(xj);
    return rc;
}

int ft__hpo_store_update(ft_hpo_db *db, long long sweep_id, const ft_hpo_trial *t, const char *output) {
    sqlite3_stmt *st = NULL;
    int rc = exec(db, "BEGIN IMMEDIATE;");
    if (rc < 0) return rc;
    if (sqlite3_prepare_v2(db->db, "UPDATE trials SET status = ?1, value = ?2, started = ?3, finished = ?4, output = ?5, parent = ?8, cost = ?9 "
                                   "WHERE sweep_id = ?6 AND idx = ?7;", -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(db, "update trial");
    } else {
        sqlite3_bind_text(st, 1, k_status[t->status], -1, SQLITE_STATIC);
        if (isfinite(t->value)) sqlite3_bind_double(st, 2, t->value);
        else sqlite3_bind_null(st, 2);
        sqlite3_bind_double(st, 3, t->started);
        if (t->finished > 0) sqlite3_bind_double(st, 4, t->finished);
        else sqlite3_bind_null(st, 4);
        if (output) sqlite3_bind_text(st, 5, output, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, sweep_id);
        sqlite3_bind_int(st, 7, t->idx);
        if (t->parent >= 0) sqlite3_bind_int(st, 8, t->parent);
        else sqlite3_bind_null(st, 8);
        sqlite3_bind_double(st, 9, t->cost);
        if (sqlite3_step(st) != SQLITE_DONE) rc = sql_fail(db, "update trial");
    }
    sqlite3_finalize(st);
    if (rc == FT_OK) rc = exec(db, "COMMIT;");
    else exec(db, "ROLLBACK;");
    return rc;
}

int ft__hpo_store_link_run(ft_hpo_db *db, long long sweep_id, int idx, const char *run_dir) {
    char dir[PATH_MAX];
    if (!realpath(run_dir, dir)) return FT_OK;   /* the trial never made its directory: no run */
    sqlite3_stmt *st = NULL;
    /* one statement: atomic by itself; it does not prepare when the file has no `runs` table */
    if (sqlite3_prepare_v2(db->db, "UPDATE trials SET run_id = (SELECT id FROM runs WHERE run_dir = ?1 ORDER BY id DESC LIMIT 1) "
                                   "WHERE sweep_id = ?2 AND idx = ?3 AND run_id IS NULL;", -1, &st, NULL) != SQLITE_OK)
        return FT_OK;
    sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, sweep_id);
    sqlite3_bind_int(st, 3, idx);
    int rc = sqlite3_step(st) == SQLITE_DONE ? FT_OK : sql_fail(db, "link trial to its run");
    sqlite3_finalize(st);
    return rc;
}

static int parse_x(const char *text, int n_params, double *x) {
    cJSON *a = cJSON_Parse(text);
    int ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == n_params;
    int j = 0;
    for (const cJSON *c = ok ? a->child : NULL; c; c = c->next, j++) {
        if (!cJSON_IsNumber(c)) { ok = 0; break; }
        x[j] = c->valuedouble;
    }
    cJSON_Delete(a);
    return ok;
}

int ft__hpo_store_trials(ft_hpo_db *db, long long sweep_id, int n_params, ft_hpo_trial **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "SELECT idx, config, bracket, rung, budget, x, status, value, started, finished, parent, cost "
                                   "FROM trials WHERE sweep_id = ?1 ORDER BY idx;", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, "select trials");
    sqlite3_bind_int64(st, 1, sweep_id);
    ft_hpo_trial *t = NULL;
    int n = 0, cap = 0, rc = FT_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            ft_hpo_trial *nt = realloc(t, sizeof *t * (size_t)cap);
            if (!nt) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
            t = nt;
        }
        ft_hpo_trial *r = &t[n];
        memset(r, 0, sizeof *r);
        r->idx = sqlite3_column_int(st, 0);
        r->config = sqlite3_column_int(st, 1);
        r->bracket = sqlite3_column_int(st, 2);
        r->rung = sqlite3_column_int(st, 3);
        r->budget = sqlite3_column_double(st, 4);
        r->x = malloc(sizeof *r->x * (size_t)n_params);
        if (!r->x) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        n++;
        if (r->idx != n - 1) { rc = ft_error(FT_ERR_FORMAT, "%s: sweep %lld: trial %d is missing", db->path, sweep_id, n - 1); break; }
        const char *xt = (const char *)sqlite3_column_text(st, 5);
        if (!xt || !parse_x(xt, n_params, r->x)) { rc = ft_error(FT_ERR_FORMAT, "%s: trial %d: bad x column", db->path, r->idx); break; }
        const char *stt = (const char *)sqlite3_column_text(st, 6);
        r->status = FT_HPO_PENDING;
        for (int k = 0; k < 4; k++) if (stt && strcmp(stt, k_status[k]) == 0) r->status = k;
        r->value = sqlite3_column_type(st, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 7);
        r->started = sqlite3_column_double(st, 8);
        r->finished = sqlite3_column_double(st, 9);
        r->parent = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 10);
        r->cost = sqlite3_column_type(st, 11) == SQLITE_NULL ? r->budget : sqlite3_column_double(st, 11);
    }
    if (rc == FT_OK && step != SQLITE_DONE) rc = sql_fail(db, "select trials");
    sqlite3_finalize(st);
    if (rc < 0) {
        ft_hpo_trials_free(t, n);
        return rc;
    }
    *out = t;
    *n_out = n;
    return FT_OK;
}

int ft__hpo_store_find(ft_hpo_db *db, const char *name, long long *sweep_id, char **config) {
    sqlite3_stmt *st;
    const char *sql = name ? "SELECT id, config FROM sweeps WHERE name = ?1;" : "SELECT id, config FROM sweeps ORDER BY created DESC, id DESC LIMIT 1;";
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return sql_fail(db, "select sweep");
    if (name) sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *sweep_id = sqlite3_column_int64(st, 0);
        *config = strdup((const char *)sqlite3_column_text(st, 1));
        rc = *config ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    } else {
        rc = name ? ft_error(FT_ERR_NOT_FOUND, "%s: no sweep named \"%s\"", db->path, name)
                  : ft_error(FT_ERR_NOT_FOUND, "%s: no sweeps", db->path);
    }
    sqlite3_finalize(st);
    return rc;
}

int ft_hpo_sweep_load(ft_hpo_db *db, const char *name, ft_hpo_spec **spec, ft_hpo_trial **trials, int *n) {
    *spec = NULL;
    *trials = NULL;
    *n = 0;
    long long id;
    char *cfg;
    FT_TRY(ft__hpo_store_find(db, name, &id, &cfg));
    int rc = ft_hpo_spec_parse(cfg, db->path, spec);
    free(cfg);
    if (rc < 0) return rc;
    rc = ft__hpo_store_trials(db, id, (*spec)->n_params, trials, n);
    if (rc < 0) { ft_hpo_spec_free(*spec); *spec = NULL; }
    return rc;
}
