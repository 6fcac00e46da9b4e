/* test_checkpoint_trust.c — checkpoints you can trust (issue 14): every checkpoint carries a manifest with
 * the size and CRC-32C of each file; resume verifies it, skips a checkpoint that fails (flipped bytes in its
 * weights or its optimizer state, a truncated or missing file, an edited state.json) with a message, and
 * continues from the newest good one, so the final model is byte-identical to an uninterrupted run's.
 * state.json is validated field by field even when its checksum matches (an edited file with a rewritten
 * manifest). Also: CRC-32C against its published check values, hardware path against the tables. */
#include "testutil.h"
#include "core/crc32c.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "build"
#endif
#define TMP FT_BUILD_DIR "/tmp/ft_ckpt_"
#define REF TMP "ref"

static const char *k_args = "--data tests/fixtures/train/basketball_coach.json --seq-len 64 --batch-size 4 --epochs 3 "
                            "--save-every 2 --keep 100 --eval-every 4 --samples 1 --sample-tokens 8 --lr 1e-3 --seed 7 --threads 2";
enum { LAST_STEP = 42 };   /* 3 epochs of 14 steps */

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *ckpt(const char *run, int step) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/checkpoints/step-%08d", run, step);
    return buf[k];
}

/* run = a copy of the reference run as it was when interrupted right after the checkpoint of step `last`
 * (newer checkpoints, best/ and final/ removed) */
static void interrupted_copy(const char *run, int last) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm -rf %s/final %s/best", run, REF, run, run, run);
    assert_int_equal(sh(cmd), 0);
    for (int s = last + 2; s <= LAST_STEP; s += 2) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", ckpt(run, s));
        assert_int_equal(sh(cmd), 0);
    }
}

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    assert_true(c != EOF);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

/* rewrites the manifest entry of dir/name after the file changed (what an editor of the checkpoint could do);
 * removes the entry when the file is gone */
static void fix_manifest(const char *dir, const char *name) {
    char mp[600], fp[600];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    snprintf(fp, sizeof fp, "%s/%s", dir, name);
    char *text;
    assert_int_equal(ft_file_read_all(mp, &text, NULL), FT_OK);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *files = cJSON_GetObjectItem(j, "files");
    int i = 0;
    for (cJSON *f = files->child; f; f = f->next, i++) {
        if (strcmp(cJSON_GetObjectItem(f, "name")->valuestring, name)) continue;
        if (!ft_path_exists(fp)) { cJSON_DeleteItemFromArray(files, i); break; }
        char *data;
        size_t n;
        assert_int_equal(ft_file_read_all(fp, &data, &n), FT_OK);
        char crc[16];
        snprintf(crc, sizeof crc, "%08x", ft__crc32c(0, data, n));
        free(data);
        cJSON_ReplaceItemInObject(f, "bytes", cJSON_CreateNumber((double)n));
        cJSON_ReplaceItemInObject(f, "crc32c", cJSON_CreateString(crc));
        break;
    }
    text = cJSON_Print(j);
    cJSON_Delete(j);
    assert_int_equal(ft_file_write_atomic(mp, text, strlen(text)), FT_OK);
    free(text);
}

/* resumes run; its exit status, its stderr in *err (malloc'd) */
static int resume(const char *run, char **err) {
    return ft_test_finetune(err, "train --resume %s", run);
}

static void expect_final_identical(const char *run) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/final/model.safetensors", run);
    snprintf(b, sizeof b, "%s/final/model.safetensors", REF);
    int same = ft_test_files_equal(a, b);
    printf("  final model %s the uninterrupted run's\n", same ? "byte-identical to" : "DIFFERENT from");
    assert_true(same);
}

