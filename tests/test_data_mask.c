/* test_data_mask.c — rendering to token ids with a loss mask (data.h): completion-only vs all,
 * chat assistant-only through a chat template (ChatML on the Qwen2 test tokenizer), dialogue
 * response speaker, BOS per the tokenizer (SentencePiece fixture adds it, GPT-2 does not), EOS
 * appended and learned even though GPT-2's pad is its EOS, truncation right / left / none.
 * The learned tokens are decoded back to text and compared with the exact strings expected. */
#include "testutil.h"

#include "finetune/chat.h"
#include "finetune/data.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ft_tokenizer *g_gpt2, *g_spm, *g_qwen;
static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    ft_log_set_level(FT_LOG_ERROR);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ft_test_data_mask_XXXXXX");
    if (!mkdtemp(g_tmp)) return -1;
    if (ft_tokenizer_load(&g_gpt2, ft_fixture("tokenizer/gpt2")) < 0) return -1;
    if (ft_tokenizer_load(&g_spm, ft_fixture("tokenizer/spm")) < 0) return -1;
    if (ft_tokenizer_load(&g_qwen, ft_fixture("tokenizer/qwen2")) < 0) return -1;
    return 0;
}
static int teardown(void **state) {
    (void)state;
    ft_tokenizer_free(g_gpt2);
    ft_tokenizer_free(g_spm);
    ft_tokenizer_free(g_qwen);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_tmp(const char *name, const char *content) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static ft_dataset *load(const char *path, const ft_tokenizer *tok, const ft_data_options *o) {
    ft_dataset *ds = NULL;
    int rc = ft_dataset_load(&ds, path, tok, o);
    if (rc < 0) printf("load %s: %s\n", path, ft_last_error());
    assert_int_equal(rc, FT_OK);
    return ds;
}

/* decodes the tokens of example i whose learned flag == want (malloc'd) */
static char *decode_where(const ft_tokenizer *tok, const ft_dataset *ds, int64_t i, int want) {
    const int *ids;
    const uint8_t *L;
    int n;
    assert_int_equal(ft_dataset_example(ds, i, &ids, &L, &n), FT_OK);
    int *sel = malloc((size_t)n * sizeof *sel);
    int k = 0;
    for (int j = 0; j < n; j++) if (L[j] == want) sel[k++] = ids[j];
    char *s;
    size_t len;
    assert_int_equal(ft_tokenizer_decode(tok, sel, k, 0, &s, &len), FT_OK);
    free(sel);
    return s;
}

static char *cat(const char *a, const char *b) {
    char *s = malloc(strlen(a) + strlen(b) + 1);
    strcpy(s, a);
    strcat(s, b);
    return s;
}

static void test_completion_only(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load(ft_fixture("data/pc_mini.jsonl"), g_gpt2, &o);
    assert_int_equal(ft_dataset_stats(ds)->train_on, FT_TRAIN_ON_COMPLETION);
    for (int64_t i = 0; i < ft_dataset_size(ds); i++) {
        const char *text = ft_dataset_text(ds, i, NULL);
        const char *agent = strstr(text, "\nAgent:");
        assert_non_null(agent);
        const char *completion = agent + strlen("\nAgent:");
        char *learned = decode_where(g_gpt2, ds, i, 1), *not_learned = decode_where(g_gpt2, ds, i, 0);
        char *want = cat(completion, "<|endoftext|>");
        printf("example %lld: not learned \"%s\" | learned \"%.40s...\"\n", (long long)i, not_learned, learned);
        assert_string_equal(learned, want);
        assert_int_equal(strlen(not_learned), (size_t)(completion - text));
        assert_memory_equal(not_learned, text, (size_t)(completion - text));
        free(learned); free(not_learned); free(want);
    }
    ft_dataset_free(ds);
    /* train_on all: every token after the first is learned */
    o.train_on = FT_TRAIN_ON_ALL;
    ds = load(ft_fixture("data/pc_mini.jsonl"), g_gpt2, &o);
    const int *ids;
    const uint8_t *L;
    int n;
    ft_dataset_example(ds, 0, &ids, &L, &n);
    for (int j = 1; j < n; j++) assert_int_equal(L[j], 1);
    assert_int_equal(ft_dataset_stats(ds)->learned, ft_dataset_stats(ds)->tokens - ft_dataset_size(ds));
    ft_dataset_free(ds);
}

static void test_chat_plain_and_alpaca(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load(ft_fixture("data/chat_mini.jsonl"), g_gpt2, &o);
    char *l = decode_where(g_gpt2, ds, 0, 1);
    printf("chat learned: \"%s\"\n", l);
    assert_string_equal(l, " 660 - 549695 = -549035\n<|endoftext|>");
    free(l);
    ft_dataset_free(ds);
    ds = load(ft_fixture("data/alpaca_mini.json"), g_gpt2, &o);
    l = decode_where(g_gpt2, ds, 0, 1);
    printf("alpaca learned: \"%s\"\n", l);
    assert_string_equal(l, "They walked to a nearby store.<|endoftext|>");
    free(l);
    /* the LIMA record: the history answer and the final output are both learned */
    l = decode_where(g_gpt2, ds, 5, 1);
    char *nl = decode_where(g_gpt2, ds, 5, 0);
    assert_null(strstr(l, "### Instruction:"));
    assert_null(strstr(l, "### Response:"));
    assert_int_equal(strstr(nl, "### Response:\n") != NULL, 1);
    printf("lima: %zu learned chars, %zu not learned\n", strlen(l), strlen(nl));
    free(l);
    free(nl);
    ft_dataset_free(ds);
}

static void test_chat_template(void **state) {
    (void)state;
    ft_chat_template *t;
    assert_int_equal(ft_chat_template_builtin(&t, "chatml", NULL, NULL), FT_OK);
    ft_data_options o = ft_data_default_options();
    o.chat_template = t;
    ft_dataset *ds = load(ft_fixture("data/chat_mini.jsonl"), g_qwen, &o);
    const char *text = ft_dataset_text(ds, 0, NULL);
    printf("chatml text: %s\n", text);
    assert_string_equal(text, "<|im_start|>user\nWhat is the result of 660-549695? Only respond with math and no words."
                              "<|im_end|>\n<|im_start|>assistant\n660 - 549695 = -549035<|im_end|>\n");
    char *l = decode_where(g_qwen, ds, 0, 1);
    printf("chatml learned: \"%s\"\n", l);
    assert_string_equal(l, "660 - 549695 = -549035<|im_end|><|endoftext|>");
    free(l);
    /* the special tokens were parsed from the template's text */
    const int *ids;
    int n;
    ft_dataset_example(ds, 0, &ids, NULL, &n);
    assert_int_equal(ids[0], ft_tokenizer_token_id(g_qwen, "<|im_start|>"));
    ft_dataset_free(ds);
    /* two assistant turns, a system message: both turns learned, nothing else */
    const char *p = write_tmp("multi.jsonl",
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"},"
        " {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"Bye\"},"
        " {\"role\": \"assistant\", \"content\": \"Ciao\"}]}\n");
    ds = load(p, g_qwen, &o);
    l = decode_where(g_qwen, ds, 0, 1);
    printf("two turns learned: \"%s\"\n", l);
    assert_string_equal(l, "Hello!<|im_end|>Ciao<|im_end|><|endoftext|>");
    free(l);
    ft_dataset_free(ds);
    /* alpaca through the template: user = instruction, blank line, input */
    ds = load(ft_fixture("data/alpaca_mini.json"), g_qwen, &o);
    text = ft_dataset_text(ds, 1, NULL);
    assert_non_null(strstr(text, "<|im_start|>user\nRewrite the following sentence to use a passive voice instead.\n\n"
                                 "The president delivered a speech yesterday.<|im_end|>\n<|im_start|>assistant\n"));
    l = decode_where(g_qwen, ds, 1, 1);
    assert_string_equal(l, "A speech was delivered by the president yesterday.<|im_end|><|endoftext|>");
    free(l);
    ft_dataset_free(ds);
    /* prompt-completion and sharegpt through the template */
    ds = load(ft_fixture("data/pc_mini.jsonl"), g_qwen, &o);
    assert_true(strncmp(ft_dataset_text(ds, 0, NULL), "<|im_start|>user\nCustomer: how can I cancel purchase", 52) == 0);
    ft_dataset_free(ds);
    ds = load(ft_fixture("data/sharegpt_mini.json"), g_qwen, &o);
    l = decode_where(g_qwen, ds, 2, 1);
    assert_string_equal(l, "6778576 - 84834150134 = -84827371558<|im_end|><|endoftext|>");
    free(l);
    ft_dataset_free(ds);
    /* train_on all with a template: everything after the first token */
    o.train_on = FT_TRAIN_ON_ALL;
    ds = load(ft_fixture("data/chat_mini.jsonl"), g_qwen, &o);
    const uint8_t *L;
    ft_dataset_example(ds, 0, &ids, &L, &n);
    for (int j = 1; j < n; j++) assert_int_equal(L[j], 1);
    ft_dataset_free(ds);
    /* dialogue data never goes through the template */
    ds = load(ft_fixture("data/dialogue_turns.json"), g_qwen, &o);
    assert_true(strncmp(ft_dataset_text(ds, 0, NULL), "Alex: ", 6) == 0);
    ft_dataset_free(ds);
    ft_chat_template_free(t);
    /* Llama-2 on the SentencePiece fixture: the template's own "<s>" is the BOS (no second one), and
     * its "</s>" ends the example (no EOS appended) */
    assert_int_equal(ft_chat_template_builtin(&t, "llama2", NULL, NULL), FT_OK);
    o = ft_data_default_options();
    o.chat_template = t;
    ds = load(ft_fixture("data/chat_mini.jsonl"), g_spm, &o);
    ft_dataset_example(ds, 0, &ids, NULL, &n);
    printf("llama2 text: %s (%d tokens, first %d %d, last %d)\n", ft_dataset_text(ds, 0, NULL), n, ids[0], ids[1], ids[n - 1]);
    assert_int_equal(ids[0], ft_tokenizer_bos(g_spm));
    assert_int_not_equal(ids[1], ft_tokenizer_bos(g_spm));
    assert_int_equal(ids[n - 1], ft_tokenizer_eos(g_spm));
    assert_int_not_equal(ids[n - 2], ft_tokenizer_eos(g_spm));
    l = decode_where(g_spm, ds, 0, 1);
    assert_string_equal(l, "660 - 549695 = -549035 </s>");
    free(l);
    ft_dataset_free(ds);
    ft_chat_template_free(t);
    /* Zephyr ends turns with "</s>\n": that EOS is learned, no second EOS is added */
    assert_int_equal(ft_chat_template_builtin(&t, "zephyr", NULL, NULL), FT_OK);
    o.chat_template = t;
    ds = load(ft_fixture("data/chat_mini.jsonl"), g_spm, &o);
    l = decode_where(g_spm, ds, 0, 1);
    printf("zephyr learned: \"%s\"\n", l);
    assert_string_equal(l, "660 - 549695 = -549035</s>");
    free(l);
    ft_dataset_free(ds);
    ft_chat_template_free(t);
}

static void test_dialogue_response_speaker(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    o.train_on = FT_TRAIN_ON_COMPLETION;
    o.response_speaker = "Bob";
    ft_dataset *ds = load(ft_fixture("data/dialogue_turns.json"), g_gpt2, &o);
    /* expected: Bob's turn texts, each with its newline, then EOS */
    const char *text = ft_dataset_text(ds, 0, NULL);
    char want[4096] = "";
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, "Bob: ", 5) == 0) strncat(want, line + 4, (size_t)(nl - line) - 4 + 1);
        line = nl + 1;
    }
    strcat(want, "<|endoftext|>");
    char *l = decode_where(g_gpt2, ds, 0, 1);
    printf("Bob's turns learned: \"%s\"\n", l);
    assert_string_equal(l, want);
    free(l);
    /* the other two dialogues have no Bob: nothing to learn -> dropped */
    assert_int_equal(ft_dataset_size(ds), 1);
    assert_int_equal(ft_dataset_stats(ds)->dropped[FT_DROP_NO_TARGET], 2);
    ft_dataset_free(ds);
    /* default response speaker: the last turn's */
    o.response_speaker = NULL;
    ds = load(ft_fixture("data/dailydialog_mini.txt"), g_gpt2, &o);
    text = ft_dataset_text(ds, 0, NULL);
    char *nl = decode_where(g_gpt2, ds, 0, 0);
    assert_true(strncmp(nl, "A: Say , Jim", 12) == 0);  /* A's turns are context; the 10th turn is B's */
    assert_null(strstr(nl, "You know that is tempting"));
    free(nl);
    ft_dataset_free(ds);
}

