/* test_hpo_continue.c — trial continuation of multi-fidelity sweeps (scheduler.continue) and the
 * `finetune train --stop-at-epoch / --stop-at-step` it rests on. Everything trains the embedded
 * stories260K on tests/fixtures/data/fundialogues_mini.json (9 training dialogues: 3 steps an epoch at
 * batch 4), one thread, in well under a second per run.
 *
 *   stop_and_resume_exact   --epochs 3 --stop-at-epoch 1, then --resume --stop-at-epoch 3, ends with the
 *                           model (final/model.safetensors, byte for byte) and last val_loss of a straight
 *                           3-epoch run; the 1-epoch stop is not a 1-epoch run (its schedule is planned for
 *                           3); a plain --resume keeps the stop; the same with --max-steps / --stop-at-step
 *                           and --stop-at-step 0 (to the end), with --no-eval-start / --no-eval-epoch-end
 *                           leaving out the step-0 and epoch-end evaluations (the stop still evaluates)
 *   sweep_continues         a Hyperband pass over epochs (R = 3, eta = 3) continues the promoted configuration
 *                           from its 1-epoch trial: its model equals a straight 3-epoch run of the same config,
 *                           parent / cost are recorded, the compute counted is 11 epochs (12 with
 *                           "continue": false, which records no parents), in the summary and the report;
 *                           "cleanup" leaves no checkpoints;
 *                           "continue" with a seq_len fidelity is refused with a message
 *   missing_parent_checkpoint  a sweep extended (--resume --trials) after its parents' checkpoints were removed
 *                           trains the promoted trial from the start (logged), at the full cost, to the same value
 *   kill9_resume            a continuing sweep killed with kill -9 (with its trainer, the whole process group)
 *                           mid-sweep and resumed records the trials (values, parents, costs) of the
 *                           uninterrupted sweep, with --jobs 2 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "finetune/fileio.h"
#include "finetune/hpo.h"
#include "finetune/status.h"

static char g_tmp[256];
static char g_data[1024];

static int setup(void **state) {
    (void)state;
    snprintf(g_data, sizeof g_data, "%s", ft_fixture("data/fundialogues_mini.json"));
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_hpo_cont");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

/* options shared by every training run here */
#define TRAIN_OPTS "--data %s --seq-len 32 --batch-size 4 --warmup-ratio 0.2 --samples 0 --threads 1 --no-db"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* the last val_loss of RUN/metrics.jsonl (NaN if none) and the number of evaluation lines */
static double last_val_loss(const char *run, int *n_evals) {
    char path[1200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    assert_int_equal(ft_file_read_all(path, &text, &len), FT_OK);
    double v = NAN;
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *ty = cJSON_GetObjectItem(o, "type"), *vl = cJSON_GetObjectItem(o, "val_loss");
        if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "eval") && cJSON_IsNumber(vl)) { v = vl->valuedouble; n++; }
        cJSON_Delete(o);
    }
    free(text);
    if (n_evals) *n_evals = n;
    return v;
}

static int same_model(const char *run_a, const char *run_b) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/final/model.safetensors", run_a);
    snprintf(b, sizeof b, "%s/final/model.safetensors", run_b);
    return ft_test_files_equal(a, b);
}

