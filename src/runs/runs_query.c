/* runs_query.c — what `finetune runs` prints: the list, one run in full, the CSV export (runs.h). */
#include "runs_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/strbuf.h"
#include "finetune/status.h"

/* the last value (at the largest step, then the newest row) of metric key of run id; NAN if none */
static double last_value(ft_runs_db *db, int64_t id, const char *key) {
    sqlite3_stmt *st;
    double v = NAN;
    if (sqlite3_prepare_v2(db->db, "SELECT value FROM run_metrics WHERE run_id = ?1 AND key = ?2 ORDER BY step DESC, id DESC LIMIT 1;", -1, &st,
                           NULL) != SQLITE_OK)
        return v;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *tags_of(ft_runs_db *db, int64_t id) {
    sqlite3_stmt *st;
    ft__sb b = {0};
    ft__sb_puts(&b, "");
    if (sqlite3_prepare_v2(db->db, "SELECT tag FROM run_tags WHERE run_id = ?1 ORDER BY tag;", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++) ft__sb_printf(&b, "%s%s", i ? "," : "", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    return ft__sb_take(&b, NULL);
}

static void fmt_time(double t, char *buf, size_t cap) {
    time_t s = (time_t)t;
    struct tm tmv;
    localtime_r(&s, &tmv);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tmv);
}

static void fmt_num(double v, char *buf, size_t cap) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.6g", v);
}

/* 1 when the file has table `name` (the sweep tables exist only once a sweep ran on it) */
static int has_table(ft_runs_db *db, const char *name) {
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1;", -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* FT_OK when sweep `name` is in the file */
static int check_sweep(ft_runs_db *db, const char *name) {
    int found = 0;
    if (has_table(db, "sweeps") && has_table(db, "trials")) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db->db, "SELECT 1 FROM sweeps WHERE name = ?1;", -1, &st, NULL) != SQLITE_OK) return ft__runs_fail(db, "find sweep");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return found ? FT_OK : ft_error(FT_ERR_NOT_FOUND, "%s: no sweep \"%s\"", db->path, name);
}

int ft_runs_write_list(ft_runs_db *db, const ft_runs_list_opts *o, FILE *f) {
    const char *metric = o && o->sort_metric ? o->sort_metric : "eval/val_loss";
    const char *sweep = o ? o->sweep : NULL;
    if (sweep) FT_TRY(check_sweep(db, sweep));
    char sql[1400];
    snprintf(sql, sizeof sql,
             "SELECT r.id, r.name, r.status, r.started, r.ended, (SELECT max(step) FROM run_metrics m WHERE m.run_id = r.id),"
             " (SELECT value FROM run_metrics m WHERE m.run_id = r.id AND m.key = ?3 ORDER BY step DESC, id DESC LIMIT 1) AS sortv"
             " FROM runs r WHERE (?1 IS NULL OR r.status = ?1)"
             " AND (?2 IS NULL OR EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.tag = ?2))%s"
             " ORDER BY %s LIMIT ?4;",
             sweep ? " AND r.id IN (SELECT t.run_id FROM trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ?5 AND t.run_id IS NOT NULL)" : "",
             o && o->sort_metric ? "sortv IS NULL, sortv ASC, r.id DESC" : "r.started DESC, r.id DESC");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) return ft__runs_fail(db, "list runs");
    if (o && o->status) sqlite3_bind_text(st, 1, o->status, -1, SQLITE_TRANSIENT);
    if (o && o->tag) sqlite3_bind_text(st, 2, o->tag, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, metric, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, o && o->limit > 0 ? o->limit : -1);
    if (sweep) sqlite3_bind_text(st, 5, sweep, -1, SQLITE_TRANSIENT);
    fprintf(f, "%-5s %-24s %-11s %-19s %9s %6s %10s %12s  %s\n", "id", "name", "status", "started", "seconds", "steps", "train/loss", metric,
            "tags");
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        char when[32], secs[32], loss[32], mv[32];
        fmt_time(sqlite3_column_double(st, 3), when, sizeof when);
        if (sqlite3_column_type(st, 4) == SQLITE_NULL) snprintf(secs, sizeof secs, "-");
        else snprintf(secs, sizeof secs, "%.1f", sqlite3_column_double(st, 4) - sqlite3_column_double(st, 3));
        fmt_num(last_value(db, id, "train/loss"), loss, sizeof loss);
        fmt_num(sqlite3_column_type(st, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 6), mv, sizeof mv);
        char *tags = tags_of(db, id);
        fprintf(f, "%-5lld %-24s %-11s %-19s %9s %6lld %10s %12s  %s\n", (long long)id, (const char *)sqlite3_column_text(st, 1),
                (const char *)sqlite3_column_text(st, 2), when, secs, (long long)sqlite3_column_int64(st, 5), loss, mv, tags ? tags : "");
        free(tags);
    }
    int rc = step == SQLITE_DONE ? FT_OK : ft__runs_fail(db, "list runs");
    sqlite3_finalize(st);
    return rc;
}

static const char *col(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "-";
}