static void test_bos_eos(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    /* GPT-2: no BOS added by its config; EOS (= the pad id, no pad token) appended and learned */
    ft_dataset *ds = load(ft_fixture("data/text_mini.txt"), g_gpt2, &o);
    int eos = ft_tokenizer_eos(g_gpt2);
    assert_int_equal(ft_dataset_eos_id(ds), eos);
    assert_int_equal(ft_dataset_pad_id(ds), eos);
    for (int64_t i = 0; i < ft_dataset_size(ds); i++) {
        const int *ids;
        const uint8_t *L;
        int n;
        ft_dataset_example(ds, i, &ids, &L, &n);
        assert_int_not_equal(ids[0], eos);
        assert_int_equal(ids[n - 1], eos);
        assert_int_equal(L[n - 1], 1);
    }
    ft_dataset_free(ds);
    /* SentencePiece fixture (add_bos_token: true): BOS first, never learned; add_bos = 0 removes it */
    ds = load(ft_fixture("data/pc_mini.jsonl"), g_spm, &o);
    const int *ids;
    const uint8_t *L;
    int n;
    ft_dataset_example(ds, 0, &ids, &L, &n);
    printf("spm: %d tokens, first %d (bos %d), last %d (eos %d)\n", n, ids[0], ft_tokenizer_bos(g_spm), ids[n - 1],
           ft_tokenizer_eos(g_spm));
    assert_int_equal(ids[0], ft_tokenizer_bos(g_spm));
    assert_int_equal(L[0], 0);
    assert_int_equal(ids[n - 1], ft_tokenizer_eos(g_spm));
    assert_int_equal(L[n - 1], 1);
    /* the mask on a SentencePiece tokenizer: decoded learned text is the completion */
    char *l = decode_where(g_spm, ds, 0, 1);
    const char *text = ft_dataset_text(ds, 0, NULL);
    const char *completion = strstr(text, "\nAgent:") + 7;
    printf("spm learned: \"%.50s...\"\n", l);
    char *want = cat(completion, "</s>");
    /* a SentencePiece decode of a token run drops the first token's leading space */
    assert_string_equal(l, want + (completion[0] == ' '));
    free(want);
    free(l);
    int n_bos = n;
    ft_dataset_free(ds);
    o.add_bos = 0;
    ds = load(ft_fixture("data/pc_mini.jsonl"), g_spm, &o);
    ft_dataset_example(ds, 0, &ids, &L, &n);
    assert_int_equal(n, n_bos - 1);
    assert_int_not_equal(ids[0], ft_tokenizer_bos(g_spm));
    ft_dataset_free(ds);
}

