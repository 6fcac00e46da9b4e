/* test_data.c — dataset formats (data.h): every format read from small real files in
 * tests/fixtures/data/ (see its README.md), with record counts and rendered text checked, format
 * detection, directories, and the bundled default set data/fundialogues.
 * Cleaning and errors: test_data_clean.c; loss masks and truncation: test_data_mask.c; batches,
 * packing, iterator, splits: test_data_batch.c. */
#include "testutil.h"

#include "finetune/data.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ft_tokenizer *g_tok;

static int setup(void **state) {
    (void)state;
    ft_log_set_level(FT_LOG_ERROR);  /* expected warnings (duplicates) stay quiet */
    return ft_tokenizer_load(&g_tok, ft_fixture("tokenizer/gpt2")) == FT_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    ft_tokenizer_free(g_tok);
    return 0;
}

/* loads fixture data/<name>; prints the summary line of counts */
static ft_dataset *load(const char *name, const ft_data_options *o) {
    ft_dataset *ds = NULL;
    int rc = ft_dataset_load(&ds, ft_fixture(name), g_tok, o);
    if (rc < 0) printf("load %s: %s\n", name, ft_last_error());
    assert_int_equal(rc, FT_OK);
    const ft_data_stats *s = ft_dataset_stats(ds);
    printf("%-28s format %-17s read %3lld kept %3lld dropped %lld (dup %lld) tokens %6lld learned %6lld\n", name,
           ft_data_format_name(s->format), (long long)s->read, (long long)s->kept,
           (long long)(s->read - s->kept), (long long)s->dropped[FT_DROP_DUPLICATE], (long long)s->tokens,
           (long long)s->learned);
    return ds;
}

static const char *text(const ft_dataset *ds, int64_t i) { return ft_dataset_text(ds, i, NULL); }

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int count_sub(const char *s, const char *p) {
    int n = 0;
    for (const char *q = strstr(s, p); q; q = strstr(q + 1, p)) n++;
    return n;
}

static void test_fundialogues(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/fundialogues_mini.json", &o);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->format, FT_DATA_DIALOGUE);
    assert_int_equal(s->read, 12);
    assert_int_equal(s->kept, 11);
    assert_int_equal(s->dropped[FT_DROP_DUPLICATE], 1);  /* grocery_cashier 34 and 60 are the same */
    assert_int_equal(s->train_on, FT_TRAIN_ON_ALL);
    /* "\n\n"-separated turns -> one per line */
    assert_true(starts(text(ds, 0), "Technician: Hello, one of our apple picker machines is not picking apples."));
    assert_non_null(strstr(text(ds, 0), "fix it?\nExpert: Check the picking arms"));
    assert_int_equal(count_sub(text(ds, 0), "\n"), 2);
    /* inline turns ("... pound? Cashier: ...") split after the sentence end */
    assert_true(starts(text(ds, 3), "Customer: Excuse me, could you tell me the price of the apples per pound?\nCashier: Certainly!"));
    /* "Agent" never starts a line, but labels turns in every robot_support record */
    int64_t last = ft_dataset_size(ds) - 1;
    assert_true(starts(text(ds, last), "Customer: "));
    assert_non_null(strstr(text(ds, last), "\nAgent: "));
    int line;
    int64_t rec;
    const char *src = ft_dataset_source(ds, last, &line, &rec);
    printf("last example from %s line %d record %lld:\n%s", src, line, (long long)rec, text(ds, last));
    assert_non_null(strstr(src, "fundialogues_mini.json"));
    assert_int_equal(rec, 11);
    ft_dataset_free(ds);
}

static void test_dialogue_turns(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/dialogue_turns.json", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 3);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_DIALOGUE);
    printf("%s---\n%s---\n%s", text(ds, 0), text(ds, 1), text(ds, 2));
    assert_true(starts(text(ds, 0), "Alex: "));
    assert_non_null(strstr(text(ds, 0), "\nBob: "));
    assert_true(starts(text(ds, 1), "Sam: "));
    assert_non_null(strstr(text(ds, 1), "\nKim: "));
    assert_true(starts(text(ds, 2), "A: "));       /* plain strings: speakers alternate A, B */
    assert_non_null(strstr(text(ds, 2), "\nB: "));
    ft_dataset_free(ds);
    o.speakers[0] = "User";                        /* configurable names */
    o.speakers[1] = "Bot";
    ds = load("data/dialogue_turns.json", &o);
    assert_true(starts(text(ds, 2), "User: "));
    assert_non_null(strstr(text(ds, 2), "\nBot: "));
    ft_dataset_free(ds);
}