static void stop_and_resume_exact(void **state) {
    (void)state;
    char straight[600], part[600], one[600], *out;
    snprintf(straight, sizeof straight, "%s/straight", g_tmp);
    snprintf(part, sizeof part, "%s/part", g_tmp);
    snprintf(one, sizeof one, "%s/one", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --epochs 3 " TRAIN_OPTS, straight, g_data), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --epochs 3 --stop-at-epoch 1 " TRAIN_OPTS, part, g_data), 0);
    assert_non_null(strstr(out, "trained 3 steps"));
    assert_non_null(strstr(out, "stopped at step 3 of 9"));
    free(out);
    /* a plain --resume keeps the stop of config.json: nothing more is trained */
    assert_int_equal(ft_test_finetune(&out, "train --resume %s --no-db", part), 0);
    assert_non_null(strstr(out, "trained 3 steps"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --epochs 1 " TRAIN_OPTS, one, g_data), 0);
    free(out);
    /* the 1-epoch stop of a 3-epoch run is not a 1-epoch run: the schedule (warmup, decay) spans 3 epochs */
    assert_false(same_model(part, one));
    assert_int_equal(ft_test_finetune(&out, "train --resume %s --stop-at-epoch 3 --no-db", part), 0);
    assert_non_null(strstr(out, "trained 9 steps"));
    free(out);
    int ea, eb;
    double va = last_val_loss(straight, &ea), vb = last_val_loss(part, &eb);
    printf("  straight 3 epochs: val_loss %.9g (%d evaluations); 1 + 2 epochs: %.9g (%d)\n", va, ea, vb, eb);
    assert_true(same_model(straight, part));
    assert_true(va == vb);
    assert_int_equal(ea, eb);   /* step 0 and each epoch end, in both */

    /* steps: --max-steps 8 --stop-at-step 5, then --stop-at-step 0 (to the end); with --no-eval-start and
     * --no-eval-epoch-end the straight run evaluates only at its end and the stopped one also at its stop: an
     * evaluation changes nothing of the training */
    char s8[600], s5[600];
    snprintf(s8, sizeof s8, "%s/s8", g_tmp);
    snprintf(s5, sizeof s5, "%s/s5", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --max-steps 8 --no-eval-start --no-eval-epoch-end " TRAIN_OPTS, s8, g_data), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --max-steps 8 --stop-at-step 5 --no-eval-start --no-eval-epoch-end " TRAIN_OPTS, s5, g_data), 0);
    assert_non_null(strstr(out, "trained 5 steps"));
    free(out);
    int e5;
    last_val_loss(s5, &e5);
    assert_int_equal(e5, 1);   /* the stop (step 5) only: none at step 0 nor at the epoch end (step 3) */
    assert_int_equal(ft_test_finetune(&out, "train --resume %s --stop-at-step 0 --no-db", s5), 0);
    assert_non_null(strstr(out, "trained 8 steps"));
    free(out);
    assert_true(same_model(s8, s5));
    int e8;
    assert_true(last_val_loss(s8, &e8) == last_val_loss(s5, &e5));
    assert_int_equal(e8, 1);
    assert_int_equal(e5, 2);
    /* bad values are refused */
    assert_int_not_equal(ft_test_finetune(&out, "train --out %s/bad --stop-at-epoch -1 " TRAIN_OPTS, g_tmp, g_data), 0);
    assert_non_null(strstr(out, "--stop-at-epoch"));
    free(out);
}

static void free_all(ft_hpo_spec *s, ft_hpo_trial *t, int n) {
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

/* a Hyperband sweep config over epochs (R = 3, eta = 3: 6 trials) with extra scheduler / top-level keys */
static void sweep_config(const char *path, const char *name, const char *sched_extra, const char *top_extra) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"name\": \"%s\", \"strategy\": \"random\", \"seed\": 5%s,"
             " \"params\": {\"lr\": {\"type\": \"loguniform\", \"low\": 3e-4, \"high\": 3e-3}},"
             " \"train\": {\"data\": \"%s\", \"seq_len\": 32, \"batch_size\": 4, \"warmup_ratio\": 0.2, \"samples\": 0, \"threads\": 1},"
             " \"scheduler\": {\"type\": \"hyperband\", \"fidelity\": \"epochs\", \"min_resource\": 1, \"max_resource\": 3, \"eta\": 3%s}}",
             name, top_extra, g_data, sched_extra);
    write_file(path, text);
}

