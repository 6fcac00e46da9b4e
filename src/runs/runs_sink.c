/* runs_sink.c — the train sink that records a run into the run store (runs.h).
 *
 * Recording must never fail or slow the training: the sink opens the store with a 5 s busy timeout and
 * synchronous=NORMAL (in WAL mode still consistent after a crash of the process; only a power loss may
 * drop the newest transactions), every callback returns FT_OK, and the first database error is written
 * once to the warn stream, after which the sink records nothing more. Data fingerprint: CRC-32C of the
 * whole file for data up to 100 MB ("crc32c"; a folder: its regular files in name order, each relative
 * name then its bytes, up to 10,000 files), the total size and newest modification time above
 * ("size+mtime", "SIZE:MTIME"). */
#include "core/sqlite_db.h"
#include "runs_internal.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/crc32c.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#define HASH_LIMIT (100LL << 20)

typedef struct recorder {
    char       *db_path, *command;
    int         resume, disabled, started, ended;
    FILE       *warn;
    ft_runs_db *db;
    int64_t     run_id, last_step, last_row, rewind_to;
} recorder;

static void give_up(recorder *r, const char *why) {
    if (r->disabled) return;
    r->disabled = 1;
    if (r->warn) fprintf(r->warn, "finetune: warning: run store: %s; training goes on without recording\n", why);
    ft_runs_close(r->db);
    r->db = NULL;
}

/* CRC-32C of a file's bytes continuing from c; 0 on a read error (*ok cleared) */
static uint32_t crc_file(const char *path, uint32_t c, int *ok) {
    FILE *f = fopen(path, "rb");
    if (!f) { *ok = 0; return c; }
    static __thread unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) c = ft__crc32c(c, buf, n);
    if (ferror(f)) *ok = 0;
    fclose(f);
    return c;
}

typedef struct walk {
    int64_t size, mtime;
    uint32_t crc;
    int ok, hash, files;
} walk;

/* a folder: every regular file below it in name order; the CRC chains each relative name and its bytes */
static void walk_dir(const char *dir, const char *rel, walk *w) {
    struct dirent **e;
    int n = scandir(dir, &e, NULL, alphasort);
    if (n < 0) { w->ok = 0; return; }
    for (int i = 0; i < n; i++) {
        const char *nm = e[i]->d_name;
        char path[PATH_MAX], r[PATH_MAX];
        struct stat st;
        if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))) { free(e[i]); continue; }
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", nm);
        if (w->ok && w->files < 10000 && lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) walk_dir(path, r, w);
            else if (S_ISREG(st.st_mode)) {
                w->files++;
                w->size += st.st_size;
                if (st.st_mtime > w->mtime) w->mtime = st.st_mtime;
                if (w->hash) {
                    w->crc = ft__crc32c(w->crc, r, strlen(r) + 1);
                    w->crc = crc_file(path, w->crc, &w->ok);
                }
            }
        }
        free(e[i]);
    }
    free(e);
}