static void test_crc32c(void **s) {
    (void)s;
    /* the check values of CRC-32C (RFC 3720 B.4 and the CRC catalogue) */
    assert_int_equal(ft__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(ft__crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char z[32] = {0}, o[32], inc[32];
    memset(o, 0xFF, sizeof o);
    for (int i = 0; i < 32; i++) inc[i] = (unsigned char)i;
    assert_int_equal(ft__crc32c(0, z, 32), 0x8A9136AAu);
    assert_int_equal(ft__crc32c(0, o, 32), 0x62A8AB43u);
    assert_int_equal(ft__crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(ft__crc32c(0, "", 0), 0u);
    /* hardware against tables over every length and alignment, and chaining */
    unsigned char buf[1100];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof buf; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = (unsigned char)x; }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 1 + n / 8) {
            uint32_t a = ft__crc32c(0, buf + off, n), b = ft__crc32c_sw(0, buf + off, n);
            assert_int_equal(a, b);
            size_t h = n / 3;
            assert_int_equal(ft__crc32c(ft__crc32c(0, buf + off, h), buf + off + h, n - h), a);
        }
}

static void test_reference_run(void **s) {
    (void)s;
    char *out;
    sh("rm -rf " REF);
    int rc = ft_test_finetune(&out, "train %s --out %s", k_args, REF);
    free(out);
    assert_int_equal(rc, 0);
    /* every checkpoint verifies; each holds a manifest listing its files */
    int64_t steps[64];
    int n = ft_ckpt_list(REF, steps, 64);
    printf("  %d checkpoints, steps %lld .. %lld\n", n, (long long)steps[0], (long long)steps[n - 1]);
    assert_int_equal(n, LAST_STEP / 2 + 1);
    for (int i = 0; i < n; i++) {
        int vr = ft_ckpt_verify(ckpt(REF, (int)steps[i]));
        if (vr) printf("  %s\n", ft_last_error());
        assert_int_equal(vr, FT_OK);
    }
    char mp[600];
    snprintf(mp, sizeof mp, "%s/manifest.json", ckpt(REF, 30));
    char *m;
    assert_int_equal(ft_file_read_all(mp, &m, NULL), FT_OK);
    printf("  %s", m);
    assert_non_null(strstr(m, "\"name\": \"model.safetensors\""));
    assert_non_null(strstr(m, "\"name\": \"optimizer.bin\""));
    assert_non_null(strstr(m, "\"name\": \"state.json\""));
    assert_non_null(strstr(m, "\"crc32c\": \""));
    free(m);
}

/* flipped bytes in the newest checkpoint's weights, then (another run) in its optimizer state: detected,
 * skipped, resumed from the previous checkpoint, final model byte-identical */
static void test_flipped_bytes_fall_back(void **s) {
    (void)s;
    static const char *const files[] = {"model.safetensors", "optimizer.bin"};
    for (int f = 0; f < 2; f++) {
        const char *run = TMP "flip";
        interrupted_copy(run, 30);
        char p[600];
        snprintf(p, sizeof p, "%s/%s", ckpt(run, 30), files[f]);
        flip_byte(p, 4000 + 977 * f);
        int vr = ft_ckpt_verify(ckpt(run, 30));
        printf("  verify: %s\n", ft_last_error());
        assert_int_equal(vr, FT_ERR_FORMAT);
        assert_non_null(strstr(ft_last_error(), files[f]));
        assert_non_null(strstr(ft_last_error(), "CRC-32C"));
        char *err;
        int rc = resume(run, &err);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(err, "checkpoint step 30 is not usable"));
        assert_non_null(strstr(err, files[f]));
        assert_non_null(strstr(err, "resuming from " TMP "flip/checkpoints/step-00000028"));
        free(err);
        expect_final_identical(run);
        /* the damaged checkpoint was replaced when the run passed step 30 again */
        assert_int_equal(ft_ckpt_verify(ckpt(run, 30)), FT_OK);
    }
}

/* other damage, one checkpoint each: truncated optimizer state, missing weights, a file added; the two
 * newest damaged: back two */
static void test_other_damage(void **s) {
    (void)s;
    const char *run = TMP "dmg";
    interrupted_copy(run, 30);
    char p[600], cmd[1200];
    /* step 30: the optimizer state loses its last 1000 bytes and the manifest is rewritten to match, so only
     * the loader sees it: the message must say what is wrong ("2080256 bytes, this run needs 2080256" before) */
    snprintf(p, sizeof p, "%s/optimizer.bin", ckpt(run, 30));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - 1000), 0);
    fix_manifest(ckpt(run, 30), "optimizer.bin");
    /* step 28: its weights deleted (and dropped from the manifest): no "PyTorch pickle weights (optimizer.bin)" */
    snprintf(p, sizeof p, "%s/model.safetensors", ckpt(run, 28));
    assert_int_equal(unlink(p), 0);
    fix_manifest(ckpt(run, 28), "model.safetensors");
    /* step 26: a file that is not in the manifest */
    snprintf(cmd, sizeof cmd, "echo extra > %s/notes.txt", ckpt(run, 26));
    assert_int_equal(sh(cmd), 0);
    char *err;
    assert_int_equal(resume(run, &err), 0);
    printf("%s", err);
    assert_non_null(strstr(err, "checkpoint step 30 is not usable"));
    assert_non_null(strstr(err, "truncated or padded"));
    assert_null(strstr(err, "this run needs"));
    assert_non_null(strstr(err, "checkpoint step 28 is not usable"));
    assert_non_null(strstr(err, "no model weights found"));
    assert_null(strstr(err, "pickle"));
    assert_non_null(strstr(err, "checkpoint step 26 is not usable"));
    assert_non_null(strstr(err, "notes.txt is not in the manifest"));
    assert_non_null(strstr(err, "resuming from " TMP "dmg/checkpoints/step-00000024"));
    free(err);
    expect_final_identical(run);
}

