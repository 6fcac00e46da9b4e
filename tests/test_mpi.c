/* test_mpi.c — data-parallel training under mpirun (README "Several processes"): 2 ranks x batch B end with
 * a model byte-identical to 1 process with --grad-accum 2 (full fine-tuning, LoRA, an encoder, the optimizer
 * sharded ZeRO-1 style); a run killed (kill -9 of one rank: the other ends within 30 s) resumes on another
 * rank count (2 -> 1, 1 -> 2) and still ends byte-identical. Skipped, saying why, when mpirun is missing or
 * the finetune program was built without MPI. The ZeRO split itself is checked without MPI. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "train/dist.h"

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "build"
#endif

static char g_bin[1024], g_dir[1024];
static int g_have_mpi;
static char g_why[1400];

/* small and quick: the embedded stories260K, 19 batches of 3 x 64 per epoch, one thread per rank */
static const char *k_lm = "--data tests/fixtures/train/basketball_coach.json --seq-len 64 --batch-size 3 --lr 1e-3 --seed 7 "
                          "--threads 1 --no-db --samples 0";
/* under AddressSanitizer (make SANITIZE=address test) the ranks' leak check is off: what it finds at exit is
 * Open MPI's own (ompi_op_base_op_select, its plugins); the single-process runs keep it */
static const char *k_mpirun = "env ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" mpirun --oversubscribe -np 2";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = ft_test_run(cmd, &out);
    if (rc != 0) printf("  $ %s\n  exit %d\n%s\n", cmd, rc, out ? out : "");
    free(out);
    return rc;
}

static const char *run_dir(const char *name) {
    static char buf[4][1200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void assert_same_file(const char *a, const char *b, const char *rel) {
    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%s/%s", a, rel);
    snprintf(pb, sizeof pb, "%s/%s", b, rel);
    int same = ft_test_files_equal(pa, pb);
    printf("  %s vs %s: %s\n", pa, pb, same ? "byte-identical" : "DIFFERENT");
    assert_true(same);
}

#define NEED_MPI() do { if (!g_have_mpi) { printf("  skipped: %s\n", g_why); skip(); } } while (0)

/* the reference runs: one process, --grad-accum 2 */
static void ref_lm(const char *name, const char *extra, int epochs) {
    if (ft_path_exists(run_dir(name))) return;
    assert_int_equal(sh("%s train %s %s --epochs %d --grad-accum 2 --out %s 2>&1", g_bin, k_lm, extra, epochs, run_dir(name)), 0);
}

static void test_full_two_ranks_equal_grad_accum(void **s) {
    NEED_MPI();
    ref_lm("ref_full", "", 2);
    assert_int_equal(sh("%s %s train %s --epochs 2 --out %s 2>&1", k_mpirun, g_bin, k_lm, run_dir("two_full")), 0);
    assert_same_file(run_dir("ref_full"), run_dir("two_full"), "final/model.safetensors");
    /* only rank 0 wrote metrics: one step line per step, as the single process */
    char *a = NULL, *b = NULL;
    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", run_dir("ref_full"));
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", run_dir("two_full"));
    assert_int_equal(ft_file_read_all(pa, &a, NULL), 0);
    assert_int_equal(ft_file_read_all(pb, &b, NULL), 0);
    int na = 0, nb = 0;
    for (char *p = a; (p = strstr(p, "\"type\": \"train\"")); p++) na++;
    for (char *p = b; (p = strstr(p, "\"type\": \"train\"")); p++) nb++;
    printf("  train lines: %d (1 process) vs %d (2 ranks); dist line: %s\n", na, nb, strstr(b, "\"type\": \"dist\"") ? "yes" : "no");
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_non_null(strstr(b, "\"type\": \"dist\""));
    free(a);
    free(b);
    /* the run records the micro-batches of a step over both ranks: a resume on one process takes 2 */
    char *cfg = NULL;
    snprintf(pb, sizeof pb, "%s/config.json", run_dir("two_full"));
    assert_int_equal(ft_file_read_all(pb, &cfg, NULL), 0);
    const char *ga = strstr(cfg, "\"grad_accum\":");
    assert_non_null(ga);
    ga += strlen("\"grad_accum\":");
    while (*ga == ' ' || *ga == '\t') ga++;
    printf("  config.json: grad_accum %c\n", *ga);
    assert_true(ga[0] == '2' && (ga[1] == ',' || ga[1] == '\n' || ga[1] == '}'));
    free(cfg);
}

static void test_lora_two_ranks_equal_grad_accum(void **s) {
    NEED_MPI();
    ref_lm("ref_lora", "--method lora", 2);
    assert_int_equal(sh("%s %s train %s --method lora --epochs 2 --out %s 2>&1", k_mpirun, g_bin, k_lm, run_dir("two_lora")), 0);
    assert_same_file(run_dir("ref_lora"), run_dir("two_lora"), "final/adapter_model.safetensors");
}

static void test_sharded_optimizer_identical(void **s) {
    NEED_MPI();
    ref_lm("ref_full", "", 2);
    assert_int_equal(sh("%s %s train %s --epochs 2 --shard-optimizer --out %s 2>&1", k_mpirun, g_bin, k_lm, run_dir("two_zero")), 0);
    assert_same_file(run_dir("ref_full"), run_dir("two_zero"), "final/model.safetensors");
    /* 2 ranks x 2 micro-batches each (rounds: the running sum passes rank 1 -> rank 0) vs --grad-accum 4 */
    assert_int_equal(sh("%s train %s --epochs 1 --grad-accum 4 --out %s 2>&1", g_bin, k_lm, run_dir("ref_acc4b")), 0);
    assert_int_equal(sh("%s %s train %s --epochs 1 --grad-accum 2 --shard-optimizer --out %s 2>&1", k_mpirun, g_bin, k_lm,
                        run_dir("two_zero4")), 0);
    assert_same_file(run_dir("ref_acc4b"), run_dir("two_zero4"), "final/model.safetensors");
}

static void test_encoder_two_ranks(void **s) {
    NEED_MPI();
    const char *x = "tests/fixtures/train_encoder";
    char args[1024];
    snprintf(args, sizeof args, "--task classify --model %s/tiny_bert --data %s/sst_train.tsv --val-data %s/sst_dev.tsv --text-column sentence "
             "--epochs 1 --batch-size 8 --lr 3e-3 --threads 1 --no-db --seed 3", x, x, x);
    assert_int_equal(sh("%s train %s --grad-accum 2 --out %s 2>&1", g_bin, args, run_dir("ref_enc")), 0);
    assert_int_equal(sh("%s %s train %s --out %s 2>&1", k_mpirun, g_bin, args, run_dir("two_enc")), 0);
    assert_same_file(run_dir("ref_enc"), run_dir("two_enc"), "final/model.safetensors");
    /* the evaluations, shared by the ranks, give the metrics one process computes, digit for digit */
    char pa[1400], pb[1400], *ma = NULL, *mb = NULL;
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", run_dir("ref_enc"));
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", run_dir("two_enc"));
    assert_int_equal(ft_file_read_all(pa, &ma, NULL), 0);
    assert_int_equal(ft_file_read_all(pb, &mb, NULL), 0);
    int n_eval = 0;
    for (char *a = strstr(ma, "{\"type\":\"eval\""), *b = strstr(mb, "{\"type\":\"eval\""); a && b;
         a = strstr(a + 1, "{\"type\":\"eval\""), b = strstr(b + 1, "{\"type\":\"eval\"")) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        n_eval++;
    }
    printf("  %d evaluation lines identical (accuracy, F1, calibration, ...)\n", n_eval);
    assert_true(n_eval >= 2);
    free(ma);
    free(mb);
}

/* the newest checkpoint step of a run directory (-1: none but step 0) */
static int newest_step(const char *dir) {
    char ck[1400];
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    DIR *d = opendir(ck);
    if (!d) return -1;
    int best = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        int st;
        char tail;
        if (sscanf(e->d_name, "step-%d%c", &st, &tail) == 1 && st > best) best = st;
    }
    closedir(d);
    return best;
}

