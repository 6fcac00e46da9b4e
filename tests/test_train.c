/* test_train.c — `finetune train` end to end on the embedded stories260K and a small dialogue set:
 * a run killed with SIGKILL at arbitrary moments and resumed ends with a final model byte-identical to
 * an uninterrupted run; the run directory holds config, metrics, checkpoints, best/, final/, report;
 * the fine-tuned model loads in `finetune eval` and generates; bad input fails cleanly. */
#include "testutil.h"
#include "finetune/fileio.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* run directories under the build directory: test runs of other work trees or builds never share them */
#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "build"
#endif
#define FT_TRAIN_TMP FT_BUILD_DIR "/tmp/ft_train_"

static char g_bin[1024];
static double g_run_ms = 1000; /* how long the uninterrupted run took */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static const char *k_args = "--data tests/fixtures/train/basketball_coach.json --seq-len 64 --batch-size 4 --epochs 6 "
                            "--save-every 3 --eval-every 4 --samples 1 --sample-tokens 8 --lr 1e-3 --seed 7 --threads 2";

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_run_directory(void **s) {
    (void)s;
    if (!ft_fixture_present("train/basketball_coach.json")) skip();
    char cmd[4096];
    sh("rm -rf " FT_TRAIN_TMP "a");
    snprintf(cmd, sizeof cmd, "%s train %s --out " FT_TRAIN_TMP "a > " FT_TRAIN_TMP "a.out 2> " FT_TRAIN_TMP "a.err", g_bin, k_args);
    double t0 = now_ms();
    int rc = sh(cmd);
    g_run_ms = now_ms() - t0;
    printf("  uninterrupted run: %.0f ms\n", g_run_ms);
    if (rc) sh("cat " FT_TRAIN_TMP "a.err");
    assert_int_equal(rc, 0);
    const char *must[] = {"config.json", "metrics.jsonl", "report.html", "final/model.safetensors", "final/config.json",
                          "final/tokenizer.json", "best/model.safetensors", "checkpoints"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
        char p[512];
        snprintf(p, sizeof p, "" FT_TRAIN_TMP "a/%s", must[i]);
        printf("  %-28s %s\n", must[i], ft_path_exists(p) ? "present" : "MISSING");
        assert_true(ft_path_exists(p));
    }
    sh("cat " FT_TRAIN_TMP "a.out");
    /* the tuned model evaluates and generates */
    snprintf(cmd, sizeof cmd, "%s eval --model " FT_TRAIN_TMP "a/final --data tests/fixtures/train/basketball_coach.json --json --seq-len 64", g_bin);
    assert_int_equal(sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s generate --model " FT_TRAIN_TMP "a/final --prompt 'Coach:' --max-tokens 20 --seed 1 > /dev/null", g_bin);
    assert_int_equal(sh(cmd), 0);
}

/* start a run, SIGKILL it after `ms` milliseconds, then resume until done */
static void kill_and_resume(const char *dir, int ms) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char args[2048];
        snprintf(args, sizeof args, "exec %s train %s --out %s > /dev/null 2>&1", g_bin, k_args, dir);
        execl("/bin/sh", "sh", "-c", args, (char *)NULL);
        _exit(127);
    }
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    int killed = WIFSIGNALED(st);
    snprintf(cmd, sizeof cmd, "%s train --resume %s > /dev/null 2> %s.err", g_bin, dir, dir);
    int rc = sh(cmd);
    if (rc) { snprintf(cmd, sizeof cmd, "cat %s.err", dir); sh(cmd); }
    assert_int_equal(rc, 0);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/final/model.safetensors", dir);
    snprintf(b, sizeof b, "" FT_TRAIN_TMP "a/final/model.safetensors");
    int same = ft_test_files_equal(a, b);
    printf("  killed after %4d ms (%s), resumed: final model %s the uninterrupted run's\n", ms,
           killed ? "SIGKILL during the run" : "run had finished", same ? "byte-identical to" : "DIFFERENT from");
    assert_true(same);
}