/* A tokenizer whose normalizer changes the text length ("Agent" -> "A"): token pieces no longer add up
 * to the text, and the learned boundary is found by tokenizing the prefix instead. */
static void test_mask_with_normalizer(void **state) {
    (void)state;
    FILE *f = fopen(ft_fixture("tokenizer/qwen2/tokenizer.json"), "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *json = malloc((size_t)len + 1);
    assert_int_equal(fread(json, 1, (size_t)len, f), (size_t)len);
    json[len] = 0;
    fclose(f);
    const char *from = "\"normalizer\": {\n  \"type\": \"NFC\"\n }";
    char *at = strstr(json, from);
    assert_non_null(at);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", g_tmp);
    f = fopen(path, "wb");
    fwrite(json, 1, (size_t)(at - json), f);
    fputs("\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \"Agent\"}, \"content\": \"A\"}", f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(json);
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, g_tmp), FT_OK);
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load(ft_fixture("data/pc_mini.jsonl"), tok, &o);
    for (int64_t i = 0; i < ft_dataset_size(ds); i++) {
        const char *text = ft_dataset_text(ds, i, NULL);
        const char *completion = strstr(text, "\nAgent:") + 7;
        char *l = decode_where(tok, ds, i, 1), *nl = decode_where(tok, ds, i, 0);
        char *want = cat(completion, "<|endoftext|>");
        printf("normalizer: not learned \"%s\" | learned \"%.30s...\"\n", nl, l);
        assert_string_equal(l, want);
        assert_non_null(strstr(nl, "\nA:"));
        free(l); free(nl); free(want);
    }
    ft_dataset_free(ds);
    ft_tokenizer_free(tok);
}