/* state.json edited and its manifest entry rewritten: every field is still checked against the run */
static void test_state_json_validated(void **s) {
    (void)s;
    static const struct { const char *edit, *want; } cases[] = {
        /* a sink position of 1e12 extended metrics.jsonl to a 1 TB sparse file */
        {"\"sinks\": {\"metrics\": 1000000000000}", "position 1000000000000 is past its end"},
        {"\"metrics_bytes\": 1e12, \"sinks\": {}", "position 1000000000000 is past its end"},
        {"\"step\": 1e18", "\"step\" is 1e+18; this run needs an integer in [0, 42]"},
        {"\"step\": 28", "\"step\" is 28 in the checkpoint of step 30"},
        {"\"cursor\": -5", "\"cursor\" is -5"},
        {"\"epoch\": \"abc\"", "\"epoch\" is a string, not a number"},
        {"\"epoch\": 99", "\"epoch\" is 99"},
        {"\"best\": \"nan\"", "\"best\" is nan; it must be a finite number"},
        {"\"sinks\": [1, 2]", "\"sinks\" is a list, not an object"},
        {"\"bad_evals\": 3.5", "\"bad_evals\" is 3.5"},
    };
    const char *run = TMP "state";
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        interrupted_copy(run, 30);
        char p[600];
        snprintf(p, sizeof p, "%s/state.json", ckpt(run, 30));
        char *text;
        assert_int_equal(ft_file_read_all(p, &text, NULL), FT_OK);
        /* the edit goes first in the object: later duplicates do not matter, cJSON takes the first key */
        char *edited = malloc(strlen(text) + strlen(cases[i].edit) + 8);
        sprintf(edited, "{%s, %s", cases[i].edit, text + 1);
        free(text);
        assert_int_equal(ft_file_write_atomic(p, edited, strlen(edited)), FT_OK);
        free(edited);
        fix_manifest(ckpt(run, 30), "state.json");
        assert_int_equal(ft_ckpt_verify(ckpt(run, 30)), FT_OK);   /* the checksum matches: only validation catches it */
        char mp[600];
        snprintf(mp, sizeof mp, "%s/metrics.jsonl", run);
        struct stat before, after;
        assert_int_equal(stat(mp, &before), 0);
        char *err;
        int rc = resume(run, &err);
        const char *line = strstr(err, "checkpoint step 30 is not usable");
        printf("  %-40s -> %.*s\n", cases[i].edit, line ? (int)strcspn(line, "\n") : 0, line ? line : "");
        assert_int_equal(rc, 0);
        assert_non_null(line);
        assert_non_null(strstr(err, cases[i].want));
        assert_non_null(strstr(err, "resuming from " TMP "state/checkpoints/step-00000028"));
        free(err);
        assert_int_equal(stat(mp, &after), 0);
        assert_true(after.st_size < (1 << 20));
        if (i == 0) expect_final_identical(run);
    }
}

/* every checkpoint unusable: a clear error, nothing started over */
static void test_none_usable(void **s) {
    (void)s;
    const char *run = TMP "none";
    interrupted_copy(run, 4);
    for (int step = 0; step <= 4; step += 2) {
        char p[600];
        snprintf(p, sizeof p, "%s/model.safetensors", ckpt(run, step));
        flip_byte(p, 3000);
    }
    char *err;
    int rc = resume(run, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "no usable checkpoint (3 tried"));
    free(err);
    char p[600];
    snprintf(p, sizeof p, "%s/final", run);
    assert_false(ft_path_exists(p));
}

static int teardown(void **s) {
    (void)s;
    sh("rm -rf " TMP "ref " TMP "flip " TMP "dmg " TMP "state " TMP "none");
    return 0;
}

int main(void) {
    if (system("mkdir -p " FT_BUILD_DIR "/tmp") != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_reference_run),
        cmocka_unit_test(test_flipped_bytes_fall_back),
        cmocka_unit_test(test_other_damage),
        cmocka_unit_test(test_state_json_validated),
        cmocka_unit_test(test_none_usable),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
