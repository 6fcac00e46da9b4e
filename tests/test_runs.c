/* test_runs.c — the run store (runs.h) and `finetune runs`:
 *   recorded_equals_jsonl   a 3-step train of the embedded stories260K is one "finished" row in
 *                           finetune.db next to its run directory (the default rule), with every numeric
 *                           field of every metrics.jsonl line as a (step, key, value) row, in order
 *   kill9_marked_killed     a train killed with kill -9 mid-run stays "running" in the file; the next
 *                           open (`finetune runs list`) shows it "killed"; `train --resume` takes the row
 *                           back, finishes it, and its rows equal metrics.jsonl again (200 train lines)
 *   concurrent_trainings    two trainings at once into two directories on one database: both recorded
 *                           in full, PRAGMA integrity_check ok
 *   cli_actions             list (--status, --tag, --sort metric:KEY, --limit), show, tag, compare (HTML:
 *                           a line per run in each chart, differing config keys highlighted), rm (with
 *                           and without --keep-dir), export --csv
 *   bad_db_only_warns       a corrupt database file, or one that cannot be created, warns once and the
 *                           training succeeds; --no-db writes no database */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util/testutil.h"

#include "finetune/fileio.h"
#include "finetune/runs.h"
#include "finetune/status.h"

#define TRAIN_ARGS "--max-steps 3 --seq-len 64 --batch-size 4 --samples 0"

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_runs");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

/* one integer or text result of sql on the database at path (opened read-only, no run-store logic) */
static long long query_int(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static char *query_text(const char *path, const char *sql) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *v = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* checks that run `name`'s metric rows equal run_dir/metrics.jsonl (every numeric field but step, in
 * order, key "<type>/<field>"); returns the number of rows */
static int check_metrics(const char *db_path, const char *run_dir, const char *name) {
    char path[700], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    assert_int_equal(ft_file_read_all(path, &text, NULL), FT_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT m.step, m.key, m.value FROM run_metrics m JOIN runs r ON r.id = m.run_id "
                                            "WHERE r.name = ?1 ORDER BY m.id;", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rows = 0;
    long long step = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const cJSON *ty = cJSON_GetObjectItem(j, "type"), *sp = cJSON_GetObjectItem(j, "step");
        if (cJSON_IsNumber(sp)) step = (long long)sp->valuedouble;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (!cJSON_IsNumber(c) || !strcmp(c->string, "step")) continue;
            char key[128];
            snprintf(key, sizeof key, "%s/%s", ty->valuestring, c->string);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            assert_int_equal(sqlite3_column_int64(st, 0), step);
            assert_string_equal((const char *)sqlite3_column_text(st, 1), key);
            assert_true(sqlite3_column_double(st, 2) == c->valuedouble);
            rows++;
        }
        cJSON_Delete(j);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);   /* nothing more than the file */
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(text);
    return rows;
}

static void recorded_equals_jsonl(void **state) {
    (void)state;
    char run[512], db[512];
    snprintf(run, sizeof run, "%s/a/r1", g_tmp);
    snprintf(db, sizeof db, "%s/a/finetune.db", g_tmp);
    char *out;
    assert_int_equal(ft_test_finetune(&out, "train --out %s " TRAIN_ARGS, run), 0);
    assert_null(strstr(out, "run store"));   /* no warning */
    free(out);
    assert_true(ft_path_exists(db));          /* default: finetune.db in the folder of the run directory */
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs;"), 1);
    char *s = query_text(db, "SELECT status || ' ' || name || ' ' || data_hash_kind FROM runs;");
    assert_string_equal(s, "finished r1 crc32c");
    free(s);
    assert_true(query_int(db, "SELECT ended >= started AND data_size > 0 AND length(data_hash) = 8 AND config LIKE '%\"max_steps\":%3%' "
                              "AND command LIKE 'finetune train --out %' FROM runs;") == 1);
    int rows = check_metrics(db, run, "r1");
    printf("  %d metric rows equal metrics.jsonl\n", rows);
    assert_true(rows >= 3 * 5);   /* 3 train lines of 5 numbers at least */
    assert_int_equal(query_int(db, "SELECT version FROM schema_version WHERE component = 'runs';"), 1);
}