/* the pid of MPI rank `rank` among the children of mpirun (their OMPI_COMM_WORLD_RANK) */
static pid_t rank_pid(pid_t mpirun, int rank) {
    char cmd[128], *out = NULL;
    snprintf(cmd, sizeof cmd, "pgrep -P %d", (int)mpirun);
    if (ft_test_run(cmd, &out) != 0) { free(out); return -1; }
    pid_t found = -1;
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    for (char *save = NULL, *tok = strtok_r(out, "\n", &save); tok && found < 0; tok = strtok_r(NULL, "\n", &save)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/environ", tok);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char env[65536];
        size_t n = fread(env, 1, sizeof env - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i += strlen(env + i) + 1) {
            env[n] = 0;
            if (!strcmp(env + i, want)) { found = (pid_t)atoi(tok); break; }
        }
    }
    free(out);
    return found;
}

/* starts `cmd` (exec'd by sh), waits until its run directory holds a checkpoint past step 0, then kills
 * it: rank 1 of an mpirun with SIGKILL (the other rank must end within 30 s), or the single process */
static void run_and_kill(const char *cmd, const char *dir, int mpi) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char full[4096];
        snprintf(full, sizeof full, "exec %s > %s.log 2>&1", cmd, dir);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    double t0 = now_s();
    while (newest_step(dir) < 2 && now_s() - t0 < 600) {   /* ends early when the run ends: generous for loaded machines */
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { printf("  the run ended before it could be killed\n"); fail(); }
        usleep(20000);
    }
    pid_t victim = mpi ? rank_pid(pid, 1) : pid;
    printf("  killing %s (pid %d) after checkpoint step %d\n", mpi ? "rank 1" : "the run", (int)victim, newest_step(dir));
    assert_true(victim > 0);
    double tk = now_s();
    kill(victim, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0 && now_s() - tk < 60) usleep(20000);
    double took = now_s() - tk;
    printf("  %s ended %.2f s after the kill (exit %d%s)\n", mpi ? "mpirun and rank 0" : "the run", took,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? ", by a signal" : "");
    if (mpi) {
        /* a rank left waiting in a collective never ends: 30 s on the wall clock tells that apart on a loaded machine */
        if (took >= 30) { kill(pid, SIGKILL); waitpid(pid, &st, 0); }
        assert_true(took < 30);
        assert_true(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
    } else waitpid(pid, &st, 0);
}