static void test_truncation(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    o.seq_len = 4096;
    ft_dataset *full = load(ft_fixture("data/alpaca_mini.json"), g_spm, &o);
    int64_t N = ft_dataset_size(full);
    const int S = 160;  /* lengths 121..1366 tokens */
    int64_t over = 0;
    for (int64_t i = 0; i < N; i++) { int n; ft_dataset_example(full, i, NULL, NULL, &n); over += n > S; }
    for (int mode = FT_TRUNC_RIGHT; mode <= FT_TRUNC_NONE; mode++) {
        o.seq_len = S;
        o.truncate = (ft_truncate)mode;
        ft_dataset *ds = load(ft_fixture("data/alpaca_mini.json"), g_spm, &o);
        const ft_data_stats *s = ft_dataset_stats(ds);
        ft_dataset_print_summary(ds, stdout);
        assert_int_equal(s->over_seq_len, over);
        assert_int_equal(s->truncated + s->dropped[FT_DROP_NO_TARGET], mode == FT_TRUNC_NONE ? 0 : over);
        /* compare each kept example with its untruncated version (same source record) */
        for (int64_t i = 0, j = 0; i < ft_dataset_size(ds); i++) {
            int64_t ri, rj;
            ft_dataset_source(ds, i, NULL, &ri);
            do ft_dataset_source(full, j++, NULL, &rj); while (rj != ri);
            const int *a, *b;
            const uint8_t *La, *Lb;
            int na, nb;
            ft_dataset_example(ds, i, &a, &La, &na);
            ft_dataset_example(full, j - 1, &b, &Lb, &nb);
            if (mode == FT_TRUNC_NONE || nb <= S) {
                assert_int_equal(na, nb);
                assert_memory_equal(a, b, (size_t)na * sizeof *a);
            } else if (mode == FT_TRUNC_RIGHT) {  /* the start; the EOS is cut */
                assert_int_equal(na, S);
                assert_memory_equal(a, b, (size_t)S * sizeof *a);
                assert_memory_equal(La, Lb, (size_t)S);
            } else {                               /* BOS + the end, EOS kept */
                assert_int_equal(na, S);
                assert_int_equal(a[0], ft_tokenizer_bos(g_spm));
                assert_memory_equal(a + 1, b + nb - (S - 1), (size_t)(S - 1) * sizeof *a);
                assert_memory_equal(La + 1, Lb + nb - (S - 1), (size_t)(S - 1));
                assert_int_equal(a[S - 1], ft_tokenizer_eos(g_spm));
            }
        }
        printf("truncate %s: %lld over %d, %lld truncated, %lld dropped (no learned token left), %lld kept\n",
               ft_truncate_name((ft_truncate)mode), (long long)over, S, (long long)s->truncated,
               (long long)s->dropped[FT_DROP_NO_TARGET], (long long)s->kept);
        if (mode == FT_TRUNC_LEFT) assert_int_equal(s->dropped[FT_DROP_NO_TARGET], 0);  /* the end is the answer */
        ft_dataset_free(ds);
    }
    ft_dataset_free(full);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_only), cmocka_unit_test(test_chat_plain_and_alpaca),
        cmocka_unit_test(test_chat_template),   cmocka_unit_test(test_dialogue_response_speaker),
        cmocka_unit_test(test_bos_eos),         cmocka_unit_test(test_mask_with_normalizer),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