/* plain string turns that carry their own "Name: " labels keep them; unlabelled ones alternate */
static void test_labelled_strings(void **state) {
    (void)state;
    char path[] = "/tmp/ft_test_data_labels_XXXXXX.json";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char *json = "[[\"Alex: Hello there.\", \"Bob: Hi!\", \"Alex: How are you?\"],\n"
                       " [\"Hello there.\", \"Bob: Hi!\"]]\n";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = NULL;
    assert_int_equal(ft_dataset_load(&ds, path, g_tok, &o), FT_OK);
    printf("%s---\n%s", text(ds, 0), text(ds, 1));
    assert_string_equal(text(ds, 0), "Alex: Hello there.\nBob: Hi!\nAlex: How are you?\n");
    assert_string_equal(text(ds, 1), "A: Hello there.\nB: Bob: Hi!\n");
    ft_dataset_free(ds);
    unlink(path);
}

static void test_dailydialog(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/dailydialog_mini.txt", &o);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->format, FT_DATA_DAILYDIALOG);
    assert_int_equal(s->read, 6);
    assert_int_equal(s->kept, 6);
    assert_true(starts(text(ds, 0), "A: Say , Jim , how about going for a few beers after dinner ?\n"
                                    "B: You know that is tempting but is really not good for our fitness .\nA: "));
    assert_int_equal(count_sub(text(ds, 0), "__eou__"), 0);
    assert_int_equal(count_sub(text(ds, 0), "\n"), 10);  /* 10 turns */
    ft_dataset_free(ds);
}

static void test_alpaca(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/alpaca_mini.json", &o);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->format, FT_DATA_ALPACA);
    assert_int_equal(s->kept, 6);
    assert_int_equal(s->train_on, FT_TRAIN_ON_COMPLETION);
    assert_true(starts(text(ds, 0), "Below is an instruction that describes a task. Write a response that appropriately "
                                    "completes the request.\n\n### Instruction:\nRe-write the following sentence"));
    assert_non_null(strstr(text(ds, 0), "\n\n### Response:\nThey walked to a nearby store."));
    /* record 1 has an input */
    assert_true(starts(text(ds, 1), "Below is an instruction that describes a task, paired with an input"));
    assert_non_null(strstr(text(ds, 1), "### Input:\nThe president delivered a speech yesterday.\n\n### Response:\n"));
    /* the LIMA record: history turns first */
    assert_true(count_sub(text(ds, 5), "### Instruction:") >= 2);
    assert_int_equal(count_sub(text(ds, 5), "### Instruction:"), count_sub(text(ds, 5), "### Response:"));
    ft_dataset_free(ds);
    ds = load("data/alpaca_mini.jsonl", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 4);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_ALPACA);
    ft_dataset_free(ds);
}

static void test_sharegpt(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/sharegpt_mini.json", &o);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->format, FT_DATA_SHAREGPT);
    assert_int_equal(s->kept, 4);
    printf("%s", text(ds, 2));
    assert_true(starts(text(ds, 0), "User: Can you please book a flight for me from New York to London?\nAssistant: I'm sorry"));
    /* a DPO record: "chosen" is the assistant turn */
    assert_string_equal(text(ds, 2), "User: Obtain the result by calculating 6778576-84834150134. Only respond with math "
                                     "and no words.\nAssistant: 6778576 - 84834150134 = -84827371558\n");
    ft_dataset_free(ds);
}

static void test_chat(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/chat_mini.jsonl", &o);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_CHAT);
    assert_int_equal(ft_dataset_stats(ds)->kept, 4);
    assert_string_equal(text(ds, 0), "User: What is the result of 660-549695? Only respond with math and no words.\n"
                                     "Assistant: 660 - 549695 = -549035\n");
    ft_dataset_free(ds);
}

