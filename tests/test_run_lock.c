/* test_run_lock.c — one run per directory (issue 14): the run directory is locked (flock on RUN/lock) for the
 * run's life. A second `train` into it, or a `--resume` of it, is refused with the holder's pid; two `train`
 * started at the same moment into one --out leave exactly one run, intact (its final model byte-identical to
 * the same run made alone); a lock left by a run killed with SIGKILL is taken over by --resume. A --resume
 * takes the lock before it reads config.json: a run still being made (locked, no config.json yet) is refused
 * as busy, and --resume --precision never rewrites the config.json of a running run. */
#include "testutil.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/train.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "build"
#endif
#define TMP FT_BUILD_DIR "/tmp/ft_lock_"
#define REF TMP "ref"

static char g_bin[1024];
static const char *k_args = "--data tests/fixtures/train/basketball_coach.json --seq-len 64 --batch-size 4 --epochs 2 "
                            "--save-every 2 --eval-every 4 --samples 1 --sample-tokens 8 --lr 1e-3 --seed 7 --threads 1";

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* starts `finetune ARGS` in the background (its pid is the program's: sh execs it); output to log */
static pid_t spawn(const char *args, const char *log) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "exec %s %s > %s 2>&1", g_bin, args, log);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* the pid written in run/lock, waiting up to 20 s for it to appear */
static long lock_pid(const char *run) {
    char p[600];
    snprintf(p, sizeof p, "%s/lock", run);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(p, "r");
        long pid = 0;
        if (f) { if (fscanf(f, "%ld", &pid) != 1) pid = 0; fclose(f); }
        if (pid > 0) return pid;
        sleep_ms(10);
    }
    return 0;
}

static char *slurp(const char *path) {
    char *t = NULL;
    if (ft_file_read_all(path, &t, NULL) < 0) return strdup("");
    return t;
}

/* the run directory is one complete run: final model as the run made alone, every checkpoint verifies,
 * no temporary checkpoint left */
static void expect_intact(const char *run) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/final/model.safetensors", run);
    snprintf(b, sizeof b, "%s/final/model.safetensors", REF);
    int same = ft_test_files_equal(a, b);
    printf("  %s: final model %s the run made alone\n", run, same ? "byte-identical to" : "DIFFERENT from");
    assert_true(same);
    int64_t steps[64];
    int n = ft_ckpt_list(run, steps, 64);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/checkpoints/step-%08lld", run, (long long)steps[i]);
        assert_int_equal(ft_ckpt_verify(a), FT_OK);
    }
    snprintf(a, sizeof a, "ls %s/checkpoints | grep -q tmp", run);
    assert_int_not_equal(sh(a), 0);
}

static void test_reference(void **s) {
    (void)s;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s && %s train %s --out %s > %s.log 2>&1", REF, g_bin, k_args, REF, REF);
    assert_int_equal(sh(cmd), 0);
    /* a clean end leaves the lock file empty (and unlocked) */
    snprintf(cmd, sizeof cmd, "test -f %s/lock && test ! -s %s/lock", REF, REF);
    assert_int_equal(sh(cmd), 0);
}

/* while a run holds the directory, a second train and a resume are refused with its pid */
static void test_second_run_refused(void **s) {
    (void)s;
    const char *run = TMP "held";
    char args[2048], cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s", run);
    sh(cmd);
    snprintf(args, sizeof args, "train %s --out %s", k_args, run);
    pid_t a = spawn(args, TMP "held_a.log");
    long holder = lock_pid(run);
    printf("  run A: pid %ld holds %s/lock\n", holder, run);
    assert_int_equal(holder, (long)a);
    char *out;
    int rc = ft_test_finetune(&out, "train %s --out %s", k_args, run);
    int a_running = waitpid(a, NULL, WNOHANG) == 0;
    printf("  second train: exit %d: %s", rc, strstr(out, "error") ? strstr(out, "error") : out);
    char want[128];
    snprintf(want, sizeof want, "is in use by another run (pid %ld)", holder);
    if (a_running) {   /* A may have finished meanwhile on a loaded machine: then it is an "already holds a run" */
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(out, want));
    } else assert_int_not_equal(rc, 0);
    free(out);
    rc = ft_test_finetune(&out, "train --resume %s", run);
    a_running = waitpid(a, NULL, WNOHANG) == 0;
    if (a_running) {
        printf("  resume: exit %d: %s", rc, strstr(out, "error") ? strstr(out, "error") : out);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(out, want));
    }
    free(out);
    assert_int_equal(wait_exit(a), 0);
    expect_intact(run);
}

/* two runs started at the same moment into one --out: one runs, the other is refused; one intact run */
static void test_concurrent_runs(void **s) {
    (void)s;
    const char *run = TMP "race";
    for (int round = 0; round < 3; round++) {
        char args[2048], cmd[2048];
        snprintf(cmd, sizeof cmd, "rm -rf %s", run);
        sh(cmd);
        snprintf(args, sizeof args, "train %s --out %s", k_args, run);
        pid_t a = spawn(args, TMP "race_a.log"), b = spawn(args, TMP "race_b.log");
        int ra = wait_exit(a), rb = wait_exit(b);
        char *la = slurp(TMP "race_a.log"), *lb = slurp(TMP "race_b.log");
        const char *loser = ra ? la : lb;
        const char *why = strstr(loser, "error");
        printf("  round %d: exits %d and %d; the refused one: %.*s\n", round, ra, rb, why ? (int)strcspn(why, "\n") : 0, why ? why : "");
        assert_true((ra == 0) != (rb == 0));
        /* refused while the winner ran (naming it), or after it had finished */
        char want[128];
        snprintf(want, sizeof want, "is in use by another run (pid %ld)", (long)(ra == 0 ? a : b));
        assert_true(strstr(loser, want) || strstr(loser, "already holds a training run"));
        free(la);
        free(lb);
        expect_intact(run);
    }
}