static void sweep_continues(void **state) {
    (void)state;
    char cfg[600], db[600], runs[600], *out;
    char path[1400], *text;
    size_t len;
    snprintf(cfg, sizeof cfg, "%s/cont.json", g_tmp);
    snprintf(db, sizeof db, "%s/cont/f.db", g_tmp);
    snprintf(runs, sizeof runs, "%s/cont/sweeps/cont", g_tmp);
    sweep_config(cfg, "cont", "", "");
    assert_int_equal(ft_test_finetune(&out, "sweep --config %s --db %s --no-report --quiet", cfg, db), 0);
    /* the console summary counts what was trained */
    assert_non_null(strstr(out, "compute: 11 epochs trained (12 had every trial trained from the start)"));
    free(out);
    ft_hpo_spec *s;
    ft_hpo_trial *t;
    int n;
    ft_test_hpo_load(db, "cont", &s, &t, &n);
    assert_true(s->continue_trials);   /* the default with "train" and the epochs fidelity */
    assert_int_equal(n, 6);
    double cost = 0;
    int promoted = -1;
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i].status, FT_HPO_FINISHED);
        cost += t[i].cost;
        if (t[i].rung == 1) {
            promoted = i;
            assert_true(t[i].parent >= 0 && t[i].parent < i);
            const ft_hpo_trial *p = &t[t[i].parent];
            assert_int_equal(p->config, t[i].config);
            assert_int_equal(p->rung, 0);
            assert_true(t[i].cost == t[i].budget - p->budget);
        } else {
            assert_int_equal(t[i].parent, -1);
            assert_true(t[i].cost == t[i].budget);
        }
    }
    assert_true(cost == 11.0);
    assert_int_equal(promoted, 3);
    /* the promoted trial resumed its parent's checkpoint ... */
    snprintf(path, sizeof path, "%s/trial-%d.log", runs, promoted);
    assert_int_equal(ft_file_read_all(path, &text, &len), FT_OK);
    assert_non_null(strstr(text, "resuming from"));
    free(text);
    /* ... and ends with the model and value of a straight 3-epoch run of its configuration */
    char straight[600], trial[700];
    snprintf(straight, sizeof straight, "%s/cont_straight", g_tmp);
    snprintf(trial, sizeof trial, "%s/trial-%d", runs, promoted);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --epochs 3 --lr %.17g " TRAIN_OPTS, straight, t[promoted].x[0], g_data), 0);
    free(out);
    double vs = last_val_loss(straight, NULL);
    printf("  promoted trial %d (from trial %d): val_loss %.9g; straight 3-epoch run: %.9g\n", promoted, t[promoted].parent, t[promoted].value, vs);
    assert_true(same_model(straight, trial));
    assert_true(fabs(t[promoted].value - vs) <= 1e-6 * fabs(vs));
    /* no "cleanup": the parent's checkpoint is still there */
    snprintf(path, sizeof path, "%s/trial-%d/checkpoints", runs, t[promoted].parent);
    assert_true(ft_path_exists(path));
    /* the report counts the same compute and names each continued trial's parent */
    char rep[700];
    snprintf(rep, sizeof rep, "%s/cont.html", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "sweep --show --name cont --db %s --report %s", db, rep), 0);
    free(out);
    assert_int_equal(ft_file_read_all(rep, &text, &len), FT_OK);
    assert_non_null(strstr(text, "11 epochs trained (12 had every trial trained from the start)"));
    snprintf(path, sizeof path, "<td>trial %d</td>", t[promoted].parent);
    assert_non_null(strstr(text, path));
    free(text);
    double v_cont = t[promoted].value;
    int cfg_cont = t[promoted].config;
    free_all(s, t, n);

    /* "continue": false: the same decisions, every trial from the start (12 epochs), no parents; "cleanup":
     * no checkpoints left */
    snprintf(cfg, sizeof cfg, "%s/scratch.json", g_tmp);
    sweep_config(cfg, "scratch", ", \"continue\": false", ", \"cleanup\": true");
    assert_int_equal(ft_test_finetune(&out, "sweep --config %s --db %s --no-report --quiet", cfg, db), 0);
    assert_non_null(strstr(out, "compute: 12 epochs trained\n"));
    free(out);
    ft_test_hpo_load(db, "scratch", &s, &t, &n);
    assert_int_equal(n, 6);
    cost = 0;
    for (int i = 0; i < n; i++) {
        cost += t[i].cost;
        assert_int_equal(t[i].parent, -1);
        snprintf(path, sizeof path, "%s/cont/sweeps/scratch/trial-%d/checkpoints", g_tmp, i);
        assert_false(ft_path_exists(path));
    }
    assert_true(cost == 12.0);
    /* the same configurations are sampled; bracket s=0 trains 3 epochs from the start either way (same values),
     * while rung 0 of bracket s=1 trains a 1-epoch schedule here and the first epoch of a 3-epoch plan there */
    ft_hpo_spec *sc;
    ft_hpo_trial *tc;
    int nc;
    ft_test_hpo_load(db, "cont", &sc, &tc, &nc);
    int differ = 0;
    for (int i = 0; i < n; i++) {
        if (i == 3) continue;   /* the promoted configuration may differ */
        assert_true(t[i].x[0] == tc[i].x[0]);
        if (i >= 4) assert_true(t[i].value == tc[i].value);
        else differ += t[i].value != tc[i].value;
    }
    assert_true(differ > 0);
    printf("  continue false: trial 3 is config %d (%.9g); with continuation config %d (%.9g)\n", t[3].config, t[3].value, cfg_cont, v_cont);
    free_all(sc, tc, nc);
    free_all(s, t, n);

    /* continuing over sequence length is refused, with a reason */
    snprintf(cfg, sizeof cfg, "%s/seq.json", g_tmp);
    write_file(cfg, "{\"name\": \"seq\", \"strategy\": \"random\", \"params\": {\"lr\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}},"
                    " \"train\": {}, \"scheduler\": {\"type\": \"asha\", \"fidelity\": \"seq_len\", \"min_resource\": 16, \"max_resource\": 64,"
                    " \"continue\": true}, \"budget\": {\"trials\": 4}}");
    assert_int_not_equal(ft_test_finetune(&out, "sweep --config %s --db %s --no-report", cfg, db), 0);
    assert_non_null(strstr(out, "seq_len fidelity changes what the model trains on"));
    free(out);
}