static void kill9_marked_killed(void **state) {
    (void)state;
    char run[512], db[512], bin[512];
    snprintf(run, sizeof run, "%s/k/victim", g_tmp);
    snprintf(db, sizeof db, "%s/k/f.db", g_tmp);
    snprintf(bin, sizeof bin, "%s/finetune", getenv("BUILD") ? getenv("BUILD") : "build");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "train", "--out", run, "--db", db, "--max-steps", "200", "--seq-len", "64", "--batch-size", "4", "--samples", "0",
              "--log-every", "1", "--save-every", "10", (char *)NULL);
        _exit(127);
    }
    /* wait for 15 train lines (a checkpoint at step 10 exists), then kill -9 */
    long long n = 0;
    for (int i = 0; i < 1200 && n < 15; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (ft_path_exists(db) && query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'run_metrics';") == 1)
            n = query_int(db, "SELECT count(*) FROM run_metrics WHERE key = 'train/loss';");
    }
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    assert_true(WIFSIGNALED(ws));
    printf("  killed after %lld train lines\n", n);
    assert_true(n >= 15);
    /* the file still says running: nobody has opened it since */
    char *s = query_text(db, "SELECT status FROM runs;");
    assert_string_equal(s, "running");
    free(s);
    char *out;
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list", db), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "victim"));
    assert_non_null(strstr(out, "killed"));
    free(out);
    s = query_text(db, "SELECT status FROM runs;");
    assert_string_equal(s, "killed");
    free(s);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'killed';"), 1);
    /* --resume takes the row back; the rows after the checkpoint are dropped as metrics.jsonl's lines are */
    assert_int_equal(ft_test_finetune(&out, "train --resume %s --db %s", run, db), 0);
    free(out);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs;"), 1);
    s = query_text(db, "SELECT status FROM runs;");
    assert_string_equal(s, "finished");
    free(s);
    int rows = check_metrics(db, run, "victim");
    printf("  resumed: %d metric rows equal metrics.jsonl\n", rows);
    assert_int_equal(query_int(db, "SELECT count(*) FROM run_metrics WHERE key = 'train/loss';"), 200);
}

static void concurrent_trainings(void **state) {
    (void)state;
    char db[512], cmd[4096];
    snprintf(db, sizeof db, "%s/c/shared.db", g_tmp);
    const char *bin = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(cmd, sizeof cmd,
             "%s/finetune train --out %s/c/one --db %s --max-steps 6 --seq-len 64 --batch-size 4 --samples 0 > %s/c1.out 2>&1 & p1=$!; "
             "%s/finetune train --out %s/c/two --db %s --max-steps 6 --seq-len 64 --batch-size 4 --samples 0 > %s/c2.out 2>&1 & p2=$!; "
             "wait $p1; r1=$?; wait $p2; r2=$?; echo \"$r1 $r2\"",
             bin, g_tmp, db, g_tmp, bin, g_tmp, db, g_tmp);
    char *out;
    assert_int_equal(ft_test_run(cmd, &out), 0);
    assert_string_equal(out, "0 0\n");
    free(out);
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs WHERE status = 'finished';"), 2);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/c/one", g_tmp);
    int a = check_metrics(db, dir, "one");
    snprintf(dir, sizeof dir, "%s/c/two", g_tmp);
    int b = check_metrics(db, dir, "two");
    printf("  %d and %d metric rows\n", a, b);
    assert_true(a > 0 && b > 0);
    ft_runs_db *h;
    assert_int_equal(ft_runs_open(db, &h), FT_OK);
    assert_true(ft_runs_check(h));
    ft_runs_close(h);
}