/* size and fingerprint of the data (a file, or a folder's files); hash "" when it cannot be read */
static void fingerprint(const char *path, int64_t *size, char *hash, size_t cap, const char **kind) {
    struct stat st;
    *size = -1;
    hash[0] = 0;
    *kind = NULL;
    if (!path[0] || stat(path, &st) != 0) return;
    walk w = {0, 0, 0, 1, 0, 0};
    if (S_ISREG(st.st_mode)) {
        w.size = st.st_size;
        w.mtime = st.st_mtime;
    } else if (S_ISDIR(st.st_mode)) {
        walk_dir(path, "", &w);
        if (!w.ok) return;
    } else return;
    *size = w.size;
    if (w.size > HASH_LIMIT) {
        snprintf(hash, cap, "%lld:%lld", (long long)w.size, (long long)w.mtime);
        *kind = "size+mtime";
        return;
    }
    w.hash = 1;
    w.crc = 0;
    if (S_ISREG(st.st_mode)) w.crc = crc_file(path, 0, &w.ok);
    else { w.files = 0; w.size = 0; walk_dir(path, "", &w); }
    if (!w.ok) return;
    snprintf(hash, cap, "%08x", w.crc);
    *kind = "crc32c";
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
    return s && *s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int64_t max_row(recorder *r) {
    sqlite3_stmt *st;
    int64_t m = 0;
    if (sqlite3_prepare_v2(r->db->db, "SELECT coalesce(max(id), 0) FROM run_metrics WHERE run_id = ?1;", -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_int64(st, 1, r->run_id);
    if (sqlite3_step(st) == SQLITE_ROW) m = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return m;
}

/* the run's row: a resumed run takes back the newest row of its directory, else a new one */
static int start_row(recorder *r, const ft_train_config *cfg) {
    char dir[PATH_MAX], name[PATH_MAX], cpath[PATH_MAX + 16], hash[64];
    if (!realpath(cfg->out, dir)) snprintf(dir, sizeof dir, "%s", cfg->out);
    snprintf(name, sizeof name, "%s", dir);
    char *base = basename(name);
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    char *config = NULL;
    if (ft_file_read_all(cpath, &config, NULL) < 0) config = NULL;
    int64_t size;
    const char *kind;
    fingerprint(cfg->data, &size, hash, sizeof hash, &kind);
    sqlite3 *db = r->db->db;
    int rc = ft__runs_exec(r->db, "BEGIN IMMEDIATE;");
    if (rc < 0) { free(config); return rc; }
    sqlite3_stmt *st = NULL;
    r->run_id = -1;
    if (r->resume) {
        if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE run_dir = ?1 ORDER BY id DESC LIMIT 1;", -1, &st, NULL) != SQLITE_OK) {
            rc = ft__runs_fail(r->db, "find run");
            goto out;
        }
        sqlite3_bind_text(st, 1, dir, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) r->run_id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r->run_id >= 0) {
        if (sqlite3_prepare_v2(db, "UPDATE runs SET status = 'running', pid = ?2, ended = NULL, config = coalesce(?3, config) WHERE id = ?1;",
                               -1, &st, NULL) != SQLITE_OK) { rc = ft__runs_fail(r->db, "update run"); goto out; }
        sqlite3_bind_int64(st, 1, r->run_id);
        sqlite3_bind_int64(st, 2, getpid());
        bind_text_or_null(st, 3, config);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = ft__runs_fail(r->db, "update run"); goto out; }
        sqlite3_finalize(st);
        st = NULL;
        /* the metrics logged after the checkpoint the run continues from are dropped, as in metrics.jsonl */
        if (sqlite3_prepare_v2(db, "DELETE FROM run_metrics WHERE run_id = ?1 AND id > ?2;", -1, &st, NULL) != SQLITE_OK) {
            rc = ft__runs_fail(r->db, "rewind metrics");
            goto out;
        }
        sqlite3_bind_int64(st, 1, r->run_id);
        sqlite3_bind_int64(st, 2, r->rewind_to >= 0 ? r->rewind_to : INT64_MAX);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = ft__runs_fail(r->db, "rewind metrics"); goto out; }
    } else {
        if (sqlite3_prepare_v2(db, "INSERT INTO runs(name, run_dir, status, pid, started, command, config, model, data, data_size, data_hash, "
                                   "data_hash_kind) VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11);", -1, &st, NULL) != SQLITE_OK) {
            rc = ft__runs_fail(r->db, "insert run");
            goto out;
        }
        sqlite3_bind_text(st, 1, base, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, dir, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, getpid());
        sqlite3_bind_double(st, 4, ft__wall_now());
        bind_text_or_null(st, 5, r->command);
        bind_text_or_null(st, 6, config);
        bind_text_or_null(st, 7, cfg->model);
        bind_text_or_null(st, 8, cfg->data);
        if (size >= 0) sqlite3_bind_int64(st, 9, size);
        else sqlite3_bind_null(st, 9);
        bind_text_or_null(st, 10, hash);
        bind_text_or_null(st, 11, kind);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = ft__runs_fail(r->db, "insert run"); goto out; }
        r->run_id = sqlite3_last_insert_rowid(db);
    }
out:
    sqlite3_finalize(st);
    free(config);
    if (rc == FT_OK) rc = ft__runs_exec(r->db, "COMMIT;");
    else ft__runs_exec(r->db, "ROLLBACK;");
    if (rc == FT_OK) r->last_row = max_row(r);
    return rc;
}

static int rs_start(void *u, const ft_train_config *cfg, const char *defaults_text) {
    (void)defaults_text;
    recorder *r = u;
    if (r->disabled || r->started) return FT_OK;
    r->started = 1;
    int rc = ft__runs_open_ex(r->db_path, 5000, "NORMAL", &r->db);
    if (rc == FT_OK) rc = start_row(r, cfg);
    if (rc < 0) give_up(r, ft_last_error());
    return FT_OK;
}

