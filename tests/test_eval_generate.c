/* test_eval_generate.c — `finetune eval --generate` end to end on the embedded stories260K.
 *
 * The references are the model's own outputs: `finetune generate` (greedy, then 3-beam search) writes a
 * continuation for each of 7 prompts, the test stores them as prompt-completion JSONL, and `eval --generate`
 * with the same decoding must reproduce every one (prediction == reference, exact match 100, BLEU 100,
 * ROUGE-L 1) — through the prompt / completion split of the data reader, batched greedy generation over 4
 * slots and beam search. Then: --format-regex and --refusal-regex / --out-of-scope counts equal the
 * predictions' own flags and a recount with the same pattern semantics; predictions.jsonl, metrics.jsonl
 * and report.html are written; --max-examples; with a LoRA adapter (--adapter) the predictions are those of
 * `generate --adapter` and differ without it; a text file (no completion) is an error. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[512];

static const char *PROMPTS[] = {"Once upon a time", "The cat", "Lily wanted to", "One day, Tom", "The sun was",
                                "Ben and Mia went", "The little bird"};
enum { NP = 7, MAX_NEW = 24 };

static int setup(void **state) { (void)state; return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_test_eval_gen"); }
static int teardown(void **state) { (void)state; return ft_test_tmpdir_remove(g_dir); }

static char *read_file(const char *path) {   /* the whole file, NUL-terminated; NULL if unreadable */
    char *s = NULL;
    return ft_file_read_all(path, &s, NULL) == FT_OK ? s : NULL;
}

/* writes data.jsonl of the prompts and the model's continuations with the given extra generate flags */
static void write_self_references(const char *path, const char *flags) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < NP; i++) {
        char *out = NULL;
        char cmd[2048];   /* stdout alone: with an adapter, generate tells on stderr which one it loaded */
        const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
        snprintf(cmd, sizeof cmd, "%s/finetune generate --prompt '%s' --max-tokens %d %s 2>/dev/null", build, PROMPTS[i], MAX_NEW, flags);
        assert_int_equal(ft_test_run(cmd, &out), 0);
        size_t pl = strlen(PROMPTS[i]), n = strlen(out);
        assert_true(n > pl && strncmp(out, PROMPTS[i], pl) == 0);
        if (out[n - 1] == '\n') out[--n] = 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "prompt", PROMPTS[i]);
        cJSON_AddStringToObject(o, "completion", out + pl);
        char *line = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", line);
        cJSON_free(line);
        cJSON_Delete(o);
        free(out);
    }
    fclose(f);
}

static cJSON *run_eval(const char *extra, const char *out_dir, const char *data) {
    char *out = NULL;
    int rc = ft_test_finetune(&out, "eval --generate --data %s --out %s --max-new-tokens %d --json --bootstrap 200 %s",
                              data, out_dir, MAX_NEW, extra);
    assert_int_equal(rc, 0);
    char *last = out + strlen(out);   /* the JSON summary is the last line (stderr comes with it) */
    while (last > out && last[-1] == '\n') *--last = 0;
    while (last > out && last[-1] != '\n') last--;
    cJSON *j = cJSON_Parse(last);
    if (!j) printf("not JSON: %s\n", out);
    assert_non_null(j);
    free(out);
    return j;
}

static double score(const cJSON *j, const char *k) {
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scores"), k), "score")->valuedouble;
}

/* every prediction equals its reference; returns the number of lines */
static int check_predictions(const char *out_dir) {
    char *text = read_file(ft_test_path(out_dir, "predictions.jsonl"));
    assert_non_null(text);
    int n = 0, same = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const char *ref = cJSON_GetObjectItem(j, "reference")->valuestring, *pred = cJSON_GetObjectItem(j, "prediction")->valuestring;
        if (strcmp(ref, pred) == 0) same++;
        else printf("  differs: reference '%s'\n           prediction '%s'\n", ref, pred);
        n++;
        cJSON_Delete(j);
    }
    free(text);
    printf("  %s: %d of %d predictions equal their reference\n", out_dir, same, n);
    assert_int_equal(same, n);
    return n;
}