/* the line of `list` output naming run `name` (static buffer), NULL if none */
static const char *line_of(const char *out, const char *name) {
    static char buf[512];
    for (const char *p = out; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s", (int)n, p);
        char word[64];
        if (sscanf(buf, "%*s %63s", word) == 1 && !strcmp(word, name)) return buf;
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

static void cli_actions(void **state) {
    (void)state;
    char db[512];
    snprintf(db, sizeof db, "%s/c/shared.db", g_tmp);   /* the two runs of concurrent_trainings */
    char *out;
    if (!ft_path_exists(db)) concurrent_trainings(state);
    /* a third, with another learning rate */
    assert_int_equal(ft_test_finetune(&out, "train --out %s/c/three --db %s --lr 3e-3 " TRAIN_ARGS, g_tmp, db), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list", db), 0);
    printf("%s", out);
    assert_non_null(line_of(out, "one"));
    assert_non_null(line_of(out, "two"));
    assert_non_null(line_of(out, "three"));
    assert_true(strstr(out, "three") < strstr(out, "one") && strstr(out, "three") < strstr(out, "two"));   /* newest first */
    char *dflt = NULL;   /* no action: the same list */
    assert_int_equal(ft_test_finetune(&dflt, "runs --db %s", db), 0);
    assert_string_equal(dflt, out);
    free(dflt);
    free(out);
    /* tag, then filter by tag */
    assert_int_equal(ft_test_finetune(&out, "runs --db %s tag two best", db), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list --tag best", db), 0);
    assert_non_null(line_of(out, "two"));
    assert_null(line_of(out, "one"));
    assert_null(line_of(out, "three"));
    assert_non_null(strstr(line_of(out, "two"), "best"));
    free(out);
    /* sort by the last eval/val_loss: the order of the stored values */
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list --sort metric:eval/val_loss --limit 2", db), 0);
    printf("%s", out);
    char *best = query_text(db, "SELECT r.name FROM runs r ORDER BY (SELECT value FROM run_metrics m WHERE m.run_id = r.id AND "
                                "m.key = 'eval/val_loss' ORDER BY step DESC, id DESC LIMIT 1) ASC, r.id DESC LIMIT 1;");
    char first[64] = "";
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    sscanf(nl + 1, "%*s %63s", first);
    assert_string_equal(first, best);
    free(best);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 3);   /* header + 2 */
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list --status killed", db), 0);
    assert_null(line_of(out, "one"));
    free(out);
    /* show: fields, fingerprint, config, the last value of each metric (equal to the database's) */
    assert_int_equal(ft_test_finetune(&out, "runs --db %s show three", db), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "status:   finished"));
    assert_non_null(strstr(out, "crc32c"));
    assert_non_null(strstr(out, "\"lr\":"));
    assert_non_null(strstr(out, "train/loss"));
    char *loss = query_text(db, "SELECT printf('%.6g', value) FROM run_metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'three' "
                                "AND key = 'train/loss' ORDER BY step DESC LIMIT 1;");
    const char *tl = strstr(out, "train/loss");
    char shown[64];
    sscanf(tl, "%*s %63s", shown);
    assert_string_equal(shown, loss);
    free(loss);
    free(out);
    /* an id works as well as a name; an unknown run fails */
    long long id = query_int(db, "SELECT id FROM runs WHERE name = 'one';");
    assert_int_equal(ft_test_finetune(&out, "runs --db %s show %lld", db, id), 0);
    assert_non_null(strstr(out, ": one\n"));
    free(out);
    assert_true(ft_test_finetune(&out, "runs --db %s show nosuchrun", db) != 0);
    free(out);
    /* export --csv: header + one row per run, the last values as columns */
    assert_int_equal(ft_test_finetune(&out, "runs --db %s export --csv", db), 0);
    assert_true(strncmp(out, "id,name,status,started,ended,run_dir,model,data,tags,", 53) == 0);
    assert_non_null(strstr(out, ",eval/val_loss,"));
    lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 4);
    assert_non_null(strstr(out, ",best,"));
    free(out);
    /* compare: a chart per curve with a line per run, the differing config keys highlighted, no script */
    char page[600], *html;
    snprintf(page, sizeof page, "%s/cmp.html", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s compare one three --out %s", db, page), 0);
    free(out);
    assert_int_equal(ft_file_read_all(page, &html, NULL), FT_OK);
    int charts = 0, lines_drawn = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) charts++;
    for (const char *p = html; (p = strstr(p, "<polyline")); p++) lines_drawn++;
    printf("  compare: %d charts, %d lines\n", charts, lines_drawn);
    assert_true(charts >= 4);   /* train/loss, train/lr, train/grad_norm, eval/val_loss, eval/perplexity */
    assert_int_equal(lines_drawn, 2 * charts);
    assert_non_null(strstr(html, "<tr class='diff'><td>lr</td>"));
    assert_non_null(strstr(html, "<tr class='diff'><td>out</td>"));
    assert_null(strstr(html, "<tr class='diff'><td>seq_len</td>"));
    assert_non_null(strstr(html, "<tr><td>seq_len</td>"));
    assert_null(strstr(html, "<script"));
    free(html);
    assert_true(ft_test_finetune(&out, "runs --db %s compare one", db) != 0);   /* two runs at least */
    free(out);
    /* rm --keep-dir keeps the directory, rm deletes it */
    char dir[600];
    assert_int_equal(ft_test_finetune(&out, "runs --db %s rm one --keep-dir", db), 0);
    free(out);
    snprintf(dir, sizeof dir, "%s/c/one", g_tmp);
    assert_true(ft_path_exists(dir));
    assert_int_equal(ft_test_finetune(&out, "runs --db %s rm two", db), 0);
    free(out);
    snprintf(dir, sizeof dir, "%s/c/two", g_tmp);
    assert_false(ft_path_exists(dir));
    assert_int_equal(query_int(db, "SELECT count(*) FROM runs;"), 1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM run_metrics WHERE run_id NOT IN (SELECT id FROM runs);"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM run_tags;"), 0);
}