int ft_runs_write_show(ft_runs_db *db, int64_t id, FILE *f) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "SELECT name, run_dir, status, pid, started, ended, command, config, model, data, data_size, data_hash, "
                                   "data_hash_kind FROM runs WHERE id = ?1;", -1, &st, NULL) != SQLITE_OK)
        return ft__runs_fail(db, "show run");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return ft_error(FT_ERR_NOT_FOUND, "%s: no run %lld", db->path, (long long)id);
    }
    char t0[32], t1[32] = "-";
    fmt_time(sqlite3_column_double(st, 4), t0, sizeof t0);
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) fmt_time(sqlite3_column_double(st, 5), t1, sizeof t1);
    char *tags = tags_of(db, id);
    fprintf(f, "run %lld: %s\n  status:   %s (pid %lld)\n  started:  %s\n  ended:    %s\n  run_dir:  %s\n  command:  %s\n  model:    %s\n",
            (long long)id, col(st, 0), col(st, 2), (long long)sqlite3_column_int64(st, 3), t0, t1, col(st, 1), col(st, 6), col(st, 8));
    fprintf(f, "  data:     %s (%lld bytes, %s %s)\n  tags:     %s\n", col(st, 9), (long long)sqlite3_column_int64(st, 10), col(st, 12), col(st, 11),
            tags && *tags ? tags : "-");
    char *config = strdup(col(st, 7));
    free(tags);
    sqlite3_finalize(st);
    /* the sweep trial(s) that trained it */
    if (has_table(db, "trials") && has_table(db, "sweeps") &&
        sqlite3_prepare_v2(db->db, "SELECT s.name, t.idx, t.config, t.rung, t.budget, t.status, t.value FROM trials t JOIN sweeps s ON s.id = t.sweep_id "
                                   "WHERE t.run_id = ?1 ORDER BY s.id, t.idx;", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char v[32];
            fmt_num(sqlite3_column_type(st, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 6), v, sizeof v);
            fprintf(f, "  sweep:    %s, trial %d (config %d, rung %d, budget %g): %s, value %s\n", col(st, 0), sqlite3_column_int(st, 1),
                    sqlite3_column_int(st, 2), sqlite3_column_int(st, 3), sqlite3_column_double(st, 4), col(st, 5), v);
        }
        sqlite3_finalize(st);
    }
    fprintf(f, "config:\n%s\n", config ? config : "-");
    free(config);
    /* the last value of each metric, and how many values it has */
    if (sqlite3_prepare_v2(db->db, "SELECT key, count(*), max(step) FROM run_metrics WHERE run_id = ?1 GROUP BY key ORDER BY key;", -1, &st, NULL) !=
        SQLITE_OK)
        return ft__runs_fail(db, "show metrics");
    sqlite3_bind_int64(st, 1, id);
    fprintf(f, "metrics (last value, at step, values logged):\n");
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        char v[32];
        fmt_num(last_value(db, id, key), v, sizeof v);
        fprintf(f, "  %-28s %14s  step %-6lld %5d\n", key, v, (long long)sqlite3_column_int64(st, 2), sqlite3_column_int(st, 1));
    }
    int rc = step == SQLITE_DONE ? FT_OK : ft__runs_fail(db, "show metrics");
    sqlite3_finalize(st);
    return rc;
}

/* a CSV field: quoted when it holds a comma, quote or newline */
static void csv_field(FILE *f, const char *s, int first) {
    if (!first) fputc(',', f);
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int ft_runs_write_csv(ft_runs_db *db, FILE *f) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "SELECT DISTINCT key FROM run_metrics ORDER BY key;", -1, &st, NULL) != SQLITE_OK) return ft__runs_fail(db, "metric keys");
    char **keys = NULL;
    int nk = 0, rc = FT_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nkeys = realloc(keys, sizeof *keys * (size_t)(nk + 1));
        if (!nkeys || !(nkeys[nk] = strdup((const char *)sqlite3_column_text(st, 0)))) {
            keys = nkeys ? nkeys : keys;
            rc = ft_error(FT_ERR_NOMEM, "out of memory");
            break;
        }
        keys = nkeys;
        nk++;
    }
    sqlite3_finalize(st);
    if (rc == FT_OK && sqlite3_prepare_v2(db->db, "SELECT id, name, status, started, ended, run_dir, model, data FROM runs ORDER BY started DESC, id DESC;",
                                          -1, &st, NULL) != SQLITE_OK)
        rc = ft__runs_fail(db, "export runs");
    if (rc == FT_OK) {
        const char *head[] = {"id", "name", "status", "started", "ended", "run_dir", "model", "data", "tags"};
        for (int i = 0; i < 9; i++) csv_field(f, head[i], i == 0);
        for (int k = 0; k < nk; k++) csv_field(f, keys[k], 0);
        fputc('\n', f);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            char buf[64];
            for (int i = 0; i < 8; i++) {
                const char *s = (const char *)sqlite3_column_text(st, i);
                if (i == 3 || i == 4) {
                    if (s) snprintf(buf, sizeof buf, "%.3f", sqlite3_column_double(st, i));
                    s = s ? buf : NULL;
                }
                csv_field(f, s, i == 0);
            }
            char *tags = tags_of(db, id);
            csv_field(f, tags, 0);
            free(tags);
            for (int k = 0; k < nk; k++) {
                double v = last_value(db, id, keys[k]);
                if (isnan(v)) csv_field(f, NULL, 0);
                else {
                    /* the shortest of %.15g .. %.17g that reads back as v */
                    for (int p = 15; p <= 17; p++) {
                        snprintf(buf, sizeof buf, "%.*g", p, v);
                        if (strtod(buf, NULL) == v) break;
                    }
                    csv_field(f, buf, 0);
                }
            }
            fputc('\n', f);
        }
        sqlite3_finalize(st);
    }
    for (int k = 0; k < nk; k++) free(keys[k]);
    free(keys);
    return rc;
}
