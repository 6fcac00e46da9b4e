/* test_fuzz_seeds.c — every libFuzzer target of fuzz/ replayed over its seed corpus (fuzz/corpus/<name>/):
 * the targets compile with the project's compiler and the seeds — real files of every format, each parser's
 * happy path — run clean (also under `make SANITIZE=address test`). The fuzzing itself is `make fuzz`.
 * The Makefile builds each fuzz/fuzz_<name>.c with its entry point renamed to ft_fuzz_<name>. A target
 * added to fuzz/ but not listed here fails the test. */
#include "testutil.h"
#include "finetune/status.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FT_FUZZ_TARGETS(X) X(chat_template) X(checkpoint) X(data) X(gguf) X(http_request) X(llama2c) X(model_config) X(peft_config) X(safetensors) \
    X(tokenizer) X(score) X(dq_table) X(wordnet)
#define DECLARE(n) int ft_fuzz_##n(const uint8_t *data, size_t size);
FT_FUZZ_TARGETS(DECLARE)
#define ENTRY(n) {#n, ft_fuzz_##n},
static const struct { const char *name; int (*fn)(const uint8_t *, size_t); } k_targets[] = {FT_FUZZ_TARGETS(ENTRY)};
enum { N_TARGETS = sizeof k_targets / sizeof *k_targets };

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)(len > 0 ? len : 1));
    if (b && len > 0 && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)(len > 0 ? len : 0);
    return b;
}

static void test_every_target_is_registered(void **st) {
    (void)st;
    DIR *d = opendir("fuzz");
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "fuzz_", 5) || l < 8 || strcmp(e->d_name + l - 2, ".c")) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(l - 7), e->d_name + 5);
        int known = 0;
        for (int i = 0; i < N_TARGETS; i++) known |= !strcmp(k_targets[i].name, name);
        if (!known) printf("  fuzz/%s is not listed in FT_FUZZ_TARGETS\n", e->d_name);
        assert_true(known);
        found++;
    }
    closedir(d);
    printf("  %d fuzz targets in fuzz/, all replayed here\n", found);
    assert_int_equal(found, N_TARGETS);
}

static void test_seeds(void **st) {
    (void)st;
    for (int i = 0; i < N_TARGETS; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "fuzz/corpus/%s", k_targets[i].name);
        DIR *d = opendir(dir);
        assert_non_null(d);
        int n = 0;
        size_t bytes = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            size_t len = 0;
            uint8_t *b = read_file(path, &len);
            assert_non_null(b);
            assert_int_equal(k_targets[i].fn(b, len), 0);
            free(b);
            ft_error_clear();
            n++;
            bytes += len;
        }
        closedir(d);
        printf("  %-14s %2d seeds replayed (%zu bytes)\n", k_targets[i].name, n, bytes);
        assert_true(n >= 2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_target_is_registered),
        cmocka_unit_test(test_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