static void test_reproduces_own_greedy_and_beam_outputs(void **state) {
    (void)state;
    char data[600], out_dir[600];
    snprintf(data, sizeof data, "%s", ft_test_path(g_dir, "greedy.jsonl"));
    write_self_references(data, "--temperature 0");
    snprintf(out_dir, sizeof out_dir, "%s", ft_test_path(g_dir, "greedy_out"));
    cJSON *j = run_eval("--batch 4", out_dir, data);
    assert_int_equal(cJSON_GetObjectItem(j, "examples")->valueint, NP);
    printf("  greedy: bleu %.4f exact_match %.4f rougeL %.4f\n", score(j, "bleu"), score(j, "exact_match"), score(j, "rougeL"));
    assert_true(score(j, "exact_match") == 100.0);
    assert_true(score(j, "bleu") > 99.999);
    assert_true(score(j, "rougeL") > 0.999999);
    assert_int_equal(check_predictions(out_dir), NP);
    char *report = read_file(ft_test_path(out_dir, "report.html"));
    assert_non_null(report);
    assert_non_null(strstr(report, "Generation evaluation"));
    assert_non_null(strstr(report, "best examples by rougeL"));
    free(report);
    char *metrics = read_file(ft_test_path(out_dir, "metrics.jsonl"));
    assert_non_null(strstr(metrics, "\"type\":\"generate\""));
    free(metrics);
    cJSON_Delete(j);

    snprintf(data, sizeof data, "%s", ft_test_path(g_dir, "beam.jsonl"));
    write_self_references(data, "--num-beams 3");
    snprintf(out_dir, sizeof out_dir, "%s", ft_test_path(g_dir, "beam_out"));
    j = run_eval("--num-beams 3 --max-examples 5", out_dir, data);
    assert_int_equal(cJSON_GetObjectItem(j, "examples")->valueint, 5);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "decoding"), "method")->valuestring, "beam");
    assert_true(score(j, "exact_match") == 100.0);
    assert_int_equal(check_predictions(out_dir), 5);
    cJSON_Delete(j);
}

/* the checks' counts equal the predictions' flags, and those equal a recount */
static void test_format_and_refusal_checks(void **state) {
    (void)state;
    char data[600], oos[600], out_dir[600];
    snprintf(data, sizeof data, "%s", ft_test_path(g_dir, "greedy.jsonl"));
    snprintf(oos, sizeof oos, "%s", ft_test_path(g_dir, "oos.txt"));
    FILE *f = fopen(oos, "w");
    fprintf(f, "The dog\n\nA big red ball\nMom said\n");
    fclose(f);
    snprintf(out_dir, sizeof out_dir, "%s", ft_test_path(g_dir, "checks_out"));
    char extra[800];
    snprintf(extra, sizeof extra, "--format-regex '\\bwas\\b' --refusal-regex '(?i)\\bhe\\b' --out-of-scope %s", oos);
    cJSON *j = run_eval(extra, out_dir, data);
    const cJSON *fm = cJSON_GetObjectItem(j, "format"), *rf = cJSON_GetObjectItem(j, "refusal");
    assert_non_null(fm);
    assert_non_null(rf);
    char *text = read_file(ft_test_path(out_dir, "predictions.jsonl"));
    int n_in = 0, n_out = 0, fmt = 0, ref_in = 0, ref_out = 0, recount_fmt = 0, recount_ref = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *p = cJSON_Parse(line);
        int in = strcmp(cJSON_GetObjectItem(p, "scope")->valuestring, "in") == 0;
        const char *pred = cJSON_GetObjectItem(p, "prediction")->valuestring;
        int refused = cJSON_IsTrue(cJSON_GetObjectItem(p, "refused"));
        /* recount: " was " / "he" as whole words (the predictions are plain prose) */
        int has_was = 0, has_he = 0;
        for (const char *s = pred; *s; s++) {
            int start = s == pred || !((s[-1] | 32) >= 'a' && (s[-1] | 32) <= 'z');
            if (start && !strncmp(s, "was", 3) && !((s[3] | 32) >= 'a' && (s[3] | 32) <= 'z')) has_was = 1;
            if (start && !strncasecmp(s, "he", 2) && !((s[2] | 32) >= 'a' && (s[2] | 32) <= 'z')) has_he = 1;
        }
        if (in) {
            n_in++;
            fmt += cJSON_IsTrue(cJSON_GetObjectItem(p, "format_ok"));
            recount_fmt += has_was;
            ref_in += refused;
        } else {
            n_out++;
            ref_out += refused;
            assert_null(cJSON_GetObjectItem(p, "scores"));
        }
        recount_ref += has_he;
        assert_int_equal(refused, has_he);
        cJSON_Delete(p);
    }
    free(text);
    printf("  format %d / %d, refused in-scope %d / %d, out-of-scope %d / %d\n", fmt, n_in, ref_in, n_in, ref_out, n_out);
    assert_int_equal(n_in, NP);
    assert_int_equal(n_out, 3);
    assert_int_equal(fmt, recount_fmt);
    assert_int_equal(ref_in + ref_out, recount_ref);
    assert_int_equal(cJSON_GetObjectItem(fm, "matched")->valueint, fmt);
    assert_int_equal(cJSON_GetObjectItem(rf, "in_scope_refused")->valueint, ref_in);
    assert_int_equal(cJSON_GetObjectItem(rf, "out_of_scope_refused")->valueint, ref_out);
    assert_int_equal(cJSON_GetObjectItem(rf, "out_of_scope")->valueint, 3);
    cJSON_Delete(j);
}