static void test_kill9_resume_bit_exact(void **s) {
    (void)s;
    if (!ft_fixture_present("train/basketball_coach.json")) skip();
    assert_true(ft_path_exists("" FT_TRAIN_TMP "a/final/model.safetensors"));
    /* SIGKILL at several moments of the run: during setup, mid-epoch, around checkpoints, near the end */
    double frac[] = {0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95};
    for (size_t i = 0; i < sizeof frac / sizeof *frac; i++) kill_and_resume("" FT_TRAIN_TMP "b", (int)(frac[i] * g_run_ms));
}

/* --dry-run's predicted peak RSS against the peak RSS the same run reaches (within 10%) */
static double run_value(const char *cmd, const char *key) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    double v = -1;
    while (fgets(line, sizeof line, p)) {
        char *k = strstr(line, key);
        if (k) v = atof(k + strlen(key));
    }
    pclose(p);
    return v;
}

static void test_dry_run_memory(void **s) {
    (void)s;
#ifdef __SANITIZE_ADDRESS__
    printf("SKIP: under AddressSanitizer the resident set holds its shadow memory and quarantine, not the plan\n");
    skip();
#endif
    const char *methods[] = {"--method full", "--method lora", "--method qlora --quant int8", "--method full --recompute attention",
                             "--method full --recompute block"};
    for (int i = 0; i < 5; i++) {
        char cmd[4096];
        sh("rm -rf " FT_TRAIN_TMP "dry");
        snprintf(cmd, sizeof cmd, "%s train %s --dry-run --out " FT_TRAIN_TMP "dry --threads 2 2>/dev/null", g_bin, methods[i]);
        double pred = run_value(cmd, "predicted peak RSS: ");
        sh("rm -rf " FT_TRAIN_TMP "dry");
        snprintf(cmd, sizeof cmd, "%s train %s --max-steps 2 --eval-batches 1 --out " FT_TRAIN_TMP "dry --threads 2 2>&1 >/dev/null", g_bin, methods[i]);
        double got = run_value(cmd, "peak RSS: ");
        printf("  %-36s predicted peak RSS %.1f MiB, measured %.1f MiB (%+.1f%%)\n", methods[i], pred, got, 100.0 * (pred - got) / got);
        assert_true(pred > 0 && got > 0);
        assert_true(pred > 0.9 * got && pred < 1.1 * got);
    }
    sh("rm -rf " FT_TRAIN_TMP "dry");
}

static void test_bad_input(void **s) {
    (void)s;
    char cmd[4096];
    sh("rm -rf " FT_TRAIN_TMP "bad && mkdir -p " FT_TRAIN_TMP "bad && printf '{\"prompt\": \"a\", \"completion\": \"b\"}\\n{oops\\n' > " FT_TRAIN_TMP "bad/bad.jsonl");
    snprintf(cmd, sizeof cmd, "%s train --data " FT_TRAIN_TMP "bad/bad.jsonl --strict --out " FT_TRAIN_TMP "bad/run > /dev/null 2> " FT_TRAIN_TMP "bad/err", g_bin);
    assert_int_not_equal(sh(cmd), 0);
    sh("cat " FT_TRAIN_TMP "bad/err");
    assert_int_equal(sh("grep -q 'bad.jsonl' " FT_TRAIN_TMP "bad/err && grep -q 'line 2' " FT_TRAIN_TMP "bad/err"), 0);
    snprintf(cmd, sizeof cmd, "%s train --data /nonexistent.json --out " FT_TRAIN_TMP "bad/run2 > /dev/null 2> " FT_TRAIN_TMP "bad/err2", g_bin);
    assert_int_not_equal(sh(cmd), 0);
    assert_int_equal(sh("grep -q 'nonexistent.json' " FT_TRAIN_TMP "bad/err2"), 0);
    snprintf(cmd, sizeof cmd, "%s train %s --out /proc/ft_cannot_write > /dev/null 2> " FT_TRAIN_TMP "bad/err3", g_bin, k_args);
    assert_int_not_equal(sh(cmd), 0);
    sh("cat " FT_TRAIN_TMP "bad/err3");
    snprintf(cmd, sizeof cmd, "%s train --lr abc > /dev/null 2>&1", g_bin);
    assert_int_equal(sh(cmd), 2);
}

int main(void) {
    if (system("mkdir -p " FT_BUILD_DIR "/tmp") != 0) return 1;
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_directory),
        cmocka_unit_test(test_kill9_resume_bit_exact),
        cmocka_unit_test(test_dry_run_memory),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
