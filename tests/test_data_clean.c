/* test_data_clean.c — cleaning (UTF-8 check, NFC, whitespace, duplicates, length filters) and bad
 * input: malformed JSON lines / elements, missing and empty fields, invalid UTF-8, bad CSV rows,
 * empty datasets. Each bad record is skipped with a warning naming file, line, record and field
 * (captured from stderr and checked), or with strict = 1 is an error with that message. */
#include "testutil.h"

#include "data/data_internal.h"
#include "finetune/data.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ft_tokenizer *g_tok;
static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ft_test_data_clean_XXXXXX");
    if (!mkdtemp(g_tmp)) return -1;
    return ft_tokenizer_load(&g_tok, ft_fixture("tokenizer/gpt2")) == FT_OK ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    ft_tokenizer_free(g_tok);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_tmp(const char *name, const char *content) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(content, 1, strlen(content), f);
    fclose(f);
    return path;
}

/* ---- stderr capture: warnings are checked, not just printed ---- */
static int g_saved_fd = -1;
static char g_cap_path[512];
static void capture_begin(void) {
    fflush(stderr);
    snprintf(g_cap_path, sizeof g_cap_path, "%s/stderr.txt", g_tmp);
    g_saved_fd = dup(2);
    FILE *f = freopen(g_cap_path, "w", stderr);
    assert_non_null(f);
}
static char *capture_end(void) {
    fflush(stderr);
    dup2(g_saved_fd, 2);
    close(g_saved_fd);
    clearerr(stderr);
    FILE *f = fopen(g_cap_path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("%s", buf);  /* the warnings, as evidence */
    return buf;
}

static int load(ft_dataset **ds, const char *path, const ft_data_options *o) {
    *ds = NULL;
    int rc = ft_dataset_load(ds, path, g_tok, o);
    if (rc < 0) printf("error: %s\n", ft_last_error());
    return rc;
}

/* ---- unit level ---- */
static void test_utf8_check(void **state) {
    (void)state;
    static const struct { const char *s; int64_t at; } cases[] = {
        {"plain ascii", -1},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", -1},  /* é € 😀 */
        {"ab\xff", 2},                                       /* never valid */
        {"a\xc0\xaf", 1},                                    /* overlong '/' */
        {"a\xe0\x80\xaf", 1},                                /* overlong, 3 bytes */
        {"x\xed\xa0\x80", 1},                                /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0},                             /* > U+10FFFF */
        {"ok\xe2\x82", 2},                                   /* truncated */
        {"\xc3(", 0},                                        /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t got = ft__data_utf8_invalid_at(cases[i].s, strlen(cases[i].s));
        printf("utf8 case %zu: invalid at %lld (expected %lld)\n", i, (long long)got, (long long)cases[i].at);
        assert_int_equal(got, cases[i].at);
    }
}