/* with a LoRA adapter: eval --generate --adapter reproduces generate --adapter; without the adapter it does not */
static void test_adapter(void **state) {
    (void)state;
    char ad[600], data[600], flags[800], out_dir[600];
    snprintf(ad, sizeof ad, "%s", ft_test_path(g_dir, "adapter"));
    assert_int_equal(ft_test_make_lora_dir("models/stories260K", ad, "q_proj,v_proj", 4, 7, 0.5f), FT_OK);
    snprintf(data, sizeof data, "%s", ft_test_path(g_dir, "adapter.jsonl"));
    snprintf(flags, sizeof flags, "--temperature 0 --adapter %s", ad);
    write_self_references(data, flags);
    snprintf(out_dir, sizeof out_dir, "%s", ft_test_path(g_dir, "adapter_out"));
    snprintf(flags, sizeof flags, "--adapter %s", ad);
    cJSON *j = run_eval(flags, out_dir, data);
    printf("  with the adapter: exact match %.1f\n", score(j, "exact_match"));
    assert_true(score(j, "exact_match") == 100.0);
    assert_int_equal(check_predictions(out_dir), NP);
    cJSON_Delete(j);
    snprintf(out_dir, sizeof out_dir, "%s", ft_test_path(g_dir, "no_adapter_out"));
    j = run_eval("", out_dir, data);
    printf("  without it: exact match %.1f\n", score(j, "exact_match"));
    assert_true(score(j, "exact_match") < 100.0);
    cJSON_Delete(j);
}

static void test_errors(void **state) {
    (void)state;
    char txt[600], *out = NULL;
    snprintf(txt, sizeof txt, "%s", ft_test_path(g_dir, "plain.txt"));
    FILE *f = fopen(txt, "w");
    fprintf(f, "Just some text without a prompt.\n");
    fclose(f);
    assert_int_equal(ft_test_finetune(&out, "eval --generate --data %s --out %s 2>&1", txt, ft_test_path(g_dir, "err_out")), 1);
    assert_non_null(strstr(out, "no prompt / completion split"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "eval --generate --data %s --format-regex '(' 2>&1", txt), 1);
    assert_non_null(strstr(out, "--format-regex"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "eval --generate --data %s --num-beams 2 --temperature 0.7 2>&1", txt), 2);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reproduces_own_greedy_and_beam_outputs),
        cmocka_unit_test(test_format_and_refusal_checks),
        cmocka_unit_test(test_adapter),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