static void test_prompt_completion(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/pc_mini.jsonl", &o);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_PROMPT_COMPLETION);
    assert_int_equal(ft_dataset_stats(ds)->kept, 4);
    /* prompt + completion as they are: the prompt's "\nAgent:" and the completion's leading space kept */
    assert_true(starts(text(ds, 0), "Customer: how can I cancel purchase 113542617735902?\nAgent: I understand how unnerving"));
    assert_null(strstr(text(ds, 0), "\r"));  /* CRLF in the completion -> LF */
    ft_dataset_free(ds);
}

static void test_csv(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = NULL;
    /* the default column "text" is absent: the error lists the columns */
    int rc = ft_dataset_load(&ds, ft_fixture("data/bitext_mini.csv"), g_tok, &o);
    printf("expected error: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_NOT_FOUND);
    assert_non_null(strstr(ft_last_error(), "bitext_mini.csv: line 1: no column 'text'"));
    assert_non_null(strstr(ft_last_error(), "instruction, intent"));
    o.text_column = "response";
    ds = load("data/bitext_mini.csv", &o);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_CSV);
    assert_int_equal(ft_dataset_stats(ds)->kept, 6);
    /* a quoted field with commas, "" and newlines */
    assert_true(starts(text(ds, 0), "I understand how unnerving it can be to cancel an order, especially"));
    assert_non_null(strstr(text(ds, 0), "process:\n\n1. Firstly, connect"));
    ft_dataset_free(ds);
    /* columns as prompt / completion */
    o.prompt_column = "instruction";
    o.completion_column = "response";
    o.pc_separator = "\n";
    ds = load("data/bitext_mini.csv", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 6);
    assert_int_equal(ft_dataset_stats(ds)->train_on, FT_TRAIN_ON_COMPLETION);
    assert_true(starts(text(ds, 0), "how can I cancel purchase 113542617735902?\nI understand how unnerving"));
    ft_dataset_free(ds);
    /* TSV without a header: column by number */
    o = ft_data_default_options();
    o.csv_header = 0;
    o.text_column = "1";
    ds = load("data/agnews_mini.tsv", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 5);
    assert_string_equal(text(ds, 0), "Unions representing workers at Turner Newall say they are 'disappointed' after "
                                     "talks with stricken parent firm Federal Mogul.");
    ft_dataset_free(ds);
    o.text_column = "2";  /* the label column */
    ds = load("data/agnews_mini.tsv", &o);
    assert_string_equal(text(ds, 0), "Business");
    ft_dataset_free(ds);
}

static void test_text(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds = load("data/text_mini.txt", &o);
    assert_int_equal(ft_dataset_stats(ds)->format, FT_DATA_TEXT);
    assert_int_equal(ft_dataset_stats(ds)->kept, 3);  /* blank-line-separated blocks */
    assert_int_equal(ft_dataset_stats(ds)->truncate, FT_TRUNC_NONE);
    assert_int_equal(count_sub(text(ds, 1), "\n"), 1);  /* the block wrapped over two lines */
    ft_dataset_free(ds);
    o.text_split = FT_TEXT_LINES;
    ds = load("data/text_mini.txt", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 4);
    ft_dataset_free(ds);
    o.text_split = FT_TEXT_WHOLE;
    ds = load("data/text_mini.txt", &o);
    assert_int_equal(ft_dataset_stats(ds)->kept, 1);
    assert_int_equal(count_sub(text(ds, 0), "\n\n"), 2);
    ft_dataset_free(ds);
    ft_text_split ts;
    assert_int_equal(ft_text_split_from_name("lines", &ts), FT_OK);
    assert_int_equal(ts, FT_TEXT_LINES);
}