static void bad_db_only_warns(void **state) {
    (void)state;
    char db[512], run[512], file[512];
    char *out;
    /* a corrupt file */
    snprintf(db, sizeof db, "%s/bad/corrupt.db", g_tmp);
    snprintf(run, sizeof run, "%s/bad/r", g_tmp);
    assert_int_equal(ft_mkdirs(run), FT_OK);
    rmdir(run);
    FILE *f = fopen(db, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++) fputc("garbage!"[i % 8], f);
    fclose(f);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --db %s " TRAIN_ARGS, run, db), 0);
    printf("%s", strstr(out, "finetune: warning: run store") ? strstr(out, "finetune: warning: run store") : out);
    assert_non_null(strstr(out, "finetune: warning: run store"));
    assert_null(strstr(strstr(out, "finetune: warning: run store") + 20, "warning: run store"));   /* once */
    assert_non_null(strstr(out, "trained 3 steps"));
    free(out);
    /* a database that cannot be created (its folder is a file) */
    snprintf(file, sizeof file, "%s/bad/plainfile", g_tmp);
    f = fopen(file, "w");
    fclose(f);
    snprintf(run, sizeof run, "%s/bad/r2", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --db %s/x.db " TRAIN_ARGS, run, file), 0);
    assert_non_null(strstr(out, "finetune: warning: run store"));
    assert_non_null(strstr(out, "trained 3 steps"));
    free(out);
    /* --no-db: no database next to the run */
    snprintf(run, sizeof run, "%s/nodb/r", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --no-db " TRAIN_ARGS, run), 0);
    free(out);
    snprintf(db, sizeof db, "%s/nodb/finetune.db", g_tmp);
    assert_false(ft_path_exists(db));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recorded_equals_jsonl),
        cmocka_unit_test(kill9_marked_killed),
        cmocka_unit_test(concurrent_trainings),
        cmocka_unit_test(cli_actions),
        cmocka_unit_test(bad_db_only_warns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