static void missing_parent_checkpoint(void **state) {
    (void)state;
    char cfg[600], db[600], runs[600], *out;
    snprintf(cfg, sizeof cfg, "%s/miss.json", g_tmp);
    snprintf(db, sizeof db, "%s/miss/f.db", g_tmp);
    snprintf(runs, sizeof runs, "%s/miss/sweeps/cont", g_tmp);
    sweep_config(cfg, "cont", "", "");
    /* the first bracket's rung 0 only, then its checkpoints go */
    assert_int_equal(ft_test_finetune(&out, "sweep --config %s --db %s --trials 3 --no-report --quiet", cfg, db), 0);
    free(out);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "rm -r %s/trial-0/checkpoints %s/trial-1/checkpoints %s/trial-2/checkpoints", runs, runs, runs);
    assert_int_equal(ft_test_run(cmd, &out), 0);
    free(out);
    assert_int_equal(ft_test_finetune(&out, "sweep --resume cont --db %s --trials 6 --no-report --quiet", db), 0);
    assert_non_null(strstr(out, "checkpoint (") && strstr(out, "is missing: training from the start"));
    assert_non_null(strstr(out, "compute: 12 epochs trained\n"));
    free(out);
    ft_hpo_spec *s;
    ft_hpo_trial *t;
    int n;
    ft_test_hpo_load(db, "cont", &s, &t, &n);
    assert_int_equal(n, 6);
    assert_int_equal(t[3].parent, -1);
    assert_true(t[3].cost == 3.0);
    /* the uninterrupted sweep of sweep_continues (same config): same value for the retrained trial */
    ft_hpo_spec *s2;
    ft_hpo_trial *t2;
    int n2;
    char db2[600];
    snprintf(db2, sizeof db2, "%s/cont/f.db", g_tmp);
    ft_test_hpo_load(db2, "cont", &s2, &t2, &n2);
    assert_int_equal(n2, 6);
    for (int i = 0; i < n; i++) assert_true(t[i].value == t2[i].value);
    free_all(s2, t2, n2);
    free_all(s, t, n);
}