/* a run killed with SIGKILL leaves its pid in the lock file but no lock: --resume takes it over */
static void test_stale_lock_taken_over(void **s) {
    (void)s;
    const char *run = TMP "stale";
    char args[2048], cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s", run);
    sh(cmd);
    snprintf(args, sizeof args, "train %s --out %s", k_args, run);
    pid_t a = spawn(args, TMP "stale_a.log");
    long holder = lock_pid(run);
    assert_int_equal(holder, (long)a);
    /* kill it once it has a checkpoint */
    snprintf(cmd, sizeof cmd, "%s/checkpoints/step-00000000/state.json", run);
    for (int i = 0; i < 2000 && !ft_path_exists(cmd) && waitpid(a, NULL, WNOHANG) == 0; i++) sleep_ms(5);
    kill(a, SIGKILL);
    int ra = wait_exit(a);
    printf("  run A (pid %ld) ended with status %d\n", holder, ra);
    char *out;
    int rc = ft_test_finetune(&out, "train --resume %s", run);
    char want[128];
    snprintf(want, sizeof want, "took over the lock of run pid %ld", holder);
    if (ra == 128 + SIGKILL) {
        printf("  resume: %s\n", strstr(out, want) ? want : "(no takeover message)");
        assert_non_null(strstr(out, want));
    }
    free(out);
    assert_int_equal(rc, 0);
    expect_intact(run);
}

/* --resume locks first: a directory locked by a run that has not written config.json yet (new_run_dir locks,
 * then writes it) is busy, not "not a run directory"; --precision does not touch a held run's config.json.
 * The holder here is this process (flock on RUN/lock with its pid, as a run writes it), so the moment is
 * not left to chance: before the fix both cases failed every time. */
static void test_resume_locks_first(void **s) {
    (void)s;
    const char *run = TMP "early";
    char cmd[2048], path[600], cfg[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", run, run);
    assert_int_equal(sh(cmd), 0);
    snprintf(path, sizeof path, "%s/lock", run);
    snprintf(cfg, sizeof cfg, "%s/config.json", run);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    char pid[32], want[128];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    assert_int_equal(pwrite(fd, pid, (size_t)n, 0), n);
    snprintf(want, sizeof want, "is in use by another run (pid %ld)", (long)getpid());
    char *out;
    int rc = ft_test_finetune(&out, "train --resume %s", run);
    printf("  resume of a run being made (locked, no config.json yet): exit %d: %s", rc, out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, want));
    assert_false(ft_path_exists(cfg));
    free(out);
    /* config.json written (the reference run's), still held: --precision is refused and changes nothing */
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s", REF, cfg);
    assert_int_equal(sh(cmd), 0);
    char *before = slurp(cfg);
    rc = ft_test_finetune(&out, "train --resume %s --precision %s", run, strstr(before, "\"bf16\"") ? "f32" : "bf16");
    printf("  resume --precision of a held run: exit %d: %s", rc, out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, want));
    char *after = slurp(cfg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(out);
    close(fd);
    /* a directory with neither config.json nor lock is no run, and is left without a lock file */
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", run, run);
    assert_int_equal(sh(cmd), 0);
    rc = ft_test_finetune(&out, "train --resume %s", run);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "not a run directory"));
    assert_false(ft_path_exists(path));
    free(out);
}

/* the same inside one process, through the library: a second trainer on a held directory gets FT_ERR_BUSY */
static void test_library_lock(void **s) {
    (void)s;
    const char *run = TMP "lib";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s", run);
    sh(cmd);
    ft_train_config c;
    ft_train_config_defaults(&c);
    assert_int_equal(ft_train_config_set(&c, "model", "models/stories260K"), FT_OK);
    assert_int_equal(ft_train_config_set(&c, "data", "tests/fixtures/train/basketball_coach.json"), FT_OK);
    assert_int_equal(ft_train_config_set(&c, "out", run), FT_OK);
    assert_int_equal(ft_train_config_set(&c, "seq-len", "32"), FT_OK);
    c.dry_run = 1;
    ft_trainer *t1, *t2;
    assert_int_equal(ft_trainer_create(&t1, &c, NULL, NULL, 0, NULL), FT_OK);
    int rc = ft_trainer_create(&t2, &c, NULL, NULL, 0, NULL);
    printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_BUSY);
    char want[128];
    snprintf(want, sizeof want, "in use by another run (pid %ld)", (long)getpid());
    assert_non_null(strstr(ft_last_error(), want));
    ft_trainer_close(t1);
    assert_int_equal(ft_trainer_create(&t2, &c, NULL, NULL, 0, NULL), FT_OK);
    ft_trainer_close(t2);
}

static int teardown(void **s) {
    (void)s;
    sh("rm -rf " TMP "ref " TMP "held " TMP "race " TMP "stale " TMP "early " TMP "lib " TMP "*.log");
    return 0;
}

int main(void) {
    if (system("mkdir -p " FT_BUILD_DIR "/tmp") != 0) return 1;
    ft_log_set_level(FT_LOG_ERROR);
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_second_run_refused),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_stale_lock_taken_over),
        cmocka_unit_test(test_resume_locks_first),
        cmocka_unit_test(test_library_lock),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
