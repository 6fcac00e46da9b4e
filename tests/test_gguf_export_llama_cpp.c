/* test_gguf_export_llama_cpp.c — runs tests/gguf/llama_cpp_check.py: llama.cpp (PyPI llama-cpp-python) loads the
 * GGUF files `finetune export` writes and gives the same greedy ids as `finetune generate` (a fine-tuned
 * stories260K, a small GPT-2, a LoRA adapter GGUF over its base), and its own Q8_0 / Q4_0 / Q4_K
 * quantization of our F32 file is byte-identical to ours (greedy ids compared exactly, but for a first
 * difference at a near tie of the top two logits on both sides: test_near_tie_rule checks that rule). When llama-cpp-python is not installed the
 * script prints "SKIP: llama-cpp-python not installed" and this test passes. Not run in sanitizer builds
 * (the script drives the finetune binary many times; test_gguf_export covers the export code there). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_llama_cpp_check(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("SKIP: the llama.cpp check runs in the plain build\n");
    return;
#endif
    char dir[256];
    assert_int_equal(ft_test_tmpdir_make(dir, sizeof dir, "ft_test_llama_cpp"), 0);
    const char *build = getenv("BUILD") ? getenv("BUILD") : FT_BUILD_DIR;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 tests/gguf/llama_cpp_check.py --finetune %s/finetune --tmp %s 2>&1", build, dir);
    char *out = NULL;
    int rc = ft_test_run(cmd, &out);
    printf("%s", out ? out : "");
    if (out && strstr(out, "SKIP:") == out) printf("(llama-cpp-python missing: install it with scripts/setup.sh)\n");
    ft_test_tmpdir_remove(dir);
    free(out);
    assert_int_equal(rc, 0);
}

/* the greedy comparison's tolerance (a first difference accepted only at a near tie of the top two logits on
 * both sides) on made-up logits: accepts the tie, refuses a clear gap on either side, a third id, a length */
static void test_near_tie_rule(void **state) {
    (void)state;
    char *out = NULL;
    int rc = ft_test_run("python3 tests/gguf/llama_cpp_check.py --self-test 2>&1", &out);
    printf("%s", out ? out : "");
    int skipped = out && strstr(out, "SKIP:") == out;
    free(out);
    if (skipped) skip();
    assert_int_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_near_tie_rule), cmocka_unit_test(test_llama_cpp_check)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