static void test_forced_format(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    /* a JSONL {"text"} file read as text; the same file forced to alpaca has no usable record */
    o.format = FT_DATA_ALPACA;
    ft_dataset *ds = NULL;
    int rc = ft_dataset_load(&ds, ft_fixture("data/chat_mini.jsonl"), g_tok, &o);
    printf("expected error: %s\n", ft_last_error());
    assert_int_equal(rc, FT_ERR_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(ft_last_error(), "chat_mini.jsonl: no usable record (4 read; dropped: missing field 4)"));
    /* names */
    ft_data_format f;
    assert_int_equal(ft_data_format_from_name("sharegpt", &f), FT_OK);
    assert_int_equal(f, FT_DATA_SHAREGPT);
    assert_int_equal(ft_data_format_from_name("completion", &f), FT_OK);
    assert_int_equal(f, FT_DATA_PROMPT_COMPLETION);
    assert_int_equal(ft_data_format_from_name("tsv", &f), FT_OK);
    assert_int_equal(f, FT_DATA_CSV);
    assert_int_equal(ft_data_format_from_name("yaml", &f), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "unknown data format 'yaml'"));
    for (int i = 0; i < FT_DATA_FORMAT_COUNT; i++) {
        assert_int_equal(ft_data_format_from_name(ft_data_format_name((ft_data_format)i), &f), FT_OK);
        assert_int_equal(f, i);
    }
    ft_train_on t;
    assert_int_equal(ft_train_on_from_name("all", &t), FT_OK);
    assert_int_equal(t, FT_TRAIN_ON_ALL);
    assert_int_equal(ft_train_on_from_name("completion", &t), FT_OK);
    assert_int_equal(t, FT_TRAIN_ON_COMPLETION);
    assert_int_equal(ft_train_on_from_name("prompt", &t), FT_ERR_INVALID);
    ft_truncate tr;
    assert_int_equal(ft_truncate_from_name("left", &tr), FT_OK);
    assert_int_equal(tr, FT_TRUNC_LEFT);
    assert_int_equal(ft_truncate_from_name("middle", &tr), FT_ERR_INVALID);
}

/* the bundled default training set: a directory of 6 JSON files */
static void test_default_dataset(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    o.seq_len = 256;
    ft_dataset *ds = NULL;
    int rc = ft_dataset_load(&ds, FT_DATA_DEFAULT_PATH, g_tok, &o);
    if (rc < 0) printf("%s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    ft_dataset_print_summary(ds, stdout);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->files, 6);
    assert_int_equal(s->read, 601);
    assert_int_equal(s->kept, 354);  /* 247 exact duplicates in the files */
    assert_int_equal(s->dropped[FT_DROP_DUPLICATE], 247);
    assert_int_equal(s->truncated, 0);
    int64_t hist = 0;
    for (int b = 0; b < FT_DATA_HIST_BINS; b++) hist += s->hist[b];
    assert_int_equal(hist, 354);
    /* every rendered line is "Name: text" */
    int64_t bad = 0;
    for (int64_t i = 0; i < ft_dataset_size(ds); i++) {
        const char *t = text(ds, i);
        for (const char *line = t; *line; ) {
            const char *nl = strchr(line, '\n');
            const char *colon = strstr(line, ": ");
            if (!colon || (nl && colon > nl) || colon - line > 40) bad++;
            line = nl ? nl + 1 : line + strlen(line);
        }
    }
    printf("lines without a speaker label: %lld\n", (long long)bad);
    assert_int_equal(bad, 0);
    ft_dataset_free(ds);
    /* a directory with no data files */
    rc = ft_dataset_load(&ds, "tests/util", g_tok, &o);
    assert_int_equal(rc, FT_ERR_NOT_FOUND);
    rc = ft_dataset_load(&ds, "tests/fixtures/data/absent.json", g_tok, &o);
    assert_int_equal(rc, FT_ERR_NOT_FOUND);
    assert_non_null(strstr(ft_last_error(), "absent.json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fundialogues),  cmocka_unit_test(test_dialogue_turns),
        cmocka_unit_test(test_labelled_strings),
        cmocka_unit_test(test_dailydialog),   cmocka_unit_test(test_alpaca),
        cmocka_unit_test(test_sharegpt),      cmocka_unit_test(test_chat),
        cmocka_unit_test(test_prompt_completion), cmocka_unit_test(test_csv),
        cmocka_unit_test(test_text),          cmocka_unit_test(test_forced_format),
        cmocka_unit_test(test_default_dataset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
