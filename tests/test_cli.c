/* test_cli.c — the finetune program end to end (build/finetune, or $BUILD/finetune):
 * the embedded default model's greedy story equals llama2.c's reference output; a prompt's greedy
 * continuation equals the reference implementation's ids; `generate --ids` on GPT-2 / Llama HF
 * fixtures equals transformers.generate; errors exit non-zero with a message naming the problem. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_bin[1024];

static void test_default_model_reference_story(void **s) {
    (void)s;
    char cmd[2048], *out, *want;
    snprintf(cmd, sizeof cmd, "%s generate --temperature 0 --max-tokens 200", g_bin);
    assert_int_equal(ft_test_run(cmd, &out), 0);
    assert_int_equal(ft_file_read_all(ft_fixture("convert/greedy_t0_n200.txt"), &want, NULL), 0);
    int same = strcmp(out, want) == 0;
    printf("  embedded stories260K, greedy from BOS, 200 tokens: %zu bytes, %s llama2.c's reference story\n", strlen(out),
           same ? "identical to" : "DIFFERENT from");
    if (!same) printf("got:\n%s\nwant:\n%s\n", out, want);
    assert_true(same);
    free(out);
    free(want);
}

static void test_prompt_continuation(void **s) {
    (void)s;
    char *prompt, *ids, cmd[4096], *out;
    assert_int_equal(ft_file_read_all(ft_fixture("convert/greedy_prompt.txt"), &prompt, NULL), 0);
    assert_int_equal(ft_file_read_all(ft_fixture("convert/greedy_prompt.ids"), &ids, NULL), 0);
    char *nl = strchr(prompt, '\n');
    if (nl) *nl = 0;
    char *line2 = strchr(ids, '\n');
    assert_non_null(line2);
    *line2++ = 0;
    char *end = strchr(line2, '\n');
    if (end) *end = 0;
    int n = 1;
    for (char *c = line2; *c; c++) n += *c == ' ';
    snprintf(cmd, sizeof cmd, "%s generate --prompt '%s' --temperature 0 --max-tokens %d --ids --ignore-eos", g_bin, prompt, n);
    assert_int_equal(ft_test_run(cmd, &out), 0);
    char *onl = strchr(out, '\n');
    if (onl) *onl = 0;
    int same = strcmp(out, line2) == 0;
    printf("  prompt \"%s\": %d greedy ids %s the reference\n", prompt, n, same ? "identical to" : "DIFFERENT from");
    if (!same) printf("got:  %s\nwant: %s\n", out, line2);
    assert_true(same);
    free(out);
    free(prompt);
    free(ids);
}

static void cli_greedy_fixture(const char *name) {
    char dir[1024], ref[1200];
    snprintf(dir, sizeof dir, "%s", ft_fixture(name));
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, ref), 0);
    const ft_st_entry *pe = ft_st_find(st, "gen_prompt"), *ge = ft_st_find(st, "gen_greedy");
    int P = (int)pe->shape[pe->ndim - 1], G = (int)ge->shape[ge->ndim - 1];
    int *prompt = malloc(sizeof(int) * (size_t)P), *want = malloc(sizeof(int) * (size_t)G);
    assert_int_equal(ft_st_read_i32(st, "gen_prompt", pe->shape, pe->ndim, prompt), 0);
    assert_int_equal(ft_st_read_i32(st, "gen_greedy", ge->shape, ge->ndim, want), 0);
    ft_st_close(st);
    char cmd[4096], *out;
    int o = snprintf(cmd, sizeof cmd, "%s generate --model %s --temperature 0 --ids --ignore-eos --max-tokens %d --prompt-ids '", g_bin, dir, G - P);
    for (int i = 0; i < P; i++) o += snprintf(cmd + o, sizeof cmd - (size_t)o, i ? " %d" : "%d", prompt[i]);
    snprintf(cmd + o, sizeof cmd - (size_t)o, "'");
    assert_int_equal(ft_test_run(cmd, &out), 0);
    char expect[4096];
    int e = 0;
    for (int i = P; i < G; i++) e += snprintf(expect + e, sizeof expect - (size_t)e, i > P ? " %d" : "%d", want[i]);
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
    int same = strcmp(out, expect) == 0;
    printf("  finetune generate --ids on %s: %d tokens %s transformers.generate\n", name, G - P, same ? "identical to" : "DIFFERENT from");
    if (!same) printf("got:  %s\nwant: %s\n", out, expect);
    assert_true(same);
    free(out);
    free(prompt);
    free(want);
}

static void test_generate_ids_matches_transformers(void **s) {
    (void)s;
    cli_greedy_fixture("decoder/gpt2_tiny");
    cli_greedy_fixture("decoder/gpt2_noprefix");
    cli_greedy_fixture("decoder/llama_gqa");
    cli_greedy_fixture("decoder/qwen2");
}

static void expect_fail(const char *args, int code, const char *needle) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", g_bin, args);
    int rc = ft_test_run(cmd, &out);
    printf("  finetune %s -> exit %d: %s", args, rc, out);
    assert_int_equal(rc, code);
    assert_non_null(strstr(out, needle));
    free(out);
}

static void test_errors(void **s) {
    (void)s;
    expect_fail("generate --model /nonexistent/dir", 1, "/nonexistent/dir");
    expect_fail("generate --max-tokens abc", 2, "--max-tokens");
    expect_fail("generate --bogus", 2, "unknown option");
    expect_fail("frobnicate", 2, "unknown command");
    expect_fail("generate --top-p 1.5", 2, "top-p");
}

int main(void) {
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/finetune", b && *b ? b : "build");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_model_reference_story),
        cmocka_unit_test(test_prompt_continuation),
        cmocka_unit_test(test_generate_ids_matches_transformers),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