static void test_whitespace(void **state) {
    (void)state;
    static const struct { const char *in, *out; int lead, trail; } cases[] = {
        {"  hello   world  ", "hello world", 0, 0},
        {"a\r\nb\rc", "a\nb\nc", 0, 0},                              /* CRLF and CR */
        {"line one   \nline two\t\n", "line one\nline two", 0, 0},   /* trailing blanks of lines */
        {"a\n\n\n\n\nb", "a\n\nb", 0, 0},                            /* at most one blank line */
        {"a\n   \n  \n\nb", "a\n\nb", 0, 0},                         /* blank lines with spaces */
        {"def f():\n    return  1\n", "def f():\n    return 1", 0, 0}, /* indentation kept */
        {"x\x01y\x7fz\x00", "xyz", 0, 0},                            /* control characters */
        {"tab\there", "tab\there", 0, 0},
        {"Q: what?\nA: ", "Q: what?\nA: ", 0, 1},                    /* a prompt keeps its end */
        {" answer  here ", " answer here", 1, 0},                    /* a completion keeps its start */
        {"   \n\n  ", "", 0, 0},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = strlen(cases[i].in) + (i == 6);  /* case 6 includes its NUL byte */
        size_t n = ft__data_clean_ws(out, cases[i].in, len, cases[i].lead, cases[i].trail);
        printf("ws case %zu: \"%s\"\n", i, out);
        assert_int_equal(n, strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
}

/* ---- cleaning in a load ---- */
static void test_nfc_and_dedup(void **state) {
    (void)state;
    /* 1 and 2 differ only in whitespace, 3 is 1 with a decomposed é (e + U+0301): all the same after
     * cleaning. 4 is distinct. */
    const char *p = write_tmp("nfc.jsonl",
        "{\"prompt\": \"Caf\\u00e9?\\n\", \"completion\": \" Yes,  open.\"}\n"
        "{\"prompt\": \"  Caf\\u00e9?\\n\", \"completion\": \" Yes, open.   \"}\n"
        "{\"prompt\": \"Cafe\\u0301?\\n\", \"completion\": \" Yes, open.\"}\n"
        "{\"prompt\": \"Tea?\\n\", \"completion\": \" No.\"}\n");
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds;
    ft_log_set_level(FT_LOG_DEBUG);  /* duplicates are logged at debug level */
    capture_begin();
    int rc = load(&ds, p, &o);
    char *err = capture_end();
    ft_log_set_level(FT_LOG_INFO);
    assert_int_equal(rc, FT_OK);
    const ft_data_stats *s = ft_dataset_stats(ds);
    printf("read %lld kept %lld dup %lld nfc %lld ws %lld\n", (long long)s->read, (long long)s->kept,
           (long long)s->dropped[FT_DROP_DUPLICATE], (long long)s->nfc_changed, (long long)s->ws_changed);
    assert_int_equal(s->read, 4);
    assert_int_equal(s->kept, 2);
    assert_int_equal(s->dropped[FT_DROP_DUPLICATE], 2);
    assert_int_equal(s->nfc_changed, 1);
    assert_int_equal(s->ws_changed, 2);
    assert_string_equal(ft_dataset_text(ds, 0, NULL), "Caf\xc3\xa9?\n Yes, open.");
    assert_non_null(strstr(err, "nfc.jsonl: line 2: record 1: duplicate of record 0 (line 1)"));
    assert_non_null(strstr(err, "nfc.jsonl: line 3: record 2: duplicate of record 0 (line 1)"));
    ft_dataset_free(ds);
    /* without dedup all 4 stay; without NFC the decomposed one is distinct */
    o.dedup = 0;
    assert_int_equal(load(&ds, p, &o), FT_OK);
    assert_int_equal(ft_dataset_stats(ds)->kept, 4);
    ft_dataset_free(ds);
    o.dedup = 1;
    o.nfc = 0;
    assert_int_equal(load(&ds, p, &o), FT_OK);
    assert_int_equal(ft_dataset_stats(ds)->kept, 3);
    ft_dataset_free(ds);
    /* strict: a duplicate is an error */
    o = ft_data_default_options();
    o.strict = 1;
    assert_int_equal(load(&ds, p, &o), FT_ERR_RANGE);
    assert_null(ds);
    assert_non_null(strstr(ft_last_error(), "nfc.jsonl: line 2: record 1: duplicate of record 0"));
}

static void test_length_filters(void **state) {
    (void)state;
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds;
    o.min_chars = 60;  /* characters over all fields of the record */
    o.max_chars = 100;
    assert_int_equal(load(&ds, ft_fixture("data/chat_mini.jsonl"), &o), FT_OK);
    const ft_data_stats *s = ft_dataset_stats(ds);
    printf("kept %lld, too short %lld, too long %lld\n", (long long)s->kept, (long long)s->dropped[FT_DROP_TOO_SHORT],
           (long long)s->dropped[FT_DROP_TOO_LONG]);
    /* record character counts: 92, 111, 160, 177 */
    assert_int_equal(s->kept, 1);
    assert_int_equal(s->dropped[FT_DROP_TOO_LONG], 3);
    ft_dataset_free(ds);
    o.min_chars = 100;
    o.max_chars = 0;
    assert_int_equal(load(&ds, ft_fixture("data/chat_mini.jsonl"), &o), FT_OK);
    assert_int_equal(ft_dataset_stats(ds)->kept, 3);
    assert_int_equal(ft_dataset_stats(ds)->dropped[FT_DROP_TOO_SHORT], 1);
    ft_dataset_free(ds);
    o.max_chars = 50;
    assert_int_equal(load(&ds, ft_fixture("data/chat_mini.jsonl"), &o), FT_ERR_INVALID);  /* max < min */
}

/* ---- bad input ---- */
static const char BAD_JSONL[] =
    "{\"prompt\": \"What is 2+2?\\n\", \"completion\": \" 4\"}\n"
    "{\"prompt\": \"broken\", \"completion\": \n"
    "{\"prompt\": \"Capital of France?\\n\"}\n"
    "{\"prompt\": \"x\\n\", \"completion\": \" \xff\xfe bad\"}\n"
    "{\"prompt\": \"y\\n\", \"completion\": \"   \"}\n"
    "\n"
    "{\"prompt\": \"Name a colour\\n\", \"completion\": \" Blue\"}\n"
    "{\"prompt\": 7, \"completion\": \" seven\"}\n";

static void test_bad_jsonl(void **state) {
    (void)state;
    const char *p = write_tmp("bad.jsonl", BAD_JSONL);
    ft_data_options o = ft_data_default_options();
    ft_dataset *ds;
    capture_begin();
    int rc = load(&ds, p, &o);
    char *err = capture_end();
    assert_int_equal(rc, FT_OK);
    const ft_data_stats *s = ft_dataset_stats(ds);
    assert_int_equal(s->read, 7);  /* the blank line is no record */
    assert_int_equal(s->kept, 2);
    assert_int_equal(s->dropped[FT_DROP_MALFORMED], 1);
    assert_int_equal(s->dropped[FT_DROP_MISSING_FIELD], 2);
    assert_int_equal(s->dropped[FT_DROP_INVALID_UTF8], 1);
    assert_int_equal(s->dropped[FT_DROP_EMPTY], 1);
    assert_non_null(strstr(err, "bad.jsonl: line 2: record 1: malformed JSON"));
    assert_non_null(strstr(err, "bad.jsonl: line 3: record 2: field 'completion': missing"));
    assert_non_null(strstr(err, "bad.jsonl: line 4: record 3: field 'completion': invalid UTF-8 at byte 1 (0xFF)"));
    assert_non_null(strstr(err, "bad.jsonl: line 5: record 4: field 'completion': empty"));
    assert_non_null(strstr(err, "bad.jsonl: line 8: record 6: field 'prompt': expected a string"));
    ft_dataset_print_summary(ds, stdout);
    ft_dataset_free(ds);
    /* strict: the first bad record is the error */
    o.strict = 1;
    assert_int_equal(load(&ds, p, &o), FT_ERR_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(ft_last_error(), "bad.jsonl: line 2: record 1: malformed JSON"));
    assert_non_null(strstr(ft_last_error(), "strict"));
}

/* one problem per file, strict: the error names file, line and field */
static void test_strict_messages(void **state) {
    (void)state;
    static const struct { const char *name, *content, *expect; int status; } cases[] = {
        {"missing.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": \"c\"}\n",
         "missing.jsonl: line 3: record 1: field 'completion': missing", FT_ERR_FORMAT},
        {"utf8.json", "[\n {\"instruction\": \"ok\", \"output\": \"fine\"},\n {\"instruction\": \"x\",\n  \"output\": \"a\xc3\"}\n]",
         "utf8.json: line 3: record 1: field 'output': invalid UTF-8 at byte 1", FT_ERR_FORMAT},
        {"empty_field.json", "[{\"instruction\": \"  \", \"output\": \"y\"}]",
         "empty_field.json: line 1: record 0: field 'instruction': empty", FT_ERR_FORMAT},
        {"role.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"robot\", \"content\": \"beep\"}]}",
         "role.jsonl: line 1: record 0: field 'messages[1].role': unknown role 'robot'", FT_ERR_FORMAT},
        {"elem.json", "[\n {\"text\": \"good\"},\n {\"text\": tru},\n {\"text\": \"also good\"}\n]",
         "elem.json: line 3: record 1: malformed JSON", FT_ERR_FORMAT},
        {"noassist.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hello?\"}]}",
         "noassist.jsonl: line 1: record 0: nothing to learn under train_on=completion", FT_ERR_RANGE},
        {"turn.json", "[{\"dialogue\": \"Alex: Hi there.\\nBob: \\nAlex: Anyone?\"}]",
         "turn.json: line 1: record 0: field 'dialogue': turn 1 (Bob) is empty", FT_ERR_FORMAT},
        {"rows.csv", "id,text,label\n1,\"hello, world\",a\n2,oops\n3,fine,b\n",
         "rows.csv: line 3: record 1: malformed CSV row: 2 fields, the header has 3", FT_ERR_FORMAT},
        {"quote.csv", "text\n\"never closed\n",
         "quote.csv: line 2: record 0: malformed CSV row: a quoted field is not closed", FT_ERR_FORMAT},
        {"turns.json", "[{\"dialogue\": [{\"speaker\": \"A\", \"text\": \"hi\"}, {\"speaker\": \"B\"}]}]",
         "turns.json: line 1: record 0: field 'dialogue[1].text': missing", FT_ERR_FORMAT},
    };
    ft_data_options o = ft_data_default_options();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p = write_tmp(cases[i].name, cases[i].content);
        ft_dataset *ds;
        o.strict = 1;
        int rc = load(&ds, p, &o);
        assert_int_equal(rc, cases[i].status);
        assert_null(ds);
        assert_non_null(strstr(ft_last_error(), cases[i].expect));
        /* not strict: the same record is skipped (a warning), the rest loads or "no usable record" */
        o.strict = 0;
        capture_begin();
        rc = load(&ds, p, &o);
        char *err = capture_end();
        assert_non_null(strstr(err, cases[i].expect));
        if (rc == FT_OK) ft_dataset_free(ds);
        else assert_non_null(strstr(ft_last_error(), "no usable record"));
    }
}

static void test_structural_errors(void **state) {
    (void)state;
    static const struct { const char *name, *content, *expect; } cases[] = {
        {"open.json", "[\n {\"text\": \"a\"},\n {\"text\": \"b\"}\n", "open.json: line 4: malformed JSON: list not closed (']' expected)"},
        {"brace.json", "[\n {\"text\": \"a\",\n  \"x\": [1, 2}\n", "brace.json: line 2: malformed JSON: '{' opened here is never closed"},
        {"comma.json", "[\n {\"text\": \"a\"}\n {\"text\": \"b\"}\n]", "comma.json: line 3: malformed JSON: ',' or ']' expected after record 0"},
        {"string.json", "[{\"text\": \"a}]\n", "string.json: line 1: malformed JSON: unterminated string"},
        {"scalar.json", "42\n", "scalar.json: line 1: malformed JSON: a list '[' or an object '{' expected"},
        {"keys.json", "[{\"question\": \"a\", \"answer\": \"b\"}]",
         "keys.json: line 1: record 0: cannot tell the dataset format from this record (keys: question, answer)"},
        {"empty.json", "[]", "empty.json: no usable record (0 read)"},
        {"blank.txt", "\n   \n\n", "blank.txt: no usable record (0 read)"},
        {"nothing.jsonl", "", "nothing.jsonl: no usable record (0 read)"},
    };
    ft_data_options o = ft_data_default_options();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ft_dataset *ds;
        int rc = load(&ds, write_tmp(cases[i].name, cases[i].content), &o);
        assert_int_equal(rc, FT_ERR_FORMAT);
        assert_null(ds);
        assert_non_null(strstr(ft_last_error(), cases[i].expect));
    }
    /* bad options */
    ft_dataset *ds;
    o.seq_len = 1;
    assert_int_equal(load(&ds, ft_fixture("data/chat_mini.jsonl"), &o), FT_ERR_INVALID);
    o = ft_data_default_options();
    o.prompt_column = "instruction";
    assert_int_equal(load(&ds, ft_fixture("data/bitext_mini.csv"), &o), FT_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_check),      cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_nfc_and_dedup),   cmocka_unit_test(test_length_filters),
        cmocka_unit_test(test_bad_jsonl),       cmocka_unit_test(test_strict_messages),
        cmocka_unit_test(test_structural_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