static void test_kill_rank_then_resume_on_one(void **s) {
    NEED_MPI();
    ref_lm("ref_long", "", 6);
    char cmd[2048];
    const char *dir = run_dir("kill21");
    snprintf(cmd, sizeof cmd, "%s %s train %s --epochs 6 --save-every 2 --out %s", k_mpirun, g_bin, k_lm, dir);
    run_and_kill(cmd, dir, 1);
    assert_int_equal(sh("%s train --resume %s --no-db 2>&1", g_bin, dir), 0);
    assert_same_file(run_dir("ref_long"), dir, "final/model.safetensors");
}

static void test_one_process_resumes_on_two(void **s) {
    NEED_MPI();
    ref_lm("ref_long", "", 6);
    char cmd[2048];
    const char *dir = run_dir("kill12");
    snprintf(cmd, sizeof cmd, "%s train %s --epochs 6 --save-every 2 --grad-accum 2 --shard-optimizer --out %s", g_bin, k_lm, dir);
    run_and_kill(cmd, dir, 0);
    assert_int_equal(sh("%s %s train --resume %s --no-db 2>&1", k_mpirun, g_bin, dir), 0);
    assert_same_file(run_dir("ref_long"), dir, "final/model.safetensors");
    /* 3 ranks cannot split 2 micro-batches per step: refused with a message naming the numbers */
    char *out = NULL;
    char c3[2048];
    snprintf(c3, sizeof c3, "env ASAN_OPTIONS=detect_leaks=0 mpirun --oversubscribe -np 3 %s train --resume %s --no-db 2>&1", g_bin, dir);
    assert_int_not_equal(ft_test_run(c3, &out), 0);
    printf("  3 ranks: %s\n", out && strstr(out, "divides 2") ? "refused (divides 2)" : out);
    assert_non_null(strstr(out, "divides 2"));
    free(out);
}

/* the ZeRO split without MPI: whole parameters, in order, every rank a share near 1/W of the elements */
static void test_zero_plan(void **s) {
    enum { N = 7 };
    ft_param p[N];
    memset(p, 0, sizeof p);
    int64_t sizes[N] = {1000, 10, 10, 3000, 5, 2000, 1000};
    for (int i = 0; i < N; i++) { p[i].t.ndim = 1; p[i].t.shape[0] = sizes[i]; p[i].t.dtype = FT_F32; p[i].trainable = i != 2; }
    int owner[N];
    for (int W = 1; W <= 4; W++) {
        ft__zero_plan(p, N, W, owner);
        int64_t per[4] = {0}, total = 0;
        for (int i = 0; i < N; i++) {
            if (!p[i].trainable) continue;
            assert_true(owner[i] >= 0 && owner[i] < W);
            per[owner[i]] += sizes[i];
            total += sizes[i];
            for (int k = 0; k < i; k++) if (p[k].trainable) assert_true(owner[k] <= owner[i]);   /* runs of params, in rank order */
        }
        printf("  %d ranks:", W);
        for (int r = 0; r < W; r++) printf(" %lld", (long long)per[r]);
        printf(" elements\n");
        int64_t big = 3000;   /* no share exceeds 1/W of the elements by more than the largest parameter */
        for (int r = 0; r < W; r++) assert_true(per[r] <= total / W + big);
    }
}

static int setup_all(void **s) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : FT_BUILD_DIR);
    if (ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_test_mpi_") != 0) return 1;
    /* CI runs as root in a container: Open MPI refuses root unless told, and a container may forbid the
     * cross-process memory copy (CMA); plain shared memory works everywhere */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    char *out = NULL;
    if (ft_test_run("command -v mpirun", &out) != 0) snprintf(g_why, sizeof g_why, "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
    else {
        char cmd[1200];
        free(out);
        out = NULL;
        snprintf(cmd, sizeof cmd, "ldd %s | grep -q libmpi", g_bin);
        if (ft_test_run(cmd, &out) != 0) snprintf(g_why, sizeof g_why, "%s was built without MPI (no mpicc when it was built)", g_bin);
        else g_have_mpi = 1;
    }
    free(out);
    return 0;
}

static int teardown_all(void **s) {
    ft_test_tmpdir_remove(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_plan),
        cmocka_unit_test(test_full_two_ranks_equal_grad_accum),
        cmocka_unit_test(test_lora_two_ranks_equal_grad_accum),
        cmocka_unit_test(test_sharded_optimizer_identical),
        cmocka_unit_test(test_encoder_two_ranks),
        cmocka_unit_test(test_kill_rank_then_resume_on_one),
        cmocka_unit_test(test_one_process_resumes_on_two),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