/* one metrics line: a row per numeric field but "step", key "<type>/<field>" (one transaction) */
static int rs_record(void *u, const char *json) {
    recorder *r = u;
    if (r->disabled || !r->db || r->run_id < 0) return FT_OK;
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return FT_OK; }
    const cJSON *ty = cJSON_GetObjectItem(j, "type"), *sp = cJSON_GetObjectItem(j, "step");
    const char *type = cJSON_IsString(ty) ? ty->valuestring : "record";
    if (cJSON_IsNumber(sp)) r->last_step = (int64_t)sp->valuedouble;
    sqlite3_stmt *st = NULL;
    int rc = ft__runs_exec(r->db, "BEGIN IMMEDIATE;");
    if (rc == FT_OK && sqlite3_prepare_v2(r->db->db, "INSERT INTO run_metrics(run_id, step, key, value) VALUES (?1, ?2, ?3, ?4);", -1, &st,
                                          NULL) != SQLITE_OK)
        rc = ft__runs_fail(r->db, "insert metric");
    for (const cJSON *c = j->child; rc == FT_OK && c; c = c->next) {
        if (!cJSON_IsNumber(c) || !c->string || !strcmp(c->string, "step")) continue;
        char key[256];
        snprintf(key, sizeof key, "%s/%s", type, c->string);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r->run_id);
        sqlite3_bind_int64(st, 2, r->last_step);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 4, c->valuedouble);
        if (sqlite3_step(st) != SQLITE_DONE) rc = ft__runs_fail(r->db, "insert metric");
    }
    sqlite3_finalize(st);
    cJSON_Delete(j);
    if (rc == FT_OK) rc = ft__runs_exec(r->db, "COMMIT;");
    else if (r->db) ft__runs_exec(r->db, "ROLLBACK;");
    if (rc == FT_OK) r->last_row = sqlite3_last_insert_rowid(r->db->db) > r->last_row ? sqlite3_last_insert_rowid(r->db->db) : r->last_row;
    else give_up(r, ft_last_error());
    return FT_OK;
}

static int rs_step(void *u, const ft_train_step_info *s) {
    if (!s->logged) return FT_OK;
    char line[512];
    if (ft_train_step_json(s, line, sizeof line) < 0) return FT_OK;
    return rs_record(u, line);
}

static int rs_eval(void *u, const ft_train_eval *e) { return rs_record(u, e->json); }

static int64_t rs_position(void *u) { return ((recorder *)u)->last_row; }

static int rs_rewind(void *u, int64_t pos) {
    ((recorder *)u)->rewind_to = pos;
    return FT_OK;
}

static void set_status(recorder *r, const char *status) {
    if (r->disabled || !r->db || r->run_id < 0) return;
    sqlite3_stmt *st = NULL;
    int rc = ft__runs_exec(r->db, "BEGIN IMMEDIATE;");
    if (rc == FT_OK && sqlite3_prepare_v2(r->db->db, "UPDATE runs SET status = ?2, ended = ?3 WHERE id = ?1;", -1, &st, NULL) != SQLITE_OK)
        rc = ft__runs_fail(r->db, "update run");
    if (rc == FT_OK) {
        sqlite3_bind_int64(st, 1, r->run_id);
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, ft__wall_now());
        if (sqlite3_step(st) != SQLITE_DONE) rc = ft__runs_fail(r->db, "update run");
    }
    sqlite3_finalize(st);
    if (rc == FT_OK) rc = ft__runs_exec(r->db, "COMMIT;");
    else ft__runs_exec(r->db, "ROLLBACK;");
    if (rc < 0) give_up(r, ft_last_error());
}

static int rs_end(void *u, const ft_train_result *res, int status) {
    recorder *r = u;
    r->ended = 1;
    set_status(r, status == FT_OK ? (res && res->interrupted ? "interrupted" : "finished")
                                  : status == FT_ERR_INTERRUPTED ? "interrupted" : "failed");
    return FT_OK;
}

static void rs_close(void *u) {
    recorder *r = u;
    if (r->started && !r->ended) set_status(r, "failed");
    ft_runs_close(r->db);
    free(r->db_path);
    free(r->command);
    free(r);
}

int ft_train_sink_runstore(ft_train_sink *out, const char *db_path, const char *command, int resume, FILE *warn) {
    memset(out, 0, sizeof *out);
    recorder *r = calloc(1, sizeof *r);
    if (!r || !(r->db_path = strdup(db_path)) || (command && !(r->command = strdup(command)))) {
        if (r) free(r->db_path);
        free(r);
        return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    r->resume = resume;
    r->warn = warn;
    r->run_id = -1;
    r->rewind_to = -1;
    *out = (ft_train_sink){.name = "runstore", .user = r, .on_start = rs_start, .on_step = rs_step, .on_eval = rs_eval,
                           .on_record = rs_record, .on_end = rs_end, .position = rs_position, .rewind = rs_rewind, .close = rs_close};
    return FT_OK;
}