/* number of finished trials of sweep `name` in db (read-only; 0 while the file or the rows are not there) */
static int finished_trials(const char *db, const char *name) {
    sqlite3 *q;
    if (sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) { sqlite3_close(q); return 0; }
    sqlite3_busy_timeout(q, 5000);
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(q, "SELECT count(*) FROM trials t JOIN sweeps s ON s.id = t.sweep_id WHERE s.name = ?1 AND t.status = 'finished';",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(q);
    return n;
}

static void kill9_resume(void **state) {
    (void)state;
    char cfg[600], a_db[600], b_db[600], *out;
    snprintf(cfg, sizeof cfg, "%s/kill.json", g_tmp);
    snprintf(a_db, sizeof a_db, "%s/kill_a/f.db", g_tmp);
    snprintf(b_db, sizeof b_db, "%s/kill_b/f.db", g_tmp);
    /* asha (R = 9, eta = 3: rungs of 1, 3, 9 epochs) with 12 trials: several continuations at --jobs 2 */
    char text[2048];
    snprintf(text, sizeof text,
             "{\"name\": \"k\", \"strategy\": \"random\", \"seed\": 8, \"budget\": {\"trials\": 12},"
             " \"params\": {\"lr\": {\"type\": \"loguniform\", \"low\": 3e-4, \"high\": 3e-3}},"
             " \"train\": {\"data\": \"%s\", \"seq_len\": 32, \"batch_size\": 4, \"warmup_ratio\": 0.2, \"samples\": 0, \"threads\": 1},"
             " \"scheduler\": {\"type\": \"asha\", \"fidelity\": \"epochs\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3}}",
             g_data);
    write_file(cfg, text);
    assert_int_equal(ft_test_finetune(&out, "sweep --config %s --db %s --jobs 2 --no-report --quiet", cfg, a_db), 0);
    free(out);
    /* the same sweep in its own process group, killed with kill -9 (sweep and trainers) once 4 trials ended */
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char exe[600];
    snprintf(exe, sizeof exe, "%s/finetune", build);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", 1);
        if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
        execl(exe, exe, "sweep", "--config", cfg, "--db", b_db, "--jobs", "2", "--no-report", "--quiet", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    int status = 0, exited = 0;
    for (int i = 0; i < 6000 && finished_trials(b_db, "k") < 4; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) { exited = 1; break; }
        usleep(10000);
    }
    if (!exited) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    ft_hpo_spec *s;
    ft_hpo_trial *ta, *tb;
    int na, nb;
    ft_test_hpo_load(b_db, "k", &s, &tb, &nb);
    int ended = 0;
    for (int i = 0; i < nb; i++) ended += tb[i].status == FT_HPO_FINISHED;
    printf("  killed with %d trials recorded (%d finished)%s\n", nb, ended, exited ? " -- the sweep had ended before the kill" : "");
    assert_false(exited);
    free_all(s, tb, nb);
    assert_int_equal(ft_test_finetune(&out, "sweep --resume k --db %s --no-report --quiet", b_db), 0);
    free(out);
    ft_test_hpo_load(a_db, "k", &s, &ta, &na);
    ft_hpo_spec_free(s);
    ft_test_hpo_load(b_db, "k", &s, &tb, &nb);
    assert_int_equal(na, 12);
    assert_int_equal(nb, na);
    int continued = 0;
    for (int i = 0; i < na; i++) {
        if (ta[i].x[0] != tb[i].x[0] || ta[i].value != tb[i].value || ta[i].config != tb[i].config || ta[i].rung != tb[i].rung ||
            ta[i].parent != tb[i].parent || ta[i].cost != tb[i].cost) {
            print_error("trial %d differs: lr %.17g vs %.17g, value %.17g vs %.17g, parent %d vs %d, cost %g vs %g\n", i, ta[i].x[0], tb[i].x[0],
                        ta[i].value, tb[i].value, ta[i].parent, tb[i].parent, ta[i].cost, tb[i].cost);
            fail();
        }
        assert_int_equal(tb[i].status, FT_HPO_FINISHED);
        continued += ta[i].parent >= 0;
    }
    printf("  %d of %d trials continued a parent's checkpoint\n", continued, na);
    assert_true(continued >= 2);
    ft_hpo_trials_free(ta, na);
    free_all(s, tb, nb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_and_resume_exact),
        cmocka_unit_test(sweep_continues),
        cmocka_unit_test(missing_parent_checkpoint),
        cmocka_unit_test(kill9_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
